/* The flow table's aging decisions (spec §2) with time passed in. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "meter/flowtable.h"

#define S 1000000LL /* one second in µs */
#define OUT_MAX 256

static struct flow_rec out[OUT_MAX];
static size_t nout;

static void capture(void *ctx, const struct flow_rec *r)
{
	assert_true(nout < OUT_MAX);
	out[nout++] = *r;
}

static struct flowtable *table(uint32_t max_flows)
{
	struct flowtable_config c = {60 * S, 10 * S, max_flows};
	nout = 0;
	return flowtable_new(&c, capture, NULL);
}

static struct flow_key key(uint8_t host, uint16_t dport)
{
	struct flow_key k;
	memset(&k, 0, sizeof(k));
	k.af = 4;
	k.proto = 17;
	k.src[0] = 10;
	k.src[3] = host;
	k.dst[0] = 192;
	k.sport = 1000;
	k.dport = dport;
	return k;
}

static void test_idle_closes_after_gap(void **state)
{
	struct flowtable *ft = table(1024);
	struct flow_key k = key(1, 53);
	flowtable_packet(ft, 0, &k, 0, 100);
	flowtable_packet(ft, 5 * S, &k, 0, 100);
	/* Exactly InactiveAging after the last packet is not yet "more than". */
	flowtable_packet(ft, 15 * S, &k, 0, 100);
	assert_int_equal(nout, 0);
	flowtable_packet(ft, 25 * S + 1, &k, 0, 50);
	assert_int_equal(nout, 1);
	assert_int_equal(out[0].end, FLOW_END_IDLE);
	assert_int_equal(out[0].packets, 3);
	assert_int_equal(out[0].bytes, 300);
	assert_true(out[0].first_us == 0 && out[0].last_us == 15 * S);
	flowtable_flush(ft, FLOW_END_FORCED);
	assert_int_equal(nout, 2);
	assert_int_equal(out[1].packets, 1);
	assert_int_equal(out[1].bytes, 50);
	assert_int_equal(out[1].end, FLOW_END_FORCED);
	flowtable_free(ft);
}

static void test_active_splits_long_flows(void **state)
{
	struct flowtable *ft = table(1024);
	struct flow_key k = key(2, 80);
	for (int t = 0; t <= 130; t++)
		flowtable_packet(ft, t * S, &k, 0x10, 40);
	/* Records at [0,59], [60,119]; the third is still open. */
	assert_int_equal(nout, 2);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(out[i].end, FLOW_END_ACTIVE);
		assert_int_equal(out[i].packets, 60);
		assert_true(out[i].first_us == i * 60 * S);
		assert_true(out[i].last_us == (i * 60 + 59) * S);
		assert_int_equal(out[i].tcp_flags, 0x10);
	}
	flowtable_flush(ft, FLOW_END_FORCED);
	assert_int_equal(out[2].packets, 11);
	flowtable_free(ft);
}

static void test_timers_fire_without_packets(void **state)
{
	struct flowtable *ft = table(1024);
	struct flow_key a = key(3, 1), b = key(4, 2);
	flowtable_packet(ft, 0, &a, 0, 10);
	flowtable_packet(ft, 8 * S, &b, 0, 10);
	flowtable_expire(ft, 10 * S);
	assert_int_equal(nout, 0);
	flowtable_expire(ft, 10 * S + 1);
	assert_int_equal(nout, 1);
	assert_memory_equal(&out[0].key, &a, sizeof(a));
	flowtable_expire(ft, 18 * S + 1);
	assert_int_equal(nout, 2);
	assert_memory_equal(&out[1].key, &b, sizeof(b));
	/* Active aging by timer: a flow busy every 5 s closes at first + 60 s. */
	struct flow_key c = key(5, 3);
	for (int t = 100; t < 160; t += 5)
		flowtable_packet(ft, t * S, &c, 0, 1);
	flowtable_expire(ft, 160 * S - 1);
	assert_int_equal(nout, 2);
	flowtable_expire(ft, 160 * S);
	assert_int_equal(nout, 3);
	assert_int_equal(out[2].end, FLOW_END_ACTIVE);
	assert_int_equal(out[2].packets, 12);
	struct flowtable_stats st;
	flowtable_stats(ft, &st);
	assert_int_equal(st.open, 0);
	assert_int_equal(st.closed[FLOW_END_IDLE], 2);
	flowtable_free(ft);
}

static void test_unidirectional_keys(void **state)
{
	struct flowtable *ft = table(1024);
	struct flow_key ab = key(6, 7), ba = ab;
	memcpy(ba.src, ab.dst, 16);
	memcpy(ba.dst, ab.src, 16);
	ba.sport = ab.dport;
	ba.dport = ab.sport;
	flowtable_packet(ft, 0, &ab, 0, 1);
	flowtable_packet(ft, 1, &ba, 0, 1);
	struct flow_key tos = ab;
	tos.tos = 0x28;
	flowtable_packet(ft, 2, &tos, 0, 1);
	flowtable_flush(ft, FLOW_END_FORCED);
	assert_int_equal(nout, 3);
	flowtable_free(ft);
}

static void test_pressure_evicts_least_recent(void **state)
{
	struct flowtable *ft = table(FLOWTABLE_MIN_FLOWS);
	for (int i = 0; i < FLOWTABLE_MIN_FLOWS; i++) {
		struct flow_key k = key((uint8_t)i, 9);
		flowtable_packet(ft, i, &k, 0, 1);
	}
	struct flow_key k0 = key(0, 9), kn = key(200, 9), k1 = key(1, 9);
	flowtable_packet(ft, 100, &k0, 0, 1); /* host 0 is now the most recent */
	flowtable_packet(ft, 101, &kn, 0, 1);
	assert_int_equal(nout, 1);
	assert_int_equal(out[0].end, FLOW_END_RESOURCES);
	assert_memory_equal(&out[0].key, &k1, sizeof(k1));
	struct flowtable_stats st;
	flowtable_stats(ft, &st);
	assert_int_equal(st.open, FLOWTABLE_MIN_FLOWS);
	assert_int_equal(st.peak, FLOWTABLE_MIN_FLOWS);
	flowtable_flush(ft, FLOW_END_FORCED);
	uint64_t pk = 0;
	for (size_t i = 0; i < nout; i++)
		pk += out[i].packets;
	assert_int_equal(pk, FLOWTABLE_MIN_FLOWS + 2); /* nothing dropped */
	flowtable_free(ft);
}

static void test_counter_overflow_closes_early(void **state)
{
	struct flowtable *ft = table(1024);
	struct flow_key k = key(8, 8);
	const uint32_t big = 65535;
	const uint64_t n = (UINT32_MAX / big) + 2;
	for (uint64_t i = 0; i < n; i++)
		flowtable_packet(ft, (int64_t)i, &k, 0, big);
	assert_int_equal(nout, 1);
	assert_int_equal(out[0].end, FLOW_END_COUNTER);
	assert_true(out[0].bytes <= UINT32_MAX);
	assert_true(out[0].bytes + big > UINT32_MAX);
	flowtable_flush(ft, FLOW_END_FORCED);
	assert_true(out[0].packets + out[1].packets == n);
	flowtable_free(ft);
}

static void test_clock_never_runs_back(void **state)
{
	struct flowtable *ft = table(1024);
	struct flow_key k = key(9, 9);
	flowtable_packet(ft, 50 * S, &k, 0, 1);
	flowtable_packet(ft, 40 * S, &k, 0, 1); /* reordered capture */
	flowtable_flush(ft, FLOW_END_FORCED);
	assert_int_equal(nout, 1);
	assert_true(out[0].first_us == 50 * S && out[0].last_us == 50 * S);
	assert_int_equal(out[0].packets, 2);
	assert_true(flowtable_entry_size() <= 96);
	flowtable_free(ft);
	flowtable_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_idle_closes_after_gap),
		cmocka_unit_test(test_active_splits_long_flows),
		cmocka_unit_test(test_timers_fire_without_packets),
		cmocka_unit_test(test_unidirectional_keys),
		cmocka_unit_test(test_pressure_evicts_least_recent),
		cmocka_unit_test(test_counter_overflow_closes_early),
		cmocka_unit_test(test_clock_never_runs_back),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
