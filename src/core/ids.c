#include "core/ids.h"
#include "core/log.h"
#include "core/str.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

/* Each thread draws from its own pool of CSPRNG bytes: RAND_bytes checks for a
 * fork with getpid(2) on every call, and a busy server asks for 16 bytes per
 * request. A forked child empties the pool it inherited (pthread_atfork), so
 * parent and child never hand out the same bytes. */
#define IDS_POOL 4096

static __thread unsigned char ids_pool[IDS_POOL];
static __thread size_t ids_pool_left;
static pthread_once_t ids_once = PTHREAD_ONCE_INIT;

static void ids_forked(void)
{
	OPENSSL_cleanse(ids_pool, sizeof(ids_pool));
	ids_pool_left = 0;
}

static void ids_init(void)
{
	pthread_atfork(NULL, NULL, ids_forked);
}

void ids_random(void *p, size_t n)
{
	pthread_once(&ids_once, ids_init);
	if (n > IDS_POOL / 4) {
		if (RAND_bytes(p, (int)n) != 1)
			fatal("RAND_bytes failed");
		return;
	}
	if (ids_pool_left < n) {
		if (RAND_bytes(ids_pool, IDS_POOL) != 1)
			fatal("RAND_bytes failed");
		ids_pool_left = IDS_POOL;
	}
	unsigned char *src = ids_pool + IDS_POOL - ids_pool_left;
	memcpy(p, src, n);
	OPENSSL_cleanse(src, n); /* handed-out bytes never stay in memory */
	ids_pool_left -= n;
}

/* Rejection sampling keeps every character equally likely. */
static void ids_from_alphabet(char *out, size_t n, const char *alpha, unsigned alen)
{
	unsigned limit = 256 - (256 % alen);
	size_t i = 0;
	while (i < n) {
		unsigned char r[32];
		ids_random(r, sizeof(r));
		for (size_t j = 0; j < sizeof(r) && i < n; j++)
			if (r[j] < limit)
				out[i++] = alpha[r[j] % alen];
	}
	out[n] = '\0';
}

void ids_resource(char *out, size_t cap, const char *prefix)
{
	size_t pl = strlen(prefix);
	if (cap < pl + IDS_RESOURCE_SUFFIX + 1)
		fatal("ids_resource: buffer too small");
	memcpy(out, prefix, pl);
	ids_from_alphabet(out + pl, IDS_RESOURCE_SUFFIX, "abcdefghijklmnopqrstuvwxyz0123456789", 36);
}

void ids_alnum(char *out, size_t n)
{
	ids_from_alphabet(out, n, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
			  62);
}

void ids_hex(char *out, size_t nbytes)
{
	unsigned char r[64];
	size_t o = 0;
	out[0] = '\0';
	while (nbytes) {
		size_t k = nbytes < sizeof(r) ? nbytes : sizeof(r);
		ids_random(r, k);
		str_hex(r, k, out + o, false);
		o += 2 * k;
		nbytes -= k;
	}
}

void ids_uuid_upper(char out[IDS_UUID_LEN + 1])
{
	unsigned char b[16];
	ids_random(b, sizeof(b));
	b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
	b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
	/* Not snprintf: it was 1 % of a request. */
	str_uuid(b, out, true);
}
