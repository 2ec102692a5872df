#include "core/hmac.h"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <pthread.h>

#include "core/log.h"

enum hmac_digest { HMAC_D_SHA1, HMAC_D_SHA256, HMAC_D_COUNT };

/* Writable copies: OSSL_PARAM takes a char *, though it only reads it. */
static char hmac_digest_name[HMAC_D_COUNT][8] = {"SHA1", "SHA256"};

static pthread_once_t hmac_once = PTHREAD_ONCE_INIT;
static EVP_MAC *hmac_mac;
static pthread_key_t hmac_key; /* frees a thread's contexts when it exits */

struct hmac_thread {
	EVP_MAC_CTX *ctx[HMAC_D_COUNT];
};

static void hmac_thread_free(void *p)
{
	struct hmac_thread *t = p;
	for (int i = 0; i < HMAC_D_COUNT; i++)
		EVP_MAC_CTX_free(t->ctx[i]);
	OPENSSL_free(t);
}

static void hmac_init_once(void)
{
	hmac_mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	if (!hmac_mac || pthread_key_create(&hmac_key, hmac_thread_free) != 0)
		fatal("hmac: cannot fetch OpenSSL's HMAC");
}

static __thread struct hmac_thread *hmac_self;

static EVP_MAC_CTX *hmac_ctx(enum hmac_digest d)
{
	pthread_once(&hmac_once, hmac_init_once);
	if (!hmac_self) {
		hmac_self = OPENSSL_zalloc(sizeof(*hmac_self));
		if (!hmac_self || pthread_setspecific(hmac_key, hmac_self) != 0)
			fatal("hmac: out of memory");
	}
	if (!hmac_self->ctx[d]) {
		EVP_MAC_CTX *c = EVP_MAC_CTX_new(hmac_mac);
		OSSL_PARAM p[] = {OSSL_PARAM_construct_utf8_string(
					  OSSL_MAC_PARAM_DIGEST, hmac_digest_name[d], 0),
				  OSSL_PARAM_construct_end()};
		if (!c || !EVP_MAC_CTX_set_params(c, p))
			fatal("hmac: cannot set up HMAC-%s", hmac_digest_name[d]);
		hmac_self->ctx[d] = c;
	}
	return hmac_self->ctx[d];
}

static void hmac_run(enum hmac_digest d, const void *key, size_t keylen, const void *msg,
		     size_t len, unsigned char *out, size_t outlen)
{
	static const unsigned char empty[1];
	EVP_MAC_CTX *c = hmac_ctx(d);
	size_t n = 0;
	/* OpenSSL refuses a NULL key; an empty one is a valid HMAC key. */
	if (!EVP_MAC_init(c, keylen ? key : empty, keylen, NULL) ||
	    !EVP_MAC_update(c, len ? msg : empty, len) || !EVP_MAC_final(c, out, &n, outlen) ||
	    n != outlen)
		fatal("hmac: HMAC-%s failed", hmac_digest_name[d]);
}

void hmac_sha1(const void *key, size_t keylen, const void *msg, size_t len,
	       unsigned char out[HMAC_SHA1_LEN])
{
	hmac_run(HMAC_D_SHA1, key, keylen, msg, len, out, HMAC_SHA1_LEN);
}

void hmac_sha256(const void *key, size_t keylen, const void *msg, size_t len,
		 unsigned char out[HMAC_SHA256_LEN])
{
	hmac_run(HMAC_D_SHA256, key, keylen, msg, len, out, HMAC_SHA256_LEN);
}
