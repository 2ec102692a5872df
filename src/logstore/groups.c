#include "logstore/groups.h"

#include <stdlib.h>
#include <string.h>

#include "core/xmalloc.h"

#define GROUPS_MIN_SLOTS 1024
#define GROUPS_TAG 0xffffffff00000000ULL

/* Eight bytes at a time (keys are ~10-30 bytes, hashed once per row). */
uint64_t groups_hash(struct str k)
{
	uint64_t h = 0x9e3779b97f4a7c15ULL ^ k.len;
	size_t i = 0;
	for (; i + 8 <= k.len; i += 8) {
		uint64_t w;
		memcpy(&w, k.p + i, 8);
		h = (h ^ w) * 0xbf58476d1ce4e5b9ULL;
		h ^= h >> 31;
	}
	uint64_t w = 0;
	if (k.len > i)
		memcpy(&w, k.p + i, k.len - i);
	h = (h ^ w) * 0x94d049bb133111ebULL;
	return h ^ (h >> 29);
}

/* A slot: the group's index + 1 in the low half (0 = empty), its hash's high
 * half above, so a probe rarely touches a record that is not the one. */
static uint64_t slot_of(uint64_t hash, size_t i)
{
	return (hash & GROUPS_TAG) | (uint64_t)(i + 1);
}

void groups_init(struct groups *g, size_t nacc)
{
	memset(g, 0, sizeof(*g));
	g->nacc = nacc;
	g->nslots = GROUPS_MIN_SLOTS;
	g->slot = xcalloc(g->nslots, sizeof(*g->slot));
}

void groups_free(struct groups *g)
{
	free(g->at);
	free(g->slot);
	buf_free(&g->arena);
	memset(g, 0, sizeof(*g));
}

static void rehash(struct groups *g)
{
	free(g->slot);
	g->nslots *= 2;
	g->slot = xcalloc(g->nslots, sizeof(*g->slot));
	for (size_t i = 0; i < g->n; i++) {
		uint64_t h = groups_rec(g, i)->hash;
		size_t s = h & (g->nslots - 1);
		while (g->slot[s])
			s = (s + 1) & (g->nslots - 1);
		g->slot[s] = slot_of(h, i);
	}
}

static size_t add(struct groups *g, struct str key, uint64_t h)
{
	if (g->n == g->cap) {
		g->cap = g->cap ? 2 * g->cap : 256;
		g->at = xrealloc(g->at, g->cap * sizeof(*g->at));
	}
	size_t size = sizeof(struct groups_rec) + g->nacc * (sizeof(int64_t) + 1) + key.len;
	size = (size + 7) / 8 * 8;
	size_t i = g->n++;
	g->at[i] = g->arena.len;
	buf_reserve(&g->arena, size);
	memset(g->arena.p + g->arena.len, 0, size);
	g->arena.len += size;
	struct groups_rec *r = groups_rec(g, i);
	r->hash = h;
	r->key_len = key.len;
	if (key.len)
		memcpy(groups_has(g, i) + g->nacc, key.p, key.len);
	return i;
}

void groups_prefetch(const struct groups *g, uint64_t h, bool record)
{
	const uint64_t *slot = &g->slot[h & (g->nslots - 1)];
	if (!record) {
		__builtin_prefetch(slot);
		return;
	}
	uint64_t s = *slot; /* the first probe's: usually the group itself */
	if (s && (s & GROUPS_TAG) == (h & GROUPS_TAG))
		__builtin_prefetch(g->arena.p + g->at[(uint32_t)s - 1]);
}

size_t groups_find(struct groups *g, struct str key)
{
	return groups_find_hashed(g, key, groups_hash(key));
}

size_t groups_find_hashed(struct groups *g, struct str key, uint64_t h)
{
	uint64_t tag = h & GROUPS_TAG;
	size_t s = h & (g->nslots - 1);
	for (; g->slot[s]; s = (s + 1) & (g->nslots - 1)) {
		if ((g->slot[s] & GROUPS_TAG) != tag)
			continue;
		size_t i = (uint32_t)g->slot[s] - 1;
		struct groups_rec *r = groups_rec(g, i);
		if (r->key_len == key.len && !memcmp(groups_has(g, i) + g->nacc, key.p, key.len))
			return i;
	}
	size_t i = add(g, key, h);
	g->slot[s] = slot_of(h, i);
	if (2 * g->n > g->nslots)
		rehash(g);
	return i;
}
