/* The agent's HTTP transport: one blocking POST at a time over libcurl
 * (http:// and https://, TLS verified against the system trust store or a CA
 * file, proxies from the environment — http_proxy, https_proxy, no_proxy —,
 * IPv6, keep-alive through a reused easy handle). Every exchange has a
 * connect timeout, a total timeout and a bound on the answer's body; nothing
 * here knows what the bytes mean (src/device/client.c, src/agent/slssend.c).
 * Not thread-safe: one transport per thread.
 *
 *   struct transport *t = transport_new(ca_file);
 *   struct transport_req rq = {.url = u, .headers = h, .nheaders = n, .body = b, ...};
 *   struct transport_answer a = {0};
 *   enum transport_status st = transport_post(t, &rq, &a, err, sizeof(err));
 *   buf_free(&a.body); transport_free(t); */
#ifndef DEVICE_TRANSPORT_H
#define DEVICE_TRANSPORT_H
#include <stdbool.h>
#include <stddef.h>

#include "core/str.h"

#define TRANSPORT_MAX_HEADERS 16 /* request headers of one exchange */

enum transport_status {
	TRANSPORT_OK,	     /* an HTTP answer (any status) */
	TRANSPORT_FAILED,    /* no answer: connect, timeout, reset, answer too large */
	TRANSPORT_UNTRUSTED, /* TLS: the server's certificate is not trusted, or its name does not match */
};

struct transport_req {
	const char *url;	/* scheme://host[:port]/path */
	const char *connect_to; /* "HOST:PORT:ADDR:PORT" (CURLOPT_CONNECT_TO), or NULL */
	const char *const *headers; /* "Name: value" lines */
	size_t nheaders;
	struct str body;
	long connect_timeout_ms, timeout_ms; /* timeout_ms: the whole exchange, connect included */
	size_t max_body;		     /* bytes of the answer's body */
	bool cancellable;		     /* ended by transport_cancel (the device channel's
					      * syncs); the Log Service sender's are not, so it
					      * can still drain its queue at shutdown */
};

struct transport_answer {
	long status;
	struct buf body;
	char local_ip[46]; /* our end of the connection ("" if unknown) */
};

struct transport;

/* ca_file: PEM bundle to trust instead of the system's, or NULL. */
struct transport *transport_new(const char *ca_file);
void transport_free(struct transport *t); /* NULL is a no-op */
/* Makes every cancellable transfer in progress, in any thread, end at once, and
 * every later one fail (shutdown; a held long-poll would otherwise keep the
 * agent up to its Wait). */
void transport_cancel(void);
/* Lets cancellable transfers run again (once the threads that were cancelled are gone). */
void transport_uncancel(void);
/* One POST. On TRANSPORT_OK, a->status and a->body (appended to) hold the
 * answer; otherwise err says why. */
enum transport_status transport_post(struct transport *t, const struct transport_req *rq,
				     struct transport_answer *a, char *err, size_t errlen);

#endif
