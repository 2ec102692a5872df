/* Packet decoder: link layer -> IP -> transport, through a bounds-checked
 * cursor. Pure: no allocation, no global state, safe on hostile bytes. */
#ifndef METER_DECODE_H
#define METER_DECODE_H
#include <stddef.h>
#include <stdint.h>

/* Link types as pcap_datalink() reports them (libpcap maps LINKTYPE_RAW to
 * DLT_RAW); kept here so the decoder and its fuzz target need no pcap.h. */
#define DECODE_LINK_NULL 0
#define DECODE_LINK_EN10MB 1
#define DECODE_LINK_RAW 12
#define DECODE_LINK_RAW_ALT 14 /* DLT_RAW on OpenBSD */
#define DECODE_LINK_LINKTYPE_RAW 101
#define DECODE_LINK_SLL 113
#define DECODE_LINK_IPV4 228
#define DECODE_LINK_IPV6 229
#define DECODE_LINK_SLL2 276

#define DECODE_MAX_VLAN_TAGS 2   /* 802.1Q and QinQ; a third tag is refused */
#define DECODE_MAX_IPV6_EXT 8    /* extension headers walked before giving up */

/* Why a packet was skipped; X(name, text). DECODE_OK is not a skip. */
#define DECODE_STATUS_MAP(X)                                        \
	X(OK, "decoded")                                            \
	X(TRUNCATED, "truncated")                                   \
	X(NOT_IP, "not IP")                                         \
	X(BAD_LINK, "unsupported link type")                        \
	X(BAD_VLAN, "too many VLAN tags")                           \
	X(BAD_IPV4, "malformed IPv4 header")                        \
	X(BAD_IPV6, "malformed IPv6 header")                        \
	X(IPV6_EXT_LIMIT, "IPv6 extension chain too long")          \
	X(BAD_L4, "malformed transport header")

enum decode_status {
#define DECODE_ENUM(name, text) DECODE_##name,
	DECODE_STATUS_MAP(DECODE_ENUM)
#undef DECODE_ENUM
	DECODE_STATUS_COUNT
};

const char *decode_status_text(enum decode_status s);

struct decoded {
	uint8_t af;       /* 4 or 6 */
	uint8_t proto;    /* IANA protocol number of the transport */
	uint8_t tos;      /* IPv4 ToS / IPv6 traffic class */
	uint8_t tcp_flags;
	uint8_t src[16], dst[16]; /* IPv4 in the first 4 bytes, rest zero */
	uint16_t sport, dport;    /* ICMP: 0 and type*256+code */
	uint16_t vlan;            /* outermost VLAN id, 0 if untagged */
	uint32_t ip_len;          /* bytes on the wire at IP level (header total length) */
};

enum decode_status decode_packet(int linktype, const uint8_t *p, size_t len, struct decoded *out);

#endif
