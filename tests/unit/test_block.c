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

/* A block as the first store wrote it (B1: one zstd frame of everything). */
static void test_b1_still_read(void **state)
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
	size_t zn = ZSTD_compress(z, cap, p.p, p.len, 1);
	struct block b;
	assert_int_equal(block_decode((struct str){z, zn}, &b), 0);
	check_fixture(&b);
	block_free(&b);
	/* Truncated, it is refused, not misread. */
	assert_int_equal(block_decode((struct str){z, zn - 3}, &b), -1);
	free(z);
	buf_free(&p);
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
		cmocka_unit_test(test_groups),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
