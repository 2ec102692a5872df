#include "meter/flowtable.h"

#include <stdlib.h>
#include <string.h>

#include "core/ids.h"
#include "core/xmalloc.h"

#define FT_NIL UINT32_MAX

/* One tracked flow in 88 bytes. Links are 32-bit slot indices rather than
 * pointers: half the size, and the slots live in one array. Two intrusive
 * lists give O(expired) aging: "lru" is ordered by last packet (idle aging
 * and eviction look only at its head), "age" by first packet (active aging;
 * a record's first packet never changes, so appending keeps it sorted). */
struct ft_entry {
	struct flow_key key; /* 42 bytes */
	uint8_t tcp_flags, pad;
	uint32_t hnext;
	uint32_t lru_prev, lru_next;
	uint32_t age_prev, age_next;
	uint32_t packets, bytes; /* 32-bit like the V5 counters: closed before overflow */
	int64_t first_us, last_us;
};

struct ft_list {
	uint32_t head, tail;
};

struct flowtable {
	struct flowtable_config cfg;
	flowtable_emit_fn emit;
	void *ctx;
	struct ft_entry *slots; /* calloc'd: pages are only touched as flows arrive */
	uint32_t *buckets;
	uint32_t mask;
	uint32_t used;      /* slots ever handed out (high-water mark) */
	uint32_t free_head; /* freed slots, chained through hnext */
	struct ft_list lru, age;
	uint64_t seed;
	int64_t now_us;
	struct flowtable_stats st;
};

size_t flowtable_entry_size(void)
{
	return sizeof(struct ft_entry);
}

size_t flowtable_memory(const struct flowtable *ft)
{
	return (size_t)ft->cfg.max_flows * sizeof(struct ft_entry) + ((size_t)ft->mask + 1) * sizeof(uint32_t);
}

struct flowtable *flowtable_new(const struct flowtable_config *cfg, flowtable_emit_fn emit, void *ctx)
{
	struct flowtable *ft = xcalloc(1, sizeof(*ft));
	ft->cfg = *cfg;
	if (ft->cfg.max_flows < FLOWTABLE_MIN_FLOWS)
		ft->cfg.max_flows = FLOWTABLE_MIN_FLOWS;
	if (ft->cfg.max_flows > FLOWTABLE_MAX_FLOWS)
		ft->cfg.max_flows = FLOWTABLE_MAX_FLOWS;
	/* Buckets: the power of two at or above max_flows, so the load stays <= 1. */
	uint32_t nb = FLOWTABLE_MIN_FLOWS;
	while (nb < ft->cfg.max_flows)
		nb <<= 1;
	ft->mask = nb - 1;
	ft->buckets = xmalloc((size_t)nb * sizeof(uint32_t));
	memset(ft->buckets, 0xff, (size_t)nb * sizeof(uint32_t));
	ft->slots = xcalloc(ft->cfg.max_flows, sizeof(struct ft_entry));
	ft->free_head = FT_NIL;
	ft->lru = ft->age = (struct ft_list){FT_NIL, FT_NIL};
	/* A secret seed: the keys come from the network, so an attacker must not
	 * be able to aim packets at one bucket. */
	ids_random(&ft->seed, sizeof(ft->seed));
	ft->emit = emit;
	ft->ctx = ctx;
	return ft;
}

void flowtable_free(struct flowtable *ft)
{
	if (ft == NULL)
		return;
	free(ft->slots);
	free(ft->buckets);
	free(ft);
}

#define FT_HASH_WORDS ((sizeof(struct flow_key) + 7) / 8)

uint32_t flowtable_hash(const struct flowtable *ft, const struct flow_key *k)
{
	uint64_t w[FT_HASH_WORDS] = {0};
	memcpy(w, k, sizeof(*k));
	uint64_t h = ft->seed;
	for (size_t i = 0; i < FT_HASH_WORDS; i++) {
		h = (h ^ w[i]) * 0x9e3779b97f4a7c15ull;
		h ^= h >> 29;
	}
	return (uint32_t)(h ^ h >> 32);
}

/* The two lists share one pair of helpers through offsets of their links. */
#define FT_LRU 0
#define FT_AGE 1

static uint32_t *ft_prev(struct ft_entry *e, int which)
{
	return which == FT_LRU ? &e->lru_prev : &e->age_prev;
}

static uint32_t *ft_next(struct ft_entry *e, int which)
{
	return which == FT_LRU ? &e->lru_next : &e->age_next;
}

static struct ft_list *ft_listof(struct flowtable *ft, int which)
{
	return which == FT_LRU ? &ft->lru : &ft->age;
}

static void ft_list_append(struct flowtable *ft, int which, uint32_t idx)
{
	struct ft_list *l = ft_listof(ft, which);
	struct ft_entry *e = &ft->slots[idx];
	*ft_prev(e, which) = l->tail;
	*ft_next(e, which) = FT_NIL;
	if (l->tail == FT_NIL)
		l->head = idx;
	else
		*ft_next(&ft->slots[l->tail], which) = idx;
	l->tail = idx;
}

static void ft_list_remove(struct flowtable *ft, int which, uint32_t idx)
{
	struct ft_list *l = ft_listof(ft, which);
	struct ft_entry *e = &ft->slots[idx];
	uint32_t p = *ft_prev(e, which), n = *ft_next(e, which);
	if (p == FT_NIL)
		l->head = n;
	else
		*ft_next(&ft->slots[p], which) = n;
	if (n == FT_NIL)
		l->tail = p;
	else
		*ft_prev(&ft->slots[n], which) = p;
}

static void ft_hash_remove(struct flowtable *ft, uint32_t idx)
{
	uint32_t *link = &ft->buckets[flowtable_hash(ft, &ft->slots[idx].key) & ft->mask];
	while (*link != idx)
		link = &ft->slots[*link].hnext;
	*link = ft->slots[idx].hnext;
}

static void ft_close(struct flowtable *ft, uint32_t idx, enum flow_end reason)
{
	struct ft_entry *e = &ft->slots[idx];
	struct flow_rec r = {
		.key = e->key,
		.tcp_flags = e->tcp_flags,
		.end = (uint8_t)reason,
		.first_us = e->first_us,
		.last_us = e->last_us,
		.packets = e->packets,
		.bytes = e->bytes,
	};
	ft_hash_remove(ft, idx);
	ft_list_remove(ft, FT_LRU, idx);
	ft_list_remove(ft, FT_AGE, idx);
	e->hnext = ft->free_head;
	ft->free_head = idx;
	ft->st.open--;
	ft->st.closed[reason]++;
	ft->emit(ft->ctx, &r);
}

static uint32_t ft_lookup(const struct flowtable *ft, uint32_t h, const struct flow_key *k)
{
	for (uint32_t i = ft->buckets[h & ft->mask]; i != FT_NIL; i = ft->slots[i].hnext)
		if (memcmp(&ft->slots[i].key, k, sizeof(*k)) == 0)
			return i;
	return FT_NIL;
}

static uint32_t ft_alloc(struct flowtable *ft)
{
	if (ft->free_head != FT_NIL) {
		uint32_t idx = ft->free_head;
		ft->free_head = ft->slots[idx].hnext;
		return idx;
	}
	return ft->used++;
}

static void ft_open(struct flowtable *ft, int64_t t, const struct flow_key *k, uint32_t h, uint8_t flags,
		    uint32_t len)
{
	if (ft->st.open == ft->cfg.max_flows)
		ft_close(ft, ft->lru.head, FLOW_END_RESOURCES);
	uint32_t idx = ft_alloc(ft);
	struct ft_entry *e = &ft->slots[idx];
	memset(e, 0, sizeof(*e));
	e->key = *k;
	e->tcp_flags = flags;
	e->packets = 1;
	e->bytes = len;
	e->first_us = e->last_us = t;
	e->hnext = ft->buckets[h & ft->mask];
	ft->buckets[h & ft->mask] = idx;
	ft_list_append(ft, FT_LRU, idx);
	ft_list_append(ft, FT_AGE, idx);
	ft->st.opened++;
	if (++ft->st.open > ft->st.peak)
		ft->st.peak = ft->st.open;
}

void flowtable_expire(struct flowtable *ft, int64_t now_us)
{
	if (now_us > ft->now_us)
		ft->now_us = now_us;
	now_us = ft->now_us;
	/* Idle first: spec §2 rule 1 takes precedence over rule 2. */
	while (ft->lru.head != FT_NIL && now_us - ft->slots[ft->lru.head].last_us > ft->cfg.inactive_us)
		ft_close(ft, ft->lru.head, FLOW_END_IDLE);
	while (ft->age.head != FT_NIL && now_us - ft->slots[ft->age.head].first_us >= ft->cfg.active_us)
		ft_close(ft, ft->age.head, FLOW_END_ACTIVE);
}

void flowtable_prefetch_bucket(const struct flowtable *ft, uint32_t h)
{
	__builtin_prefetch(&ft->buckets[h & ft->mask]);
}

void flowtable_prefetch_entry(const struct flowtable *ft, uint32_t h)
{
	uint32_t i = ft->buckets[h & ft->mask];
	if (i != FT_NIL)
		__builtin_prefetch(&ft->slots[i], 1);
}

void flowtable_packet(struct flowtable *ft, int64_t t_us, const struct flow_key *key, uint8_t tcp_flags,
		      uint32_t ip_len)
{
	flowtable_packet_hashed(ft, t_us, key, flowtable_hash(ft, key), tcp_flags, ip_len);
}

void flowtable_packet_hashed(struct flowtable *ft, int64_t t_us, const struct flow_key *key, uint32_t h,
			     uint8_t tcp_flags, uint32_t ip_len)
{
	/* The clock never runs backwards: a packet older than one already seen
	 * (capture reordering) counts at the current time, which keeps both
	 * lists sorted. */
	flowtable_expire(ft, t_us);
	int64_t t = ft->now_us;
	uint32_t idx = ft_lookup(ft, h, key);
	if (idx != FT_NIL) {
		struct ft_entry *e = &ft->slots[idx];
		if (e->packets == UINT32_MAX || ip_len > UINT32_MAX - e->bytes) {
			ft_close(ft, idx, FLOW_END_COUNTER);
		} else {
			e->packets++;
			e->bytes += ip_len;
			e->tcp_flags |= tcp_flags;
			e->last_us = t;
			ft_list_remove(ft, FT_LRU, idx);
			ft_list_append(ft, FT_LRU, idx);
			return;
		}
	}
	ft_open(ft, t, key, h, tcp_flags, ip_len);
}

void flowtable_flush(struct flowtable *ft, enum flow_end reason)
{
	while (ft->age.head != FT_NIL)
		ft_close(ft, ft->age.head, reason);
}

void flowtable_set_aging(struct flowtable *ft, int64_t active_us, int64_t inactive_us)
{
	ft->cfg.active_us = active_us;
	ft->cfg.inactive_us = inactive_us;
}

void flowtable_stats(const struct flowtable *ft, struct flowtable_stats *out)
{
	*out = ft->st;
}
