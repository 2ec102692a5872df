/* Alibaba Cloud request signatures (spec §5.3 V1 HMAC-SHA1, §5.4 V3
 * ACS3-HMAC-SHA256). The server never signs the raw wire string: parameters are
 * decoded first (rpc/params) and re-encoded here with the §5.3 encoder, which is
 * what every client does, whatever its own escaping on the wire. */
#ifndef RPC_SIG_H
#define RPC_SIG_H
#include <stdbool.h>
#include <stddef.h>

#include "core/str.h"
#include "rpc/params.h"

#define SIG_V1_B64_LEN 28           /* base64 of a 20-byte HMAC-SHA1 */
#define SIG_V3_HEX_LEN 64           /* hex of a 32-byte HMAC-SHA256 */
#define SIG_V3_MAX_AUTH 4096        /* Authorization header bytes */
#define SIG_V3_MAX_CREDENTIAL 128   /* AccessKeyId bytes */
#define SIG_V3_MAX_SIGNED_HEADERS 32
#define SIG_V3_MAX_HEADER_NAME 64
#define SIG_V3_ALGORITHM "ACS3-HMAC-SHA256"

/* §5.3 percent-encoding: keep A-Z a-z 0-9 - _ . ~, everything else %XX uppercase. */
void sig_percent_encode(struct buf *out, struct str s);

/* V1 StringToSign over every parameter except Signature (§5.3 steps 1-5). */
void sig_v1_string_to_sign(struct buf *out, struct str method, const struct params *p);
/* base64(HMAC-SHA1(secret + "&", sts)) into out (NUL-terminated). */
void sig_v1_sign(struct str secret, struct str sts, char out[SIG_V1_B64_LEN + 1]);
/* Constant-time comparison of the request's Signature with our calculation. */
bool sig_v1_verify(struct str method, const struct params *p, struct str secret);

/* A parsed Authorization header; slices point into the header value. */
struct sig_v3_auth {
	struct str credential;     /* the AccessKeyId */
	struct str signed_headers; /* "a;b;c", lowercase, sorted, unique (checked) */
	struct str signature;      /* 64 lowercase hex */
	size_t nheaders;
	struct str headers[SIG_V3_MAX_SIGNED_HEADERS];
};

/* Strict parse of "ACS3-HMAC-SHA256 Credential=..,SignedHeaders=..,Signature=..".
 * Returns 0, or -1 when anything is off (the caller answers IncompleteSignature). */
int sig_v3_parse_auth(struct str header, struct sig_v3_auth *out);
/* True when every header V3 must sign (host, x-acs-action, x-acs-version,
 * x-acs-date, x-acs-signature-nonce, x-acs-content-sha256) is in SignedHeaders. */
bool sig_v3_required_signed(const struct sig_v3_auth *a);

typedef struct str (*sig_header_fn)(void *arg, const char *lowercase_name);

/* The canonical request of §5.4 step 6 (query parameters only). Returns 0, or
 * -1 when a signed header is absent from the request. */
int sig_v3_canonical_request(struct buf *out, struct str method, const struct params *p,
			     const struct sig_v3_auth *a, sig_header_fn hdr, void *hdr_arg,
			     struct str payload_sha256_hex);
/* Lowercase hex SHA-256 of data into out (NUL-terminated). */
void sig_sha256_hex(struct str data, char out[SIG_V3_HEX_LEN + 1]);
/* lowercase hex HMAC-SHA256(secret, "ACS3-HMAC-SHA256\n" + hex(sha256(canonical))). */
void sig_v3_sign(struct str secret, struct str canonical, char out[SIG_V3_HEX_LEN + 1]);
/* Constant-time comparison of a->signature with our calculation over canonical. */
bool sig_v3_verify(const struct sig_v3_auth *a, struct str canonical, struct str secret);

#endif
