/* The NetFlow/IPFIX exporter's state: sequence numbers of spec §3 for each
 * version, templates before first use and refreshed, batching and the
 * maximum delay, send errors counted. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "export/exporter.h"
#include "export/ipfix.h"
#include "export_fixture.h"

#define IPFIX_PROCESS_DOMAIN_FOR_TEST IPFIX_PROCESS_DOMAIN

#define SENT_MAX 64

struct sent {
	uint8_t p[SENT_MAX][EXPORT_MAX_DATAGRAM];
	size_t len[SENT_MAX], n;
	int fail;
};

static int capture_send(void *ctx, const uint8_t *p, size_t len)
{
	struct sent *s = ctx;
	assert_true(s->n < SENT_MAX);
	assert_true(len <= EXPORT_MAX_DATAGRAM);
	memcpy(s->p[s->n], p, len);
	s->len[s->n++] = len;
	return s->fail ? -1 : 0;
}

static uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint16_t rd16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static void feed(struct exporter *ex, size_t n, int v6_every)
{
	for (size_t i = 0; i < n; i++) {
		struct flow_rec r = v6_every && i % v6_every == 0 ? fixture_v6() : fixture_v4();
		if (r.key.af == 6)
			r.packets = 7;
		exporter_record(ex, &r);
	}
}

static void test_v5_sequence_counts_flows(void **state)
{
	static struct sent s;
	memset(&s, 0, sizeof(s));
	struct netflow_config c = {.version = 5, .domain = 1, .send = capture_send, .send_ctx = &s};
	struct exporter *ex = netflow_exporter_new(&c);
	exporter_tick(ex, BOOT_US);
	feed(ex, 70, 10);
	exporter_flush(ex);
	assert_int_equal(ex->st.not_exportable, 7);
	assert_int_equal(ex->st.records, 63);
	uint32_t flows = 0;
	for (size_t i = 0; i < s.n; i++) {
		assert_int_equal(rd16(s.p[i]), 5);
		assert_int_equal(rd32(s.p[i] + 16), flows);
		flows += rd16(s.p[i] + 2);
	}
	assert_int_equal(flows, 63);
	assert_int_equal(s.n, 3); /* 28 + 28 + 7 */
	exporter_free(ex);
}

static void test_v9_sequence_counts_datagrams_and_refreshes_templates(void **state)
{
	static struct sent s;
	memset(&s, 0, sizeof(s));
	struct netflow_config c = {.version = 9, .domain = 4, .send = capture_send, .send_ctx = &s};
	struct exporter *ex = netflow_exporter_new(&c);
	exporter_tick(ex, BOOT_US);
	/* Enough records for more than NETFLOW_TEMPLATE_REFRESH_DATAGRAMS datagrams. */
	for (int round = 0; round < 30; round++) {
		feed(ex, 20, 0);
		exporter_flush(ex);
	}
	assert_true(s.n > NETFLOW_TEMPLATE_REFRESH_DATAGRAMS);
	size_t with_templates = 0;
	for (size_t i = 0; i < s.n; i++) {
		assert_int_equal(rd32(s.p[i] + 12), i);     /* datagrams before this one */
		assert_int_equal(rd32(s.p[i] + 16), 4);     /* source id */
		if (rd16(s.p[i] + 20) == 0) {               /* template flowset first */
			with_templates++;
			assert_true(i % NETFLOW_TEMPLATE_REFRESH_DATAGRAMS == 0);
		}
	}
	assert_int_equal(rd16(s.p[0] + 20), 0);
	assert_int_equal(with_templates, (s.n + NETFLOW_TEMPLATE_REFRESH_DATAGRAMS - 1) / NETFLOW_TEMPLATE_REFRESH_DATAGRAMS);
	/* And by time: after NETFLOW_TEMPLATE_REFRESH_US the next datagram carries them. */
	size_t before = s.n;
	exporter_tick(ex, BOOT_US + NETFLOW_TEMPLATE_REFRESH_US + 1);
	feed(ex, 1, 0);
	exporter_flush(ex);
	assert_int_equal(s.n, before + 1);
	assert_int_equal(rd16(s.p[before] + 20), 0);
	exporter_free(ex);
}

static void test_ipfix_sequence_counts_records(void **state)
{
	static struct sent s;
	memset(&s, 0, sizeof(s));
	struct netflow_config c = {.version = 10, .domain = 5, .send = capture_send, .send_ctx = &s};
	struct exporter *ex = netflow_exporter_new(&c);
	exporter_tick(ex, BOOT_US);
	feed(ex, 100, 4);
	exporter_flush(ex);
	/* First the Exporting Process options in domain 0, then the flows in domain 5. */
	assert_int_equal(rd32(s.p[0] + 12), IPFIX_PROCESS_DOMAIN_FOR_TEST);
	assert_int_equal(rd16(s.p[0] + 16), 3);
	uint32_t records = 0;
	for (size_t i = 1; i < s.n; i++) {
		const uint8_t *p = s.p[i];
		assert_int_equal(rd16(p), 10);
		assert_int_equal(rd16(p + 2), s.len[i]);
		assert_int_equal(rd32(p + 12), 5);
		assert_int_equal(rd32(p + 8), records); /* not counting this message's records */
		for (size_t off = 16; off < s.len[i];) {
			uint16_t id = rd16(p + off), len = rd16(p + off + 2);
			if (id == 256)
				records += (len - 4) / 52;
			else if (id == 257)
				records += (len - 4) / 76;
			off += len;
		}
	}
	assert_int_equal(records, 100);
	exporter_free(ex);
}

static void test_delay_and_send_errors(void **state)
{
	static struct sent s;
	memset(&s, 0, sizeof(s));
	s.fail = 1;
	struct netflow_config c = {.version = 9, .domain = 0, .send = capture_send, .send_ctx = &s};
	struct exporter *ex = netflow_exporter_new(&c);
	exporter_tick(ex, BOOT_US);
	feed(ex, 3, 0);
	exporter_tick(ex, BOOT_US + NETFLOW_MAX_DELAY_US - 1);
	assert_int_equal(s.n, 0); /* waiting for company */
	exporter_tick(ex, BOOT_US + NETFLOW_MAX_DELAY_US);
	assert_int_equal(s.n, 1);
	assert_int_equal(ex->st.send_errors, 1);
	assert_int_equal(ex->st.datagrams, 1);
	exporter_free(ex);
	exporter_free(NULL);
}

static void test_stream_continues_across_exporters(void **state)
{
	static struct sent s;
	memset(&s, 0, sizeof(s));
	struct netflow_stream stream;
	memset(&stream, 0, sizeof(stream));
	struct netflow_config c = {.version = 10, .domain = 5, .send = capture_send, .send_ctx = &s};
	struct exporter *ex = netflow_exporter_new_stream(&c, &stream);
	exporter_tick(ex, BOOT_US);
	feed(ex, 30, 0);
	exporter_flush(ex);
	exporter_free(ex);
	size_t first = s.n;
	/* The replacement (a reconfigured meter) picks up where the first left off. */
	ex = netflow_exporter_new_stream(&c, &stream);
	exporter_tick(ex, BOOT_US + 5000000);
	feed(ex, 1, 0);
	exporter_flush(ex);
	exporter_free(ex);
	assert_true(s.n > first);
	assert_int_equal(rd32(s.p[s.n - 1] + 8), 30); /* 30 data records before this message */
	assert_true(stream.boot_us == BOOT_US);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_v5_sequence_counts_flows),
		cmocka_unit_test(test_v9_sequence_counts_datagrams_and_refreshes_templates),
		cmocka_unit_test(test_ipfix_sequence_counts_records),
		cmocka_unit_test(test_delay_and_send_errors),
		cmocka_unit_test(test_stream_continues_across_exporters),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
