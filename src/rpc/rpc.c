#include "rpc/rpc.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>

#include "api/region.h"
#include "core/ids.h"
#include "core/log.h"
#include "core/ratelimit.h"
#include "core/timeutil.h"
#include "core/xmalloc.h"
#include "metrics/metrics.h"
#include "rpc/cache.h"
#include "store/nonce.h"
#include "rpc/params.h"
#include "rpc/render.h"
#include "rpc/sig.h"
#include "store/store.h"

#define RPC_HOST_ID_MAX 96
#define RPC_LOG_FIELD 64 /* bytes of Action / AccessKeyId in the access log */

struct rpc_server {
	struct store *store;
	const struct api_config *cfg;
	struct ratelimit *keys; /* per-AccessKey budgets, or NULL (not ours) */
	struct rcache *answers; /* rendered answers of cacheable actions, rpc/cache.h */
};

/* Per-request state; fin must stay first (api_call.priv points at it). */
struct rpc_req {
	struct api_finisher fin;
	struct api_call call;
	struct rpc_server *srv;
	struct http_request *r;
	struct params *params;
	enum render_format fmt;
	struct str action;
	const struct api_action *act;
	unsigned act_index; /* act's number in api_action_at(), for the metrics */
	char request_id[IDS_UUID_LEN + 1];
	char log_action[RPC_LOG_FIELD];
	char log_akid[RPC_LOG_FIELD];
	struct buf cache_key;    /* empty unless the action's answer may be cached */
	uint64_t cache_version;  /* the caller's account's data version from store_admit, before the read */
	int64_t account;         /* the caller's, once authenticated */
	enum store_admit_result admitted; /* the admission's verdict (admitted()) */
};

/* What authentication needs, from V1 parameters or V3 headers. */
struct rpc_auth {
	bool v3;
	struct sig_v3_auth v3a;
	struct str version, action, akid, timestamp, nonce;
	int64_t ts;
};

struct rpc_server *rpc_new(struct store *store, const struct api_config *cfg,
			   unsigned nonce_entries, bool answer_cache, struct ratelimit *keys)
{
	struct rpc_server *s = xcalloc(1, sizeof(*s));
	s->store = store;
	s->keys = keys;
	s->cfg = cfg;
	/* Each key's partition holds what its budget lets it send while a nonce
	 * lives, so a key within its budget never finds its partition full. */
	struct ratelimit_rate b = keys ? ratelimit_rate_of(keys) : (struct ratelimit_rate){0, 0};
	store_admit_limits(store, nonce_entries, keys ? nonce_per_key(b.rate, b.burst) : 0);
	s->answers = answer_cache ? rcache_new() : NULL;
	return s;
}

void rpc_free(struct rpc_server *s)
{
	if (!s)
		return;
	rcache_free(s->answers);
	free(s);
}

uint64_t rpc_replay_entries(struct rpc_server *s, uint64_t *capacity)
{
	return store_admit_live(s->store, time_now_ms() / 1000, capacity);
}

static void host_id(const struct params *p, char out[RPC_HOST_ID_MAX])
{
	struct str region = params_get(p, "RegionId");
	if (region.p && region_valid(region))
		snprintf(out, RPC_HOST_ID_MAX, "smartag.%.*s.aliyuncs.com", (int)region.len, region.p);
	else
		snprintf(out, RPC_HOST_ID_MAX, "%s", RENDER_DEFAULT_HOST_ID);
}

/* ---- metrics (docs/metrics.md); the families stay NULL unless enabled ---- */

#define RPC_METRICS_MAX_ACTIONS 64
#define RPC_METRICS_UNKNOWN "unknown" /* the action label of requests naming no known action */

static struct metrics_family *rpc_m_requests, *rpc_m_duration, *rpc_m_hits, *rpc_m_misses;
static struct metrics_family *rpc_m_throttled;
static const char *const rpc_m_throttled_kinds[] = {
#define RPC_THR_LABEL(name, label) label,
	RPC_THROTTLED_MAP(RPC_THR_LABEL)
#undef RPC_THR_LABEL
};

void rpc_count_throttled(enum rpc_throttled kind)
{
	metrics_count(rpc_m_throttled, (unsigned)kind, 0, 1);
}

static const char *rpc_m_actions[RPC_METRICS_MAX_ACTIONS + 1];
static unsigned rpc_m_nactions;
static const char *rpc_m_codes[ERR__COUNT];
static unsigned rpc_m_code_of[ERR__COUNT]; /* enum err -> index of its API code */

/* Microseconds, as the request clock counts them. */
static const uint64_t rpc_m_duration_us[] = {100,    250,    500,     1000,    2500,   5000,
					     10000,  25000,  50000,   100000,  250000, 500000,
					     1000000, 2500000, 5000000, 10000000};

/* One label value per API code: two errors may share a code (InvalidParameter). */
static unsigned rpc_m_code_tables(void)
{
	unsigned n = 0;
	for (unsigned e = 0; e < ERR__COUNT; e++) {
		const char *code = e == ERR_OK ? "OK" : err_info((enum err)e)->code;
		unsigned i = 0;
		while (i < n && strcmp(rpc_m_codes[i], code) != 0)
			i++;
		if (i == n)
			rpc_m_codes[n++] = code;
		rpc_m_code_of[e] = i;
	}
	return n;
}

void rpc_metrics_enable(void)
{
	while (rpc_m_nactions < RPC_METRICS_MAX_ACTIONS && api_action_at(rpc_m_nactions)) {
		rpc_m_actions[rpc_m_nactions] = api_action_at(rpc_m_nactions)->name;
		rpc_m_nactions++;
	}
	rpc_m_actions[rpc_m_nactions] = RPC_METRICS_UNKNOWN;
	struct metrics_label action = {"action", rpc_m_actions, rpc_m_nactions + 1};
	struct metrics_label code = {"code", rpc_m_codes, rpc_m_code_tables()};
	rpc_m_requests = metrics_add(&(struct metrics_def){
	    .name = "sagflow_requests_total",
	    .help = "RPC requests answered, by action and API code (OK for success).",
	    .type = METRICS_COUNTER, .label = {action, code}});
	rpc_m_duration = metrics_add(&(struct metrics_def){
	    .name = "sagflow_request_duration_seconds",
	    .help = "Time from a request's arrival to its answer, by action.",
	    .type = METRICS_HISTOGRAM, .label = {action}, .bounds = rpc_m_duration_us,
	    .nbounds = sizeof(rpc_m_duration_us) / sizeof(rpc_m_duration_us[0]), .scale = 1e-6});
	rpc_m_throttled = metrics_add(&(struct metrics_def){
	    .name = "sagflow_throttled_total",
	    .help = "Requests refused by a per-caller budget or a bound, by kind.",
	    .type = METRICS_COUNTER,
	    .label = {{"kind", rpc_m_throttled_kinds, RPC_THROTTLED__COUNT}}});
	rpc_m_hits = metrics_add(&(struct metrics_def){
	    .name = "sagflow_answer_cache_hits_total",
	    .help = "Cacheable requests answered from the cache of rendered answers.",
	    .type = METRICS_COUNTER});
	rpc_m_misses = metrics_add(&(struct metrics_def){
	    .name = "sagflow_answer_cache_misses_total",
	    .help = "Cacheable requests answered from the store (not cached, or stale).",
	    .type = METRICS_COUNTER});
}

static void count_request(const struct rpc_req *q, enum err e, long long us)
{
	if (!rpc_m_requests)
		return;
	unsigned a = q->act ? q->act_index : rpc_m_nactions;
	metrics_count(rpc_m_requests, a, rpc_m_code_of[e], 1);
	metrics_observe(rpc_m_duration, a, 0, (uint64_t)us);
}

/* The end of every answered request: counted, then one access-log line. */
static void access_log(const struct rpc_req *q, enum err e, int status)
{
	/* Milliseconds with microseconds, as integers: %.2f was the costliest
	 * conversion of the line. */
	long long us = (long long)(time_mono_us() - q->r->start_us);
	if (us < 0)
		us = 0;
	count_request(q, e, us);
	log_info("rpc id=%s remote=%s action=%s akid=%s code=%s status=%d ms=%lld.%03lld",
		 q->request_id, q->r->remote, q->log_action[0] ? q->log_action : "-",
		 q->log_akid[0] ? q->log_akid : "-", e == ERR_OK ? "OK" : err_info(e)->code, status,
		 us / 1000, us % 1000);
}

static void rpc_req_free(struct rpc_req *q)
{
	json_decref(q->call.out);
	params_free(q->params);
	buf_free(&q->cache_key);
	free(q);
}

/* Renders the outcome, answers, logs and frees: the end of every request. */
static void finish(struct rpc_req *q, enum err e, const char *detail)
{
	struct render_out out;
	int status = 200;
	if (e == ERR_OK) {
		render_success(q->call.out, q->request_id, q->action, q->fmt, &out);
	} else {
		char hid[RPC_HOST_ID_MAX];
		host_id(q->params, hid);
		status = err_info(e)->http;
		render_error(e, detail, q->request_id, hid, q->fmt, &out);
	}
	if (e == ERR_OK && q->cache_key.len) {
		const char *rid = memmem(out.body, out.len, q->request_id, IDS_UUID_LEN);
		if (rid)
			rcache_put(q->srv->answers, q->cache_key.p, q->cache_key.len, q->cache_version,
				   out.body, out.len, (size_t)(rid - out.body), out.content_type);
	}
	access_log(q, e, status);
	http_respond_owned(q->r, status, out.content_type, out.body, out.len);
	rpc_req_free(q);
}

/* The parameters that vary per request whatever it asks: they are not part of
 * what the answer depends on. */
static bool cache_ignored(struct str name)
{
	static const char *const ignored[] = {"AccessKeyId", "Signature", "SignatureMethod",
					      "SignatureVersion", "SignatureNonce", "SignatureType",
					      "Timestamp", "Version", "Action", "Format",
					      "SecurityToken", NULL};
	for (size_t i = 0; ignored[i]; i++)
		if (str_eqc(name, ignored[i]))
			return true;
	return false;
}

static int cache_param_cmp(const void *a, const void *b)
{
	const struct param *x = *(const struct param *const *)a, *y = *(const struct param *const *)b;
	size_t n = x->name.len < y->name.len ? x->name.len : y->name.len;
	int c = memcmp(x->name.p, y->name.p, n);
	return c ? c : (x->name.len > y->name.len) - (x->name.len < y->name.len);
}

/* The key of a cacheable request: account, action, format and the API
 * parameters sorted by name, every field length-prefixed (no ambiguity). */
static void cache_key(struct rpc_req *q, int64_t account, struct buf *k)
{
	const struct param *v[PARAMS_MAX_COUNT];
	size_t n = 0;
	for (size_t i = 0; i < params_count(q->params) && n < PARAMS_MAX_COUNT; i++) {
		const struct param *p = params_at(q->params, i);
		if (!cache_ignored(p->name))
			v[n++] = p;
	}
	qsort(v, n, sizeof(v[0]), cache_param_cmp);
	buf_add_u64(k, (uint64_t)account);
	buf_addc(k, '|');
	buf_add_u64(k, (uint64_t)q->fmt);
	buf_addc(k, '|');
	buf_add_u64(k, q->action.len);
	buf_addc(k, ':');
	buf_add(k, q->action.p, q->action.len);
	for (size_t i = 0; i < n && k->len <= RCACHE_MAX_KEY; i++) {
		buf_addc(k, '|');
		buf_add_u64(k, v[i]->name.len);
		buf_addc(k, ':');
		buf_add(k, v[i]->name.p, v[i]->name.len);
		buf_addc(k, '=');
		buf_add_u64(k, v[i]->value.len);
		buf_addc(k, ':');
		buf_add(k, v[i]->value.p, v[i]->value.len);
	}
}

/* Before the admission: the key of a cacheable request (none when too long). */
static void cache_prepare(struct rpc_req *q)
{
	cache_key(q, q->account, &q->cache_key);
	if (q->cache_key.len > RCACHE_MAX_KEY)
		buf_free(&q->cache_key);
}

/* Answers from the cache when it holds this request's answer at the admitted
 * data version; otherwise finish() stores it under the key and version. On
 * the request's own thread (admitted_run). */
static bool cache_answer(struct rpc_req *q)
{
	struct rcache_hit h;
	if (!q->cache_key.len ||
	    !rcache_get(q->srv->answers, q->cache_key.p, q->cache_key.len, q->cache_version, &h)) {
		metrics_count(rpc_m_misses, 0, 0, 1);
		return false;
	}
	metrics_count(rpc_m_hits, 0, 0, 1);
	if (h.rid_off + IDS_UUID_LEN <= h.len)
		memcpy(h.body + h.rid_off, q->request_id, IDS_UUID_LEN);
	access_log(q, ERR_OK, 200);
	http_respond_owned(q->r, 200, h.content_type, h.body, h.len);
	rpc_req_free(q);
	return true;
}

static void call_done(struct api_call *c)
{
	struct rpc_req *q = (struct rpc_req *)c->priv;
	finish(q, c->err, c->err_detail[0] ? c->err_detail : NULL);
}

static struct rpc_req *rpc_req_new(struct rpc_server *s, struct http_request *r)
{
	struct rpc_req *q = xcalloc(1, sizeof(*q));
	q->fin.done = call_done;
	q->srv = s;
	q->r = r;
	q->params = params_new();
	ids_uuid_upper(q->request_id);
	return q;
}

static bool is_form(struct http_request *r)
{
	struct str ct = http_header(r, "content-type");
	static const char form[] = "application/x-www-form-urlencoded";
	size_t n = sizeof(form) - 1;
	if (ct.len < n || !str_caseeq((struct str){ct.p, n}, form))
		return false;
	return ct.len == n || ct.p[n] == ';' || ct.p[n] == ' ';
}

static enum err parse_request(struct rpc_req *q, char *detail)
{
	struct http_request *r = q->r;
	enum err e = params_parse(q->params, r->query, PARAMS_QUERY, detail);
	if (e == ERR_OK && r->body.len && is_form(r))
		e = params_parse(q->params, r->body, PARAMS_BODY, detail);
	q->fmt = render_format_of(params_get(q->params, "Format"));
	return e;
}

static struct str v3_header(void *arg, const char *name)
{
	return http_header(arg, name);
}

/* Variant detection (spec §5.4): ACS3- Authorization → V3, Signature → V1. */
static enum err detect_variant(struct rpc_req *q, struct rpc_auth *a)
{
	struct str authz = http_header(q->r, "authorization");
	memset(a, 0, sizeof(*a));
	if (authz.len >= 5 && memcmp(authz.p, "ACS3-", 5) == 0) {
		a->v3 = true;
		if (sig_v3_parse_auth(authz, &a->v3a) < 0 || !sig_v3_required_signed(&a->v3a))
			return ERR_INCOMPLETE_SIGNATURE;
		a->version = http_header(q->r, "x-acs-version");
		a->action = http_header(q->r, "x-acs-action");
		a->akid = a->v3a.credential;
		a->timestamp = http_header(q->r, "x-acs-date");
		a->nonce = http_header(q->r, "x-acs-signature-nonce");
		return ERR_OK;
	}
	if (!params_has(q->params, "Signature"))
		return ERR_INCOMPLETE_SIGNATURE;
	a->version = params_get(q->params, "Version");
	a->action = params_get(q->params, "Action");
	a->akid = params_get(q->params, "AccessKeyId");
	a->timestamp = params_get(q->params, "Timestamp");
	a->nonce = params_get(q->params, "SignatureNonce");
	return ERR_OK;
}

static enum err check_version_action(struct rpc_req *q, const struct rpc_auth *a, const char **detail)
{
	if (!a->version.p) {
		*detail = "Version";
		return ERR_MISSING_PARAMETER;
	}
	if (!str_eqc(a->version, RPC_API_VERSION))
		return ERR_INVALID_VERSION;
	if (!a->action.p || a->action.len == 0) {
		*detail = "Action";
		return ERR_MISSING_PARAMETER;
	}
	params_printable(a->action, q->log_action, sizeof(q->log_action));
	q->act = a->action.len <= RPC_MAX_ACTION ? api_action_find(a->action, &q->act_index) : NULL;
	if (!q->act)
		return ERR_INVALID_ACTION_NOT_FOUND;
	q->action = str_c(q->act->name);
	return ERR_OK;
}

struct key_lookup {
	char akid[STORE_MAX_KEY_FIELD + 1];
	struct store_key key;
};

static enum err lookup_key(struct rpc_req *q, const struct rpc_auth *a, struct key_lookup *k,
			   const char **detail)
{
	if (!a->akid.p || a->akid.len == 0) {
		*detail = "AccessKeyId";
		return ERR_MISSING_PARAMETER;
	}
	params_printable(a->akid, q->log_akid, sizeof(q->log_akid));
	if (a->akid.len > STORE_MAX_KEY_FIELD)
		return ERR_INVALID_ACCESS_KEY_ID_NOT_FOUND;
	memcpy(k->akid, a->akid.p, a->akid.len);
	k->akid[a->akid.len] = '\0';
	int rc = store_key_find(q->srv->store, k->akid, &k->key);
	if (rc == 1)
		return ERR_INVALID_ACCESS_KEY_ID_NOT_FOUND;
	if (rc == STORE_EUNAVAIL) /* the database is unreachable: nothing was done */
		return ERR_SERVICE_UNAVAILABLE;
	if (rc != 0) {
		log_err("rpc id=%s: key lookup failed (%d)", q->request_id, rc);
		return ERR_INTERNAL_ERROR;
	}
	return ERR_OK;
}

static enum err check_timestamp(struct rpc_auth *a, int64_t now)
{
	if (!a->timestamp.p || time_parse_iso8601(a->timestamp, &a->ts) != 0)
		return ERR_ILLEGAL_TIMESTAMP;
	if (a->ts > now + RPC_TIME_WINDOW_S || a->ts < now - RPC_TIME_WINDOW_S)
		return ERR_INVALID_TIMESTAMP_EXPIRED;
	return ERR_OK;
}

static enum err check_v1_common(const struct params *p, const struct rpc_auth *a, const char **detail)
{
	static const struct {
		const char *name, *want;
	} fixed[] = {{"SignatureMethod", "HMAC-SHA1"}, {"SignatureVersion", "1.0"}};
	for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
		struct str v = params_get(p, fixed[i].name);
		*detail = fixed[i].name;
		if (!v.p)
			return ERR_MISSING_PARAMETER;
		if (!str_eqc(v, fixed[i].want))
			return ERR_INVALID_PARAMETER;
	}
	*detail = "SignatureNonce";
	if (!a->nonce.p || a->nonce.len == 0)
		return ERR_MISSING_PARAMETER;
	*detail = NULL;
	return ERR_OK;
}

static enum err verify_v3(struct rpc_req *q, const struct rpc_auth *a, struct str secret)
{
	char body_sha[SIG_V3_HEX_LEN + 1];
	struct str claimed = http_header(q->r, "x-acs-content-sha256");
	sig_sha256_hex(q->r->body, body_sha);
	if (claimed.len != SIG_V3_HEX_LEN || CRYPTO_memcmp(claimed.p, body_sha, SIG_V3_HEX_LEN) != 0)
		return ERR_SIGNATURE_DOES_NOT_MATCH;
	struct buf cr = {0};
	enum err e = ERR_OK;
	if (sig_v3_canonical_request(&cr, q->r->method, q->params, &a->v3a, v3_header, q->r,
				     (struct str){body_sha, SIG_V3_HEX_LEN}) < 0)
		e = ERR_INCOMPLETE_SIGNATURE;
	else if (!sig_v3_verify(&a->v3a, (struct str){cr.p, cr.len}, secret))
		e = ERR_SIGNATURE_DOES_NOT_MATCH;
	buf_free(&cr);
	return e;
}

/* Whether this request's answer may come from (and go to) the answer cache: then
 * store_admit reads the label too. */
static bool wants_label(const struct rpc_req *q)
{
	return q->act && q->act->cacheable && q->srv->answers;
}

/* The nonce's shape; the admission itself comes after authenticate(). */
static enum err check_nonce(const struct rpc_auth *a, int64_t now, int64_t account,
			    struct store_admission *ad, const char **detail)
{
	*detail = "SignatureNonce";
	if (!a->nonce.p || a->nonce.len == 0)
		return ERR_MISSING_PARAMETER;
	if (a->nonce.len > NONCE_MAX_LEN)
		return ERR_INVALID_PARAMETER;
	*detail = NULL;
	/* Remember it for as long as its timestamp stays acceptable. */
	*ad = (struct store_admission){.who = a->akid, .nonce = a->nonce, .ts_s = a->ts,
				       .now_s = now, .expires_s = a->ts + RPC_TIME_WINDOW_S + 1,
				       .account = account};
	return ERR_OK;
}

static enum err admit_err(enum store_admit_result r)
{
	switch (r) {
	case STORE_ADMIT_FRESH: return ERR_OK;
	case STORE_ADMIT_USED: return ERR_SIGNATURE_NONCE_USED;
	/* Not InvalidTimeStamp.Expired (spec §7.7): most such requests were signed
	 * during the outage by honest clients, whom a retryable 503 serves; a
	 * replay is refused either way (docs/store.md "After a crash"). */
	case STORE_ADMIT_EARLY: return ERR_SERVICE_UNAVAILABLE_RESIGN;
	case STORE_ADMIT_UNAVAIL: return ERR_SERVICE_UNAVAILABLE;
	default: rpc_count_throttled(RPC_THROTTLED_REPLAY_FULL); return ERR_THROTTLING;
	}
}

static enum err check_budget(struct rpc_req *q, const struct rpc_auth *a)
{
	if (!q->srv->keys)
		return ERR_OK;
	switch (ratelimit_take(q->srv->keys, a->akid, time_mono_us())) {
	case RATELIMIT_OK: return ERR_OK;
	case RATELIMIT_THROTTLED: rpc_count_throttled(RPC_THROTTLED_KEY); return ERR_THROTTLING_USER;
	default: rpc_count_throttled(RPC_THROTTLED_KEYS_FULL); return ERR_THROTTLING;
	}
}

/* Everything between the parsed request and its admission; fills *k and *ad. */
static enum err authenticate(struct rpc_req *q, struct key_lookup *k, struct store_admission *ad,
			     const char **detail)
{
	struct rpc_auth a;
	int64_t now = time_now_ms() / 1000;
	enum err e = detect_variant(q, &a);
	if (e == ERR_OK)
		e = check_version_action(q, &a, detail);
	if (e == ERR_OK)
		e = lookup_key(q, &a, k, detail);
	if (e == ERR_OK)
		e = check_timestamp(&a, now);
	if (e == ERR_OK && !a.v3)
		e = check_v1_common(q->params, &a, detail);
	if (e != ERR_OK)
		return e;
	struct str secret = str_c(k->key.secret);
	if (a.v3)
		e = verify_v3(q, &a, secret);
	else if (!sig_v1_verify(q->r->method, q->params, secret))
		e = ERR_SIGNATURE_DOES_NOT_MATCH;
	/* The budget after the signature (a forged request spends nobody's), before
	 * the nonce is remembered and before any store work. */
	if (e == ERR_OK)
		e = check_budget(q, &a);
	if (e == ERR_OK)
		e = check_nonce(&a, now, k->key.account_id, ad, detail);
	return e;
}

/* The rest of an admitted request, on its own HTTP thread: the verdict's
 * error, a cache hit, or the handler (a cache miss, a read, a write job's
 * submission). */
static void admitted_run(void *arg)
{
	struct rpc_req *q = arg;
	enum err e = admit_err(q->admitted);
	if (e != ERR_OK) {
		finish(q, e, NULL);
		return;
	}
	if (wants_label(q) && cache_answer(q))
		return;
	struct rpc_server *s = q->srv;
	q->call = (struct api_call){.params = q->params, .account_id = q->account, .store = s->store,
				    .fmt = q->fmt,
				    .cfg = s->cfg, .out = json_object(), .err = ERR_OK,
				    .priv = &q->fin};
	q->act->handler(&q->call); /* it calls api_finish(), now or later */
}

/* The admission's answer: on the request's thread (SQLite), or on the
 * store's admission thread (PostgreSQL), which hands everything, cache hits
 * too, back to the request's thread. Why hits too: a hit answered on the
 * admission thread freed the request the HTTP thread had allocated and
 * allocated the answer the HTTP thread frees, and shared the cache's, the
 * access log's and libmicrohttpd's locks with it; serve's user time per
 * cached read was twice SQLite's at the same instruction count
 * (docs/benchmarks.md, PostgreSQL, session 7). The hop itself is free: the
 * worker is woken once per batch and sends the answer anyway. */
static void admitted(void *arg, enum store_admit_result r, uint64_t version)
{
	struct rpc_req *q = arg;
	q->admitted = r;
	q->cache_version = version;
	http_defer(q->r, admitted_run, q);
}

void rpc_handle(struct http_request *r)
{
	struct rpc_server *s = r->route_arg;
	struct rpc_req *q = rpc_req_new(s, r);
	char pdetail[PARAMS_DETAIL_MAX];
	const char *detail = NULL;
	struct key_lookup *k = xcalloc(1, sizeof(*k));
	struct store_admission ad;
	enum err e = parse_request(q, pdetail);
	if (e != ERR_OK)
		detail = pdetail;
	else if (!str_eqc(r->method, "GET") && !str_eqc(r->method, "POST"))
		e = ERR_UNSUPPORTED_HTTP_METHOD;
	else
		e = authenticate(q, k, &ad, &detail);
	q->account = k->key.account_id;
	OPENSSL_cleanse(k, sizeof(*k));
	free(k);
	if (e != ERR_OK) {
		finish(q, e, detail);
		return;
	}
	bool label = wants_label(q);
	if (label)
		cache_prepare(q);
	/* q may be answered and freed before this returns: nothing after it. */
	store_admit_async(s->store, &ad, label, admitted, q);
}

void rpc_http_error(struct http_request *r, int status, const char *why)
{
	struct rpc_req *q = rpc_req_new(NULL, r);
	char d[PARAMS_DETAIL_MAX];
	enum err e = ERR_INVALID_ACTION_NOT_FOUND;
	const char *detail = NULL;
	params_parse(q->params, r->query, PARAMS_QUERY, d); /* only for Format and RegionId */
	q->fmt = render_format_of(params_get(q->params, "Format"));
	if (status == 413 || status == 414) {
		e = ERR_REQUEST_TOO_LARGE;
		detail = why;
	} else if (status == 405) {
		e = ERR_UNSUPPORTED_HTTP_METHOD;
	} else if (status == 503) {
		e = ERR_SERVICE_UNAVAILABLE;
	}
	finish(q, e, detail);
}

void rpc_healthz(struct http_request *r)
{
	/* Not ready while the database cannot be reached (PostgreSQL away): a
	 * load balancer then sends requests to another node. */
	const struct rpc_server *s = r->route_arg;
	if (s && !store_ready(s->store)) {
		http_respond(r, 503, "text/plain;charset=utf-8", STR_LIT("database unreachable\n"));
		return;
	}
	http_respond(r, 200, "text/plain;charset=utf-8", STR_LIT("ok\n"));
}
