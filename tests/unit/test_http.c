/* The HTTP adapter on a real socket: synchronous answers, answers from another
 * thread racing the suspension (the finish-before-suspend case), keep-alive,
 * header lookup, bodies, 404/405/413, continuations handed back to the
 * request's worker (http_defer), and a drain on stop. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "core/xmalloc.h"
#include "http/http.h"

#define CLIENTS 4
#define PER_CLIENT 250
#define RESP_MAX 65536

static void sync_route(struct http_request *r)
{
	struct str t = http_header(r, "x-t");
	char out[128];
	int n = snprintf(out, sizeof(out), "sync %.*s %.*s %zu", (int)r->method.len, r->method.p,
			 (int)t.len, t.p ? t.p : "", r->body.len);
	http_respond(r, 200, "text/plain", (struct str){out, (size_t)n});
}

static void *async_answer(void *arg)
{
	struct http_request *r = arg;
	/* Sometimes before the adapter suspended the connection, sometimes after. */
	if (rand() % 2)
		usleep((useconds_t)(rand() % 200));
	char out[64];
	int n = snprintf(out, sizeof(out), "async %.*s", (int)r->query.len, r->query.p);
	http_respond(r, 202, "text/plain", (struct str){out, (size_t)n});
	return NULL;
}

static void async_route(struct http_request *r)
{
	pthread_t t;
	pthread_create(&t, NULL, async_answer, r);
	pthread_detach(t);
}

/* http_defer: the continuation must run on the worker that dispatched the
 * request, whichever thread hands it back, and at once on that worker. */
struct defer_st {
	struct http_request *r;
	pthread_t worker;
};

static void defer_fn(void *arg)
{
	struct defer_st *d = arg;
	const char *out = pthread_equal(pthread_self(), d->worker) ? "defer ok" : "defer wrong thread";
	struct http_request *r = d->r;
	free(d);
	http_respond(r, 200, "text/plain", str_c(out));
}

static void *defer_other(void *arg)
{
	struct defer_st *d = arg;
	if (rand() % 2) /* before or after the adapter suspended the connection */
		usleep((useconds_t)(rand() % 200));
	http_defer(d->r, defer_fn, d);
	return NULL;
}

static void defer_route(struct http_request *r)
{
	struct defer_st *d = xcalloc(1, sizeof(*d));
	d->r = r;
	d->worker = pthread_self();
	if (str_eqc(r->query, "inline")) {
		http_defer(r, defer_fn, d); /* on the worker itself: runs before returning */
		return;
	}
	pthread_t t;
	pthread_create(&t, NULL, defer_other, d);
	pthread_detach(t);
}

static int connect_to(uint16_t port)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	return fd;
}

/* Sends req and reads one response; returns the status, body copied to body. */
static int roundtrip(int fd, const char *req, size_t reqlen, char *body, size_t cap)
{
	char buf[RESP_MAX];
	size_t got = 0;
	assert_int_equal(write(fd, req, reqlen), (ssize_t)reqlen);
	for (;;) {
		ssize_t n = read(fd, buf + got, sizeof(buf) - 1 - got);
		if (n <= 0)
			return -1;
		got += (size_t)n;
		buf[got] = '\0';
		char *end = strstr(buf, "\r\n\r\n");
		if (!end)
			continue;
		char *cl = strcasestr(buf, "content-length:");
		size_t len = cl ? strtoul(cl + 15, NULL, 10) : 0;
		size_t have = got - (size_t)(end + 4 - buf);
		if (have < len)
			continue;
		snprintf(body, cap, "%.*s", (int)len, end + 4);
		return atoi(buf + 9);
	}
}

static uint16_t g_port;

static void *client(void *arg)
{
	int id = (int)(intptr_t)arg, fd = connect_to(g_port);
	char req[256], body[256], want[64];
	for (int i = 0; i < PER_CLIENT; i++) {
		int n;
		if (i % 2) {
			n = snprintf(req, sizeof(req), "GET /async?c=%d&i=%d HTTP/1.1\r\nHost: x\r\n\r\n", id, i);
			assert_int_equal(roundtrip(fd, req, (size_t)n, body, sizeof(body)), 202);
			snprintf(want, sizeof(want), "async c=%d&i=%d", id, i);
		} else {
			n = snprintf(req, sizeof(req), "POST /sync HTTP/1.1\r\nHost: x\r\nX-T: %d\r\n"
				     "Content-Length: 3\r\n\r\nabc", i);
			assert_int_equal(roundtrip(fd, req, (size_t)n, body, sizeof(body)), 200);
			snprintf(want, sizeof(want), "sync POST %d 3", i);
		}
		assert_string_equal(body, want);
	}
	close(fd);
	return NULL;
}

static struct http_server *start(void)
{
	struct http_config cfg = {.host = "127.0.0.1", .port = 0, .threads = 2};
	struct http_server *s = http_server_new(&cfg);
	assert_int_equal(http_route_add(s, NULL, "/sync", sync_route, NULL), 0);
	assert_int_equal(http_route_add(s, "GET", "/async", async_route, NULL), 0);
	assert_int_equal(http_route_add(s, NULL, "/dir/", sync_route, NULL), 0);
	assert_int_equal(http_route_add(s, "GET", "/defer", defer_route, NULL), 0);
	assert_int_equal(http_server_start(s), 0);
	g_port = http_server_port(s);
	assert_true(g_port != 0);
	return s;
}

static void test_sync_and_async_keepalive(void **state)
{
	struct http_server *s = start();
	pthread_t t[CLIENTS];
	for (int i = 0; i < CLIENTS; i++)
		pthread_create(&t[i], NULL, client, (void *)(intptr_t)i);
	for (int i = 0; i < CLIENTS; i++)
		pthread_join(t[i], NULL);
	http_server_stop(s, 1000);
	http_server_free(s);
}

static void *defer_client(void *arg)
{
	int fd = connect_to(g_port);
	char body[256];
	(void)arg;
	for (int i = 0; i < PER_CLIENT; i++) {
		const char *req = i % 3 ? "GET /defer HTTP/1.1\r\nHost: x\r\n\r\n"
					: "GET /defer?inline HTTP/1.1\r\nHost: x\r\n\r\n";
		assert_int_equal(roundtrip(fd, req, strlen(req), body, sizeof(body)), 200);
		assert_string_equal(body, "defer ok");
	}
	close(fd);
	return NULL;
}

/* Continuations handed back from other threads (and from the worker itself)
 * run on the request's worker, on kept-alive connections, none lost. */
static void test_defer(void **state)
{
	struct http_server *s = start();
	pthread_t t[CLIENTS];
	for (int i = 0; i < CLIENTS; i++)
		pthread_create(&t[i], NULL, defer_client, NULL);
	for (int i = 0; i < CLIENTS; i++)
		pthread_join(t[i], NULL);
	http_server_stop(s, 1000);
	http_server_free(s);
}

static void test_errors_and_prefix(void **state)
{
	struct http_server *s = start();
	int fd = connect_to(g_port);
	char body[256];
	static const char nf[] = "GET /nope HTTP/1.1\r\nHost: x\r\n\r\n";
	assert_int_equal(roundtrip(fd, nf, sizeof(nf) - 1, body, sizeof(body)), 404);
	static const char na[] = "POST /async HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n";
	assert_int_equal(roundtrip(fd, na, sizeof(na) - 1, body, sizeof(body)), 405);
	static const char pre[] = "GET /dir/x/y HTTP/1.1\r\nHost: x\r\n\r\n";
	assert_int_equal(roundtrip(fd, pre, sizeof(pre) - 1, body, sizeof(body)), 200);
	static const char dir[] = "GET /dir HTTP/1.1\r\nHost: x\r\n\r\n";
	assert_int_equal(roundtrip(fd, dir, sizeof(dir) - 1, body, sizeof(body)), 404);
	close(fd);
	fd = connect_to(g_port);
	char big[128];
	int n = snprintf(big, sizeof(big), "POST /sync HTTP/1.1\r\nHost: x\r\nContent-Length: %u\r\n\r\n",
			 HTTP_MAX_BODY + 1);
	assert_int_equal(roundtrip(fd, big, (size_t)n, body, sizeof(body)), 413);
	close(fd);
	http_server_stop(s, 1000);
	http_server_free(s);
	http_server_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sync_and_async_keepalive),
		cmocka_unit_test(test_defer),
		cmocka_unit_test(test_errors_and_prefix),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
