/* The RPC endpoint: one HTTP route ("/") that parses, authenticates and
 * dispatches Alibaba RPC requests to the action table (api/api.h), in the order
 * of spec §5.7:
 *
 *   parse → variant (V3 Authorization / V1 Signature / IncompleteSignature)
 *   → Version → Action → AccessKeyId → Timestamp and its ±15 min window
 *   → signature → nonce → the action's handler.
 *
 * The handler finishes through api_finish(), from any thread; the response is
 * rendered (JSON or XML) and the access-log line written then. */
#ifndef RPC_RPC_H
#define RPC_RPC_H
#include "api/api.h"
#include "http/http.h"

#define RPC_API_VERSION "2018-03-13"
#define RPC_TIME_WINDOW_S 900 /* ±15 minutes, spec §5.2 */
#define RPC_MAX_ACTION 64     /* bytes of an action name */
#define RPC_GRACE_MS 10000    /* shutdown: how long in-flight requests get before we warn */

/* What api_finish() calls: api_call.priv points at one of these. The adapter's
 * comes first in its per-request state; a unit test can supply its own. */
struct api_finisher {
	void (*done)(struct api_call *c);
};

struct rpc_server;

struct ratelimit;
/* nonce_entries: 0 for NONCE_MAX_ENTRIES (the store's replay memory,
 * store_admit_limits; the store keeps it, so it outlives this server). answer_cache: whether read-only
 * answers are kept (rpc/cache.h); false builds every answer from the store.
 * keys: the per-AccessKey budgets (checked after the signature, before the
 * nonce), owned by the caller, or NULL for none. */
struct rpc_server *rpc_new(struct store *store, const struct api_config *cfg,
			   unsigned nonce_entries, bool answer_cache, struct ratelimit *keys);
void rpc_free(struct rpc_server *s); /* NULL is a no-op */

/* Registers the RPC metrics (requests by action and code, their duration, the
 * answer cache's hits and misses; docs/metrics.md). Call once, before any
 * request; without it nothing is counted. */
void rpc_metrics_enable(void);

/* Why a request was refused for fairness or a bound: the kind label of
 * sagflow_throttled_total (docs/metrics.md). */
#define RPC_THROTTLED_MAP(X)                                                                     \
	X(KEY, "key")                   /* an AccessKey past its budget: Throttling.User */      \
	X(KEYS_FULL, "key_table")       /* too many AccessKeys active at once: Throttling */     \
	X(REPLAY_FULL, "replay_cache")  /* the replay cache's budget spent: Throttling */        \
	X(DEVICE, "device")             /* a device past its budget: Device.Throttled */         \
	X(DEVICES_FULL, "device_table") /* too many devices active at once: Device.Busy */       \
	X(HELD_FULL, "held_syncs")      /* long-poll: too many held syncs, answered at once */
enum rpc_throttled {
#define RPC_THR_ENUM(name, label) RPC_THROTTLED_##name,
	RPC_THROTTLED_MAP(RPC_THR_ENUM)
#undef RPC_THR_ENUM
	RPC_THROTTLED__COUNT
};
/* Counts one refusal of that kind (nothing unless rpc_metrics_enable ran). */
void rpc_count_throttled(enum rpc_throttled kind);

/* The replay cache's live SignatureNonces and its capacity (metrics). */
uint64_t rpc_replay_entries(struct rpc_server *s, uint64_t *capacity);

/* The "/" route handler; route_arg must be the rpc_server. */
void rpc_handle(struct http_request *r);
/* The HTTP adapter's on_error: renders 404/405/413/414/503 as an RPC error body. */
void rpc_http_error(struct http_request *r, int status, const char *why);
/* GET /healthz (route_arg: the rpc_server, or NULL): 200 "ok" while the
 * store can reach its database, else 503 (PostgreSQL unreachable). */
void rpc_healthz(struct http_request *r);

#endif
