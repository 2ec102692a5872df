#include "meter/decode.h"

#include <string.h>

/* A read cursor: every read checks what remains before touching a byte. */
struct cur {
	const uint8_t *p;
	size_t len, off;
};

static size_t cur_left(const struct cur *c)
{
	return c->len - c->off;
}

static int cur_u8(struct cur *c, uint8_t *v)
{
	if (cur_left(c) < 1)
		return -1;
	*v = c->p[c->off++];
	return 0;
}

static int cur_u16(struct cur *c, uint16_t *v)
{
	if (cur_left(c) < 2)
		return -1;
	*v = (uint16_t)(c->p[c->off] << 8 | c->p[c->off + 1]);
	c->off += 2;
	return 0;
}

static int cur_skip(struct cur *c, size_t n)
{
	if (cur_left(c) < n)
		return -1;
	c->off += n;
	return 0;
}

static int cur_copy(struct cur *c, void *dst, size_t n)
{
	if (cur_left(c) < n)
		return -1;
	memcpy(dst, c->p + c->off, n);
	c->off += n;
	return 0;
}

/* A sub-cursor over the next n bytes (or fewer if the capture is shorter). */
static struct cur cur_sub(const struct cur *c, size_t n)
{
	size_t left = cur_left(c);
	return (struct cur){c->p + c->off, n < left ? n : left, 0};
}

static const char *const decode_texts[] = {
#define DECODE_TEXT(name, text) text,
	DECODE_STATUS_MAP(DECODE_TEXT)
#undef DECODE_TEXT
};

const char *decode_status_text(enum decode_status s)
{
	return (unsigned)s < DECODE_STATUS_COUNT ? decode_texts[s] : "unknown";
}

#define ETHERTYPE_IPV4 0x0800
#define ETHERTYPE_IPV6 0x86dd
#define ETHERTYPE_VLAN 0x8100
#define ETHERTYPE_QINQ 0x88a8
#define ETHERTYPE_QINQ_OLD 0x9100

#define IPPROTO_NUM_ICMP 1
#define IPPROTO_NUM_TCP 6
#define IPPROTO_NUM_UDP 17
#define IPPROTO_NUM_ICMPV6 58
#define IPPROTO_NUM_HOPOPTS 0
#define IPPROTO_NUM_ROUTING 43
#define IPPROTO_NUM_FRAGMENT 44
#define IPPROTO_NUM_AH 51
#define IPPROTO_NUM_DSTOPTS 60
#define IPPROTO_NUM_MOBILITY 135

#define TCP_FLAGS_OFFSET 13 /* RFC 9293 §3.1: flags byte after data offset */

/* Ports (or ICMP type/code) from the transport header; c covers exactly the
 * IP payload that was captured. */
static enum decode_status decode_l4(struct cur *c, struct decoded *d)
{
	uint8_t type, code;
	switch (d->proto) {
	case IPPROTO_NUM_TCP:
		if (cur_u16(c, &d->sport) || cur_u16(c, &d->dport) ||
		    cur_skip(c, TCP_FLAGS_OFFSET - 4) || cur_u8(c, &d->tcp_flags))
			return DECODE_TRUNCATED;
		return DECODE_OK;
	case IPPROTO_NUM_UDP:
		if (cur_u16(c, &d->sport) || cur_u16(c, &d->dport))
			return DECODE_TRUNCATED;
		return DECODE_OK;
	case IPPROTO_NUM_ICMP:
	case IPPROTO_NUM_ICMPV6:
		/* The NetFlow convention: type*256+code in the destination port. */
		if (cur_u8(c, &type) || cur_u8(c, &code))
			return DECODE_TRUNCATED;
		d->sport = 0;
		d->dport = (uint16_t)(type << 8 | code);
		return DECODE_OK;
	default:
		return DECODE_OK;
	}
}

#define IPV4_MIN_HLEN 20
#define IPV4_FRAG_OFFSET_MASK 0x1fff

static enum decode_status decode_ipv4(struct cur *c, struct decoded *d)
{
	uint8_t vihl, tos, ttl;
	uint16_t total, id, frag;
	size_t start = c->off;
	if (cur_u8(c, &vihl) || cur_u8(c, &tos) || cur_u16(c, &total) || cur_u16(c, &id) ||
	    cur_u16(c, &frag) || cur_u8(c, &ttl) || cur_u8(c, &d->proto) || cur_skip(c, 2) ||
	    cur_copy(c, d->src, 4) || cur_copy(c, d->dst, 4))
		return DECODE_TRUNCATED;
	size_t hlen = (size_t)(vihl & 0x0f) * 4;
	if (vihl >> 4 != 4 || hlen < IPV4_MIN_HLEN || total < hlen)
		return DECODE_BAD_IPV4;
	/* Options are skipped whole; a capture that cut them off is truncated. */
	if (cur_skip(c, hlen - IPV4_MIN_HLEN))
		return DECODE_TRUNCATED;
	d->af = 4;
	d->tos = tos;
	d->ip_len = total;
	/* Non-first fragments carry no transport header: their ports are 0. */
	if (frag & IPV4_FRAG_OFFSET_MASK)
		return DECODE_OK;
	struct cur l4 = cur_sub(c, total - (c->off - start));
	return decode_l4(&l4, d);
}

#define IPV6_HLEN 40

static int ipv6_is_ext(uint8_t nh)
{
	return nh == IPPROTO_NUM_HOPOPTS || nh == IPPROTO_NUM_ROUTING || nh == IPPROTO_NUM_FRAGMENT ||
	       nh == IPPROTO_NUM_AH || nh == IPPROTO_NUM_DSTOPTS || nh == IPPROTO_NUM_MOBILITY;
}

/* Walks at most DECODE_MAX_IPV6_EXT extension headers (RFC 8200 §4); c covers
 * the payload. Sets *no_l4 for a non-first fragment. */
static enum decode_status ipv6_skip_ext(struct cur *c, struct decoded *d, int *no_l4)
{
	for (int i = 0; ipv6_is_ext(d->proto); i++) {
		uint8_t nh, hlen;
		uint16_t frag;
		if (i == DECODE_MAX_IPV6_EXT)
			return DECODE_IPV6_EXT_LIMIT;
		if (cur_u8(c, &nh) || cur_u8(c, &hlen))
			return DECODE_TRUNCATED;
		if (d->proto == IPPROTO_NUM_FRAGMENT) {
			/* RFC 8200 §4.5: fixed 8 bytes, offset in the top 13 bits. */
			if (cur_u16(c, &frag) || cur_skip(c, 4))
				return DECODE_TRUNCATED;
			if (frag >> 3)
				*no_l4 = 1;
		} else {
			/* AH counts 4-byte units minus 2 (RFC 4302); the others 8-byte units minus 1. */
			size_t n = d->proto == IPPROTO_NUM_AH ? ((size_t)hlen + 2) * 4 : ((size_t)hlen + 1) * 8;
			if (cur_skip(c, n - 2))
				return DECODE_TRUNCATED;
		}
		d->proto = nh;
		if (*no_l4)
			return DECODE_OK;
	}
	return DECODE_OK;
}

static enum decode_status decode_ipv6(struct cur *c, struct decoded *d)
{
	uint8_t b0, b1, hop;
	uint16_t plen;
	if (cur_u8(c, &b0) || cur_u8(c, &b1) || cur_skip(c, 2) || cur_u16(c, &plen) ||
	    cur_u8(c, &d->proto) || cur_u8(c, &hop) || cur_copy(c, d->src, 16) || cur_copy(c, d->dst, 16))
		return DECODE_TRUNCATED;
	/* A zero payload length means a jumbogram (RFC 2675), which no link we
	 * read can carry; refusing it keeps ip_len honest. */
	if (b0 >> 4 != 6 || plen == 0)
		return DECODE_BAD_IPV6;
	d->af = 6;
	d->tos = (uint8_t)((b0 & 0x0f) << 4 | b1 >> 4);
	d->ip_len = (uint32_t)plen + IPV6_HLEN;
	struct cur pl = cur_sub(c, plen);
	int no_l4 = 0;
	enum decode_status st = ipv6_skip_ext(&pl, d, &no_l4);
	if (st != DECODE_OK || no_l4)
		return st;
	return decode_l4(&pl, d);
}

static enum decode_status decode_ip_by_version(struct cur *c, struct decoded *d)
{
	if (cur_left(c) < 1)
		return DECODE_TRUNCATED;
	switch (c->p[c->off] >> 4) {
	case 4:
		return decode_ipv4(c, d);
	case 6:
		return decode_ipv6(c, d);
	default:
		return DECODE_NOT_IP;
	}
}

/* Dispatches on an ethertype, unwrapping up to DECODE_MAX_VLAN_TAGS tags. */
static enum decode_status decode_ethertype(struct cur *c, uint16_t type, struct decoded *d)
{
	for (int tags = 0; type == ETHERTYPE_VLAN || type == ETHERTYPE_QINQ || type == ETHERTYPE_QINQ_OLD;
	     tags++) {
		uint16_t tci;
		if (tags == DECODE_MAX_VLAN_TAGS)
			return DECODE_BAD_VLAN;
		if (cur_u16(c, &tci) || cur_u16(c, &type))
			return DECODE_TRUNCATED;
		if (tags == 0)
			d->vlan = tci & 0x0fff;
	}
	if (type == ETHERTYPE_IPV4)
		return decode_ipv4(c, d);
	if (type == ETHERTYPE_IPV6)
		return decode_ipv6(c, d);
	return DECODE_NOT_IP;
}

#define ETH_ADDRS_LEN 12
#define SLL_PROTO_OFFSET 14 /* packet type, ARPHRD, address length, 8-byte address */
#define SLL2_AFTER_PROTO 18 /* reserved, ifindex, ARPHRD, packet type, length, address */
#define NULL_HLEN 4
#define BSD_AF_INET 2
#define BSD_AF_INET6_MIN 10 /* 24, 28 or 30 depending on the BSD; Linux 10 */

static enum decode_status decode_null(struct cur *c, struct decoded *d)
{
	uint8_t h[NULL_HLEN];
	if (cur_copy(c, h, NULL_HLEN))
		return DECODE_TRUNCATED;
	/* The family is in the capturing host's byte order: accept either. */
	uint32_t le = (uint32_t)h[0] | (uint32_t)h[1] << 8 | (uint32_t)h[2] << 16 | (uint32_t)h[3] << 24;
	uint32_t be = (uint32_t)h[3] | (uint32_t)h[2] << 8 | (uint32_t)h[1] << 16 | (uint32_t)h[0] << 24;
	if (le == BSD_AF_INET || be == BSD_AF_INET || le >= BSD_AF_INET6_MIN || be >= BSD_AF_INET6_MIN)
		return decode_ip_by_version(c, d);
	return DECODE_NOT_IP;
}

enum decode_status decode_packet(int linktype, const uint8_t *p, size_t len, struct decoded *out)
{
	struct cur c = {p, p ? len : 0, 0};
	uint16_t type;
	memset(out, 0, sizeof(*out));
	switch (linktype) {
	case DECODE_LINK_EN10MB:
		if (cur_skip(&c, ETH_ADDRS_LEN) || cur_u16(&c, &type))
			return DECODE_TRUNCATED;
		return decode_ethertype(&c, type, out);
	case DECODE_LINK_SLL:
		if (cur_skip(&c, SLL_PROTO_OFFSET) || cur_u16(&c, &type))
			return DECODE_TRUNCATED;
		return decode_ethertype(&c, type, out);
	case DECODE_LINK_SLL2:
		if (cur_u16(&c, &type) || cur_skip(&c, SLL2_AFTER_PROTO))
			return DECODE_TRUNCATED;
		return decode_ethertype(&c, type, out);
	case DECODE_LINK_RAW:
	case DECODE_LINK_RAW_ALT:
	case DECODE_LINK_LINKTYPE_RAW:
		return decode_ip_by_version(&c, out);
	case DECODE_LINK_IPV4:
		return decode_ipv4(&c, out);
	case DECODE_LINK_IPV6:
		return decode_ipv6(&c, out);
	case DECODE_LINK_NULL:
		return decode_null(&c, out);
	default:
		return DECODE_BAD_LINK;
	}
}
