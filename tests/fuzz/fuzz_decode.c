/* The packet decoder and the flow table behind it on arbitrary bytes: the
 * first byte picks the link type, the second moves the clock. */
#include <stddef.h>
#include <stdint.h>

#include "meter/meter.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const int fuzz_links[] = {
	DECODE_LINK_EN10MB, DECODE_LINK_RAW, DECODE_LINK_SLL, DECODE_LINK_SLL2,
	DECODE_LINK_IPV4,   DECODE_LINK_IPV6, DECODE_LINK_NULL, DECODE_LINK_LINKTYPE_RAW,
};

static struct meter *fuzz_meter;
static int64_t fuzz_clock;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	if (!fuzz_meter) {
		char err[128];
		struct meter_config c = {METER_ACTIVE_MIN, METER_INACTIVE_MIN, FLOWTABLE_MIN_FLOWS, 0};
		fuzz_meter = meter_new(&c, NULL, 0, err, sizeof(err));
	}
	int link = fuzz_links[data[0] % (sizeof(fuzz_links) / sizeof(fuzz_links[0]))];
	struct decoded d;
	enum decode_status st = decode_packet(link, data + 2, size - 2, &d);
	if (st == DECODE_OK && d.af != 4 && d.af != 6)
		__builtin_trap();
	fuzz_clock += (int64_t)data[1] * 100000;
	meter_packet(fuzz_meter, link, fuzz_clock, data + 2, size - 2);
	return 0;
}
