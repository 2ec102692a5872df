/* libmicrohttpd adapter: see http.h for the contract and ../../docs/protocol.md
 * for the limits. MHD calls the access handler several times per request: once
 * with the headers, once per body chunk, and once more when the body is
 * complete; we answer on that last call (never the first — answering the first
 * call of a GET costs keep-alive, see STYLE.md). */
#include "http/http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/log.h"
#include "core/num.h"
#include "core/timeutil.h"
#include "core/xmalloc.h"

#define HTTP_MAX_METHOD 16
#define HTTP_DRAIN_POLL_US 10000
#define HTTP_DRAIN_WARN_MS 5000
#define HTTP_RESERVED_FDS 64 /* descriptors kept for SQLite, logs, the device channel */
#define HTTP_POLL_MAX_MS 1000 /* a worker looks at its daemon at least this often */
#define HTTP_ACCEPT_BATCH 16  /* connections one wake-up accepts before serving its own (MHD: 10) */
#define HTTP_ACCEPT_PAUSE_MS 100 /* accept pauses this long when descriptors or memory ran out */
#define HTTP_LISTEN_BACKLOG SOMAXCONN /* MHD's own default */

struct http_route_ent {
	char method[HTTP_MAX_METHOD]; /* "" = any */
	char *path;
	size_t plen;
	bool prefix;
	http_handler_fn fn;
	void *arg;
};

/* One MHD daemon in external-polling epoll mode, run by its own thread, with no
 * listening socket of its own: the workers accept on the shared one for each
 * other (worker_accept) and each adds its connections to its daemon. Not MHD's
 * internal threads: their loop (0.9.75, also 1.0.0 and 1.0.1) calls epoll_wait
 * again, with the full timeout, whenever a call returned exactly 128 events, so
 * the 128 ready connections it holds wait for the next event or the connection
 * timeout (docs/protocol.md, "Threads"). MHD_run never waits, so that second
 * call cannot block here. */
struct http_worker {
	struct http_server *srv;
	struct MHD_Daemon *d;
	pthread_t thread;
	bool running;
	int wake_fd;             /* eventfd: a resumed connection, or a stop request */
	atomic_bool wake_due;    /* wake_fd written since the worker last looked: skip another */
	atomic_bool quiesce, quit;
	atomic_bool quiesced;    /* set by the worker once its daemon stopped accepting */
	pthread_mutex_t defer_mu;           /* guards the deferred list (http_defer) */
	struct http_conn *defer_head, *defer_tail;
	bool in_deferred;        /* the worker runs its continuations: MHD_run is next */
	struct http_newconn *new_head, *new_tail; /* accepted for us by another worker (defer_mu) */
	atomic_uint nconns;      /* connections given to this worker and not yet closed */
	unsigned limit;          /* its daemon's MHD_OPTION_CONNECTION_LIMIT */
	unsigned started;        /* MHD_CONNECTION_NOTIFY_STARTED seen (worker_add) */
	int64_t accept_after_us; /* accept paused until then (0: not paused) */
};

/* A connection one worker accepted for another, waiting for it in new_head. */
struct http_newconn {
	int fd;
	socklen_t len;
	struct sockaddr_storage addr;
	struct http_newconn *next;
};

/* The worker this thread runs, or NULL on any other thread (http_defer). */
static __thread struct http_worker *http_self;

struct http_server {
	struct http_config cfg;
	char *host;
	struct http_worker workers[HTTP_MAX_THREADS];
	unsigned nworkers;
	int listen_fd;        /* shared by the workers; closed once, by http_server_stop */
	atomic_bool accepting; /* every worker runs: they may accept */
	pthread_mutex_t bal_mu; /* one choice and accept at a time (balance_accept) */
	unsigned rr;          /* balance_pick's next first candidate: ties go round-robin */
	bool started;
	uint16_t port;
	struct http_route_ent routes[HTTP_MAX_ROUTES];
	size_t nroutes;
	atomic_int pending;  /* dispatched requests not yet completed */
	atomic_uint conns;   /* connections open */
	unsigned max_conns;  /* the bound in force; past it requests get 503 */
	atomic_bool draining;
};

struct http_conn {
	struct http_server *srv;
	struct http_worker *w;
	struct MHD_Connection *mc;
	struct http_request req;
	char *uri;
	struct buf body;
	bool seen_headers, too_large, uri_too_long, dispatched;
	const struct http_vhost *vhost; /* NULL: the route table */
	size_t max_body;
	pthread_mutex_t mu; /* guards resp and suspended against http_respond */
	struct MHD_Response *resp;
	unsigned status;
	bool suspended;
	http_defer_fn defer_fn; /* http_defer's continuation, queued on w */
	void *defer_arg;
	struct http_conn *defer_next;
};

struct http_server *http_server_new(const struct http_config *cfg)
{
	struct http_server *s = xcalloc(1, sizeof(*s));
	s->cfg = *cfg;
	s->host = xstrdup(cfg->host ? cfg->host : "127.0.0.1");
	s->cfg.host = s->host;
	s->listen_fd = -1;
	pthread_mutex_init(&s->bal_mu, NULL);
	if (s->cfg.threads < 1)
		s->cfg.threads = 1;
	if (s->cfg.threads > HTTP_MAX_THREADS)
		s->cfg.threads = HTTP_MAX_THREADS;
	return s;
}

int http_route_add(struct http_server *s, const char *method, const char *path, http_handler_fn fn,
		   void *arg)
{
	if (s->nroutes >= HTTP_MAX_ROUTES || s->started || (method && strlen(method) >= HTTP_MAX_METHOD))
		return -1;
	struct http_route_ent *r = &s->routes[s->nroutes++];
	snprintf(r->method, sizeof(r->method), "%s", method ? method : "");
	r->path = xstrdup(path);
	r->plen = strlen(path);
	r->prefix = r->plen > 1 && path[r->plen - 1] == '/';
	r->fn = fn;
	r->arg = arg;
	return 0;
}

struct str http_header(const struct http_request *r, const char *name)
{
	const char *v = NULL;
	size_t len = 0;
	if (MHD_lookup_connection_value_n(r->conn->mc, MHD_HEADER_KIND, name, strlen(name), &v,
					  &len) != MHD_YES || v == NULL)
		return STR_NULL;
	return (struct str){v, len};
}

struct header_each {
	int (*fn)(void *arg, struct str name, struct str value);
	void *arg;
	bool stop;
};

static enum MHD_Result header_each_one(void *cls, enum MHD_ValueKind kind, const char *key,
				       size_t key_size, const char *value, size_t value_size)
{
	struct header_each *e = cls;
	if (!e->stop && e->fn(e->arg, (struct str){key, key_size},
			      (struct str){value ? value : "", value ? value_size : 0}) != 0)
		e->stop = true;
	return e->stop ? MHD_NO : MHD_YES;
}

void http_header_each(const struct http_request *r,
		      int (*fn)(void *arg, struct str name, struct str value), void *arg)
{
	struct header_each e = {fn, arg, false};
	MHD_get_connection_values_n(r->conn->mc, MHD_HEADER_KIND, header_each_one, &e);
}

/* One write per wake-up, however many answers arrive meanwhile (an admission
 * thread answering a batch): a waker that finds wake_due set resumed its
 * connection before the worker clears it, so the worker's next MHD_run sees it. */
static void worker_wake(struct http_worker *w)
{
	if (atomic_exchange(&w->wake_due, true))
		return;
	uint64_t one = 1;
	if (write(w->wake_fd, &one, sizeof(one)) < 0) {
		/* EAGAIN only: the counter is already non-zero, the worker will wake. */
	}
}

static void respond_with(struct http_request *r, struct MHD_Response *resp, int status)
{
	struct http_conn *c = r->conn;
	pthread_mutex_lock(&c->mu);
	if (c->resp) {
		/* A second answer is a programming error; keep the first. */
		pthread_mutex_unlock(&c->mu);
		log_err("http: request answered twice (status %d)", status);
		MHD_destroy_response(resp);
		return;
	}
	c->resp = resp;
	c->status = (unsigned)status;
	if (c->suspended) {
		c->suspended = false;
		MHD_resume_connection(c->mc);
		/* A continuation of the worker's own needs no wake: its loop calls
		 * MHD_run right after them (one poll and read saved per batch). */
		if (!(http_self == c->w && c->w->in_deferred))
			worker_wake(c->w);
	}
	pthread_mutex_unlock(&c->mu);
}

static void add_headers(struct MHD_Response *resp, int status, const char *ctype)
{
	if (ctype)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
	/* After a refused body the rest of it is still on the wire: close. */
	if (status == MHD_HTTP_CONTENT_TOO_LARGE || status == MHD_HTTP_SERVICE_UNAVAILABLE)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
}

void http_respond_owned(struct http_request *r, int status, const char *content_type, char *body,
			size_t len)
{
	http_respond_hdrs(r, status, content_type, body, len, NULL, 0);
}

void http_respond_hdrs(struct http_request *r, int status, const char *content_type, char *body,
		       size_t len, const struct http_hdr *hdrs, size_t nhdrs)
{
	struct MHD_Response *resp =
		MHD_create_response_from_buffer(len, body ? body : (char *)"", body ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
	if (!resp)
		fatal("http: cannot create a response");
	add_headers(resp, status, content_type);
	for (size_t i = 0; i < nhdrs; i++)
		MHD_add_response_header(resp, hdrs[i].name, hdrs[i].value);
	respond_with(r, resp, status);
}

void http_respond(struct http_request *r, int status, const char *content_type, struct str body)
{
	http_respond_owned(r, status, content_type, xmemdup0(body.p ? body.p : "", body.len),
			   body.len);
}

void http_defer(struct http_request *r, http_defer_fn fn, void *arg)
{
	struct http_conn *c = r->conn;
	struct http_worker *w = c->w;
	if (http_self == w) {
		fn(arg);
		return;
	}
	c->defer_fn = fn;
	c->defer_arg = arg;
	c->defer_next = NULL;
	pthread_mutex_lock(&w->defer_mu);
	bool was_empty = !w->defer_head;
	if (w->defer_tail)
		w->defer_tail->defer_next = c;
	else
		w->defer_head = c;
	w->defer_tail = c;
	pthread_mutex_unlock(&w->defer_mu);
	if (was_empty) /* else the wake for the first is still due */
		worker_wake(w);
}

/* Gives fd to w's daemon, on w's thread: in external-polling mode
 * MHD_add_connection edits the daemon's lists and epoll set without a lock, as
 * MHD_run does. A refusal (MHD closes fd) that never started the connection
 * gives its place back; a started one gives it back in its close notice. */
static void worker_add(struct http_worker *w, int fd, const struct sockaddr_storage *a,
		       socklen_t len)
{
	unsigned started = w->started;
	if (MHD_add_connection(w->d, fd, (const struct sockaddr *)a, len) != MHD_YES &&
	    w->started == started)
		atomic_fetch_sub(&w->nconns, 1);
}

static void worker_add_handed(struct http_worker *w, struct http_newconn *nc)
{
	while (nc) {
		struct http_newconn *next = nc->next;
		worker_add(w, nc->fd, &nc->addr, nc->len);
		free(nc);
		nc = next;
	}
}

/* Another worker accepted fd for w: queue it beside the continuations. */
static void worker_hand(struct http_worker *w, int fd, const struct sockaddr_storage *a,
			socklen_t len)
{
	struct http_newconn *nc = xcalloc(1, sizeof(*nc));
	*nc = (struct http_newconn){.fd = fd, .len = len, .addr = *a};
	pthread_mutex_lock(&w->defer_mu);
	if (w->new_tail)
		w->new_tail->next = nc;
	else
		w->new_head = nc;
	w->new_tail = nc;
	pthread_mutex_unlock(&w->defer_mu);
	worker_wake(w);
}

/* The continuations other threads handed this worker, and the connections
 * other workers accepted for it (one lock for both). A connection stays until
 * MHD_run (its request is unanswered until fn), so c is still ours. */
static void worker_run_deferred(struct http_worker *w)
{
	pthread_mutex_lock(&w->defer_mu);
	struct http_conn *c = w->defer_head;
	struct http_newconn *nc = w->new_head;
	w->defer_head = w->defer_tail = NULL;
	w->new_head = w->new_tail = NULL;
	pthread_mutex_unlock(&w->defer_mu);
	worker_add_handed(w, nc);
	w->in_deferred = true;
	while (c) {
		struct http_conn *next = c->defer_next;
		c->defer_next = NULL;
		c->defer_fn(c->defer_arg);
		c = next;
	}
	w->in_deferred = false;
}

bool http_peer_closed(const struct http_request *r)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(r->conn->mc, MHD_CONNECTION_INFO_CONNECTION_FD);
	if (!ci)
		return false;
	char byte;
	ssize_t n = recv(ci->connect_fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
	return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
}

static void answer_error(struct http_server *s, struct http_request *r, int status, const char *why)
{
	if (r->conn->vhost) {
		r->conn->vhost->on_error(r, status, why);
		return;
	}
	if (s->cfg.on_error) {
		s->cfg.on_error(r, status, why);
		return;
	}
	char msg[128];
	int n = snprintf(msg, sizeof(msg), "%d %s\n", status, why);
	http_respond(r, status, "text/plain;charset=utf-8", (struct str){msg, (size_t)n});
}

/* An absolute-form target (a client that takes us for a proxy, like the old
 * Go SDK with an IP endpoint) names the host itself: keep it as the
 * authority, and the path is what follows it ("/" when nothing does). */
static void split_absolute(struct http_request *r)
{
	static const char *const schemes[] = {"http://", "https://"};
	for (size_t i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++) {
		size_t sl = strlen(schemes[i]);
		if (r->path.len < sl || strncasecmp(r->path.p, schemes[i], sl) != 0)
			continue;
		const char *a = r->path.p + sl, *end = r->path.p + r->path.len;
		const char *slash = memchr(a, '/', (size_t)(end - a));
		r->authority = (struct str){a, (size_t)((slash ? slash : end) - a)};
		r->path = slash ? (struct str){slash, (size_t)(end - slash)} : str_c("/");
		return;
	}
}

struct str http_host(const struct http_request *r)
{
	return r->authority.len ? r->authority : http_header(r, "host");
}

/* The raw URI, before MHD decodes it: its own argument parser would hide
 * duplicates and bad escapes, and V1/V3 must see exactly what was sent. */
static void *uri_logger(void *cls, const char *uri, struct MHD_Connection *mc)
{
	struct http_worker *w = cls;
	struct http_conn *c = xcalloc(1, sizeof(*c));
	c->srv = w->srv;
	c->w = w;
	c->mc = mc;
	pthread_mutex_init(&c->mu, NULL);
	size_t n = strnlen(uri, HTTP_MAX_URI + 1);
	c->uri_too_long = n > HTTP_MAX_URI;
	c->uri = xmemdup0(uri, c->uri_too_long ? 0 : n);
	c->req.conn = c;
	c->req.start_us = time_mono_us();
	const char *q = memchr(c->uri, '?', n <= HTTP_MAX_URI ? n : 0);
	size_t plen = q ? (size_t)(q - c->uri) : strlen(c->uri);
	c->req.path = (struct str){c->uri, plen};
	c->req.query = q ? (struct str){q + 1, strlen(q + 1)} : (struct str){c->uri + plen, 0};
	split_absolute(&c->req);
	return c;
}

static void set_remote(struct http_conn *c)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(c->mc, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	/* inet_ntop, not getnameinfo: same numeric text at a fraction of the cost. */
	char host[INET6_ADDRSTRLEN] = "?";
	unsigned port = 0;
	bool v6 = false;
	if (ci && ci->client_addr && ci->client_addr->sa_family == AF_INET) {
		const struct sockaddr_in *a = (const struct sockaddr_in *)(const void *)ci->client_addr;
		inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
		port = ntohs(a->sin_port);
	} else if (ci && ci->client_addr && ci->client_addr->sa_family == AF_INET6) {
		const struct sockaddr_in6 *a =
			(const struct sockaddr_in6 *)(const void *)ci->client_addr;
		inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
		port = ntohs(a->sin6_port);
		v6 = true;
	}
	snprintf(c->req.remote, sizeof(c->req.remote), v6 ? "[%s]:%u" : "%s:%u", host, port);
}

/* Headers arrived: note the method, refuse a declared oversized body early. */
static bool on_headers(struct http_conn *c, const char *method)
{
	c->seen_headers = true;
	c->req.method = (struct str){method, strlen(method)};
	set_remote(c);
	c->max_body = HTTP_MAX_BODY;
	if (c->srv->cfg.vhost && (c->vhost = c->srv->cfg.vhost(c->srv->cfg.vhost_arg,
								http_host(&c->req), c->req.path))) {
		c->req.route_arg = c->vhost->arg;
		c->max_body = c->vhost->max_body;
	}
	const char *cl = MHD_lookup_connection_value(c->mc, MHD_HEADER_KIND,
						     MHD_HTTP_HEADER_CONTENT_LENGTH);
	int64_t n;
	if (cl && num_parse_i64(str_c(cl), 0, INT64_MAX, &n) == 0 && (uint64_t)n > c->max_body)
		c->too_large = true;
	return c->too_large;
}

static const struct http_route_ent *route_find(const struct http_server *s, struct str path,
					       struct str method, bool *method_mismatch)
{
	*method_mismatch = false;
	for (size_t i = 0; i < s->nroutes; i++) {
		const struct http_route_ent *r = &s->routes[i];
		bool match = r->prefix ? (path.len >= r->plen && memcmp(path.p, r->path, r->plen) == 0)
				       : (path.len == r->plen && memcmp(path.p, r->path, r->plen) == 0);
		if (!match)
			continue;
		if (r->method[0] && !str_eqc(method, r->method)) {
			*method_mismatch = true;
			continue;
		}
		return r;
	}
	return NULL;
}

static void dispatch(struct http_server *s, struct http_conn *c)
{
	c->dispatched = true;
	atomic_fetch_add(&s->pending, 1);
	c->req.body = (struct str){c->body.p ? c->body.p : "", c->body.len};
	if (atomic_load(&s->draining)) {
		answer_error(s, &c->req, MHD_HTTP_SERVICE_UNAVAILABLE, "server is shutting down");
		return;
	}
	if (atomic_load(&s->conns) > s->max_conns) {
		answer_error(s, &c->req, MHD_HTTP_SERVICE_UNAVAILABLE, "too many connections");
		return;
	}
	if (c->too_large) {
		answer_error(s, &c->req, MHD_HTTP_CONTENT_TOO_LARGE,
			     c->vhost ? "body too large" : "body larger than 1 MiB");
		return;
	}
	if (c->uri_too_long) {
		answer_error(s, &c->req, MHD_HTTP_URI_TOO_LONG, "request target too long");
		return;
	}
	if (c->vhost) {
		c->vhost->handle(&c->req);
		return;
	}
	bool mismatch;
	const struct http_route_ent *r = route_find(s, c->req.path, c->req.method, &mismatch);
	if (!r) {
		answer_error(s, &c->req, mismatch ? MHD_HTTP_METHOD_NOT_ALLOWED : MHD_HTTP_NOT_FOUND,
			     mismatch ? "method not allowed" : "not found");
		return;
	}
	c->req.route_arg = r->arg;
	r->fn(&c->req);
}

/* Queues the answer when there is one; otherwise suspends until http_respond
 * resumes us. Both under the lock, so an answer from another thread between
 * dispatch and here is never lost. */
static enum MHD_Result answer_or_suspend(struct http_conn *c)
{
	pthread_mutex_lock(&c->mu);
	if (!c->resp) {
		c->suspended = true;
		MHD_suspend_connection(c->mc);
		pthread_mutex_unlock(&c->mu);
		return MHD_YES;
	}
	struct MHD_Response *resp = c->resp;
	unsigned status = c->status;
	pthread_mutex_unlock(&c->mu);
	return MHD_queue_response(c->mc, status, resp);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *mc, const char *url,
				  const char *method, const char *version, const char *upload_data,
				  size_t *upload_data_size, void **con_cls)
{
	struct http_server *s = cls;
	struct http_conn *c = *con_cls;
	if (!c)
		return MHD_NO; /* the URI logger always runs first; nothing to answer with */
	if (!c->seen_headers) {
		if (on_headers(c, method)) {
			dispatch(s, c); /* 413 before reading the body */
			return answer_or_suspend(c);
		}
		return MHD_YES;
	}
	if (*upload_data_size) {
		if (!c->too_large && c->body.len + *upload_data_size <= c->max_body)
			buf_add(&c->body, upload_data, *upload_data_size);
		else
			c->too_large = true;
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (!c->dispatched)
		dispatch(s, c);
	return answer_or_suspend(c);
}

static void on_completed(void *cls, struct MHD_Connection *mc, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct http_server *s = cls;
	struct http_conn *c = *con_cls;
	if (!c)
		return;
	*con_cls = NULL;
	if (c->dispatched)
		atomic_fetch_sub(&s->pending, 1);
	if (c->resp)
		MHD_destroy_response(c->resp);
	pthread_mutex_destroy(&c->mu);
	buf_free(&c->body);
	free(c->uri);
	free(c);
}

/* MHD's own diagnostics (bad requests it answers itself) at debug level. */
__attribute__((format(printf, 2, 0))) static void mhd_log(void *cls, const char *fmt,
							       va_list ap)
{
	char line[256];
	vsnprintf(line, sizeof(line), fmt, ap);
	size_t n = strlen(line);
	while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		line[--n] = '\0';
	log_debug("mhd: %s", line);
}

static int resolve(const char *host, uint16_t port, struct sockaddr_storage *ss, socklen_t *len)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
				 .ai_flags = AI_PASSIVE}, *res = NULL;
	char ps[8];
	snprintf(ps, sizeof(ps), "%u", port);
	if (strcmp(host, "localhost") != 0)
		hints.ai_flags |= AI_NUMERICHOST;
	if (getaddrinfo(host, ps, &hints, &res) != 0 || !res)
		return -1;
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	*len = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

/* The shared listening socket, made here rather than by MHD because no daemon
 * accepts on its own (worker_accept): MHD's defaults kept (SO_REUSEADDR, an
 * IPv6 socket IPv6 only, a SOMAXCONN backlog). */
static int listen_open(const struct sockaddr_storage *ss, socklen_t len, uint16_t *port)
{
	int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), on = 1;
	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
	if (ss->ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on));
	struct sockaddr_storage got;
	socklen_t glen = sizeof(got);
	if (bind(fd, (const struct sockaddr *)ss, len) < 0 || listen(fd, HTTP_LISTEN_BACKLOG) < 0 ||
	    getsockname(fd, (struct sockaddr *)&got, &glen) < 0) {
		close(fd);
		return -1;
	}
	*port = ntohs(got.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)(void *)&got)->sin6_port
						: ((struct sockaddr_in *)(void *)&got)->sin_port);
	return fd;
}

/* Runs on the worker's own thread, inside MHD_add_connection or MHD_run. */
static void on_connection(void *cls, struct MHD_Connection *mc, void **socket_context,
			  enum MHD_ConnectionNotificationCode toe)
{
	struct http_worker *w = cls;
	if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
		w->started++;
		atomic_fetch_add(&w->srv->conns, 1);
		return;
	}
	atomic_fetch_sub(&w->nconns, 1);
	atomic_fetch_sub(&w->srv->conns, 1);
}

unsigned http_connections(const struct http_server *s, unsigned *max)
{
	*max = s->max_conns;
	return atomic_load(&s->conns);
}

/* The configured bound, or fewer when the descriptor limit would run out first
 * (accept failing is worse than MHD refusing politely at its own limit). */
static unsigned connection_limit(unsigned want)
{
	struct rlimit rl;
	unsigned n = want + HTTP_CONN_HEADROOM;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
	    rl.rlim_cur < (rlim_t)n + HTTP_RESERVED_FDS)
		n = rl.rlim_cur > 2 * HTTP_RESERVED_FDS ? (unsigned)(rl.rlim_cur - HTTP_RESERVED_FDS)
							: HTTP_RESERVED_FDS;
	return n;
}

/* The HTTPS options, or none: an MHD_OPTION_ARRAY ending in MHD_OPTION_END.
 * The connection timeout covers the handshake too, so a client that stalls
 * in it is dropped like any idle one. */
static void tls_options(const struct http_tls *tls, struct MHD_OptionItem opt[4], unsigned *flags)
{
	unsigned n = 0;
	if (tls) {
		*flags |= MHD_USE_TLS;
		opt[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0, tls->cert};
		opt[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0, tls->key};
		opt[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_PRIORITIES, 0, HTTP_TLS_PRIORITIES};
	}
	opt[n] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
}

/* MHD's next deadline (a connection's timeout), capped: never wait forever,
 * nor past a pause of accept. */
static int worker_timeout_ms(struct http_worker *w)
{
	MHD_UNSIGNED_LONG_LONG t;
	int ms = MHD_get_timeout(w->d, &t) == MHD_YES && t < HTTP_POLL_MAX_MS ? (int)t
									      : HTTP_POLL_MAX_MS;
	return w->accept_after_us && ms > HTTP_ACCEPT_PAUSE_MS ? HTTP_ACCEPT_PAUSE_MS : ms;
}

/* The worker with the fewest connections that has room, ties going round-robin
 * from s->rr; NULL when every one is full. The caller holds bal_mu. */
static struct http_worker *balance_pick(struct http_server *s)
{
	struct http_worker *best = NULL;
	unsigned best_n = 0;
	for (unsigned k = 0; k < s->nworkers; k++) {
		struct http_worker *w = &s->workers[(s->rr + k) % s->nworkers];
		unsigned n = atomic_load(&w->nconns);
		if (n < w->limit && (!best || n < best_n)) {
			best = w;
			best_n = n;
		}
	}
	return best;
}

/* One accept4 and the worker it goes to, under bal_mu so that each choice
 * counts every connection placed before it. With no worker below its limit
 * nothing is accepted: the rest wait in the backlog, as at MHD's own limit. */
static int balance_accept(struct http_server *s, struct http_worker **to,
			  struct sockaddr_storage *a, socklen_t *len)
{
	pthread_mutex_lock(&s->bal_mu);
	int fd = -1, err = EAGAIN;
	*to = balance_pick(s);
	if (*to) {
		fd = accept4(s->listen_fd, (struct sockaddr *)a, len, SOCK_NONBLOCK | SOCK_CLOEXEC);
		err = errno;
	}
	if (fd >= 0) {
		atomic_fetch_add(&(*to)->nconns, 1);
		s->rr = (unsigned)(*to - s->workers + 1) % s->nworkers;
	}
	pthread_mutex_unlock(&s->bal_mu);
	errno = err;
	return fd;
}

/* accept4's errors about one connection (the peer gave up, or a network error
 * Linux passes on from it: accept(2)), and those of the process or system. */
static const int accept_peer_errs[] = {ECONNABORTED, EINTR,     EPROTO,      ENETDOWN,   ENOPROTOOPT,
				       EHOSTDOWN,    ENONET,    EHOSTUNREACH, EOPNOTSUPP, ENETUNREACH};
static const int accept_pause_errs[] = {EMFILE, ENFILE, ENOBUFS, ENOMEM};

static bool errno_in(int err, const int *set, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (set[i] == err)
			return true;
	return false;
}

/* After a failed accept4: true to take the next one. Out of descriptors or
 * memory the listening socket stays readable, so this worker pauses accepting
 * instead of spinning. */
static bool accept_retry(struct http_worker *w, int err)
{
	if (errno_in(err, accept_peer_errs, sizeof(accept_peer_errs) / sizeof(accept_peer_errs[0])))
		return true;
	if (errno_in(err, accept_pause_errs, sizeof(accept_pause_errs) / sizeof(accept_pause_errs[0]))) {
		log_warn("http: cannot accept a connection (%s); pausing %d ms", strerror(err),
			 HTTP_ACCEPT_PAUSE_MS);
		w->accept_after_us = time_mono_us() + HTTP_ACCEPT_PAUSE_MS * 1000;
	}
	return false;
}

/* Whichever worker's poll sees the listening socket accepts for all of them,
 * and each connection goes to the worker with the fewest (balance_pick). Had
 * the winner of accept() kept it, the agent's 4 long-lived sender connections
 * would split 3+1 or 4+0 over 2 threads as often as 2+2, leaving a core idle. */
static void worker_accept(struct http_worker *w)
{
	for (unsigned i = 0; i < HTTP_ACCEPT_BATCH; i++) {
		struct http_worker *to;
		struct sockaddr_storage a;
		socklen_t len = sizeof(a);
		int fd = balance_accept(w->srv, &to, &a, &len);
		if (fd < 0 && accept_retry(w, errno))
			continue;
		if (fd < 0)
			return;
		if (to == w)
			worker_add(w, fd, &a, len);
		else
			worker_hand(to, fd, &a, len);
	}
}

/* Poll the shared socket while this worker may accept: every worker runs, it
 * is not quiescing, no pause is on, and some worker has room. */
static bool worker_listens(struct http_worker *w)
{
	struct http_server *s = w->srv;
	if (!atomic_load(&s->accepting) || atomic_load(&w->quiesce))
		return false;
	if (w->accept_after_us && time_mono_us() < w->accept_after_us)
		return false;
	w->accept_after_us = 0;
	for (unsigned i = 0; i < s->nworkers; i++)
		if (atomic_load(&s->workers[i].nconns) < s->workers[i].limit)
			return true;
	return false;
}

/* Wait on the daemon's epoll descriptor (readable while it holds events; poll
 * does not consume them), on the wake eventfd and on the listening socket, then
 * accept and let MHD do the work without blocking. The eventfd is read before
 * MHD_run, so a resume during the run leaves it set and the next poll returns at
 * once: MHD 0.9.75's MHD_get_timeout does not count resumed connections, and its
 * own wakeup may already have been drained inside the run. */
static void *worker_loop(void *arg)
{
	struct http_worker *w = arg;
	const union MHD_DaemonInfo *di = MHD_get_daemon_info(w->d, MHD_DAEMON_INFO_EPOLL_FD);
	struct pollfd pf[3] = {{.fd = di ? di->epoll_fd : -1, .events = POLLIN},
			       {.fd = w->wake_fd, .events = POLLIN},
			       {.fd = -1, .events = POLLIN}};
	http_self = w;
	while (!atomic_load(&w->quit)) {
		pf[2].fd = worker_listens(w) ? w->srv->listen_fd : -1;
		int ready = poll(pf, 3, worker_timeout_ms(w));
		atomic_store(&w->wake_due, false);
		if (ready > 0 && (pf[1].revents & POLLIN)) {
			uint64_t n;
			if (read(w->wake_fd, &n, sizeof(n)) < 0) {
				/* EAGAIN: another read won the race; nothing to do */
			}
		}
		if (atomic_load(&w->quiesce))
			atomic_store(&w->quiesced, true); /* no accept from here on */
		else if (ready > 0 && (pf[2].revents & POLLIN))
			worker_accept(w);
		worker_run_deferred(w);
		MHD_run(w->d);
	}
	return NULL;
}

/* No listening socket: its connections come from worker_add. */
static struct MHD_Daemon *worker_daemon(struct http_server *s, struct http_worker *w,
					unsigned conns)
{
	unsigned flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG |
			 MHD_USE_NO_LISTEN_SOCKET;
	struct MHD_OptionItem tls_opt[4];
	tls_options(s->cfg.tls, tls_opt, &flags);
	return MHD_start_daemon(
		flags, 0, NULL, NULL, on_request, s,
		MHD_OPTION_URI_LOG_CALLBACK, uri_logger, w, MHD_OPTION_NOTIFY_COMPLETED, on_completed,
		s, MHD_OPTION_NOTIFY_CONNECTION, on_connection, w,
		MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)HTTP_CONN_MEMORY,
		MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)HTTP_CONN_TIMEOUT_S,
		MHD_OPTION_CONNECTION_LIMIT, conns, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
		MHD_OPTION_ARRAY, tls_opt, MHD_OPTION_END);
}

static int worker_start(struct http_server *s, struct http_worker *w, unsigned conns)
{
	w->srv = s;
	pthread_mutex_init(&w->defer_mu, NULL);
	w->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (w->wake_fd < 0)
		return -1;
	w->d = worker_daemon(s, w, conns);
	if (!w->d)
		return -1;
	w->limit = conns;
	if (pthread_create(&w->thread, NULL, worker_loop, w) != 0)
		return -1;
	pthread_setname_np(w->thread, "http-worker");
	w->running = true;
	return 0;
}

/* Each worker stops accepting in its own loop, then the shared socket is
 * closed once: new connections are refused from here on. */
static void workers_quiesce(struct http_server *s)
{
	for (unsigned i = 0; i < s->nworkers; i++) {
		struct http_worker *w = &s->workers[i];
		if (!w->running)
			continue;
		atomic_store(&w->quiesce, true);
		worker_wake(w);
		while (!atomic_load(&w->quiesced))
			usleep(HTTP_DRAIN_POLL_US / 10);
	}
	if (s->listen_fd >= 0)
		close(s->listen_fd);
	s->listen_fd = -1;
}

/* Connections handed to a worker that quit before adding them. */
static void worker_drop_handed(struct http_worker *w)
{
	for (struct http_newconn *nc = w->new_head, *next; nc; nc = next) {
		next = nc->next;
		close(nc->fd);
		free(nc);
	}
	w->new_head = w->new_tail = NULL;
}

static void workers_stop(struct http_server *s)
{
	for (unsigned i = 0; i < s->nworkers; i++) {
		struct http_worker *w = &s->workers[i];
		if (w->running) {
			atomic_store(&w->quit, true);
			worker_wake(w);
			pthread_join(w->thread, NULL);
			w->running = false;
		}
		worker_drop_handed(w);
		if (w->d)
			MHD_stop_daemon(w->d);
		if (w->wake_fd >= 0)
			close(w->wake_fd);
		if (w->srv)
			pthread_mutex_destroy(&w->defer_mu);
		*w = (struct http_worker){.wake_fd = -1};
	}
	s->nworkers = 0;
}

int http_server_start(struct http_server *s)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	if (resolve(s->host, s->cfg.port, &ss, &sl) < 0) {
		log_err("http: cannot use listen address '%s' (a numeric IPv4/IPv6 address)", s->host);
		return -1;
	}
	/* The connection limit is split across the workers, as MHD's pool does. */
	unsigned n = s->cfg.threads,
		 max_conns = connection_limit(s->cfg.max_connections ? s->cfg.max_connections
								     : HTTP_MAX_CONNECTIONS);
	/* Past max_conns, the headroom's connections are answered 503 (dispatch). */
	s->max_conns = max_conns > HTTP_CONN_HEADROOM ? max_conns - HTTP_CONN_HEADROOM : max_conns;
	for (unsigned i = 0; i < n; i++)
		s->workers[i].wake_fd = -1;
	s->nworkers = n;
	s->started = true;
	s->listen_fd = listen_open(&ss, sl, &s->port);
	for (unsigned i = 0; i < n && s->listen_fd >= 0; i++) {
		unsigned conns = max_conns / n + (i < max_conns % n ? 1 : 0);
		if (worker_start(s, &s->workers[i], conns ? conns : 1) < 0)
			break;
	}
	if (s->listen_fd < 0 || !s->workers[n - 1].running) {
		log_err("http: cannot listen on %s port %u", s->host, s->cfg.port);
		workers_quiesce(s);
		workers_stop(s);
		return -1;
	}
	atomic_store(&s->accepting, true);
	for (unsigned i = 0; i < n; i++)
		worker_wake(&s->workers[i]);
	return 0;
}

uint16_t http_server_port(const struct http_server *s)
{
	return s->port;
}

void http_server_stop(struct http_server *s, int grace_ms)
{
	if (!s || !s->nworkers)
		return;
	workers_quiesce(s);
	atomic_store(&s->draining, true);
	/* A suspended connection must be resumed before MHD_stop_daemon, and its
	 * answer comes from the store's writer, which is still running: wait. */
	int64_t start = time_mono_us(), warned = 0;
	while (atomic_load(&s->pending) > 0) {
		int64_t ms = (time_mono_us() - start) / 1000;
		if (ms > grace_ms && ms - warned > HTTP_DRAIN_WARN_MS) {
			log_warn("http: still waiting for %d in-flight request(s)",
				 atomic_load(&s->pending));
			warned = ms;
		}
		usleep(HTTP_DRAIN_POLL_US);
	}
	workers_stop(s);
}

void http_server_free(struct http_server *s)
{
	if (!s)
		return;
	http_server_stop(s, 0);
	for (size_t i = 0; i < s->nroutes; i++)
		free(s->routes[i].path);
	pthread_mutex_destroy(&s->bal_mu);
	free(s->host);
	free(s);
}
