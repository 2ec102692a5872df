/* The meter library: packets in, records out through exporters; a
 * reconfigure closes and exports under the old settings and continues under
 * the new ones, losing and doubling nothing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "meter/meter.h"

#define S 1000000LL

struct counting {
	struct exporter ex;
	uint64_t packets, bytes, records, reconfig, flushes;
};

static void c_record(struct exporter *ex, const struct flow_rec *r)
{
	struct counting *c = (struct counting *)ex;
	c->packets += r->packets;
	c->bytes += r->bytes;
	c->records++;
	c->reconfig += r->end == FLOW_END_RECONFIG;
}

static void c_tick(struct exporter *ex, int64_t now)
{
}

static void c_flush(struct exporter *ex)
{
	((struct counting *)ex)->flushes++;
}

static void c_free(struct exporter *ex)
{
	/* Owned by the test: the meter only lets go of it. */
}

static const struct exporter_ops counting_ops = {c_record, c_tick, c_flush, c_free};

/* A raw IPv4/UDP packet from host h, total length 100. */
static size_t udp_packet(uint8_t *b, uint8_t h)
{
	memset(b, 0, 100);
	b[0] = 0x45;
	b[3] = 100;
	b[8] = 64;
	b[9] = 17;
	b[12] = 10;
	b[15] = h;
	b[16] = 192;
	b[20] = 0x10;
	b[22] = 0x00;
	b[23] = 53;
	return 28;
}

static void test_reconfigure_loses_and_doubles_nothing(void **state)
{
	struct counting a = {{&counting_ops, "a", {0}}, 0, 0, 0, 0, 0};
	struct counting b = {{&counting_ops, "b", {0}}, 0, 0, 0, 0, 0};
	struct exporter *ea = &a.ex, *eb = &b.ex;
	struct meter_config cfg = {300, 15, 1024, 0};
	char err[128];
	struct meter *m = meter_new(&cfg, &ea, 1, err, sizeof(err));
	assert_non_null(m);
	uint8_t pkt[100];
	for (int i = 0; i < 50; i++) {
		size_t n = udp_packet(pkt, (uint8_t)(i % 5));
		assert_int_equal(meter_packet(m, DECODE_LINK_RAW, i * S / 10, pkt, n), DECODE_OK);
	}
	struct meter_config cfg2 = {60, 10, 64, 2};
	struct meter_config bad = {59, 10, 64, 2};
	assert_int_equal(meter_reconfigure(m, &bad, &eb, 1, err, sizeof(err)), -1);
	assert_string_equal(err, "active aging must be 60-6000 seconds");
	assert_int_equal(meter_reconfigure(m, &cfg2, &eb, 1, err, sizeof(err)), 0);
	assert_int_equal(a.packets, 50);
	assert_int_equal(a.bytes, 5000);
	assert_int_equal(a.reconfig, 5);
	assert_true(a.flushes >= 1);
	for (int i = 50; i < 80; i++) {
		size_t n = udp_packet(pkt, (uint8_t)(i % 5));
		meter_packet(m, DECODE_LINK_RAW, i * S / 10, pkt, n);
	}
	assert_int_equal(meter_packet(m, DECODE_LINK_RAW, 9 * S, pkt, 3), DECODE_TRUNCATED);
	meter_advance(m, 30 * S); /* idle timer under the new 10 s aging */
	assert_int_equal(b.records, 5);
	meter_flush(m);
	assert_int_equal(a.packets, 50);
	assert_int_equal(b.packets, 30);
	struct meter_stats st;
	meter_get_stats(m, &st);
	assert_int_equal(st.packets, 81);
	assert_int_equal(st.decoded, 80);
	assert_int_equal(st.skipped[DECODE_TRUNCATED], 1);
	assert_int_equal(st.table.opened, 10);
	assert_int_equal(st.table.closed[FLOW_END_RECONFIG], 5);
	assert_int_equal(st.table.closed[FLOW_END_IDLE], 5);
	meter_free(m);
}

static void test_config_is_checked(void **state)
{
	char err[128];
	struct meter_config c = {300, 9, 1024, 0};
	assert_null(meter_new(&c, NULL, 0, err, sizeof(err)));
	assert_string_equal(err, "inactive aging must be 10-600 seconds");
	c.inactive_aging_s = 15;
	c.max_flows = 1;
	assert_null(meter_new(&c, NULL, 0, err, sizeof(err)));
	meter_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reconfigure_loses_and_doubles_nothing),
		cmocka_unit_test(test_config_is_checked),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
