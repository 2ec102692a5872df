/* A hash table of groups for the SQL table's pre-aggregation (logstore/sql.h):
 * byte-string keys (a group's encoded key values) to a fixed number of int64
 * accumulators, each with a "seen a value" flag. A group is one record in an
 * arena — hash, key length, accumulators, flags, key — so a lookup touches a
 * slot and one record: this runs once per log of the query. Groups are
 * numbered in the order they were first seen. */
#ifndef LOGSTORE_GROUPS_H
#define LOGSTORE_GROUPS_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/str.h"

struct groups_rec {
	uint64_t hash;
	uint64_t key_len;
	int64_t acc[]; /* nacc, then nacc flag bytes, then the key */
};

struct groups {
	size_t nacc;
	struct buf arena; /* the records, each 8-byte aligned */
	size_t *at;       /* n: where group i's record starts */
	size_t n, cap;
	uint64_t *slot;   /* groups.c slot_of: hash tag and group index + 1, 0 = empty */
	size_t nslots;
};

void groups_init(struct groups *g, size_t nacc);
void groups_free(struct groups *g);
/* The group of key (created when new, accumulators 0 and flags false); its index. */
size_t groups_find(struct groups *g, struct str key);
/* The same in steps, for a batch of keys: a lookup waits on memory (slot,
 * then record) once the table outgrows the caches, so the caller hashes the
 * batch, asks for the slots (record false) and then the records (true) of keys
 * a few places ahead, and finds each with its hash. Prefetches are hints: any
 * order of calls gives the same groups. */
uint64_t groups_hash(struct str key);
void groups_prefetch(const struct groups *g, uint64_t hash, bool record);
size_t groups_find_hashed(struct groups *g, struct str key, uint64_t hash);

static inline struct groups_rec *groups_rec(const struct groups *g, size_t i)
{
	return (struct groups_rec *)(void *)(g->arena.p + g->at[i]);
}
static inline bool *groups_has(const struct groups *g, size_t i)
{
	return (bool *)(void *)(groups_rec(g, i)->acc + g->nacc);
}
static inline struct str groups_key(const struct groups *g, size_t i)
{
	return (struct str){(const char *)(groups_has(g, i) + g->nacc), groups_rec(g, i)->key_len};
}

#endif
