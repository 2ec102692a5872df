/* A closed-loop HTTP/1.1 keep-alive load generator for bench/api.
 *
 * Each connection sends one request, reads the whole response, records the
 * latency and sends the next. In "signed" mode every request is a fresh V1
 * (HMAC-SHA1) signed DescribeRegions call with a new nonce and timestamp, as a
 * real client would send it; in "static" mode it is a plain GET of a path (for
 * nginx serving a file of the same size). Using one generator for both sides
 * keeps the comparison fair. Prints one JSON line of results. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "benchutil.h"

#define LG_MAX_CONNS 1024
#define LG_MAX_THREADS 16
#define LG_BUF 65536
#define LG_REQ_MAX 4096
#define LG_QUERY_MAX 16 /* extra parameters from --query */

struct lg_opts {
	const char *host, *path, *akid, *secret, *action;
	const char *query; /* --query: extra "K=V&K=V" parameters, already percent-encoded */
	int port, conns, threads, seconds, warmup;
	int signed_mode;
	double rate; /* --rate: requests a second per connection (open pacing), 0: closed loop */
};

struct lg_conn {
	int fd;
	char req[LG_REQ_MAX];
	size_t req_len, req_off;
	char rbuf[LG_BUF];
	size_t rlen;
	int64_t t_start;
	int64_t due_us; /* --rate: when the next request goes; 0 while one is in flight */
};

struct lg_thread {
	pthread_t tid;
	const struct lg_opts *o;
	int id, nconns;
	uint64_t nonce_seq;
	uint64_t done, errors, non2xx;
	int64_t *lat;
	size_t nlat, caplat;
	int64_t t_begin, t_measure, t_end;
};

static int lg_key_cmp(const void *a, const void *b)
{
	const char *x = *(const char *const *)a, *y = *(const char *const *)b;
	size_t kx = strcspn(x, "="), ky = strcspn(y, "=");
	int c = strncmp(x, y, kx < ky ? kx : ky);
	return c ? c : (kx > ky) - (kx < ky);
}

/* The canonical query of spec §5.3: the "K=V" pieces of in sorted by key. */
static void lg_sorted_query(char *in, char *out, size_t cap)
{
	char *parts[LG_QUERY_MAX + 16], *save = NULL;
	size_t n = 0, o = 0;
	for (char *p = strtok_r(in, "&", &save); p && n < sizeof(parts) / sizeof(parts[0]);
	     p = strtok_r(NULL, "&", &save))
		parts[n++] = p;
	qsort(parts, n, sizeof(parts[0]), lg_key_cmp);
	out[0] = '\0';
	for (size_t i = 0; i < n && o < cap; i++)
		o += (size_t)snprintf(out + o, cap - o, "%s%s", i ? "&" : "", parts[i]);
}

/* Builds a freshly signed V1 GET request (spec §5.3): parameters sorted by name. */
static void lg_build_signed(struct lg_thread *t, struct lg_conn *c)
{
	const struct lg_opts *o = t->o;
	char nonce[64], ts[32], qs[2048], qse[4096], sts[4600], sig64[64], sige[128];
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned maclen = 0;
	time_t now = time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H%%3A%M%%3A%SZ", &tm);
	snprintf(nonce, sizeof(nonce), "lg%d-%d-%llu-%ld", (int)getpid(), t->id,
		 (unsigned long long)t->nonce_seq++, (long)now);
	char fixed[512], all[2048];
	snprintf(fixed, sizeof(fixed),
		 "AccessKeyId=%s&Action=%s&Format=JSON&SignatureMethod=HMAC-SHA1&SignatureNonce=%s"
		 "&SignatureVersion=1.0&Timestamp=%s&Version=2018-03-13",
		 o->akid, o->action, nonce, ts);
	snprintf(all, sizeof(all), "%s%s%s", fixed, o->query ? "&" : "", o->query ? o->query : "");
	lg_sorted_query(all, qs, sizeof(qs));
	bench_pct(qs, qse, sizeof(qse));
	snprintf(sts, sizeof(sts), "GET&%%2F&%s", qse);
	char key[256];
	snprintf(key, sizeof(key), "%s&", o->secret);
	HMAC(EVP_sha1(), key, (int)strlen(key), (unsigned char *)sts, strlen(sts), mac, &maclen);
	EVP_EncodeBlock((unsigned char *)sig64, mac, (int)maclen);
	bench_pct(sig64, sige, sizeof(sige));
	int n = snprintf(c->req, sizeof(c->req),
			 "GET /?%s&Signature=%s HTTP/1.1\r\nHost: %s:%d\r\nUser-Agent: sagflow-loadgen\r\n\r\n",
			 qs, sige, o->host, o->port);
	c->req_len = (size_t)n;
	c->req_off = 0;
}

static void lg_build(struct lg_thread *t, struct lg_conn *c)
{
	if (t->o->signed_mode) {
		lg_build_signed(t, c);
		return;
	}
	int n = snprintf(c->req, sizeof(c->req),
			 "GET %s HTTP/1.1\r\nHost: %s:%d\r\nUser-Agent: sagflow-loadgen\r\n\r\n",
			 t->o->path, t->o->host, t->o->port);
	c->req_len = (size_t)n;
	c->req_off = 0;
}

static int lg_connect(const struct lg_opts *o)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)o->port)};
	inet_pton(AF_INET, o->host, &sa.sin_addr);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		perror("connect");
		exit(1);
	}
	return fd;
}

/* Returns the length of a complete response at the start of buf, 0 if incomplete, -1 if bad. */
static long lg_response_len(const char *buf, size_t len, int *status)
{
	const char *end = memmem(buf, len, "\r\n\r\n", 4);
	if (!end)
		return 0;
	size_t hlen = (size_t)(end - buf) + 4;
	if (len < 12 || memcmp(buf, "HTTP/1.", 7) != 0)
		return -1;
	*status = atoi(buf + 9);
	long clen = -1;
	for (const char *p = buf; p < end;) {
		const char *nl = memmem(p, (size_t)(end - p), "\r\n", 2);
		if (!nl)
			nl = end;
		if ((size_t)(nl - p) > 15 && strncasecmp(p, "content-length:", 15) == 0)
			clen = atol(p + 15);
		p = nl + 2;
	}
	if (clen < 0)
		return -1;
	if (len < hlen + (size_t)clen)
		return 0;
	return (long)(hlen + (size_t)clen);
}

static void lg_record(struct lg_thread *t, int64_t us)
{
	if (t->nlat == t->caplat) {
		t->caplat = t->caplat ? t->caplat * 2 : 65536;
		t->lat = realloc(t->lat, t->caplat * sizeof(*t->lat));
		if (!t->lat)
			abort();
	}
	t->lat[t->nlat++] = us;
}

static void *lg_run(void *arg)
{
	struct lg_thread *t = arg;
	const struct lg_opts *o = t->o;
	int ep = epoll_create1(0);
	struct lg_conn *conns = calloc((size_t)t->nconns, sizeof(*conns));
	for (int i = 0; i < t->nconns; i++) {
		struct lg_conn *c = &conns[i];
		c->fd = lg_connect(o);
		struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
		epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
		lg_build(t, c);
		c->t_start = bench_now_us();
	}
	struct epoll_event evs[64];
	while (bench_now_us() < t->t_end) {
		int n = epoll_wait(ep, evs, 64, o->rate > 0 ? 1 : 100);
		for (int i = 0; o->rate > 0 && i < t->nconns; i++) {
			struct lg_conn *c = &conns[i];
			int64_t now = bench_now_us();
			if (!c->due_us || now < c->due_us)
				continue;
			c->due_us = 0;
			lg_build(t, c);
			c->t_start = now;
			struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
			epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
		}
		for (int i = 0; i < n; i++) {
			struct lg_conn *c = evs[i].data.ptr;
			if ((evs[i].events & EPOLLOUT) && c->req_off < c->req_len) {
				ssize_t w = write(c->fd, c->req + c->req_off, c->req_len - c->req_off);
				if (w > 0)
					c->req_off += (size_t)w;
				if (c->req_off == c->req_len) {
					struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
					epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
				}
			}
			if (!(evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
				continue;
			ssize_t r = read(c->fd, c->rbuf + c->rlen, sizeof(c->rbuf) - c->rlen);
			if (r <= 0) {
				if (r < 0 && errno == EAGAIN)
					continue;
				/* The server closed: count it and reconnect. */
				t->errors++;
				epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
				close(c->fd);
				c->fd = lg_connect(o);
				c->rlen = 0;
				lg_build(t, c);
				c->t_start = bench_now_us();
				struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
				epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
				continue;
			}
			c->rlen += (size_t)r;
			int status = 0;
			long rl = lg_response_len(c->rbuf, c->rlen, &status);
			if (rl == 0)
				continue;
			int64_t now = bench_now_us();
			if (rl < 0) {
				t->errors++;
				c->rlen = 0;
			} else {
				if (now >= t->t_measure) {
					t->done++;
					if (status < 200 || status > 299)
						t->non2xx++;
					lg_record(t, now - c->t_start);
				}
				memmove(c->rbuf, c->rbuf + rl, c->rlen - (size_t)rl);
				c->rlen -= (size_t)rl;
			}
			if (o->rate > 0) {
				/* Paced: the next request at its slot, not at once. */
				c->due_us = c->t_start + (int64_t)(1e6 / o->rate);
				if (c->due_us <= now)
					c->due_us = now;
				struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
				epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
				continue;
			}
			lg_build(t, c);
			c->t_start = now;
			struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
			epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
		}
	}
	for (int i = 0; i < t->nconns; i++)
		close(conns[i].fd);
	free(conns);
	close(ep);
	return NULL;
}

static int lg_cmp(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

static void lg_usage(void)
{
	fprintf(stderr,
		"usage: loadgen --port P [--host 127.0.0.1] [--connections 64] [--threads 1]\n"
		"               [--seconds 10] [--warmup 2] [--rate R/s per connection] (--path /file | --signed --akid ID --secret S\n"
		"               [--action DescribeRegions] [--query 'PageSize=50&RegionId=cn-shanghai'])\n");
	exit(2);
}

int main(int argc, char **argv)
{
	struct lg_opts o = {.host = "127.0.0.1", .path = "/", .action = "DescribeRegions",
			    .conns = 64, .threads = 1, .seconds = 10, .warmup = 2};
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(a, "--signed")) {
			o.signed_mode = 1;
			continue;
		}
		if (!v)
			lg_usage();
		i++;
		if (!strcmp(a, "--host"))
			o.host = v;
		else if (!strcmp(a, "--port"))
			o.port = atoi(v);
		else if (!strcmp(a, "--path"))
			o.path = v;
		else if (!strcmp(a, "--akid"))
			o.akid = v;
		else if (!strcmp(a, "--secret"))
			o.secret = v;
		else if (!strcmp(a, "--action"))
			o.action = v;
		else if (!strcmp(a, "--query"))
			o.query = v;
		else if (!strcmp(a, "--connections"))
			o.conns = atoi(v);
		else if (!strcmp(a, "--threads"))
			o.threads = atoi(v);
		else if (!strcmp(a, "--seconds"))
			o.seconds = atoi(v);
		else if (!strcmp(a, "--warmup"))
			o.warmup = atoi(v);
		else if (!strcmp(a, "--rate"))
			o.rate = atof(v);
		else
			lg_usage();
	}
	if (o.port <= 0 || o.conns < 1 || o.conns > LG_MAX_CONNS || o.threads < 1 ||
	    o.threads > LG_MAX_THREADS || (o.signed_mode && (!o.akid || !o.secret)))
		lg_usage();
	struct lg_thread th[LG_MAX_THREADS] = {{0}};
	int64_t begin = bench_now_us();
	for (int i = 0; i < o.threads; i++) {
		th[i].o = &o;
		th[i].id = i;
		th[i].nconns = o.conns / o.threads + (i < o.conns % o.threads);
		th[i].t_begin = begin;
		th[i].t_measure = begin + (int64_t)o.warmup * 1000000;
		th[i].t_end = th[i].t_measure + (int64_t)o.seconds * 1000000;
		pthread_create(&th[i].tid, NULL, lg_run, &th[i]);
	}
	uint64_t done = 0, errors = 0, non2xx = 0;
	size_t nlat = 0;
	for (int i = 0; i < o.threads; i++) {
		pthread_join(th[i].tid, NULL);
		done += th[i].done;
		errors += th[i].errors;
		non2xx += th[i].non2xx;
		nlat += th[i].nlat;
	}
	int64_t *all = malloc((nlat ? nlat : 1) * sizeof(*all));
	size_t k = 0;
	for (int i = 0; i < o.threads; i++) {
		memcpy(all + k, th[i].lat, th[i].nlat * sizeof(*all));
		k += th[i].nlat;
		free(th[i].lat);
	}
	qsort(all, nlat, sizeof(*all), lg_cmp);
	double p50 = nlat ? all[nlat / 2] / 1000.0 : 0, p99 = nlat ? all[nlat * 99 / 100] / 1000.0 : 0;
	double pmax = nlat ? all[nlat - 1] / 1000.0 : 0;
	printf("{\"mode\":\"%s\",\"connections\":%d,\"seconds\":%d,\"requests\":%llu,\"rps\":%.0f,"
	       "\"p50_ms\":%.3f,\"p99_ms\":%.3f,\"max_ms\":%.3f,\"non2xx\":%llu,\"errors\":%llu}\n",
	       o.signed_mode ? "signed" : "static", o.conns, o.seconds, (unsigned long long)done,
	       (double)done / o.seconds, p50, p99, pmax, (unsigned long long)non2xx,
	       (unsigned long long)errors);
	free(all);
	return 0;
}
