/* serve's metrics (docs/metrics.md): the store's and the RPC layer's counters
 * plus gauges read when /metrics is scraped (the replay caches, devices by
 * status). */
#ifndef CLI_SERVE_METRICS_H
#define CLI_SERVE_METRICS_H
#include <stdint.h>

struct store;
struct rpc_server;
struct device_server;
struct http_server;
struct ratelimit;

/* Registers every family; call before store_open (the writer counts from its start). */
void serve_metrics_enable(void);
/* Gives the scrape-time gauges their sources; the objects must outlive the
 * metrics endpoint. */
void serve_metrics_watch(struct store *st, struct rpc_server *rpc, struct device_server *dev,
			 int64_t online_ms, struct ratelimit *keys, struct ratelimit *devices);
/* The API listener, once started (connections gauge); NULL until then. */
void serve_metrics_http(struct http_server *h);

#endif
