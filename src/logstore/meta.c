#include "logstore/meta_impl.h"

#include <string.h>

#include "domain/domain.h"
#include "store/sqlite_internal.h"

#define PROJECT_COLS "id, account_id, name, description, created_s, modified_s"
#define LOGSTORE_COLS "id, project_id, name, ttl, shard_count, created_s, modified_s"

/* The rule is the domain's: a flow log's ProjectName/LogstoreName passed it. */
bool meta_project_name_ok(struct str s)
{
	return domain_sls_project_valid(s);
}

bool meta_logstore_name_ok(struct str s)
{
	return domain_sls_logstore_valid(s);
}

static int bind_str(sqlite3_stmt *st, int i, struct str s)
{
	return sqlite3_bind_text(st, i, s.p ? s.p : "", (int)s.len, SQLITE_STATIC);
}

/* One step of a statement that changes rows: 0, 1 on a UNIQUE conflict. */
static int step_change(struct store_tx *tx, sqlite3_stmt *st, const char *what)
{
	int rc = sqlite3_step(st);
	if (rc == SQLITE_DONE)
		return 0;
	if ((rc & 0xff) == SQLITE_CONSTRAINT && sqlite3_extended_errcode(sqlite_tx_db(tx)) ==
					       SQLITE_CONSTRAINT_UNIQUE)
		return 1;
	return sqlite_tx_fail(tx, what);
}

static int sqlite_project_create(struct store_tx *tx, int64_t account, const char *name,
			const char *description, int64_t now_s)
{
	sqlite3_stmt *st = sqlite_tx_stmt(tx, "INSERT INTO sls_projects (account_id, name, "
					      "description, created_s, modified_s) "
					      "VALUES (?, ?, ?, ?, ?)");
	if (!st)
		return STORE_EIO;
	sqlite3_bind_int64(st, 1, account);
	sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, description, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, now_s);
	sqlite3_bind_int64(st, 5, now_s);
	return step_change(tx, st, "project insert");
}

static int project_row(sqlite3_stmt *st, struct meta_project *p)
{
	memset(p, 0, sizeof(*p));
	p->id = sqlite3_column_int64(st, 0);
	p->account_id = sqlite3_column_int64(st, 1);
	p->created_s = sqlite3_column_int64(st, 4);
	p->modified_s = sqlite3_column_int64(st, 5);
	if (sqlite_col_copy(st, 2, p->name, sizeof(p->name)) != 0 ||
	    sqlite_col_copy(st, 3, p->description, sizeof(p->description)) != 0)
		return STORE_EIO;
	return 0;
}

static int sqlite_project_get(struct store_tx *tx, int64_t account, struct str name,
		     struct meta_project *out)
{
	sqlite3_stmt *st = sqlite_tx_stmt(tx, "SELECT " PROJECT_COLS " FROM sls_projects "
					      "WHERE name = ? AND account_id = ?");
	if (!st)
		return STORE_EIO;
	bind_str(st, 1, name);
	sqlite3_bind_int64(st, 2, account);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_DONE)
		return 1;
	if (rc != SQLITE_ROW)
		return sqlite_tx_fail(tx, "project get");
	return project_row(st, out);
}

static int sqlite_project_delete(struct store_tx *tx, int64_t account, struct str name)
{
	sqlite3_stmt *st = sqlite_tx_stmt(tx, "DELETE FROM sls_projects WHERE name = ? AND "
					      "account_id = ?");
	if (!st)
		return STORE_EIO;
	bind_str(st, 1, name);
	sqlite3_bind_int64(st, 2, account);
	if (sqlite3_step(st) != SQLITE_DONE)
		return sqlite_tx_fail(tx, "project delete");
	return sqlite3_changes(sqlite_tx_db(tx)) ? 0 : 1;
}

static int count_of(struct store_tx *tx, sqlite3_stmt *st, int64_t *total)
{
	if (sqlite3_step(st) != SQLITE_ROW)
		return sqlite_tx_fail(tx, "count");
	*total = sqlite3_column_int64(st, 0);
	return 0;
}

static int sqlite_project_list(struct store_tx *tx, int64_t account, int64_t offset, int64_t size,
		      int (*fn)(const struct meta_project *p, void *arg), void *arg, int64_t *total)
{
	sqlite3_stmt *c = sqlite_tx_stmt(tx, "SELECT count(*) FROM sls_projects WHERE account_id = ?");
	if (!c)
		return STORE_EIO;
	sqlite3_bind_int64(c, 1, account);
	int rc = count_of(tx, c, total);
	sqlite3_stmt *st = rc ? NULL : sqlite_tx_stmt(tx, "SELECT " PROJECT_COLS " FROM sls_projects "
					      "WHERE account_id = ? ORDER BY name LIMIT ? OFFSET ?");
	if (!st)
		return STORE_EIO;
	sqlite3_bind_int64(st, 1, account);
	sqlite3_bind_int64(st, 2, size);
	sqlite3_bind_int64(st, 3, offset);
	struct meta_project p;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		if (project_row(st, &p) != 0 || fn(&p, arg) != 0)
			return STORE_EIO;
	return rc == SQLITE_DONE ? 0 : sqlite_tx_fail(tx, "project list");
}

static int sqlite_logstore_create(struct store_tx *tx, int64_t project, const char *name, int64_t ttl,
			 int64_t shards, int64_t now_s)
{
	sqlite3_stmt *st = sqlite_tx_stmt(tx, "INSERT INTO sls_logstores (project_id, name, ttl, "
					      "shard_count, created_s, modified_s) "
					      "VALUES (?, ?, ?, ?, ?, ?)");
	if (!st)
		return STORE_EIO;
	sqlite3_bind_int64(st, 1, project);
	sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, ttl);
	sqlite3_bind_int64(st, 4, shards);
	sqlite3_bind_int64(st, 5, now_s);
	sqlite3_bind_int64(st, 6, now_s);
	return step_change(tx, st, "logstore insert");
}

static int logstore_row(sqlite3_stmt *st, struct meta_logstore *l)
{
	memset(l, 0, sizeof(*l));
	l->id = sqlite3_column_int64(st, 0);
	l->project_id = sqlite3_column_int64(st, 1);
	l->ttl = sqlite3_column_int64(st, 3);
	l->shard_count = sqlite3_column_int64(st, 4);
	l->created_s = sqlite3_column_int64(st, 5);
	l->modified_s = sqlite3_column_int64(st, 6);
	return sqlite_col_copy(st, 2, l->name, sizeof(l->name)) != 0 ? STORE_EIO : 0;
}

static int sqlite_logstore_get(struct store_tx *tx, int64_t project, struct str name,
		      struct meta_logstore *out)
{
	sqlite3_stmt *st = sqlite_tx_stmt(tx, "SELECT " LOGSTORE_COLS " FROM sls_logstores "
					      "WHERE project_id = ? AND name = ?");
	if (!st)
		return STORE_EIO;
	sqlite3_bind_int64(st, 1, project);
	bind_str(st, 2, name);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_DONE)
		return 1;
	if (rc != SQLITE_ROW)
		return sqlite_tx_fail(tx, "logstore get");
	return logstore_row(st, out);
}

static int sqlite_logstore_delete(struct store_tx *tx, int64_t project, struct str name, int64_t *id)
{
	struct meta_logstore l;
	int rc = sqlite_logstore_get(tx, project, name, &l);
	if (rc != 0)
		return rc;
	sqlite3_stmt *st = sqlite_tx_stmt(tx, "DELETE FROM sls_logstores WHERE id = ?");
	if (!st)
		return STORE_EIO;
	sqlite3_bind_int64(st, 1, l.id);
	if (sqlite3_step(st) != SQLITE_DONE)
		return sqlite_tx_fail(tx, "logstore delete");
	*id = l.id;
	return 0;
}

static int sqlite_logstore_list(struct store_tx *tx, int64_t project, struct str contains, int64_t offset,
		       int64_t size, int (*fn)(const struct meta_logstore *l, void *arg), void *arg,
		       int64_t *total)
{
	/* instr(), not LIKE: the filter is a literal, '%' and '_' included. */
	sqlite3_stmt *c = sqlite_tx_stmt(tx, "SELECT count(*) FROM sls_logstores WHERE "
					     "project_id = ? AND instr(name, ?) > 0");
	if (!c)
		return STORE_EIO;
	sqlite3_bind_int64(c, 1, project);
	bind_str(c, 2, contains);
	int rc = count_of(tx, c, total);
	sqlite3_stmt *st = rc ? NULL : sqlite_tx_stmt(tx, "SELECT " LOGSTORE_COLS " FROM sls_logstores "
					      "WHERE project_id = ? AND instr(name, ?) > 0 "
					      "ORDER BY name LIMIT ? OFFSET ?");
	if (!st)
		return STORE_EIO;
	sqlite3_bind_int64(st, 1, project);
	bind_str(st, 2, contains);
	sqlite3_bind_int64(st, 3, size);
	sqlite3_bind_int64(st, 4, offset);
	struct meta_logstore l;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		if (logstore_row(st, &l) != 0 || fn(&l, arg) != 0)
			return STORE_EIO;
	return rc == SQLITE_DONE ? 0 : sqlite_tx_fail(tx, "logstore list");
}

static int sqlite_logstore_ids(struct store_tx *tx, int64_t project, int64_t *ids, size_t cap, size_t *n)
{
	sqlite3_stmt *st = sqlite_tx_stmt(tx, "SELECT id FROM sls_logstores WHERE project_id = ?");
	if (!st)
		return STORE_EIO;
	sqlite3_bind_int64(st, 1, project);
	int rc;
	*n = 0;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW && *n < cap)
		ids[(*n)++] = sqlite3_column_int64(st, 0);
	return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : sqlite_tx_fail(tx, "logstore ids");
}

static int sqlite_logstore_update(struct store_tx *tx, int64_t project, struct str name, int64_t ttl,
			 int64_t shards, int64_t now_s)
{
	sqlite3_stmt *st = sqlite_tx_stmt(tx, "UPDATE sls_logstores SET "
					      "ttl = CASE WHEN ?1 < 0 THEN ttl ELSE ?1 END, "
					      "shard_count = CASE WHEN ?2 < 0 THEN shard_count ELSE ?2 END, "
					      "modified_s = ?3 WHERE project_id = ?4 AND name = ?5");
	if (!st)
		return STORE_EIO;
	sqlite3_bind_int64(st, 1, ttl);
	sqlite3_bind_int64(st, 2, shards);
	sqlite3_bind_int64(st, 3, now_s);
	sqlite3_bind_int64(st, 4, project);
	bind_str(st, 5, name);
	if (sqlite3_step(st) != SQLITE_DONE)
		return sqlite_tx_fail(tx, "logstore update");
	return sqlite3_changes(sqlite_tx_db(tx)) ? 0 : 1;
}

static int sqlite_logstore_each_ttl(struct store_tx *tx, int (*fn)(int64_t id, int64_t ttl, void *arg),
			   void *arg)
{
	sqlite3_stmt *st = sqlite_tx_stmt(tx, "SELECT id, ttl FROM sls_logstores ORDER BY id");
	if (!st)
		return STORE_EIO;
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		if (fn(sqlite3_column_int64(st, 0), sqlite3_column_int64(st, 1), arg) != 0)
			return STORE_EIO;
	return rc == SQLITE_DONE ? 0 : sqlite_tx_fail(tx, "logstore ttls");
}

static const struct meta_ops meta_sqlite_ops = {
	.project_create = sqlite_project_create,
	.project_get = sqlite_project_get,
	.project_delete = sqlite_project_delete,
	.project_list = sqlite_project_list,
	.logstore_create = sqlite_logstore_create,
	.logstore_get = sqlite_logstore_get,
	.logstore_delete = sqlite_logstore_delete,
	.logstore_list = sqlite_logstore_list,
	.logstore_ids = sqlite_logstore_ids,
	.logstore_update = sqlite_logstore_update,
	.logstore_each_ttl = sqlite_logstore_each_ttl,
};

/* The backend of tx: its metadata lives in the same database. */
static const struct meta_ops *ops_of(struct store_tx *tx)
{
#ifdef SAGFLOW_POSTGRES
	if (!strcmp(store_tx_backend(tx), "postgresql"))
		return &meta_pg_ops;
#endif
	return &meta_sqlite_ops;
}

int meta_project_create(struct store_tx *tx, int64_t account, const char *name, const char *description, int64_t now_s)
{
	return ops_of(tx)->project_create(tx, account, name, description, now_s);
}

int meta_project_get(struct store_tx *tx, int64_t account, struct str name, struct meta_project *out)
{
	return ops_of(tx)->project_get(tx, account, name, out);
}

int meta_project_delete(struct store_tx *tx, int64_t account, struct str name)
{
	return ops_of(tx)->project_delete(tx, account, name);
}

int meta_project_list(struct store_tx *tx, int64_t account, int64_t offset, int64_t size, int (*fn)(const struct meta_project *p, void *arg), void *arg, int64_t *total)
{
	return ops_of(tx)->project_list(tx, account, offset, size, fn, arg, total);
}

int meta_logstore_create(struct store_tx *tx, int64_t project, const char *name, int64_t ttl, int64_t shards, int64_t now_s)
{
	return ops_of(tx)->logstore_create(tx, project, name, ttl, shards, now_s);
}

int meta_logstore_get(struct store_tx *tx, int64_t project, struct str name, struct meta_logstore *out)
{
	return ops_of(tx)->logstore_get(tx, project, name, out);
}

int meta_logstore_delete(struct store_tx *tx, int64_t project, struct str name, int64_t *id)
{
	return ops_of(tx)->logstore_delete(tx, project, name, id);
}

int meta_logstore_list(struct store_tx *tx, int64_t project, struct str contains, int64_t offset, int64_t size, int (*fn)(const struct meta_logstore *l, void *arg), void *arg, int64_t *total)
{
	return ops_of(tx)->logstore_list(tx, project, contains, offset, size, fn, arg, total);
}

int meta_logstore_ids(struct store_tx *tx, int64_t project, int64_t *ids, size_t cap, size_t *n)
{
	return ops_of(tx)->logstore_ids(tx, project, ids, cap, n);
}

int meta_logstore_update(struct store_tx *tx, int64_t project, struct str name, int64_t ttl, int64_t shards, int64_t now_s)
{
	return ops_of(tx)->logstore_update(tx, project, name, ttl, shards, now_s);
}

int meta_logstore_each_ttl(struct store_tx *tx, int (*fn)(int64_t id, int64_t ttl, void *arg), void *arg)
{
	return ops_of(tx)->logstore_each_ttl(tx, fn, arg);
}

int meta_ensure(struct store_tx *tx, int64_t account, const char *project, const char *logstore,
		int64_t now_s, struct meta_project *p, struct meta_logstore *out)
{
	int rc = meta_project_get(tx, account, str_c(project), p);
	if (rc == 1) {
		/* Absent in this account: a UNIQUE conflict means another's has the name. */
		if ((rc = meta_project_create(tx, account, project, "", now_s)) != 0)
			return rc;
		rc = meta_project_get(tx, account, str_c(project), p);
	}
	if (rc != 0)
		return rc == 1 ? STORE_EIO : rc;
	rc = meta_logstore_get(tx, p->id, str_c(logstore), out);
	if (rc == 1) {
		rc = meta_logstore_create(tx, p->id, logstore, META_TTL_DEFAULT, META_SHARDS_DEFAULT,
					  now_s);
		if (rc == 0)
			rc = meta_logstore_get(tx, p->id, str_c(logstore), out);
	}
	return rc == 1 ? STORE_EIO : rc;
}
