#include "store/nonce.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "core/ids.h"
#include "core/log.h"
#include "core/xmalloc.h"

#define NONCE_NONE UINT32_MAX
#define NONCE_SALT_LEN 16
#define NONCE_DIR_BUCKETS 64 /* partition chains per shard */

struct nonce_slot {
	uint64_t tag;
	uint32_t expires; /* epoch seconds; fits until 2106 */
	uint32_t next;    /* next slot in the same bucket, or NONCE_NONE */
};

/* One AccessKey's nonces: a ring of cap entries, oldest at head. */
struct nonce_part {
	struct nonce_part *next; /* in its shard's chain */
	uint64_t key;
	struct nonce_slot *slots;
	uint32_t *buckets; /* nbuckets (a power of two >= cap) heads of chains */
	uint32_t cap, nbuckets, head, count;
};

struct nonce_shard {
	pthread_mutex_t mu;
	struct nonce_part *dir[NONCE_DIR_BUCKETS];
};

struct nonce_cache {
	uint32_t max_entries, per_key;
	_Atomic uint64_t reserved; /* capacity of every partition together */
	unsigned char salt[NONCE_SALT_LEN];
	struct nonce_shard shards[NONCE_SHARDS];
};

struct nonce_cache *nonce_new(uint32_t max_entries, uint32_t per_key)
{
	struct nonce_cache *c = xcalloc(1, sizeof(*c));
	c->max_entries = max_entries ? max_entries : NONCE_MAX_ENTRIES;
	c->per_key = per_key && per_key < c->max_entries ? per_key : c->max_entries;
	ids_random(c->salt, sizeof(c->salt));
	for (int i = 0; i < NONCE_SHARDS; i++)
		pthread_mutex_init(&c->shards[i].mu, NULL);
	return c;
}

static void part_free(struct nonce_part *p)
{
	free(p->slots);
	free(p->buckets);
	free(p);
}

void nonce_free(struct nonce_cache *c)
{
	if (!c)
		return;
	for (int i = 0; i < NONCE_SHARDS; i++) {
		pthread_mutex_destroy(&c->shards[i].mu);
		for (int b = 0; b < NONCE_DIR_BUCKETS; b++)
			for (struct nonce_part *p = c->shards[i].dir[b], *n; p; p = n) {
				n = p->next;
				part_free(p);
			}
	}
	free(c);
}

uint32_t nonce_per_key(int64_t rate, int64_t burst)
{
	uint64_t q = (uint64_t)rate * NONCE_LIFETIME_S + (uint64_t)burst;
	return q > NONCE_LIMIT_ENTRIES ? NONCE_LIMIT_ENTRIES : (uint32_t)q;
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

/* Takes n entries of capacity from the whole cache's bound, or fails. */
static bool reserve(struct nonce_cache *c, uint32_t n)
{
	uint64_t was = atomic_fetch_add(&c->reserved, n);
	if (was + n <= c->max_entries)
		return true;
	atomic_fetch_sub(&c->reserved, n);
	return false;
}

static void release(struct nonce_cache *c, uint32_t n)
{
	atomic_fetch_sub(&c->reserved, n);
}

/* Gives p fresh arrays of cap entries holding its live entries in order. */
static void part_resize(struct nonce_part *p, uint32_t cap)
{
	uint32_t nb = 1;
	while (nb < cap)
		nb <<= 1;
	struct nonce_slot *slots = xcalloc(cap, sizeof(*slots));
	uint32_t *buckets = xmalloc(nb * sizeof(*buckets));
	for (uint32_t b = 0; b < nb; b++)
		buckets[b] = NONCE_NONE;
	for (uint32_t j = 0; j < p->count; j++) {
		struct nonce_slot e = p->slots[(p->head + j) % p->cap];
		uint32_t b = e.tag & (nb - 1);
		slots[j] = (struct nonce_slot){e.tag, e.expires, buckets[b]};
		buckets[b] = j;
	}
	free(p->slots);
	free(p->buckets);
	p->slots = slots;
	p->buckets = buckets;
	p->cap = cap;
	p->nbuckets = nb;
	p->head = 0;
}

/* Drops the oldest entry from the ring and from its bucket chain. */
static void drop_head(struct nonce_part *p)
{
	uint32_t i = p->head;
	uint32_t *link = &p->buckets[p->slots[i].tag & (p->nbuckets - 1)];
	while (*link != NONCE_NONE && *link != i)
		link = &p->slots[*link].next;
	if (*link == i)
		*link = p->slots[i].next;
	p->head = (p->head + 1) % p->cap;
	p->count--;
}

/* Drops expired entries; an emptied partition gives back what it grew. */
static void part_expire(struct nonce_cache *c, struct nonce_part *p, uint32_t now)
{
	while (p->count && p->slots[p->head].expires <= now)
		drop_head(p);
	if (!p->count && p->cap > NONCE_PART_MIN) {
		release(c, p->cap - NONCE_PART_MIN);
		part_resize(p, NONCE_PART_MIN);
	}
}

/* key's partition in shard s, created (with NONCE_PART_MIN entries) when new. */
static struct nonce_part *part_find(struct nonce_cache *c, struct nonce_shard *s, uint64_t key)
{
	struct nonce_part **head = &s->dir[(key >> 32) % NONCE_DIR_BUCKETS];
	for (struct nonce_part *p = *head; p; p = p->next)
		if (p->key == key)
			return p;
	if (!reserve(c, NONCE_PART_MIN))
		return NULL;
	struct nonce_part *p = xcalloc(1, sizeof(*p));
	p->key = key;
	p->cap = 1;
	part_resize(p, NONCE_PART_MIN);
	p->next = *head;
	*head = p;
	return p;
}

/* Room for one more entry: grows by doubling up to the per-key quota while the
 * whole cache's bound allows. */
static bool part_room(struct nonce_cache *c, struct nonce_part *p)
{
	if (p->count >= c->per_key)
		return false;
	if (p->count < p->cap)
		return true;
	uint32_t want = p->cap > c->per_key / 2 ? c->per_key : p->cap * 2;
	if (want <= p->cap || !reserve(c, want - p->cap))
		return false;
	part_resize(p, want);
	return true;
}

static enum nonce_result part_check(struct nonce_cache *c, struct nonce_part *p, uint64_t tag,
				    uint32_t now, uint32_t expires)
{
	part_expire(c, p, now);
	uint32_t b = tag & (p->nbuckets - 1);
	for (uint32_t i = p->buckets[b]; i != NONCE_NONE; i = p->slots[i].next)
		if (p->slots[i].tag == tag && p->slots[i].expires > now)
			return NONCE_USED;
	if (!part_room(c, p))
		return NONCE_FULL;
	b = tag & (p->nbuckets - 1);
	uint32_t i = (p->head + p->count) % p->cap;
	p->slots[i] = (struct nonce_slot){tag, expires, p->buckets[b]};
	p->buckets[b] = i;
	p->count++;
	return NONCE_FRESH;
}

static uint64_t key_hash(const struct nonce_cache *c, struct str akid)
{
	uint64_t tag;
	unsigned sh;
	nonce_hash(c, akid, STR_NULL, &tag, &sh);
	return tag ^ 0x9e3779b97f4a7c15ull; /* not a nonce tag of the same key */
}

enum nonce_result nonce_check(struct nonce_cache *c, struct str akid, struct str nonce,
			      int64_t now_s, int64_t expires_s)
{
	uint64_t tag;
	unsigned unused;
	if (now_s < 0 || expires_s <= now_s || expires_s > UINT32_MAX)
		return NONCE_FULL;
	nonce_hash(c, akid, nonce, &tag, &unused);
	uint64_t key = key_hash(c, akid);
	struct nonce_shard *s = &c->shards[key % NONCE_SHARDS];
	pthread_mutex_lock(&s->mu);
	struct nonce_part *p = part_find(c, s, key);
	enum nonce_result r = p ? part_check(c, p, tag, (uint32_t)now_s, (uint32_t)expires_s)
				: NONCE_FULL;
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
		for (int b = 0; b < NONCE_DIR_BUCKETS; b++) {
			for (struct nonce_part **link = &s->dir[b]; *link;) {
				struct nonce_part *p = *link;
				part_expire(c, p, now);
				n += p->count;
				if (p->count) {
					link = &p->next;
					continue;
				}
				*link = p->next; /* an idle key's partition goes entirely */
				release(c, p->cap);
				part_free(p);
			}
		}
		pthread_mutex_unlock(&s->mu);
	}
	return n;
}

uint64_t nonce_capacity(const struct nonce_cache *c)
{
	return c->max_entries;
}
