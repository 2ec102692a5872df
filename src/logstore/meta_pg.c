/* The log store's projects and logstores on the PostgreSQL store backend:
 * the same queries as meta.c's SQLite ones (sql/pg/0005_logstore_meta.sql). */
#include "logstore/meta_impl.h"

#include <string.h>

#include "store/pg_internal.h"

#define PROJECT_COLS "id, account_id, name, description, created_s, modified_s"
#define LOGSTORE_COLS "id, project_id, name, ttl, shard_count, created_s, modified_s"
#define META_STR_MAX 256 /* a name or filter that long matches nothing stored */

/* A (ptr, len) value as the NUL-terminated text libpq sends: -1 when it does
 * not fit or holds a NUL (then it cannot equal or be part of a stored name). */
static int str_text(struct str s, char out[META_STR_MAX + 1])
{
	if (s.len > META_STR_MAX || (s.len && memchr(s.p, '\0', s.len)))
		return -1;
	if (s.len)
		memcpy(out, s.p, s.len);
	out[s.len] = '\0';
	return 0;
}

/* Runs a statement that changes rows: 0, or its row count in *n. */
static int exec_change(struct store_tx *tx, const char *sql, const struct pg_params *p,
		       const char *what, int64_t *n)
{
	PGresult *r = pg_tx_exec(tx, sql, p, what);
	if (!r)
		return pg_tx_err(tx);
	*n = pg_changes(r);
	PQclear(r);
	return 0;
}

static int pg_project_create(struct store_tx *tx, int64_t account, const char *name,
			     const char *description, int64_t now_s)
{
	struct pg_params p = {0};
	int64_t n = 0;
	pg_p_int(&p, account);
	pg_p_text(&p, name);
	pg_p_text(&p, description);
	pg_p_int(&p, now_s);
	/* ON CONFLICT, not a unique violation: "the name is taken" is an answer. */
	int rc =
	    exec_change(tx,
			"INSERT INTO sls_projects (account_id, name, description, created_s, "
			"modified_s) VALUES ($1, $2, $3, $4, $4) ON CONFLICT (name) DO NOTHING",
			&p, "project insert", &n);
	return rc != 0 ? rc : n == 1 ? 0 : 1;
}

static int project_row(const PGresult *r, int i, struct meta_project *p)
{
	memset(p, 0, sizeof(*p));
	p->id = pg_int(r, i, 0);
	p->account_id = pg_int(r, i, 1);
	p->created_s = pg_int(r, i, 4);
	p->modified_s = pg_int(r, i, 5);
	if (pg_copy(r, i, 2, p->name, sizeof(p->name)) != 0 ||
	    pg_copy(r, i, 3, p->description, sizeof(p->description)) != 0)
		return STORE_EIO;
	return 0;
}

static int pg_project_get(struct store_tx *tx, int64_t account, struct str name,
			  struct meta_project *out)
{
	char nm[META_STR_MAX + 1];
	if (str_text(name, nm) != 0)
		return 1;
	struct pg_params p = {0};
	pg_p_text(&p, nm);
	pg_p_int(&p, account);
	PGresult *r = pg_tx_exec(tx,
				 "SELECT " PROJECT_COLS " FROM sls_projects WHERE name = $1 "
				 "AND account_id = $2",
				 &p, "project get");
	if (!r)
		return pg_tx_err(tx);
	int rc = PQntuples(r) ? project_row(r, 0, out) : 1;
	PQclear(r);
	return rc;
}

static int pg_project_delete(struct store_tx *tx, int64_t account, struct str name)
{
	char nm[META_STR_MAX + 1];
	if (str_text(name, nm) != 0)
		return 1;
	struct pg_params p = {0};
	int64_t n = 0;
	pg_p_text(&p, nm);
	pg_p_int(&p, account);
	int rc = exec_change(tx, "DELETE FROM sls_projects WHERE name = $1 AND account_id = $2", &p,
			     "project delete", &n);
	return rc != 0 ? rc : n ? 0 : 1;
}

static int count_of(struct store_tx *tx, const char *sql, const struct pg_params *p, int64_t *total)
{
	PGresult *r = pg_tx_exec(tx, sql, p, "count");
	if (!r)
		return pg_tx_err(tx);
	*total = PQntuples(r) ? pg_int(r, 0, 0) : 0;
	PQclear(r);
	return 0;
}

static int pg_project_list(struct store_tx *tx, int64_t account, int64_t offset, int64_t size,
			   int (*fn)(const struct meta_project *p, void *arg), void *arg,
			   int64_t *total)
{
	struct pg_params p = {0};
	pg_p_int(&p, account);
	int rc = count_of(tx, "SELECT count(*) FROM sls_projects WHERE account_id = $1", &p, total);
	if (rc != 0)
		return rc;
	pg_p_int(&p, size);
	pg_p_int(&p, offset);
	PGresult *r = pg_tx_exec(tx,
				 "SELECT " PROJECT_COLS " FROM sls_projects WHERE account_id = $1 "
				 "ORDER BY name COLLATE \"C\" LIMIT $2 OFFSET $3",
				 &p, "project list");
	if (!r)
		return pg_tx_err(tx);
	struct meta_project pr;
	for (int i = 0; i < PQntuples(r) && rc == 0; i++)
		if (project_row(r, i, &pr) != 0 || fn(&pr, arg) != 0)
			rc = STORE_EIO;
	PQclear(r);
	return rc;
}

static int pg_logstore_create(struct store_tx *tx, int64_t project, const char *name, int64_t ttl,
			      int64_t shards, int64_t now_s)
{
	struct pg_params p = {0};
	int64_t n = 0;
	pg_p_int(&p, project);
	pg_p_text(&p, name);
	pg_p_int(&p, ttl);
	pg_p_int(&p, shards);
	pg_p_int(&p, now_s);
	int rc = exec_change(tx,
			     "INSERT INTO sls_logstores (project_id, name, ttl, shard_count, "
			     "created_s, modified_s) VALUES ($1, $2, $3, $4, $5, $5) "
			     "ON CONFLICT (project_id, name) DO NOTHING",
			     &p, "logstore insert", &n);
	return rc != 0 ? rc : n == 1 ? 0 : 1;
}

static int logstore_row(const PGresult *r, int i, struct meta_logstore *l)
{
	memset(l, 0, sizeof(*l));
	l->id = pg_int(r, i, 0);
	l->project_id = pg_int(r, i, 1);
	l->ttl = pg_int(r, i, 3);
	l->shard_count = pg_int(r, i, 4);
	l->created_s = pg_int(r, i, 5);
	l->modified_s = pg_int(r, i, 6);
	return pg_copy(r, i, 2, l->name, sizeof(l->name)) != 0 ? STORE_EIO : 0;
}

static int pg_logstore_get(struct store_tx *tx, int64_t project, struct str name,
			   struct meta_logstore *out)
{
	char nm[META_STR_MAX + 1];
	if (str_text(name, nm) != 0)
		return 1;
	struct pg_params p = {0};
	pg_p_int(&p, project);
	pg_p_text(&p, nm);
	PGresult *r = pg_tx_exec(tx,
				 "SELECT " LOGSTORE_COLS " FROM sls_logstores WHERE "
				 "project_id = $1 AND name = $2",
				 &p, "logstore get");
	if (!r)
		return pg_tx_err(tx);
	int rc = PQntuples(r) ? logstore_row(r, 0, out) : 1;
	PQclear(r);
	return rc;
}

static int pg_logstore_delete(struct store_tx *tx, int64_t project, struct str name, int64_t *id)
{
	struct meta_logstore l;
	int rc = pg_logstore_get(tx, project, name, &l);
	if (rc != 0)
		return rc;
	struct pg_params p = {0};
	int64_t n = 0;
	pg_p_int(&p, l.id);
	rc = exec_change(tx, "DELETE FROM sls_logstores WHERE id = $1", &p, "logstore delete", &n);
	if (rc == 0)
		*id = l.id;
	return rc;
}

static int pg_logstore_list(struct store_tx *tx, int64_t project, struct str contains,
			    int64_t offset, int64_t size,
			    int (*fn)(const struct meta_logstore *l, void *arg), void *arg,
			    int64_t *total)
{
	char sub[META_STR_MAX + 1];
	if (str_text(contains, sub) != 0) { /* contained in no stored name */
		*total = 0;
		return 0;
	}
	struct pg_params p = {0};
	pg_p_int(&p, project);
	pg_p_text(&p, sub);
	/* strpos(), not LIKE: the filter is a literal, '%' and '_' included. */
	int rc = count_of(tx,
			  "SELECT count(*) FROM sls_logstores WHERE project_id = $1 AND "
			  "strpos(name, $2) > 0",
			  &p, total);
	if (rc != 0)
		return rc;
	pg_p_int(&p, size);
	pg_p_int(&p, offset);
	PGresult *r = pg_tx_exec(tx,
				 "SELECT " LOGSTORE_COLS " FROM sls_logstores WHERE "
				 "project_id = $1 AND strpos(name, $2) > 0 "
				 "ORDER BY name COLLATE \"C\" LIMIT $3 OFFSET $4",
				 &p, "logstore list");
	if (!r)
		return pg_tx_err(tx);
	struct meta_logstore l;
	for (int i = 0; i < PQntuples(r) && rc == 0; i++)
		if (logstore_row(r, i, &l) != 0 || fn(&l, arg) != 0)
			rc = STORE_EIO;
	PQclear(r);
	return rc;
}

static int pg_logstore_ids(struct store_tx *tx, int64_t project, int64_t *ids, size_t cap,
			   size_t *n)
{
	struct pg_params p = {0};
	pg_p_int(&p, project);
	PGresult *r = pg_tx_exec(tx, "SELECT id FROM sls_logstores WHERE project_id = $1", &p,
				 "logstore ids");
	if (!r)
		return pg_tx_err(tx);
	*n = 0;
	for (int i = 0; i < PQntuples(r) && *n < cap; i++)
		ids[(*n)++] = pg_int(r, i, 0);
	PQclear(r);
	return 0;
}

static int pg_logstore_update(struct store_tx *tx, int64_t project, struct str name, int64_t ttl,
			      int64_t shards, int64_t now_s)
{
	char nm[META_STR_MAX + 1];
	if (str_text(name, nm) != 0)
		return 1;
	struct pg_params p = {0};
	int64_t n = 0;
	pg_p_int(&p, ttl);
	pg_p_int(&p, shards);
	pg_p_int(&p, now_s);
	pg_p_int(&p, project);
	pg_p_text(&p, nm);
	int rc = exec_change(tx,
			     "UPDATE sls_logstores SET "
			     "ttl = CASE WHEN $1::bigint < 0 THEN ttl ELSE $1 END, "
			     "shard_count = CASE WHEN $2::bigint < 0 THEN shard_count ELSE $2 END, "
			     "modified_s = $3 WHERE project_id = $4 AND name = $5",
			     &p, "logstore update", &n);
	return rc != 0 ? rc : n ? 0 : 1;
}

static int pg_logstore_each_ttl(struct store_tx *tx, int (*fn)(int64_t id, int64_t ttl, void *arg),
				void *arg)
{
	PGresult *r =
	    pg_tx_exec(tx, "SELECT id, ttl FROM sls_logstores ORDER BY id", NULL, "logstore ttls");
	if (!r)
		return pg_tx_err(tx);
	int rc = 0;
	for (int i = 0; i < PQntuples(r) && rc == 0; i++)
		if (fn(pg_int(r, i, 0), pg_int(r, i, 1), arg) != 0)
			rc = STORE_EIO;
	PQclear(r);
	return rc;
}

const struct meta_ops meta_pg_ops = {
    .project_create = pg_project_create,
    .project_get = pg_project_get,
    .project_delete = pg_project_delete,
    .project_list = pg_project_list,
    .logstore_create = pg_logstore_create,
    .logstore_get = pg_logstore_get,
    .logstore_delete = pg_logstore_delete,
    .logstore_list = pg_logstore_list,
    .logstore_ids = pg_logstore_ids,
    .logstore_update = pg_logstore_update,
    .logstore_each_ttl = pg_logstore_each_ttl,
};
