#include "store/pg_nodes.h"

#include <openssl/evp.h>
#include <openssl/sha.h>

#include "core/log.h"
#include <stdio.h>

/* Floor division: windows of negative times are not expected, but must not
 * wrap the arithmetic. */
static int64_t window_of(int64_t t)
{
	return t >= 0 ? t / PG_NONCE_WINDOW_S : -((-t + PG_NONCE_WINDOW_S - 1) / PG_NONCE_WINDOW_S);
}

static unsigned bucket_of_window(int64_t k)
{
	int64_t b = k % PG_NONCE_BUCKETS;
	return (unsigned)(b < 0 ? b + PG_NONCE_BUCKETS : b);
}

unsigned pg_nonce_bucket(int64_t expires_s)
{
	return bucket_of_window(window_of(expires_s));
}

bool pg_nonce_bucket_live(unsigned bucket, int64_t now_s)
{
	/* At admission expires - now is in [1, LIFETIME]; a nonce is looked up
	 * only by a request admitted at that moment, so the live expiries are
	 * exactly that span, widened by the clock margin on both sides. */
	int64_t lo = window_of(now_s + 1 - PG_NONCE_SKEW_S);
	int64_t hi = window_of(now_s + PG_NONCE_LIFETIME_S + PG_NONCE_SKEW_S);
	for (int64_t k = lo; k <= hi && k < lo + PG_NONCE_BUCKETS; k++)
		if (bucket_of_window(k) == bucket)
			return true;
	return false;
}

void pg_nonce_tag(struct str who, struct str nonce, char out[PG_NONCE_TAG_TEXT + 1])
{
	unsigned char len[4] = {(unsigned char)(who.len >> 24), (unsigned char)(who.len >> 16),
				(unsigned char)(who.len >> 8), (unsigned char)who.len};
	unsigned char md[SHA256_DIGEST_LENGTH];
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	if (!c || EVP_DigestInit_ex(c, EVP_sha256(), NULL) != 1 ||
	    EVP_DigestUpdate(c, len, sizeof(len)) != 1 ||
	    EVP_DigestUpdate(c, who.p, who.len) != 1 ||
	    EVP_DigestUpdate(c, nonce.p, nonce.len) != 1 || EVP_DigestFinal_ex(c, md, NULL) != 1)
		fatal("pg_nonce_tag: SHA-256 failed");
	EVP_MD_CTX_free(c);
	_Static_assert(PG_NONCE_TAG_LEN == 16 && PG_NONCE_TAG_TEXT == STR_UUID_LEN, "a uuid");
	str_uuid(md, out, false);
}

bool pg_horizon_refuses(int64_t ts_s, int64_t now_s, int64_t horizon_s)
{
	return horizon_s != 0 && now_s - horizon_s < PG_HORIZON_S && ts_s < horizon_s;
}
