/* The flow table of spec §2: unidirectional keys, records closed by the two
 * agings (on packets and on timers), by table pressure, before a 32-bit
 * counter overflows, and on flush. O(1) per packet; expiry touches only the
 * records it closes. Time is passed in (µs), never read from a clock. */
#ifndef METER_FLOWTABLE_H
#define METER_FLOWTABLE_H
#include <stddef.h>
#include <stdint.h>
#include "meter/flow.h"

#define FLOWTABLE_MIN_FLOWS 16
#define FLOWTABLE_MAX_FLOWS (1u << 26) /* 64 M records, ~6 GB: a hard ceiling */

struct flowtable_config {
	int64_t active_us;   /* ActiveAging */
	int64_t inactive_us; /* InactiveAging */
	uint32_t max_flows;  /* open records at most; more evicts the least recently seen */
};

typedef void (*flowtable_emit_fn)(void *ctx, const struct flow_rec *rec);

struct flowtable_stats {
	uint64_t opened;
	uint64_t closed[FLOW_END_COUNT];
	uint32_t open, peak;
};

struct flowtable;

struct flowtable *flowtable_new(const struct flowtable_config *cfg, flowtable_emit_fn emit, void *ctx);
void flowtable_free(struct flowtable *ft);
/* Counts one packet of ip_len bytes at time t_us (expires what is due first). */
void flowtable_packet(struct flowtable *ft, int64_t t_us, const struct flow_key *key, uint8_t tcp_flags,
		      uint32_t ip_len);
/* The same in two steps, so a caller holding a batch of packets can warm the
 * cache first: hash, prefetch (bucket, then record), then count. */
uint32_t flowtable_hash(const struct flowtable *ft, const struct flow_key *key);
void flowtable_prefetch_bucket(const struct flowtable *ft, uint32_t h);
void flowtable_prefetch_entry(const struct flowtable *ft, uint32_t h);
void flowtable_packet_hashed(struct flowtable *ft, int64_t t_us, const struct flow_key *key, uint32_t h,
			     uint8_t tcp_flags, uint32_t ip_len);
/* Closes every record whose aging has passed at now_us. */
void flowtable_expire(struct flowtable *ft, int64_t now_us);
/* Closes every open record with the given reason. */
void flowtable_flush(struct flowtable *ft, enum flow_end reason);
/* Changes the agings; open records keep counting under the new ones. */
void flowtable_set_aging(struct flowtable *ft, int64_t active_us, int64_t inactive_us);
void flowtable_stats(const struct flowtable *ft, struct flowtable_stats *out);
size_t flowtable_entry_size(void); /* bytes per record slot, for the benchmark */
size_t flowtable_memory(const struct flowtable *ft); /* bytes reserved by the table */

#endif
