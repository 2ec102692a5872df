/* The replay cache: a (AccessKeyId, SignatureNonce) pair is accepted once
 * while its request could still pass the timestamp check.
 *
 * Entries are a 64-bit tag of SHA-256(salt, AccessKeyId, nonce) and an expiry;
 * each of NONCE_SHARDS shards has its own lock, a ring of entries in arrival
 * order (expired from the front) and a chained hash index, so a check is O(1)
 * and memory is fixed at start-up. When a shard is full of live entries the
 * request is refused (fail closed) rather than forgetting a nonce early. The
 * cache is in memory: a restart forgets nonces, and the timestamp window alone
 * then bounds how long a captured request stays replayable. */
#ifndef RPC_NONCE_H
#define RPC_NONCE_H
#include <stdint.h>

#include "core/str.h"

#define NONCE_SHARDS 64
#define NONCE_MAX_ENTRIES (1u << 21) /* default whole cache; 16 bytes each (32 MiB) */
#define NONCE_MIN_ENTRIES (NONCE_SHARDS * 16) /* `serve --replay-cache` bounds */
#define NONCE_LIMIT_ENTRIES (1u << 28)       /* 4 GiB */
#define NONCE_MAX_LEN 256            /* bytes of a SignatureNonce */

enum nonce_result { NONCE_FRESH, NONCE_USED, NONCE_FULL };

struct nonce_cache;

/* max_entries: 0 for NONCE_MAX_ENTRIES (tests pass small numbers). */
struct nonce_cache *nonce_new(uint32_t max_entries);
void nonce_free(struct nonce_cache *c); /* NULL is a no-op */

/* Records (akid, nonce) until expires_s (epoch seconds) unless already seen and
 * unexpired at now_s. */
enum nonce_result nonce_check(struct nonce_cache *c, struct str akid, struct str nonce,
			      int64_t now_s, int64_t expires_s);

/* Entries live at now_s (expired ones are dropped first), and the most the
 * cache holds; for the metrics. */
uint64_t nonce_live(struct nonce_cache *c, int64_t now_s);
uint64_t nonce_capacity(const struct nonce_cache *c);

#endif
