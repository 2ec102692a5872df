#include "rpc/cache.h"

#include <openssl/sha.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/xmalloc.h"

struct rcache_entry {
	unsigned char hash[SHA256_DIGEST_LENGTH]; /* of the key: fixed size, no key copy */
	uint64_t version;
	uint64_t used; /* shard clock at the last hit, for eviction */
	char *body;
	size_t len, rid_off;
	const char *content_type;
};

struct rcache_shard {
	pthread_mutex_t mu;
	uint64_t clock;
	struct rcache_entry slot[RCACHE_SLOTS];
};

struct rcache {
	struct rcache_shard shard[RCACHE_SHARDS];
};

struct rcache *rcache_new(void)
{
	struct rcache *c = xcalloc(1, sizeof(*c));
	for (int i = 0; i < RCACHE_SHARDS; i++)
		pthread_mutex_init(&c->shard[i].mu, NULL);
	return c;
}

void rcache_free(struct rcache *c)
{
	if (!c)
		return;
	for (int i = 0; i < RCACHE_SHARDS; i++) {
		for (int j = 0; j < RCACHE_SLOTS; j++)
			free(c->shard[i].slot[j].body);
		pthread_mutex_destroy(&c->shard[i].mu);
	}
	free(c);
}

static struct rcache_shard *rcache_shard_of(struct rcache *c, const unsigned char *h)
{
	return &c->shard[h[0] % RCACHE_SHARDS];
}

static struct rcache_entry *rcache_find(struct rcache_shard *s, const unsigned char *h)
{
	for (int j = 0; j < RCACHE_SLOTS; j++)
		if (s->slot[j].body && memcmp(s->slot[j].hash, h, sizeof(s->slot[j].hash)) == 0)
			return &s->slot[j];
	return NULL;
}

bool rcache_get(struct rcache *c, const char *key, size_t klen, uint64_t version,
		struct rcache_hit *out)
{
	unsigned char h[SHA256_DIGEST_LENGTH];
	if (klen > RCACHE_MAX_KEY)
		return false;
	SHA256((const unsigned char *)key, klen, h);
	struct rcache_shard *s = rcache_shard_of(c, h);
	bool hit = false;
	pthread_mutex_lock(&s->mu);
	struct rcache_entry *e = rcache_find(s, h);
	if (e && e->version == version) {
		e->used = ++s->clock;
		out->body = xmemdup0(e->body, e->len);
		out->len = e->len;
		out->rid_off = e->rid_off;
		out->content_type = e->content_type;
		hit = true;
	}
	pthread_mutex_unlock(&s->mu);
	return hit;
}

void rcache_put(struct rcache *c, const char *key, size_t klen, uint64_t version, const char *body,
		size_t len, size_t rid_off, const char *content_type)
{
	unsigned char h[SHA256_DIGEST_LENGTH];
	if (klen > RCACHE_MAX_KEY || len > RCACHE_MAX_BODY)
		return;
	SHA256((const unsigned char *)key, klen, h);
	char *copy = xmemdup0(body, len);
	struct rcache_shard *s = rcache_shard_of(c, h);
	pthread_mutex_lock(&s->mu);
	struct rcache_entry *e = rcache_find(s, h);
	if (e && e->version > version) {
		/* A newer answer is there already: keep it. */
		pthread_mutex_unlock(&s->mu);
		free(copy);
		return;
	}
	if (!e) {
		/* An empty slot, else the least recently used one. */
		e = &s->slot[0];
		for (int j = 0; j < RCACHE_SLOTS && e->body; j++)
			if (!s->slot[j].body || s->slot[j].used < e->used)
				e = &s->slot[j];
	}
	char *old = e->body;
	memcpy(e->hash, h, sizeof(e->hash));
	e->version = version;
	e->used = ++s->clock;
	e->body = copy;
	e->len = len;
	e->rid_off = rid_off;
	e->content_type = content_type;
	pthread_mutex_unlock(&s->mu);
	free(old);
}
