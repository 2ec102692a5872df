/* src/logstore/block.c (the B2 columnar block, the B1 blocks stored before
 * it, the per-second rollups) and src/logstore/groups.c (the pre-aggregation
 * group table). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <cmocka.h>
#include <string.h>
#include <zstd.h>

#include "../fuzz/logstore_fixture.h"
#include "core/xmalloc.h"
#include "logstore/block.h"
#include "logstore/groups.h"
#include "logstore/ldata.h"
#include "logstore/query.h"

#include <sqlite3.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Every value of the fixture's block, column by column, as written. */
static void check_fixture(struct block *b)
{
	assert_int_equal(b->n, LSFIX_N);
	assert_int_equal(b->nkeys, LSFIX_KEYS);
	for (int i = 0; i < LSFIX_N; i++) {
		assert_int_equal(b->time[i], LSFIX_T0 + (uint32_t)i);
		for (int k = 0; k < LSFIX_KEYS; k++) {
			char want[24];
			lsfix_value(i, k, want, sizeof(want));
			struct str v = block_value(b, (size_t)i, (size_t)k);
			assert_true(str_eq(v, str_c(want)));
		}
	}
	assert_false(b->corrupt);
}

static void test_b2_roundtrip(void **state)
{
	struct lsfix *f = xmalloc(sizeof(*f));
	lsfix_init(f);
	struct block b;
	assert_int_equal(block_decode((struct str){f->data.p, f->data.len}, &b), 0);
	assert_memory_equal(f->data.p, "B2", 2);
	/* Columns are decoded when asked for, one at a time. */
	for (size_t k = 0; k < b.nkeys; k++)
		assert_null(b.col[k]);
	assert_true(str_eq(block_value(&b, 5, 0), STR_LIT("10.0.0.1")));
	assert_non_null(b.col[0]);
	assert_null(b.col[1]);
	check_fixture(&b);
	block_free(&b);
	lsfix_free(f);
	free(f);
}

static void put_varint(struct buf *b, uint64_t v)
{
	do {
		buf_addc(b, (char)((v & 0x7f) | (v >= 0x80 ? 0x80 : 0)));
		v >>= 7;
	} while (v);
}

/* The fixture as the first store wrote blocks (B1: one zstd frame of everything). */
static char *b1_block(size_t *len)
{
	struct buf p = {0};
	buf_add(&p, "B1", 2);
	put_varint(&p, LSFIX_N);
	put_varint(&p, LSFIX_KEYS);
	put_varint(&p, 0); /* no ns */
	for (int k = 0; k < LSFIX_KEYS; k++) {
		put_varint(&p, strlen(lsfix_keys[k]));
		buf_adds(&p, lsfix_keys[k]);
	}
	for (int i = 0; i < LSFIX_N; i++)
		put_varint(&p, LSFIX_T0 + (uint64_t)i);
	for (int k = 0; k < LSFIX_KEYS; k++)
		for (int i = 0; i < LSFIX_N; i++) {
			char v[24];
			lsfix_value(i, k, v, sizeof(v));
			put_varint(&p, strlen(v) + 1);
			buf_adds(&p, v);
		}
	size_t cap = ZSTD_compressBound(p.len);
	char *z = xmalloc(cap);
	*len = ZSTD_compress(z, cap, p.p, p.len, 1);
	buf_free(&p);
	return z;
}

static void test_b1_still_read(void **state)
{
	size_t zn;
	char *z = b1_block(&zn);
	struct block b;
	assert_int_equal(block_decode((struct str){z, zn}, &b), 0);
	check_fixture(&b);
	block_free(&b);
	/* Truncated, it is refused, not misread. */
	assert_int_equal(block_decode((struct str){z, zn - 3}, &b), -1);
	free(z);
}

/* A day file as the first store wrote it: no counts column, a B1 block. */
static void legacy_file(const char *dir, int64_t logstore, int day)
{
	static const char schema[] =
		"PRAGMA journal_mode=WAL;"
		"CREATE TABLE blocks (id INTEGER PRIMARY KEY, t_min INTEGER NOT NULL, t_max INTEGER NOT NULL,"
		" n INTEGER NOT NULL, received_s INTEGER NOT NULL, topic BLOB, source BLOB, tags BLOB,"
		" data BLOB NOT NULL);"
		"CREATE INDEX blocks_time ON blocks (t_min);"
		"CREATE TABLE packs (pack_id BLOB PRIMARY KEY) WITHOUT ROWID;";
	char path[512];
	snprintf(path, sizeof(path), "%s/%lld", dir, (long long)logstore);
	mkdir(path, 0700);
	time_t t = (time_t)day * 86400;
	struct tm tm;
	gmtime_r(&t, &tm);
	snprintf(path + strlen(path), sizeof(path) - strlen(path), "/%04d%02d%02d.db", tm.tm_year + 1900,
		 tm.tm_mon + 1, tm.tm_mday);
	sqlite3 *db;
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, schema, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_stmt *st;
	assert_int_equal(sqlite3_prepare_v2(db, "INSERT INTO blocks (t_min, t_max, n, received_s, topic,"
					    " source, tags, data) VALUES (?, ?, ?, ?, '', '', '', ?)",
					    -1, &st, NULL), SQLITE_OK);
	size_t zn;
	char *z = b1_block(&zn);
	sqlite3_bind_int(st, 1, LSFIX_T0);
	sqlite3_bind_int(st, 2, LSFIX_T0 + LSFIX_N - 1);
	sqlite3_bind_int(st, 3, LSFIX_N);
	sqlite3_bind_int64(st, 4, (int64_t)day * 86400);
	sqlite3_bind_blob(st, 5, z, (int)zn, SQLITE_TRANSIENT);
	assert_int_equal(sqlite3_step(st), SQLITE_DONE);
	sqlite3_finalize(st);
	sqlite3_close(db);
	free(z);
}

struct put_wait {
	struct ldata_put p;
	enum ldata_rc rc;
	int done;
};

static void put_done(struct ldata_put *p, enum ldata_rc rc)
{
	struct put_wait *w = (struct put_wait *)p;
	w->rc = rc;
	__atomic_store_n(&w->done, 1, __ATOMIC_SEQ_CST);
}

static int64_t histogram_total(struct ldata *d, int64_t logstore)
{
	struct query q;
	char detail[QUERY_DETAIL_MAX];
	assert_int_equal(query_parse(STR_LIT("*"), &q, detail), SLS_ERR_OK);
	struct histogram h = {LSFIX_T0, LSFIX_T0 + LSFIX_N, 0, STR_NULL, &q};
	struct histogram_result r;
	assert_int_equal(query_histogram(d, logstore, &h, &r), 0);
	json_decref(r.buckets);
	return r.count;
}

/* Files written before B2 and rollups: read (GetHistograms decodes their
 * blocks), and today's gets the counts column when the writer opens it. */
static void test_legacy_files(void **state)
{
	char dir[] = "/tmp/sagflow-test-block-XXXXXX";
	assert_non_null(mkdtemp(dir));
	int today = (int)(time(NULL) / 86400);
	legacy_file(dir, 7, today - 1);
	legacy_file(dir, 7, today);
	struct ldata *d = ldata_open(dir);
	assert_non_null(d);
	assert_int_equal(histogram_total(d, 7), 2 * LSFIX_N);
	/* A put into today's legacy file: the writer adds the column, the new
	 * block has a rollup, and the histogram counts all three blocks. */
	struct lsfix *f = xmalloc(sizeof(*f));
	lsfix_init(f);
	struct put_wait w = {.p = {.logstore = 7, .g = &f->g, .received_s = time(NULL),
				   .raw_bytes = 1, .done = put_done}};
	ldata_put(d, &w.p);
	while (!__atomic_load_n(&w.done, __ATOMIC_SEQ_CST))
		usleep(1000);
	assert_int_equal(w.rc, LDATA_STORED);
	assert_int_equal(histogram_total(d, 7), 3 * LSFIX_N);
	ldata_drop(d, 7);
	ldata_close(d);
	rmdir(dir);
	lsfix_free(f);
	free(f);
}

/* A column frame damaged on disk reads as absent and marks the block. */
static void test_b2_corrupt_column(void **state)
{
	struct lsfix *f = xmalloc(sizeof(*f));
	lsfix_init(f);
	struct block b;
	char *copy = xmemdup0(f->data.p, f->data.len);
	assert_int_equal(block_decode((struct str){f->data.p, f->data.len}, &b), 0);
	struct str last = b.frame[LSFIX_KEYS - 1];
	memset(copy + (last.p - f->data.p), 0xff, last.len); /* not a zstd frame any more */
	block_free(&b);
	assert_int_equal(block_decode((struct str){copy, f->data.len}, &b), 0);
	assert_true(str_eq(block_value(&b, 1, 0), STR_LIT("10.0.0.1")));
	assert_false(b.corrupt);
	block_load_all(&b);
	assert_true(b.corrupt);
	assert_null(block_value(&b, 1, LSFIX_KEYS - 1).p);
	block_free(&b);
	/* A frame length past the end: refused at once. */
	assert_int_equal(block_decode((struct str){copy, f->data.len - 5}, &b), -1);
	free(copy);
	lsfix_free(f);
	free(f);
}

struct seen {
	uint32_t t[LSFIX_N + 1];
	uint64_t n[LSFIX_N + 1];
	size_t k;
};

static void count_cb(uint32_t t, uint64_t n, void *arg)
{
	struct seen *s = arg;
	if (s->k <= LSFIX_N) {
		s->t[s->k] = t;
		s->n[s->k++] = n;
	}
}

static void test_rollup(void **state)
{
	struct lsfix *f = xmalloc(sizeof(*f));
	lsfix_init(f);
	/* Times LSFIX_T0 + i, one log each. */
	struct seen s = {0};
	assert_int_equal(block_counts_each((struct str){f->counts.p, f->counts.len}, LSFIX_T0,
					   count_cb, &s), 0);
	assert_int_equal(s.k, LSFIX_N);
	for (size_t i = 0; i < LSFIX_N; i++) {
		assert_int_equal(s.t[i], LSFIX_T0 + i);
		assert_int_equal(s.n[i], 1);
	}
	/* Three logs in two seconds, out of order: seconds ascending, with counts. */
	for (int i = 0; i < 3; i++)
		f->log[i].time = i == 1 ? 2000 : 1990;
	f->g.n_logs = 3;
	struct buf data = {0}, counts = {0};
	size_t to;
	uint32_t tmin, tmax;
	block_encode(&f->g, 0, &to, &data, &counts, &tmin, &tmax);
	assert_int_equal(tmin, 1990);
	assert_int_equal(tmax, 2000);
	memset(&s, 0, sizeof(s));
	assert_int_equal(block_counts_each((struct str){counts.p, counts.len}, tmin, count_cb, &s), 0);
	assert_int_equal(s.k, 2);
	assert_int_equal(s.t[0], 1990);
	assert_int_equal(s.n[0], 2);
	assert_int_equal(s.t[1], 2000);
	assert_int_equal(s.n[1], 1);
	/* Malformed: a truncated varint. */
	assert_int_equal(block_counts_each(STR_LIT("\x80"), 0, count_cb, &s), -1);
	buf_free(&data);
	buf_free(&counts);
	lsfix_free(f);
	free(f);
}

#define TEST_GROUPS 100000

static void test_groups(void **state)
{
	struct groups g;
	groups_init(&g, 2);
	char k[32];
	for (int i = 0; i < TEST_GROUPS; i++) {
		int n = snprintf(k, sizeof(k), "key-%d", i * 7919 % TEST_GROUPS);
		size_t at = groups_find(&g, (struct str){k, (size_t)n});
		assert_int_equal(at, (size_t)i); /* new keys are numbered in order */
		groups_rec(&g, at)->acc[1] = i;
		groups_has(&g, at)[1] = true;
	}
	assert_int_equal(g.n, TEST_GROUPS);
	for (int i = TEST_GROUPS - 1; i >= 0; i--) {
		int n = snprintf(k, sizeof(k), "key-%d", i * 7919 % TEST_GROUPS);
		size_t at = groups_find(&g, (struct str){k, (size_t)n});
		assert_int_equal(at, (size_t)i);
		assert_true(str_eq(groups_key(&g, at), (struct str){k, (size_t)n}));
		assert_int_equal(groups_rec(&g, at)->acc[1], i);
		assert_int_equal(groups_rec(&g, at)->acc[0], 0);
		assert_false(groups_has(&g, at)[0]);
	}
	/* The empty key and keys that differ only past 8 bytes are groups of their own. */
	size_t e = groups_find(&g, STR_LIT(""));
	assert_int_equal(groups_find(&g, STR_LIT("")), e);
	size_t a = groups_find(&g, STR_LIT("abcdefgh-1")), b = groups_find(&g, STR_LIT("abcdefgh-2"));
	assert_int_not_equal(a, b);
	assert_int_equal(g.n, TEST_GROUPS + 3);
	groups_free(&g);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_b2_roundtrip), cmocka_unit_test(test_b1_still_read),
		cmocka_unit_test(test_b2_corrupt_column), cmocka_unit_test(test_rollup),
		cmocka_unit_test(test_groups), cmocka_unit_test(test_legacy_files),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
