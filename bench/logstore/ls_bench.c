/* bench/logstore: the log store against the goals of issue 10 (see
 * bench/logstore/run.sh and docs/benchmarks.md, "Log store").
 *
 * 1. Ingest: ROUNDS rounds; each round generates its share of the records
 *    (ls_gen.h), encodes them as lz4 LogGroups of 4,096 records with a
 *    __pack_id__ (untimed), PUTs them over --conns keep-alive connections
 *    (each request freshly V1-signed, as @alicloud/log does), then inserts the
 *    same rows into a bare SQLite table (typed columns, prepared INSERT,
 *    transactions of 4,096, WAL, synchronous=FULL) in the same directory's
 *    file system. Both rates are printed per round.
 * 2. Queries, each --reps times (median and max of the client's latency),
 *    and checked against answers computed here from the generated records:
 *    top-10 srcaddr by sum(bytes) over the day and over the last hour, and a
 *    GetHistograms of the day (96 buckets of 15 minutes).
 * Prints JSON lines. */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <lz4.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "../api/benchutil.h"
#include "ls_gen.h"
#include "sls/sig.h"
#include "sls/sls_logs.pb-c.h"

#define B_GROUP 4096        /* records per LogGroup, as the issue says */
#define B_MAX_CONNS 64
#define B_HEAD_MAX 4096
#define B_TOPN 10
#define B_HIST_WIDTH 900    /* GetHistograms of a day: 96 buckets of 15 minutes */
#define B_MAX_REPS 101
#define B_PROJECT "benchproj"
#define B_LOGSTORE "flows"
#define B_DOMAIN "sls.localhost"

struct opts {
	int port, conns, rounds, reps;
	uint64_t records, seed;
	const char *akid, *secret, *bare_dir;
	int skip_ingest;
};

/* ---- HTTP/1.1 over one keep-alive connection ---- */

struct conn {
	int fd;
	char *buf;
	size_t cap, len;
};

static int conn_open(struct conn *c, int port)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
				.sin_addr.s_addr = htonl(0x7f000001)};
	int one = 1;
	c->fd = socket(AF_INET, SOCK_STREAM, 0);
	if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&a, sizeof(a)) != 0)
		return -1;
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->cap = 1 << 20;
	c->buf = malloc(c->cap);
	c->len = 0;
	return c->buf ? 0 : -1;
}

static void conn_close(struct conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	free(c->buf);
	c->buf = NULL;
	c->fd = -1;
}

static int write_all(int fd, struct iovec *iov, int n)
{
	while (n > 0) {
		ssize_t w = writev(fd, iov, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		while (n > 0 && (size_t)w >= iov->iov_len) {
			w -= (ssize_t)iov->iov_len;
			iov++, n--;
		}
		if (n > 0) {
			iov->iov_base = (char *)iov->iov_base + w;
			iov->iov_len -= (size_t)w;
		}
	}
	return 0;
}

static int fill(struct conn *c)
{
	if (c->len == c->cap) {
		c->cap *= 2;
		char *p = realloc(c->buf, c->cap);
		if (!p)
			return -1;
		c->buf = p;
	}
	ssize_t r = read(c->fd, c->buf + c->len, c->cap - c->len);
	if (r <= 0)
		return -1;
	c->len += (size_t)r;
	return 0;
}

/* Sends one request and reads the answer: status, and the body (a slice of
 * c->buf, NUL-terminated) valid until the next request. Content-Length only:
 * libmicrohttpd sends it for every answer of the log store. */
static int http_do(struct conn *c, const char *head, size_t hlen, const void *body, size_t blen,
		   int *status, char **rbody, size_t *rlen)
{
	struct iovec iov[2] = {{(void *)(uintptr_t)head, hlen}, {(void *)(uintptr_t)body, blen}};
	c->len = 0;
	if (write_all(c->fd, iov, blen ? 2 : 1) != 0)
		return -1;
	char *end;
	for (;;) {
		if (c->len && (end = memmem(c->buf, c->len, "\r\n\r\n", 4)))
			break;
		if (fill(c) != 0)
			return -1;
	}
	size_t hsize = (size_t)(end + 4 - c->buf), clen = 0;
	for (char *p = c->buf; p < end; p = strstr(p, "\r\n") + 2)
		if (!strncasecmp(p, "content-length:", 15))
			clen = strtoull(p + 15, NULL, 10);
	*status = atoi(c->buf + 9);
	while (c->len - hsize < clen)
		if (fill(c) != 0)
			return -1;
	if (c->len == c->cap) { /* room for the NUL */
		char *p = realloc(c->buf, c->cap + 1);
		if (!p)
			return -1;
		c->buf = p;
		c->cap++;
	}
	*rbody = c->buf + hsize;
	*rlen = clen;
	(*rbody)[clen] = '\0';
	return 0;
}

/* ---- V1 signing (src/sls/sig.h, the server's own canonical strings) ---- */

struct req {
	const char *method, *project, *path;
	struct sls_kv q[8];
	size_t nq;
	const char *ctype, *compress;
	const void *body;
	size_t blen, rawlen;
};

static size_t sign_head(const struct opts *o, const struct req *r, char *out, size_t cap)
{
	char md5[SLS_SIG_MD5_HEX + 1] = "", date[30], raw[24], sig[SLS_SIG_V1_MAX_B64];
	sls_format_http_date(time(NULL), date);
	snprintf(raw, sizeof(raw), "%zu", r->rawlen);
	if (r->blen)
		sls_md5_hex_upper((struct str){r->body, r->blen}, md5);
	struct sls_kv h[8];
	size_t nh = 0;
	h[nh++] = (struct sls_kv){STR_LIT("date"), str_c(date)};
	h[nh++] = (struct sls_kv){STR_LIT("x-log-apiversion"), STR_LIT("0.6.0")};
	h[nh++] = (struct sls_kv){STR_LIT("x-log-signaturemethod"), STR_LIT("hmac-sha1")};
	if (r->blen) {
		h[nh++] = (struct sls_kv){STR_LIT("content-md5"), str_c(md5)};
		h[nh++] = (struct sls_kv){STR_LIT("content-type"), str_c(r->ctype)};
		h[nh++] = (struct sls_kv){STR_LIT("x-log-bodyrawsize"), str_c(raw)};
	}
	if (r->compress)
		h[nh++] = (struct sls_kv){STR_LIT("x-log-compresstype"), str_c(r->compress)};
	struct sls_sig_input in = {str_c(r->method), str_c(r->path), h, nh, r->q, r->nq};
	struct buf sts = {0};
	sls_v1_string_to_sign(&sts, &in, SLS_SIG_SORT_PAIRS);
	sls_v1_sign(SLS_SIG_HMAC_SHA1, str_c(o->secret), (struct str){sts.p, sts.len}, sig);
	buf_free(&sts);
	size_t n = (size_t)snprintf(out, cap, "%s %s", r->method, r->path);
	for (size_t i = 0; i < r->nq; i++) {
		char enc[2048], key[64];
		snprintf(key, sizeof(key), "%.*s", (int)r->q[i].k.len, r->q[i].k.p);
		char val[2048];
		snprintf(val, sizeof(val), "%.*s", (int)r->q[i].v.len, r->q[i].v.p);
		bench_pct(val, enc, sizeof(enc));
		n += (size_t)snprintf(out + n, cap - n, "%c%s=%s", i ? '&' : '?', key, enc);
	}
	n += (size_t)snprintf(out + n, cap - n, " HTTP/1.1\r\nHost: %s%s" B_DOMAIN "\r\n"
			      "Content-Length: %zu\r\nAuthorization: LOG %s:%s\r\n",
			      r->project ? r->project : "", r->project ? "." : "", r->blen, o->akid, sig);
	for (size_t i = 0; i < nh; i++)
		n += (size_t)snprintf(out + n, cap - n, "%.*s: %.*s\r\n", (int)h[i].k.len, h[i].k.p,
				      (int)h[i].v.len, h[i].v.p);
	n += (size_t)snprintf(out + n, cap - n, "\r\n");
	return n;
}

/* One signed request; 0 with the status and body, -1 on a connection failure. */
static int call(const struct opts *o, struct conn *c, const struct req *r, int *status,
		char **body, size_t *blen)
{
	char head[B_HEAD_MAX];
	size_t n = sign_head(o, r, head, sizeof(head));
	return http_do(c, head, n, r->body, r->blen, status, body, blen);
}

static void setup_logstore(const struct opts *o, struct conn *c)
{
	static const char proj[] = "{\"projectName\":\"" B_PROJECT "\",\"description\":\"bench\"}";
	static const char ls[] = "{\"logstoreName\":\"" B_LOGSTORE "\",\"ttl\":30,\"shardCount\":2}";
	struct req r1 = {.method = "POST", .path = "/", .ctype = "application/json", .body = proj,
			 .blen = sizeof(proj) - 1, .rawlen = sizeof(proj) - 1};
	struct req r2 = {.method = "POST", .project = B_PROJECT, .path = "/logstores",
			 .ctype = "application/json", .body = ls, .blen = sizeof(ls) - 1,
			 .rawlen = sizeof(ls) - 1};
	int st;
	char *b;
	size_t bl;
	if (call(o, c, &r1, &st, &b, &bl) != 0 || (st != 200 && !strstr(b, "AlreadyExist")))
		fprintf(stderr, "CreateProject: %d %s\n", st, b);
	if (call(o, c, &r2, &st, &b, &bl) != 0 || (st != 200 && !strstr(b, "AlreadyExist")))
		fprintf(stderr, "CreateLogStore: %d %s\n", st, b);
}

/* ---- one round's records: text, LogGroups, expected answers ---- */

struct rows {
	uint64_t first, n;
	char *text;       /* every record's 16 values, concatenated */
	uint64_t *off;    /* n: where record i's values start */
	uint8_t (*len)[GEN_FIELDS];
	uint32_t *time;
	struct gen_rec *rec; /* the integers, so the bare loop parses nothing */
};

struct expect {
	uint32_t t0, t_end;
	uint64_t *day, *hour; /* sum(bytes) per srcaddr rank */
	uint64_t hist[86400 / B_HIST_WIDTH];
	uint32_t src_of_rank[GEN_SRC_HOSTS];
	uint64_t text_bytes, records;
};

static void rows_make(const struct gen *g, uint64_t first, uint64_t n, struct rows *r,
		      struct expect *e)
{
	*r = (struct rows){first, n, malloc(n * 160), malloc(n * sizeof(uint64_t)),
			   malloc(n * sizeof(*r->len)), malloc(n * sizeof(uint32_t)),
			   malloc(n * sizeof(struct gen_rec))};
	uint64_t at = 0;
	for (uint64_t i = 0; i < n; i++) {
		struct gen_rec rec;
		char arena[GEN_TEXT_MAX];
		const char *v[GEN_FIELDS];
		size_t l[GEN_FIELDS];
		gen_record(g, first + i, &rec);
		gen_text(&rec, arena, v, l);
		r->off[i] = at;
		r->time[i] = rec.time;
		r->rec[i] = rec;
		for (int k = 0; k < GEN_FIELDS; k++) {
			memcpy(r->text + at, v[k], l[k]);
			r->len[i][k] = (uint8_t)l[k];
			at += l[k];
			e->text_bytes += strlen(gen_keys[k]) + l[k];
		}
		e->day[rec.src_rank] += rec.bytes;
		if (rec.time >= e->t_end - 3600)
			e->hour[rec.src_rank] += rec.bytes;
		e->hist[(rec.time - e->t0) / B_HIST_WIDTH]++;
		e->src_of_rank[rec.src_rank] = rec.src;
		e->records++;
	}
}

static void rows_free(struct rows *r)
{
	free(r->text);
	free(r->off);
	free(r->len);
	free(r->time);
	free(r->rec);
}

struct body {
	char *p;
	size_t len, raw;
};

static uint8_t *mut(const char *p)
{
	return (uint8_t *)(uintptr_t)p;
}

/* LogGroup g of the round: records [g*4096, ...) as lz4 protobuf. */
static struct body encode_group(const struct rows *r, uint64_t g, uint64_t seed)
{
	uint64_t from = g * B_GROUP, to = from + B_GROUP < r->n ? from + B_GROUP : r->n;
	size_t n = (size_t)(to - from);
	Sls__Log *logs = calloc(n, sizeof(*logs));
	Sls__Log **lp = calloc(n, sizeof(*lp));
	Sls__Log__Content *cs = calloc(n * GEN_FIELDS, sizeof(*cs));
	Sls__Log__Content **cp = calloc(n * GEN_FIELDS, sizeof(*cp));
	for (size_t i = 0; i < n; i++) {
		sls__log__init(&logs[i]);
		logs[i].time = r->time[from + i];
		logs[i].n_contents = GEN_FIELDS;
		logs[i].contents = cp + i * GEN_FIELDS;
		lp[i] = &logs[i];
		const char *t = r->text + r->off[from + i];
		for (int k = 0; k < GEN_FIELDS; k++) {
			Sls__Log__Content *c = &cs[i * GEN_FIELDS + (size_t)k];
			sls__log__content__init(c);
			c->key = (ProtobufCBinaryData){strlen(gen_keys[k]), mut(gen_keys[k])};
			c->value = (ProtobufCBinaryData){r->len[from + i][k], mut(t)};
			t += r->len[from + i][k];
			cp[i * GEN_FIELDS + (size_t)k] = c;
		}
	}
	char pack[48];
	snprintf(pack, sizeof(pack), "%016llX-%llX", (unsigned long long)seed,
		 (unsigned long long)(r->first / B_GROUP + g));
	Sls__LogTag tag = SLS__LOG_TAG__INIT, *tp = &tag;
	tag.key = (ProtobufCBinaryData){11, mut("__pack_id__")};
	tag.value = (ProtobufCBinaryData){strlen(pack), mut(pack)};
	Sls__LogGroup lg = SLS__LOG_GROUP__INIT;
	lg.n_logs = n;
	lg.logs = lp;
	lg.n_logtags = 1;
	lg.logtags = &tp;
	size_t raw = sls__log_group__get_packed_size(&lg);
	uint8_t *pb = malloc(raw);
	sls__log_group__pack(&lg, pb);
	struct body b = {malloc((size_t)LZ4_compressBound((int)raw)), 0, raw};
	b.len = (size_t)LZ4_compress_default((char *)pb, b.p, (int)raw, LZ4_compressBound((int)raw));
	free(pb);
	free(logs);
	free(lp);
	free(cs);
	free(cp);
	return b;
}

/* ---- PutLogs over N connections ---- */

struct put_run {
	const struct opts *o;
	struct body *bodies;
	size_t n;
	atomic_size_t next;
	atomic_uint_fast64_t errors;
};

static void *put_thread(void *arg)
{
	struct put_run *pr = arg;
	struct conn c;
	if (conn_open(&c, pr->o->port) != 0) {
		atomic_fetch_add(&pr->errors, 1);
		return NULL;
	}
	for (size_t i; (i = atomic_fetch_add(&pr->next, 1)) < pr->n;) {
		struct req r = {.method = "POST", .project = B_PROJECT,
				.path = "/logstores/" B_LOGSTORE "/shards/lb",
				.ctype = "application/x-protobuf", .compress = "lz4",
				.body = pr->bodies[i].p, .blen = pr->bodies[i].len,
				.rawlen = pr->bodies[i].raw};
		int st;
		char *b;
		size_t bl;
		if (call(pr->o, &c, &r, &st, &b, &bl) != 0 || st != 200) {
			if (atomic_fetch_add(&pr->errors, 1) < 5)
				fprintf(stderr, "PutLogs: %d %s\n", st, b ? b : "");
			if (c.fd >= 0 && st == 0) {
				conn_close(&c);
				if (conn_open(&c, pr->o->port) != 0)
					break;
			}
		}
	}
	conn_close(&c);
	return NULL;
}

static double put_round(const struct opts *o, struct body *bodies, size_t n, uint64_t *errors)
{
	struct put_run pr = {.o = o, .bodies = bodies, .n = n};
	pthread_t t[B_MAX_CONNS];
	int64_t t0 = bench_now_us();
	for (int i = 0; i < o->conns; i++)
		pthread_create(&t[i], NULL, put_thread, &pr);
	for (int i = 0; i < o->conns; i++)
		pthread_join(t[i], NULL);
	*errors = atomic_load(&pr.errors);
	return (double)(bench_now_us() - t0) / 1e6;
}

/* ---- the bare loop: the same rows into one typed SQLite table ---- */

static const char bare_schema[] =
	"PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
	"CREATE TABLE IF NOT EXISTS flows (time INTEGER, instance_id TEXT, snid TEXT, ali_uid TEXT,"
	" start INTEGER, \"end\" INTEGER, protocol INTEGER, srcaddr TEXT, srcport INTEGER,"
	" dstaddr TEXT, dstport INTEGER, packets INTEGER, bytes INTEGER, tcp_flags INTEGER,"
	" tos INTEGER, inport INTEGER, outport INTEGER)";

static void bind_row(sqlite3_stmt *st, const struct rows *r, uint64_t i)
{
	const char *t = r->text + r->off[i];
	const uint8_t *l = r->len[i];
	const struct gen_rec *x = &r->rec[i];
	const int64_t ints[] = {x->time, 0, 0, 0, x->start, x->end, x->proto, 0, x->sport, 0,
				x->dport, x->packets, (int64_t)x->bytes, x->flags, x->tos, x->inport,
				x->outport};
	static const int is_text[GEN_FIELDS] = {1, 1, 1, 0, 0, 0, 1, 0, 1};
	sqlite3_bind_int64(st, 1, ints[0]);
	for (int k = 0; k < GEN_FIELDS; t += l[k], k++)
		if (is_text[k])
			sqlite3_bind_text(st, k + 2, t, l[k], SQLITE_STATIC);
		else
			sqlite3_bind_int64(st, k + 2, ints[k + 1]);
}

static double bare_round(sqlite3 *db, const struct rows *r)
{
	sqlite3_stmt *st;
	sqlite3_prepare_v2(db, "INSERT INTO flows VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", -1,
			   &st, NULL);
	int64_t t0 = bench_now_us();
	for (uint64_t i = 0; i < r->n; i++) {
		if (i % B_GROUP == 0)
			sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
		bind_row(st, r, i);
		if (sqlite3_step(st) != SQLITE_DONE)
			fprintf(stderr, "bare insert: %s\n", sqlite3_errmsg(db));
		sqlite3_reset(st);
		if (i % B_GROUP == B_GROUP - 1 || i == r->n - 1)
			sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
	}
	sqlite3_finalize(st);
	return (double)(bench_now_us() - t0) / 1e6;
}

/* ---- queries ---- */

static int u64_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return (x > y) - (x < y);
}

static int i64_cmp(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

/* Does the top-N answer equal the sums computed from the records? */
static int check_top(const struct expect *e, const uint64_t *sums, json_t *rows, char *why,
		     size_t cap)
{
	uint64_t *sorted = malloc(GEN_SRC_HOSTS * sizeof(uint64_t));
	memcpy(sorted, sums, GEN_SRC_HOSTS * sizeof(uint64_t));
	qsort(sorted, GEN_SRC_HOSTS, sizeof(uint64_t), u64_cmp);
	int ok = json_is_array(rows) && json_array_size(rows) == B_TOPN;
	for (size_t i = 0; ok && i < B_TOPN; i++) {
		json_t *row = json_array_get(rows, i);
		const char *src = json_string_value(json_object_get(row, "srcaddr"));
		const char *b = json_string_value(json_object_get(row, "b"));
		unsigned a[4] = {0};
		uint64_t want = sorted[GEN_SRC_HOSTS - 1 - i], got = b ? strtoull(b, NULL, 10) : 0;
		ok = src && b && sscanf(src, "%u.%u.%u.%u", &a[0], &a[1], &a[2], &a[3]) == 4 && got == want;
		uint32_t ip = a[0] << 24 | a[1] << 16 | a[2] << 8 | a[3];
		size_t rank = 0;
		while (ok && rank < GEN_SRC_HOSTS && e->src_of_rank[rank] != ip)
			rank++;
		/* Equal sums may come in either order: the address must have that sum. */
		ok = ok && rank < GEN_SRC_HOSTS && sums[rank] == got;
		if (!ok)
			snprintf(why, cap, "row %zu: %s %s, expected sum %llu", i, src ? src : "?",
				 b ? b : "?", (unsigned long long)want);
	}
	free(sorted);
	return ok ? 0 : -1;
}

static int check_hist(const struct expect *e, json_t *arr, char *why, size_t cap)
{
	size_t nb = sizeof(e->hist) / sizeof(e->hist[0]);
	if (!json_is_array(arr) || json_array_size(arr) != nb) {
		snprintf(why, cap, "%zu buckets", json_array_size(arr));
		return -1;
	}
	for (size_t i = 0; i < nb; i++) {
		json_int_t c = json_integer_value(json_object_get(json_array_get(arr, i), "count"));
		if ((uint64_t)c != e->hist[i]) {
			snprintf(why, cap, "bucket %zu: %lld, expected %llu", i, (long long)c,
				 (unsigned long long)e->hist[i]);
			return -1;
		}
	}
	return 0;
}

enum qkind { Q_TOP_DAY, Q_TOP_HOUR, Q_HIST_DAY };
static const char *const qname[] = {"top10_day", "top10_last_hour", "histogram_day_96"};

static void run_query(const struct opts *o, struct conn *c, const struct expect *e, enum qkind k)
{
	static const char top[] =
		"* | select srcaddr, sum(bytes) as b group by srcaddr order by b desc limit 10";
	char from[16], to[16];
	snprintf(from, sizeof(from), "%u", k == Q_TOP_HOUR ? e->t_end - 3600 : e->t0);
	snprintf(to, sizeof(to), "%u", e->t_end);
	struct req r = {.method = "GET", .project = B_PROJECT, .path = "/logstores/" B_LOGSTORE};
	r.q[r.nq++] = (struct sls_kv){STR_LIT("type"), k == Q_HIST_DAY ? STR_LIT("histogram") : STR_LIT("log")};
	r.q[r.nq++] = (struct sls_kv){STR_LIT("from"), str_c(from)};
	r.q[r.nq++] = (struct sls_kv){STR_LIT("to"), str_c(to)};
	r.q[r.nq++] = (struct sls_kv){STR_LIT("query"), k == Q_HIST_DAY ? STR_LIT("*") : str_c(top)};
	int64_t lat[B_MAX_REPS];
	int reps = o->reps < B_MAX_REPS ? o->reps : B_MAX_REPS, bad = 0;
	char why[256] = "";
	for (int i = 0; i < reps; i++) {
		int st = 0;
		char *b = NULL;
		size_t bl;
		int64_t t0 = bench_now_us();
		int rc = call(o, c, &r, &st, &b, &bl);
		lat[i] = bench_now_us() - t0;
		json_t *j = rc == 0 && st == 200 ? json_loads(b, 0, NULL) : NULL;
		int ok = j && (k == Q_HIST_DAY ? check_hist(e, j, why, sizeof(why))
				      : check_top(e, k == Q_TOP_DAY ? e->day : e->hour, j, why, sizeof(why))) == 0;
		if (!j)
			snprintf(why, sizeof(why), "HTTP %d: %.200s", st, b ? b : "(no answer)");
		bad += !ok;
		json_decref(j);
	}
	qsort(lat, (size_t)reps, sizeof(lat[0]), i64_cmp);
	printf("{\"query\":\"%s\",\"reps\":%d,\"median_ms\":%.1f,\"max_ms\":%.1f,\"min_ms\":%.1f,"
	       "\"wrong\":%d%s%s%s}\n", qname[k], reps, lat[reps / 2] / 1e3, lat[reps - 1] / 1e3,
	       lat[0] / 1e3, bad, bad ? ",\"why\":\"" : "", bad ? why : "", bad ? "\"" : "");
	fflush(stdout);
}

/* ---- main ---- */

static void usage(void)
{
	fprintf(stderr, "usage: ls_bench --port P --akid ID --secret S --bare-dir DIR [--records N]\n"
			"  [--conns 4] [--rounds 3] [--reps 5] [--seed N] [--queries-only]\n");
	exit(2);
}

static void parse(int argc, char **argv, struct opts *o)
{
	static const struct option lo[] = {
		{"port", 1, 0, 'p'}, {"akid", 1, 0, 'a'}, {"secret", 1, 0, 's'},
		{"bare-dir", 1, 0, 'd'}, {"records", 1, 0, 'n'}, {"conns", 1, 0, 'c'},
		{"rounds", 1, 0, 'r'}, {"reps", 1, 0, 'q'}, {"seed", 1, 0, 'S'},
		{"queries-only", 0, 0, 'Q'}, {0, 0, 0, 0}};
	*o = (struct opts){.conns = 4, .rounds = 3, .reps = 5, .records = 10000000, .seed = 1};
	for (int ch; (ch = getopt_long(argc, argv, "", lo, NULL)) != -1;) {
		switch (ch) {
		case 'p': o->port = atoi(optarg); break;
		case 'a': o->akid = optarg; break;
		case 's': o->secret = optarg; break;
		case 'd': o->bare_dir = optarg; break;
		case 'n': o->records = strtoull(optarg, NULL, 10); break;
		case 'c': o->conns = atoi(optarg); break;
		case 'r': o->rounds = atoi(optarg); break;
		case 'q': o->reps = atoi(optarg); break;
		case 'S': o->seed = strtoull(optarg, NULL, 10); break;
		case 'Q': o->skip_ingest = 1; break;
		default: usage();
		}
	}
	if (!o->port || !o->akid || !o->secret || !o->bare_dir || o->conns < 1 ||
	    o->conns > B_MAX_CONNS || o->rounds < 1 || o->records < B_GROUP)
		usage();
}

static sqlite3 *bare_open(const char *dir)
{
	char path[4096];
	sqlite3 *db;
	snprintf(path, sizeof(path), "%s/bare.db", dir);
	if (sqlite3_open(path, &db) != SQLITE_OK || sqlite3_exec(db, bare_schema, NULL, NULL, NULL) != SQLITE_OK) {
		fprintf(stderr, "bare: %s\n", sqlite3_errmsg(db));
		exit(1);
	}
	return db;
}

/* One round: records [first, first + n) through PutLogs, then the bare loop. */
static void ingest_round(const struct opts *o, const struct gen *g, sqlite3 *bare, int round,
			 uint64_t first, uint64_t n, struct expect *e)
{
	struct rows r;
	rows_make(g, first, n, &r, e);
	if (o->skip_ingest) {
		rows_free(&r);
		return;
	}
	size_t ng = (size_t)((n + B_GROUP - 1) / B_GROUP);
	struct body *bodies = calloc(ng, sizeof(*bodies));
	size_t wire = 0;
	for (size_t i = 0; i < ng; i++) {
		bodies[i] = encode_group(&r, i, o->seed);
		wire += bodies[i].len;
	}
	uint64_t errors;
	double put_s = put_round(o, bodies, ng, &errors);
	double bare_s = bare_round(bare, &r);
	printf("{\"round\":%d,\"records\":%llu,\"groups\":%zu,\"lz4_bytes_per_record\":%.1f,"
	       "\"putlogs_s\":%.2f,\"putlogs_rps\":%.0f,\"put_errors\":%llu,\"bare_s\":%.2f,"
	       "\"bare_rps\":%.0f,\"ratio\":%.2f}\n", round, (unsigned long long)n, ng,
	       (double)wire / (double)n, put_s, (double)n / put_s, (unsigned long long)errors, bare_s,
	       (double)n / bare_s, bare_s / put_s);
	fflush(stdout);
	for (size_t i = 0; i < ng; i++)
		free(bodies[i].p);
	free(bodies);
	rows_free(&r);
}

int main(int argc, char **argv)
{
	struct opts o;
	parse(argc, argv, &o);
	/* The day ends on a 15-minute boundary at or before now, so GetHistograms
	 * of it has exactly 96 buckets and every record lies in the past. */
	uint32_t now = (uint32_t)time(NULL), t_end = now - now % B_HIST_WIDTH;
	if (getenv("LS_BENCH_T_END"))
		t_end = (uint32_t)strtoul(getenv("LS_BENCH_T_END"), NULL, 10);
	struct expect *e = calloc(1, sizeof(*e));
	*e = (struct expect){.t0 = t_end - 86400, .t_end = t_end,
			     .day = calloc(GEN_SRC_HOSTS, sizeof(uint64_t)),
			     .hour = calloc(GEN_SRC_HOSTS, sizeof(uint64_t))};
	struct gen g;
	gen_init(&g, o.seed, o.records, e->t0, 86400);
	struct conn c;
	if (conn_open(&c, o.port) != 0) {
		fprintf(stderr, "cannot connect to port %d\n", o.port);
		return 1;
	}
	setup_logstore(&o, &c);
	sqlite3 *bare = bare_open(o.bare_dir);
	/* Rounds cut at LogGroup boundaries, so every group is 4,096 records. */
	uint64_t groups = (o.records + B_GROUP - 1) / B_GROUP;
	for (int i = 0; i < o.rounds; i++) {
		uint64_t g0 = groups * (uint64_t)i / (uint64_t)o.rounds,
			 g1 = groups * (uint64_t)(i + 1) / (uint64_t)o.rounds;
		uint64_t first = g0 * B_GROUP, last = g1 * B_GROUP < o.records ? g1 * B_GROUP : o.records;
		ingest_round(&o, &g, bare, i + 1, first, last - first, e);
	}
	sqlite3_close(bare);
	printf("{\"records\":%llu,\"t0\":%u,\"t_end\":%u,\"text_bytes_per_record\":%.1f}\n",
	       (unsigned long long)e->records, e->t0, e->t_end,
	       (double)e->text_bytes / (double)e->records);
	/* The connection may have idled out during the ingest. */
	conn_close(&c);
	conn_open(&c, o.port);
	for (int k = Q_TOP_DAY; k <= Q_HIST_DAY; k++)
		run_query(&o, &c, e, (enum qkind)k);
	conn_close(&c);
	gen_free(&g);
	free(e->day);
	free(e->hour);
	free(e);
	return 0;
}
