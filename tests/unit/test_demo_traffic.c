/* src/cli/demo_traffic.c: the demo's generated traffic and its pcap. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include <pcap/pcap.h>

#include "cli/demo_traffic.h"

#define T_MINUTE 1700000040 /* a multiple of 60: its first DEMO_BURST_S seconds burst */

static struct demo_packet a[DEMO_MAX_PACKETS], b[DEMO_MAX_PACKETS];

static size_t from(const struct demo_packet *p, size_t n, uint8_t last)
{
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		k += p[i].src[0] == 10 && p[i].src[1] == 1 && p[i].src[2] == 0 && p[i].src[3] == last;
	return k;
}

static void test_tick(void **state)
{
	size_t n = demo_traffic_tick(T_MINUTE, a, DEMO_MAX_PACKETS);
	assert_true(n > 0 && n <= DEMO_MAX_PACKETS);
	assert_int_equal(from(a, n, 99), DEMO_BURST_RATE * DEMO_TICK_S);
	for (size_t i = 0; i < n; i++) {
		assert_true(a[i].ts_us >= (int64_t)T_MINUTE * 1000000);
		assert_true(a[i].ts_us < (int64_t)(T_MINUTE + DEMO_TICK_S) * 1000000);
		if (i)
			assert_true(a[i - 1].ts_us <= a[i].ts_us);
	}
	/* The same tick is the same traffic; the middle of the minute has no burst. */
	assert_int_equal(demo_traffic_tick(T_MINUTE, b, DEMO_MAX_PACKETS), n);
	assert_memory_equal(a, b, n * sizeof(a[0]));
	size_t m = demo_traffic_tick(T_MINUTE + 30, b, DEMO_MAX_PACKETS);
	assert_int_equal(from(b, m, 99), 0);
	/* A small buffer is filled, never overrun. */
	assert_int_equal(demo_traffic_tick(T_MINUTE, b, 10), 10);
}

/* Over a whole ebb: the rate moves, stays within the buffer, and the heavy
 * talkers keep their shares. */
static void test_ebb_and_shares(void **state)
{
	size_t lo = SIZE_MAX, hi = 0, total = 0, heavy = 0;
	for (int64_t t = T_MINUTE + 9; t < T_MINUTE + 9 + DEMO_EBB_PERIOD_S; t += DEMO_TICK_S) {
		if (t % 60 < DEMO_BURST_S)
			continue;
		size_t n = demo_traffic_tick(t, a, DEMO_MAX_PACKETS);
		lo = n < lo ? n : lo;
		hi = n > hi ? n : hi;
		total += n;
		heavy += from(a, n, 10);
	}
	assert_true(hi <= DEMO_MAX_PACKETS);
	assert_true(lo * 2 < hi);
	double share = (double)heavy / (double)total;
	assert_true(share > 0.27 && share < 0.33);
}

static void test_pcap(void **state)
{
	char path[] = "/tmp/test_demo_traffic_XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	close(fd);
	size_t n = demo_traffic_tick(T_MINUTE, a, DEMO_MAX_PACKETS);
	char err[PCAP_ERRBUF_SIZE];
	assert_int_equal(demo_traffic_write(path, a, n, err, sizeof(err)), 0);
	pcap_t *p = pcap_open_offline(path, err);
	assert_non_null(p);
	assert_int_equal(pcap_datalink(p), DLT_RAW);
	struct pcap_pkthdr *h;
	const u_char *d;
	size_t i = 0;
	while (pcap_next_ex(p, &h, &d) == 1) {
		assert_true(i < n);
		assert_int_equal(h->len, a[i].ip_len);
		assert_int_equal(h->caplen, a[i].proto == 6 ? 40 : 28);
		assert_int_equal((int64_t)h->ts.tv_sec * 1000000 + h->ts.tv_usec, a[i].ts_us);
		assert_int_equal(d[0], 0x45);
		assert_int_equal(d[2] << 8 | d[3], a[i].ip_len);
		assert_int_equal(d[9], a[i].proto);
		assert_memory_equal(d + 12, a[i].src, 4);
		assert_int_equal(d[22] << 8 | d[23], a[i].dport);
		uint32_t sum = 0; /* a valid header sums to 0xffff (RFC 1071) */
		for (int k = 0; k < 20; k += 2)
			sum += (uint32_t)(d[k] << 8 | d[k + 1]);
		while (sum >> 16)
			sum = (sum & 0xffff) + (sum >> 16);
		assert_int_equal(sum, 0xffff);
		i++;
	}
	assert_int_equal(i, n);
	pcap_close(p);
	unlink(path);
	assert_int_equal(demo_traffic_write("/nonexistent-dir/x.pcap", a, n, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "/nonexistent-dir/x.pcap"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tick),
		cmocka_unit_test(test_ebb_and_shares),
		cmocka_unit_test(test_pcap),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
