#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <cmocka.h>

#include "store/nonce.h"

#define T0 1700000000
#define WINDOW 900

static void test_replay(void **state)
{
	struct nonce_cache *c = nonce_new(0, 0);
	assert_int_equal(nonce_check(c, STR_LIT("ak1"), STR_LIT("n1"), T0, T0 + WINDOW), NONCE_FRESH);
	assert_int_equal(nonce_check(c, STR_LIT("ak1"), STR_LIT("n1"), T0 + 1, T0 + WINDOW), NONCE_USED);
	/* The same nonce under another key is a different pair. */
	assert_int_equal(nonce_check(c, STR_LIT("ak2"), STR_LIT("n1"), T0, T0 + WINDOW), NONCE_FRESH);
	/* Concatenation cannot collide two pairs. */
	assert_int_equal(nonce_check(c, STR_LIT("ak"), STR_LIT("1n1"), T0, T0 + WINDOW), NONCE_FRESH);
	/* After expiry the pair may be used again (its timestamp would fail anyway). */
	assert_int_equal(nonce_check(c, STR_LIT("ak1"), STR_LIT("n1"), T0 + WINDOW, T0 + 2 * WINDOW),
			 NONCE_FRESH);
	assert_int_equal(nonce_check(c, STR_LIT("ak1"), STR_LIT("n1"), T0 + WINDOW + 1,
				     T0 + 2 * WINDOW), NONCE_USED);
	/* Long keys take the streaming path and still match themselves only. */
	char longnonce[600];
	memset(longnonce, 'n', sizeof(longnonce));
	struct str ln = {longnonce, sizeof(longnonce)};
	assert_int_equal(nonce_check(c, STR_LIT("ak1"), ln, T0, T0 + WINDOW), NONCE_FRESH);
	assert_int_equal(nonce_check(c, STR_LIT("ak1"), ln, T0, T0 + WINDOW), NONCE_USED);
	ln.len--;
	assert_int_equal(nonce_check(c, STR_LIT("ak1"), ln, T0, T0 + WINDOW), NONCE_FRESH);
	/* Nonsense times are refused, not stored. */
	assert_int_equal(nonce_check(c, STR_LIT("ak1"), STR_LIT("n2"), T0, T0), NONCE_FULL);
	nonce_free(c);
	nonce_free(NULL);
}

static void test_bounded(void **state)
{
	/* A bound of 256 entries: one key's partition grows 64, 128, 256 and then
	 * refuses (fails closed); once they expire the space is reused. */
	struct nonce_cache *c = nonce_new(256, 0);
	int fresh = 0, full = 0;
	char n[32];
	for (int i = 0; i < 2000; i++) {
		snprintf(n, sizeof(n), "n%d", i);
		enum nonce_result r = nonce_check(c, STR_LIT("ak"), str_c(n), T0, T0 + WINDOW);
		fresh += r == NONCE_FRESH;
		full += r == NONCE_FULL;
	}
	assert_int_equal(fresh, 256);
	assert_int_equal(full, 2000 - 256);
	int first = -1;
	for (int i = 0; i < 2000; i++) {
		snprintf(n, sizeof(n), "m%d", i);
		enum nonce_result r = nonce_check(c, STR_LIT("ak"), str_c(n), T0 + WINDOW, T0 + 2 * WINDOW);
		assert_int_not_equal(r, NONCE_USED);
		if (r == NONCE_FRESH && first < 0)
			first = i;
	}
	/* A nonce stored after the ring wrapped around is still detected. */
	assert_true(first >= 0);
	snprintf(n, sizeof(n), "m%d", first);
	assert_int_equal(nonce_check(c, STR_LIT("ak"), str_c(n), T0 + WINDOW + 5, T0 + 3 * WINDOW),
			 NONCE_USED);
	nonce_free(c);
}

#define THREADS 4
#define PER_THREAD 5000

struct worker {
	struct nonce_cache *c;
	int fresh;
};

static void *work(void *arg)
{
	struct worker *w = arg;
	char n[32];
	/* Every thread tries the same nonces: each must be accepted exactly once. */
	for (int i = 0; i < PER_THREAD; i++) {
		snprintf(n, sizeof(n), "%d", i);
		w->fresh += nonce_check(w->c, STR_LIT("ak"), str_c(n), T0, T0 + WINDOW) == NONCE_FRESH;
	}
	return NULL;
}

static void test_threads(void **state)
{
	struct nonce_cache *c = nonce_new(0, 0);
	pthread_t t[THREADS];
	struct worker w[THREADS];
	for (int i = 0; i < THREADS; i++) {
		w[i] = (struct worker){c, 0};
		pthread_create(&t[i], NULL, work, &w[i]);
	}
	int total = 0;
	for (int i = 0; i < THREADS; i++) {
		pthread_join(t[i], NULL);
		total += w[i].fresh;
	}
	assert_int_equal(total, PER_THREAD);
	nonce_free(c);
}

/* What the metrics show: live entries (expired ones dropped first) and capacity. */
static void test_live_count(void **state)
{
	struct nonce_cache *c = nonce_new(NONCE_MIN_ENTRIES, 0);
	assert_int_equal(nonce_capacity(c), NONCE_MIN_ENTRIES);
	assert_int_equal(nonce_live(c, T0), 0);
	char n[16];
	for (int i = 0; i < 10; i++) {
		snprintf(n, sizeof(n), "n%d", i);
		assert_int_equal(nonce_check(c, STR_LIT("ak"), str_c(n), T0, T0 + (i < 4 ? 10 : WINDOW)),
				 NONCE_FRESH);
	}
	assert_int_equal(nonce_check(c, STR_LIT("ak"), STR_LIT("n0"), T0, T0 + WINDOW), NONCE_USED);
	assert_int_equal(nonce_live(c, T0), 10);
	assert_int_equal(nonce_live(c, T0 + 10), 6); /* the four short-lived ones expired */
	assert_int_equal(nonce_live(c, T0 + WINDOW), 0);
	nonce_free(c);
}

/* A key's partition holds its quota and no more; another key is untouched by
 * it; the whole bound refuses a new partition only when spent; idle partitions
 * give their room back. */
static void test_partitions(void **state)
{
	struct nonce_cache *c = nonce_new(NONCE_MIN_ENTRIES, 100);
	char n[32];
	int fresh = 0;
	for (int i = 0; i < 300; i++) {
		snprintf(n, sizeof(n), "n%d", i);
		fresh += nonce_check(c, STR_LIT("noisy"), str_c(n), T0, T0 + WINDOW) == NONCE_FRESH;
	}
	assert_int_equal(fresh, 100);
	assert_int_equal(nonce_check(c, STR_LIT("quiet"), STR_LIT("n0"), T0, T0 + WINDOW), NONCE_FRESH);
	assert_int_equal(nonce_check(c, STR_LIT("quiet"), STR_LIT("n0"), T0, T0 + WINDOW), NONCE_USED);
	assert_int_equal(nonce_check(c, STR_LIT("noisy"), STR_LIT("n5"), T0, T0 + WINDOW), NONCE_USED);
	/* Keys of 128 entries each (100 used): the 1024-entry bound holds 8. */
	int keys_ok = 0;
	for (int k = 0; k < 20; k++) {
		char key[16];
		snprintf(key, sizeof(key), "k%d", k);
		int f = 0;
		for (int i = 0; i < 100; i++) {
			snprintf(n, sizeof(n), "n%d", i);
			f += nonce_check(c, str_c(key), str_c(n), T0, T0 + 10) == NONCE_FRESH;
		}
		keys_ok += f == 100;
	}
	assert_true(keys_ok >= 4 && keys_ok < 20);
	assert_true(nonce_live(c, T0) >= 101 + 100 * (uint64_t)keys_ok);
	/* The k* nonces expire; their partitions go and a new key fits again. */
	assert_int_equal(nonce_live(c, T0 + 10), 101);
	for (int i = 0; i < 100; i++) {
		snprintf(n, sizeof(n), "n%d", i);
		assert_int_equal(nonce_check(c, STR_LIT("late"), str_c(n), T0 + 10, T0 + WINDOW),
				 NONCE_FRESH);
	}
	assert_int_equal(nonce_per_key(100, 300), 100 * 1801 + 300);
	nonce_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_replay),
		cmocka_unit_test(test_bounded),
		cmocka_unit_test(test_threads),
		cmocka_unit_test(test_live_count),
		cmocka_unit_test(test_partitions),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
