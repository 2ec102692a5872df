/* The packet decoder on crafted packets of every kind, truncated and hostile ones. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "meter/decode.h"

#define PKT_MAX 256

struct pkt {
	uint8_t b[PKT_MAX];
	size_t len;
};

static void put(struct pkt *p, const void *src, size_t n)
{
	assert_true(p->len + n <= PKT_MAX);
	memcpy(p->b + p->len, src, n);
	p->len += n;
}

static void put8(struct pkt *p, uint8_t v)
{
	put(p, &v, 1);
}

static void put16(struct pkt *p, uint16_t v)
{
	uint8_t b[2] = {(uint8_t)(v >> 8), (uint8_t)v};
	put(p, b, 2);
}

static void eth(struct pkt *p, uint16_t type)
{
	static const uint8_t macs[12] = {2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2};
	put(p, macs, sizeof(macs));
	put16(p, type);
}

/* IPv4 header with opt_words 4-byte option words; total is the header's length field. */
static void ipv4(struct pkt *p, uint8_t proto, uint16_t total, uint16_t frag, int opt_words)
{
	static const uint8_t addrs[8] = {10, 0, 0, 1, 192, 0, 2, 9};
	put8(p, (uint8_t)(0x40 | (5 + opt_words)));
	put8(p, 0x28);
	put16(p, total);
	put16(p, 1);
	put16(p, frag);
	put8(p, 64);
	put8(p, proto);
	put16(p, 0);
	put(p, addrs, 8);
	for (int i = 0; i < opt_words; i++)
		put(p, "\x01\x01\x01\x00", 4);
}

static void ipv6(struct pkt *p, uint8_t nh, uint16_t plen)
{
	uint8_t a[16] = {0x20, 0x01, 0x0d, 0xb8};
	put16(p, 0x6a12); /* version 6, traffic class 0xa1 */
	put16(p, 0x3456);
	put16(p, plen);
	put8(p, nh);
	put8(p, 64);
	a[15] = 1;
	put(p, a, 16);
	a[15] = 2;
	put(p, a, 16);
}

static void tcp(struct pkt *p, uint16_t sport, uint16_t dport, uint8_t flags)
{
	put16(p, sport);
	put16(p, dport);
	for (int i = 0; i < 9; i++)
		put8(p, 0);
	put8(p, flags);
	for (int i = 0; i < 6; i++)
		put8(p, 0);
}

static void udp(struct pkt *p, uint16_t sport, uint16_t dport)
{
	put16(p, sport);
	put16(p, dport);
	put16(p, 8);
	put16(p, 0);
}

static void test_ethernet_ipv4_tcp(void **state)
{
	struct pkt p = {0};
	struct decoded d;
	eth(&p, 0x0800);
	ipv4(&p, 6, 1500, 0, 0);
	tcp(&p, 40000, 443, 0x12);
	/* Captured 54 bytes of a 1514-byte frame: bytes come from the IP header. */
	assert_int_equal(decode_packet(DECODE_LINK_EN10MB, p.b, p.len, &d), DECODE_OK);
	assert_int_equal(d.af, 4);
	assert_int_equal(d.proto, 6);
	assert_int_equal(d.tos, 0x28);
	assert_int_equal(d.sport, 40000);
	assert_int_equal(d.dport, 443);
	assert_int_equal(d.tcp_flags, 0x12);
	assert_int_equal(d.ip_len, 1500);
	assert_memory_equal(d.src, "\x0a\x00\x00\x01", 4);
	assert_memory_equal(d.dst, "\xc0\x00\x02\x09", 4);
	assert_int_equal(d.vlan, 0);
	/* Every capture shorter than the TCP flags byte is refused, never read past. */
	for (size_t n = 0; n < 14 + 20 + 14; n++)
		assert_int_equal(decode_packet(DECODE_LINK_EN10MB, p.b, n, &d), DECODE_TRUNCATED);
}

static void test_vlan_and_qinq(void **state)
{
	struct pkt p = {0};
	struct decoded d;
	eth(&p, 0x8100);
	put16(&p, 0x2064); /* PCP 1, VLAN 100 */
	put16(&p, 0x0800);
	ipv4(&p, 17, 28, 0, 0);
	udp(&p, 5353, 53);
	assert_int_equal(decode_packet(DECODE_LINK_EN10MB, p.b, p.len, &d), DECODE_OK);
	assert_int_equal(d.vlan, 100);
	assert_int_equal(d.dport, 53);

	struct pkt q = {0};
	eth(&q, 0x88a8);
	put16(&q, 200);
	put16(&q, 0x8100);
	put16(&q, 300);
	put16(&q, 0x86dd);
	ipv6(&q, 17, 8);
	udp(&q, 1, 2);
	assert_int_equal(decode_packet(DECODE_LINK_EN10MB, q.b, q.len, &d), DECODE_OK);
	assert_int_equal(d.vlan, 200);
	assert_int_equal(d.af, 6);
	assert_int_equal(d.ip_len, 48);

	struct pkt r = {0};
	eth(&r, 0x8100);
	put16(&r, 1);
	put16(&r, 0x8100);
	put16(&r, 2);
	put16(&r, 0x8100);
	put16(&r, 3);
	put16(&r, 0x0800);
	ipv4(&r, 17, 28, 0, 0);
	udp(&r, 1, 2);
	assert_int_equal(decode_packet(DECODE_LINK_EN10MB, r.b, r.len, &d), DECODE_BAD_VLAN);
}

static void test_cooked_and_raw(void **state)
{
	struct decoded d;
	struct pkt ip = {0};
	ipv4(&ip, 17, 28, 0, 0);
	udp(&ip, 10, 20);

	struct pkt sll = {0};
	put16(&sll, 0);
	put16(&sll, 1);
	put16(&sll, 6);
	put(&sll, "\x02\x00\x00\x00\x00\x01\x00\x00", 8);
	put16(&sll, 0x0800);
	put(&sll, ip.b, ip.len);
	assert_int_equal(decode_packet(DECODE_LINK_SLL, sll.b, sll.len, &d), DECODE_OK);
	assert_int_equal(d.dport, 20);

	struct pkt sll2 = {0};
	put16(&sll2, 0x0800);
	put16(&sll2, 0);
	put(&sll2, "\x00\x00\x00\x02", 4);
	put16(&sll2, 1);
	put8(&sll2, 0);
	put8(&sll2, 6);
	put(&sll2, "\x02\x00\x00\x00\x00\x01\x00\x00", 8);
	put(&sll2, ip.b, ip.len);
	assert_int_equal(decode_packet(DECODE_LINK_SLL2, sll2.b, sll2.len, &d), DECODE_OK);
	assert_int_equal(d.sport, 10);

	assert_int_equal(decode_packet(DECODE_LINK_RAW, ip.b, ip.len, &d), DECODE_OK);
	assert_int_equal(decode_packet(DECODE_LINK_LINKTYPE_RAW, ip.b, ip.len, &d), DECODE_OK);
	assert_int_equal(decode_packet(DECODE_LINK_IPV4, ip.b, ip.len, &d), DECODE_OK);
	assert_int_equal(decode_packet(DECODE_LINK_IPV6, ip.b, ip.len, &d), DECODE_TRUNCATED); /* < 40 bytes */
	assert_int_equal(decode_packet(147, ip.b, ip.len, &d), DECODE_BAD_LINK);

	struct pkt v6 = {0};
	ipv6(&v6, 58, 8);
	put8(&v6, 128);
	put8(&v6, 0);
	assert_int_equal(decode_packet(DECODE_LINK_RAW, v6.b, v6.len, &d), DECODE_OK);
	assert_int_equal(d.proto, 58);
	assert_int_equal(d.dport, 128 << 8);
	assert_int_equal(d.tos, 0xa1);
}

static void test_ipv4_options_fragments_icmp(void **state)
{
	struct decoded d;
	struct pkt p = {0};
	ipv4(&p, 6, 1400, 0x2000 /* MF, offset 0 */, 2);
	tcp(&p, 1, 2, 0x02);
	assert_int_equal(decode_packet(DECODE_LINK_RAW, p.b, p.len, &d), DECODE_OK);
	assert_int_equal(d.sport, 1);
	assert_int_equal(d.tcp_flags, 0x02);

	struct pkt f = {0};
	ipv4(&f, 6, 600, 185, 0); /* a later fragment: bytes here are payload, not ports */
	put(&f, "\xff\xff\xff\xff", 4);
	assert_int_equal(decode_packet(DECODE_LINK_RAW, f.b, f.len, &d), DECODE_OK);
	assert_int_equal(d.sport, 0);
	assert_int_equal(d.dport, 0);
	assert_int_equal(d.ip_len, 600);

	struct pkt i = {0};
	ipv4(&i, 1, 84, 0, 0);
	put8(&i, 3);
	put8(&i, 13);
	assert_int_equal(decode_packet(DECODE_LINK_RAW, i.b, i.len, &d), DECODE_OK);
	assert_int_equal(d.sport, 0);
	assert_int_equal(d.dport, 3 * 256 + 13);

	struct pkt g = {0};
	ipv4(&g, 47, 24, 0, 0);
	assert_int_equal(decode_packet(DECODE_LINK_RAW, g.b, g.len, &d), DECODE_OK);
	assert_int_equal(d.proto, 47);
	assert_int_equal(d.dport, 0);
}

static void test_ipv6_extension_chain(void **state)
{
	struct decoded d;
	struct pkt p = {0};
	ipv6(&p, 0, 8 + 8 + 20);
	put(&p, "\x2c\x00\x01\x04\x00\x00\x00\x00", 8); /* hop-by-hop -> fragment */
	put(&p, "\x06\x00\x00\x01\x00\x00\x00\x07", 8); /* fragment offset 0, M -> TCP */
	tcp(&p, 7, 8, 0x10);
	assert_int_equal(decode_packet(DECODE_LINK_RAW, p.b, p.len, &d), DECODE_OK);
	assert_int_equal(d.proto, 6);
	assert_int_equal(d.sport, 7);

	struct pkt f = {0};
	ipv6(&f, 44, 8 + 4);
	put(&f, "\x11\x00\x00\x08\x00\x00\x00\x07", 8); /* offset 1: no ports */
	put(&f, "\x12\x34\x56\x78", 4);
	assert_int_equal(decode_packet(DECODE_LINK_RAW, f.b, f.len, &d), DECODE_OK);
	assert_int_equal(d.proto, 17);
	assert_int_equal(d.sport, 0);

	struct pkt l = {0};
	ipv6(&l, 60, 8 * (DECODE_MAX_IPV6_EXT + 1));
	for (int i = 0; i <= DECODE_MAX_IPV6_EXT; i++)
		put(&l, "\x3c\x00\x01\x04\x00\x00\x00\x00", 8);
	assert_int_equal(decode_packet(DECODE_LINK_RAW, l.b, l.len, &d), DECODE_IPV6_EXT_LIMIT);

	/* An extension header claiming more bytes than the payload has. */
	struct pkt h = {0};
	ipv6(&h, 60, 8);
	put(&h, "\x06\xff\x01\x04\x00\x00\x00\x00", 8);
	assert_int_equal(decode_packet(DECODE_LINK_RAW, h.b, h.len, &d), DECODE_TRUNCATED);
}

static void test_hostile_headers(void **state)
{
	struct decoded d;
	struct pkt p = {0};
	ipv4(&p, 17, 28, 0, 0);
	udp(&p, 1, 2);
	p.b[0] = 0x44; /* IHL 4 < 5 */
	assert_int_equal(decode_packet(DECODE_LINK_RAW, p.b, p.len, &d), DECODE_BAD_IPV4);
	p.b[0] = 0x45;
	p.b[2] = 0;
	p.b[3] = 10; /* total length below the header */
	assert_int_equal(decode_packet(DECODE_LINK_RAW, p.b, p.len, &d), DECODE_BAD_IPV4);
	p.b[3] = 22; /* the UDP header is cut by the IP length: ports not trusted */
	assert_int_equal(decode_packet(DECODE_LINK_RAW, p.b, p.len, &d), DECODE_TRUNCATED);
	p.b[0] = 0x4f; /* 60-byte header claimed, 28 captured */
	p.b[3] = 60;
	assert_int_equal(decode_packet(DECODE_LINK_RAW, p.b, p.len, &d), DECODE_TRUNCATED);
	p.b[0] = 0x75;
	assert_int_equal(decode_packet(DECODE_LINK_RAW, p.b, p.len, &d), DECODE_NOT_IP);

	struct pkt j = {0};
	ipv6(&j, 17, 0); /* jumbogram payload length */
	udp(&j, 1, 2);
	assert_int_equal(decode_packet(DECODE_LINK_RAW, j.b, j.len, &d), DECODE_BAD_IPV6);

	struct pkt a = {0};
	eth(&a, 0x0806);
	put(&a, "\x00\x01\x08\x00", 4);
	assert_int_equal(decode_packet(DECODE_LINK_EN10MB, a.b, a.len, &d), DECODE_NOT_IP);
	assert_int_equal(decode_packet(DECODE_LINK_EN10MB, NULL, 0, &d), DECODE_TRUNCATED);
	assert_string_equal(decode_status_text(DECODE_IPV6_EXT_LIMIT), "IPv6 extension chain too long");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ethernet_ipv4_tcp),
		cmocka_unit_test(test_vlan_and_qinq),
		cmocka_unit_test(test_cooked_and_raw),
		cmocka_unit_test(test_ipv4_options_fragments_icmp),
		cmocka_unit_test(test_ipv6_extension_chain),
		cmocka_unit_test(test_hostile_headers),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
