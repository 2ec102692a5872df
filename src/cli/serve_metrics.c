#include "cli/serve_metrics.h"

#include "core/log.h"
#include "core/timeutil.h"
#include "device/device.h"
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
	*serve_m_held, *serve_m_held_max;

static struct {
	struct store *st;
	struct rpc_server *rpc;
	struct device_server *dev;
	int64_t online_ms;
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
			 int64_t online_ms)
{
	serve_m_src.st = st;
	serve_m_src.rpc = rpc;
	serve_m_src.dev = dev;
	serve_m_src.online_ms = online_ms;
	metrics_on_scrape(serve_metrics_scrape, NULL);
}
