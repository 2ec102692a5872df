#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <cmocka.h>

#include <sys/wait.h>
#include <unistd.h>

#include "core/ids.h"
#include "core/num.h"
#include "core/ratelimit.h"
#include "core/str.h"
#include "core/timeutil.h"

static void test_num_parse(void **state)
{
	int64_t v = 0;
	assert_int_equal(num_parse_i64(STR_LIT("300"), 60, 6000, &v), 0);
	assert_int_equal(v, 300);
	assert_int_equal(num_parse_i64(STR_LIT("-5"), -10, 10, &v), 0);
	assert_int_equal(v, -5);
	assert_int_equal(num_parse_i64(STR_LIT("59"), 60, 6000, &v), -1);
	assert_int_equal(num_parse_i64(STR_LIT(""), 0, 10, &v), -1);
	assert_int_equal(num_parse_i64(STR_LIT("-"), -10, 10, &v), -1);
	assert_int_equal(num_parse_i64(STR_LIT("+1"), 0, 10, &v), -1);
	assert_int_equal(num_parse_i64(STR_LIT(" 1"), 0, 10, &v), -1);
	assert_int_equal(num_parse_i64(STR_LIT("1x"), 0, 10, &v), -1);
	assert_int_equal(num_parse_i64(STR_LIT("9223372036854775807"), INT64_MIN, INT64_MAX, &v), 0);
	assert_true(v == INT64_MAX);
	assert_int_equal(num_parse_i64(STR_LIT("-9223372036854775808"), INT64_MIN, INT64_MAX, &v), 0);
	assert_true(v == INT64_MIN);
	assert_int_equal(num_parse_i64(STR_LIT("9223372036854775808"), INT64_MIN, INT64_MAX, &v), -1);
	assert_int_equal(num_parse_i64(STR_LIT("99999999999999999999"), INT64_MIN, INT64_MAX, &v), -1);
}

static void test_version_cmp(void **state)
{
	bool ok;
	assert_int_equal(num_version_cmp(STR_LIT("1.7.0"), STR_LIT("1.7.0"), &ok), 0);
	assert_true(ok);
	assert_int_equal(num_version_cmp(STR_LIT("1.6.9"), STR_LIT("1.7.0"), &ok), -1);
	assert_int_equal(num_version_cmp(STR_LIT("2.3.0.0"), STR_LIT("1.7.0"), &ok), 1);
	assert_int_equal(num_version_cmp(STR_LIT("1.7"), STR_LIT("1.7.0"), &ok), 0);
	assert_int_equal(num_version_cmp(STR_LIT("1.10.0"), STR_LIT("1.9.9"), &ok), 1);
	num_version_cmp(STR_LIT("1..0"), STR_LIT("1.7.0"), &ok);
	assert_false(ok);
	num_version_cmp(STR_LIT(""), STR_LIT("1.7.0"), &ok);
	assert_false(ok);
	num_version_cmp(STR_LIT("v1.7"), STR_LIT("1.7.0"), &ok);
	assert_false(ok);
}

static void test_iso8601(void **state)
{
	int64_t t;
	char out[21];
	assert_int_equal(time_parse_iso8601(STR_LIT("2024-01-01T12:00:00Z"), &t), 0);
	assert_true(t == 1704110400);
	time_format_iso8601(t, out);
	assert_string_equal(out, "2024-01-01T12:00:00Z");
	assert_int_equal(time_parse_iso8601(STR_LIT("2024-02-29T00:00:00Z"), &t), 0);
	assert_true(t == 1709164800);
	assert_int_equal(time_parse_iso8601(STR_LIT("2024-01-01T12:00:00"), &t), -1);
	assert_int_equal(time_parse_iso8601(STR_LIT("2024-13-01T12:00:00Z"), &t), -1);
	assert_int_equal(time_parse_iso8601(STR_LIT("2024-01-01 12:00:00Z"), &t), -1);
	assert_int_equal(time_parse_iso8601(STR_LIT("20x4-01-01T12:00:00Z"), &t), -1);
}

static void test_ids(void **state)
{
	char id[32], uuid[IDS_UUID_LEN + 1];
	ids_resource(id, sizeof(id), "fl-");
	assert_int_equal(strlen(id), 3 + IDS_RESOURCE_SUFFIX);
	for (size_t i = 3; i < strlen(id); i++)
		assert_true((id[i] >= 'a' && id[i] <= 'z') || (id[i] >= '0' && id[i] <= '9'));
	ids_uuid_upper(uuid);
	assert_int_equal(strlen(uuid), 36);
	assert_int_equal(uuid[8], '-');
	assert_int_equal(uuid[14], '4');
	for (size_t i = 0; i < 36; i++)
		assert_false(uuid[i] >= 'a' && uuid[i] <= 'z');
}

/* The per-thread pool must not make a forked child repeat its parent's bytes,
 * nor hand out the same bytes twice. */
static void test_random_pool_fork(void **state)
{
	unsigned char a[16], b[16], c[16];
	int fd[2];
	ids_random(a, sizeof(a)); /* fills this thread's pool */
	assert_int_equal(pipe(fd), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		ids_random(c, sizeof(c));
		_exit(write(fd[1], c, sizeof(c)) == (ssize_t)sizeof(c) ? 0 : 1);
	}
	ids_random(b, sizeof(b));
	int st = 0;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_int_equal(WEXITSTATUS(st), 0);
	assert_int_equal(read(fd[0], c, sizeof(c)), (ssize_t)sizeof(c));
	close(fd[0]);
	close(fd[1]);
	assert_memory_not_equal(a, b, sizeof(a));
	assert_memory_not_equal(b, c, sizeof(b));
	assert_memory_not_equal(a, c, sizeof(a));
	/* Large requests bypass the pool and still work. */
	unsigned char big[8192] = {0}, zero[8192] = {0};
	ids_random(big, sizeof(big));
	assert_memory_not_equal(big, zero, sizeof(big));
}

static void test_buf(void **state)
{
	struct buf b = {0};
	for (int i = 0; i < 1000; i++)
		buf_printf(&b, "%d,", i);
	assert_true(b.len > 1000);
	assert_memory_equal(b.p, "0,1,2,", 6);
	assert_true(str_caseeq(STR_LIT("JsOn"), "json"));
	assert_false(str_caseeq(STR_LIT("jso"), "json"));
	buf_free(&b);
	buf_free(&b);
}

/* Token buckets: a burst, then RATE a second; callers apart; idle ones forgotten
 * without changing an answer; a table of active callers refuses a new one. */
/* str_put_u64 writes what printf writes: every digit count, both ends of it,
 * and a spread in between. */
static void test_put_u64(void **state)
{
	(void)state;
	uint64_t v[64 * 3 + 2];
	size_t n = 0;
	for (uint64_t p = 1; n < 60; p *= 10) {
		v[n++] = p - 1;
		v[n++] = p;
		v[n++] = p + 7;
		if (p > UINT64_MAX / 10)
			break;
	}
	v[n++] = UINT64_MAX;
	v[n++] = 0x123456789abcdefULL;
	for (size_t i = 0; i < n; i++) {
		char want[32], got[STR_U64_MAX + 1];
		int len = snprintf(want, sizeof(want), "%llu", (unsigned long long)v[i]);
		char *end = str_put_u64(got, v[i]);
		assert_int_equal(end - got, len);
		*end = '\0';
		assert_string_equal(got, want);
	}
}

static void test_ratelimit(void **state)
{
	/* 64 entries a shard: "a" and "b" fit wherever their salted hashes put them
	 * (with one entry a shard they share it 1 time in 16). */
	struct ratelimit *rl = ratelimit_new((struct ratelimit_rate){10, 3}, 64 * RATELIMIT_SHARDS);
	int64_t t = 1000000;
	for (int i = 0; i < 3; i++)
		assert_int_equal(ratelimit_take(rl, STR_LIT("a"), t), RATELIMIT_OK);
	assert_int_equal(ratelimit_take(rl, STR_LIT("a"), t), RATELIMIT_THROTTLED);
	assert_int_equal(ratelimit_take(rl, STR_LIT("b"), t), RATELIMIT_OK); /* b is not a */
	assert_int_equal(ratelimit_take(rl, STR_LIT("a"), t + 99999), RATELIMIT_THROTTLED);
	assert_int_equal(ratelimit_take(rl, STR_LIT("a"), t + 100000), RATELIMIT_OK); /* 1/10 s */
	assert_int_equal(ratelimit_take(rl, STR_LIT("a"), t + 100000), RATELIMIT_THROTTLED);
	/* Years later the bucket holds the burst, not more (no overflow). */
	int64_t later = t + 86400LL * 365 * 1000000;
	for (int i = 0; i < 3; i++)
		assert_int_equal(ratelimit_take(rl, STR_LIT("a"), later), RATELIMIT_OK);
	assert_int_equal(ratelimit_take(rl, STR_LIT("a"), later), RATELIMIT_THROTTLED);
	assert_int_equal(ratelimit_capacity(rl), 64 * RATELIMIT_SHARDS);
	ratelimit_free(rl);

	/* One entry a shard: many callers at once fill some shard, and a new caller
	 * there is refused; once the others' buckets refilled it is admitted. */
	rl = ratelimit_new((struct ratelimit_rate){1, 1}, RATELIMIT_MIN_CALLERS);
	char name[16];
	int full = 0;
	for (int i = 0; i < 200; i++) {
		snprintf(name, sizeof(name), "c%d", i);
		full += ratelimit_take(rl, str_c(name), t) == RATELIMIT_FULL;
	}
	assert_true(full >= 200 - RATELIMIT_MIN_CALLERS);
	assert_int_equal(ratelimit_active(rl, t), RATELIMIT_MIN_CALLERS);
	assert_int_equal(ratelimit_take(rl, STR_LIT("late"), t + 999999), RATELIMIT_FULL);
	assert_int_equal(ratelimit_take(rl, STR_LIT("late"), t + 1000000), RATELIMIT_OK);
	ratelimit_free(rl);
	ratelimit_free(NULL);

	struct ratelimit_rate r;
	assert_int_equal(ratelimit_rate_parse(STR_LIT("100"), &r), 0);
	assert_true(r.rate == 100 && r.burst == 200);
	assert_int_equal(ratelimit_rate_parse(STR_LIT("5:7"), &r), 0);
	assert_true(r.rate == 5 && r.burst == 7);
	const char *bad[] = {"", "0", "x", "5:", ":5", "5:0", "5:7:9", "-1", "1000001", "5:99999999999"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(ratelimit_rate_parse(str_c(bad[i]), &r), -1);
}

/* time_deadline carries microseconds over into seconds on either clock. */
static void test_deadline(void **state)
{
	const clockid_t clocks[] = {CLOCK_REALTIME, CLOCK_MONOTONIC};
	const int64_t us[] = {0, 1, 999999, 1000000, 1999999, 3600000001LL};
	for (size_t c = 0; c < 2; c++)
		for (size_t i = 0; i < sizeof(us) / sizeof(us[0]); i++) {
			struct timespec now;
			clock_gettime(clocks[c], &now);
			struct timespec t = time_deadline(clocks[c], us[i]);
			assert_true(t.tv_nsec >= 0 && t.tv_nsec < 1000000000L);
			int64_t ahead = ((int64_t)t.tv_sec - now.tv_sec) * 1000000 +
					(t.tv_nsec - now.tv_nsec) / 1000;
			assert_true(ahead >= us[i] - 1 && ahead <= us[i] + 100000);
		}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_num_parse), cmocka_unit_test(test_version_cmp),
		cmocka_unit_test(test_iso8601),   cmocka_unit_test(test_ids),
		cmocka_unit_test(test_buf),	  cmocka_unit_test(test_deadline),
		cmocka_unit_test(test_put_u64), cmocka_unit_test(test_ratelimit), cmocka_unit_test(test_random_pool_fork),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
