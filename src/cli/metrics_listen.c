#include "cli/metrics_listen.h"

#include <stdio.h>
#include <string.h>

#include "cli/opts.h"
#include "http/http.h"
#include "metrics/metrics.h"

int cli_metrics_parse(const char *v, struct cli_metrics_addr *a)
{
	if (cli_parse_hostport(v, a->host, sizeof(a->host), &a->port) < 0)
		return -1;
	a->on = true;
	return 0;
}

static void metrics_handler(struct http_request *r)
{
	struct buf b = {0};
	metrics_write(&b);
	size_t len = b.len;
	http_respond_owned(r, 200, METRICS_CONTENT_TYPE, buf_steal(&b), len);
}

static void healthz_handler(struct http_request *r)
{
	http_respond(r, 200, "text/plain;charset=utf-8", STR_LIT("ok\n"));
}

struct http_server *cli_metrics_start(const struct cli_metrics_addr *a)
{
	/* One thread: a scrape a second needs no more, and it keeps the
	 * exposition off the API's threads. */
	struct http_config hc = {.host = a->host, .port = a->port, .threads = 1};
	struct http_server *h = http_server_new(&hc);
	http_route_add(h, "GET", CLI_METRICS_PATH, metrics_handler, NULL);
	http_route_add(h, "GET", "/healthz", healthz_handler, NULL);
	if (http_server_start(h) < 0) {
		http_server_free(h);
		return NULL;
	}
	return h;
}

void cli_metrics_where(const struct cli_metrics_addr *a, const struct http_server *h, char *out,
		       unsigned cap)
{
	snprintf(out, cap, strchr(a->host, ':') ? "[%s]:%u" : "%s:%u", a->host,
		 http_server_port(h));
}
