/* NetFlow V9 encoder against golden datagrams written from RFC 3954 §5-6. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "export/exporter.h"
#include "export/nf9.h"
#include "export_fixture.h"

static void test_golden_with_templates(void **state)
{
	static const uint8_t want[] = {
		/* §5.1 header: count = 2 templates + options template + options record + 1 record */
		U16(9), U16(5), U32(3000), U32(1700000003), U32(7), U32(9),
		/* §5.2 template flowset */
		U16(0), U16(124), U16(256), U16(14), TEMPLATE_FIELDS(8, 12, 4), U16(257), U16(14),
		TEMPLATE_FIELDS(27, 28, 16),
		/* §6.1 options template flowset: scope System (4 bytes), samplingInterval, systemInitTime, 2 pad */
		U16(1), U16(24), U16(258), U16(4), U16(8), U16(1), U16(4), U16(34), U16(4), U16(160), U16(8), 0, 0,
		/* §6.2 options data */
		U16(258), U16(20), U32(9), U32(1), U64(1700000000000ull),
		/* §5.3 data flowset */
		U16(256), U16(56), V4_REC_BYTES,
	};
	struct flow_rec r = fixture_v4();
	struct nf9_msg m = {NOW_US, BOOT_US, 7, 9, 1, true};
	uint8_t buf[EXPORT_MAX_DATAGRAM];
	size_t used = 99;
	size_t n = nf9_encode(&m, &r, 1, &used, buf, sizeof(buf));
	assert_int_equal(used, 1);
	assert_int_equal(n, sizeof(want));
	assert_memory_equal(buf, want, sizeof(want));
}

static void test_golden_mixed_families(void **state)
{
	static const uint8_t want[] = {
		U16(9), U16(3), U32(3000), U32(1700000003), U32(8), U32(9),
		U16(256), U16(56), V4_REC_BYTES,
		U16(257), U16(80), V6_REC_BYTES,
		U16(256), U16(56), V4_REC_BYTES,
	};
	struct flow_rec r[3] = {fixture_v4(), fixture_v6(), fixture_v4()};
	struct nf9_msg m = {NOW_US, BOOT_US, 8, 9, 1, false};
	uint8_t buf[EXPORT_MAX_DATAGRAM];
	size_t used;
	size_t n = nf9_encode(&m, r, 3, &used, buf, sizeof(buf));
	assert_int_equal(used, 3);
	assert_int_equal(n, sizeof(want));
	assert_memory_equal(buf, want, sizeof(want));
}

static void test_fills_without_exceeding(void **state)
{
	struct flow_rec r[100];
	for (size_t i = 0; i < 100; i++)
		r[i] = i % 3 ? fixture_v4() : fixture_v6();
	uint8_t buf[EXPORT_MAX_DATAGRAM];
	struct nf9_msg m = {NOW_US, BOOT_US, 0, 0, 1, true};
	size_t used, total = 0;
	while (total < 100) {
		size_t n = nf9_encode(&m, r + total, 100 - total, &used, buf, sizeof(buf));
		assert_true(n > 0 && n <= EXPORT_MAX_DATAGRAM);
		assert_true(used > 0);
		total += used;
		m.templates = false;
	}
	assert_int_equal(total, 100);
	/* Too small even for the templates. */
	assert_int_equal(nf9_encode(&m, r, 1, &used, buf, NF9_HDR_LEN - 1), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_golden_with_templates),
		cmocka_unit_test(test_golden_mixed_families),
		cmocka_unit_test(test_fills_without_exceeding),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
