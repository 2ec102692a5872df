/* The device channel, server side. Order of checks (docs/device-protocol.md §4):
 * path and method, headers well-formed, body hash, clock window, then the one
 * store read (serial number → gateway, device secret, flow log), signature,
 * budget, sequence, report — so an unauthenticated request never writes
 * anything. Every accepted sync then commits its sequence before it is answered. */
#include "device/device.h"

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/hmac.h"
#include "core/log.h"
#include "core/str.h"
#include "core/num.h"
#include "core/ratelimit.h"
#include "core/timeutil.h"
#include "core/xmalloc.h"
#include "device/hold.h"
#include "domain/domain.h"
#include "http/http.h"
#include "rpc/rpc.h"
#include "store/store_sag.h"

#define CT_JSON "application/json;charset=utf-8"

/* The channel's errors: status, code and message in one table. */
#define DEVICE_ERR_MAP(X)                                                                        \
	X(OK, 200, "", "")                                                                       \
	X(MALFORMED, 400, "Device.MalformedRequest",                                             \
	  "A required X-Sag-* or Authorization header is missing or malformed.")                 \
	X(CONTENT_HASH, 400, "Device.ContentHashMismatch",                                       \
	  "X-Sag-Content-Sha256 is not the SHA-256 of the body.")                                \
	X(TOO_LARGE, 413, "Device.RequestTooLarge", "The report exceeds 4096 bytes.")            \
	X(EXPIRED, 401, "Device.TimestampExpired",                                               \
	  "X-Sag-Date is more than 15 minutes away from the server's clock.")                    \
	X(AUTH_FAILED, 401, "Device.AuthFailed",                                                 \
	  "The serial number is not bound to a gateway or the signature does not match.")        \
	X(SEQUENCE_REQUIRED, 400, "Device.SequenceRequired",                                     \
	  "This server needs X-Sag-Sequence, signed in place of X-Sag-Nonce (device protocol "   \
	  "1.1, docs/device-protocol.md); upgrade the device.")                                  \
	X(SEQUENCE_STALE, 409, "Device.SequenceStale",                                           \
	  "X-Sag-Sequence is not greater than the last one accepted from this device "           \
	  "(LastSequence): a replay, or the device's counter went back.")                        \
	X(BAD_REPORT, 400, "Device.InvalidReport",                                               \
	  "The report must be a JSON object with a valid Model, SoftwareVersion and HaState.")   \
	X(NOT_FOUND, 404, "Device.NotFound", "No such device endpoint.")                         \
	X(METHOD, 405, "Device.MethodNotAllowed", "Use POST.")                                   \
	X(THROTTLED, 429, "Device.Throttled",                                                    \
	  "This device sent more requests than its budget allows; retry after the poll interval.") \
	X(BUSY, 503, "Device.Busy", "The server is busy; retry after the poll interval.")        \
	X(INTERNAL, 500, "Device.InternalError", "The server failed to process the report.")     \
	X(UNAVAILABLE, 503, "Device.ServiceUnavailable",                                         \
	  "The server cannot reach its database; retry after the poll interval.")

enum dev_err {
#define DEV_ENUM(name, status, code, msg) DEV_##name,
	DEVICE_ERR_MAP(DEV_ENUM)
#undef DEV_ENUM
};

/* A store failure (< 0): unreachable database (nothing done) or another. */
static enum dev_err dev_store_err(int rc)
{
	return rc == STORE_EUNAVAIL ? DEV_UNAVAILABLE : DEV_INTERNAL;
}

static const struct {
	int status;
	const char *code, *message;
} dev_errors[] = {
#define DEV_ROW(name, status, code, msg) {status, code, msg},
	DEVICE_ERR_MAP(DEV_ROW)
#undef DEV_ROW
};

struct device_server {
	struct store *store;
	struct ratelimit *budgets; /* per serial number, or NULL; not ours */
	struct holds *holds; /* long-poll: syncs waiting for a change */
	struct sync *outbox; /* the waker's answers of its current batch (waker thread only) */
	struct sync *reread; /* the waker's woken syncs to read again (waker thread only) */
	unsigned max_held;
	int64_t hold_max_s; /* the longest a sync is held */
	int64_t poll_s;     /* PollIntervalSeconds in answers */
	int64_t refresh_ms; /* an unchanged report older than this is stored again */
	const char *sls_domain;
	const struct device_sls_endpoint *sls_eps;
	size_t sls_neps;
	const char *sls_default; /* "" : this server's own log store */
};

/* What one request carries, parsed. Slices point into the request. */
struct dev_auth {
	struct str serial, date, sequence, content_sha256, signature;
	int64_t date_s, seq;
};

_Static_assert(sizeof(((struct device_report *)0)->model) == DOMAIN_MODEL_MAX + 1, "model size");
_Static_assert(sizeof(((struct device_report *)0)->version) == DOMAIN_VERSION_MAX + 1, "version size");

/* One sync, from the pool thread to (maybe) the writer's done callback, and
 * (maybe) held until a change or its wait ends. */
struct sync {
	struct hold_item hold;
	struct device_server *ds;
	struct http_request *r;
	char serial[DOMAIN_SN_MAX + 1];
	struct device_report rep;
	int64_t seq, last_seq; /* this sync's X-Sag-Sequence; the last accepted when stale */
	bool report_due;       /* the report is stored with the sequence */
	int prev_ha;           /* the HA state stored before this report */
	int64_t next_s;        /* NextSyncSeconds of the answer */
	struct sync *next_out; /* in the waker's list of answers to send */
	char *out;             /* its rendered answer, until flushed */
	int load_rc;           /* the waker's re-read of it */
	size_t out_len;
	struct sag g;
	struct flowlog fl;
	bool has_flowlog;
};

/* ---- signing ---- */

void device_body_sha256(struct str body, char out[DEVICE_HEX_SHA256 + 1])
{
	unsigned char md[SHA256_DIGEST_LENGTH];
	SHA256((const unsigned char *)(body.len ? body.p : ""), body.len, md);
	str_hex(md, sizeof(md), out, false);
}

void device_string_to_sign(struct buf *out, struct str method, struct str path, struct str serial,
			   struct str date, struct str sequence, struct str content_sha256)
{
	const struct str parts[] = {STR_LIT(DEVICE_AUTH_ALGORITHM), method, path, serial, date,
				    sequence, content_sha256};
	for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
		if (i)
			buf_addc(out, '\n');
		buf_add(out, parts[i].p, parts[i].len);
	}
}

void device_sign(struct str secret, struct str sts, char out[DEVICE_HEX_SHA256 + 1])
{
	unsigned char md[HMAC_SHA256_LEN];
	hmac_sha256(secret.p, secret.len, sts.p, sts.len, md);
	str_hex(md, sizeof(md), out, false);
}

/* ---- answering ---- */

static void respond_err_last(struct http_request *r, enum dev_err e, int64_t last);

static void respond_err(struct http_request *r, enum dev_err e)
{
	respond_err_last(r, e, -1);
}

/* last >= 0 adds LastSequence (Device.SequenceStale), so the device can move
 * its counter past it at once; only a verified request gets there. */
static void respond_err_last(struct http_request *r, enum dev_err e, int64_t last)
{
	/* One line per refusal, for operators; the serial number is printable
	 * (checked) or left out, and no key or signature is ever logged. */
	struct str sn = http_header(r, "X-Sag-Serial-Number");
	bool show = domain_serial_valid(sn);
	log_warn("device: %s %d remote=%s serial=%.*s", dev_errors[e].code, dev_errors[e].status,
		 r->remote, show ? (int)sn.len : 0, show ? sn.p : "");
	json_t *o = json_object();
	json_object_set_new(o, "Code", json_string(dev_errors[e].code));
	json_object_set_new(o, "Message", json_string(dev_errors[e].message));
	if (last >= 0)
		json_object_set_new(o, "LastSequence", json_integer(last));
	char *body = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(o);
	http_respond_owned(r, dev_errors[e].status, CT_JSON, body, strlen(body));
}

/* Where the device writes the Log Service leg: the region's endpoint, or ""
 * (the control plane's own log store, Host "<project>.<SlsDomain>"), and the
 * account id the records name as ali-uid. */
static void sls_json(const struct sync *s, json_t *o)
{
	const struct device_server *ds = s->ds;
	const char *url = ds->sls_default;
	for (size_t i = 0; i < ds->sls_neps; i++)
		if (!strcmp(ds->sls_eps[i].region, s->fl.sls_region_id))
			url = ds->sls_eps[i].url;
	char uid[24];
	snprintf(uid, sizeof(uid), "%lld", (long long)s->g.account_id);
	json_object_set_new(o, "SlsEndpoint", json_string(url));
	json_object_set_new(o, "SlsDomain", json_string(url[0] ? "" : ds->sls_domain));
	json_object_set_new(o, "AliUid", json_string(uid));
}

/* The effective configuration: the bound flow log while it is Active, else null. */
static json_t *config_json(const struct sync *s)
{
	if (!s->has_flowlog || s->fl.status != FLOWLOG_ACTIVE)
		return json_null();
	const struct flowlog *fl = &s->fl;
	json_t *o = json_object();
	json_object_set_new(o, "FlowLogId", json_string(fl->id));
	json_object_set_new(o, "OutputType", json_string(flowlog_output_name(fl->output)));
	json_object_set_new(o, "NetflowServerIp", json_string(fl->netflow_server_ip));
	json_object_set_new(o, "NetflowServerPort", json_integer(fl->netflow_server_port));
	json_object_set_new(o, "NetflowVersion", json_string(netflow_version_name(fl->netflow_version)));
	json_object_set_new(o, "ActiveAging", json_integer(fl->active_aging));
	json_object_set_new(o, "InactiveAging", json_integer(fl->inactive_aging));
	json_object_set_new(o, "SlsRegionId", json_string(fl->sls_region_id));
	json_object_set_new(o, "ProjectName", json_string(fl->project_name));
	json_object_set_new(o, "LogstoreName", json_string(fl->logstore_name));
	if (fl->output != FLOWLOG_OUT_NETFLOW)
		sls_json(s, o);
	return o;
}

/* Whether this device is the one that exports: the single device, or the HA
 * pair's active one (spec §10: the one reporting HA state active). */
static bool exports(const struct sync *s)
{
	const struct device *a = sag_active_device(&s->g);
	return a && !strcmp(a->serial_number, s->serial) &&
	       (s->g.ndevices == 1 || a->ha_state == DEVICE_HA_ACTIVE);
}

/* The ConfigVersion of the answer: it covers everything the device acts on,
 * so it changes iff the device must change something. */
static void config_version(json_t *cfg, bool exp, char version[2 * SHA256_DIGEST_LENGTH + 1])
{
	json_t *versioned = json_pack("{s:O,s:b}", "FlowLog", cfg, "Export", exp);
	char *canon = json_dumps(versioned, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY);
	json_decref(versioned);
	unsigned char md[SHA256_DIGEST_LENGTH];
	SHA256((const unsigned char *)canon, strlen(canon), md);
	free(canon);
	str_hex(md, DEVICE_CONFIG_VERSION_HEX / 2, version, false);
}

static bool sync_changed(const struct sync *s)
{
	json_t *cfg = config_json(s);
	char version[2 * SHA256_DIGEST_LENGTH + 1];
	config_version(cfg, exports(s), version);
	json_decref(cfg);
	return strcmp(version, s->rep.have) != 0;
}

static char *render_sync(struct sync *s, size_t *len);

static void respond_sync(struct sync *s)
{
	size_t len;
	char *body = render_sync(s, &len);
	http_respond_owned(s->r, 200, CT_JSON, body, len);
}

static char *render_sync(struct sync *s, size_t *len)
{
	json_t *cfg = config_json(s);
	bool exp = exports(s);
	char version[2 * SHA256_DIGEST_LENGTH + 1];
	config_version(cfg, exp, version);
	bool changed = strcmp(version, s->rep.have) != 0;
	json_t *o = json_object();
	json_object_set_new(o, "SmartAGId", json_string(s->g.id));
	json_object_set_new(o, "SerialNumber", json_string(s->serial));
	json_object_set_new(o, "ConfigVersion", json_string(version));
	json_object_set_new(o, "Changed", json_boolean(changed));
	json_object_set_new(o, "Export", json_boolean(exp));
	json_object_set_new(o, "FlowLog", changed ? cfg : json_null());
	if (!changed)
		json_decref(cfg);
	json_object_set_new(o, "PollIntervalSeconds", json_integer(s->ds->poll_s));
	json_object_set_new(o, "NextSyncSeconds", json_integer(s->next_s));
	char *body = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(o);
	*len = strlen(body);
	return body;
}

/* ---- parsing ---- */

static bool charset(struct str s, size_t min, size_t max, const char *extra)
{
	if (s.len < min || s.len > max)
		return false;
	for (size_t i = 0; i < s.len; i++) {
		char c = s.p[i];
		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c && strchr(extra, c))))
			return false;
	}
	return true;
}

static bool is_lower_hex(struct str s, size_t len)
{
	if (s.len != len)
		return false;
	for (size_t i = 0; i < s.len; i++)
		if (!((s.p[i] >= '0' && s.p[i] <= '9') || (s.p[i] >= 'a' && s.p[i] <= 'f')))
			return false;
	return true;
}

static enum dev_err parse_auth(struct http_request *r, struct dev_auth *a)
{
	static const char prefix[] = DEVICE_AUTH_ALGORITHM " Signature=";
	a->serial = http_header(r, "X-Sag-Serial-Number");
	a->date = http_header(r, "X-Sag-Date");
	a->sequence = http_header(r, "X-Sag-Sequence");
	a->content_sha256 = http_header(r, "X-Sag-Content-Sha256");
	struct str auth = http_header(r, "Authorization");
	if (!a->sequence.p && http_header(r, "X-Sag-Nonce").p)
		return DEV_SEQUENCE_REQUIRED; /* a protocol-1.0 device: say so plainly */
	if (!domain_serial_valid(a->serial) || a->sequence.len > DEVICE_SEQUENCE_MAX_LEN ||
	    !charset(a->sequence, 1, DEVICE_SEQUENCE_MAX_LEN, "") ||
	    num_parse_i64(a->sequence, 1, INT64_MAX, &a->seq) != 0 ||
	    !is_lower_hex(a->content_sha256, DEVICE_HEX_SHA256) ||
	    time_parse_iso8601(a->date, &a->date_s) < 0)
		return DEV_MALFORMED;
	if (auth.len != sizeof(prefix) - 1 + DEVICE_HEX_SHA256 || memcmp(auth.p, prefix, sizeof(prefix) - 1))
		return DEV_MALFORMED;
	a->signature = (struct str){auth.p + sizeof(prefix) - 1, DEVICE_HEX_SHA256};
	if (!is_lower_hex(a->signature, DEVICE_HEX_SHA256))
		return DEV_MALFORMED;
	char sha[DEVICE_HEX_SHA256 + 1];
	device_body_sha256(r->body, sha);
	if (CRYPTO_memcmp(sha, a->content_sha256.p, DEVICE_HEX_SHA256) != 0)
		return DEV_CONTENT_HASH;
	int64_t now = time_now_ms() / 1000;
	if (a->date_s < now - DEVICE_TIME_WINDOW_S || a->date_s > now + DEVICE_TIME_WINDOW_S)
		return DEV_EXPIRED;
	return DEV_OK;
}

static int str_field(json_t *o, const char *key, bool (*valid)(struct str), char *out, size_t cap)
{
	json_t *v = json_object_get(o, key);
	if (!json_is_string(v))
		return -1;
	struct str s = {json_string_value(v), json_string_length(v)};
	return valid(s) && domain_copy(out, cap, s) == 0 ? 0 : -1;
}

static bool config_version_valid(struct str s)
{
	return s.len == 0 || is_lower_hex(s, DEVICE_CONFIG_VERSION_HEX);
}

/* The Log Service leg of the device's flow log, as the device sees it. */
static bool sls_delivery_valid(struct str s)
{
	return s.len == 0 || str_eqc(s, "delivered") || str_eqc(s, "not-delivered");
}

static int count_field(json_t *o, const char *key, int64_t *out)
{
	json_t *v = json_object_get(o, key);
	if (!v)
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < 0 ||
	    json_integer_value(v) > DOMAIN_SLS_COUNT_MAX)
		return -1;
	*out = (int64_t)json_integer_value(v);
	return 0;
}

static bool sls_error_valid(struct str s)
{
	for (size_t i = 0; i < s.len; i++)
		if ((unsigned char)s.p[i] < 0x20)
			return false; /* one line: it is shown and logged as is */
	return true;
}

/* SlsStats: {Delivered, Queued, Dropped, LastError, LastErrorTime (ms)}, every
 * member optional; the sender's counters (agent/slssend.h). */
static int sls_stats_parse(json_t *o, struct device_sls_stats *st)
{
	json_t *v = json_object_get(o, "SlsStats");
	if (!v)
		return 0;
	if (!json_is_object(v) || count_field(v, "Delivered", &st->delivered) < 0 ||
	    count_field(v, "Queued", &st->queued) < 0 || count_field(v, "Dropped", &st->dropped) < 0 ||
	    count_field(v, "LastErrorTime", &st->last_error_ms) < 0)
		return -1;
	if (json_object_get(v, "LastError") &&
	    str_field(v, "LastError", sls_error_valid, st->last_error, sizeof(st->last_error)) < 0)
		return -1;
	return 0;
}

int device_report_parse(struct str body, struct device_report *rep)
{
	json_error_t jerr;
	json_t *o = json_loadb(body.p ? body.p : "", body.len, JSON_REJECT_DUPLICATES, &jerr);
	int rc = -1;
	enum device_ha ha = DEVICE_HA_UNKNOWN;
	memset(rep, 0, sizeof(*rep));
	if (!json_is_object(o))
		goto out;
	if (str_field(o, "Model", domain_model_valid, rep->model, sizeof(rep->model)) < 0 ||
	    str_field(o, "SoftwareVersion", domain_version_valid, rep->version, sizeof(rep->version)) < 0)
		goto out;
	json_t *h = json_object_get(o, "HaState");
	if (h && (!json_is_string(h) ||
		  device_ha_parse((struct str){json_string_value(h), json_string_length(h)}, &ha) < 0))
		goto out;
	rep->ha = (int)ha;
	if (json_object_get(o, "ConfigVersion") &&
	    str_field(o, "ConfigVersion", config_version_valid, rep->have, sizeof(rep->have)) < 0)
		goto out;
	json_t *w = json_object_get(o, "Wait");
	if (w && (!json_is_integer(w) || json_integer_value(w) < 0 ||
		  json_integer_value(w) > DEVICE_MAX_WAIT_S))
		goto out;
	rep->wait_s = w ? (int)json_integer_value(w) : 0;
	if (json_object_get(o, "SlsDelivery") &&
	    str_field(o, "SlsDelivery", sls_delivery_valid, rep->sls_delivery, sizeof(rep->sls_delivery)) < 0)
		goto out;
	if (sls_stats_parse(o, &rep->sls) < 0)
		goto out;
	rc = 0;
out:
	json_decref(o);
	return rc;
}

/* ---- the sync ---- */

static const struct device *find_device(const struct sag *g, const char *serial)
{
	for (int i = 0; i < g->ndevices; i++)
		if (!strcmp(g->devices[i].serial_number, serial))
			return &g->devices[i];
	return NULL;
}

/* Loads the gateway owning s->serial and its flow log; 0, 1 unbound, STORE_EIO. */
static int load(struct store_tx *tx, struct sync *s)
{
	int rc = store_device_owner(tx, s->serial, &s->g);
	if (rc != 0)
		return rc;
	s->has_flowlog = false;
	if (!s->g.flowlog_id[0])
		return 0;
	struct owner o = {s->g.account_id, s->g.region_id};
	rc = store_flowlog_get_config(tx, o, s->g.flowlog_id, &s->fl);
	s->has_flowlog = rc == 0;
	return rc == 1 ? 0 : rc;
}

static int load_tx(struct store_tx *tx, void *arg)
{
	return load(tx, arg);
}

_Static_assert(sizeof(((struct device *)0)->sls_delivery) == sizeof(((struct device_report *)0)->sls_delivery),
	       "a report's SlsDelivery is stored as is");

/* The sequence mark, the report when due, and the answer's state in one write
 * transaction: 0, 1 unbound meanwhile, 2 stale (s->last_seq), or STORE_EIO. */
static int seq_tx(struct store_tx *tx, void *arg)
{
	struct sync *s = arg;
	int rc = store_device_sequence(tx, &s->g, s->serial, s->seq, &s->last_seq);
	if (rc != 0)
		return rc;
	if (!s->report_due)
		return 0; /* the answer is the read authenticate made (s->hold.epoch covers it) */
	struct device d = {0};
	memcpy(d.model, s->rep.model, sizeof(d.model));
	memcpy(d.software_version, s->rep.version, sizeof(d.software_version));
	d.ha_state = (enum device_ha)s->rep.ha;
	memcpy(d.sls_delivery, s->rep.sls_delivery, sizeof(d.sls_delivery));
	d.sls = s->rep.sls;
	rc = store_device_report(tx, &s->g, s->serial, &d, time_now_ms());
	return rc != 0 ? rc : load(tx, s);
}

/* Answers s, or holds it when it asked to wait and nothing changed for it:
 * s->epoch is the account's change count read before its answer was. */
static void finish_sync_to(struct sync *s, bool deferred);

static void finish_sync(struct sync *s)
{
	finish_sync_to(s, false);
}

/* deferred (the waker): the answer goes to the outbox, sent at the batch's end. */
static void finish_sync_to(struct sync *s, bool deferred)
{
	struct device_server *ds = s->ds;
	s->next_s = ds->poll_s;
	if (s->rep.wait_s > 0 && sync_changed(s)) {
		s->next_s = 0; /* a long-polling device asks again at once */
	} else if (s->rep.wait_s > 0) {
		int64_t hold_s = s->rep.wait_s < ds->hold_max_s ? s->rep.wait_s : ds->hold_max_s;
		s->hold.account = s->g.account_id;
		if (!s->hold.deadline_us)
			s->hold.deadline_us = s->r->start_us + hold_s * 1000000;
		if (holds_add(ds->holds, &s->hold))
			return;
		if (holds_count(ds->holds) >= ds->max_held)
			rpc_count_throttled(RPC_THROTTLED_HELD_FULL);
	}
	if (deferred) {
		s->out = render_sync(s, &s->out_len);
		s->next_out = ds->outbox;
		ds->outbox = s;
		return;
	}
	respond_sync(s);
	free(s);
}

/* Many woken syncs read in one read transaction: one snapshot, a warm page
 * cache, one BEGIN/COMMIT (one read each cost ~0.45 ms at 20,000 devices,
 * ~0.08 ms in batches). */
static int load_batch_tx(struct store_tx *tx, void *arg)
{
	for (struct sync *s = arg; s; s = s->next_out) {
		s->load_rc = load(tx, s);
		if (s->load_rc < 0)
			return s->load_rc;
	}
	return 0;
}

static void reread_all(struct device_server *ds)
{
	while (ds->reread) {
		struct sync *chunk = ds->reread, *tail = chunk;
		for (int n = 1; n < DEVICE_REREAD_BATCH && tail->next_out; n++)
			tail = tail->next_out;
		ds->reread = tail->next_out;
		tail->next_out = NULL;
		uint64_t epoch = holds_epoch(ds->holds);
		int rc = store_read(ds->store, load_batch_tx, chunk);
		for (struct sync *s = chunk, *next; s; s = next) {
			next = s->next_out;
			s->next_out = NULL;
			int r = rc < 0 ? rc : s->load_rc;
			if (r != 0 || !find_device(&s->g, s->serial)) {
				respond_err(s->r, r == 0 || r == 1 ? DEV_AUTH_FAILED : dev_store_err(r));
				free(s);
				continue;
			}
			s->hold.epoch = epoch;
			finish_sync_to(s, true);
		}
	}
}

static void held_flush(void *arg)
{
	struct device_server *ds = arg;
	int64_t t0 = time_mono_us();
	unsigned woken = 0, answered = 0;
	for (struct sync *s = ds->reread; s; s = s->next_out)
		woken++;
	reread_all(ds);
	for (struct sync *s = ds->outbox; s; s = s->next_out)
		answered++;
	if (woken)
		log_info("device: a change woke %u held syncs; %u answered (reads took %lld ms)",
			 woken, answered, (long long)((time_mono_us() - t0) / 1000));
	for (struct sync *s = ds->outbox, *next; s; s = next) {
		next = s->next_out;
		http_respond_owned(s->r, 200, CT_JSON, s->out, s->out_len);
		free(s);
	}
	ds->outbox = NULL;
}

/* The waker's call for a held sync: its wait ended (answer unchanged), or its
 * account changed (read again; answer or keep holding). */
static void held_wake(struct hold_item *it, bool expired, void *arg)
{
	struct sync *s = (struct sync *)(void *)((char *)it - offsetof(struct sync, hold));
	if (expired) {
		s->next_s = 0;
		s->out = render_sync(s, &s->out_len);
		s->next_out = s->ds->outbox;
		s->ds->outbox = s;
		return;
	}
	s->next_out = s->ds->reread; /* read at the batch's end, with the others */
	s->ds->reread = s;
}

static bool held_gone(struct hold_item *it, void *arg)
{
	const struct sync *s = (const struct sync *)(const void *)((const char *)it - offsetof(struct sync, hold));
	return http_peer_closed(s->r);
}

static void seq_done(void *arg, int rc)
{
	struct sync *s = arg;
	/* A new HA state moves Export between the pair: wake the peer. */
	if (rc == 0 && s->report_due && s->prev_ha != s->rep.ha)
		holds_changed(s->ds->holds, s->g.account_id);
	if (rc == 0) {
		finish_sync(s); /* answers and frees s, or holds it */
		return;
	}
	if (rc == 2)
		respond_err_last(s->r, DEV_SEQUENCE_STALE, s->last_seq);
	else
		respond_err(s->r, rc == 1 ? DEV_AUTH_FAILED : dev_store_err(rc));
	free(s);
}

static bool sls_stats_differ(const struct device_sls_stats *x, const struct device_sls_stats *y)
{
	return x->delivered != y->delivered || x->queued != y->queued || x->dropped != y->dropped ||
	       x->last_error_ms != y->last_error_ms || strcmp(x->last_error, y->last_error) != 0;
}

static bool report_differs(const struct device *d, const struct device_report *rep,
			   int64_t refresh_ms)
{
	return strcmp(d->model, rep->model) || strcmp(d->software_version, rep->version) ||
	       d->ha_state != (enum device_ha)rep->ha || strcmp(d->sls_delivery, rep->sls_delivery) ||
	       sls_stats_differ(&d->sls, &rep->sls) ||
	       time_now_ms() - d->reported_ms >= refresh_ms;
}

static enum dev_err authenticate(struct sync *s, const struct dev_auth *a, const struct device **dev)
{
	int rc = store_read(s->ds->store, load_tx, s);
	if (rc == 1)
		return DEV_AUTH_FAILED;
	if (rc != 0)
		return rc < 0 ? dev_store_err(rc) : DEV_INTERNAL;
	const struct device *d = find_device(&s->g, s->serial);
	if (!d)
		return DEV_AUTH_FAILED;
	struct buf sts = {0};
	char want[DEVICE_HEX_SHA256 + 1];
	device_string_to_sign(&sts, s->r->method, s->r->path, a->serial, a->date, a->sequence,
			      a->content_sha256);
	device_sign(str_c(d->secret_key), (struct str){sts.p, sts.len}, want);
	buf_free(&sts);
	if (CRYPTO_memcmp(want, a->signature.p, DEVICE_HEX_SHA256) != 0)
		return DEV_AUTH_FAILED;
	/* Only a verified request spends budget or moves the sequence, so nobody
	 * can burn a device's. */
	if (s->ds->budgets) {
		switch (ratelimit_take(s->ds->budgets, a->serial, time_mono_us())) {
		case RATELIMIT_OK:
			break;
		case RATELIMIT_THROTTLED:
			rpc_count_throttled(RPC_THROTTLED_DEVICE);
			return DEV_THROTTLED;
		default:
			rpc_count_throttled(RPC_THROTTLED_DEVICES_FULL);
			return DEV_BUSY;
		}
	}
	/* A cheap early refusal of a replay; the conditional UPDATE in seq_tx is
	 * the one that counts (two copies racing here both pass). */
	s->seq = a->seq;
	if (a->seq <= d->last_sequence) {
		s->last_seq = d->last_sequence;
		return DEV_SEQUENCE_STALE;
	}
	*dev = d;
	return DEV_OK;
}

static void sync_handler(struct http_request *r)
{
	struct device_server *ds = r->route_arg;
	struct dev_auth a;
	enum dev_err e;
	if (!str_eqc(r->path, DEVICE_SYNC_PATH)) {
		respond_err(r, DEV_NOT_FOUND);
		return;
	}
	if (!str_eqc(r->method, "POST")) {
		respond_err(r, DEV_METHOD);
		return;
	}
	if (r->body.len > DEVICE_MAX_BODY) {
		respond_err(r, DEV_TOO_LARGE);
		return;
	}
	if ((e = parse_auth(r, &a)) != DEV_OK) {
		respond_err(r, e);
		return;
	}
	struct sync *s = xcalloc(1, sizeof(*s));
	s->ds = ds;
	s->r = r;
	domain_copy(s->serial, sizeof(s->serial), a.serial); /* checked by parse_auth */
	const struct device *d = NULL;
	/* Before the read the answer is built from, so no change after it can be
	 * missed by a hold. */
	s->hold.epoch = holds_epoch(ds->holds);
	if ((e = authenticate(s, &a, &d)) == DEV_OK)
		e = device_report_parse(r->body, &s->rep) == 0 ? DEV_OK : DEV_BAD_REPORT;
	if (e != DEV_OK) {
		respond_err_last(r, e, e == DEV_SEQUENCE_STALE ? s->last_seq : -1);
		free(s);
		return;
	}
	/* Every accepted sync commits its sequence before it is answered, so no
	 * restart reopens a replay. The report goes with it when due: then only
	 * g's account's data changes (store_device_report checks the binding);
	 * a sequence alone changes nothing any cached answer reads. */
	s->report_due = report_differs(d, &s->rep, ds->refresh_ms);
	s->prev_ha = (int)d->ha_state;
	store_write_async_scoped(ds->store, s->report_due ? s->g.account_id : STORE_SCOPE_NONE,
				 seq_tx, s, seq_done);
}

struct device_server *device_server_new(struct store *st, int64_t online_ms,
					struct ratelimit *budgets, unsigned max_held)
{
	struct device_server *d = xcalloc(1, sizeof(*d));
	d->store = st;
	d->budgets = budgets;
	d->max_held = max_held;
	d->holds = holds_new(max_held, held_wake, held_gone, held_flush, d);
	/* A held device is seen at each sync: holding it at most two thirds of
	 * the online window keeps its stored reports closer than that window. */
	d->hold_max_s = online_ms * 2 / 3000;
	if (d->hold_max_s > DEVICE_MAX_WAIT_S)
		d->hold_max_s = DEVICE_MAX_WAIT_S;
	if (d->hold_max_s < 1)
		d->hold_max_s = 1;
	/* Three polls and three stored reports per online window, so a device that
	 * keeps polling never looks Offline. */
	d->poll_s = online_ms / 3000;
	if (d->poll_s > DEVICE_POLL_INTERVAL_S)
		d->poll_s = DEVICE_POLL_INTERVAL_S;
	if (d->poll_s < 1)
		d->poll_s = 1;
	d->refresh_ms = online_ms / 3 < DEVICE_REPORT_REFRESH_MS ? online_ms / 3 : DEVICE_REPORT_REFRESH_MS;
	d->sls_domain = "";
	d->sls_default = "";
	return d;
}

void device_server_drain(struct device_server *d)
{
	holds_drain(d->holds);
}

void device_server_account_changed(void *d, int64_t account)
{
	holds_changed(((struct device_server *)d)->holds, account);
}

unsigned device_held(struct device_server *d, unsigned *max)
{
	*max = d->max_held;
	return holds_count(d->holds);
}

void device_server_set_sls(struct device_server *d, const char *domain,
			   const struct device_sls_endpoint *eps, size_t n, const char *default_url)
{
	d->sls_domain = domain;
	d->sls_default = default_url ? default_url : "";
	d->sls_eps = eps;
	d->sls_neps = n;
}

void device_server_free(struct device_server *d)
{
	if (!d)
		return;
	holds_free(d->holds);
	free(d);
}

int device_routes_add(struct http_server *h, struct device_server *d)
{
	return http_route_add(h, NULL, DEVICE_PATH_PREFIX, sync_handler, d);
}
