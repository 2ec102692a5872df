/* Log Service request signatures (spec log-service.md §1.2), for both sides:
 * the server verifies, the agent signs, from the same canonical strings.
 *
 * V1 ("LOG AK:SIG"): StringToSign = VERB\nContent-MD5\nContent-Type\nDate\n
 * + every x-log-* and x-acs-* header as "name:value\n" sorted by name + the path
 * and, when there is a query, "?" + the decoded "k=v" pairs sorted and joined
 * by "&"; base64(HMAC-SHA1 or HMAC-SHA256 (x-log-signaturemethod) keyed with
 * the secret).
 *
 * V4 ("SLS4-HMAC-SHA256 Credential=AK/DATE/REGION/sls/aliyun_v4_request,
 * Signature=HEX"): a canonical request over method, path, the encoded query,
 * the x-log-*, x-acs-*, host and content-type headers and the body's SHA-256,
 * signed with a key derived from "aliyun_v4" + secret, the date, the region
 * and "sls". */
#ifndef SLS_SIG_H
#define SLS_SIG_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/str.h"

#define SLS_SIG_MAX_HEADERS 64    /* headers of a request we look at */
#define SLS_SIG_MAX_QUERY 64      /* query parameters of a request */
#define SLS_SIG_V1_MAX_B64 45     /* base64 of a 32-byte MAC, NUL included */
#define SLS_SIG_V4_HEX 64         /* hex of a 32-byte MAC or digest */
#define SLS_SIG_MD5_HEX 32        /* Content-MD5: uppercase hex */
#define SLS_SIG_V4_ALGORITHM "SLS4-HMAC-SHA256"
#define SLS_SIG_V4_SERVICE "sls"
#define SLS_SIG_V4_TERMINATOR "aliyun_v4_request"
#define SLS_SIG_MAX_REGION 64
#define SLS_SIG_MAX_AKID 128

/* A header (name lowercase) or a decoded query parameter. */
struct sls_kv {
	struct str k, v;
};

/* What both signatures are computed over. headers: every request header, names
 * lowercase (the x-log-/x-acs- filter is ours); query: decoded parameters in
 * any order. */
struct sls_sig_input {
	struct str method, path;
	const struct sls_kv *headers;
	size_t nheaders;
	const struct sls_kv *query;
	size_t nquery;
};

enum sls_sig_alg { SLS_SIG_HMAC_SHA1, SLS_SIG_HMAC_SHA256 };

/* The header's value (name lowercase), or STR_NULL. */
struct str sls_sig_header(const struct sls_sig_input *in, const char *name);

/* x-log-signaturemethod: absent or "hmac-sha1" -> SHA1, "hmac-sha256" -> SHA256
 * (case-insensitive); -1 for anything else. */
int sls_sig_method(struct str value, enum sls_sig_alg *alg);

/* Query ordering of the canonical resource: @alicloud/log sorts the "k=v"
 * strings, gateway-sls and the Go SDK sort by key; the two differ only for keys
 * that are prefixes of each other followed by a byte below '='. */
enum sls_sig_order { SLS_SIG_SORT_PAIRS, SLS_SIG_SORT_KEYS };

void sls_v1_string_to_sign(struct buf *out, const struct sls_sig_input *in,
			   enum sls_sig_order order);
/* base64 MAC of sts, NUL-terminated. */
void sls_v1_sign(enum sls_sig_alg alg, struct str secret, struct str sts,
		 char out[SLS_SIG_V1_MAX_B64]);
/* Splits "LOG AK:SIG". 0, or -1 when the header is not of that form. */
int sls_v1_parse_auth(struct str authz, struct str *akid, struct str *sig);
/* Constant-time check of sig against both query orders (when they differ). */
bool sls_v1_verify(const struct sls_sig_input *in, enum sls_sig_alg alg, struct str secret,
		   struct str sig);

/* A parsed V4 Authorization; slices point into the header. */
struct sls_v4_auth {
	struct str akid, date, region, signature; /* date: YYYYMMDD */
};
int sls_v4_parse_auth(struct str authz, struct sls_v4_auth *out);

/* Query-value encoding of the V4 canonical query: RFC 3986 (unreserved kept,
 * the rest %XX), or what the JavaScript client produces — encodeURIComponent
 * with only the first '*' replaced by %2A (String.replace), which leaves
 * !'()* after it as they are. The server accepts either. */
enum sls_v4_encoding { SLS_V4_RFC3986, SLS_V4_JS_QUIRK };

void sls_v4_canonical_request(struct buf *out, const struct sls_sig_input *in,
			      enum sls_v4_encoding enc, struct str content_sha256);
/* hex(HMAC(signing key, StringToSign)) over a canonical request. datetime is
 * x-log-date (YYYYMMDDTHHMMSSZ); its first 8 bytes are the scope's date. */
void sls_v4_sign(struct str secret, struct str region, struct str datetime,
		 struct str canonical, char out[SLS_SIG_V4_HEX + 1]);
bool sls_v4_verify(const struct sls_sig_input *in, const struct sls_v4_auth *a,
		   struct str secret);

/* Content-MD5 as SLS clients send it: uppercase hex MD5. */
void sls_md5_hex_upper(struct str body, char out[SLS_SIG_MD5_HEX + 1]);
/* Lowercase hex SHA-256 (x-log-content-sha256). */
void sls_sha256_hex(struct str body, char out[SLS_SIG_V4_HEX + 1]);

/* "Tue, 01 Dec 2026 07:36:47 GMT" (RFC 1123, GMT only) -> epoch seconds. */
int sls_parse_http_date(struct str s, int64_t *epoch);
/* The same form from epoch seconds (30 bytes with the NUL). */
void sls_format_http_date(int64_t epoch, char out[30]);
/* "20261201T073757Z" -> epoch seconds. */
int sls_parse_v4_date(struct str s, int64_t *epoch);

#endif
