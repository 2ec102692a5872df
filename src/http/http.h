/* The HTTP server adapter: libmicrohttpd in epoll mode, one daemon per thread,
 * each new connection given to the daemon with the fewest (docs/protocol.md,
 * "Threads"), a small route table and asynchronous answers.
 *
 * A route's handler runs on a pool thread once the whole request (headers and
 * body, at most HTTP_MAX_BODY bytes) has arrived. It may answer at once or
 * later from any thread (the store's writer, say): the adapter suspends the
 * connection until http_respond() is called, so an event-loop thread never
 * waits on a disk or a lock. http_respond() must be called exactly once per
 * request; the request object is freed by the adapter after the answer is sent.
 *
 * Routes match the exact path, or a path prefix when the route's path ends in
 * '/' and is longer than "/" (so "/device/" matches "/device/hello"). The first
 * matching route wins; a path no route matches gets 404, a method a matching
 * route does not accept gets 405. */
#ifndef HTTP_HTTP_H
#define HTTP_HTTP_H
#include <stdbool.h>
#include <stdint.h>

#include "core/str.h"
#include "http/tls.h"

#define HTTP_MAX_BODY (1u << 20)         /* larger bodies get 413 and the connection is closed */
#define HTTP_MAX_URI 8192                /* request line target (path + query), bytes */
#define HTTP_CONN_MEMORY (16u * 1024)    /* per-connection memory: request line + headers (MHD
                                          * zeroes it between requests: keep it small) */
#define HTTP_CONN_TIMEOUT_S 30           /* idle / slow-client timeout, seconds */
#define HTTP_MAX_CONNECTIONS 4096        /* simultaneous connections, whole server (default) */
#define HTTP_CONN_HEADROOM 64            /* connections past the bound that get a 503, not a reset */
#define HTTP_MAX_THREADS 64              /* upper bound of --threads */
#define HTTP_MAX_ROUTES 32
#define HTTP_REMOTE_MAX 64               /* "[v6addr]:port" as text */

struct http_server;
struct http_conn; /* private to the adapter */

struct http_request {
	struct str method; /* "GET", "POST", ... */
	struct str path;   /* raw (undecoded) path, before any '?' */
	struct str authority; /* host[:port] of an absolute-form target, else empty */
	struct str query;  /* raw (undecoded) query string after '?', or empty */
	struct str body;   /* raw body bytes, or empty */
	char remote[HTTP_REMOTE_MAX]; /* the peer's numeric address and port */
	int64_t start_us;             /* monotonic time the request arrived (time_mono_us) */
	void *route_arg;              /* the arg given to http_route_add */
	struct http_conn *conn;       /* private */
};

/* A header's value by case-insensitive name, or STR_NULL when absent. Callable
 * from any thread until http_respond(); name is a C string (ours, not input). */
struct str http_header(const struct http_request *r, const char *name);

/* The host the request is for: an absolute-form target's authority
 * ("POST http://host:port/path", RFC 7230 §5.3.2 — it overrides Host,
 * §5.4), else the Host header (STR_NULL when absent). */
struct str http_host(const struct http_request *r);

/* Calls fn for every request header (name as sent), in arrival order; stops
 * when fn returns non-zero. Same threads and lifetime as http_header. */
void http_header_each(const struct http_request *r,
		      int (*fn)(void *arg, struct str name, struct str value), void *arg);

/* An extra response header; both strings are copied. */
struct http_hdr {
	const char *name, *value;
};

/* Answers the request: status, content type (a static or caller-owned string,
 * copied) and body (copied). Thread-safe; call exactly once per request. */
void http_respond(struct http_request *r, int status, const char *content_type, struct str body);

/* Same, taking ownership of a malloc'd body (no copy). */
void http_respond_owned(struct http_request *r, int status, const char *content_type, char *body,
			size_t len);

/* Same, owned body, with extra headers; content_type NULL sends none. */
void http_respond_hdrs(struct http_request *r, int status, const char *content_type, char *body,
		       size_t len, const struct http_hdr *hdrs, size_t nhdrs);

/* Runs fn(arg) on the thread that serves r: at once when called on it,
 * otherwise soon after from that thread's loop (the connection's worker,
 * woken through its eventfd). For work a completion callback must not do on
 * its own thread (the store's admission thread): the rest of the request runs
 * where it started, so no thread waits for it. Until fn has run, r must not
 * be answered; fn answers it, now or later. Thread-safe. */
typedef void (*http_defer_fn)(void *arg);
void http_defer(struct http_request *r, http_defer_fn fn, void *arg);

/* Whether the peer has closed its side of a request's connection while the
 * request waits for its answer (a held long-poll): a non-blocking peek at the
 * socket, from any thread, until http_respond(). An answer is still due. */
bool http_peer_closed(const struct http_request *r);

typedef void (*http_handler_fn)(struct http_request *r);

/* A second API on the same listener, chosen by the Host header (the Log
 * Service beside RPC): the requests it claims skip the route table, may carry
 * bodies up to max_body bytes, and have their adapter errors (413, 414, 503)
 * answered by its on_error. */
struct http_vhost {
	http_handler_fn handle;
	void (*on_error)(struct http_request *r, int status, const char *why);
	void *arg;       /* becomes route_arg */
	size_t max_body; /* instead of HTTP_MAX_BODY */
};

/* method: "GET", "POST", ... or NULL for any method. Call before http_server_start. */
int http_route_add(struct http_server *s, const char *method, const char *path, http_handler_fn fn,
		   void *arg);

struct http_config {
	const char *host; /* numeric IPv4/IPv6 address or "localhost" */
	uint16_t port;    /* 0: let the kernel choose; see http_server_port */
	unsigned threads; /* 1..HTTP_MAX_THREADS */
	/* HTTPS with this chain and key (loaded by http_tls_load, kept until
	 * http_server_free), or NULL for plain HTTP. */
	const struct http_tls *tls;
	/* Connections served at once (0: HTTP_MAX_CONNECTIONS), lowered to what the
	 * descriptor limit allows. Past it, up to HTTP_CONN_HEADROOM more are
	 * answered 503 and closed; beyond those, libmicrohttpd refuses them. */
	unsigned max_connections;
	/* Called for requests no route matched and for errors the adapter itself
	 * answers (413, 405); when NULL a plain-text body is sent. It must answer r. */
	void (*on_error)(struct http_request *r, int status, const char *why);
	/* When set, called with http_host() (STR_NULL when absent) and the raw
	 * path once the headers are in: a vhost it returns (static lifetime) takes
	 * the request. */
	const struct http_vhost *(*vhost)(void *arg, struct str host, struct str path);
	void *vhost_arg;
};

struct http_server *http_server_new(const struct http_config *cfg);
int http_server_start(struct http_server *s); /* 0, or -1 with a logged reason */
uint16_t http_server_port(const struct http_server *s);
/* Connections open now, and the bound in force (metrics). */
unsigned http_connections(const struct http_server *s, unsigned *max);
/* Stops accepting, waits up to grace_ms for answered-but-unsent and suspended
 * requests to finish, then stops the threads. */
void http_server_stop(struct http_server *s, int grace_ms);
void http_server_free(struct http_server *s); /* NULL is a no-op */

#endif
