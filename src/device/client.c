/* The device channel, client side: one blocking HTTP/1.1 exchange per sync
 * (Connection: close), bounded in time and size, signed as docs/device-
 * protocol.md §3 says. A fresh connection each time keeps the client free of
 * keep-alive state; at one sync a second per device that costs nothing. */
#include "device/client.h"

#include <errno.h>
#include <stdatomic.h>
#include <fcntl.h>
#include <jansson.h>
#include <netdb.h>
#include <openssl/crypto.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/log.h"
#include "core/num.h"
#include "core/timeutil.h"
#include "core/xmalloc.h"

#define DEVCLIENT_DEFAULT_PORT "80"
#define DEVCLIENT_PORT_MAX 5 /* digits */
#define DEVCLIENT_READ_CHUNK 4096

struct devclient {
	char host[DEVCLIENT_HOST_MAX + 1];
	char port[DEVCLIENT_PORT_MAX + 1];
	char host_header[DEVCLIENT_HOST_MAX + DEVCLIENT_PORT_MAX + 4];
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

/* http://HOST[:PORT][/] with HOST a name, an IPv4 address or [IPv6]. */
static int parse_url(struct devclient *c, struct str u, char *err, size_t errlen)
{
	static const char scheme[] = "http://";
	if (u.len > DEVCLIENT_URL_MAX) {
		snprintf(err, errlen, "the control-plane URL is longer than %d bytes",
			 DEVCLIENT_URL_MAX);
		return -1;
	}
	if (u.len >= 8 && str_caseeq((struct str){u.p, 8}, "https://")) {
		snprintf(err, errlen,
			 "https:// is not supported (no TLS in the agent; see docs/agent.md)");
		return -1;
	}
	if (u.len < sizeof(scheme) - 1 ||
	    !str_caseeq((struct str){u.p, sizeof(scheme) - 1}, scheme)) {
		snprintf(err, errlen, "the control-plane URL must start with http://");
		return -1;
	}
	struct str rest = {u.p + sizeof(scheme) - 1, u.len - (sizeof(scheme) - 1)};
	if (rest.len && rest.p[rest.len - 1] == '/')
		rest.len--;
	struct str host = rest, port = STR_LIT(DEVCLIENT_DEFAULT_PORT);
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
	memcpy(c->host, host.p, host.len);
	c->host[host.len] = '\0';
	snprintf(c->port, sizeof(c->port), "%d", (int)pn);
	snprintf(c->host_header, sizeof(c->host_header), strchr(c->host, ':') ? "[%s]:%s" : "%s:%s",
		 c->host, c->port);
	return 0;
bad:
	snprintf(err, errlen,
		 "the control-plane URL must be http://HOST[:PORT] (a path is not allowed)");
	return -1;
}

struct devclient *devclient_new(const char *url, const char *serial, const char *secret, char *err,
				size_t errlen)
{
	struct devclient *c = xcalloc(1, sizeof(*c));
	struct str sn = str_c(serial), key = str_c(secret);
	if (parse_url(c, str_c(url), err, errlen) < 0)
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
	free(c);
}

/* ---- the socket ---- */

static int64_t remaining_ms(int64_t deadline_us)
{
	int64_t left = (deadline_us - time_mono_us()) / 1000;
	return left > 0 ? left : 0;
}

/* devclient_cancel(): one flag for the process, checked between poll slices
 * (the agent has one client; the libcurl client will replace this). */
static atomic_bool devclient_cancelled;
#define DEVCLIENT_SLICE_MS 200

void devclient_cancel(void)
{
	atomic_store(&devclient_cancelled, true);
}

/* Waits until fd is ready for ev; 0, or -1 on timeout, cancel or error (errno set). */
static int wait_fd(int fd, short ev, int64_t deadline_us)
{
	for (;;) {
		struct pollfd p = {fd, ev, 0};
		int64_t ms = remaining_ms(deadline_us);
		if (ms == 0 || atomic_load(&devclient_cancelled)) {
			errno = ms == 0 ? ETIMEDOUT : ECANCELED;
			return -1;
		}
		int rc = poll(&p, 1, (int)(ms < DEVCLIENT_SLICE_MS ? ms : DEVCLIENT_SLICE_MS));
		if (rc > 0)
			return 0;
		if (rc == 0)
			continue;
		if (errno != EINTR)
			return -1;
	}
}

static int connect_one(const struct addrinfo *ai, int64_t deadline_us)
{
	int fd =
	    socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
	if (fd < 0)
		return -1;
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
		return fd;
	int soerr = 0;
	socklen_t sl = sizeof(soerr);
	if (errno == EINPROGRESS && wait_fd(fd, POLLOUT, deadline_us) == 0 &&
	    getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) == 0 && soerr == 0)
		return fd;
	int saved = soerr ? soerr : errno;
	close(fd);
	errno = saved;
	return -1;
}

static int dial(const struct devclient *c, char *err, size_t errlen)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_family = AF_UNSPEC}, *res = NULL;
	int rc = getaddrinfo(c->host, c->port, &hints, &res);
	if (rc != 0) {
		snprintf(err, errlen, "cannot resolve %s: %s", c->host, gai_strerror(rc));
		return -1;
	}
	int64_t deadline = time_mono_us() + DEVCLIENT_CONNECT_TIMEOUT_MS * 1000LL;
	int fd = -1;
	for (const struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next)
		fd = connect_one(ai, deadline);
	if (fd < 0)
		snprintf(err, errlen, "cannot connect to %s: %s", c->host_header, strerror(errno));
	freeaddrinfo(res);
	return fd;
}

static int send_all(int fd, const char *p, size_t len, int64_t deadline_us)
{
	while (len) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
		if (n > 0) {
			p += n;
			len -= (size_t)n;
		} else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
			if (wait_fd(fd, POLLOUT, deadline_us) < 0)
				return -1;
		} else {
			return -1;
		}
	}
	return 0;
}

/* Reads until a whole response, the server's close, the size cap or the deadline. */
static int recv_response(int fd, struct buf *b, bool *closed, int64_t deadline_us, char *err,
			 size_t errlen)
{
	*closed = false;
	while (!devclient_response_complete((struct str){b->p, b->len})) {
		if (b->len >= DEVCLIENT_MAX_RESPONSE) {
			snprintf(err, errlen, "the answer exceeds %d bytes",
				 DEVCLIENT_MAX_RESPONSE);
			return -1;
		}
		if (wait_fd(fd, POLLIN, deadline_us) < 0) {
			snprintf(err, errlen, "no answer within %d ms: %s", DEVCLIENT_IO_TIMEOUT_MS,
				 strerror(errno));
			return -1;
		}
		size_t want = DEVCLIENT_MAX_RESPONSE - b->len;
		if (want > DEVCLIENT_READ_CHUNK)
			want = DEVCLIENT_READ_CHUNK;
		buf_reserve(b, want);
		/* Never more than the cap, whatever buf_reserve allocated. */
		ssize_t n = recv(fd, b->p + b->len, want, 0);
		if (n == 0) {
			*closed = true;
			return 0;
		}
		if (n < 0 && errno != EAGAIN && errno != EINTR) {
			snprintf(err, errlen, "reading the answer: %s", strerror(errno));
			return -1;
		}
		if (n > 0)
			b->len += (size_t)n;
	}
	return 0;
}

/* ---- HTTP/1.1 response parsing ---- */

static const char *find_crlf2(struct str s)
{
	for (size_t i = 0; i + 3 < s.len; i++)
		if (s.p[i] == '\r' && s.p[i + 1] == '\n' && s.p[i + 2] == '\r' &&
		    s.p[i + 3] == '\n')
			return s.p + i;
	return NULL;
}

/* One header line: Content-Length is used, chunked coding is refused. */
static int header_line(struct str line, int64_t *clen, char *err, size_t errlen)
{
	const char *colon = memchr(line.p, ':', line.len);
	bool ctl = false;
	for (size_t i = 0; i < line.len; i++)
		ctl |= ((unsigned char)line.p[i] < 0x20 && line.p[i] != '\t') || line.p[i] == 0x7f;
	if (!colon || ctl) {
		snprintf(err, errlen, "malformed header line in the answer");
		return -1;
	}
	struct str name = {line.p, (size_t)(colon - line.p)};
	struct str val = str_trim((struct str){colon + 1, (size_t)(line.p + line.len - colon - 1)});
	if (str_caseeq(name, "Content-Length")) {
		if (*clen >= 0 || num_parse_i64(val, 0, DEVCLIENT_MAX_RESPONSE, clen) < 0) {
			snprintf(err, errlen, "bad or repeated Content-Length in the answer");
			return -1;
		}
	} else if (str_caseeq(name, "Transfer-Encoding") && !str_caseeq(val, "identity")) {
		snprintf(err, errlen,
			 "the answer uses Transfer-Encoding, which this client does not decode");
		return -1;
	}
	return 0;
}

int devclient_parse_response(struct str resp, bool complete, int *status, struct str *body,
			     char *err, size_t errlen)
{
	const char *end = find_crlf2(resp);
	if (!end) {
		snprintf(err, errlen,
			 complete ? "the answer ended inside its headers" : "incomplete");
		return -1;
	}
	struct str head = {resp.p, (size_t)(end - resp.p) + 2}; /* every line ends in CRLF */
	const char *eol = memchr(head.p, '\r', head.len);
	struct str sl = {head.p, (size_t)(eol - head.p)};
	int64_t code;
	if (sl.len < 12 || memcmp(sl.p, "HTTP/1.", 7) != 0 || sl.p[8] != ' ' ||
	    num_parse_i64((struct str){sl.p + 9, 3}, 100, 599, &code) < 0 ||
	    (sl.len > 12 && sl.p[12] != ' ')) {
		snprintf(err, errlen, "the answer is not HTTP/1.x");
		return -1;
	}
	int64_t clen = -1;
	int lines = 0;
	for (const char *p = eol + 2; p < head.p + head.len;) {
		const char *e = memchr(p, '\r', (size_t)(head.p + head.len - p));
		if (!e || e + 1 >= head.p + head.len || e[1] != '\n' ||
		    ++lines > DEVCLIENT_MAX_HEADER_LINES) {
			snprintf(err, errlen, "malformed or too many header lines in the answer");
			return -1;
		}
		if (header_line((struct str){p, (size_t)(e - p)}, &clen, err, errlen) < 0)
			return -1;
		p = e + 2;
	}
	const char *b = end + 4;
	size_t avail = (size_t)(resp.p + resp.len - b);
	if (clen >= 0 && avail >= (size_t)clen) {
		*body = (struct str){b, (size_t)clen};
	} else if (clen < 0 && complete) {
		*body = (struct str){b, avail};
	} else {
		snprintf(err, errlen,
			 complete ? "the answer is shorter than its Content-Length" : "incomplete");
		return -1;
	}
	*status = (int)code;
	return 0;
}

bool devclient_response_complete(struct str resp)
{
	int status;
	struct str body;
	char err[8];
	return devclient_parse_response(resp, false, &status, &body, err, sizeof(err)) == 0;
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
	    get_str(o, "LogstoreName", f->logstore, sizeof(f->logstore), false) < 0) {
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
	if (rep->sls_not_delivered)
		json_object_set_new(o, "SlsDelivery", json_string("not-delivered"));
	if (rep->wait_s > 0)
		json_object_set_new(o, "Wait", json_integer(rep->wait_s));
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

static void build_request(struct devclient *c, struct str body, struct buf *req)
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
	buf_printf(
	    req,
	    "POST " DEVICE_SYNC_PATH " HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
	    "Content-Length: %zu\r\nX-Sag-Serial-Number: %s\r\nX-Sag-Date: %s\r\nX-Sag-Sequence: "
	    "%s\r\n"
	    "X-Sag-Content-Sha256: %s\r\nAuthorization: " DEVICE_AUTH_ALGORITHM " Signature=%s\r\n"
	    "Connection: close\r\nUser-Agent: sagflow-agent/" SAGFLOW_VERSION "\r\n\r\n",
	    c->host_header, body.len, c->serial, date, seq, sha, sig);
	buf_add(req, body.p, body.len);
}

/* One exchange: the raw answer in resp. */
static int exchange(struct devclient *c, struct str body, int wait_s, struct buf *resp,
		    bool *closed, char *err, size_t errlen)
{
	struct buf req = {0};
	int fd = dial(c, err, errlen);
	if (fd < 0)
		return -1;
	build_request(c, body, &req);
	int64_t deadline = time_mono_us() + DEVCLIENT_IO_TIMEOUT_MS * 1000LL + wait_s * 1000000LL;
	int rc = send_all(fd, req.p, req.len, deadline);
	if (rc < 0)
		snprintf(err, errlen, "sending to %s: %s", c->host_header, strerror(errno));
	else
		rc = recv_response(fd, resp, closed, deadline, err, errlen);
	buf_free(&req);
	close(fd);
	return rc;
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
	struct buf resp = {0};
	bool closed = false;
	enum devclient_status st = DEVCLIENT_UNREACHABLE;
	struct str b;
	int retried = 0;
again:
	if (exchange(c, str_c(body), rep->wait_s, &resp, &closed, err, errlen) < 0)
		goto out;
	if (devclient_parse_response((struct str){resp.p, resp.len}, true, &out->http_status, &b,
				     err, errlen) < 0)
		goto out;
	if (out->http_status != 200) {
		st = classify_error(b, out, err, errlen);
		/* Our counter is behind the server's (the clock went back, or another
		 * process used this serial): move past it and retry once at once. */
		if (out->http_status == 409 && out->last_sequence > c->last_seq && !retried++) {
			c->last_seq = out->last_sequence;
			memset(out, 0, sizeof(*out));
			buf_reset(&resp);
			goto again;
		}
		goto out;
	}
	if (devclient_parse_answer(b, out, err, errlen) == 0)
		st = DEVCLIENT_OK;
out:
	free(body);
	buf_free(&resp);
	return st;
}
