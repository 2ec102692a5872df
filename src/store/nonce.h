/* The replay cache: a (AccessKeyId, SignatureNonce) pair is accepted once
 * while its request could still pass the timestamp check.
 *
 * Partitioned by AccessKeyId: each key's nonces live in a partition of their
 * own (a ring of entries in arrival order, expired from the front, and a
 * chained hash index), so no key's traffic can take room from another's. A
 * partition grows by doubling as its key needs, up to per_key entries — set
 * from the key's request budget to RATE x 1801 + BURST, the most a key within
 * its budget can hold live (a nonce lives until its timestamp + 15 min, and a
 * timestamp may be 15 min ahead) — and shrinks back once its nonces expired.
 * All partitions together hold at most max_entries (`serve --replay-cache`), a
 * safety bound. When a partition cannot grow, its key's request is refused
 * (fail closed) rather than forgetting a nonce early.
 *
 * Entries are a 64-bit tag of SHA-256(salt, nonce) and an expiry (16 bytes,
 * plus a 4-byte hash index slot: 20 bytes an entry of capacity). Partitions are
 * found through NONCE_SHARDS locked shards keyed by a salted hash of the
 * AccessKeyId. The cache is in memory: a restart forgets nonces, and the
 * timestamp window alone then bounds how long a captured request stays
 * replayable. */
#ifndef STORE_NONCE_H
#define STORE_NONCE_H
#include <stdint.h>

#include "core/str.h"

#define NONCE_SHARDS 64
#define NONCE_MAX_ENTRIES (1u << 23) /* default bound of all partitions; 20 bytes each (160 MiB) */
#define NONCE_MIN_ENTRIES (NONCE_SHARDS * 16) /* `serve --replay-cache` bounds */
#define NONCE_LIMIT_ENTRIES (1u << 28)       /* 5 GiB */
#define NONCE_PART_MIN 64            /* a partition's first capacity */
#define NONCE_ENTRY_BYTES 20         /* memory per entry of capacity */
#define NONCE_LIFETIME_S 1801        /* the longest a nonce lives: timestamp window x 2 + 1 */
#define NONCE_MAX_LEN 256            /* bytes of a SignatureNonce */

enum nonce_result { NONCE_FRESH, NONCE_USED, NONCE_FULL };

struct nonce_cache;

/* max_entries: 0 for NONCE_MAX_ENTRIES; per_key: the most one key's partition
 * holds (0: max_entries). Tests pass small numbers. */
struct nonce_cache *nonce_new(uint32_t max_entries, uint32_t per_key);
void nonce_free(struct nonce_cache *c); /* NULL is a no-op */

/* The per_key quota for a budget of rate requests/s in bursts of burst. */
uint32_t nonce_per_key(int64_t rate, int64_t burst);

/* Records (akid, nonce) until expires_s (epoch seconds) unless already seen and
 * unexpired at now_s. */
enum nonce_result nonce_check(struct nonce_cache *c, struct str akid, struct str nonce,
			      int64_t now_s, int64_t expires_s);

/* Entries live at now_s (expired ones are dropped first, emptied partitions
 * shrunk), and the most all partitions hold; for the metrics. */
uint64_t nonce_live(struct nonce_cache *c, int64_t now_s);
uint64_t nonce_capacity(const struct nonce_cache *c);

#endif
