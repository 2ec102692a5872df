/* demo_rpc.h: a V1-signed RPC call. The body is built encoded, parsed back
 * with the server's own parameter parser and signed with the server's own
 * StringToSign, so client and server cannot disagree on the canonical form. */
#include "cli/demo_rpc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/ids.h"
#include "core/str.h"
#include "core/timeutil.h"
#include "core/xmalloc.h"
#include "device/transport.h"
#include "rpc/params.h"
#include "rpc/sig.h"

#define DEMO_RPC_VERSION "2018-03-13"
#define DEMO_RPC_NONCE_BYTES 16
#define DEMO_RPC_UNREACHABLE "unreachable: "

struct demo_rpc {
	struct transport *t;
	char *url, *akid, *secret;
};

struct demo_rpc *demo_rpc_new(const char *endpoint, const char *akid, const char *secret)
{
	struct demo_rpc *r = xcalloc(1, sizeof(*r));
	r->t = transport_new(NULL);
	struct buf u = {0};
	buf_printf(&u, "%s/", endpoint);
	r->url = buf_steal(&u);
	r->akid = xstrdup(akid);
	r->secret = xstrdup(secret);
	return r;
}

void demo_rpc_free(struct demo_rpc *r)
{
	if (!r)
		return;
	transport_free(r->t);
	free(r->url);
	free(r->akid);
	free(r->secret);
	free(r);
}

static void add_param(struct buf *b, const char *name, const char *value)
{
	if (b->len)
		buf_addc(b, '&');
	sig_percent_encode(b, str_c(name));
	buf_addc(b, '=');
	sig_percent_encode(b, str_c(value));
}

/* The signed form body of one call. */
static void signed_body(const struct demo_rpc *r, const char *action, const char *const *kv,
			struct buf *body)
{
	char ts[21], nonce[2 * DEMO_RPC_NONCE_BYTES + 1];
	time_format_iso8601(time_now_ms() / 1000, ts);
	ids_hex(nonce, DEMO_RPC_NONCE_BYTES);
	const char *common[] = {"Action",
				action,
				"Version",
				DEMO_RPC_VERSION,
				"Format",
				"JSON",
				"AccessKeyId",
				r->akid,
				"SignatureMethod",
				"HMAC-SHA1",
				"SignatureVersion",
				"1.0",
				"SignatureNonce",
				nonce,
				"Timestamp",
				ts,
				"RegionId",
				DEMO_RPC_REGION,
				NULL};
	for (const char *const *p = common; *p; p += 2)
		add_param(body, p[0], p[1]);
	for (const char *const *p = kv; p && *p; p += 2)
		add_param(body, p[0], p[1]);
	struct params *pp = params_new();
	char detail[PARAMS_DETAIL_MAX];
	struct buf sts = {0};
	char sig[SIG_V1_B64_LEN + 1] = "";
	if (params_parse(pp, (struct str){body->p, body->len}, PARAMS_BODY, detail) == ERR_OK) {
		sig_v1_string_to_sign(&sts, STR_LIT("POST"), pp);
		sig_v1_sign(str_c(r->secret), (struct str){sts.p, sts.len}, sig);
	}
	add_param(body, "Signature", sig);
	buf_free(&sts);
	params_free(pp);
}

/* The API's error: "Code: Message". */
static void api_error(const json_t *j, long status, char *err, size_t errlen)
{
	const char *code = json_string_value(json_object_get(j, "Code"));
	const char *msg = json_string_value(json_object_get(j, "Message"));
	snprintf(err, errlen, "%s: %s", code ? code : "HTTP", msg ? msg : "");
	if (!code)
		snprintf(err, errlen, "HTTP %ld", status);
}

json_t *demo_rpc_call(struct demo_rpc *r, const char *action, const char *const *kv, char *err,
		      size_t errlen)
{
	struct buf body = {0};
	signed_body(r, action, kv, &body);
	const char *hdrs[] = {"Content-Type: application/x-www-form-urlencoded",
			      "Accept: application/json"};
	struct transport_req rq = {.url = r->url,
				   .headers = hdrs,
				   .nheaders = 2,
				   .body = {body.p, body.len},
				   .connect_timeout_ms = DEMO_RPC_CONNECT_TIMEOUT_MS,
				   .timeout_ms = DEMO_RPC_TIMEOUT_MS,
				   .max_body = DEMO_RPC_MAX_BODY};
	struct transport_answer a = {0};
	char terr[256];
	json_t *j = NULL;
	if (transport_post(r->t, &rq, &a, terr, sizeof(terr)) != TRANSPORT_OK) {
		snprintf(err, errlen, DEMO_RPC_UNREACHABLE "%s", terr);
		goto out;
	}
	j = json_loadb(a.body.p ? a.body.p : "", a.body.len, 0, NULL);
	if (a.status != 200 || !json_is_object(j)) {
		api_error(j, a.status, err, errlen);
		json_decref(j);
		j = NULL;
	}
out:
	buf_free(&body);
	buf_free(&a.body);
	return j;
}

int demo_rpc_unreachable(const char *err)
{
	return !strncmp(err, DEMO_RPC_UNREACHABLE, sizeof(DEMO_RPC_UNREACHABLE) - 1);
}
