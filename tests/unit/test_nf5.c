/* NetFlow V5 encoder against a golden datagram written from Cisco's V5 layout. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "export/exporter.h"
#include "export/nf5.h"
#include "export_fixture.h"

static void test_golden(void **state)
{
	static const uint8_t want[] = {
		U16(5), U16(1), U32(3000), U32(1700000003), U32(250000), U32(42), 0, 7, U16(0),
		10, 0, 0, 1, 192, 0, 2, 9, U32(0), U16(3), U16(0), U32(5), U32(1000), U32(1500), U32(2500),
		U16(1234), U16(80), 0, 0x1b, 6, 0x28, U16(0), U16(0), 0, 0, U16(0),
	};
	struct flow_rec r = fixture_v4();
	struct nf5_header h = {NOW_US, BOOT_US, 42, 0, 7, 0};
	uint8_t buf[EXPORT_MAX_DATAGRAM];
	size_t n = nf5_encode(&h, &r, 1, buf, sizeof(buf));
	assert_int_equal(n, sizeof(want));
	assert_int_equal(n, NF5_HDR_LEN + NF5_REC_LEN);
	assert_memory_equal(buf, want, sizeof(want));
}

static void test_limits(void **state)
{
	struct flow_rec recs[NF5_MAX_RECORDS + 1];
	uint8_t buf[EXPORT_MAX_DATAGRAM];
	struct nf5_header h = {NOW_US, BOOT_US, 0, 0, 0, 0};
	for (size_t i = 0; i <= NF5_MAX_RECORDS; i++)
		recs[i] = fixture_v4();
	size_t n = nf5_encode(&h, recs, NF5_MAX_RECORDS, buf, sizeof(buf));
	assert_int_equal(n, NF5_HDR_LEN + NF5_MAX_RECORDS * NF5_REC_LEN);
	assert_true(n <= EXPORT_MAX_DATAGRAM);
	assert_int_equal(nf5_encode(&h, recs, NF5_MAX_RECORDS + 1, buf, sizeof(buf)), 0);
	assert_int_equal(nf5_encode(&h, recs, 0, buf, sizeof(buf)), 0);
	assert_int_equal(nf5_encode(&h, recs, 2, buf, NF5_HDR_LEN + NF5_REC_LEN), 0);
	/* IPv6 and counters beyond 32 bits cannot be expressed in V5. */
	recs[1] = fixture_v6();
	assert_int_equal(nf5_encode(&h, recs, 2, buf, sizeof(buf)), 0);
	recs[1] = fixture_v4();
	recs[1].bytes = 1ull << 32;
	assert_int_equal(nf5_encode(&h, recs, 2, buf, sizeof(buf)), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_golden),
		cmocka_unit_test(test_limits),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
