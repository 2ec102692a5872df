#include "rpc/sig.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stdlib.h>

#include "core/hmac.h"
#include "core/xmalloc.h"

#define SIG_KEY_STACK 256 /* secret + "&" up to this many bytes needs no heap */

void sig_percent_encode(struct buf *out, struct str s)
{
	static const char hex[] = "0123456789ABCDEF";
	/* RFC 3986 unreserved characters stay; a table, since every byte of every
	 * signed request passes here twice. */
	static const bool keep[256] = {['A' ... 'Z'] = true, ['a' ... 'z'] = true,
				       ['0' ... '9'] = true, ['-'] = true,       ['_'] = true,
				       ['.'] = true,         ['~'] = true};
	buf_reserve(out, s.len * 3);
	char *o = out->p + out->len;
	for (size_t i = 0; i < s.len; i++) {
		unsigned char c = (unsigned char)s.p[i];
		if (keep[c]) {
			*o++ = (char)c;
		} else {
			*o++ = '%';
			*o++ = hex[c >> 4];
			*o++ = hex[c & 15];
		}
	}
	out->len = (size_t)(o - out->p);
	out->p[out->len] = '\0';
}

static int cmp_param(const void *a, const void *b)
{
	const struct param *x = *(const struct param *const *)a, *y = *(const struct param *const *)b;
	size_t n = x->name.len < y->name.len ? x->name.len : y->name.len;
	int c = n ? memcmp(x->name.p, y->name.p, n) : 0;
	if (c != 0)
		return c;
	return (x->name.len > y->name.len) - (x->name.len < y->name.len);
}

/* The sorted "enc(name)=enc(value)&..." string of §5.3 step 4 / §5.4 step 3.
 * query_only selects V3's rule; V1 covers everything but Signature. */
static void canonical_query(struct buf *out, const struct params *p, bool query_only)
{
	size_t n = params_count(p), k = 0;
	const struct param **v = xcalloc(n ? n : 1, sizeof(*v));
	for (size_t i = 0; i < n; i++) {
		const struct param *x = params_at(p, i);
		if (query_only ? x->src != PARAMS_QUERY : str_eqc(x->name, "Signature"))
			continue;
		v[k++] = x;
	}
	qsort(v, k, sizeof(*v), cmp_param);
	for (size_t i = 0; i < k; i++) {
		if (i)
			buf_addc(out, '&');
		sig_percent_encode(out, v[i]->name);
		buf_addc(out, '=');
		sig_percent_encode(out, v[i]->value);
	}
	free(v);
	buf_reserve(out, 0);
}

void sig_v1_string_to_sign(struct buf *out, struct str method, const struct params *p)
{
	struct buf cq = {0};
	canonical_query(&cq, p, false);
	buf_add(out, method.p, method.len);
	buf_adds(out, "&%2F&");
	sig_percent_encode(out, (struct str){cq.p, cq.len});
	buf_free(&cq);
}

void sig_v1_sign(struct str secret, struct str sts, char out[SIG_V1_B64_LEN + 1])
{
	/* The key is secret + "&" (spec §5.3 step 6); on the stack when it fits. */
	unsigned char stack_key[SIG_KEY_STACK], mac[HMAC_SHA1_LEN];
	unsigned char *key = secret.len < sizeof(stack_key) ? stack_key : xmalloc(secret.len + 1);
	if (secret.len)
		memcpy(key, secret.p, secret.len);
	key[secret.len] = '&';
	hmac_sha1(key, secret.len + 1, sts.p, sts.len, mac);
	OPENSSL_cleanse(key, secret.len + 1);
	if (key != stack_key)
		free(key);
	EVP_EncodeBlock((unsigned char *)out, mac, (int)sizeof(mac));
}

bool sig_v1_verify(struct str method, const struct params *p, struct str secret)
{
	struct str got = params_get(p, "Signature");
	if (got.len != SIG_V1_B64_LEN)
		return false;
	struct buf sts = {0};
	char want[SIG_V1_B64_LEN + 1];
	sig_v1_string_to_sign(&sts, method, p);
	sig_v1_sign(secret, (struct str){sts.p, sts.len}, want);
	buf_free(&sts);
	return CRYPTO_memcmp(want, got.p, SIG_V1_B64_LEN) == 0;
}

/* ---- V3 ---------------------------------------------------------------- */

/* Consumes `lit` at *s when present. */
static bool eat(struct str *s, const char *lit)
{
	struct str l = str_c(lit);
	if (s->len < l.len || memcmp(s->p, l.p, l.len) != 0)
		return false;
	s->p += l.len;
	s->len -= l.len;
	return true;
}

/* The bytes up to (not including) the next `stop` or the end. */
static struct str take_until(struct str *s, char stop)
{
	const char *e = memchr(s->p, stop, s->len);
	size_t n = e ? (size_t)(e - s->p) : s->len;
	struct str r = {s->p, n};
	s->p += n;
	s->len -= n;
	return r;
}

static bool is_header_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
}

/* Splits "a;b;c" into names, each [a-z0-9-]+, strictly ascending (so sorted
 * and unique, as clients send them). */
static int split_signed_headers(struct sig_v3_auth *a)
{
	struct str s = a->signed_headers;
	a->nheaders = 0;
	if (s.len == 0)
		return -1;
	for (;;) {
		struct str h = take_until(&s, ';');
		if (h.len == 0 || h.len > SIG_V3_MAX_HEADER_NAME ||
		    a->nheaders >= SIG_V3_MAX_SIGNED_HEADERS)
			return -1;
		for (size_t i = 0; i < h.len; i++)
			if (!is_header_char((unsigned char)h.p[i]))
				return -1;
		if (a->nheaders > 0) {
			struct str prev = a->headers[a->nheaders - 1];
			size_t n = prev.len < h.len ? prev.len : h.len;
			int c = memcmp(prev.p, h.p, n);
			if (c > 0 || (c == 0 && prev.len >= h.len))
				return -1;
		}
		a->headers[a->nheaders++] = h;
		if (s.len == 0)
			return 0;
		s.p++, s.len--; /* the ';' */
		if (s.len == 0)
			return -1;
	}
}

static bool is_credential_char(unsigned char c)
{
	return c > 0x20 && c < 0x7f && c != ',' && c != '=' && c != ';';
}

int sig_v3_parse_auth(struct str h, struct sig_v3_auth *out)
{
	memset(out, 0, sizeof(*out));
	if (h.len > SIG_V3_MAX_AUTH || !eat(&h, SIG_V3_ALGORITHM " Credential="))
		return -1;
	out->credential = take_until(&h, ',');
	if (out->credential.len == 0 || out->credential.len > SIG_V3_MAX_CREDENTIAL)
		return -1;
	for (size_t i = 0; i < out->credential.len; i++)
		if (!is_credential_char((unsigned char)out->credential.p[i]))
			return -1;
	if (!eat(&h, ",SignedHeaders="))
		return -1;
	out->signed_headers = take_until(&h, ',');
	if (split_signed_headers(out) < 0 || !eat(&h, ",Signature="))
		return -1;
	out->signature = h;
	if (h.len != SIG_V3_HEX_LEN)
		return -1;
	for (size_t i = 0; i < h.len; i++) {
		unsigned char c = (unsigned char)h.p[i];
		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
			return -1;
	}
	return 0;
}

bool sig_v3_required_signed(const struct sig_v3_auth *a)
{
	static const char *const required[] = {"host", "x-acs-action", "x-acs-version", "x-acs-date",
					       "x-acs-signature-nonce", "x-acs-content-sha256"};
	for (size_t r = 0; r < sizeof(required) / sizeof(required[0]); r++) {
		bool found = false;
		for (size_t i = 0; i < a->nheaders && !found; i++)
			found = str_eqc(a->headers[i], required[r]);
		if (!found)
			return false;
	}
	return true;
}

int sig_v3_canonical_request(struct buf *out, struct str method, const struct params *p,
			     const struct sig_v3_auth *a, sig_header_fn hdr, void *hdr_arg,
			     struct str payload_sha256_hex)
{
	buf_add(out, method.p, method.len);
	buf_adds(out, "\n/\n");
	canonical_query(out, p, true);
	buf_addc(out, '\n');
	for (size_t i = 0; i < a->nheaders; i++) {
		char name[SIG_V3_MAX_HEADER_NAME + 1];
		memcpy(name, a->headers[i].p, a->headers[i].len);
		name[a->headers[i].len] = '\0';
		struct str v = hdr(hdr_arg, name);
		if (v.p == NULL)
			return -1;
		v = str_trim(v);
		buf_add(out, name, a->headers[i].len);
		buf_addc(out, ':');
		buf_add(out, v.p, v.len);
		buf_addc(out, '\n');
	}
	buf_addc(out, '\n');
	buf_add(out, a->signed_headers.p, a->signed_headers.len);
	buf_addc(out, '\n');
	buf_add(out, payload_sha256_hex.p, payload_sha256_hex.len);
	return 0;
}

void sig_sha256_hex(struct str data, char out[SIG_V3_HEX_LEN + 1])
{
	unsigned char d[SHA256_DIGEST_LENGTH];
	SHA256((const unsigned char *)data.p, data.len, d);
	str_hex(d, sizeof(d), out, false);
}

void sig_v3_sign(struct str secret, struct str canonical, char out[SIG_V3_HEX_LEN + 1])
{
	char sts[sizeof(SIG_V3_ALGORITHM) + SIG_V3_HEX_LEN + 1];
	unsigned char mac[HMAC_SHA256_LEN];
	size_t alen = sizeof(SIG_V3_ALGORITHM) - 1;
	memcpy(sts, SIG_V3_ALGORITHM "\n", alen + 1);
	sig_sha256_hex(canonical, sts + alen + 1);
	hmac_sha256(secret.p, secret.len, sts, alen + 1 + SIG_V3_HEX_LEN, mac);
	str_hex(mac, sizeof(mac), out, false);
}

bool sig_v3_verify(const struct sig_v3_auth *a, struct str canonical, struct str secret)
{
	char want[SIG_V3_HEX_LEN + 1];
	if (a->signature.len != SIG_V3_HEX_LEN)
		return false;
	sig_v3_sign(secret, canonical, want);
	return CRYPTO_memcmp(want, a->signature.p, SIG_V3_HEX_LEN) == 0;
}
