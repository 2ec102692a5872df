/* The log store's metadata on each store backend: meta.c's functions
 * dispatch to the table of the transaction's backend (meta.c: SQLite,
 * meta_pg.c: PostgreSQL). The contracts are meta.h's. */
#ifndef LOGSTORE_META_IMPL_H
#define LOGSTORE_META_IMPL_H
#include "logstore/meta.h"

struct meta_ops {
	int (*project_create)(struct store_tx *tx, int64_t account, const char *name, const char *description, int64_t now_s);
	int (*project_get)(struct store_tx *tx, int64_t account, struct str name, struct meta_project *out);
	int (*project_delete)(struct store_tx *tx, int64_t account, struct str name);
	int (*project_list)(struct store_tx *tx, int64_t account, int64_t offset, int64_t size, int (*fn)(const struct meta_project *p, void *arg), void *arg, int64_t *total);
	int (*logstore_create)(struct store_tx *tx, int64_t project, const char *name, int64_t ttl, int64_t shards, int64_t now_s);
	int (*logstore_get)(struct store_tx *tx, int64_t project, struct str name, struct meta_logstore *out);
	int (*logstore_delete)(struct store_tx *tx, int64_t project, struct str name, int64_t *id);
	int (*logstore_list)(struct store_tx *tx, int64_t project, struct str contains, int64_t offset, int64_t size, int (*fn)(const struct meta_logstore *l, void *arg), void *arg, int64_t *total);
	int (*logstore_ids)(struct store_tx *tx, int64_t project, int64_t *ids, size_t cap, size_t *n);
	int (*logstore_update)(struct store_tx *tx, int64_t project, struct str name, int64_t ttl, int64_t shards, int64_t now_s);
	int (*logstore_each_ttl)(struct store_tx *tx, int (*fn)(int64_t id, int64_t ttl, void *arg), void *arg);
};

#ifdef SAGFLOW_POSTGRES
extern const struct meta_ops meta_pg_ops;
#endif

#endif
