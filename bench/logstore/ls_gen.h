/* SAG flow records for bench/logstore (spec log-service.md §2.2 fields),
 * generated from a seed: the same seed and index always give the same record,
 * so PutLogs, the bare SQLite loop and the expected query answers all see the
 * same rows without keeping 10 million of them in memory.
 *
 * Distributions: srcaddr Zipf(1.2) over 65,536 inside hosts (a few heavy
 * talkers), dstaddr Zipf(1.0) over 1,048,576 outside hosts, dstport Zipf over
 * a list of services, random ephemeral srcports, TCP/UDP/ICMP 70/25/5,
 * Pareto packets with 40-1500 bytes each, 8 gateways. Records come in time
 * order over [t0, t0 + span), as a flow log delivers them. */
#ifndef BENCH_LS_GEN_H
#define BENCH_LS_GEN_H
#include <stddef.h>
#include <stdint.h>

#define GEN_SRC_HOSTS 65536
#define GEN_DST_HOSTS 1048576
#define GEN_GATEWAYS 8
#define GEN_PORTS 12 /* destination services */
#define GEN_FIELDS 16 /* the SAG fields of spec §2.2 */

struct gen_rec {
	uint32_t time, start, end;
	uint32_t src_rank, src, dst; /* src, dst: IPv4 as host-order integers */
	uint16_t sport, dport;
	uint32_t packets;
	uint64_t bytes;
	uint8_t proto, flags, tos, inport, outport, gw;
};

struct gen {
	uint64_t seed;
	uint64_t n;
	uint32_t t0, span;
	double *src_cdf, *dst_cdf, *port_cdf;
};

void gen_init(struct gen *g, uint64_t seed, uint64_t n, uint32_t t0, uint32_t span);
void gen_free(struct gen *g);
void gen_record(const struct gen *g, uint64_t i, struct gen_rec *r);

/* The record's 16 fields as text, in the order of gen_keys; values point into
 * arena (at least GEN_TEXT_MAX bytes). Returns the bytes used. */
#define GEN_TEXT_MAX 256
extern const char *const gen_keys[GEN_FIELDS];
size_t gen_text(const struct gen_rec *r, char *arena, const char *vals[GEN_FIELDS],
		size_t lens[GEN_FIELDS]);

#endif
