/* A closed flow record: what the flow table hands to the exporters. */
#ifndef METER_FLOW_H
#define METER_FLOW_H
#include <stdint.h>

/* The unidirectional key of spec §2. Field order leaves no padding (42 bytes),
 * so keys compare and hash as plain bytes; unused address bytes are zero. */
struct flow_key {
	uint8_t src[16], dst[16]; /* IPv4 in the first 4 bytes */
	uint16_t sport, dport;    /* host order; ICMP: 0 and type*256+code */
	uint8_t proto, tos, af, pad;
	uint16_t inport;
};

/* Why a record closed. The first values are IPFIX flowEndReason (IANA IE 136). */
#define FLOW_END_MAP(X)                                     \
	X(IDLE, 1, "idle")                                  \
	X(ACTIVE, 2, "active")                              \
	X(FORCED, 4, "forced (end of capture, shutdown)")   \
	X(RESOURCES, 5, "lack of resources")                \
	X(COUNTER, 2, "counter would overflow")             \
	X(RECONFIG, 4, "reconfigured")

enum flow_end {
#define FLOW_END_ENUM(name, ie, text) FLOW_END_##name,
	FLOW_END_MAP(FLOW_END_ENUM)
#undef FLOW_END_ENUM
	FLOW_END_COUNT
};

const char *flow_end_text(enum flow_end e);
uint8_t flow_end_ie(enum flow_end e); /* IPFIX flowEndReason value */

struct flow_rec {
	struct flow_key key;
	uint8_t tcp_flags;
	uint8_t end; /* enum flow_end */
	uint16_t outport;
	int64_t first_us, last_us; /* packet timestamps, µs since the epoch */
	uint64_t packets, bytes;
};

#endif
