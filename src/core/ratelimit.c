#include "core/ratelimit.h"

#include <openssl/evp.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/ids.h"
#include "core/log.h"
#include "core/num.h"
#include "core/xmalloc.h"

#define RL_NONE UINT32_MAX
#define RL_SALT_LEN 16
#define RL_UNIT 1000000 /* a token in micro-tokens: refill is rate micro-tokens a microsecond */
#define RL_NAME_MAX 256 /* bytes of a name hashed in one call from the stack */

struct rl_entry {
	uint64_t tag;
	int64_t tokens; /* micro-tokens at last_us */
	int64_t last_us;
	uint32_t next;        /* hash chain */
	uint32_t prev_lru, next_lru; /* most recent at head */
};

struct rl_shard {
	pthread_mutex_t mu;
	struct rl_entry *e;
	uint32_t *buckets;
	uint32_t count, lru_head, lru_tail;
};

struct ratelimit {
	struct ratelimit_rate rate;
	uint32_t cap; /* per shard, a power of two */
	unsigned char salt[RL_SALT_LEN];
	struct rl_shard shards[RATELIMIT_SHARDS];
};

struct ratelimit *ratelimit_new(struct ratelimit_rate rate, uint32_t max_callers)
{
	struct ratelimit *rl = xcalloc(1, sizeof(*rl));
	rl->rate = rate;
	uint32_t want = max_callers / RATELIMIT_SHARDS;
	rl->cap = 1;
	while (rl->cap < want)
		rl->cap <<= 1;
	ids_random(rl->salt, sizeof(rl->salt));
	for (int i = 0; i < RATELIMIT_SHARDS; i++) {
		struct rl_shard *s = &rl->shards[i];
		pthread_mutex_init(&s->mu, NULL);
		s->e = xcalloc(rl->cap, sizeof(*s->e));
		s->buckets = xmalloc(rl->cap * sizeof(*s->buckets));
		for (uint32_t b = 0; b < rl->cap; b++)
			s->buckets[b] = RL_NONE;
		s->lru_head = s->lru_tail = RL_NONE;
	}
	return rl;
}

void ratelimit_free(struct ratelimit *rl)
{
	if (!rl)
		return;
	for (int i = 0; i < RATELIMIT_SHARDS; i++) {
		pthread_mutex_destroy(&rl->shards[i].mu);
		free(rl->shards[i].e);
		free(rl->shards[i].buckets);
	}
	free(rl);
}

/* Salted, so nobody can pick names that share a chain or an entry. */
static uint64_t rl_hash(const struct ratelimit *rl, struct str name)
{
	unsigned char d[SHA256_DIGEST_LENGTH], in[RL_SALT_LEN + RL_NAME_MAX];
	size_t n = name.len < RL_NAME_MAX ? name.len : RL_NAME_MAX;
	memcpy(in, rl->salt, RL_SALT_LEN);
	if (n)
		memcpy(in + RL_SALT_LEN, name.p, n);
	SHA256(in, RL_SALT_LEN + n, d);
	uint64_t t;
	memcpy(&t, d, sizeof(t));
	return t;
}

/* The bucket's micro-tokens at now_us, capped at the burst. */
static int64_t rl_level(const struct ratelimit *rl, const struct rl_entry *e, int64_t now_us)
{
	int64_t cap = rl->rate.burst * RL_UNIT, dt = now_us - e->last_us;
	if (dt <= 0)
		return e->tokens;
	if (dt >= (cap - e->tokens) / rl->rate.rate + 1)
		return cap;
	int64_t t = e->tokens + dt * rl->rate.rate;
	return t < cap ? t : cap;
}

static void lru_unlink(struct rl_shard *s, uint32_t i)
{
	struct rl_entry *e = &s->e[i];
	if (e->prev_lru != RL_NONE)
		s->e[e->prev_lru].next_lru = e->next_lru;
	else
		s->lru_head = e->next_lru;
	if (e->next_lru != RL_NONE)
		s->e[e->next_lru].prev_lru = e->prev_lru;
	else
		s->lru_tail = e->prev_lru;
}

static void lru_push(struct rl_shard *s, uint32_t i)
{
	s->e[i].prev_lru = RL_NONE;
	s->e[i].next_lru = s->lru_head;
	if (s->lru_head != RL_NONE)
		s->e[s->lru_head].prev_lru = i;
	s->lru_head = i;
	if (s->lru_tail == RL_NONE)
		s->lru_tail = i;
}

static void chain_unlink(const struct ratelimit *rl, struct rl_shard *s, uint32_t i)
{
	uint32_t *link = &s->buckets[s->e[i].tag & (rl->cap - 1)];
	while (*link != RL_NONE && *link != i)
		link = &s->e[*link].next;
	if (*link == i)
		*link = s->e[i].next;
}

/* A free entry: the next unused one, or the least recently used caller when its
 * bucket is full again (forgetting it changes nothing); RL_NONE when neither. */
static uint32_t rl_slot(const struct ratelimit *rl, struct rl_shard *s, int64_t now_us)
{
	if (s->count < rl->cap)
		return s->count++;
	uint32_t i = s->lru_tail;
	if (i == RL_NONE || rl_level(rl, &s->e[i], now_us) < rl->rate.burst * RL_UNIT)
		return RL_NONE;
	lru_unlink(s, i);
	chain_unlink(rl, s, i);
	return i;
}

static enum ratelimit_result shard_take(struct ratelimit *rl, struct rl_shard *s, uint64_t tag,
					int64_t now_us)
{
	uint32_t b = tag & (rl->cap - 1), i;
	for (i = s->buckets[b]; i != RL_NONE; i = s->e[i].next)
		if (s->e[i].tag == tag)
			break;
	if (i == RL_NONE) {
		if ((i = rl_slot(rl, s, now_us)) == RL_NONE)
			return RATELIMIT_FULL;
		s->e[i] = (struct rl_entry){.tag = tag, .tokens = rl->rate.burst * RL_UNIT,
					    .last_us = now_us, .next = s->buckets[b]};
		s->buckets[b] = i;
	} else {
		lru_unlink(s, i);
	}
	lru_push(s, i);
	struct rl_entry *e = &s->e[i];
	e->tokens = rl_level(rl, e, now_us);
	e->last_us = now_us > e->last_us ? now_us : e->last_us;
	if (e->tokens < RL_UNIT)
		return RATELIMIT_THROTTLED;
	e->tokens -= RL_UNIT;
	return RATELIMIT_OK;
}

enum ratelimit_result ratelimit_take(struct ratelimit *rl, struct str name, int64_t now_us)
{
	uint64_t tag = rl_hash(rl, name);
	struct rl_shard *s = &rl->shards[(tag >> 56) % RATELIMIT_SHARDS];
	pthread_mutex_lock(&s->mu);
	enum ratelimit_result r = shard_take(rl, s, tag, now_us);
	pthread_mutex_unlock(&s->mu);
	return r;
}

uint64_t ratelimit_active(struct ratelimit *rl, int64_t now_us)
{
	uint64_t n = 0;
	for (int k = 0; k < RATELIMIT_SHARDS; k++) {
		struct rl_shard *s = &rl->shards[k];
		pthread_mutex_lock(&s->mu);
		/* Most recent first: stop at the first full bucket past which all
		 * are older (an approximation good enough for a gauge). */
		for (uint32_t i = s->lru_head; i != RL_NONE; i = s->e[i].next_lru) {
			if (rl_level(rl, &s->e[i], now_us) >= rl->rate.burst * RL_UNIT &&
			    now_us - s->e[i].last_us > rl->rate.burst * RL_UNIT / rl->rate.rate)
				break;
			n++;
		}
		pthread_mutex_unlock(&s->mu);
	}
	return n;
}

struct ratelimit_rate ratelimit_rate_of(const struct ratelimit *rl)
{
	return rl->rate;
}

uint64_t ratelimit_capacity(const struct ratelimit *rl)
{
	return (uint64_t)rl->cap * RATELIMIT_SHARDS;
}

int ratelimit_rate_parse(struct str s, struct ratelimit_rate *out)
{
	const char *colon = s.p ? memchr(s.p, ':', s.len) : NULL;
	struct str r = colon ? (struct str){s.p, (size_t)(colon - s.p)} : s;
	if (num_parse_i64(r, 1, RATELIMIT_MAX_RATE, &out->rate) != 0)
		return -1;
	out->burst = 2 * out->rate;
	if (!colon)
		return out->burst <= RATELIMIT_MAX_BURST ? 0 : -1;
	struct str b = {colon + 1, s.len - (size_t)(colon + 1 - s.p)};
	return num_parse_i64(b, 1, RATELIMIT_MAX_BURST, &out->burst);
}
