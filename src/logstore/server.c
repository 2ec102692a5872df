#include "logstore/server.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <lz4.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/ids.h"
#include "core/log.h"
#include "core/num.h"
#include "core/timeutil.h"
#include "core/xmalloc.h"
#include "logstore/ldata.h"
#include "logstore/meta.h"
#include "logstore/query.h"
#include "domain/domain.h"
#include "rpc/params.h"
#include "sls/body.h"
#include "sls/errors.h"
#include "sls/sig.h"
#include "store/store_sag.h"

#define LS_REQUEST_ID_BYTES 12 /* 24 hex digits, like SLS's ids */
#define LS_HEADER_ARENA 16384  /* bytes of lowercased header names */
#define LS_DETAIL_MAX 256
#define LS_MAX_HEADERS 12
#define LS_PACK_ID_TAG "__pack_id__"

struct logstore_server {
	struct store *store;
	struct ldata *data;
	/* A node that holds no log store (--log-store-at): where it is; every
	 * Log Service request is answered SLS_ERR_NOT_HELD naming it. */
	char elsewhere[LOGSTORE_MAX_URL + 1];
	char domain[LOGSTORE_MAX_DOMAIN + 1];
	struct http_vhost vhost;
	/* The retention sweep (at start, every LOGSTORE_SWEEP_INTERVAL_S, and
	 * after an UpdateLogStore), on a thread of its own. */
	pthread_t sweeper;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool stop, kick;
};

/* Who a request signed with a device credential comes from, and the flow log
 * that says where it may write (docs/device-protocol.md §8). */
struct ls_device {
	char sag_id[DOMAIN_ID_MAX + 1];
	char serial[DOMAIN_SN_MAX + 1];
	char account[24]; /* ali-uid: the account id in decimal */
	int64_t account_id;
	bool has_flowlog;
	struct flowlog fl;
};

enum ls_path { LS_ROOT, LS_LOGSTORES, LS_LOGSTORE, LS_SHARD_LB, LS_SHARD_ROUTE, LS_LOGS, LS_INDEX,
	       LS_PATH_NONE };

/* Per request; lives until the answer is sent. */
struct lreq {
	struct logstore_server *srv;
	struct http_request *r;
	char request_id[2 * LS_REQUEST_ID_BYTES + 1];
	char project_name[META_NAME_MAX + 1];
	bool has_project;
	struct str logstore_name;
	enum ls_path path;
	struct params *params;
	struct sls_kv headers[SLS_SIG_MAX_HEADERS];
	size_t nheaders;
	struct sls_kv query[SLS_SIG_MAX_QUERY];
	size_t nquery;
	char hname[LS_HEADER_ARENA];
	size_t hname_len;
	int64_t account;
	struct meta_project project;
	struct meta_logstore logstore;
	char *body_owned;
	struct sls_logs *logs; /* a PutLogs body, decoded Log by Log into put's blocks */
	struct ldata_put put;
	int64_t drop_ids[META_LIST_MAX];
	size_t ndrop;
	json_t *out;    /* a JSON answer being built by a read */
	int64_t total;
	const char *name_arg; /* Create*: the validated name */
	char name_buf[META_NAME_MAX + 1];
	char desc_buf[META_MAX_DESCRIPTION + 1];
	int64_t ttl, shards;
	bool device_cred;      /* the AccessKeyId had the device prefix */
	struct ls_device *dev; /* set once a device credential verified */
	char detail[LS_DETAIL_MAX];
};

static void lreq_free(struct lreq *q)
{
	params_free(q->params);
	ldata_encoded_free(&q->put); /* blocks of a put that never reached the writer */
	sls_logs_free(q->logs);
	free(q->body_owned);
	json_decref(q->out);
	free(q->dev);
	free(q);
}

static void access_log(const struct lreq *q, int status, const char *code)
{
	long long us = (long long)(time_mono_us() - q->r->start_us);
	log_info("sls id=%s remote=%s %.*s %.*s project=%s code=%s status=%d ms=%lld.%03lld",
		 q->request_id, q->r->remote, (int)q->r->method.len, q->r->method.p,
		 (int)(q->r->path.len < 128 ? q->r->path.len : 128), q->r->path.p,
		 q->has_project ? q->project_name : "-", code, status, us / 1000, us % 1000);
}

static void respond(struct lreq *q, int status, const char *ctype, char *body, size_t len,
		    const struct http_hdr *extra, size_t nextra)
{
	struct http_hdr h[LS_MAX_HEADERS + 1] = {{"x-log-requestid", q->request_id}};
	size_t n = 1;
	for (size_t i = 0; i < nextra && n < LS_MAX_HEADERS + 1; i++)
		h[n++] = extra[i];
	http_respond_hdrs(q->r, status, ctype, body, len, h, n);
}

static void fail(struct lreq *q, enum sls_err e, const char *detail)
{
	size_t len;
	char *body = sls_err_body(e, detail, &len);
	const struct sls_err_info *ei = sls_err_info(e);
	access_log(q, ei->http, ei->code);
	respond(q, ei->http, "application/json", body, len, NULL, 0);
	lreq_free(q);
}

static void ok_empty(struct lreq *q)
{
	access_log(q, 200, "OK");
	respond(q, 200, NULL, NULL, 0, NULL, 0);
	lreq_free(q);
}

static void ok_json(struct lreq *q, json_t *j)
{
	char *s = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	if (!s) {
		fail(q, SLS_ERR_INTERNAL_SERVER_ERROR, NULL);
		return;
	}
	access_log(q, 200, "OK");
	respond(q, 200, "application/json", s, strlen(s), NULL, 0);
	lreq_free(q);
}

/* ---- addressing ---- */

/* "<label>.<IPv4>": the project and a dotted-quad address, as a client whose
 * endpoint is an IP address makes it (the old Go SDK's proxy mode). */
static bool host_project_ipv4(struct str host, struct str *project)
{
	const char *dot = host.len ? memchr(host.p, '.', host.len) : NULL;
	char ip[INET_ADDRSTRLEN];
	struct in_addr a;
	if (!dot || dot == host.p)
		return false;
	size_t n = host.len - (size_t)(dot + 1 - host.p);
	if (n == 0 || n >= sizeof(ip))
		return false;
	memcpy(ip, dot + 1, n);
	ip[n] = '\0';
	if (inet_pton(AF_INET, ip, &a) != 1)
		return false;
	*project = (struct str){host.p, (size_t)(dot - host.p)};
	return true;
}

int logstore_host_project(struct str host, struct str domain, struct str *project)
{
	if (!host.p || !domain.len || domain.len > LOGSTORE_MAX_DOMAIN)
		return 0;
	/* "<project>.@<ip>:<port>" (and "@<ip>:<port>" without a project): what
	 * sls20201230 sends for endpoint '@IP:PORT'. '@' is in no host name, so
	 * no RPC request looks like this. */
	const char *at = host.len ? memchr(host.p, '@', host.len) : NULL;
	if (at) {
		if (at == host.p)
			*project = (struct str){host.p, 0};
		else if (at[-1] == '.')
			*project = (struct str){host.p, (size_t)(at - 1 - host.p)};
		else
			return 0;
		return 1;
	}
	/* Strip ":port" (digits after the last ':'); IPv6 literals never match a domain. */
	const char *colon = host.len ? memrchr(host.p, ':', host.len) : NULL;
	if (colon) {
		bool digits = colon + 1 < host.p + host.len;
		for (const char *p = colon + 1; p < host.p + host.len; p++)
			digits &= *p >= '0' && *p <= '9';
		if (digits)
			host.len = (size_t)(colon - host.p);
	}
	if (host.len == domain.len && strncasecmp(host.p, domain.p, domain.len) == 0) {
		*project = (struct str){host.p, 0};
		return 1;
	}
	if (host.len < domain.len + 2 || host.p[host.len - domain.len - 1] != '.' ||
	    strncasecmp(host.p + host.len - domain.len, domain.p, domain.len) != 0)
		return host_project_ipv4(host, project) ? 1 : 0;
	*project = (struct str){host.p, host.len - domain.len - 1};
	return 1;
}

int logstore_path_project(struct str path, struct str *project, struct str *rest)
{
	static const char pre[] = LOGSTORE_PATH_PREFIX;
	size_t pl = sizeof(pre) - 1;
	if (path.len <= pl || memcmp(path.p, pre, pl) != 0)
		return 0;
	const char *p = path.p + pl, *end = path.p + path.len;
	const char *slash = memchr(p, '/', (size_t)(end - p));
	*project = (struct str){p, (size_t)((slash ? slash : end) - p)};
	*rest = slash ? (struct str){slash, (size_t)(end - slash)} : str_c("/");
	return 1;
}

/* The same static vhost for every request: the adapter only reads it. */
const struct http_vhost *logstore_vhost(void *arg, struct str host, struct str path)
{
	struct logstore_server *s = arg;
	struct str project, rest;
	if (logstore_host_project(host, str_c(s->domain), &project))
		return &s->vhost;
	return logstore_path_project(path, &project, &rest) ? &s->vhost : NULL;
}

/* ---- request parsing ---- */

static int collect_header(void *arg, struct str name, struct str value)
{
	struct lreq *q = arg;
	if (q->nheaders >= SLS_SIG_MAX_HEADERS || name.len > sizeof(q->hname) - q->hname_len)
		return 1;
	char *lc = q->hname + q->hname_len;
	for (size_t i = 0; i < name.len; i++)
		lc[i] = (char)tolower((unsigned char)name.p[i]);
	q->hname_len += name.len;
	q->headers[q->nheaders++] = (struct sls_kv){{lc, name.len}, value};
	return 0;
}

static struct str header(const struct lreq *q, const char *name)
{
	struct sls_sig_input in = {.headers = q->headers, .nheaders = q->nheaders};
	return sls_sig_header(&in, name);
}

static enum ls_path parse_path(struct str p, struct str *ls)
{
	static const char pre[] = "/logstores/";
	*ls = STR_NULL;
	if (str_eqc(p, "/"))
		return LS_ROOT;
	if (str_eqc(p, "/logstores") || str_eqc(p, "/logstores/"))
		return LS_LOGSTORES;
	if (p.len <= sizeof(pre) - 1 || memcmp(p.p, pre, sizeof(pre) - 1) != 0)
		return LS_PATH_NONE;
	struct str rest = {p.p + sizeof(pre) - 1, p.len - (sizeof(pre) - 1)};
	const char *slash = memchr(rest.p, '/', rest.len);
	*ls = (struct str){rest.p, slash ? (size_t)(slash - rest.p) : rest.len};
	if (!slash)
		return LS_LOGSTORE;
	struct str tail = {slash, rest.len - ls->len};
	if (str_eqc(tail, "/shards/lb"))
		return LS_SHARD_LB;
	if (str_eqc(tail, "/shards/route"))
		return LS_SHARD_ROUTE;
	if (str_eqc(tail, "/logs"))
		return LS_LOGS;
	if (str_eqc(tail, "/index"))
		return LS_INDEX;
	return LS_PATH_NONE;
}

static enum sls_err parse_request(struct lreq *q)
{
	struct http_request *r = q->r;
	/* The Host names the project, or else the path does; the signature
	 * covers the path as sent either way (the project included). */
	struct str host = http_host(r), project, rpath = r->path;
	if (!logstore_host_project(host, str_c(q->srv->domain), &project) &&
	    !logstore_path_project(r->path, &project, &rpath))
		return SLS_ERR_MISSING_HOST;
	q->has_project = project.len > 0;
	if (project.len > META_NAME_MAX || (q->has_project && !meta_project_name_ok(project))) {
		snprintf(q->detail, sizeof(q->detail), "%.*s", (int)(project.len < 64 ? project.len : 64),
			 project.p);
		for (char *p = q->detail; *p; p++)
			if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f || *p == '"')
				*p = '?';
		return SLS_ERR_PROJECT_NOT_EXIST;
	}
	memcpy(q->project_name, project.p, project.len);
	q->project_name[project.len] = '\0';
	http_header_each(r, collect_header, q);
	char pd[PARAMS_DETAIL_MAX];
	if (params_parse(q->params, r->query, PARAMS_QUERY, pd) != ERR_OK) {
		snprintf(q->detail, sizeof(q->detail), "the query string: %s", pd);
		return SLS_ERR_PARAMETER_INVALID;
	}
	for (size_t i = 0; i < params_count(q->params) && q->nquery < SLS_SIG_MAX_QUERY; i++) {
		const struct param *p = params_at(q->params, i);
		q->query[q->nquery++] = (struct sls_kv){p->name, p->value};
	}
	if (params_count(q->params) > SLS_SIG_MAX_QUERY) {
		snprintf(q->detail, sizeof(q->detail), "more than %d query parameters", SLS_SIG_MAX_QUERY);
		return SLS_ERR_PARAMETER_INVALID;
	}
	q->path = parse_path(rpath, &q->logstore_name);
	return SLS_ERR_OK;
}

/* ---- authentication ---- */

static enum sls_err check_time(struct lreq *q, const char *name, int (*parse)(struct str, int64_t *))
{
	struct str v = header(q, name);
	int64_t t, now = time_now_ms() / 1000;
	snprintf(q->detail, sizeof(q->detail), "%s", name);
	if (!v.p || !v.len)
		return SLS_ERR_MISSING_DATE;
	if (parse(v, &t) != 0)
		return SLS_ERR_INVALID_DATE_FORMAT;
	if (t > now + LOGSTORE_TIME_WINDOW_S || t < now - LOGSTORE_TIME_WINDOW_S)
		return SLS_ERR_REQUEST_TIME_EXPIRED;
	q->detail[0] = '\0';
	return SLS_ERR_OK;
}

/* The gateway owning a serial number, its devices and its bound flow log. */
struct dev_lookup {
	char serial[DOMAIN_SN_MAX + 1];
	struct sag g;
	struct ls_device dev;
};

static int read_device_tx(struct store_tx *tx, void *arg)
{
	struct dev_lookup *l = arg;
	int rc = store_device_owner(tx, l->serial, &l->g);
	if (rc != 0 || !l->g.flowlog_id[0])
		return rc;
	struct owner o = {l->g.account_id, l->g.region_id};
	rc = store_flowlog_get(tx, o, l->g.flowlog_id, &l->dev.fl);
	l->dev.has_flowlog = rc == 0;
	return rc == 1 ? 0 : rc;
}

/* A device credential: its secret is the device's SecretKey. An unbound
 * serial number and a wrong signature get the same answer
 * (DEVICE_AUTH_FAILED), as on the device channel, so serial numbers cannot be
 * probed. */
static enum sls_err find_device(struct lreq *q, struct str serial, struct store_key *k)
{
	struct dev_lookup *l = xcalloc(1, sizeof(*l));
	enum sls_err e = SLS_ERR_DEVICE_AUTH_FAILED;
	int rc = 1;
	if (domain_serial_valid(serial) && domain_copy(l->serial, sizeof(l->serial), serial) == 0)
		rc = store_read(q->srv->store, read_device_tx, l);
	if (rc != 0 && rc != 1)
		e = SLS_ERR_INTERNAL_SERVER_ERROR;
	for (int i = 0; rc == 0 && i < l->g.ndevices; i++) {
		if (strcmp(l->g.devices[i].serial_number, l->serial) != 0)
			continue;
		snprintf(k->secret, sizeof(k->secret), "%s", l->g.devices[i].secret_key);
		k->account_id = l->g.account_id;
		struct ls_device *d = xmalloc(sizeof(*d));
		*d = l->dev;
		memcpy(d->sag_id, l->g.id, sizeof(d->sag_id));
		memcpy(d->serial, l->serial, sizeof(d->serial));
		d->account_id = l->g.account_id;
		snprintf(d->account, sizeof(d->account), "%lld", (long long)l->g.account_id);
		q->dev = d; /* kept only if the signature verifies (authenticate) */
		e = SLS_ERR_OK;
	}
	OPENSSL_cleanse(l, sizeof(*l));
	free(l);
	return e;
}

static enum sls_err find_key(struct lreq *q, struct str akid, struct store_key *k)
{
	static const size_t plen = sizeof(DOMAIN_DEVICE_KEY_PREFIX) - 1;
	char id[STORE_MAX_KEY_FIELD + 1];
	if (akid.len > plen && memcmp(akid.p, DOMAIN_DEVICE_KEY_PREFIX, plen) == 0) {
		q->device_cred = true;
		return find_device(q, (struct str){akid.p + plen, akid.len - plen}, k);
	}
	params_printable(akid, q->detail, 64);
	if (akid.len == 0 || akid.len > STORE_MAX_KEY_FIELD)
		return SLS_ERR_UNAUTHORIZED;
	memcpy(id, akid.p, akid.len);
	id[akid.len] = '\0';
	int rc = store_key_find(q->srv->store, id, k);
	if (rc == 1)
		return SLS_ERR_UNAUTHORIZED;
	if (rc != 0)
		return SLS_ERR_INTERNAL_SERVER_ERROR;
	q->detail[0] = '\0';
	return SLS_ERR_OK;
}

static enum sls_err check_md5(struct lreq *q)
{
	struct str md5 = header(q, "content-md5");
	char want[SLS_SIG_MD5_HEX + 1];
	if (!md5.len)
		return SLS_ERR_OK;
	sls_md5_hex_upper(q->r->body, want);
	return md5.len == SLS_SIG_MD5_HEX && strncasecmp(md5.p, want, SLS_SIG_MD5_HEX) == 0
		       ? SLS_ERR_OK
		       : SLS_ERR_INVALID_CONTENT_MD5;
}

static enum sls_err auth_v1(struct lreq *q, const struct sls_sig_input *in, struct str authz,
			    struct store_key *k)
{
	struct str akid, sig;
	enum sls_sig_alg alg;
	if (sls_v1_parse_auth(authz, &akid, &sig) != 0) {
		snprintf(q->detail, sizeof(q->detail), "a malformed Authorization header");
		return SLS_ERR_UNAUTHORIZED;
	}
	enum sls_err e = check_time(q, "date", sls_parse_http_date);
	if (e != SLS_ERR_OK)
		return e;
	struct str method = header(q, "x-log-signaturemethod");
	if (sls_sig_method(method, &alg) != 0) {
		params_printable(method, q->detail, 64);
		return SLS_ERR_INVALID_SIGNATURE_METHOD;
	}
	/* The body's MD5 before the key: its answer must not depend on whether
	 * the key (or a device's serial number) exists. */
	if ((e = check_md5(q)) != SLS_ERR_OK || (e = find_key(q, akid, k)) != SLS_ERR_OK)
		return e;
	return sls_v1_verify(in, alg, str_c(k->secret), sig) ? SLS_ERR_OK
							       : SLS_ERR_SIGNATURE_NOT_MATCH;
}

static enum sls_err auth_v4(struct lreq *q, const struct sls_sig_input *in, struct str authz,
			    struct store_key *k)
{
	struct sls_v4_auth a;
	char sha[SLS_SIG_V4_HEX + 1];
	if (sls_v4_parse_auth(authz, &a) != 0) {
		snprintf(q->detail, sizeof(q->detail), "a malformed SLS4-HMAC-SHA256 Authorization");
		return SLS_ERR_UNAUTHORIZED;
	}
	enum sls_err e = check_time(q, "x-log-date", sls_parse_v4_date);
	if (e != SLS_ERR_OK || (e = find_key(q, a.akid, k)) != SLS_ERR_OK)
		return e;
	struct str claimed = header(q, "x-log-content-sha256");
	sls_sha256_hex(q->r->body, sha);
	if (claimed.len != SLS_SIG_V4_HEX || CRYPTO_memcmp(claimed.p, sha, SLS_SIG_V4_HEX) != 0)
		return SLS_ERR_SIGNATURE_NOT_MATCH;
	return sls_v4_verify(in, &a, str_c(k->secret)) ? SLS_ERR_OK : SLS_ERR_SIGNATURE_NOT_MATCH;
}

static enum sls_err authenticate(struct lreq *q)
{
	struct sls_sig_input in = {q->r->method, q->r->path, q->headers, q->nheaders, q->query,
				   q->nquery};
	struct str authz = header(q, "authorization");
	struct store_key *k = xcalloc(1, sizeof(*k));
	enum sls_err e;
	if (!authz.len) {
		snprintf(q->detail, sizeof(q->detail), "no Authorization header");
		e = SLS_ERR_UNAUTHORIZED;
	} else if (authz.len > 4 && !memcmp(authz.p, "LOG ", 4)) {
		e = auth_v1(q, &in, authz, k);
	} else {
		e = auth_v4(q, &in, authz, k);
	}
	q->account = k->account_id;
	OPENSSL_cleanse(k, sizeof(*k));
	free(k);
	if (q->device_cred && e == SLS_ERR_SIGNATURE_NOT_MATCH)
		e = SLS_ERR_DEVICE_AUTH_FAILED;
	if (e != SLS_ERR_OK) {
		free(q->dev);
		q->dev = NULL;
	}
	return e;
}

/* ---- resolution of project and logstore (reads) ---- */

static int read_project(struct store_tx *tx, void *arg)
{
	struct lreq *q = arg;
	return meta_project_get(tx, q->account, str_c(q->project_name), &q->project);
}

static int read_logstore(struct store_tx *tx, void *arg)
{
	struct lreq *q = arg;
	int rc = meta_project_get(tx, q->account, str_c(q->project_name), &q->project);
	if (rc != 0)
		return rc;
	rc = meta_logstore_get(tx, q->project.id, q->logstore_name, &q->logstore);
	return rc == 1 ? 2 : rc;
}

/* 0 when the project (and, with_logstore, the logstore) exist; otherwise
 * the request has been answered. */
static int resolve(struct lreq *q, bool with_logstore)
{
	if (!q->has_project) {
		fail(q, SLS_ERR_MISSING_HOST, NULL);
		return -1;
	}
	int rc = store_read(q->srv->store, with_logstore ? read_logstore : read_project, q);
	if (rc == 0)
		return 0;
	char name[META_NAME_MAX + 1];
	params_printable(q->logstore_name, name, sizeof(name));
	if (rc == 1)
		fail(q, SLS_ERR_PROJECT_NOT_EXIST, q->project_name);
	else if (rc == 2)
		fail(q, SLS_ERR_LOGSTORE_NOT_EXIST, name);
	else
		fail(q, SLS_ERR_INTERNAL_SERVER_ERROR, NULL);
	return -1;
}

/* ---- writes through the store's writer ---- */

static void write_done(void *arg, int rc)
{
	struct lreq *q = arg;
	if (rc == 0) {
		for (size_t i = 0; i < q->ndrop; i++)
			ldata_drop(q->srv->data, q->drop_ids[i]);
		ok_empty(q);
	} else if (rc == 1) {
		fail(q, q->path == LS_ROOT ? SLS_ERR_PROJECT_ALREADY_EXIST : SLS_ERR_LOGSTORE_ALREADY_EXIST,
		     q->name_arg);
	} else if (rc == 2) {
		fail(q, q->path == LS_ROOT ? SLS_ERR_PROJECT_NOT_EXIST : SLS_ERR_LOGSTORE_NOT_EXIST,
		     q->name_arg);
	} else {
		fail(q, SLS_ERR_INTERNAL_SERVER_ERROR, NULL);
	}
}

static void write_async(struct lreq *q, store_fn fn)
{
	store_write_async_scoped(q->srv->store, q->account, fn, q, write_done);
}

/* The JSON body of a Create*: an object, or the request is answered. */
static json_t *json_body(struct lreq *q)
{
	json_error_t je;
	json_t *j = json_loadb(q->r->body.p, q->r->body.len, JSON_REJECT_DUPLICATES, &je);
	if (!j || !json_is_object(j)) {
		json_decref(j);
		fail(q, SLS_ERR_POST_BODY_INVALID, "not a JSON object");
		return NULL;
	}
	return j;
}

static int copy_name(struct lreq *q, json_t *j, const char *field, bool (*ok)(struct str))
{
	json_t *v = json_object_get(j, field);
	const char *s = json_is_string(v) ? json_string_value(v) : NULL;
	size_t n = s ? json_string_length(v) : 0;
	if (!s || !ok((struct str){s, n})) {
		fail(q, SLS_ERR_INVALID_PARAMETER, field);
		return -1;
	}
	memcpy(q->name_buf, s, n + 1);
	q->name_arg = q->name_buf;
	return 0;
}

static int create_project_tx(struct store_tx *tx, void *arg)
{
	struct lreq *q = arg;
	return meta_project_create(tx, q->account, q->name_buf, q->desc_buf, time_now_ms() / 1000);
}

static void h_create_project(struct lreq *q)
{
	json_t *j = json_body(q);
	if (!j)
		return;
	json_t *d = json_object_get(j, "description");
	if (copy_name(q, j, "projectName", meta_project_name_ok) != 0) {
		json_decref(j);
		return;
	}
	if (d && (!json_is_string(d) || json_string_length(d) > META_MAX_DESCRIPTION)) {
		json_decref(j);
		fail(q, SLS_ERR_INVALID_PARAMETER, "description");
		return;
	}
	snprintf(q->desc_buf, sizeof(q->desc_buf), "%s", d ? json_string_value(d) : "");
	json_decref(j);
	write_async(q, create_project_tx);
}

static json_t *project_json(const struct meta_project *p)
{
	char c[21], m[21];
	time_format_iso8601(p->created_s, c);
	time_format_iso8601(p->modified_s, m);
	return json_pack("{s:s,s:s,s:s,s:s,s:I,s:I,s:s,s:s}", "projectName", p->name,
			 "description", p->description, "status", "Normal", "region", "cn-hangzhou",
			 "createTime", (json_int_t)p->created_s, "lastModifyTime",
			 (json_int_t)p->modified_s, "createTimeISO", c, "lastModifyTimeISO", m);
}

static void h_get_project(struct lreq *q)
{
	if (resolve(q, false) == 0)
		ok_json(q, project_json(&q->project));
}

/* offset and size of a list call (defaults 0 and 100). 0, or answered. */
static int list_window(struct lreq *q, int64_t *offset, int64_t *size)
{
	struct str o = params_get(q->params, "offset"), s = params_get(q->params, "size");
	*offset = 0;
	*size = META_LIST_DEFAULT;
	if (o.len && num_parse_i64(o, 0, INT32_MAX, offset) != 0) {
		fail(q, SLS_ERR_PARAMETER_INVALID, "offset");
		return -1;
	}
	if (s.len && num_parse_i64(s, 0, META_LIST_MAX, size) != 0) {
		fail(q, SLS_ERR_PARAMETER_INVALID, "size (0-500)");
		return -1;
	}
	return 0;
}

static int add_project(const struct meta_project *p, void *arg)
{
	return json_array_append_new(arg, project_json(p));
}

static int list_projects_tx(struct store_tx *tx, void *arg)
{
	struct lreq *q = arg;
	int64_t offset = json_integer_value(json_object_get(q->out, "offset"));
	int64_t size = json_integer_value(json_object_get(q->out, "size"));
	json_t *arr = json_array();
	json_object_set_new(q->out, "projects", arr);
	int rc = meta_project_list(tx, q->account, offset, size, add_project, arr, &q->total);
	json_object_del(q->out, "offset");
	json_object_del(q->out, "size");
	return rc;
}

static void h_list_projects(struct lreq *q)
{
	int64_t offset, size;
	if (list_window(q, &offset, &size) != 0)
		return;
	q->out = json_pack("{s:I,s:I}", "offset", (json_int_t)offset, "size", (json_int_t)size);
	if (store_read(q->srv->store, list_projects_tx, q) != 0) {
		fail(q, SLS_ERR_INTERNAL_SERVER_ERROR, NULL);
		return;
	}
	json_t *o = q->out;
	q->out = NULL;
	json_object_set_new(o, "count", json_integer((json_int_t)json_array_size(json_object_get(o, "projects"))));
	json_object_set_new(o, "total", json_integer(q->total));
	ok_json(q, o);
}

static int delete_project_tx(struct store_tx *tx, void *arg)
{
	struct lreq *q = arg;
	struct meta_project p;
	int rc = meta_project_get(tx, q->account, str_c(q->project_name), &p);
	if (rc != 0)
		return rc == 1 ? 2 : rc;
	if ((rc = meta_logstore_ids(tx, p.id, q->drop_ids, META_LIST_MAX, &q->ndrop)) != 0)
		return rc;
	return meta_project_delete(tx, q->account, str_c(q->project_name));
}

static void h_delete_project(struct lreq *q)
{
	if (!q->has_project) {
		fail(q, SLS_ERR_MISSING_HOST, NULL);
		return;
	}
	q->name_arg = q->project_name;
	write_async(q, delete_project_tx);
}

static int create_logstore_tx(struct store_tx *tx, void *arg)
{
	struct lreq *q = arg;
	return meta_logstore_create(tx, q->project.id, q->name_buf, q->ttl, q->shards,
				    time_now_ms() / 1000);
}

/* An optional integer field within [min, max]; 0, or answered. */
static int int_field(struct lreq *q, json_t *j, const char *f, int64_t min, int64_t max,
		     int64_t *out)
{
	json_t *v = json_object_get(j, f);
	if (!v)
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max) {
		fail(q, SLS_ERR_INVALID_PARAMETER, f);
		return -1;
	}
	*out = json_integer_value(v);
	return 0;
}

static void h_create_logstore(struct lreq *q)
{
	if (resolve(q, false) != 0)
		return;
	json_t *j = json_body(q);
	if (!j)
		return;
	q->ttl = META_TTL_DEFAULT;
	q->shards = META_SHARDS_DEFAULT;
	int rc = copy_name(q, j, "logstoreName", meta_logstore_name_ok);
	if (rc == 0)
		rc = int_field(q, j, "ttl", 1, META_TTL_MAX, &q->ttl);
	if (rc == 0)
		rc = int_field(q, j, "shardCount", 1, META_SHARDS_MAX, &q->shards);
	json_decref(j);
	if (rc == 0)
		write_async(q, create_logstore_tx);
}

static json_t *logstore_json(const struct meta_logstore *l)
{
	return json_pack("{s:s,s:I,s:I,s:b,s:b,s:I,s:b,s:s,s:I,s:s,s:I,s:I}", "logstoreName",
			 l->name, "ttl", (json_int_t)l->ttl, "shardCount", (json_int_t)l->shard_count,
			 "enable_tracking", 0, "autoSplit", 0, "maxSplitShard", (json_int_t)0,
			 "appendMeta", 0, "telemetryType", "None", "hot_ttl", (json_int_t)l->ttl,
			 "mode", "standard", "createTime", (json_int_t)l->created_s, "lastModifyTime",
			 (json_int_t)l->modified_s);
}

static void h_get_logstore(struct lreq *q)
{
	if (resolve(q, true) == 0)
		ok_json(q, logstore_json(&q->logstore));
}

static int add_logstore_name(const struct meta_logstore *l, void *arg)
{
	return json_array_append_new(arg, json_string(l->name));
}

struct list_ls {
	struct lreq *q;
	int64_t offset, size;
	json_t *arr;
};

static int list_logstores_tx(struct store_tx *tx, void *arg)
{
	struct list_ls *l = arg;
	struct lreq *q = l->q;
	int rc = meta_project_get(tx, q->account, str_c(q->project_name), &q->project);
	if (rc != 0)
		return rc;
	return meta_logstore_list(tx, q->project.id, params_get(q->params, "logstoreName"),
				  l->offset, l->size, add_logstore_name, l->arr, &q->total);
}

static void h_list_logstores(struct lreq *q)
{
	struct list_ls l = {.q = q};
	if (!q->has_project) {
		fail(q, SLS_ERR_MISSING_HOST, NULL);
		return;
	}
	if (list_window(q, &l.offset, &l.size) != 0)
		return;
	l.arr = json_array();
	int rc = store_read(q->srv->store, list_logstores_tx, &l);
	if (rc != 0) {
		json_decref(l.arr);
		fail(q, rc == 1 ? SLS_ERR_PROJECT_NOT_EXIST : SLS_ERR_INTERNAL_SERVER_ERROR,
		     q->project_name);
		return;
	}
	ok_json(q, json_pack("{s:I,s:I,s:o}", "count", (json_int_t)json_array_size(l.arr), "total",
			     (json_int_t)q->total, "logstores", l.arr));
}

static void sweep_kick(struct logstore_server *s);

static int update_logstore_tx(struct store_tx *tx, void *arg)
{
	struct lreq *q = arg;
	int rc = meta_logstore_update(tx, q->project.id, q->logstore_name, q->ttl, q->shards,
				      time_now_ms() / 1000);
	return rc == 1 ? 2 : rc;
}

static void update_logstore_done(void *arg, int rc)
{
	struct lreq *q = arg;
	if (rc == 0 && q->ttl > 0)
		sweep_kick(q->srv); /* a shorter ttl takes effect now, not within the hour */
	write_done(q, rc);
}

/* UpdateLogStore (PUT /logstores/{ls}, @alicloud/log updateLogStore): ttl
 * and shardCount; a logstoreName in the body must be the path's. */
static void h_update_logstore(struct lreq *q)
{
	if (resolve(q, true) != 0)
		return;
	json_t *j = json_body(q);
	if (!j)
		return;
	json_t *n = json_object_get(j, "logstoreName");
	q->ttl = q->shards = -1;
	int rc = 0;
	if (n && (!json_is_string(n) ||
		  !str_eq(q->logstore_name, (struct str){json_string_value(n), json_string_length(n)}))) {
		fail(q, SLS_ERR_INVALID_PARAMETER, "logstoreName");
		rc = -1;
	}
	if (rc == 0)
		rc = int_field(q, j, "ttl", 1, META_TTL_MAX, &q->ttl);
	if (rc == 0)
		rc = int_field(q, j, "shardCount", 1, META_SHARDS_MAX, &q->shards);
	json_decref(j);
	if (rc != 0)
		return;
	params_printable(q->logstore_name, q->name_buf, sizeof(q->name_buf));
	q->name_arg = q->name_buf;
	store_write_async_scoped(q->srv->store, q->account, update_logstore_tx, q,
				 update_logstore_done);
}

static int delete_logstore_tx(struct store_tx *tx, void *arg)
{
	struct lreq *q = arg;
	int rc = meta_project_get(tx, q->account, str_c(q->project_name), &q->project);
	if (rc != 0)
		return rc == 1 ? 3 : rc;
	rc = meta_logstore_delete(tx, q->project.id, q->logstore_name, &q->drop_ids[0]);
	if (rc == 0)
		q->ndrop = 1;
	return rc == 1 ? 2 : rc;
}

static void delete_logstore_done(void *arg, int rc)
{
	struct lreq *q = arg;
	if (rc == 3)
		fail(q, SLS_ERR_PROJECT_NOT_EXIST, q->project_name);
	else
		write_done(q, rc);
}

static void h_delete_logstore(struct lreq *q)
{
	if (!q->has_project) {
		fail(q, SLS_ERR_MISSING_HOST, NULL);
		return;
	}
	params_printable(q->logstore_name, q->name_buf, sizeof(q->name_buf));
	q->name_arg = q->name_buf;
	store_write_async_scoped(q->srv->store, q->account, delete_logstore_tx, q,
				 delete_logstore_done);
}

/* ---- PutLogs ---- */

static void put_done(struct ldata_put *p, enum ldata_rc rc)
{
	struct lreq *q = (struct lreq *)((char *)p - offsetof(struct lreq, put));
	if (rc == LDATA_STORED || rc == LDATA_DUPLICATE)
		ok_empty(q);
	else
		fail(q, rc == LDATA_BUSY ? SLS_ERR_SERVER_BUSY : SLS_ERR_INTERNAL_SERVER_ERROR, NULL);
}

static struct str pack_id_of(const Sls__LogGroupPacked *g)
{
	for (size_t i = 0; i < g->n_logtags; i++)
		if (str_eqc(sls_pb_str(g->logtags[i]->key), LS_PACK_ID_TAG))
			return g->logtags[i]->value.len <= LDATA_MAX_PACK_ID
				       ? sls_pb_str(g->logtags[i]->value)
				       : STR_NULL;
	return STR_NULL;
}

/* The body as a LogGroup (q->logs), encoded into q->put's blocks with the nf
 * fields f stamped into every Log; SLS_ERR_OK, or the error and its detail. */
static enum sls_err decode_group(struct lreq *q, const struct sls_field *f, size_t nf,
				 size_t *raw_len, const char **detail)
{
	enum sls_compress c;
	struct str raw;
	struct str ct = header(q, "x-log-compresstype");
	*detail = NULL;
	if (sls_compress_parse(ct, &c) != 0) {
		params_printable(ct, q->detail, 64);
		*detail = q->detail;
		return SLS_ERR_INVALID_COMPRESS_TYPE;
	}
	enum sls_err e = sls_body_raw(c, q->r->body, header(q, "x-log-bodyrawsize"), &raw,
				      &q->body_owned, detail);
	if (e == SLS_ERR_OK)
		e = sls_logs_open(raw, &q->logs, detail);
	if (e == SLS_ERR_OK)
		e = ldata_encode(&q->put, q->logs, f, nf, detail);
	free(q->body_owned); /* protobuf-c copied what it keeps */
	q->body_owned = NULL;
	*raw_len = raw.len;
	return e;
}

/* q->logstore resolved, q->put's blocks encoded: hand them to the writer. */
static void put_enqueue(struct lreq *q, size_t raw_len)
{
	q->put.logstore = q->logstore.id;
	q->put.pack_id = pack_id_of(sls_logs_group(q->logs));
	q->put.received_s = time_now_ms() / 1000;
	q->put.raw_bytes = raw_len;
	q->put.done = put_done;
	ldata_put(q->srv->data, &q->put);
}

static void device_put(struct lreq *q);

static void h_put_logs(struct lreq *q)
{
	const char *detail;
	size_t raw_len = 0;
	if (q->dev) {
		device_put(q);
		return;
	}
	if (resolve(q, true) != 0)
		return;
	enum sls_err e = decode_group(q, NULL, 0, &raw_len, &detail);
	if (e != SLS_ERR_OK) {
		fail(q, e, detail);
		return;
	}
	put_enqueue(q, raw_len);
}

/* ---- a gateway device's PutLogs (docs/device-protocol.md §8) ---- */

/* Why the device's flow log takes no Log Service writes now (q->detail), or NULL. */
static const char *flowlog_refusal(struct lreq *q)
{
	const struct ls_device *d = q->dev;
	if (!d->has_flowlog)
		snprintf(q->detail, sizeof(q->detail), "gateway %s has no flow log bound", d->sag_id);
	else if (d->fl.status != FLOWLOG_ACTIVE)
		snprintf(q->detail, sizeof(q->detail), "flow log %s is Inactive", d->fl.id);
	else if (d->fl.output == FLOWLOG_OUT_NETFLOW)
		snprintf(q->detail, sizeof(q->detail), "flow log %s has OutputType netflow", d->fl.id);
	else
		return NULL;
	return q->detail;
}

static bool targets(const struct lreq *q, const char *project, const char *logstore)
{
	return strcmp(q->project_name, project) == 0 && str_eqc(q->logstore_name, logstore);
}

/* A write the current flow log refuses but that goes to the target it had
 * before its last change, within DOMAIN_SLS_GRACE_MS of that change: records
 * the device closed under the old configuration (docs/device-protocol.md §8).
 * A write the current configuration allows is never a grace write. */
static bool in_grace(const struct lreq *q)
{
	const struct ls_device *d = q->dev;
	if (!d->has_flowlog || !d->fl.sls_prev_project[0] || time_now_ms() >= d->fl.sls_prev_until_ms)
		return false;
	bool allowed_now = d->fl.status == FLOWLOG_ACTIVE && d->fl.output != FLOWLOG_OUT_NETFLOW &&
			   targets(q, d->fl.project_name, d->fl.logstore_name);
	return !allowed_now && targets(q, d->fl.sls_prev_project, d->fl.sls_prev_logstore);
}

static int ensure_tx(struct store_tx *tx, void *arg)
{
	struct lreq *q = arg;
	return meta_ensure(tx, q->account, q->dev->fl.project_name, q->dev->fl.logstore_name,
			   time_now_ms() / 1000, &q->project, &q->logstore);
}

static void ensure_done(void *arg, int rc)
{
	struct lreq *q = arg;
	if (rc == 0)
		put_enqueue(q, q->put.raw_bytes);
	else if (rc == 1)
		fail(q, SLS_ERR_PROJECT_FORBIDDEN, q->project_name);
	else
		fail(q, SLS_ERR_INTERNAL_SERVER_ERROR, NULL);
}

/* The records carry who sent them, whatever the payload said (spec
 * flow-meter.md §1): the gateway, the device's serial number, the account;
 * stamped into every Log as it is encoded (sls_log_stamped). */
static enum sls_err decode_device_group(struct lreq *q, size_t *raw_len, const char **detail)
{
	const struct ls_device *d = q->dev;
	const struct sls_field f[] = {
		{STR_LIT("Instance_id"), str_c(d->sag_id)},
		{STR_LIT("snid"), str_c(d->serial)},
		{STR_LIT("ali-uid"), str_c(d->account)},
	};
	return decode_group(q, f, sizeof(f) / sizeof(f[0]), raw_len, detail);
}

/* Only to the project and logstore of the gateway's Active sls/all flow log;
 * both are created in the flow log's account on the first write. */
static void device_put(struct lreq *q)
{
	const struct ls_device *d = q->dev;
	const char *detail;
	size_t raw_len = 0;
	if (in_grace(q)) {
		/* The previous target: from here on it is where this write goes. */
		snprintf(q->dev->fl.project_name, sizeof(q->dev->fl.project_name), "%s",
			 d->fl.sls_prev_project);
		snprintf(q->dev->fl.logstore_name, sizeof(q->dev->fl.logstore_name), "%s",
			 d->fl.sls_prev_logstore);
	} else if (flowlog_refusal(q)) {
		fail(q, SLS_ERR_FLOWLOG_FORBIDDEN, q->detail);
		return;
	}
	if (strcmp(q->project_name, d->fl.project_name) != 0 ||
	    !str_eqc(q->logstore_name, d->fl.logstore_name)) {
		snprintf(q->detail, sizeof(q->detail), "PutLogs to project %.63s logstore %.63s (flow log %s)",
			 d->fl.project_name, d->fl.logstore_name, d->fl.id);
		fail(q, SLS_ERR_DEVICE_DENIED, q->detail);
		return;
	}
	enum sls_err e = decode_device_group(q, &raw_len, &detail);
	if (e != SLS_ERR_OK) {
		fail(q, e, detail);
		return;
	}
	q->account = d->account_id;
	q->put.raw_bytes = raw_len;
	int rc = store_read(q->srv->store, read_logstore, q);
	if (rc == 0)
		put_enqueue(q, raw_len);
	else if (rc == 1 || rc == 2)
		store_write_async_scoped(q->srv->store, q->account, ensure_tx, q, ensure_done);
	else
		fail(q, SLS_ERR_INTERNAL_SERVER_ERROR, NULL);
}

/* ---- GetLogs, GetLogsV2, GetHistograms ---- */

#define LS_QUERY_HEADER_MAX 1024 /* bytes of a query echoed in x-log-agg-query / where-query */
#define LS_QUERY_INFO_MAX 4096   /* bytes of x-log-query-info */

static int int_param(struct lreq *q, const char *name, int64_t min, int64_t max, int64_t def,
		     int64_t *out)
{
	struct str v = params_get(q->params, name);
	*out = def;
	if (v.len && num_parse_i64(v, min, max, out) != 0) {
		fail(q, SLS_ERR_PARAMETER_INVALID, name);
		return -1;
	}
	return 0;
}

/* A query parsed into a malloc'd struct query; NULL when answered. */
static struct query *parse_query(struct lreq *q, struct str text)
{
	char qd[QUERY_DETAIL_MAX];
	struct query *qq = xmalloc(sizeof(*qq));
	enum sls_err e = query_parse(text, qq, qd);
	if (e != SLS_ERR_OK) {
		free(qq);
		fail(q, e, qd);
		return NULL;
	}
	return qq;
}

/* A header-safe copy of s: printable ASCII, at most LS_QUERY_HEADER_MAX bytes. */
static void header_text(struct str s, char *out, size_t cap)
{
	size_t n = s.len < cap - 1 ? s.len : cap - 1;
	for (size_t i = 0; i < n; i++)
		out[i] = s.p[i] >= 0x20 && s.p[i] < 0x7f ? s.p[i] : ' ';
	out[n] = '\0';
}

static char *query_info(const struct getlogs_result *res)
{
	json_t *j = json_pack("{s:i,s:O,s:[],s:i}", "mode", 0, "keys", res->keys, "terms", "limited", 0);
	char *s = json_dumps(j, JSON_COMPACT | JSON_ENSURE_ASCII);
	json_decref(j);
	if (s && strlen(s) > LS_QUERY_INFO_MAX) {
		free(s);
		s = xstrdup("{\"mode\":0,\"keys\":[],\"terms\":[],\"limited\":0}");
	}
	return s;
}

/* Runs g; the request is answered on failure (returns -1). */
static int run_getlogs(struct lreq *q, struct getlogs *g, struct getlogs_result *res)
{
	char qd[QUERY_DETAIL_MAX];
	g->logstore = str_c(q->logstore.name);
	enum sls_err e = query_getlogs(q->srv->data, q->logstore.id, g, res, qd);
	if (e != SLS_ERR_OK) {
		getlogs_result_free(res);
		fail(q, e, qd);
		return -1;
	}
	return 0;
}

struct getlogs_headers {
	char count[24], processed[24], ms[24];
	char agg[LS_QUERY_HEADER_MAX], where[LS_QUERY_HEADER_MAX];
	char *info;
	struct http_hdr h[8];
};

static void fill_headers(struct lreq *q, const struct query *qq, const struct getlogs_result *res,
			 struct getlogs_headers *o)
{
	snprintf(o->count, sizeof(o->count), "%lld", (long long)res->count);
	snprintf(o->processed, sizeof(o->processed), "%lld", (long long)res->processed);
	snprintf(o->ms, sizeof(o->ms), "%lld", (long long)((time_mono_us() - q->r->start_us) / 1000));
	header_text(qq->sql, o->agg, sizeof(o->agg));
	header_text(qq->where, o->where, sizeof(o->where));
	o->info = query_info(res);
	struct http_hdr h[8] = {{"x-log-progress", res->complete ? "Complete" : "Incomplete"},
				{"x-log-count", o->count}, {"x-log-processed-rows", o->processed},
				{"x-log-elapsed-millisecond", o->ms},
				{"x-log-has-sql", qq->has_sql ? "true" : "false"},
				{"x-log-agg-query", o->agg}, {"x-log-where-query", o->where},
				{"x-log-query-info", o->info ? o->info : "{}"}};
	memcpy(o->h, h, sizeof(h));
}

static void h_get_logs(struct lreq *q)
{
	struct getlogs g = {0};
	if (resolve(q, true) != 0)
		return;
	if (int_param(q, "from", 0, UINT32_MAX, 0, &g.from) || int_param(q, "to", 0, UINT32_MAX, 0, &g.to) ||
	    int_param(q, "line", 0, QUERY_MAX_LINE, QUERY_MAX_LINE, &g.line) ||
	    int_param(q, "offset", 0, INT32_MAX, 0, &g.offset))
		return;
	struct str rev = params_get(q->params, "reverse");
	if (rev.len && !str_eqc(rev, "true") && !str_eqc(rev, "false")) {
		fail(q, SLS_ERR_PARAMETER_INVALID, "reverse (true or false)");
		return;
	}
	g.reverse = str_eqc(rev, "true");
	g.topic = params_get(q->params, "topic");
	struct query *qq = parse_query(q, params_get(q->params, "query"));
	struct getlogs_result res;
	if (!qq)
		return;
	struct getlogs_headers hd;
	struct query keep = {.where = qq->where, .sql = qq->sql, .has_sql = qq->has_sql};
	g.q = qq;
	int rc = run_getlogs(q, &g, &res);
	free(qq);
	if (rc != 0)
		return;
	char *body = json_dumps(res.rows, JSON_COMPACT);
	fill_headers(q, &keep, &res, &hd);
	getlogs_result_free(&res);
	if (!body) {
		free(hd.info);
		fail(q, SLS_ERR_INTERNAL_SERVER_ERROR, NULL);
		return;
	}
	access_log(q, 200, "OK");
	respond(q, 200, "application/json", body, strlen(body), hd.h, 8);
	free(hd.info);
	lreq_free(q);
}

/* GetLogsV2's JSON body: numbers as numbers, reverse a boolean. 0, or answered. */
static int v2_int(struct lreq *q, json_t *j, const char *f, int64_t min, int64_t max, int64_t *out)
{
	json_t *v = json_object_get(j, f);
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max) {
		fail(q, SLS_ERR_PARAMETER_INVALID, f);
		return -1;
	}
	*out = json_integer_value(v);
	return 0;
}

static int v2_params(struct lreq *q, json_t *j, struct getlogs *g, struct str *query)
{
	json_t *rev = json_object_get(j, "reverse"), *qs = json_object_get(j, "query"),
	       *topic = json_object_get(j, "topic");
	g->line = QUERY_MAX_LINE;
	if (v2_int(q, j, "from", 0, UINT32_MAX, &g->from) || v2_int(q, j, "to", 0, UINT32_MAX, &g->to) ||
	    v2_int(q, j, "line", 0, QUERY_MAX_LINE, &g->line) ||
	    v2_int(q, j, "offset", 0, INT32_MAX, &g->offset))
		return -1;
	if ((rev && !json_is_boolean(rev) && !json_is_null(rev)) || (qs && !json_is_string(qs)) ||
	    (topic && !json_is_string(topic))) {
		fail(q, SLS_ERR_PARAMETER_INVALID, "reverse (a boolean), query and topic (strings)");
		return -1;
	}
	g->reverse = json_is_true(rev);
	*query = qs ? (struct str){json_string_value(qs), json_string_length(qs)} : STR_NULL;
	g->topic = topic ? (struct str){json_string_value(topic), json_string_length(topic)} : STR_NULL;
	return 0;
}

static json_t *v2_meta(const struct getlogs_headers *hd, const struct query *qq,
		       const struct getlogs_result *res, int64_t ms)
{
	return json_pack("{s:s,s:s,s:s,s:b,s:I,s:I,s:f,s:i,s:i,s:I,s:i,s:s,s:b,s:s,s:O,s:[],s:b,s:i}",
			 "progress", res->complete ? "Complete" : "Incomplete", "aggQuery", hd->agg,
			 "whereQuery", hd->where, "hasSQL", qq->has_sql, "processedRows",
			 (json_int_t)res->processed, "elapsedMillisecond", (json_int_t)ms, "cpuSec", 0.0,
			 "cpuCores", 0, "limited", 0, "count", (json_int_t)res->count,
			 "processedBytes", 0, "telementryType", "logging", "powerSql", 0,
			 "insertedSQL", "", "keys", res->keys, "terms", "isAccurate", 1, "mode", 0);
}

static bool accepts_lz4(struct lreq *q)
{
	struct str ae = header(q, "accept-encoding");
	for (size_t i = 0; i + 3 <= ae.len; i++)
		if (!strncasecmp(ae.p + i, "lz4", 3))
			return true;
	return false;
}

/* The answer as sent: a raw LZ4 block (spec §1.4) when the client takes one. */
static void send_v2(struct lreq *q, char *body, struct getlogs_headers *hd)
{
	size_t len = strlen(body), n = 8;
	char raw[24];
	struct http_hdr h[10];
	memcpy(h, hd->h, sizeof(hd->h));
	if (accepts_lz4(q) && len <= LZ4_MAX_INPUT_SIZE) {
		int cap = LZ4_compressBound((int)len);
		char *z = xmalloc((size_t)cap);
		int zn = LZ4_compress_default(body, z, (int)len, cap);
		if (zn > 0) {
			snprintf(raw, sizeof(raw), "%zu", len);
			h[n++] = (struct http_hdr){"x-log-compresstype", "lz4"};
			h[n++] = (struct http_hdr){"x-log-bodyrawsize", raw};
			free(body);
			body = z;
			len = (size_t)zn;
		} else {
			free(z);
		}
	}
	access_log(q, 200, "OK");
	respond(q, 200, "application/json", body, len, h, n);
}

static void h_get_logs_v2(struct lreq *q)
{
	struct getlogs g = {0};
	struct str text;
	if (resolve(q, true) != 0)
		return;
	json_t *j = json_body(q);
	if (!j)
		return;
	if (v2_params(q, j, &g, &text) != 0) {
		json_decref(j);
		return;
	}
	struct query *qq = parse_query(q, text);
	if (!qq) {
		json_decref(j);
		return;
	}
	struct query keep = {.where = qq->where, .sql = qq->sql, .has_sql = qq->has_sql};
	struct getlogs_result res;
	struct getlogs_headers hd;
	g.q = qq;
	int rc = run_getlogs(q, &g, &res);
	free(qq);
	if (rc == 0)
		fill_headers(q, &keep, &res, &hd);
	json_decref(j); /* keep's slices pointed into it until here */
	if (rc != 0)
		return;
	json_t *out = json_pack("{s:o,s:O}", "meta",
				v2_meta(&hd, &keep, &res, (time_mono_us() - q->r->start_us) / 1000),
				"data", res.rows);
	getlogs_result_free(&res);
	char *body = out ? json_dumps(out, JSON_COMPACT) : NULL;
	json_decref(out);
	if (!body) {
		free(hd.info);
		fail(q, SLS_ERR_INTERNAL_SERVER_ERROR, NULL);
		return;
	}
	send_v2(q, body, &hd);
	free(hd.info);
	lreq_free(q);
}

static void h_histograms(struct lreq *q)
{
	struct histogram h = {0};
	if (resolve(q, true) != 0)
		return;
	if (int_param(q, "from", 0, UINT32_MAX, 0, &h.from) || int_param(q, "to", 0, UINT32_MAX, 0, &h.to) ||
	    int_param(q, "interval", 0, UINT32_MAX, 0, &h.interval))
		return;
	if (h.to < h.from) {
		fail(q, SLS_ERR_PARAMETER_INVALID, "to (before from)");
		return;
	}
	if (!query_hist_interval(h.from, h.to, h.interval)) {
		fail(q, SLS_ERR_PARAMETER_INVALID, "interval (more than 1440 buckets)");
		return;
	}
	h.topic = params_get(q->params, "topic");
	struct query *qq = parse_query(q, params_get(q->params, "query"));
	if (!qq)
		return;
	h.q = qq; /* the search part only: a histogram counts logs */
	struct histogram_result res;
	int rc = query_histogram(q->srv->data, q->logstore.id, &h, &res);
	free(qq);
	char *body = rc == 0 ? json_dumps(res.buckets, JSON_COMPACT) : NULL;
	json_decref(res.buckets);
	if (!body) {
		fail(q, SLS_ERR_INTERNAL_SERVER_ERROR, NULL);
		return;
	}
	char count[24];
	snprintf(count, sizeof(count), "%lld", (long long)res.count);
	struct http_hdr hd[] = {{"x-log-progress", res.complete ? "Complete" : "Incomplete"},
				{"x-log-count", count}};
	access_log(q, 200, "OK");
	respond(q, 200, "application/json", body, strlen(body), hd, 2);
	lreq_free(q);
}

static void h_logstore_get(struct lreq *q)
{
	struct str type = params_get(q->params, "type");
	if (!type.p)
		h_get_logstore(q);
	else if (str_eqc(type, "log"))
		h_get_logs(q);
	else if (str_eqc(type, "histogram"))
		h_histograms(q);
	else
		fail(q, SLS_ERR_PARAMETER_INVALID, "type (log or histogram)");
}

static void h_index_get(struct lreq *q)
{
	if (str_eqc(params_get(q->params, "type"), "histogram"))
		h_histograms(q);
	else
		fail(q, SLS_ERR_PARAMETER_INVALID, "type (index configurations are not implemented)");
}

static void h_root_get(struct lreq *q)
{
	if (q->has_project)
		h_get_project(q);
	else
		h_list_projects(q);
}

/* ---- routing ---- */

struct ls_route {
	enum ls_path path;
	const char *method;
	void (*fn)(struct lreq *q);
};

static const struct ls_route ls_routes[] = {
	{LS_ROOT, "GET", h_root_get},
	{LS_ROOT, "POST", h_create_project},
	{LS_ROOT, "DELETE", h_delete_project},
	{LS_LOGSTORES, "GET", h_list_logstores},
	{LS_LOGSTORES, "POST", h_create_logstore},
	{LS_LOGSTORE, "GET", h_logstore_get},
	{LS_LOGSTORE, "POST", h_put_logs},
	{LS_LOGSTORE, "PUT", h_update_logstore},
	{LS_LOGSTORE, "DELETE", h_delete_logstore},
	{LS_SHARD_LB, "POST", h_put_logs},
	{LS_SHARD_ROUTE, "POST", h_put_logs},
	{LS_LOGS, "POST", h_get_logs_v2},
	{LS_INDEX, "GET", h_index_get},
};

static void route(struct lreq *q)
{
	bool path_known = false;
	for (size_t i = 0; i < sizeof(ls_routes) / sizeof(ls_routes[0]); i++) {
		if (ls_routes[i].path != q->path)
			continue;
		path_known = true;
		if (str_eqc(q->r->method, ls_routes[i].method)) {
			if (q->dev && ls_routes[i].fn != h_put_logs) {
				fail(q, SLS_ERR_DEVICE_DENIED,
				     "PutLogs, to the logstore of its gateway's flow log");
				return;
			}
			if (q->path >= LS_LOGSTORE && !meta_logstore_name_ok(q->logstore_name)) {
				params_printable(q->logstore_name, q->detail, 64);
				fail(q, SLS_ERR_LOGSTORE_NOT_EXIST, q->detail);
				return;
			}
			ls_routes[i].fn(q);
			return;
		}
	}
	if (path_known) {
		fail(q, SLS_ERR_METHOD_NOT_ALLOWED, NULL);
		return;
	}
	params_printable(q->r->path, q->detail, 64);
	fail(q, SLS_ERR_API_NOT_FOUND, q->detail);
}

static struct lreq *lreq_new(struct logstore_server *s, struct http_request *r)
{
	struct lreq *q = xcalloc(1, sizeof(*q));
	q->srv = s;
	q->r = r;
	q->params = params_new();
	ids_hex(q->request_id, LS_REQUEST_ID_BYTES);
	for (char *p = q->request_id; *p; p++)
		*p = (char)toupper((unsigned char)*p);
	return q;
}

static void ls_handle(struct http_request *r)
{
	struct lreq *q = lreq_new(r->route_arg, r);
	enum sls_err e = parse_request(q);
	if (e == SLS_ERR_OK)
		e = authenticate(q);
	if (e != SLS_ERR_OK) {
		fail(q, e, q->detail);
		return;
	}
	route(q);
}

/* A node without the log store: every request, before anything else (nothing
 * here could check it), gets the error that says where the log store is. */
static void ls_handle_elsewhere(struct http_request *r)
{
	struct lreq *q = lreq_new(r->route_arg, r);
	fail(q, SLS_ERR_NOT_HELD, q->srv->elsewhere);
}

/* Errors the adapter answers itself (413, 414, 503) in the Log Service's envelope. */
static void ls_http_error(struct http_request *r, int status, const char *why)
{
	struct lreq *q = lreq_new(r->route_arg, r);
	if (status == 413)
		fail(q, SLS_ERR_POST_BODY_TOO_LARGE, "more than 10 MB as sent");
	else if (status == 414)
		fail(q, SLS_ERR_REQUEST_URI_TOO_LONG, NULL);
	else if (status == 503)
		fail(q, SLS_ERR_SERVER_BUSY, NULL);
	else
		fail(q, SLS_ERR_INTERNAL_SERVER_ERROR, why);
}

/* ---- retention ---- */

struct ttl_list {
	struct ldata_ttl *v;
	size_t n, cap;
};

static int add_ttl(int64_t id, int64_t ttl, void *arg)
{
	struct ttl_list *l = arg;
	if (l->n == l->cap) {
		l->cap = l->cap ? 2 * l->cap : 64;
		l->v = xrealloc(l->v, l->cap * sizeof(*l->v));
	}
	l->v[l->n++] = (struct ldata_ttl){id, ttl};
	return 0;
}

static int list_ttls_tx(struct store_tx *tx, void *arg)
{
	struct ttl_list *l = arg;
	l->n = 0;
	return meta_logstore_each_ttl(tx, add_ttl, l);
}

static void sweep_once(struct logstore_server *s)
{
	struct ttl_list l = {0};
	if (store_read(s->store, list_ttls_tx, &l) == 0)
		ldata_expire(s->data, l.v, l.n, time_now_ms() / 1000);
	else
		log_err("logstore: retention: cannot list the logstores; trying again later");
	free(l.v);
}

static void *sweeper_main(void *arg)
{
	struct logstore_server *s = arg;
	pthread_mutex_lock(&s->mu);
	while (!s->stop) {
		pthread_mutex_unlock(&s->mu);
		sweep_once(s);
		pthread_mutex_lock(&s->mu);
		struct timespec until;
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += LOGSTORE_SWEEP_INTERVAL_S;
		while (!s->stop && !s->kick)
			if (pthread_cond_timedwait(&s->cv, &s->mu, &until) == ETIMEDOUT)
				break;
		s->kick = false;
	}
	pthread_mutex_unlock(&s->mu);
	return NULL;
}

static void sweep_kick(struct logstore_server *s)
{
	pthread_mutex_lock(&s->mu);
	s->kick = true;
	pthread_cond_signal(&s->cv);
	pthread_mutex_unlock(&s->mu);
}

static bool domain_ok(const char *domain)
{
	if (strlen(domain) <= LOGSTORE_MAX_DOMAIN && domain[0])
		return true;
	log_err("logstore: bad --sls-domain '%s'", domain);
	return false;
}

struct logstore_server *logstore_new(struct store *st, const char *logs_dir, const char *domain)
{
	if (!domain_ok(domain))
		return NULL;
	struct ldata *d = ldata_open(logs_dir);
	if (!d)
		return NULL;
	struct logstore_server *s = xcalloc(1, sizeof(*s));
	s->store = st;
	s->data = d;
	snprintf(s->domain, sizeof(s->domain), "%s", domain);
	s->vhost = (struct http_vhost){.handle = ls_handle, .on_error = ls_http_error, .arg = s,
				       .max_body = LOGSTORE_MAX_BODY};
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->cv, NULL);
	if (pthread_create(&s->sweeper, NULL, sweeper_main, s) != 0)
		fatal("logstore: cannot start the retention thread");
	return s;
}

struct logstore_server *logstore_new_elsewhere(const char *domain, const char *url)
{
	if (!domain_ok(domain))
		return NULL;
	if (strlen(url) > LOGSTORE_MAX_URL || !url[0]) {
		log_err("logstore: bad --log-store-at '%s'", url);
		return NULL;
	}
	struct logstore_server *s = xcalloc(1, sizeof(*s));
	snprintf(s->domain, sizeof(s->domain), "%s", domain);
	snprintf(s->elsewhere, sizeof(s->elsewhere), "%s", url);
	s->vhost = (struct http_vhost){.handle = ls_handle_elsewhere, .on_error = ls_http_error,
				       .arg = s, .max_body = LOGSTORE_MAX_BODY};
	return s;
}

void logstore_free(struct logstore_server *s)
{
	if (!s)
		return;
	if (s->elsewhere[0]) {
		free(s);
		return;
	}
	pthread_mutex_lock(&s->mu);
	s->stop = true;
	pthread_cond_signal(&s->cv);
	pthread_mutex_unlock(&s->mu);
	pthread_join(s->sweeper, NULL);
	pthread_cond_destroy(&s->cv);
	pthread_mutex_destroy(&s->mu);
	ldata_close(s->data);
	free(s);
}
