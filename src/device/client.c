/* The device channel, client side: one signed POST per sync (docs/device-
 * protocol.md §3) through the agent's transport (device/transport.c, libcurl:
 * keep-alive, TLS, proxies), bounded in time and size, and the answer parsed
 * into the flow-log configuration. */
#include "device/client.h"

#include <jansson.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/num.h"
#include "core/timeutil.h"
#include "core/xmalloc.h"
#include "device/transport.h"

struct devclient {
	struct devclient_url server;
	char url[DEVCLIENT_URL_MAX + 32]; /* scheme://host:port/device/v1/sync */
	struct transport *t;
	char serial[DOMAIN_SN_MAX + 1];
	char secret[DOMAIN_SECRET_LEN + 1];
	int64_t last_seq; /* the last X-Sag-Sequence sent (or the server's LastSequence) */
};

/* ---- the URL ---- */

static bool host_char(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       c == '.' || c == '-' || c == ':' || c == '_';
}

/* The scheme's length and kind; 0 when u starts with neither. */
static size_t url_scheme(struct str u, bool *https)
{
	*https = u.len >= 8 && str_caseeq((struct str){u.p, 8}, "https://");
	if (*https)
		return 8;
	return u.len >= 7 && str_caseeq((struct str){u.p, 7}, "http://") ? 7 : 0;
}

int devclient_parse_url(const char *url, struct devclient_url *out, char *err, size_t errlen)
{
	struct str u = str_c(url);
	if (u.len > DEVCLIENT_URL_MAX) {
		snprintf(err, errlen, "the URL is longer than %d bytes", DEVCLIENT_URL_MAX);
		return -1;
	}
	size_t skip = url_scheme(u, &out->https);
	if (!skip) {
		snprintf(err, errlen, "the URL must start with http:// or https://");
		return -1;
	}
	struct str rest = {u.p + skip, u.len - skip};
	if (rest.len && rest.p[rest.len - 1] == '/')
		rest.len--;
	struct str host = rest, port = out->https ? STR_LIT("443") : STR_LIT("80");
	if (rest.len && rest.p[0] == '[') {
		const char *close = memchr(rest.p, ']', rest.len);
		if (!close)
			goto bad;
		host = (struct str){rest.p + 1, (size_t)(close - rest.p - 1)};
		size_t after = (size_t)(rest.p + rest.len - close - 1);
		if (after && (close[1] != ':' || after < 2))
			goto bad;
		if (after)
			port = (struct str){close + 2, after - 1};
	} else {
		const char *colon = memchr(rest.p, ':', rest.len);
		if (colon) {
			host = (struct str){rest.p, (size_t)(colon - rest.p)};
			port = (struct str){colon + 1, (size_t)(rest.p + rest.len - colon - 1)};
		}
	}
	int64_t pn;
	if (host.len == 0 || host.len > DEVCLIENT_HOST_MAX ||
	    num_parse_i64(port, 1, 65535, &pn) < 0)
		goto bad;
	for (size_t i = 0; i < host.len; i++)
		if (!host_char(host.p[i]))
			goto bad;
	memcpy(out->host, host.p, host.len);
	out->host[host.len] = '\0';
	snprintf(out->port, sizeof(out->port), "%d", (int)pn);
	snprintf(out->authority, sizeof(out->authority),
		 strchr(out->host, ':') ? "[%s]:%s" : "%s:%s", out->host, out->port);
	return 0;
bad:
	snprintf(err, errlen, "the URL must be http(s)://HOST[:PORT] (a path is not allowed)");
	return -1;
}

struct devclient *devclient_new(const char *url, const char *serial, const char *secret,
				const char *ca_file, char *err, size_t errlen)
{
	struct devclient *c = xcalloc(1, sizeof(*c));
	struct str sn = str_c(serial), key = str_c(secret);
	if (devclient_parse_url(url, &c->server, err, errlen) < 0)
		goto fail;
	if (!domain_serial_valid(sn)) {
		snprintf(err, errlen, "the serial number must be 1-%d of [A-Za-z0-9_-]",
			 DOMAIN_SN_MAX);
		goto fail;
	}
	/* The length only: the secret's bytes never reach a message. */
	if (key.len == 0 || key.len > DOMAIN_SECRET_LEN) {
		snprintf(err, errlen, "the secret key must be 1-%d characters", DOMAIN_SECRET_LEN);
		goto fail;
	}
	memcpy(c->serial, sn.p, sn.len);
	memcpy(c->secret, key.p, key.len);
	snprintf(c->url, sizeof(c->url), "%s://%s" DEVICE_SYNC_PATH,
		 c->server.https ? "https" : "http", c->server.authority);
	c->t = transport_new(ca_file);
	return c;
fail:
	devclient_free(c);
	return NULL;
}

void devclient_free(struct devclient *c)
{
	if (!c)
		return;
	OPENSSL_cleanse(c->secret, sizeof(c->secret));
	transport_free(c->t);
	free(c);
}

/* ---- the answer's JSON ---- */

static int get_str(json_t *o, const char *key, char *out, size_t cap, bool required)
{
	json_t *v = json_object_get(o, key);
	if (!v && !required) {
		out[0] = '\0';
		return 0;
	}
	if (!json_is_string(v) || json_string_length(v) >= cap ||
	    memchr(json_string_value(v), 0, json_string_length(v)))
		return -1;
	memcpy(out, json_string_value(v), json_string_length(v) + 1);
	return 0;
}

static int get_int(json_t *o, const char *key, int64_t min, int64_t max, int64_t *out)
{
	json_t *v = json_object_get(o, key);
	if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max)
		return -1;
	*out = json_integer_value(v);
	return 0;
}

static int netflow_version(const char *s)
{
	static const struct {
		const char *name;
		int v;
	} names[] = {{"V5", 5}, {"V9", 9}, {"V10", 10}};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (!strcmp(s, names[i].name))
			return names[i].v;
	return 0;
}

static int flowlog_from_json(json_t *o, struct devclient_flowlog *f, char *err, size_t errlen)
{
	char ver[8];
	int64_t port = 0;
	memset(f, 0, sizeof(*f));
	if (!json_is_object(o) || get_str(o, "FlowLogId", f->id, sizeof(f->id), true) < 0 ||
	    get_str(o, "OutputType", f->output, sizeof(f->output), true) < 0 ||
	    get_int(o, "ActiveAging", FLOWLOG_ACTIVE_AGING_MIN, FLOWLOG_ACTIVE_AGING_MAX,
		    &f->active_aging_s) < 0 ||
	    get_int(o, "InactiveAging", FLOWLOG_INACTIVE_AGING_MIN, FLOWLOG_INACTIVE_AGING_MAX,
		    &f->inactive_aging_s) < 0 ||
	    get_str(o, "ProjectName", f->project, sizeof(f->project), false) < 0 ||
	    get_str(o, "LogstoreName", f->logstore, sizeof(f->logstore), false) < 0 ||
	    get_str(o, "SlsEndpoint", f->sls_endpoint, sizeof(f->sls_endpoint), false) < 0 ||
	    get_str(o, "SlsDomain", f->sls_domain, sizeof(f->sls_domain), false) < 0 ||
	    get_str(o, "AliUid", f->ali_uid, sizeof(f->ali_uid), false) < 0) {
		snprintf(err, errlen, "FlowLog lacks a valid FlowLogId, OutputType or aging");
		return -1;
	}
	if (strcmp(f->output, "sls") && strcmp(f->output, "netflow") && strcmp(f->output, "all")) {
		snprintf(err, errlen, "FlowLog has an unknown OutputType");
		return -1;
	}
	if (!strcmp(f->output, "sls"))
		return 0; /* no NetFlow leg: its fields are not used */
	if (get_str(o, "NetflowServerIp", f->server_ip, sizeof(f->server_ip), true) < 0 ||
	    !domain_ip_valid(str_c(f->server_ip)) ||
	    get_int(o, "NetflowServerPort", 1, 65535, &port) < 0 ||
	    get_str(o, "NetflowVersion", ver, sizeof(ver), true) < 0 ||
	    !(f->version = netflow_version(ver))) {
		snprintf(
		    err, errlen,
		    "FlowLog lacks a valid NetflowServerIp, NetflowServerPort or NetflowVersion");
		return -1;
	}
	f->server_port = (int)port;
	return 0;
}

int devclient_parse_flowlog(const char *json, size_t len, struct devclient_flowlog *out, char *err,
			    size_t errlen)
{
	json_error_t jerr;
	json_t *o = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!o) {
		snprintf(err, errlen, "not JSON: %s", jerr.text);
		return -1;
	}
	int rc = flowlog_from_json(o, out, err, errlen);
	json_decref(o);
	return rc;
}

static bool lower_hex(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return s[n] == '\0';
}

int devclient_parse_answer(struct str body, struct devclient_answer *out, char *err, size_t errlen)
{
	json_error_t jerr;
	int rc = -1;
	int64_t poll_s = DEVICE_POLL_INTERVAL_S;
	json_t *o = json_loadb(body.p ? body.p : "", body.len, JSON_REJECT_DUPLICATES, &jerr);
	if (!json_is_object(o)) {
		snprintf(err, errlen, "the answer is not a JSON object");
		goto out;
	}
	json_t *changed = json_object_get(o, "Changed"), *exp = json_object_get(o, "Export");
	json_t *fl = json_object_get(o, "FlowLog");
	if (get_str(o, "SmartAGId", out->sag_id, sizeof(out->sag_id), true) < 0 ||
	    get_str(o, "ConfigVersion", out->config_version, sizeof(out->config_version), true) <
		0 ||
	    !lower_hex(out->config_version, DEVICE_CONFIG_VERSION_HEX) ||
	    !json_is_boolean(changed) || !json_is_boolean(exp) ||
	    (fl && !json_is_null(fl) && !json_is_object(fl))) {
		snprintf(err, errlen,
			 "the answer lacks SmartAGId, ConfigVersion, Changed, Export or FlowLog");
		goto out;
	}
	if (json_object_get(o, "PollIntervalSeconds") &&
	    get_int(o, "PollIntervalSeconds", 1, 3600, &poll_s) < 0) {
		snprintf(err, errlen, "the answer has a bad PollIntervalSeconds");
		goto out;
	}
	out->changed = json_is_true(changed);
	out->exports = json_is_true(exp);
	out->poll_interval_s = (int)poll_s;
	int64_t next_s = -1;
	if (json_object_get(o, "NextSyncSeconds") &&
	    get_int(o, "NextSyncSeconds", 0, 3600, &next_s) < 0) {
		snprintf(err, errlen, "the answer has a bad NextSyncSeconds");
		goto out;
	}
	out->next_sync_s = (int)next_s;
	out->has_flowlog = json_is_object(fl);
	if (out->has_flowlog && flowlog_from_json(fl, &out->flowlog, err, errlen) < 0)
		goto out;
	rc = 0;
out:
	json_decref(o);
	return rc;
}

/* ---- the sync ---- */

static json_t *sls_stats_json(const struct devclient_report *rep)
{
	json_t *o = json_object();
	json_object_set_new(o, "Delivered", json_integer((json_int_t)rep->sls_delivered));
	json_object_set_new(o, "Queued", json_integer((json_int_t)rep->sls_queued));
	json_object_set_new(o, "Dropped", json_integer((json_int_t)rep->sls_dropped));
	json_object_set_new(o, "LastError", json_string(rep->sls_last_error ? rep->sls_last_error : ""));
	json_object_set_new(o, "LastErrorTime", json_integer(rep->sls_last_error_ms));
	return o;
}

static char *report_json(const struct devclient_report *rep)
{
	json_t *o = json_object();
	json_object_set_new(o, "Model", json_string(rep->model));
	json_object_set_new(o, "SoftwareVersion", json_string(rep->software_version));
	if (rep->ha_state)
		json_object_set_new(o, "HaState", json_string(rep->ha_state));
	if (rep->config_version && rep->config_version[0])
		json_object_set_new(o, "ConfigVersion", json_string(rep->config_version));
	/* Read by servers that know it (docs/device-protocol.md); others ignore it. */
	if (rep->sls_delivery && rep->sls_delivery[0])
		json_object_set_new(o, "SlsDelivery", json_string(rep->sls_delivery));
	if (rep->wait_s > 0)
		json_object_set_new(o, "Wait", json_integer(rep->wait_s));
	if (rep->has_sls_stats)
		json_object_set_new(o, "SlsStats", sls_stats_json(rep));
	char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(o);
	return s;
}

/* Strictly increasing for this process: the clock in milliseconds, which a
 * restarted agent finds ahead of what it sent before, or one more than the
 * last when the clock has not moved (or went back). */
static int64_t next_sequence(struct devclient *c)
{
	int64_t now = time_now_ms();
	c->last_seq = now > c->last_seq ? now : c->last_seq + 1;
	return c->last_seq;
}

/* The signed request's header lines (§2). */
struct sync_headers {
	char line[6][DEVICE_HEX_SHA256 + 64];
	const char *v[6];
};

static void build_request(struct devclient *c, struct str body, struct sync_headers *h)
{
	char date[21], seq[24], sha[DEVICE_HEX_SHA256 + 1], sig[DEVICE_HEX_SHA256 + 1];
	struct buf sts = {0};
	time_format_iso8601(time_now_ms() / 1000, date);
	snprintf(seq, sizeof(seq), "%lld", (long long)next_sequence(c));
	device_body_sha256(body, sha);
	device_string_to_sign(&sts, STR_LIT("POST"), STR_LIT(DEVICE_SYNC_PATH), str_c(c->serial),
			      str_c(date), str_c(seq), str_c(sha));
	device_sign(str_c(c->secret), (struct str){sts.p, sts.len}, sig);
	buf_free(&sts);
	snprintf(h->line[0], sizeof(h->line[0]), "Content-Type: application/json");
	snprintf(h->line[1], sizeof(h->line[1]), "X-Sag-Serial-Number: %s", c->serial);
	snprintf(h->line[2], sizeof(h->line[2]), "X-Sag-Date: %s", date);
	snprintf(h->line[3], sizeof(h->line[3]), "X-Sag-Sequence: %s", seq);
	snprintf(h->line[4], sizeof(h->line[4]), "X-Sag-Content-Sha256: %s", sha);
	snprintf(h->line[5], sizeof(h->line[5]), "Authorization: " DEVICE_AUTH_ALGORITHM " Signature=%s",
		 sig);
	for (size_t i = 0; i < 6; i++)
		h->v[i] = h->line[i];
}

/* One exchange: the answer's status and body in ans. */
static enum transport_status exchange(struct devclient *c, struct str body, int wait_s,
				      struct transport_answer *ans, char *err, size_t errlen)
{
	struct sync_headers h;
	build_request(c, body, &h);
	struct transport_req rq = {.url = c->url,
				   .headers = h.v,
				   .nheaders = 6,
				   .body = body,
				   .connect_timeout_ms = DEVCLIENT_CONNECT_TIMEOUT_MS,
				   .timeout_ms = DEVCLIENT_CONNECT_TIMEOUT_MS + DEVCLIENT_IO_TIMEOUT_MS +
						 wait_s * 1000L,
				   .max_body = DEVCLIENT_MAX_RESPONSE,
				   .cancellable = true};
	char why[256] = "";
	enum transport_status st = transport_post(c->t, &rq, ans, why, sizeof(why));
	if (st == TRANSPORT_UNTRUSTED)
		snprintf(err, errlen, "the control plane %s is not trusted: %s (--ca-file)",
			 c->server.authority, why);
	else if (st != TRANSPORT_OK)
		snprintf(err, errlen, "cannot reach %s: %s", c->server.authority, why);
	return st;
}

static enum devclient_status classify_error(struct str body, struct devclient_answer *out,
					    char *err, size_t errlen)
{
	json_error_t jerr;
	json_t *o = json_loadb(body.p ? body.p : "", body.len, 0, &jerr);
	char msg[256] = "";
	if (json_is_object(o)) {
		get_str(o, "Code", out->code, sizeof(out->code), false);
		get_str(o, "Message", msg, sizeof(msg), false);
		json_t *last = json_object_get(o, "LastSequence");
		if (json_is_integer(last) && json_integer_value(last) > 0)
			out->last_sequence = json_integer_value(last);
	}
	json_decref(o);
	snprintf(err, errlen, "the control plane answered %d %s%s%s", out->http_status,
		 out->code[0] ? out->code : "(no code)", msg[0] ? ": " : "", msg);
	if (out->http_status == 401 && !strcmp(out->code, "Device.AuthFailed"))
		return DEVCLIENT_REFUSED;
	if (out->http_status >= 400 && out->http_status < 500 &&
	    strcmp(out->code, "Device.SequenceStale") && strcmp(out->code, "Device.Throttled"))
		return DEVCLIENT_REJECTED;
	return DEVCLIENT_UNREACHABLE;
}

enum devclient_status devclient_sync(struct devclient *c, const struct devclient_report *rep,
				     struct devclient_answer *out, char *err, size_t errlen)
{
	memset(out, 0, sizeof(*out));
	char *body = report_json(rep);
	struct transport_answer ans = {0};
	enum devclient_status st = DEVCLIENT_UNREACHABLE;
	int retried = 0;
again:;
	enum transport_status ts = exchange(c, str_c(body), rep->wait_s, &ans, err, errlen);
	if (ts == TRANSPORT_UNTRUSTED)
		st = DEVCLIENT_UNTRUSTED;
	if (ts != TRANSPORT_OK)
		goto out;
	struct str b = {ans.body.p, ans.body.len};
	out->http_status = (int)ans.status;
	memcpy(out->local_ip, ans.local_ip, sizeof(out->local_ip));
	if (out->http_status != 200) {
		st = classify_error(b, out, err, errlen);
		/* Our counter is behind the server's (the clock went back, or another
		 * process used this serial): move past it and retry once at once. */
		if (out->http_status == 409 && out->last_sequence > c->last_seq && !retried++) {
			c->last_seq = out->last_sequence;
			memset(out, 0, sizeof(*out));
			buf_reset(&ans.body);
			goto again;
		}
		goto out;
	}
	if (devclient_parse_answer(b, out, err, errlen) == 0)
		st = DEVCLIENT_OK;
out:
	free(body);
	buf_free(&ans.body);
	return st;
}

const struct devclient_url *devclient_server(const struct devclient *c)
{
	return &c->server;
}

void devclient_cancel(void)
{
	transport_cancel();
}

void devclient_uncancel(void)
{
	transport_uncancel();
}
