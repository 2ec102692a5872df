#include "sls/sig.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "core/hmac.h"

#define SLS_SIG_V4_KEY_PREFIX "aliyun_v4"
#define SLS_SIG_MAX_SECRET 256

struct str sls_sig_header(const struct sls_sig_input *in, const char *name)
{
	for (size_t i = 0; i < in->nheaders; i++)
		if (str_eqc(in->headers[i].k, name))
			return in->headers[i].v;
	return STR_NULL;
}

int sls_sig_method(struct str v, enum sls_sig_alg *alg)
{
	if (!v.p || str_caseeq(v, "hmac-sha1"))
		*alg = SLS_SIG_HMAC_SHA1;
	else if (str_caseeq(v, "hmac-sha256"))
		*alg = SLS_SIG_HMAC_SHA256;
	else
		return -1;
	return 0;
}

static int str_cmp(struct str a, struct str b)
{
	size_t n = a.len < b.len ? a.len : b.len;
	int c = n ? memcmp(a.p, b.p, n) : 0;
	return c ? c : (a.len > b.len) - (a.len < b.len);
}

static int kv_cmp_key(const void *x, const void *y)
{
	const struct sls_kv *a = *(const struct sls_kv *const *)x, *b = *(const struct sls_kv *const *)y;
	int c = str_cmp(a->k, b->k);
	return c ? c : str_cmp(a->v, b->v);
}

/* Compares "k=v" as one string without building it. */
static int kv_cmp_pair(const void *x, const void *y)
{
	const struct sls_kv *a = *(const struct sls_kv *const *)x, *b = *(const struct sls_kv *const *)y;
	size_t al = a->k.len + 1 + a->v.len, bl = b->k.len + 1 + b->v.len;
	for (size_t i = 0; i < al && i < bl; i++) {
		unsigned char ca = (unsigned char)(i < a->k.len ? a->k.p[i]
					: i == a->k.len ? '=' : a->v.p[i - a->k.len - 1]);
		unsigned char cb = (unsigned char)(i < b->k.len ? b->k.p[i]
					: i == b->k.len ? '=' : b->v.p[i - b->k.len - 1]);
		if (ca != cb)
			return ca < cb ? -1 : 1;
	}
	return (al > bl) - (al < bl);
}

static bool is_signed_v1(struct str name)
{
	return (name.len >= 6 && !memcmp(name.p, "x-log-", 6)) ||
	       (name.len >= 6 && !memcmp(name.p, "x-acs-", 6));
}

/* Pointers to the entries of v that keep(), sorted by cmp; returns how many. */
static size_t sorted_view(const struct sls_kv *v, size_t n, bool (*keep)(struct str),
			  int (*cmp)(const void *, const void *), const struct sls_kv **out)
{
	size_t m = 0;
	for (size_t i = 0; i < n && m < SLS_SIG_MAX_HEADERS; i++)
		if (!keep || keep(v[i].k))
			out[m++] = &v[i];
	qsort(out, m, sizeof(out[0]), cmp);
	return m;
}

static void add_line(struct buf *b, struct str s)
{
	buf_add(b, s.p ? s.p : "", s.len);
	buf_addc(b, '\n');
}

void sls_v1_string_to_sign(struct buf *out, const struct sls_sig_input *in,
			   enum sls_sig_order order)
{
	const struct sls_kv *h[SLS_SIG_MAX_HEADERS], *q[SLS_SIG_MAX_HEADERS];
	add_line(out, in->method);
	add_line(out, sls_sig_header(in, "content-md5"));
	add_line(out, sls_sig_header(in, "content-type"));
	add_line(out, sls_sig_header(in, "date"));
	size_t nh = sorted_view(in->headers, in->nheaders, is_signed_v1, kv_cmp_key, h);
	for (size_t i = 0; i < nh; i++) {
		buf_add(out, h[i]->k.p, h[i]->k.len);
		buf_addc(out, ':');
		struct str v = str_trim(h[i]->v);
		buf_add(out, v.p ? v.p : "", v.len);
		buf_addc(out, '\n');
	}
	buf_add(out, in->path.p, in->path.len);
	size_t nq = sorted_view(in->query, in->nquery, NULL,
				order == SLS_SIG_SORT_PAIRS ? kv_cmp_pair : kv_cmp_key, q);
	for (size_t i = 0; i < nq; i++) {
		buf_addc(out, i ? '&' : '?');
		buf_add(out, q[i]->k.p, q[i]->k.len);
		buf_addc(out, '=');
		buf_add(out, q[i]->v.p ? q[i]->v.p : "", q[i]->v.len);
	}
}

void sls_v1_sign(enum sls_sig_alg alg, struct str secret, struct str sts,
		 char out[SLS_SIG_V1_MAX_B64])
{
	unsigned char mac[HMAC_SHA256_LEN];
	size_t n = alg == SLS_SIG_HMAC_SHA256 ? HMAC_SHA256_LEN : HMAC_SHA1_LEN;
	if (alg == SLS_SIG_HMAC_SHA256)
		hmac_sha256(secret.p, secret.len, sts.p, sts.len, mac);
	else
		hmac_sha1(secret.p, secret.len, sts.p, sts.len, mac);
	EVP_EncodeBlock((unsigned char *)out, mac, (int)n);
	OPENSSL_cleanse(mac, sizeof(mac));
}

int sls_v1_parse_auth(struct str a, struct str *akid, struct str *sig)
{
	if (a.len < 4 || memcmp(a.p, "LOG ", 4) != 0)
		return -1;
	const char *colon = memchr(a.p + 4, ':', a.len - 4);
	if (!colon)
		return -1;
	*akid = (struct str){a.p + 4, (size_t)(colon - a.p - 4)};
	*sig = (struct str){colon + 1, a.len - (size_t)(colon + 1 - a.p)};
	return akid->len && sig->len ? 0 : -1;
}

static bool v1_matches(const struct sls_sig_input *in, enum sls_sig_order order,
		       enum sls_sig_alg alg, struct str secret, struct str sig)
{
	struct buf sts = {0};
	char want[SLS_SIG_V1_MAX_B64];
	sls_v1_string_to_sign(&sts, in, order);
	sls_v1_sign(alg, secret, (struct str){sts.p, sts.len}, want);
	buf_free(&sts);
	size_t n = strlen(want);
	return sig.len == n && CRYPTO_memcmp(sig.p, want, n) == 0;
}

/* Whether sorting the query by pairs and by keys gives different orders. */
static bool orders_differ(const struct sls_sig_input *in)
{
	const struct sls_kv *a[SLS_SIG_MAX_HEADERS], *b[SLS_SIG_MAX_HEADERS];
	size_t n = sorted_view(in->query, in->nquery, NULL, kv_cmp_pair, a);
	sorted_view(in->query, in->nquery, NULL, kv_cmp_key, b);
	for (size_t i = 0; i < n; i++)
		if (a[i] != b[i])
			return true;
	return false;
}

bool sls_v1_verify(const struct sls_sig_input *in, enum sls_sig_alg alg, struct str secret,
		   struct str sig)
{
	if (v1_matches(in, SLS_SIG_SORT_PAIRS, alg, secret, sig))
		return true;
	return orders_differ(in) && v1_matches(in, SLS_SIG_SORT_KEYS, alg, secret, sig);
}

/* "Credential=AK/DATE/REGION/sls/aliyun_v4_request" */
static int v4_credential(struct str c, struct sls_v4_auth *out)
{
	struct str part[5];
	size_t n = 0;
	const char *p = c.p, *end = c.p + c.len;
	while (n < 5) {
		const char *slash = n < 4 ? memchr(p, '/', (size_t)(end - p)) : end;
		if (!slash)
			return -1;
		part[n++] = (struct str){p, (size_t)(slash - p)};
		p = slash + 1;
	}
	if (!str_eqc(part[3], SLS_SIG_V4_SERVICE) || !str_eqc(part[4], SLS_SIG_V4_TERMINATOR) ||
	    !part[0].len || part[0].len > SLS_SIG_MAX_AKID || part[1].len != 8 || !part[2].len ||
	    part[2].len > SLS_SIG_MAX_REGION)
		return -1;
	out->akid = part[0];
	out->date = part[1];
	out->region = part[2];
	return 0;
}

int sls_v4_parse_auth(struct str a, struct sls_v4_auth *out)
{
	static const char alg[] = SLS_SIG_V4_ALGORITHM " ", cred[] = "Credential=",
			  sig[] = "Signature=";
	memset(out, 0, sizeof(*out));
	if (a.len < sizeof(alg) - 1 || memcmp(a.p, alg, sizeof(alg) - 1) != 0)
		return -1;
	struct str rest = {a.p + sizeof(alg) - 1, a.len - (sizeof(alg) - 1)};
	const char *comma = memchr(rest.p, ',', rest.len);
	if (!comma || rest.len < sizeof(cred) - 1 || memcmp(rest.p, cred, sizeof(cred) - 1) != 0)
		return -1;
	struct str c = {rest.p + sizeof(cred) - 1, (size_t)(comma - rest.p) - (sizeof(cred) - 1)};
	struct str s = str_trim((struct str){comma + 1, rest.len - (size_t)(comma + 1 - rest.p)});
	if (s.len != sizeof(sig) - 1 + SLS_SIG_V4_HEX || memcmp(s.p, sig, sizeof(sig) - 1) != 0)
		return -1;
	out->signature = (struct str){s.p + sizeof(sig) - 1, SLS_SIG_V4_HEX};
	return v4_credential(c, out);
}

static bool is_unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '_' || c == '.' || c == '~';
}

/* encodeURIComponent also keeps these. */
static bool is_js_kept(unsigned char c)
{
	return c == '!' || c == '\'' || c == '(' || c == ')' || c == '*';
}

static void v4_encode(struct buf *b, struct str s, enum sls_v4_encoding enc)
{
	static const char hex[] = "0123456789ABCDEF";
	bool star_done = false;
	for (size_t i = 0; i < s.len; i++) {
		unsigned char c = (unsigned char)s.p[i];
		bool keep = is_unreserved(c) ||
			    (enc == SLS_V4_JS_QUIRK && is_js_kept(c) && (c != '*' || star_done));
		if (c == '*')
			star_done = true;
		if (keep) {
			buf_addc(b, (char)c);
			continue;
		}
		char e[3] = {'%', hex[c >> 4], hex[c & 15]};
		buf_add(b, e, 3);
	}
}

static bool is_signed_v4(struct str name)
{
	return is_signed_v1(name) || str_eqc(name, "host") || str_eqc(name, "content-type");
}

void sls_v4_canonical_request(struct buf *out, const struct sls_sig_input *in,
			      enum sls_v4_encoding enc, struct str content_sha256)
{
	const struct sls_kv *h[SLS_SIG_MAX_HEADERS], *q[SLS_SIG_MAX_HEADERS];
	add_line(out, in->method);
	add_line(out, in->path);
	size_t nq = sorted_view(in->query, in->nquery, NULL, kv_cmp_key, q);
	for (size_t i = 0; i < nq; i++) {
		if (i)
			buf_addc(out, '&');
		v4_encode(out, q[i]->k, enc);
		if (q[i]->v.len) {
			buf_addc(out, '=');
			v4_encode(out, q[i]->v, enc);
		}
	}
	buf_addc(out, '\n');
	size_t nh = sorted_view(in->headers, in->nheaders, is_signed_v4, kv_cmp_key, h);
	for (size_t i = 0; i < nh; i++) {
		struct str v = str_trim(h[i]->v);
		buf_add(out, h[i]->k.p, h[i]->k.len);
		buf_addc(out, ':');
		add_line(out, v);
	}
	buf_addc(out, '\n');
	for (size_t i = 0; i < nh; i++) {
		if (i)
			buf_addc(out, ';');
		buf_add(out, h[i]->k.p, h[i]->k.len);
	}
	buf_addc(out, '\n');
	buf_add(out, content_sha256.p, content_sha256.len);
}

void sls_sha256_hex(struct str body, char out[SLS_SIG_V4_HEX + 1])
{
	unsigned char d[EVP_MAX_MD_SIZE];
	unsigned n = 0;
	EVP_Digest(body.p ? body.p : "", body.len, d, &n, EVP_sha256(), NULL);
	str_hex(d, n, out, false);
}

void sls_md5_hex_upper(struct str body, char out[SLS_SIG_MD5_HEX + 1])
{
	unsigned char d[EVP_MAX_MD_SIZE];
	unsigned n = 0;
	EVP_Digest(body.p ? body.p : "", body.len, d, &n, EVP_md5(), NULL);
	str_hex(d, n, out, true);
}

/* The signing key: four chained HMAC-SHA256s from "aliyun_v4" + secret. */
static void v4_key(struct str secret, struct str date, struct str region,
		   unsigned char key[HMAC_SHA256_LEN])
{
	char k0[sizeof(SLS_SIG_V4_KEY_PREFIX) + SLS_SIG_MAX_SECRET];
	size_t n0 = sizeof(SLS_SIG_V4_KEY_PREFIX) - 1;
	size_t sl = secret.len < SLS_SIG_MAX_SECRET ? secret.len : SLS_SIG_MAX_SECRET;
	memcpy(k0, SLS_SIG_V4_KEY_PREFIX, n0);
	memcpy(k0 + n0, secret.p, sl);
	hmac_sha256(k0, n0 + sl, date.p, date.len, key);
	hmac_sha256(key, HMAC_SHA256_LEN, region.p, region.len, key);
	hmac_sha256(key, HMAC_SHA256_LEN, SLS_SIG_V4_SERVICE, strlen(SLS_SIG_V4_SERVICE), key);
	hmac_sha256(key, HMAC_SHA256_LEN, SLS_SIG_V4_TERMINATOR, strlen(SLS_SIG_V4_TERMINATOR),
		    key);
	OPENSSL_cleanse(k0, sizeof(k0));
}

void sls_v4_sign(struct str secret, struct str region, struct str datetime,
		 struct str canonical, char out[SLS_SIG_V4_HEX + 1])
{
	struct str date = {datetime.p, datetime.len < 8 ? datetime.len : 8};
	char crhex[SLS_SIG_V4_HEX + 1];
	sls_sha256_hex(canonical, crhex);
	struct buf sts = {0};
	buf_adds(&sts, SLS_SIG_V4_ALGORITHM "\n");
	add_line(&sts, datetime);
	buf_add(&sts, date.p, date.len);
	buf_addc(&sts, '/');
	buf_add(&sts, region.p, region.len);
	buf_adds(&sts, "/" SLS_SIG_V4_SERVICE "/" SLS_SIG_V4_TERMINATOR "\n");
	buf_adds(&sts, crhex);
	unsigned char key[HMAC_SHA256_LEN], mac[HMAC_SHA256_LEN];
	v4_key(secret, date, region, key);
	hmac_sha256(key, sizeof(key), sts.p, sts.len, mac);
	str_hex(mac, sizeof(mac), out, false);
	OPENSSL_cleanse(key, sizeof(key));
	buf_free(&sts);
}

static bool v4_matches(const struct sls_sig_input *in, const struct sls_v4_auth *a,
		       struct str secret, enum sls_v4_encoding enc, struct str sha)
{
	struct buf cr = {0};
	char want[SLS_SIG_V4_HEX + 1];
	sls_v4_canonical_request(&cr, in, enc, sha);
	sls_v4_sign(secret, a->region, sls_sig_header(in, "x-log-date"),
		    (struct str){cr.p, cr.len}, want);
	buf_free(&cr);
	return a->signature.len == SLS_SIG_V4_HEX &&
	       CRYPTO_memcmp(a->signature.p, want, SLS_SIG_V4_HEX) == 0;
}

bool sls_v4_verify(const struct sls_sig_input *in, const struct sls_v4_auth *a,
		   struct str secret)
{
	struct str date = sls_sig_header(in, "x-log-date");
	struct str sha = sls_sig_header(in, "x-log-content-sha256");
	if (date.len < 8 || memcmp(date.p, a->date.p, 8) != 0 || sha.len != SLS_SIG_V4_HEX)
		return false;
	return v4_matches(in, a, secret, SLS_V4_JS_QUIRK, sha) ||
	       v4_matches(in, a, secret, SLS_V4_RFC3986, sha);
}

static int digits(const char *p, size_t n, int *out)
{
	int v = 0;
	for (size_t i = 0; i < n; i++) {
		if (p[i] < '0' || p[i] > '9')
			return -1;
		v = v * 10 + (p[i] - '0');
	}
	*out = v;
	return 0;
}

static const char sls_months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
static const char sls_days[] = "SunMonTueWedThuFriSat";

static int tm_epoch(struct tm *tm, int64_t *epoch)
{
	if (tm->tm_mon < 0 || tm->tm_mon > 11 || tm->tm_mday < 1 || tm->tm_mday > 31 ||
	    tm->tm_hour > 23 || tm->tm_min > 59 || tm->tm_sec > 60 || tm->tm_year < 70)
		return -1;
	*epoch = (int64_t)timegm(tm);
	return 0;
}

int sls_parse_http_date(struct str s, int64_t *epoch)
{
	/* "Tue, 01 Dec 2026 07:36:47 GMT": fixed width. */
	struct tm tm = {0};
	int year = 0;
	if (s.len != 29 || s.p[3] != ',' || s.p[4] != ' ' || s.p[7] != ' ' || s.p[11] != ' ' ||
	    s.p[16] != ' ' || s.p[19] != ':' || s.p[22] != ':' || memcmp(s.p + 25, " GMT", 4))
		return -1;
	const char *m = NULL;
	for (int i = 0; i < 12 && !m; i++)
		if (!memcmp(sls_months + 3 * i, s.p + 8, 3))
			m = sls_months + 3 * i;
	if (!m || digits(s.p + 5, 2, &tm.tm_mday) || digits(s.p + 12, 4, &year) ||
	    digits(s.p + 17, 2, &tm.tm_hour) || digits(s.p + 20, 2, &tm.tm_min) ||
	    digits(s.p + 23, 2, &tm.tm_sec))
		return -1;
	tm.tm_mon = (int)(m - sls_months) / 3;
	tm.tm_year = year - 1900;
	return tm_epoch(&tm, epoch);
}

void sls_format_http_date(int64_t epoch, char out[30])
{
	time_t t = (time_t)epoch;
	struct tm tm;
	gmtime_r(&t, &tm);
	/* Names from our tables, not the locale's. */
	memcpy(out, sls_days + 3 * tm.tm_wday, 3);
	strftime(out + 3, 27, ", %d ", &tm);
	memcpy(out + 8, sls_months + 3 * tm.tm_mon, 3);
	strftime(out + 11, 19, " %Y %H:%M:%S GMT", &tm);
}

int sls_parse_v4_date(struct str s, int64_t *epoch)
{
	struct tm tm = {0};
	int year = 0, mon = 0;
	if (s.len != 16 || s.p[8] != 'T' || s.p[15] != 'Z' || digits(s.p, 4, &year) ||
	    digits(s.p + 4, 2, &mon) || digits(s.p + 6, 2, &tm.tm_mday) ||
	    digits(s.p + 9, 2, &tm.tm_hour) || digits(s.p + 11, 2, &tm.tm_min) ||
	    digits(s.p + 13, 2, &tm.tm_sec))
		return -1;
	tm.tm_year = year - 1900;
	tm.tm_mon = mon - 1;
	return tm_epoch(&tm, epoch);
}
