/* Per-caller request budgets: a token bucket per caller (an AccessKeyId, a
 * device's serial number), RATE tokens a second up to BURST, one token a request.
 *
 * Callers live in a fixed table of max_callers entries (sharded, one lock a
 * shard), found by a salted 64-bit hash of the name, kept in least-recently-used
 * order. A caller whose bucket has refilled to BURST is indistinguishable from
 * one never seen, so it is forgotten first when room is needed: eviction never
 * changes an answer. Only when every entry of a shard was used within the last
 * BURST/RATE seconds is a new caller refused (RATELIMIT_FULL) — a stated bound,
 * not a budget anyone else can spend. Memory: 40 bytes an entry, fixed at start. */
#ifndef CORE_RATELIMIT_H
#define CORE_RATELIMIT_H
#include <stdint.h>

#include "core/str.h"

#define RATELIMIT_SHARDS 16
#define RATELIMIT_MAX_RATE 1000000  /* requests a second, per caller */
#define RATELIMIT_MAX_BURST 10000000
#define RATELIMIT_MIN_CALLERS RATELIMIT_SHARDS
#define RATELIMIT_MAX_CALLERS (1u << 24)

struct ratelimit_rate {
	int64_t rate;  /* tokens a second, 1..RATELIMIT_MAX_RATE */
	int64_t burst; /* bucket size, 1..RATELIMIT_MAX_BURST */
};

enum ratelimit_result { RATELIMIT_OK, RATELIMIT_THROTTLED, RATELIMIT_FULL };

struct ratelimit;

/* max_callers: RATELIMIT_MIN_CALLERS..RATELIMIT_MAX_CALLERS (rounded up to a
 * power of two a shard). */
struct ratelimit *ratelimit_new(struct ratelimit_rate rate, uint32_t max_callers);
void ratelimit_free(struct ratelimit *rl); /* NULL is a no-op */

/* Takes one token from name's bucket at now_us (monotonic microseconds). */
enum ratelimit_result ratelimit_take(struct ratelimit *rl, struct str name, int64_t now_us);

/* The budget every caller of this table has. */
struct ratelimit_rate ratelimit_rate_of(const struct ratelimit *rl);

/* Callers tracked at now_us whose bucket is not full (metrics), and the table's capacity. */
uint64_t ratelimit_active(struct ratelimit *rl, int64_t now_us);
uint64_t ratelimit_capacity(const struct ratelimit *rl);

/* Parses "RATE[:BURST]" (integers; BURST defaults to 2 x RATE): 0 or -1. */
int ratelimit_rate_parse(struct str s, struct ratelimit_rate *out);

#endif
