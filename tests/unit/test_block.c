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
	assert_int_equal(lsfix_put(d, 7, &f->g, time(NULL), ""), LDATA_STORED);
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

/* The logs of "key=value" strings (NULL-ended, at most 8) as a packed
 * LogGroup in buf (cap bytes); its length. */
#define ENC_MAXC 8
static size_t pack_kv(const char *const (*kv)[ENC_MAXC + 1], size_t nlogs, uint8_t *buf, size_t cap)
{
	Sls__LogGroup g = SLS__LOG_GROUP__INIT;
	static Sls__Log l[32], *lp[32];
	static Sls__Log__Content c[32][ENC_MAXC], *cp[32][ENC_MAXC];
	assert_true(nlogs <= 32);
	for (size_t i = 0; i < nlogs; i++) {
		sls__log__init(&l[i]);
		l[i].time = 1700000000 + (uint32_t)(i % 3);
		l[i].contents = cp[i];
		for (size_t j = 0; kv[i][j]; j++) {
			const char *eq = strchr(kv[i][j], '=');
			sls__log__content__init(&c[i][j]);
			c[i][j].key = (ProtobufCBinaryData){(size_t)(eq - kv[i][j]), (uint8_t *)(uintptr_t)kv[i][j]};
			c[i][j].value = (ProtobufCBinaryData){strlen(eq + 1), (uint8_t *)(uintptr_t)(eq + 1)};
			cp[i][j] = &c[i][j];
			l[i].n_contents = j + 1;
		}
		lp[i] = &l[i];
	}
	g.n_logs = nlogs;
	g.logs = lp;
	size_t n = sls__log_group__get_packed_size(&g);
	assert_true(n <= cap);
	return sls__log_group__pack(&g, buf);
}

struct enc_check {
	const Sls__LogGroup *g;
	size_t from, blocks;
};

/* Log i of g's value of key k: its last, or absent (.p NULL). */
static struct str log_value(const Sls__Log *l, struct str k)
{
	struct str v = STR_NULL;
	for (size_t c = 0; c < l->n_contents; c++)
		if (str_eq(sls_pb_str(l->contents[c]->key), k))
			v = sls_pb_str(l->contents[c]->value);
	return v;
}

/* A streamed block is block_encode's of the same logs, byte for byte, and
 * (the two share block_enc_add) decodes to their values, key by key. */
static void enc_same_block(struct block_out *b, void *arg)
{
	struct enc_check *c = arg;
	struct buf out = {0}, counts = {0};
	uint32_t tmin, tmax;
	size_t to;
	struct block d;
	assert_int_equal(block_decode((struct str){b->data.p, b->data.len}, &d), 0);
	assert_int_equal(d.n, b->n);
	for (size_t i = 0; i < d.n; i++)
		for (size_t k = 0; k < d.nkeys; k++) {
			struct str want = log_value(c->g->logs[c->from + i], d.keys[k]);
			struct str got = block_value(&d, i, k);
			assert_int_equal(!got.p, !want.p);
			assert_true(!want.p || str_eq(got, want));
		}
	block_free(&d);
	block_encode(c->g, c->from, &to, &out, &counts, &tmin, &tmax);
	assert_int_equal(to - c->from, b->n);
	assert_int_equal(out.len, b->data.len);
	assert_memory_equal(out.p, b->data.p, out.len);
	assert_int_equal(counts.len, b->counts.len);
	assert_memory_equal(counts.p, b->counts.p, counts.len);
	c->from = to;
	c->blocks++;
	buf_free(&out);
	buf_free(&counts);
	buf_free(&b->data);
	buf_free(&b->counts);
}

/* block_encode_logs passes block_enc_add the keys it knows unchanged from
 * the Log before (sls_logs_same, both Logs stamped as they were) and writes
 * a Log of the previous one's keys straight into their columns: the blocks
 * stay those of block_encode over the stamped group, for Logs alike, Logs
 * that change a value, swap two keys, lack a key, repeat one (the last value
 * wins), bring a new key, carry a wrong identity (rebuilt: the memo must not
 * keep it as it was) twice in a row and then the right one. */
static void test_encode_logs_known(void **state)
{
	(void)state;
	const char *const kv[][ENC_MAXC + 1] = {
	    {"Instance_id=sag-1", "snid=SN1", "ali-uid=7", "a=1", "b=2", "c=3"},
	    {"Instance_id=sag-1", "snid=SN1", "ali-uid=7", "a=1", "b=2", "c=3"},
	    {"Instance_id=sag-1", "snid=SN1", "ali-uid=7", "a=1", "b=9", "c=3"},
	    {"Instance_id=sag-1", "snid=SN1", "ali-uid=7", "b=2", "a=1", "c=3"},
	    {"Instance_id=sag-1", "snid=SN1", "ali-uid=7", "b=2", "a=1", "c=3"},
	    {"Instance_id=sag-1", "snid=SN1", "ali-uid=7", "a=1", "c=3"},
	    {"Instance_id=sag-1", "snid=SN1", "ali-uid=7", "a=1", "c=3"},
	    {"Instance_id=sag-1", "snid=SN1", "ali-uid=7", "a=1", "a=5", "c=3"},
	    {"Instance_id=sag-1", "snid=SN1", "ali-uid=7", "a=1", "a=5", "c=3"},
	    {"Instance_id=sag-1", "snid=SN1", "ali-uid=7", "a=1", "b=2", "c=3", "d=4"},
	    {"Instance_id=sag-1", "snid=SN1", "ali-uid=7", "a=1", "b=2", "c=3", "d=4"},
	    {"Instance_id=sag-1", "snid=EVIL", "ali-uid=7", "a=1", "b=2", "c=3", "d=4"},
	    {"Instance_id=sag-1", "snid=EVIL", "ali-uid=7", "a=1", "b=2", "c=3", "d=4"},
	    {"Instance_id=sag-1", "snid=SN1", "ali-uid=7", "a=1", "b=2", "c=3", "d=4"},
	    {"Instance_id=sag-1", "snid=SN1", "ali-uid=7", "a=1", "b=2", "c=3", "d=4"},
	};
	enum { N = sizeof(kv) / sizeof(kv[0]) };
	const struct sls_field f[] = {{STR_LIT("Instance_id"), STR_LIT("sag-1")},
				      {STR_LIT("snid"), STR_LIT("SN1")},
				      {STR_LIT("ali-uid"), STR_LIT("7")}};
	static uint8_t buf[8192];
	size_t n = pack_kv(kv, N, buf, sizeof(buf));
	struct str raw = {(const char *)buf, n};
	for (size_t nf = 0; nf <= 3; nf += 3) {
		Sls__LogGroup *g;
		struct sls_logs *s;
		const char *detail;
		assert_int_equal(sls_loggroup_decode(raw, &g, &detail), SLS_ERR_OK);
		if (nf)
			sls_loggroup_stamp(g, f, nf);
		assert_int_equal(sls_logs_open(raw, &s, &detail), SLS_ERR_OK);
		struct enc_check c = {g, 0, 0};
		assert_int_equal(block_encode_logs(s, f, nf, enc_same_block, &c, &detail), SLS_ERR_OK);
		assert_int_equal(c.from, N);
		assert_int_equal(c.blocks, 1);
		sls_logs_free(s);
		sls_loggroup_free(g);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_b2_roundtrip), cmocka_unit_test(test_b1_still_read),
		cmocka_unit_test(test_b2_corrupt_column), cmocka_unit_test(test_rollup),
		cmocka_unit_test(test_groups), cmocka_unit_test(test_legacy_files),
		cmocka_unit_test(test_encode_logs_known),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
