#include "cli/serve_metrics.h"

#include <stdatomic.h>

#include "core/log.h"
#include "core/ratelimit.h"
#include "core/timeutil.h"
#include "device/device.h"
#include "http/http.h"
#include "metrics/metrics.h"
#include "rpc/rpc.h"
#include "store/store.h"
#include "store/store_sag.h"

enum { CACHE_API, CACHE_COUNT };
/* The device channel has no replay cache: its replay state is a sequence per
 * device in the store (docs/device-protocol.md). */
static const char *const serve_m_caches[CACHE_COUNT] = {"api"};
/* The Status values of domain.h's sag_status(), in store_device_status_counts' order. */
static const char *const serve_m_status[3] = {"Init", "Active", "Offline"};

static struct metrics_family *serve_m_replay, *serve_m_replay_cap, *serve_m_devices,
	*serve_m_held, *serve_m_held_max, *serve_m_conns, *serve_m_conns_max, *serve_m_callers,
	*serve_m_callers_max;
enum { CALLERS_KEY, CALLERS_DEVICE, CALLERS_COUNT };
static const char *const serve_m_caller_kinds[CALLERS_COUNT] = {"key", "device"};

static struct {
	struct store *st;
	struct rpc_server *rpc;
	struct device_server *dev;
	int64_t online_ms;
	struct ratelimit *budgets[CALLERS_COUNT];
	struct http_server *_Atomic http;
} serve_m_src;

void serve_metrics_enable(void)
{
	struct metrics_label cache = {"cache", serve_m_caches, CACHE_COUNT};
	store_metrics_enable();
	rpc_metrics_enable();
	serve_m_replay = metrics_add(&(struct metrics_def){
	    .name = "sagflow_replay_cache_entries",
	    .help = "SignatureNonces of the API remembered against replay.",
	    .type = METRICS_GAUGE, .label = {cache}});
	serve_m_replay_cap = metrics_add(&(struct metrics_def){
	    .name = "sagflow_replay_cache_capacity",
	    .help = "Nonces the replay cache can hold; when full, requests are refused.",
	    .type = METRICS_GAUGE, .label = {cache}});
	serve_m_held = metrics_add(&(struct metrics_def){
	    .name = "sagflow_held_syncs",
	    .help = "Device syncs held now, waiting for a change of their configuration (long-poll).",
	    .type = METRICS_GAUGE});
	serve_m_held_max = metrics_add(&(struct metrics_def){
	    .name = "sagflow_held_syncs_max",
	    .help = "The most device syncs held at once (--max-held-syncs); past it syncs are answered at once.",
	    .type = METRICS_GAUGE});
	serve_m_conns = metrics_add(&(struct metrics_def){
	    .name = "sagflow_connections",
	    .help = "Connections open on the API listener (held syncs included).",
	    .type = METRICS_GAUGE});
	serve_m_conns_max = metrics_add(&(struct metrics_def){
	    .name = "sagflow_connections_max",
	    .help = "The connection bound in force (--max-connections, lowered to ulimit -n); past it, 503.",
	    .type = METRICS_GAUGE});
	struct metrics_label kind = {"kind", serve_m_caller_kinds, CALLERS_COUNT};
	serve_m_callers = metrics_add(&(struct metrics_def){
	    .name = "sagflow_tracked_callers",
	    .help = "AccessKeys and devices whose request budget is not full (used within BURST/RATE seconds).",
	    .type = METRICS_GAUGE, .label = {kind}});
	serve_m_callers_max = metrics_add(&(struct metrics_def){
	    .name = "sagflow_tracked_callers_max",
	    .help = "The most callers of each kind tracked at once (--max-callers).",
	    .type = METRICS_GAUGE, .label = {kind}});
	serve_m_devices = metrics_add(&(struct metrics_def){
	    .name = "sagflow_devices",
	    .help = "Bound devices by the status their own last report gives (Init: never "
		    "reported).",
	    .type = METRICS_GAUGE, .label = {{"status", serve_m_status, 3}}});
}

static int read_status(struct store_tx *tx, void *arg)
{
	return store_device_status_counts(tx, time_now_ms(), serve_m_src.online_ms, arg);
}

/* On the metrics thread, at each scrape: one scan of the devices table and a
 * pass over each replay cache's shards. */
static void serve_metrics_scrape(void *arg)
{
	uint64_t cap;
	metrics_set(serve_m_replay, CACHE_API, 0,
		    (int64_t)rpc_replay_entries(serve_m_src.rpc, &cap));
	metrics_set(serve_m_replay_cap, CACHE_API, 0, (int64_t)cap);
	for (unsigned k = 0; k < CALLERS_COUNT; k++) {
		struct ratelimit *rl = serve_m_src.budgets[k];
		metrics_set(serve_m_callers, k, 0, (int64_t)ratelimit_active(rl, time_mono_us()));
		metrics_set(serve_m_callers_max, k, 0, (int64_t)ratelimit_capacity(rl));
	}
	struct http_server *h = atomic_load(&serve_m_src.http);
	if (h) {
		unsigned max;
		metrics_set(serve_m_conns, 0, 0, http_connections(h, &max));
		metrics_set(serve_m_conns_max, 0, 0, max);
	}
	unsigned held_max;
	metrics_set(serve_m_held, 0, 0, device_held(serve_m_src.dev, &held_max));
	metrics_set(serve_m_held_max, 0, 0, held_max);
	int64_t counts[3];
	if (store_read(serve_m_src.st, read_status, counts) != 0) {
		log_warn("serve: metrics: cannot count devices; sagflow_devices keeps its last values");
		return;
	}
	for (unsigned i = 0; i < 3; i++)
		metrics_set(serve_m_devices, i, 0, counts[i]);
}

void serve_metrics_watch(struct store *st, struct rpc_server *rpc, struct device_server *dev,
			 int64_t online_ms, struct ratelimit *keys, struct ratelimit *devices)
{
	serve_m_src.budgets[CALLERS_KEY] = keys;
	serve_m_src.budgets[CALLERS_DEVICE] = devices;
	serve_m_src.st = st;
	serve_m_src.rpc = rpc;
	serve_m_src.dev = dev;
	serve_m_src.online_ms = online_ms;
	metrics_on_scrape(serve_metrics_scrape, NULL);
}

void serve_metrics_http(struct http_server *h)
{
	atomic_store(&serve_m_src.http, h);
}
