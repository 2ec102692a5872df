/* Shared by the encoder tests: byte macros for golden datagrams written from
 * the RFC layouts, and two sample records. */
#ifndef TEST_EXPORT_FIXTURE_H
#define TEST_EXPORT_FIXTURE_H
#include <string.h>
#include "meter/flow.h"

#define U16(x) (uint8_t)((x) >> 8 & 0xff), (uint8_t)((x)&0xff)
#define U32(x) U16((uint32_t)(x) >> 16), U16((uint32_t)(x)&0xffff)
#define U64(x) U32((uint64_t)(x) >> 32), U32((uint64_t)(x)&0xffffffffu)

#define BOOT_US 1700000000000000LL
#define NOW_US (BOOT_US + 3000250)

static inline struct flow_rec fixture_v4(void)
{
	struct flow_rec r;
	memset(&r, 0, sizeof(r));
	r.key.af = 4;
	memcpy(r.key.src, "\x0a\x00\x00\x01", 4);
	memcpy(r.key.dst, "\xc0\x00\x02\x09", 4);
	r.key.sport = 1234;
	r.key.dport = 80;
	r.key.proto = 6;
	r.key.tos = 0x28;
	r.key.inport = 3;
	r.tcp_flags = 0x1b;
	r.end = FLOW_END_IDLE;
	r.first_us = BOOT_US + 1500000;
	r.last_us = BOOT_US + 2500000;
	r.packets = 5;
	r.bytes = 1000;
	return r;
}

static inline struct flow_rec fixture_v6(void)
{
	struct flow_rec r;
	memset(&r, 0, sizeof(r));
	r.key.af = 6;
	memcpy(r.key.src, "\x20\x01\x0d\xb8\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01", 16);
	memcpy(r.key.dst, "\x20\x01\x0d\xb8\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02", 16);
	r.key.sport = 5353;
	r.key.dport = 53;
	r.key.proto = 17;
	r.end = FLOW_END_ACTIVE;
	r.first_us = BOOT_US + 1000;
	r.last_us = BOOT_US + 2000;
	r.packets = 0x100000000ull; /* 64-bit counters carry more than 32 bits */
	r.bytes = 0x1234567890ull;
	return r;
}

#define V4_REC_BYTES                                                                                         \
	U64(1000), U64(5), 6, 0x28, 0x1b, U16(1234), 10, 0, 0, 1, U16(3), U16(80), 192, 0, 2, 9, U16(0),     \
	    U64(1700000001500ull), U64(1700000002500ull), 1

#define V6_ADDR(last) 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, last

#define V6_REC_BYTES                                                                                         \
	U64(0x1234567890ull), U64(0x100000000ull), 17, 0, 0, U16(5353), V6_ADDR(1), U16(0), U16(53), V6_ADDR(2), \
	    U16(0), U64(1700000000001ull), U64(1700000000002ull), 2

#define TEMPLATE_FIELDS(SRC, DST, ALEN)                                                                     \
	U16(1), U16(8), U16(2), U16(8), U16(4), U16(1), U16(5), U16(1), U16(6), U16(1), U16(7), U16(2),      \
	    U16(SRC), U16(ALEN), U16(10), U16(2), U16(11), U16(2), U16(DST), U16(ALEN), U16(14), U16(2),     \
	    U16(152), U16(8), U16(153), U16(8), U16(136), U16(1)

#endif
