/* IPFIX encoder against golden messages written from RFC 7011 §3. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "export/exporter.h"
#include "export/ipfix.h"
#include "export_fixture.h"

static void test_golden_templates_and_record(void **state)
{
	static const uint8_t want[] = {
		/* §3.1 header: length, export time, sequence = data records before, domain */
		U16(10), U16(16 + 124 + 4 + 76), U32(1700000003), U32(100), U32(9),
		/* §3.4.1 template set */
		U16(2), U16(124), U16(256), U16(14), TEMPLATE_FIELDS(8, 12, 4), U16(257), U16(14),
		TEMPLATE_FIELDS(27, 28, 16),
		/* §3.3.2 data set */
		U16(257), U16(80), V6_REC_BYTES,
	};
	struct flow_rec r = fixture_v6();
	struct ipfix_msg m = {NOW_US, BOOT_US, 100, 9, 1, true};
	uint8_t buf[EXPORT_MAX_DATAGRAM];
	size_t used;
	size_t n = ipfix_encode(&m, &r, 1, &used, buf, sizeof(buf));
	assert_int_equal(used, 1);
	assert_int_equal(n, sizeof(want));
	assert_memory_equal(buf, want, sizeof(want));
}

static void test_golden_options(void **state)
{
	static const uint8_t want[] = {
		U16(10), U16(60), U32(1700000003), U32(3), U32(IPFIX_PROCESS_DOMAIN),
		/* §3.4.2.2 options template: 3 fields, 1 scope (observationDomainId), 2 pad bytes */
		U16(3), U16(24), U16(258), U16(3), U16(1), U16(149), U16(4), U16(34), U16(4), U16(160), U16(8), 0, 0,
		U16(258), U16(20), U32(9), U32(1), U64(1700000000000ull),
	};
	struct ipfix_msg m = {NOW_US, BOOT_US, 3, IPFIX_PROCESS_DOMAIN, 1, false};
	uint8_t buf[EXPORT_MAX_DATAGRAM];
	size_t n = ipfix_encode_options(&m, 9, buf, sizeof(buf));
	assert_int_equal(n, sizeof(want));
	assert_memory_equal(buf, want, sizeof(want));
	assert_int_equal(ipfix_encode_options(&m, 9, buf, 40), 0);
}

static void test_fills_without_exceeding(void **state)
{
	struct flow_rec r[60];
	for (size_t i = 0; i < 60; i++)
		r[i] = fixture_v4();
	uint8_t buf[EXPORT_MAX_DATAGRAM];
	struct ipfix_msg m = {NOW_US, BOOT_US, 0, 1, 1, false};
	size_t used;
	size_t n = ipfix_encode(&m, r, 60, &used, buf, sizeof(buf));
	assert_int_equal(used, (EXPORT_MAX_DATAGRAM - IPFIX_HDR_LEN - 4) / 52);
	assert_int_equal(n, IPFIX_HDR_LEN + 4 + used * 52);
	assert_int_equal(buf[2] << 8 | buf[3], n);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_golden_templates_and_record),
		cmocka_unit_test(test_golden_options),
		cmocka_unit_test(test_fills_without_exceeding),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
