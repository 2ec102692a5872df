/* Log Service projects and logstores, kept in the control plane's database
 * (migration 0005): the same accounts, the same group-commit writer, the same
 * durability as the RPC API's resources. Functions are store_fns' bodies: call
 * them inside store_read / store_write*. Return 0, 1 for "not found" or
 * "exists already" (as documented per function), or STORE_EIO. */
#ifndef LOGSTORE_META_H
#define LOGSTORE_META_H
#include <stdbool.h>
#include <stdint.h>

#include "core/str.h"
#include "store/store.h"

#define META_NAME_MIN 3
#define META_NAME_MAX 63
#define META_MAX_DESCRIPTION 1024
#define META_TTL_DEFAULT 30    /* days */
#define META_TTL_MAX 3650
#define META_SHARDS_DEFAULT 2
#define META_SHARDS_MAX 256
#define META_LIST_MAX 500      /* ListProject / ListLogStores page size cap */
#define META_LIST_DEFAULT 100

struct meta_project {
	int64_t id, account_id;
	char name[META_NAME_MAX + 1];
	char description[META_MAX_DESCRIPTION + 1];
	int64_t created_s, modified_s;
};

struct meta_logstore {
	int64_t id, project_id;
	char name[META_NAME_MAX + 1];
	int64_t ttl, shard_count, created_s, modified_s;
};

/* Log Service naming (issue 10, domain_sls_project_valid/_logstore_valid): a
 * project is 3-63 of [a-z0-9-], a logstore 3-63 of [a-z0-9_-]; neither starts
 * nor ends with '-'. */
bool meta_project_name_ok(struct str s);
bool meta_logstore_name_ok(struct str s);

/* 1 when the name is taken (by any account). */
int meta_project_create(struct store_tx *tx, int64_t account, const char *name,
			const char *description, int64_t now_s);
/* 1 when absent or another account's: the caller answers ProjectNotExist. */
int meta_project_get(struct store_tx *tx, int64_t account, struct str name,
		     struct meta_project *out);
int meta_project_delete(struct store_tx *tx, int64_t account, struct str name);
/* Calls fn per project of the account, by name, from offset; *total counts all. */
int meta_project_list(struct store_tx *tx, int64_t account, int64_t offset, int64_t size,
		      int (*fn)(const struct meta_project *p, void *arg), void *arg, int64_t *total);

/* 1 when the name exists in the project. */
int meta_logstore_create(struct store_tx *tx, int64_t project, const char *name, int64_t ttl,
			 int64_t shards, int64_t now_s);
int meta_logstore_get(struct store_tx *tx, int64_t project, struct str name,
		      struct meta_logstore *out);
int meta_logstore_delete(struct store_tx *tx, int64_t project, struct str name, int64_t *id);
/* Logstores of a project whose name contains `contains` (empty: all). */
int meta_logstore_list(struct store_tx *tx, int64_t project, struct str contains, int64_t offset,
		       int64_t size, int (*fn)(const struct meta_logstore *l, void *arg), void *arg,
		       int64_t *total);
/* UpdateLogStore: ttl and shards (< 0: keep). 1 when no such logstore. */
int meta_logstore_update(struct store_tx *tx, int64_t project, struct str name, int64_t ttl,
			 int64_t shards, int64_t now_s);
/* Calls fn(id, ttl) for every logstore of every account (the retention sweep). */
int meta_logstore_each_ttl(struct store_tx *tx, int (*fn)(int64_t id, int64_t ttl, void *arg),
			   void *arg);
/* A flow log's project and logstore in its account, created when missing
 * (defaults: META_TTL_DEFAULT, META_SHARDS_DEFAULT): 0 with *out filled, or 1
 * when another account owns a project of that name. */
int meta_ensure(struct store_tx *tx, int64_t account, const char *project, const char *logstore,
		int64_t now_s, struct meta_project *p, struct meta_logstore *out);
/* Ids of every logstore of a project (DeleteProject drops their data). */
int meta_logstore_ids(struct store_tx *tx, int64_t project, int64_t *ids, size_t cap, size_t *n);

#endif
