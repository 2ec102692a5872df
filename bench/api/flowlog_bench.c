/* bench/api flow-log mixes: CreateFlowLog, AssociateFlowLog/DisassociateFlowLog
 * and DescribeFlowLogs by page against a running `sagflow serve`, through
 * signed V1 requests on keep-alive connections (one closed-loop thread per
 * connection), plus the bare SQLite loop (one INSERT per durable transaction,
 * same pragmas) for the comparison. One JSON line per phase on stdout.
 *
 *   flowlog_bench --port P --db PATH|URI [--conns 64] [--seconds 10] [--flowlogs 100000]
 *                 [--gateways 10000] [--bare-dir DIR] [--page-dir DIR] [--phases assoc]
 *
 * The database path is used once, to give the seeded gateways a reported
 * SAG-1000 device at firmware 1.7.0 (what the device channel would store), so
 * AssociateFlowLog succeeds; everything else goes through the API. A
 * postgresql:// URI is seeded through psql (bench/pg/run.sh).
 *
 * --phases assoc: after seeding, only the Associate/Disassociate phase (what
 * bench/pg/run.sh repeats in interleaved rounds).
 *
 * --page-dir DIR: after seeding, the body of DescribeFlowLogs page 1 with
 * PageSize 50 and 10 is saved as DIR/flowlogs-50.json and DIR/flowlogs-10.json,
 * for nginx to serve as the same-size static file (flowlog_run.sh). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <limits.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "benchutil.h"

#define FB_MAX_CONNS 256
#define FB_MAX_PARAMS 12
#define FB_REQ_MAX 4096
#define FB_RESP_MAX (256 * 1024)
#define FB_ID_MAX 32
#define FB_AKID "benchkey"
#define FB_SECRET "benchsecret"
#define FB_REGION "cn-shanghai"
#define FB_PAGE_SIZE 50

struct fb_opts {
	int port, conns, seconds;
	long flowlogs, gateways;
	const char *db, *bare_dir, *page_dir, *phases;
};

struct kv {
	const char *k;
	char v[64];
};

enum fb_mode { FB_CREATE_FL, FB_CREATE_GW, FB_DESCRIBE, FB_ASSOC, FB_MIX };

struct fb_run {
	const struct fb_opts *o;
	enum fb_mode mode;
	long page;          /* FB_DESCRIBE */
	long target;        /* stop after this many successes (creates), 0 = by time */
	atomic_long issued; /* creates handed out */
	int64_t t_end;
};

struct fb_thread {
	pthread_t tid;
	struct fb_run *run;
	int id, fd;
	uint64_t seq;
	uint64_t ok, non2xx, errors, writes, reads;
	int64_t *lat, *wlat, *rlat;
	size_t nlat, nwlat, nrlat, cap, wcap, rcap;
	char resp[FB_RESP_MAX];
};

/* Collected ids (filled by the create phases, read by the others). */
static char (*fl_ids)[FB_ID_MAX];
static char (*gw_ids)[FB_ID_MAX];
static atomic_long n_fl, n_gw;
static atomic_ullong nonce_seq; /* unique across phases and threads */
static atomic_int shown;        /* error bodies printed so far */

static int kv_cmp(const void *a, const void *b)
{
	return strcmp(((const struct kv *)a)->k, ((const struct kv *)b)->k);
}

/* A signed V1 GET (spec §5.3) of action with the API parameters in kv. */
static size_t build(struct fb_thread *t, const char *action, struct kv *kv, int n, char *out)
{
	char ts[32], nonce[64], qs[2048], qse[4096], sts[4200], key[64], b64[64], sige[128];
	time_t now = time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
	t->seq++;
	snprintf(nonce, sizeof(nonce), "fb%d-%llu", (int)getpid(),
		 (unsigned long long)atomic_fetch_add(&nonce_seq, 1));
	struct kv all[FB_MAX_PARAMS + 10];
	int m = 0;
	const char *common[][2] = {{"AccessKeyId", FB_AKID}, {"Action", action}, {"Format", "JSON"},
				   {"RegionId", FB_REGION}, {"SignatureMethod", "HMAC-SHA1"},
				   {"SignatureNonce", nonce}, {"SignatureVersion", "1.0"},
				   {"Timestamp", ts}, {"Version", "2018-03-13"}};
	for (size_t i = 0; i < sizeof(common) / sizeof(common[0]); i++) {
		all[m].k = common[i][0];
		snprintf(all[m].v, sizeof(all[m].v), "%s", common[i][1]);
		m++;
	}
	for (int i = 0; i < n; i++)
		all[m++] = kv[i];
	qsort(all, (size_t)m, sizeof(all[0]), kv_cmp);
	size_t q = 0;
	for (int i = 0; i < m; i++) {
		char ev[192];
		bench_pct(all[i].v, ev, sizeof(ev));
		q += (size_t)snprintf(qs + q, sizeof(qs) - q, "%s%s=%s", i ? "&" : "", all[i].k, ev);
	}
	bench_pct(qs, qse, sizeof(qse));
	snprintf(sts, sizeof(sts), "GET&%%2F&%s", qse);
	snprintf(key, sizeof(key), "%s&", FB_SECRET);
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned maclen = 0;
	HMAC(EVP_sha1(), key, (int)strlen(key), (unsigned char *)sts, strlen(sts), mac, &maclen);
	EVP_EncodeBlock((unsigned char *)b64, mac, (int)maclen);
	bench_pct(b64, sige, sizeof(sige));
	return (size_t)snprintf(out, FB_REQ_MAX, "GET /?%s&Signature=%s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
				qs, sige);
}

static int conn_open(int port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		perror("connect");
		exit(1);
	}
	return fd;
}

/* Sends req and reads one response into t->resp; returns the status or -1. */
static int exchange(struct fb_thread *t, const char *req, size_t len, size_t *body_off)
{
	for (size_t off = 0; off < len;) {
		ssize_t w = write(t->fd, req + off, len - off);
		if (w <= 0)
			return -1;
		off += (size_t)w;
	}
	size_t got = 0;
	for (;;) {
		ssize_t r = read(t->fd, t->resp + got, sizeof(t->resp) - 1 - got);
		if (r <= 0)
			return -1;
		got += (size_t)r;
		t->resp[got] = '\0';
		char *end = strstr(t->resp, "\r\n\r\n");
		if (!end)
			continue;
		char *cl = strcasestr(t->resp, "content-length:");
		if (!cl || cl > end)
			return -1;
		size_t need = (size_t)(end - t->resp) + 4 + (size_t)atol(cl + 15);
		if (got < need)
			continue;
		*body_off = (size_t)(end - t->resp) + 4;
		return atoi(t->resp + 9);
	}
}

static void record(int64_t **arr, size_t *n, size_t *cap, int64_t v)
{
	if (*n == *cap) {
		*cap = *cap ? *cap * 2 : 65536;
		*arr = realloc(*arr, *cap * sizeof(**arr));
		if (!*arr)
			abort();
	}
	(*arr)[(*n)++] = v;
}

static void grab_id(const char *body, const char *field, char (*ids)[FB_ID_MAX], atomic_long *n,
		    long max)
{
	char pat[64];
	snprintf(pat, sizeof(pat), "\"%s\":\"", field);
	const char *p = strstr(body, pat);
	if (!p)
		return;
	p += strlen(pat);
	const char *q = strchr(p, '"');
	if (!q || q - p >= FB_ID_MAX)
		return;
	long i = atomic_fetch_add(n, 1);
	if (i >= max)
		return;
	memcpy(ids[i], p, (size_t)(q - p));
	ids[i][q - p] = '\0';
}

/* One request of the run's mode; returns 1 when the phase is done. */
static int one(struct fb_thread *t, char *req)
{
	struct fb_run *run = t->run;
	struct kv kv[FB_MAX_PARAMS];
	int n = 0, write_op = 1;
	const char *action;
	enum fb_mode mode = run->mode;
	if (mode == FB_MIX) /* 80 % reads, 20 % durable writes (Associate/Disassociate) */
		mode = (t->seq % 5) ? FB_DESCRIBE : FB_ASSOC;
	switch (mode) {
	case FB_CREATE_FL:
		if (atomic_fetch_add(&run->issued, 1) >= run->target)
			return 1;
		action = "CreateFlowLog";
		kv[n].k = "OutputType", snprintf(kv[n++].v, 64, "netflow");
		kv[n].k = "NetflowServerIp", snprintf(kv[n++].v, 64, "10.0.%d.%d", t->id, (int)(t->seq % 250));
		kv[n].k = "Name", snprintf(kv[n++].v, 64, "bench-%d-%llu", t->id, (unsigned long long)t->seq);
		break;
	case FB_CREATE_GW:
		if (atomic_fetch_add(&run->issued, 1) >= run->target)
			return 1;
		action = "CreateSmartAccessGateway";
		kv[n].k = "HardWareSpec", snprintf(kv[n++].v, 64, "sag-1000");
		kv[n].k = "HaType", snprintf(kv[n++].v, 64, "no_backup");
		break;
	case FB_DESCRIBE: {
		long pages = run->page ? run->page : 1 + (long)(t->seq % 2000);
		action = "DescribeFlowLogs", write_op = 0;
		kv[n].k = "PageNumber", snprintf(kv[n++].v, 64, "%ld", pages);
		kv[n].k = "PageSize", snprintf(kv[n++].v, 64, "%d", FB_PAGE_SIZE);
		break;
	}
	default: {
		/* Connection c owns gateways c, c+conns, ...: Associate then
		 * Disassociate, so every request is a successful durable write. */
		long ng = atomic_load(&n_gw), nf = atomic_load(&n_fl);
		if (ng > run->o->gateways)
			ng = run->o->gateways;
		if (nf > run->o->flowlogs)
			nf = run->o->flowlogs;
		if (ng < run->o->conns || nf < ng)
			return 1;
		long slot = t->id + (long)((t->seq / 2) % (uint64_t)(ng / run->o->conns)) * run->o->conns;
		action = (t->seq % 2) ? "DisassociateFlowLog" : "AssociateFlowLog";
		kv[n].k = "SmartAGId", snprintf(kv[n++].v, 64, "%s", gw_ids[slot % ng]);
		kv[n].k = "FlowLogId", snprintf(kv[n++].v, 64, "%s", fl_ids[slot % nf]);
		break;
	}
	}
	size_t len = build(t, action, kv, n, req);
	int64_t t0 = bench_now_us();
	size_t body;
	int st = exchange(t, req, len, &body);
	int64_t dt = bench_now_us() - t0;
	if (st < 0) {
		t->errors++;
		close(t->fd);
		t->fd = conn_open(run->o->port);
		return 0;
	}
	if (st != 200) {
		t->non2xx++;
		if (atomic_fetch_add(&shown, 1) < 3)
			fprintf(stderr, "%s -> %d %s\n", action, st, t->resp + body);
	} else {
		t->ok++;
		if (mode == FB_CREATE_FL)
			grab_id(t->resp + body, "FlowLogId", fl_ids, &n_fl, run->o->flowlogs);
		else if (mode == FB_CREATE_GW)
			grab_id(t->resp + body, "SmartAGId", gw_ids, &n_gw, run->o->gateways);
	}
	record(&t->lat, &t->nlat, &t->cap, dt);
	if (write_op)
		record(&t->wlat, &t->nwlat, &t->wcap, dt), t->writes++;
	else
		record(&t->rlat, &t->nrlat, &t->rcap, dt), t->reads++;
	return 0;
}

static void *thread_main(void *arg)
{
	struct fb_thread *t = arg;
	char *req = malloc(FB_REQ_MAX);
	t->fd = conn_open(t->run->o->port);
	while (bench_now_us() < t->run->t_end && !one(t, req))
		;
	close(t->fd);
	free(req);
	return NULL;
}

static int cmp64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

static double pctl(int64_t *v, size_t n, double p)
{
	if (!n)
		return 0;
	qsort(v, n, sizeof(*v), cmp64);
	size_t i = (size_t)(p * (double)(n - 1));
	return (double)v[i] / 1000.0;
}

static void merge(int64_t **dst, size_t *n, size_t *cap, const int64_t *src, size_t m)
{
	for (size_t i = 0; i < m; i++)
		record(dst, n, cap, src[i]);
}

static void phase(const struct fb_opts *o, const char *name, enum fb_mode mode, long page, long target,
		  int seconds)
{
	struct fb_run run = {.o = o, .mode = mode, .page = page, .target = target};
	struct fb_thread *th = calloc((size_t)o->conns, sizeof(*th));
	int64_t t0 = bench_now_us();
	run.t_end = t0 + (int64_t)seconds * 1000000;
	for (int i = 0; i < o->conns; i++) {
		th[i].run = &run;
		th[i].id = i;
		pthread_create(&th[i].tid, NULL, thread_main, &th[i]);
	}
	int64_t *all = NULL, *w = NULL, *r = NULL;
	size_t na = 0, ca = 0, nw = 0, cw = 0, nr = 0, cr = 0;
	uint64_t ok = 0, bad = 0, err = 0;
	for (int i = 0; i < o->conns; i++) {
		pthread_join(th[i].tid, NULL);
		merge(&all, &na, &ca, th[i].lat, th[i].nlat);
		merge(&w, &nw, &cw, th[i].wlat, th[i].nwlat);
		merge(&r, &nr, &cr, th[i].rlat, th[i].nrlat);
		ok += th[i].ok, bad += th[i].non2xx, err += th[i].errors;
		free(th[i].lat), free(th[i].wlat), free(th[i].rlat);
	}
	double secs = (double)(bench_now_us() - t0) / 1e6;
	printf("{\"phase\":\"%s\",\"connections\":%d,\"seconds\":%.2f,\"requests\":%zu,\"rps\":%.0f,"
	       "\"ok\":%llu,\"non2xx\":%llu,\"errors\":%llu,\"p50_ms\":%.2f,\"p99_ms\":%.2f,"
	       "\"writes_rps\":%.0f,\"writes_p99_ms\":%.2f,\"reads_rps\":%.0f,\"reads_p99_ms\":%.2f}\n",
	       name, o->conns, secs, na, (double)na / secs, (unsigned long long)ok,
	       (unsigned long long)bad, (unsigned long long)err, pctl(all, na, 0.50), pctl(all, na, 0.99),
	       (double)nw / secs, pctl(w, nw, 0.99), (double)nr / secs, pctl(r, nr, 0.99));
	fflush(stdout);
	free(all), free(w), free(r), free(th);
}

/* Saves the body of DescribeFlowLogs page 1 with PageSize size to dir. */
static void save_page(const struct fb_opts *o, int size, const char *dir)
{
	struct fb_thread *t = calloc(1, sizeof(*t));
	char *req = malloc(FB_REQ_MAX), path[512];
	struct kv kv[2] = {{.k = "PageNumber", .v = "1"}, {.k = "PageSize"}};
	snprintf(kv[1].v, sizeof(kv[1].v), "%d", size);
	size_t body, len = build(t, "DescribeFlowLogs", kv, 2, req);
	t->fd = conn_open(o->port);
	int st = exchange(t, req, len, &body);
	snprintf(path, sizeof(path), "%s/flowlogs-%d.json", dir, size);
	FILE *f = st == 200 ? fopen(path, "w") : NULL;
	if (!f || fputs(t->resp + body, f) < 0 || fclose(f) != 0) {
		fprintf(stderr, "save_page %d: status %d, %s\n", size, st, path);
		exit(1);
	}
	close(t->fd);
	free(req);
	free(t);
}

/* The devices a gateway would have after its box reported over the device
 * channel: one SAG-1000 at 1.7.0 per seeded gateway. */
#define FB_SEED_SQL "INSERT" FB_SEED_INTO
#define FB_SEED_INTO                                                                            \
	" INTO devices (serial_number, sag_rowid, secret_key, model, software_version, "          \
	"reported_ms, bound_ms) SELECT 'BENCH' || id, id, 'benchdevicekey', 'sag-1000', '1.7.0', " \
	"1, 1 FROM sags"

/* The same rows through psql on a PostgreSQL database. */
static void seed_devices_pg(const char *uri)
{
	pid_t pid = fork();
	if (pid == 0) {
		execlp("psql", "psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", uri, "-c",
		       FB_SEED_SQL " ON CONFLICT DO NOTHING", (char *)NULL);
		_exit(127);
	}
	int st = 0;
	if (pid < 0 || waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		fprintf(stderr, "seed devices: psql failed\n");
		exit(1);
	}
}

static void seed_devices(const char *db)
{
	if (!strncmp(db, "postgres", 8)) {
		seed_devices_pg(db);
		return;
	}
	sqlite3 *h;
	char *err = NULL;
	if (sqlite3_open(db, &h) != SQLITE_OK) {
		fprintf(stderr, "open %s: %s\n", db, sqlite3_errmsg(h));
		exit(1);
	}
	sqlite3_busy_timeout(h, 10000);
	/* INSERT OR IGNORE: an upsert after INSERT ... SELECT is ambiguous in SQLite. */
	if (sqlite3_exec(h, "INSERT OR IGNORE" FB_SEED_INTO, NULL, NULL, &err) !=
	    SQLITE_OK) {
		fprintf(stderr, "seed devices: %s\n", err);
		exit(1);
	}
	sqlite3_close(h);
}

/* The bare loop: one INSERT per durable transaction, same pragmas as the store. */
static void bare(const char *dir, int seconds)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/bare.db", dir);
	unlink(path);
	sqlite3 *h;
	sqlite3_open(path, &h);
	sqlite3_exec(h, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; "
			"CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)", NULL, NULL, NULL);
	sqlite3_stmt *st;
	sqlite3_prepare_v2(h, "INSERT INTO t (v) VALUES ('0123456789abcdef0123456789abcdef')", -1, &st, NULL);
	int64_t t0 = bench_now_us(), end = t0 + (int64_t)seconds * 1000000;
	long n = 0;
	while (bench_now_us() < end) {
		sqlite3_exec(h, "BEGIN", NULL, NULL, NULL);
		sqlite3_step(st);
		sqlite3_reset(st);
		sqlite3_exec(h, "COMMIT", NULL, NULL, NULL);
		n++;
	}
	double secs = (double)(bench_now_us() - t0) / 1e6;
	printf("{\"phase\":\"bare-sqlite-insert-per-tx\",\"seconds\":%.2f,\"tx\":%ld,\"tx_per_s\":%.0f}\n", secs,
	       n, (double)n / secs);
	fflush(stdout);
	sqlite3_finalize(st);
	sqlite3_close(h);
	unlink(path);
	char wal[520];
	snprintf(wal, sizeof(wal), "%s-wal", path);
	unlink(wal);
	snprintf(wal, sizeof(wal), "%s-shm", path);
	unlink(wal);
}

int main(int argc, char **argv)
{
	struct fb_opts o = {.conns = 64, .seconds = 10, .flowlogs = 100000, .gateways = 10000};
	for (int i = 1; i + 1 < argc; i += 2) {
		const char *a = argv[i], *v = argv[i + 1];
		if (!strcmp(a, "--port"))
			o.port = atoi(v);
		else if (!strcmp(a, "--conns"))
			o.conns = atoi(v);
		else if (!strcmp(a, "--seconds"))
			o.seconds = atoi(v);
		else if (!strcmp(a, "--flowlogs"))
			o.flowlogs = atol(v);
		else if (!strcmp(a, "--gateways"))
			o.gateways = atol(v);
		else if (!strcmp(a, "--db"))
			o.db = v;
		else if (!strcmp(a, "--bare-dir"))
			o.bare_dir = v;
		else if (!strcmp(a, "--page-dir"))
			o.page_dir = v;
		else if (!strcmp(a, "--phases"))
			o.phases = v;
	}
	if (!o.port || !o.db || o.conns < 1 || o.conns > FB_MAX_CONNS || o.gateways < o.conns) {
		fprintf(stderr, "usage: flowlog_bench --port P --db PATH [--conns N<=%d] [--seconds N] "
				"[--flowlogs N] [--gateways N>=conns] [--bare-dir DIR]\n", FB_MAX_CONNS);
		return 2;
	}
	fl_ids = calloc((size_t)o.flowlogs, FB_ID_MAX);
	gw_ids = calloc((size_t)o.gateways, FB_ID_MAX);
	if (o.bare_dir)
		bare(o.bare_dir, o.seconds);
	/* Seeding doubles as the durable-write measurement of CreateFlowLog. */
	phase(&o, "create-flowlog (seed)", FB_CREATE_FL, 0, o.flowlogs, 3600);
	phase(&o, "create-gateway (seed)", FB_CREATE_GW, 0, o.gateways, 3600);
	seed_devices(o.db);
	if (o.phases && !strcmp(o.phases, "assoc")) {
		phase(&o, "associate+disassociate", FB_ASSOC, 0, 0, o.seconds);
		return 0;
	}
	if (o.page_dir) {
		save_page(&o, FB_PAGE_SIZE, o.page_dir);
		save_page(&o, 10, o.page_dir);
	}
	if (o.bare_dir)
		bare(o.bare_dir, o.seconds);
	static const long pages[] = {1, 10, 100, 1000, 2000};
	for (size_t i = 0; i < sizeof(pages) / sizeof(pages[0]); i++) {
		char name[64];
		snprintf(name, sizeof(name), "describe-flowlogs page %ld", pages[i]);
		phase(&o, name, FB_DESCRIBE, pages[i], 0, o.seconds / 2 > 0 ? o.seconds / 2 : 1);
	}
	/* Durable creates on the store already holding the seeded logs, by time. */
	phase(&o, "create-flowlog (on the seeded store)", FB_CREATE_FL, 0, LONG_MAX, o.seconds);
	phase(&o, "associate+disassociate", FB_ASSOC, 0, 0, o.seconds);
	phase(&o, "mix 80% describe / 20% associate", FB_MIX, 0, 0, o.seconds);
	free(fl_ids);
	free(gw_ids);
	return 0;
}
