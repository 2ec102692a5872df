/* libcurl under the agent's exchanges (transport.h). One easy handle per
 * transport, reused for every exchange, so curl keeps the connection (and the
 * TLS session) alive between syncs and between PutLogs. */
#include "device/transport.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/log.h"
#include "core/xmalloc.h"

#define TRANSPORT_USER_AGENT "sagflow-agent/" SAGFLOW_VERSION

struct transport {
	CURL *h;
	char *ca_file;
};

struct sink {
	struct buf *b;
	size_t max;
	bool too_large;
};

static pthread_once_t transport_once = PTHREAD_ONCE_INIT;

/* curl_global_init is not thread-safe: once, before any handle exists. */
static void transport_global_init(void)
{
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		fatal("curl_global_init failed");
}

struct transport *transport_new(const char *ca_file)
{
	pthread_once(&transport_once, transport_global_init);
	struct transport *t = xcalloc(1, sizeof(*t));
	t->h = curl_easy_init();
	if (!t->h)
		fatal("curl_easy_init failed");
	t->ca_file = ca_file ? xstrdup(ca_file) : NULL;
	return t;
}

void transport_free(struct transport *t)
{
	if (!t)
		return;
	curl_easy_cleanup(t->h);
	free(t->ca_file);
	free(t);
}

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
	struct sink *s = arg;
	size_t len = size * n;
	if (len > s->max - s->b->len) {
		s->too_large = true;
		return 0; /* curl aborts the transfer: CURLE_WRITE_ERROR */
	}
	buf_add(s->b, p, len);
	return len;
}

/* transport_cancel(): one flag for the process, read by libcurl's progress
 * callback (called at least once a second during a transfer). */
static atomic_bool transport_cancelled;

void transport_cancel(void)
{
	atomic_store(&transport_cancelled, true);
}

void transport_uncancel(void)
{
	atomic_store(&transport_cancelled, false);
}

static int on_progress(void *arg, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
	const struct transport_req *rq = arg;
	/* non-zero aborts: CURLE_ABORTED_BY_CALLBACK */
	return rq->cancellable && atomic_load(&transport_cancelled) ? 1 : 0;
}

static bool untrusted(CURLcode rc)
{
	return rc == CURLE_PEER_FAILED_VERIFICATION || rc == CURLE_SSL_CACERT_BADFILE ||
	       rc == CURLE_SSL_CERTPROBLEM || rc == CURLE_SSL_ISSUER_ERROR;
}

/* The options every exchange sets again: curl_easy_reset would drop the
 * connection cache's settings too, so only what varies is set per call. */
static void set_common(struct transport *t, const struct transport_req *rq, struct sink *s,
		       char *errbuf)
{
	CURL *h = t->h;
	curl_easy_setopt(h, CURLOPT_URL, rq->url);
	curl_easy_setopt(h, CURLOPT_POST, 1L);
	curl_easy_setopt(h, CURLOPT_POSTFIELDS, rq->body.len ? rq->body.p : "");
	curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)rq->body.len);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, rq->connect_timeout_ms);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, rq->timeout_ms);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L); /* threads: no SIGALRM for DNS */
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
	if (t->ca_file)
		curl_easy_setopt(h, CURLOPT_CAINFO, t->ca_file);
	curl_easy_setopt(h, CURLOPT_USERAGENT, TRANSPORT_USER_AGENT);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, s);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(h, CURLOPT_XFERINFODATA, rq);
}

enum transport_status transport_post(struct transport *t, const struct transport_req *rq,
				     struct transport_answer *a, char *err, size_t errlen)
{
	char errbuf[CURL_ERROR_SIZE] = "";
	struct sink s = {&a->body, rq->max_body, false};
	struct curl_slist *hdrs = NULL, *cto = NULL;
	/* An empty Expect: a small body goes with the headers, no 100-continue round trip. */
	hdrs = curl_slist_append(hdrs, "Expect:");
	for (size_t i = 0; i < rq->nheaders && i < TRANSPORT_MAX_HEADERS; i++)
		hdrs = curl_slist_append(hdrs, rq->headers[i]);
	if (rq->connect_to)
		cto = curl_slist_append(cto, rq->connect_to);
	set_common(t, rq, &s, errbuf);
	curl_easy_setopt(t->h, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(t->h, CURLOPT_CONNECT_TO, cto);
	CURLcode rc = curl_easy_perform(t->h);
	enum transport_status st = TRANSPORT_OK;
	if (rc == CURLE_OK) {
		char *ip = NULL;
		curl_easy_getinfo(t->h, CURLINFO_RESPONSE_CODE, &a->status);
		if (curl_easy_getinfo(t->h, CURLINFO_LOCAL_IP, &ip) == CURLE_OK && ip)
			snprintf(a->local_ip, sizeof(a->local_ip), "%s", ip);
	} else {
		st = untrusted(rc) ? TRANSPORT_UNTRUSTED : TRANSPORT_FAILED;
		if (s.too_large)
			snprintf(err, errlen, "the answer exceeds %zu bytes", rq->max_body);
		else if (rc == CURLE_OUT_OF_MEMORY || rc == CURLE_WEIRD_SERVER_REPLY)
			/* libcurl 7.88 reports a header line over its 100 KB limit as
			 * out of memory. */
			snprintf(err, errlen, "the answer's headers are malformed or too large (%s)",
				 errbuf[0] ? errbuf : curl_easy_strerror(rc));
		else if (rc == CURLE_OPERATION_TIMEDOUT)
			snprintf(err, errlen, "no answer within %ld ms (%s)", rq->timeout_ms,
				 errbuf[0] ? errbuf : curl_easy_strerror(rc));
		else
			snprintf(err, errlen, "%s", errbuf[0] ? errbuf : curl_easy_strerror(rc));
	}
	/* The handle must not keep pointers to lists freed here. */
	curl_easy_setopt(t->h, CURLOPT_HTTPHEADER, NULL);
	curl_easy_setopt(t->h, CURLOPT_CONNECT_TO, NULL);
	curl_easy_setopt(t->h, CURLOPT_ERRORBUFFER, NULL);
	curl_slist_free_all(hdrs);
	curl_slist_free_all(cto);
	return st;
}
