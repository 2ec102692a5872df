/* What makes N `sagflow serve` nodes on one PostgreSQL safe, as pure rules
 * (no libpq here, so they are unit-tested everywhere): where a nonce goes in
 * the shared nonce table, which of its partitions may be emptied, and which
 * requests a database crash obliges every node to refuse. docs/store.md,
 * "N nodes", has the design; pg_admit.c and pg_listen.c use these.
 *
 * The nonce table (sql/pg/0009_nodes.sql) is UNLOGGED and list-partitioned into
 * PG_NONCE_BUCKETS partitions by bucket = (expires / PG_NONCE_WINDOW_S) %
 * PG_NONCE_BUCKETS: a partition holds ten-window-apart windows, and one whose
 * every window is past or not yet begun is TRUNCATEd whole (no DELETE, no
 * expiry column, no vacuum debt). */
#ifndef STORE_PG_NODES_H
#define STORE_PG_NODES_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/str.h"

#define PG_NONCE_BUCKETS 10
#define PG_NONCE_WINDOW_S 300	 /* seconds of `expires` one window spans */
#define PG_NONCE_LIFETIME_S 1801 /* expires - now at admission is in [1, 1801] (nonce.h) */
/* How far a node's clock, and the time between the sweeper's decision and its
 * TRUNCATE, may be off: a window counts as live this much before and after
 * the span any node could be writing or reading. A partition is then free for
 * 900 - 2 x 120 = 660 s of every 3000, about 11 sweeps. */
#define PG_NONCE_SKEW_S 120
#define PG_SWEEP_PERIOD_S 60
#define PG_NONCE_TAG_LEN 16  /* bytes of the tag: a uuid column */
#define PG_NONCE_TAG_TEXT 36 /* its text form, 8-4-4-4-12 hex */
/* After a crash emptied the nonce table, requests signed before the new
 * horizon are refused until it is this old (the timestamp window). */
#define PG_HORIZON_S 900

/* The partition of a nonce remembered until expires_s (epoch seconds, > 0). */
unsigned pg_nonce_bucket(int64_t expires_s);

/* Whether any node may still insert or look up a nonce in partition bucket at
 * now_s (the sweeper's clock): some window k ≡ bucket (mod 10) meets the
 * expiries [now + 1 - SKEW, now + LIFETIME + SKEW]. A partition that is not
 * live may be truncated. */
bool pg_nonce_bucket_live(unsigned bucket, int64_t now_s);

/* The tag of (who, nonce): the first 16 bytes of SHA-256(len(who) as 4 bytes
 * big-endian ‖ who ‖ nonce), as uuid text with a NUL (PG_NONCE_TAG_TEXT + 1).
 * The length prefix keeps ("ab", "c") and ("a", "bc") apart. */
void pg_nonce_tag(struct str who, struct str nonce, char out[PG_NONCE_TAG_TEXT + 1]);

/* Whether a request with Timestamp ts_s must be refused at now_s because the
 * nonce table was emptied at horizon_s (0: no horizon known, refuse nothing):
 * it may have been admitted before the crash, and nobody remembers it. */
bool pg_horizon_refuses(int64_t ts_s, int64_t now_s, int64_t horizon_s);

#endif
