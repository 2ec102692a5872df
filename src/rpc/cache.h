/* A bounded cache of rendered answers for read-only actions whose answer
 * depends only on the caller's account, the API parameters and the stored data
 * (DescribeFlowLogs and the like; not gateway listings, whose Status depends on
 * the clock).
 *
 * Why: Terraform and consoles poll the same pages; building a 50-item page
 * costs several times what sending its bytes does. Each entry is labelled with
 * the caller's account's data version as store_admit read it, after the
 * request arrived and *before* the read transaction that built it (on
 * PostgreSQL from the database, in the nonce's round trip), and is served only while that version is
 * current, so an answer never predates a write that was acknowledged before
 * the request arrived. Writes are scoped to the account they change (every API
 * write, and device reports to their gateway's account), so one tenant's
 * writes and devices do not empty the others' cache. The RequestId of a hit is
 * rewritten in place.
 *
 * On SQLite the version is this process's own counter: it assumes this process
 * is the only writer of the data it caches (one `sagflow serve` per database);
 * `serve --no-answer-cache` turns the cache off where that does not hold. On
 * PostgreSQL the version is read from the database, so N nodes may share it. */
#ifndef RPC_CACHE_H
#define RPC_CACHE_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RCACHE_SHARDS 64
#define RCACHE_SLOTS 16           /* per shard: 1,024 answers in all */
#define RCACHE_MAX_KEY 4096       /* a request with a longer key is not cached */
#define RCACHE_MAX_BODY (1 << 20) /* nor is an answer larger than this */

struct rcache;

struct rcache_hit {
	char *body; /* malloc'd copy */
	size_t len;
	size_t rid_off; /* where the RequestId's 36 characters start */
	const char *content_type;
};

struct rcache *rcache_new(void);
void rcache_free(struct rcache *c); /* NULL is a no-op */
bool rcache_get(struct rcache *c, const char *key, size_t klen, uint64_t version,
		struct rcache_hit *out);
/* content_type must be a string that lives forever (render's constants). */
void rcache_put(struct rcache *c, const char *key, size_t klen, uint64_t version, const char *body,
		size_t len, size_t rid_off, const char *content_type);

#endif
