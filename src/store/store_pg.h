/* What the cross-node pieces (admission, node leases, key invalidation) need
 * from the PostgreSQL backend, and nothing else. Each returns the neutral
 * value for a store of another backend. */
#ifndef STORE_STORE_PG_H
#define STORE_STORE_PG_H
#include <stdbool.h>

struct store;

/* The libpq conninfo the store was opened with (it may hold a password:
 * never log it), or NULL when s is not PostgreSQL. */
const char *store_pg_conninfo(struct store *s);
/* The node's writer threads (--pg-writers), or 0. */
int store_pg_writers(struct store *s);
/* The first account_version shard of this node's writers (writer i bumps
 * shard base + i): its shard slot x STORE_PG_WRITERS_MAX, taken by the
 * health thread when it connects (store_options.node only; others bump
 * slot 0's rows). -1 while a node holds no slot yet, or for another backend. */
int store_pg_shard_base(struct store *s);

/* Other nodes with a live lease on the database, as the health thread last
 * counted them (every PG_PING_US; the writers' linger, docs/store.md), or -1
 * for another backend. */
int store_pg_peers(struct store *s);

/* The admission batcher's counters (pg_admitq.h); false, and nothing
 * written, when s is not PostgreSQL. */
struct pg_admitq_stats;
bool store_pg_admit_stats(struct store *s, struct pg_admitq_stats *out);

#endif
