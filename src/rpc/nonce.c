#include "rpc/nonce.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <stdlib.h>

#include "core/ids.h"
#include "core/log.h"
#include "core/xmalloc.h"

#define NONCE_NONE UINT32_MAX
#define NONCE_SALT_LEN 16

struct nonce_slot {
	uint64_t tag;
	uint32_t expires; /* epoch seconds; fits until 2106 */
	uint32_t next;    /* next slot in the same bucket, or NONCE_NONE */
};

struct nonce_shard {
	pthread_mutex_t mu;
	struct nonce_slot *slots; /* ring of cap entries, oldest at head */
	uint32_t *buckets;        /* cap heads of chains */
	uint32_t head, count;
};

struct nonce_cache {
	uint32_t cap; /* per shard, a power of two */
	unsigned char salt[NONCE_SALT_LEN];
	struct nonce_shard shards[NONCE_SHARDS];
};

struct nonce_cache *nonce_new(uint32_t max_entries)
{
	struct nonce_cache *c = xcalloc(1, sizeof(*c));
	uint32_t want = (max_entries ? max_entries : NONCE_MAX_ENTRIES) / NONCE_SHARDS;
	c->cap = 1;
	while (c->cap < want)
		c->cap <<= 1;
	ids_random(c->salt, sizeof(c->salt));
	for (int i = 0; i < NONCE_SHARDS; i++) {
		struct nonce_shard *s = &c->shards[i];
		pthread_mutex_init(&s->mu, NULL);
		s->slots = xcalloc(c->cap, sizeof(*s->slots));
		s->buckets = xmalloc(c->cap * sizeof(*s->buckets));
		for (uint32_t b = 0; b < c->cap; b++)
			s->buckets[b] = NONCE_NONE;
	}
	return c;
}

void nonce_free(struct nonce_cache *c)
{
	if (!c)
		return;
	for (int i = 0; i < NONCE_SHARDS; i++) {
		pthread_mutex_destroy(&c->shards[i].mu);
		free(c->shards[i].slots);
		free(c->shards[i].buckets);
	}
	free(c);
}

#define NONCE_KEY_MAX 512 /* salt + length + AccessKeyId + nonce hashed in one call */

/* A salted hash so a client cannot aim many nonces at one chain; the length
 * prefix keeps ("ab","c") and ("a","bc") apart. Hashed in one SHA256() call
 * from a stack buffer when it fits (it always does for checked requests). */
static void nonce_hash(const struct nonce_cache *c, struct str akid, struct str nonce,
		       uint64_t *tag, unsigned *shard)
{
	unsigned char d[SHA256_DIGEST_LENGTH], key[NONCE_KEY_MAX];
	uint64_t alen = akid.len;
	size_t n = sizeof(c->salt) + sizeof(alen);
	if (akid.len + nonce.len <= sizeof(key) - n) {
		memcpy(key, c->salt, sizeof(c->salt));
		memcpy(key + sizeof(c->salt), &alen, sizeof(alen));
		if (akid.len)
			memcpy(key + n, akid.p, akid.len);
		if (nonce.len)
			memcpy(key + n + akid.len, nonce.p, nonce.len);
		SHA256(key, n + akid.len + nonce.len, d);
	} else {
		EVP_MD_CTX *x = EVP_MD_CTX_new();
		if (!x || !EVP_DigestInit_ex(x, EVP_sha256(), NULL) ||
		    !EVP_DigestUpdate(x, c->salt, sizeof(c->salt)) ||
		    !EVP_DigestUpdate(x, &alen, sizeof(alen)) ||
		    !EVP_DigestUpdate(x, akid.p ? akid.p : "", akid.len) ||
		    !EVP_DigestUpdate(x, nonce.p ? nonce.p : "", nonce.len) ||
		    !EVP_DigestFinal_ex(x, d, NULL))
			fatal("nonce: SHA-256 failed");
		EVP_MD_CTX_free(x);
	}
	memcpy(tag, d, sizeof(*tag));
	*shard = d[8] % NONCE_SHARDS;
}

/* Drops the oldest entry from the ring and from its bucket chain. */
static void drop_head(struct nonce_cache *c, struct nonce_shard *s)
{
	uint32_t i = s->head;
	uint32_t *link = &s->buckets[s->slots[i].tag & (c->cap - 1)];
	while (*link != NONCE_NONE && *link != i)
		link = &s->slots[*link].next;
	if (*link == i)
		*link = s->slots[i].next;
	s->head = (s->head + 1) & (c->cap - 1);
	s->count--;
}

static enum nonce_result shard_check(struct nonce_cache *c, struct nonce_shard *s, uint64_t tag,
				     uint32_t now, uint32_t expires)
{
	while (s->count && s->slots[s->head].expires <= now)
		drop_head(c, s);
	uint32_t b = tag & (c->cap - 1);
	for (uint32_t i = s->buckets[b]; i != NONCE_NONE; i = s->slots[i].next)
		if (s->slots[i].tag == tag && s->slots[i].expires > now)
			return NONCE_USED;
	if (s->count == c->cap)
		return NONCE_FULL;
	uint32_t i = (s->head + s->count) & (c->cap - 1);
	s->slots[i] = (struct nonce_slot){tag, expires, s->buckets[b]};
	s->buckets[b] = i;
	s->count++;
	return NONCE_FRESH;
}

enum nonce_result nonce_check(struct nonce_cache *c, struct str akid, struct str nonce,
			      int64_t now_s, int64_t expires_s)
{
	uint64_t tag;
	unsigned sh;
	if (now_s < 0 || expires_s <= now_s || expires_s > UINT32_MAX)
		return NONCE_FULL;
	nonce_hash(c, akid, nonce, &tag, &sh);
	struct nonce_shard *s = &c->shards[sh];
	pthread_mutex_lock(&s->mu);
	enum nonce_result r = shard_check(c, s, tag, (uint32_t)now_s, (uint32_t)expires_s);
	pthread_mutex_unlock(&s->mu);
	return r;
}

uint64_t nonce_live(struct nonce_cache *c, int64_t now_s)
{
	uint64_t n = 0;
	uint32_t now = now_s < 0 ? 0 : now_s > UINT32_MAX ? UINT32_MAX : (uint32_t)now_s;
	for (int i = 0; i < NONCE_SHARDS; i++) {
		struct nonce_shard *s = &c->shards[i];
		pthread_mutex_lock(&s->mu);
		while (s->count && s->slots[s->head].expires <= now)
			drop_head(c, s);
		n += s->count;
		pthread_mutex_unlock(&s->mu);
	}
	return n;
}

uint64_t nonce_capacity(const struct nonce_cache *c)
{
	return (uint64_t)c->cap * NONCE_SHARDS;
}
