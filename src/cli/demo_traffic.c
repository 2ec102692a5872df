/* demo_traffic.h: three heavy talkers (30 %, 20 % and 10 % of the packets,
 * 1,400 bytes), a tail of 40 hosts on DNS, HTTP and HTTPS, a rate that ebbs
 * between 0.3 and 1.0 times DEMO_BASE_RATE, and a backup job (rsync, 1,500
 * bytes) from 10.1.0.99 in the first DEMO_BURST_S seconds of every minute. */
#include "cli/demo_traffic.h"

#include <math.h>
#include <pcap/pcap.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEMO_SNAPLEN 65535
#define DEMO_IPV4_HDR 20
#define DEMO_TCP_HDR 20
#define DEMO_UDP_HDR 8
#define DEMO_TAIL_HOSTS 40
#define DEMO_PI 3.14159265358979323846

struct talker {
	double share;
	uint8_t src[4], dst[4];
	uint16_t dport;
};

static const struct talker heavy[] = {
    {0.3, {10, 1, 0, 10}, {203, 0, 113, 10}, 443},
    {0.2, {10, 1, 0, 11}, {203, 0, 113, 20}, 443},
    {0.1, {10, 1, 0, 12}, {198, 51, 100, 5}, 22},
};

/* The tail's three kinds of traffic: protocol, port, IP length. */
static const struct {
	uint8_t proto;
	uint16_t dport, ip_len;
} tail[] = {{17, 53, 90}, {6, 80, 600}, {6, 443, 900}};

/* splitmix64: a small, good generator; seeded by the tick, so a tick repeats. */
static uint64_t rng_next(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static double rng_unit(uint64_t *s)
{
	return (double)(rng_next(s) >> 11) / (double)(1ull << 53);
}

static void tail_packet(uint64_t *s, struct demo_packet *p)
{
	unsigned host = 20 + (unsigned)(rng_unit(s) * DEMO_TAIL_HOSTS);
	unsigned kind = (unsigned)(rng_unit(s) * 3);
	memcpy(p->src, (uint8_t[]){10, 1, 1, (uint8_t)host}, 4);
	memcpy(p->dst, (uint8_t[]){192, 0, 2, (uint8_t)(1 + kind)}, 4);
	p->proto = tail[kind].proto;
	p->sport = (uint16_t)(30000 + host);
	p->dport = tail[kind].dport;
	p->ip_len = tail[kind].ip_len;
}

static void one_packet(uint64_t *s, struct demo_packet *p)
{
	double r = rng_unit(s), acc = 0;
	for (size_t i = 0; i < sizeof(heavy) / sizeof(heavy[0]); i++) {
		acc += heavy[i].share;
		if (r < acc) {
			memcpy(p->src, heavy[i].src, 4);
			memcpy(p->dst, heavy[i].dst, 4);
			p->proto = 6;
			p->sport = 50000;
			p->dport = heavy[i].dport;
			p->ip_len = 1400;
			return;
		}
	}
	tail_packet(s, p);
}

static void burst_packet(struct demo_packet *p)
{
	memcpy(p->src, (uint8_t[]){10, 1, 0, 99}, 4);
	memcpy(p->dst, (uint8_t[]){203, 0, 113, 99}, 4);
	p->proto = 6;
	p->sport = 51000;
	p->dport = 873;
	p->ip_len = 1500;
}

static int by_time(const void *a, const void *b)
{
	int64_t x = ((const struct demo_packet *)a)->ts_us,
		y = ((const struct demo_packet *)b)->ts_us;
	return (x > y) - (x < y);
}

size_t demo_traffic_tick(int64_t t0_s, struct demo_packet *out, size_t cap)
{
	uint64_t seed = (uint64_t)t0_s;
	double rate =
	    DEMO_BASE_RATE * (0.65 + 0.35 * sin(2 * DEMO_PI * (double)t0_s / DEMO_EBB_PERIOD_S));
	size_t n = 0, want = (size_t)lround(rate * DEMO_TICK_S);
	for (size_t i = 0; i < want && n < cap; i++, n++)
		one_packet(&seed, &out[n]);
	if (t0_s % 60 < DEMO_BURST_S)
		for (size_t i = 0; i < DEMO_BURST_RATE * DEMO_TICK_S && n < cap; i++, n++)
			burst_packet(&out[n]);
	for (size_t i = 0; i < n; i++)
		out[i].ts_us = t0_s * 1000000 + (int64_t)(rng_unit(&seed) * DEMO_TICK_S * 1e6);
	qsort(out, n, sizeof(*out), by_time);
	return n;
}

static void put16(uint8_t *b, uint16_t v)
{
	b[0] = (uint8_t)(v >> 8);
	b[1] = (uint8_t)v;
}

/* RFC 791 §3.1 header checksum: the ones' complement of the ones' complement sum. */
static uint16_t ipv4_checksum(const uint8_t *h)
{
	uint32_t sum = 0;
	for (size_t i = 0; i < DEMO_IPV4_HDR; i += 2)
		sum += (uint32_t)(h[i] << 8 | h[i + 1]);
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

/* The IPv4 header and the transport header (RFC 791, 793, 768); returns the bytes. */
static size_t headers(const struct demo_packet *p, uint16_t id, uint8_t *b)
{
	size_t l4 = p->proto == 6 ? DEMO_TCP_HDR : DEMO_UDP_HDR;
	memset(b, 0, DEMO_IPV4_HDR + l4);
	b[0] = 0x45;
	put16(b + 2, p->ip_len);
	put16(b + 4, id);
	b[8] = 64;
	b[9] = p->proto;
	memcpy(b + 12, p->src, 4);
	memcpy(b + 16, p->dst, 4);
	put16(b + 10, ipv4_checksum(b));
	uint8_t *t = b + DEMO_IPV4_HDR;
	put16(t, p->sport);
	put16(t + 2, p->dport);
	if (p->proto == 6) {
		t[12] = 5 << 4; /* data offset: 5 words */
		t[13] = 0x18;	/* PSH, ACK */
		put16(t + 14, 65535);
	} else {
		put16(t + 4, (uint16_t)(p->ip_len - DEMO_IPV4_HDR));
	}
	return DEMO_IPV4_HDR + l4;
}

int demo_traffic_write(const char *path, const struct demo_packet *p, size_t n, char *err,
		       size_t errlen)
{
	pcap_t *pd = pcap_open_dead(DLT_RAW, DEMO_SNAPLEN);
	pcap_dumper_t *d = pd ? pcap_dump_open(pd, path) : NULL;
	if (!d) {
		snprintf(err, errlen, "%s: %s", path,
			 pd ? pcap_geterr(pd) : "pcap_open_dead failed");
		if (pd)
			pcap_close(pd);
		return -1;
	}
	uint8_t b[DEMO_IPV4_HDR + DEMO_TCP_HDR];
	for (size_t i = 0; i < n; i++) {
		struct pcap_pkthdr h = {
		    .ts = {.tv_sec = p[i].ts_us / 1000000, .tv_usec = p[i].ts_us % 1000000}};
		h.caplen = (bpf_u_int32)headers(&p[i], (uint16_t)i, b);
		h.len = p[i].ip_len;
		pcap_dump((u_char *)d, &h, b);
	}
	int rc = pcap_dump_flush(d) == 0 ? 0 : -1;
	if (rc < 0)
		snprintf(err, errlen, "%s: write failed", path);
	pcap_dump_close(d);
	pcap_close(pd);
	return rc;
}
