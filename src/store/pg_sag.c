/* Flow logs, gateways and devices for the PostgreSQL backend (store_sag.h);
 * the twin of sqlite_sag.c, with the same columns in the same order.
 *
 * The rules that SQLite's single writer gets by running jobs one at a time
 * hold here across processes (spec scale-out §4, §7.5): the quota is one
 * conditional upsert of flowlog_counts; inside a write job the flow log and
 * the gateway a rule reads are locked FOR UPDATE until the batch commits, in
 * the order flow log -> gateway -> devices; uniqueness stays on constraints.
 * Associate takes the flow log FOR UPDATE rather than FOR SHARE: simpler,
 * and one account's jobs share one writer connection anyway.
 *
 * Associate and Disassociate lock both rows in one statement and read
 * Associate's devices in a second one in the same round trip
 * (pg_flowlog_sag_get): READ COMMITTED re-reads only the rows a statement
 * locks after waiting for them; every other row it reads comes from the
 * snapshot taken before the wait, so what a rule reads besides the locked
 * rows comes from a statement after the lock (docs/store.md).
 *
 * The writer may send those two statements ahead, for the batch's first
 * hinted jobs at once, right after BEGIN (store_pg.c prefetch; docs/store.md
 * "Prefetched lookups"): pg_flowlog_sag_stmts builds them for both, so the
 * answer a job gets from pg_tx_prefetched is the one its own statements
 * would give, read in the same order (lock, then devices) and in the same
 * transaction, only earlier. */
#include "store/pg_internal.h"

#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/timeutil.h"
#include "rpc/errors.h"
#include "store/sag_cols.h"

static struct str col_str(const PGresult *r, int row, int col)
{
	if (PQgetisnull(r, row, col))
		return (struct str){"", 0};
	return (struct str){PQgetvalue(r, row, col), (size_t)PQgetlength(r, row, col)};
}

static void p_owner(struct pg_params *p, struct owner o)
{
	pg_p_int(p, o.account_id);
	pg_p_text(p, o.region_id);
}

/* Runs sql expecting at most one row: 0 with *out, 1 none, or the error. */
static int exec_one(struct store_tx *tx, const char *sql, const struct pg_params *p,
		    const char *what, PGresult **out)
{
	PGresult *r = pg_tx_exec(tx, sql, p, what);
	if (!r)
		return pg_tx_err(tx);
	if (PQntuples(r) == 0) {
		PQclear(r);
		return 1;
	}
	*out = r;
	return 0;
}

/* Runs a statement that returns nothing needed: 0, or the error. With
 * changes, the number of rows it changed. */
static int exec_done(struct store_tx *tx, const char *sql, const struct pg_params *p,
		     const char *what, int64_t *changes)
{
	PGresult *r = pg_tx_exec(tx, sql, p, what);
	if (!r)
		return pg_tx_err(tx);
	if (changes)
		*changes = pg_changes(r);
	PQclear(r);
	return 0;
}

static int row_flowlog(const PGresult *r, int i, struct flowlog *fl)
{
	memset(fl, 0, sizeof(*fl));
	fl->rowid = pg_int(r, i, 0);
	if (pg_copy(r, i, 1, fl->id, sizeof(fl->id)) < 0 ||
	    pg_copy(r, i, 2, fl->region_id, sizeof(fl->region_id)) < 0 ||
	    pg_copy(r, i, 3, fl->resource_group_id, sizeof(fl->resource_group_id)) < 0 ||
	    pg_copy(r, i, 4, fl->name, sizeof(fl->name)) < 0 ||
	    pg_copy(r, i, 5, fl->description, sizeof(fl->description)) < 0 ||
	    flowlog_status_parse(col_str(r, i, 6), &fl->status) < 0 ||
	    flowlog_output_parse(col_str(r, i, 7), &fl->output) < 0 ||
	    pg_copy(r, i, 8, fl->sls_region_id, sizeof(fl->sls_region_id)) < 0 ||
	    pg_copy(r, i, 9, fl->project_name, sizeof(fl->project_name)) < 0 ||
	    pg_copy(r, i, 10, fl->logstore_name, sizeof(fl->logstore_name)) < 0 ||
	    pg_copy(r, i, 11, fl->netflow_server_ip, sizeof(fl->netflow_server_ip)) < 0)
		return -1;
	fl->netflow_server_port = (int)pg_int(r, i, 12);
	struct str v = col_str(r, i, 13);
	fl->netflow_version = NETFLOW_NONE;
	if (v.len && netflow_version_parse(v, &fl->netflow_version) < 0)
		return -1;
	fl->active_aging = (int)pg_int(r, i, 14);
	fl->inactive_aging = (int)pg_int(r, i, 15);
	fl->account_id = pg_int(r, i, 16);
	fl->created_ms = pg_int(r, i, 17);
	fl->total_sag_num = pg_int(r, i, 18);
	if (pg_copy(r, i, 19, fl->sls_prev_project, sizeof(fl->sls_prev_project)) < 0 ||
	    pg_copy(r, i, 20, fl->sls_prev_logstore, sizeof(fl->sls_prev_logstore)) < 0)
		return -1;
	fl->sls_prev_until_ms = pg_int(r, i, 21);
	return 0;
}

static int flowlog_get_sql(struct store_tx *tx, struct owner o, const char *flowlog_id,
			   struct flowlog *out, const char *sql)
{
	struct pg_params p = {0};
	PGresult *r = NULL;
	p_owner(&p, o);
	pg_p_text(&p, flowlog_id);
	int rc = exec_one(tx, sql, &p, "flowlog get", &r);
	if (rc != 0)
		return rc;
	rc = row_flowlog(r, 0, out) < 0 ? STORE_EIO : 0;
	PQclear(r);
	return rc;
}

/* By the unique FlowLogId alone, then the owner checked on that one row:
 * written as "flowlog_id = $3 AND account_id = $1 AND region_id = $2", a
 * generic plan made while the table was small used flowlogs_by_owner and
 * filtered every flow log of the account (10 ms per lookup at 50 k, the
 * stalled Associate rounds of bench/pg/run.sh); this form has one plan. */
#define FLOWLOG_BY_ID                                                                              \
	"FROM flowlogs f WHERE f.id = (SELECT id FROM flowlogs WHERE flowlog_id = $3) "            \
	"AND f.account_id = $1 AND f.region_id = $2"

int pg_flowlog_get(struct store_tx *tx, struct owner o, const char *flowlog_id, struct flowlog *out)
{
	/* In a write job the rules of Active/Deactive/Modify/Delete/Associate
	 * are checked on this row: lock it until the batch commits. */
	return flowlog_get_sql(tx, o, flowlog_id, out,
			       pg_tx_writing(tx) ? "SELECT " FLOWLOG_COLS FLOWLOG_BY_ID
						   " FOR UPDATE OF f"
						 : "SELECT " FLOWLOG_COLS FLOWLOG_BY_ID);
}

int pg_flowlog_get_config(struct store_tx *tx, struct owner o, const char *flowlog_id,
			  struct flowlog *out)
{
	/* Never locked: every device report reads it. */
	return flowlog_get_sql(tx, o, flowlog_id, out,
			       "SELECT " FLOWLOG_COLS_NO_COUNT FLOWLOG_BY_ID);
}

int pg_flowlog_count(struct store_tx *tx, struct owner o, int64_t *n)
{
	struct pg_params p = {0};
	PGresult *r = NULL;
	p_owner(&p, o);
	int rc =
	    exec_one(tx, "SELECT n FROM flowlog_counts WHERE account_id = $1 AND region_id = $2",
		     &p, "flowlog count", &r);
	if (rc < 0)
		return rc;
	*n = rc == 1 ? 0 : pg_int(r, 0, 0);
	PQclear(r);
	return 0;
}

/* The mutable columns at $3..$14, in the same order for insert and update. */
static void p_flowlog_fields(struct pg_params *p, const struct flowlog *fl)
{
	const char *texts[] = {fl->name,
			       fl->description,
			       flowlog_status_name(fl->status),
			       flowlog_output_name(fl->output),
			       fl->sls_region_id,
			       fl->project_name,
			       fl->logstore_name,
			       fl->netflow_server_ip,
			       netflow_version_name(fl->netflow_version)};
	for (size_t k = 0; k < sizeof(texts) / sizeof(texts[0]); k++)
		pg_p_text(p, texts[k]);
	pg_p_int(p, fl->netflow_server_port);
	pg_p_int(p, fl->active_aging);
	pg_p_int(p, fl->inactive_aging);
}

/* The flow-log row's columns and its parameters $1..$17, typed (an INSERT
 * ... SELECT does not infer them from the columns as VALUES does). */
#define FLOWLOG_INSERT                                                                             \
	"INSERT INTO flowlogs (account_id, region_id, name, description, status, "                 \
	"output_type, sls_region_id, project_name, logstore_name, netflow_server_ip, "             \
	"netflow_version, netflow_server_port, active_aging, inactive_aging, flowlog_id, "         \
	"resource_group_id, created_ms) "
#define FLOWLOG_INSERT_PARAMS                                                                      \
	"$1::bigint, $2::text, $3::text, $4::text, $5::text, $6::text, $7::text, $8::text, "       \
	"$9::text, $10::text, $11::text, $12::integer, $13::integer, $14::integer, $15::text, "    \
	"$16::text, $17::bigint"

static void p_flowlog_row(struct pg_params *p, const struct flowlog *fl)
{
	p_owner(p, (struct owner){fl->account_id, fl->region_id});
	p_flowlog_fields(p, fl);
	pg_p_text(p, fl->id);
	pg_p_text(p, fl->resource_group_id);
	pg_p_int(p, fl->created_ms);
}

static int flowlog_insert_row(struct store_tx *tx, struct flowlog *fl)
{
	struct pg_params p = {0};
	PGresult *r = NULL;
	p_flowlog_row(&p, fl);
	int rc = exec_one(tx, FLOWLOG_INSERT "VALUES (" FLOWLOG_INSERT_PARAMS ") RETURNING id", &p,
			  "flowlog insert", &r);
	if (rc != 0)
		return rc == 1 ? STORE_EIO : rc;
	fl->rowid = pg_int(r, 0, 0);
	PQclear(r);
	return 0;
}

int pg_flowlog_insert(struct store_tx *tx, struct flowlog *fl)
{
	struct pg_params p = {0};
	p_owner(&p, (struct owner){fl->account_id, fl->region_id});
	int rc = exec_done(tx,
			   "INSERT INTO flowlog_counts AS c (account_id, region_id, n) "
			   "VALUES ($1, $2, 1) ON CONFLICT (account_id, region_id) "
			   "DO UPDATE SET n = c.n + 1",
			   &p, "flowlog count raise", NULL);
	return rc != 0 ? rc : flowlog_insert_row(tx, fl);
}

/* The create's answer: its new row's id, or none when the quota was full. */
static int create_check(PGresult *r, const char *sqlstate, void *ctx)
{
	struct flowlog *fl = ctx;
	(void)sqlstate;
	if (!r)
		return STORE_EIO;
	if (PQntuples(r) == 0)
		return ERR_QUOTA_EXCEEDED_FLOWLOG;
	fl->rowid = pg_int(r, 0, 0);
	return 0;
}

int pg_flowlog_create(struct store_tx *tx, struct flowlog *fl, int64_t quota)
{
	if (quota <= 0)
		return ERR_QUOTA_EXCEEDED_FLOWLOG;
	/* The count is raised only while below the quota, by an upsert that locks
	 * the row: two processes cannot both take the last slot. The row is
	 * inserted from the upsert's answer in the same statement: no answer, no
	 * row, and a failed insert undoes the count with it. Its answer decides
	 * only this job's result, so the writer does not wait for it (quota
	 * exceeded changed nothing). In a writer's batch the count is raised
	 * once per owner at COMMIT instead (pg_tx_count_in_batch), and the row
	 * inserted alone. */
	struct pg_params p = {0};
	p_flowlog_row(&p, fl);
	if (pg_tx_count_in_batch(tx, (struct owner){fl->account_id, fl->region_id}, quota))
		return pg_tx_exec_deferred(
		    tx, FLOWLOG_INSERT "VALUES (" FLOWLOG_INSERT_PARAMS ") RETURNING id", &p,
		    "flowlog insert", create_check, fl);
	pg_p_int(&p, quota);
	return pg_tx_exec_deferred(
	    tx,
	    "WITH q AS (INSERT INTO flowlog_counts AS c (account_id, region_id, n) "
	    "VALUES ($1, $2, 1) ON CONFLICT (account_id, region_id) "
	    "DO UPDATE SET n = c.n + 1 WHERE c.n < $18 RETURNING n) " FLOWLOG_INSERT
	    "SELECT " FLOWLOG_INSERT_PARAMS " FROM q RETURNING id",
	    &p, "flowlog create", create_check, fl);
}

#define SLS_TARGET_GONE                                                                            \
	"(status = 'Active' AND output_type IN ('sls', 'all') AND "                                \
	"($5 <> 'Active' OR $6 NOT IN ('sls', 'all') OR project_name <> $8 OR "                    \
	"logstore_name <> $9))"

int pg_flowlog_update(struct store_tx *tx, const struct flowlog *fl)
{
	struct pg_params p = {0};
	pg_p_int(&p, fl->rowid);
	pg_p_text(&p, NULL); /* $2 is unused: the field list starts at $3 */
	p_flowlog_fields(&p, fl);
	pg_p_int(&p, time_now_ms() + DOMAIN_SLS_GRACE_MS);
	/* $5 and $6 are compared as text below: typed so in the SET too (the
	 * columns are domains over text, sql/pg/0010), or PostgreSQL deduces two
	 * types for one parameter. */
	return exec_done(
	    tx,
	    "UPDATE flowlogs SET name = $3, description = $4, status = $5::text, "
	    "output_type = $6::text, "
	    "sls_region_id = $7, project_name = $8, logstore_name = $9, "
	    "netflow_server_ip = $10, netflow_version = $11, netflow_server_port = $12, "
	    "active_aging = $13, inactive_aging = $14, "
	    "sls_prev_project = CASE WHEN " SLS_TARGET_GONE " THEN project_name "
	    "ELSE sls_prev_project END, "
	    "sls_prev_logstore = CASE WHEN " SLS_TARGET_GONE " THEN logstore_name "
	    "ELSE sls_prev_logstore END, "
	    "sls_prev_until_ms = CASE WHEN " SLS_TARGET_GONE " THEN $15 "
	    "ELSE sls_prev_until_ms END WHERE id = $1 AND $2::text IS NULL",
	    &p, "flowlog update", NULL);
}

int pg_flowlog_delete(struct store_tx *tx, const struct flowlog *fl)
{
	struct pg_params p = {0};
	int64_t n = 0;
	pg_p_int(&p, fl->rowid);
	int rc = exec_done(tx, "DELETE FROM flowlogs WHERE id = $1", &p, "flowlog delete", &n);
	/* The caller checked TotalSagNum on the row it locked, but that count
	 * comes from the statement's snapshot, taken before the lock was granted:
	 * an Associate that committed in between is caught by the foreign key,
	 * and answered as the check would have. */
	if (rc != 0 && !strcmp(pg_tx_sqlstate(tx), PG_SQLSTATE_FOREIGN_KEY))
		return ERR_DEPENDENCY_VIOLATION_FLOWLOG;
	if (rc != 0 || n == 0)
		return rc;
	p.n = 0;
	p_owner(&p, (struct owner){fl->account_id, fl->region_id});
	return exec_done(tx,
			 "UPDATE flowlog_counts SET n = n - 1 WHERE account_id = $1 AND "
			 "region_id = $2",
			 &p, "flowlog count lower", NULL);
}

#define FLOWLOG_WHERE                                                                              \
	"WHERE f.account_id = $1 AND f.region_id = $2 "                                            \
	"AND ($3::text IS NULL OR f.flowlog_id = $3) AND ($4::text IS NULL OR f.name = $4) "       \
	"AND ($5::text IS NULL OR f.description = $5) "                                            \
	"AND ($6::text IS NULL OR f.resource_group_id = $6) "                                      \
	"AND ($7::text IS NULL OR f.status = $7) AND ($8::text IS NULL OR f.output_type = $8) "

static void p_flowlog_filter(struct pg_params *p, struct owner o, const struct flowlog_filter *f)
{
	p_owner(p, o);
	const char *v[] = {
	    f->flowlog_id,
	    f->name,
	    f->description,
	    f->resource_group_id,
	    f->status < 0 ? NULL : flowlog_status_name((enum flowlog_status)f->status),
	    f->output < 0 ? NULL : flowlog_output_name((enum flowlog_output)f->output)};
	for (int i = 0; i < 6; i++)
		pg_p_text(p, v[i]);
}

static bool flowlog_unfiltered(const struct flowlog_filter *f)
{
	return !f->flowlog_id && !f->name && !f->description && !f->resource_group_id &&
	       f->status < 0 && f->output < 0;
}

int pg_flowlog_list(struct store_tx *tx, struct owner o, const struct flowlog_filter *f,
		    int64_t *total, flowlog_each_fn fn, void *arg)
{
	struct pg_params p = {0};
	PGresult *r = NULL;
	int rc;
	if (flowlog_unfiltered(f)) { /* the kept count, one row */
		if ((rc = pg_flowlog_count(tx, o, total)) != 0)
			return rc;
	} else {
		p_flowlog_filter(&p, o, f);
		if ((rc = exec_one(tx, "SELECT count(*) FROM flowlogs f " FLOWLOG_WHERE, &p,
				   "flowlog list count", &r)) != 0)
			return rc == 1 ? STORE_EIO : rc;
		*total = pg_int(r, 0, 0);
		PQclear(r);
	}
	if (f->offset >= *total || f->limit <= 0)
		return 0;
	p.n = 0;
	p_flowlog_filter(&p, o, f);
	pg_p_int(&p, f->limit);
	pg_p_int(&p, f->offset);
	r = pg_tx_exec(tx,
		       "SELECT " FLOWLOG_COLS "FROM flowlogs f " FLOWLOG_WHERE
		       "ORDER BY f.id LIMIT $9 OFFSET $10",
		       &p, "flowlog list");
	if (!r)
		return pg_tx_err(tx);
	rc = 0;
	for (int i = 0; i < PQntuples(r); i++) {
		struct flowlog fl;
		if (row_flowlog(r, i, &fl) < 0) {
			rc = STORE_EIO;
			break;
		}
		if (fn(&fl, arg))
			break;
	}
	PQclear(r);
	return rc;
}

/* ---- gateways ---- */

/* The gateway whose SAG_COLS start at column off of row i. */
static int row_sag_at(const PGresult *r, int i, int off, struct sag *g)
{
	memset(g, 0, sizeof(*g));
	g->rowid = pg_int(r, i, off);
	if (pg_copy(r, i, off + 1, g->id, sizeof(g->id)) < 0 ||
	    pg_copy(r, i, off + 2, g->region_id, sizeof(g->region_id)) < 0 ||
	    pg_copy(r, i, off + 3, g->resource_group_id, sizeof(g->resource_group_id)) < 0 ||
	    pg_copy(r, i, off + 4, g->name, sizeof(g->name)) < 0 ||
	    pg_copy(r, i, off + 5, g->description, sizeof(g->description)) < 0 ||
	    sag_spec_parse(col_str(r, i, off + 6), &g->spec) < 0 ||
	    sag_ha_parse(col_str(r, i, off + 7), &g->ha) < 0 ||
	    pg_copy(r, i, off + 9, g->flowlog_id, sizeof(g->flowlog_id)) < 0)
		return -1;
	g->max_bandwidth = (int)pg_int(r, i, off + 8);
	g->account_id = pg_int(r, i, off + 10);
	g->created_ms = pg_int(r, i, off + 11);
	return 0;
}

static int row_sag(const PGresult *r, int i, struct sag *g)
{
	return row_sag_at(r, i, 0, g);
}

/* A device's columns, each after prefix t (a table alias and a dot, or ""). */
#define DEVICE_COLS(t)                                                                             \
	t "serial_number, " t "secret_key, " t "model, " t "software_version, " t "ha_state, " t   \
	  "reported_ms, " t "sls_delivery, " t "last_sequence, " t "sls_delivered, " t             \
	  "sls_queued, " t "sls_dropped, " t "sls_last_error, " t "sls_last_error_ms "
#define DEVICE_ORDER(t) "ORDER BY " t "bound_ms, " t "serial_number"
#define SAG_NCOLS 12 /* the columns of SAG_COLS */

/* The device whose columns start at column off of row i. */
static int row_device(const PGresult *r, int i, int off, struct device *d)
{
	struct str ha = col_str(r, i, off + 4);
	d->ha_state = DEVICE_HA_UNKNOWN;
	if (pg_copy(r, i, off, d->serial_number, sizeof(d->serial_number)) < 0 ||
	    pg_copy(r, i, off + 1, d->secret_key, sizeof(d->secret_key)) < 0 ||
	    pg_copy(r, i, off + 2, d->model, sizeof(d->model)) < 0 ||
	    pg_copy(r, i, off + 3, d->software_version, sizeof(d->software_version)) < 0 ||
	    pg_copy(r, i, off + 6, d->sls_delivery, sizeof(d->sls_delivery)) < 0 ||
	    pg_copy(r, i, off + 11, d->sls.last_error, sizeof(d->sls.last_error)) < 0 ||
	    (ha.len && device_ha_parse(ha, &d->ha_state) < 0))
		return -1;
	d->reported_ms = pg_int(r, i, off + 5);
	d->last_sequence = pg_int(r, i, off + 7);
	d->sls.delivered = pg_int(r, i, off + 8);
	d->sls.queued = pg_int(r, i, off + 9);
	d->sls.dropped = pg_int(r, i, off + 10);
	d->sls.last_error_ms = pg_int(r, i, off + 12);
	return 0;
}

/* The devices of rows from..n of r, their columns from column off; a row
 * whose first device column is NULL (an outer join's gateway without any)
 * adds none. */
static int rows_devices(const PGresult *r, int from, int off, struct sag *g)
{
	g->ndevices = 0;
	for (int i = from; i < PQntuples(r) && g->ndevices < DOMAIN_MAX_DEVICES; i++) {
		if (PQgetisnull(r, i, off))
			continue;
		if (row_device(r, i, off, &g->devices[g->ndevices++]) < 0)
			return STORE_EIO;
	}
	return 0;
}

static int load_devices(struct store_tx *tx, struct sag *g)
{
	struct pg_params p = {0};
	pg_p_int(&p, g->rowid);
	PGresult *r = pg_tx_exec(tx,
				 "SELECT " DEVICE_COLS("") "FROM devices WHERE sag_rowid = $1 "
				     DEVICE_ORDER(""),
				 &p, "devices");
	if (!r)
		return pg_tx_err(tx);
	int rc = rows_devices(r, 0, 0, g);
	PQclear(r);
	return rc;
}

/* One gateway with its devices, from a statement built by SAG_WITH_DEVICES:
 * a row per device (or one with NULL device columns), in one round trip.
 * Only where nothing is locked (see pg_sag_get). 0, 1 none, or the error. */
#define SAG_WITH_DEVICES(from, where)                                                              \
	"SELECT " SAG_COLS ", " DEVICE_COLS("dd.") from                                            \
	" LEFT JOIN devices dd ON dd.sag_rowid = g.id " where " " DEVICE_ORDER("dd.")
static int sag_one(struct store_tx *tx, const char *sql, const struct pg_params *p,
		   const char *what, struct sag *out)
{
	PGresult *r = NULL;
	int rc = exec_one(tx, sql, p, what, &r);
	if (rc != 0)
		return rc;
	rc = row_sag(r, 0, out) < 0 ? STORE_EIO : rows_devices(r, 0, SAG_NCOLS, out);
	PQclear(r);
	return rc;
}

/* By the unique SagId, as FLOWLOG_BY_ID and for the same reason. */
#define SAG_BY_ID                                                                                  \
	"WHERE g.id = (SELECT id FROM sags WHERE sag_id = $3) "                                    \
	"AND g.account_id = $1 AND g.region_id = $2"

int pg_sag_get(struct store_tx *tx, struct owner o, const char *sag_id, struct sag *out)
{
	struct pg_params p = {0};
	p_owner(&p, o);
	pg_p_text(&p, sag_id);
	/* In a write job: Associate, Bind/Unbind and Delete decide on this row
	 * and its devices, so it is locked (after the flow log, if any). */
	if (!pg_tx_writing(tx))
		return sag_one(tx, SAG_WITH_DEVICES("FROM sags g", SAG_BY_ID), &p, "sag get", out);
	/* The devices in a statement of their own, after the lock: a join's rows
	 * come from the snapshot taken before the lock was granted (READ
	 * COMMITTED re-reads only the locked row), so a Bind that waited for
	 * another would count the devices from before it. */
	PGresult *r = NULL;
	int rc = exec_one(tx, "SELECT " SAG_COLS "FROM sags g " SAG_BY_ID " FOR UPDATE OF g", &p,
			  "sag get", &r);
	if (rc != 0)
		return rc;
	rc = row_sag(r, 0, out) < 0 ? STORE_EIO : 0;
	PQclear(r);
	return rc != 0 ? rc : load_devices(tx, out);
}

/* ---- Associate/Disassociate: the flow log and the gateway in one statement ---- */

#define FLOWLOG_NCOLS 22 /* the columns of FLOWLOG_COLS_WITH */

/* Both rows locked by one statement, the flow log first (the lock order:
 * LockRows takes them in the order of the OF list). After a wait, READ
 * COMMITTED re-reads every locked row (EvalPlanQual): the newest flow log
 * and gateway are re-checked against the WHERE and re-projected, and a row
 * deleted meanwhile yields no row at all; pg_flowlog_sag_get then asks which
 * one is missing. What is not re-read is every other row, from the snapshot
 * taken before the wait: the gateway's bound flow-log id (a subquery of
 * SAG_COLS) may name a flow log created after it, so the raw flowlog_rowid
 * comes too (bound_id resolves it), and the devices come from a statement
 * of their own after this one. No count of bound gateways (neither action
 * reads it: it would be from the old snapshot too). */
#define FLOWLOG_SAG_LOCK                                                                           \
	"SELECT " FLOWLOG_COLS_NO_COUNT ", " SAG_COLS ", g.flowlog_rowid "                         \
	"FROM flowlogs f, sags g "                                                                 \
	"WHERE f.id = (SELECT id FROM flowlogs WHERE flowlog_id = $3) "                            \
	"AND f.account_id = $1 AND f.region_id = $2 "                                              \
	"AND g.id = (SELECT id FROM sags WHERE sag_id = $4) "                                      \
	"AND g.account_id = $1 AND g.region_id = $2 FOR UPDATE OF f, g"

/* The devices of the gateway by its id, for after the lock: by then nothing
 * can delete the row, so the subquery finds the one locked. */
#define DEVICES_OF_SAG_ID                                                                          \
	"SELECT " DEVICE_COLS("") "FROM devices WHERE sag_rowid = "                                \
	"(SELECT id FROM sags WHERE sag_id = $3 AND account_id = $1 AND region_id = $2) "          \
	DEVICE_ORDER("")

/* g->flowlog_id from the locked row's flowlog_rowid (column col): the
 * subquery's answer unless it came from a snapshot without that flow log,
 * which happens only when it was created and bound while the lock was
 * awaited; then read now, in a statement of its own (a new snapshot, after
 * the binding committed; the foreign key keeps the flow log alive while the
 * locked gateway points at it). */
static int bound_id(struct store_tx *tx, const PGresult *r, int col, struct sag *g)
{
	if (PQgetisnull(r, 0, col) || g->flowlog_id[0])
		return 0;
	struct pg_params p = {0};
	PGresult *b = NULL;
	pg_p_int(&p, pg_int(r, 0, col));
	int rc = exec_one(tx, "SELECT flowlog_id FROM flowlogs WHERE id = $1", &p,
			  "bound flowlog", &b);
	if (rc != 0)
		return rc == 1 ? STORE_EIO : rc;
	rc = pg_copy(b, 0, 0, g->flowlog_id, sizeof(g->flowlog_id)) < 0 ? STORE_EIO : 0;
	PQclear(b);
	return rc;
}

static int flowlog_sag_rows(struct store_tx *tx, PGresult *r, PGresult *d, struct flowlog *fl,
			    struct sag *g)
{
	if (row_flowlog(r, 0, fl) < 0 || row_sag_at(r, 0, FLOWLOG_NCOLS, g) < 0)
		return STORE_EIO;
	int rc = d ? rows_devices(d, 0, 0, g) : 0;
	return rc != 0 ? rc : bound_id(tx, r, FLOWLOG_NCOLS + SAG_NCOLS, g);
}

int pg_flowlog_sag_stmts(struct owner o, const char *flowlog_id, const char *sag_id,
			 bool devices, struct pg_params *p, struct pg_params *pd,
			 struct pg_stmt st[PG_TX_STMTS_MAX])
{
	*p = (struct pg_params){0};
	*pd = (struct pg_params){0};
	p_owner(p, o);
	pg_p_text(p, flowlog_id);
	pg_p_text(p, sag_id);
	p_owner(pd, o);
	pg_p_text(pd, sag_id);
	st[0] = (struct pg_stmt){FLOWLOG_SAG_LOCK, p, "flowlog sag get"};
	st[1] = (struct pg_stmt){DEVICES_OF_SAG_ID, pd, "devices"};
	return devices ? 2 : 1;
}

/* r[0] the locking statement's answer, r[1] the devices' (or NULL). */
static int flowlog_sag_answer(struct store_tx *tx, struct owner o, const char *flowlog_id,
			      const char *sag_id, PGresult *const r[2], struct flowlog *fl,
			      struct sag *g)
{
	if (PQntuples(r[0]) == 0) /* one is missing, or both: which decides the error */
		return store_flowlog_sag_each(tx, o, flowlog_id, sag_id, fl, g);
	return flowlog_sag_rows(tx, r[0], r[1], fl, g);
}

/* The job's prefetched answer when the writer has one (its locks were taken
 * at the start of the batch, by the same statements, and no job before this
 * one in the batch could have changed those rows: store_pg.c, prefetch);
 * otherwise the statements now. */
int pg_flowlog_sag_get(struct store_tx *tx, struct owner o, const char *flowlog_id,
		       const char *sag_id, bool devices, struct flowlog *fl, struct sag *g)
{
	/* Outside a write job nothing is locked: the two plain lookups. */
	if (!pg_tx_writing(tx))
		return store_flowlog_sag_each(tx, o, flowlog_id, sag_id, fl, g);
	PGresult *r[PG_TX_STMTS_MAX] = {NULL, NULL};
	if (pg_tx_prefetched(tx, o, flowlog_id, sag_id, devices, r))
		return flowlog_sag_answer(tx, o, flowlog_id, sag_id, r, fl, g);
	struct pg_params p, pd;
	struct pg_stmt st[PG_TX_STMTS_MAX];
	int n = pg_flowlog_sag_stmts(o, flowlog_id, sag_id, devices, &p, &pd, st);
	if (pg_tx_exec_n(tx, st, n, r) != 0)
		return pg_tx_err(tx);
	int rc = flowlog_sag_answer(tx, o, flowlog_id, sag_id, r, fl, g);
	PQclear(r[0]);
	PQclear(r[1]);
	return rc;
}

int pg_sag_insert(struct store_tx *tx, struct sag *g, const char *order_id, const char *order_json)
{
	struct pg_params p = {0};
	PGresult *r = NULL;
	p_owner(&p, (struct owner){g->account_id, g->region_id});
	pg_p_text(&p, g->id);
	pg_p_text(&p, g->resource_group_id);
	pg_p_text(&p, g->name);
	pg_p_text(&p, g->description);
	pg_p_text(&p, sag_spec_name(g->spec));
	pg_p_text(&p, sag_ha_name(g->ha));
	pg_p_int(&p, g->max_bandwidth);
	pg_p_text(&p, order_id);
	pg_p_text(&p, order_json);
	pg_p_int(&p, g->created_ms);
	int rc = exec_one(tx,
			  "INSERT INTO sags (account_id, region_id, sag_id, resource_group_id, "
			  "name, description, hardware_spec, ha_type, max_bandwidth, order_id, "
			  "order_json, created_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, "
			  "$10, $11, $12) RETURNING id",
			  &p, "sag insert", &r);
	if (rc != 0)
		return rc == 1 ? STORE_EIO : rc;
	g->rowid = pg_int(r, 0, 0);
	PQclear(r);
	return 0;
}

int pg_sag_delete(struct store_tx *tx, const struct sag *g)
{
	struct pg_params p = {0};
	pg_p_int(&p, g->rowid);
	int rc = exec_done(tx, "DELETE FROM devices WHERE sag_rowid = $1", &p, "sag devices delete",
			   NULL);
	return rc != 0 ? rc
		       : exec_done(tx, "DELETE FROM sags WHERE id = $1", &p, "sag delete", NULL);
}

/* The binding's UPDATE: the gateway's row was locked by the job's lookup,
 * so it is there. */
static int set_flowlog_check(PGresult *r, const char *sqlstate, void *ctx)
{
	(void)sqlstate;
	(void)ctx;
	if (r && pg_changes(r) == 1)
		return 0;
	if (r)
		log_err("store: sag set flowlog changed %lld rows, not 1",
			(long long)pg_changes(r));
	return STORE_EIO;
}

int pg_sag_set_flowlog(struct store_tx *tx, const struct sag *g, int64_t fl_rowid)
{
	struct pg_params p = {0};
	pg_p_int(&p, g->rowid);
	if (fl_rowid)
		pg_p_int(&p, fl_rowid);
	else
		pg_p_text(&p, NULL);
	return pg_tx_exec_deferred(tx, "UPDATE sags SET flowlog_rowid = $2 WHERE id = $1", &p,
				   "sag set flowlog", set_flowlog_check, NULL);
}

static int each_sag(struct store_tx *tx, PGresult *r, sag_each_fn fn, void *arg)
{
	int rc = 0;
	for (int i = 0; i < PQntuples(r) && rc == 0; i++) {
		struct sag g;
		if (row_sag(r, i, &g) < 0) {
			rc = STORE_EIO;
			break;
		}
		if ((rc = load_devices(tx, &g)) != 0)
			break;
		if (fn(&g, arg))
			break;
	}
	PQclear(r);
	return rc;
}

#define SAG_WHERE                                                                                  \
	"WHERE g.account_id = $1 AND g.region_id = $2 AND ($3::text IS NULL OR g.sag_id = $3) "    \
	"AND ($4::text IS NULL OR g.name = $4) "                                                   \
	"AND ($5::text IS NULL OR g.resource_group_id = $5) "                                      \
	"AND ($6::text IS NULL OR g.hardware_spec = $6) AND ($7::text IS NULL OR EXISTS "          \
	"(SELECT 1 FROM devices d WHERE d.serial_number = $7 AND d.sag_rowid = g.id)) "            \
	"AND ($8::text IS NULL OR (SELECT CASE WHEN coalesce(max(d.reported_ms), 0) = 0 "          \
	"THEN 'Init' WHEN $9::bigint - max(d.reported_ms) <= $10::bigint THEN 'Active' "           \
	"ELSE 'Offline' END FROM devices d WHERE d.sag_rowid = g.id) = $8) "                       \
	"AND ($11::jsonb IS NULL OR g.sag_id IN (SELECT jsonb_array_elements_text($11::jsonb))) "

static void p_sag_filter(struct pg_params *p, struct owner o, const struct sag_filter *f)
{
	p_owner(p, o);
	const char *v[] = {f->sag_id, f->name, f->resource_group_id,
			   f->spec < 0 ? NULL : sag_spec_name((enum sag_spec)f->spec),
			   f->serial_number};
	for (int i = 0; i < 5; i++)
		pg_p_text(p, v[i]);
	/* The same rule as sag_status() in src/domain, evaluated per row. */
	pg_p_text(p, f->status);
	pg_p_int(p, f->now_ms);
	pg_p_int(p, f->online_ms);
	pg_p_text(p, f->ids_json);
}

int pg_sag_list(struct store_tx *tx, struct owner o, const struct sag_filter *f, int64_t *total,
		sag_each_fn fn, void *arg)
{
	struct pg_params p = {0};
	PGresult *r = NULL;
	p_sag_filter(&p, o, f);
	int rc = exec_one(tx, "SELECT count(*) FROM sags g " SAG_WHERE, &p, "sag list count", &r);
	if (rc != 0)
		return rc == 1 ? STORE_EIO : rc;
	*total = pg_int(r, 0, 0);
	PQclear(r);
	pg_p_int(&p, f->limit);
	pg_p_int(&p, f->offset);
	r = pg_tx_exec(
	    tx, "SELECT " SAG_COLS "FROM sags g " SAG_WHERE "ORDER BY g.id LIMIT $12 OFFSET $13",
	    &p, "sag list");
	return r ? each_sag(tx, r, fn, arg) : pg_tx_err(tx);
}

int pg_sag_list_by_flowlog(struct store_tx *tx, const struct flowlog *fl, int64_t offset,
			   int64_t limit, int64_t *total, sag_each_fn fn, void *arg)
{
	struct pg_params p = {0};
	*total = fl->total_sag_num;
	pg_p_int(&p, fl->rowid);
	pg_p_int(&p, limit);
	pg_p_int(&p, offset);
	PGresult *r = pg_tx_exec(tx,
				 "SELECT " SAG_COLS "FROM sags g WHERE g.flowlog_rowid = $1 "
				 "ORDER BY g.id LIMIT $2 OFFSET $3",
				 &p, "sag by flowlog");
	return r ? each_sag(tx, r, fn, arg) : pg_tx_err(tx);
}

int pg_sag_list_unbound(struct store_tx *tx, struct owner o, int64_t limit, int64_t *total,
			sag_each_fn fn, void *arg)
{
	struct pg_params p = {0};
	PGresult *r = NULL;
	p_owner(&p, o);
	int rc = exec_one(tx,
			  "SELECT count(*) FROM sags WHERE account_id = $1 AND region_id = $2 "
			  "AND flowlog_rowid IS NULL",
			  &p, "unbound count", &r);
	if (rc != 0)
		return rc == 1 ? STORE_EIO : rc;
	*total = pg_int(r, 0, 0);
	PQclear(r);
	pg_p_int(&p, limit);
	r = pg_tx_exec(tx,
		       "SELECT " SAG_COLS "FROM sags g WHERE g.account_id = $1 AND "
		       "g.region_id = $2 AND g.flowlog_rowid IS NULL ORDER BY g.id LIMIT $3",
		       &p, "unbound list");
	return r ? each_sag(tx, r, fn, arg) : pg_tx_err(tx);
}

/* ---- devices ---- */

int pg_device_insert(struct store_tx *tx, const struct sag *g, const struct device *d,
		     int64_t now_ms)
{
	/* Another process binding the same serial number at the same moment
	 * makes this a unique violation: the job then runs again and finds the
	 * device bound (store_device_owner), as it would have on one node. */
	struct pg_params p = {0};
	pg_p_text(&p, d->serial_number);
	pg_p_int(&p, g->rowid);
	pg_p_text(&p, d->secret_key);
	pg_p_int(&p, now_ms);
	return exec_done(tx,
			 "INSERT INTO devices (serial_number, sag_rowid, secret_key, bound_ms) "
			 "VALUES ($1, $2, $3, $4)",
			 &p, "device insert", NULL);
}

int pg_device_delete(struct store_tx *tx, const struct sag *g, const char *serial_number)
{
	struct pg_params p = {0};
	int64_t n = 0;
	pg_p_text(&p, serial_number);
	pg_p_int(&p, g->rowid);
	int rc = exec_done(tx, "DELETE FROM devices WHERE serial_number = $1 AND sag_rowid = $2",
			   &p, "device delete", &n);
	return rc != 0 ? rc : n ? 0 : 1;
}

int pg_device_owner(struct store_tx *tx, const char *serial_number, struct sag *g)
{
	struct pg_params p = {0};
	pg_p_text(&p, serial_number);
	/* Never locked: the device channel reads it on every sync. */
	return sag_one(tx,
		       SAG_WITH_DEVICES("FROM devices d JOIN sags g ON g.id = d.sag_rowid",
					"WHERE d.serial_number = $1"),
		       &p, "device owner", g);
}

int pg_device_report(struct store_tx *tx, const struct sag *g, const char *serial_number,
		     const struct device *d, int64_t now_ms)
{
	struct pg_params p = {0};
	int64_t n = 0;
	pg_p_text(&p, serial_number);
	pg_p_text(&p, d->model);
	pg_p_text(&p, d->software_version);
	pg_p_text(&p, device_ha_name(d->ha_state));
	pg_p_int(&p, now_ms);
	pg_p_text(&p, d->sls_delivery);
	pg_p_int(&p, g->rowid);
	pg_p_int(&p, d->sls.delivered);
	pg_p_int(&p, d->sls.queued);
	pg_p_int(&p, d->sls.dropped);
	pg_p_text(&p, d->sls.last_error);
	pg_p_int(&p, d->sls.last_error_ms);
	int rc = exec_done(tx,
			   "UPDATE devices SET model = $2, software_version = $3, ha_state = $4, "
			   "reported_ms = $5, sls_delivery = $6, sls_delivered = $8, "
			   "sls_queued = $9, sls_dropped = $10, sls_last_error = $11, "
			   "sls_last_error_ms = $12 WHERE serial_number = $1 AND sag_rowid = $7",
			   &p, "device report", &n);
	return rc != 0 ? rc : n == 1 ? 0 : 1;
}

int pg_device_sequence(struct store_tx *tx, const struct sag *g, const char *serial_number,
		       int64_t seq, int64_t *last)
{
	struct pg_params p = {0};
	PGresult *r = NULL;
	pg_p_text(&p, serial_number);
	pg_p_int(&p, seq);
	pg_p_int(&p, g->rowid);
	/* One statement: the new mark when raised, else the device's current
	 * one (the UPDATE's row lock makes a concurrent sync wait and re-check). */
	int rc = exec_one(tx,
			  "WITH u AS (UPDATE devices SET last_sequence = $2 WHERE "
			  "serial_number = $1 AND sag_rowid = $3 AND last_sequence < $2 "
			  "RETURNING 1) SELECT (SELECT count(*) FROM u), (SELECT last_sequence "
			  "FROM devices WHERE serial_number = $1 AND sag_rowid = $3)",
			  &p, "device sequence", &r);
	if (rc != 0)
		return rc == 1 ? STORE_EIO : rc;
	bool raised = pg_int(r, 0, 0) == 1, bound = !PQgetisnull(r, 0, 1);
	if (!raised && bound)
		*last = pg_int(r, 0, 1);
	PQclear(r);
	return raised ? 0 : bound ? 2 : 1;
}

int pg_device_status_counts(struct store_tx *tx, int64_t now_ms, int64_t online_ms,
			    int64_t counts[3])
{
	struct pg_params p = {0};
	PGresult *r = NULL;
	pg_p_int(&p, now_ms);
	pg_p_int(&p, online_ms);
	int rc = exec_one(
	    tx,
	    "SELECT count(*) FILTER (WHERE reported_ms = 0), "
	    "count(*) FILTER (WHERE reported_ms > 0 AND $1::bigint - reported_ms <= $2::bigint), "
	    "count(*) FILTER (WHERE reported_ms > 0 AND $1::bigint - reported_ms > $2::bigint) "
	    "FROM devices",
	    &p, "device status counts", &r);
	if (rc != 0)
		return rc == 1 ? STORE_EIO : rc;
	for (int i = 0; i < 3; i++)
		counts[i] = pg_int(r, 0, i);
	PQclear(r);
	return 0;
}
