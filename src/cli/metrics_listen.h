/* The --metrics-listen endpoint of `serve` and `agent`: its own HTTP server
 * instance (one thread, apart from the API's) answering GET /metrics with the
 * exposition of metrics/metrics.h and GET /healthz; other paths get 404,
 * other methods 405. Off unless the option is given (docs/metrics.md). */
#ifndef CLI_METRICS_LISTEN_H
#define CLI_METRICS_LISTEN_H
#include <stdbool.h>
#include <stdint.h>

#define CLI_METRICS_MAX_HOST 256
#define CLI_METRICS_PATH "/metrics"

struct cli_metrics_addr {
	bool on;
	char host[CLI_METRICS_MAX_HOST];
	uint16_t port; /* 0: a free port, see cli_metrics_port */
};

struct http_server;

/* Parses --metrics-listen's HOST:PORT into *a (and turns it on); -1 when malformed. */
int cli_metrics_parse(const char *v, struct cli_metrics_addr *a);
/* Starts serving; NULL with a logged reason. */
struct http_server *cli_metrics_start(const struct cli_metrics_addr *a);
/* "HOST:PORT" (IPv6 in brackets) of the running endpoint, for the start-up line. */
void cli_metrics_where(const struct cli_metrics_addr *a, const struct http_server *h, char *out,
		       unsigned cap);

#endif
