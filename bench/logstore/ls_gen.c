#include "ls_gen.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const gen_keys[GEN_FIELDS] = {
	"Instance_id", "snid", "ali-uid", "start", "end", "protocol", "srcaddr", "srcport",
	"dstaddr", "dstport", "packets", "bytes", "tcp-flags", "tos", "inport", "outport",
};

/* Eight gateways of two accounts, shaped like real ones. */
static const char *const gw_id[GEN_GATEWAYS] = {
	"sag-0ba2jexuewdv8a7ta", "sag-1k3m9qz7wrt5hx2lp", "sag-2mf8c4nq0s6yvj1dk",
	"sag-3pz6h2lx9b4rw8tqe", "sag-4ra1v7dj3n5kc0ygm", "sag-5tw9e3qk8f2mz6hbs",
	"sag-6yb4n8rc1g7pl5xvj", "sag-7dh2k6tz9m3qw1rfa",
};
static const char *const gw_sn[GEN_GATEWAYS] = {
	"sag1000c5a9e3f21", "sag1000d71b4a0c8", "sag1000e2f6c9d47", "sag1000f83a5b1e6",
	"sag10000a4d7c2f9", "sag10001b5e8d3a0", "sag10002c6f9e4b1", "sag10003d7a0f5c2",
};
static const char *const gw_uid[2] = {"1438215570923456", "1901437682215093"};

/* Services a branch office talks to, most used first. */
static const uint16_t dports[GEN_PORTS] = {443, 80, 53, 123, 8080, 22, 3389, 445, 993, 25, 8443, 5060};

static uint64_t mix(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

/* Uniform in (0, 1) from a stream position. */
static double unit(uint64_t *s)
{
	*s = mix(*s + 0x9e3779b97f4a7c15ULL);
	return ((double)(*s >> 11) + 0.5) / 9007199254740992.0;
}

static double *zipf_cdf(size_t n, double s)
{
	double *c = malloc(n * sizeof(*c)), sum = 0;
	if (!c)
		abort();
	for (size_t i = 0; i < n; i++)
		c[i] = (sum += 1.0 / pow((double)(i + 1), s));
	for (size_t i = 0; i < n; i++)
		c[i] /= sum;
	return c;
}

static uint32_t zipf_pick(const double *c, size_t n, double u)
{
	size_t lo = 0, hi = n - 1;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (c[mid] < u)
			lo = mid + 1;
		else
			hi = mid;
	}
	return (uint32_t)lo;
}

void gen_init(struct gen *g, uint64_t seed, uint64_t n, uint32_t t0, uint32_t span)
{
	*g = (struct gen){seed, n, t0, span, zipf_cdf(GEN_SRC_HOSTS, 1.2),
			  zipf_cdf(GEN_DST_HOSTS, 1.0), zipf_cdf(GEN_PORTS, 1.0)};
}

void gen_free(struct gen *g)
{
	free(g->src_cdf);
	free(g->dst_cdf);
	free(g->port_cdf);
}

static uint8_t pick_proto(double u)
{
	return u < 0.70 ? 6 : u < 0.95 ? 17 : 1;
}

void gen_record(const struct gen *g, uint64_t i, struct gen_rec *r)
{
	uint64_t s = mix(g->seed ^ mix(i));
	*r = (struct gen_rec){0};
	/* In time order: a day's records as a flow log exports them. */
	r->time = g->t0 + (uint32_t)((double)i * g->span / (double)g->n);
	r->src_rank = zipf_pick(g->src_cdf, GEN_SRC_HOSTS, unit(&s));
	/* Ranks scattered over 10.0.0.0/16 and 32.0.0.0/4 (odd multipliers are bijective). */
	r->src = 0x0a000000u | ((r->src_rank * 40503u) & 0xffffu);
	r->dst = 0x20000000u | ((zipf_pick(g->dst_cdf, GEN_DST_HOSTS, unit(&s)) * 2654435761u) & 0x0fffffffu);
	r->proto = pick_proto(unit(&s));
	r->dport = r->proto == 1 ? 0 : dports[zipf_pick(g->port_cdf, GEN_PORTS, unit(&s))];
	r->sport = r->proto == 1 ? 0 : (uint16_t)(32768 + unit(&s) * 28232);
	r->packets = (uint32_t)fmin(1.0 / pow(unit(&s), 1 / 1.2), 1e6);
	r->bytes = (uint64_t)r->packets * (uint64_t)(40 + unit(&s) * 1460);
	r->end = r->time - (uint32_t)(unit(&s) * 3);
	r->start = r->end - (r->packets > 1 ? (uint32_t)(unit(&s) * 60) : 0);
	static const uint8_t flags[] = {2, 16, 18, 24, 25, 27, 4};
	r->flags = r->proto == 6 ? flags[(size_t)(unit(&s) * 7)] : 0;
	r->tos = unit(&s) < 0.9 ? 0 : 184;
	r->gw = (uint8_t)(r->src_rank % GEN_GATEWAYS);
	r->inport = (uint8_t)(1 + r->gw % 4);
	r->outport = (uint8_t)(5 - r->inport);
}

static size_t put(char *arena, size_t at, const char **v, size_t *l, unsigned long long x)
{
	int n = snprintf(arena + at, GEN_TEXT_MAX - at, "%llu", x);
	*v = arena + at;
	*l = (size_t)n;
	return at + (size_t)n;
}

static size_t put_ip(char *arena, size_t at, const char **v, size_t *l, uint32_t a)
{
	int n = snprintf(arena + at, GEN_TEXT_MAX - at, "%u.%u.%u.%u", a >> 24, (a >> 16) & 255,
			 (a >> 8) & 255, a & 255);
	*v = arena + at;
	*l = (size_t)n;
	return at + (size_t)n;
}

size_t gen_text(const struct gen_rec *r, char *arena, const char *v[GEN_FIELDS],
		size_t l[GEN_FIELDS])
{
	size_t at = 0;
	const char *fixed[3] = {gw_id[r->gw], gw_sn[r->gw], gw_uid[r->gw / 4]};
	for (int k = 0; k < 3; k++) {
		v[k] = fixed[k];
		l[k] = strlen(fixed[k]);
	}
	at = put(arena, at, &v[3], &l[3], r->start);
	at = put(arena, at, &v[4], &l[4], r->end);
	at = put(arena, at, &v[5], &l[5], r->proto);
	at = put_ip(arena, at, &v[6], &l[6], r->src);
	at = put(arena, at, &v[7], &l[7], r->sport);
	at = put_ip(arena, at, &v[8], &l[8], r->dst);
	at = put(arena, at, &v[9], &l[9], r->dport);
	at = put(arena, at, &v[10], &l[10], r->packets);
	at = put(arena, at, &v[11], &l[11], (unsigned long long)r->bytes);
	at = put(arena, at, &v[12], &l[12], r->flags);
	at = put(arena, at, &v[13], &l[13], r->tos);
	at = put(arena, at, &v[14], &l[14], r->inport);
	at = put(arena, at, &v[15], &l[15], r->outport);
	return at;
}
