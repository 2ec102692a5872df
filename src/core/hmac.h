/* HMAC-SHA1 and HMAC-SHA256 for request signatures, without OpenSSL's one-shot
 * HMAC(): in OpenSSL 3 that fetches the algorithm from the provider store on
 * every call (locks, allocations) — 10 % of a signed request's CPU when it was
 * measured. Here the MAC is fetched once and each thread keeps one context per
 * digest, re-keyed per call. */
#ifndef CORE_HMAC_H
#define CORE_HMAC_H
#include <stddef.h>

#define HMAC_SHA1_LEN 20
#define HMAC_SHA256_LEN 32

void hmac_sha1(const void *key, size_t keylen, const void *msg, size_t len,
	       unsigned char out[HMAC_SHA1_LEN]);
void hmac_sha256(const void *key, size_t keylen, const void *msg, size_t len,
		 unsigned char out[HMAC_SHA256_LEN]);

#endif
