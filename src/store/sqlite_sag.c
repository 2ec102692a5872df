/* Flow logs, gateways and devices for the SQLite backend (store_sag.h). */
#include "store/sqlite_internal.h"

#include <stdlib.h>
#include <string.h>

#include "core/timeutil.h"
#include "core/xmalloc.h"
#include "rpc/errors.h"
#include "store/sag_cols.h"

static struct str col_str(sqlite3_stmt *st, int col)
{
	const char *p = (const char *)sqlite3_column_text(st, col);
	return (struct str){p ? p : "", p ? (size_t)sqlite3_column_bytes(st, col) : 0};
}

static int bind_text(sqlite3_stmt *st, int i, const char *s)
{
	return s ? sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC) : sqlite3_bind_null(st, i);
}

static int bind_owner(sqlite3_stmt *st, struct owner o)
{
	if (sqlite3_bind_int64(st, 1, o.account_id) != SQLITE_OK)
		return -1;
	return bind_text(st, 2, o.region_id) == SQLITE_OK ? 0 : -1;
}

/* Reads a flow-log row; -1 when a stored value is out of the domain (a
 * corrupted or hand-edited database), reported as STORE_EIO by callers. */
static int row_flowlog(sqlite3_stmt *st, struct flowlog *fl)
{
	memset(fl, 0, sizeof(*fl));
	fl->rowid = sqlite3_column_int64(st, 0);
	if (sqlite_col_copy(st, 1, fl->id, sizeof(fl->id)) < 0 ||
	    sqlite_col_copy(st, 2, fl->region_id, sizeof(fl->region_id)) < 0 ||
	    sqlite_col_copy(st, 3, fl->resource_group_id, sizeof(fl->resource_group_id)) < 0 ||
	    sqlite_col_copy(st, 4, fl->name, sizeof(fl->name)) < 0 ||
	    sqlite_col_copy(st, 5, fl->description, sizeof(fl->description)) < 0 ||
	    flowlog_status_parse(col_str(st, 6), &fl->status) < 0 ||
	    flowlog_output_parse(col_str(st, 7), &fl->output) < 0 ||
	    sqlite_col_copy(st, 8, fl->sls_region_id, sizeof(fl->sls_region_id)) < 0 ||
	    sqlite_col_copy(st, 9, fl->project_name, sizeof(fl->project_name)) < 0 ||
	    sqlite_col_copy(st, 10, fl->logstore_name, sizeof(fl->logstore_name)) < 0 ||
	    sqlite_col_copy(st, 11, fl->netflow_server_ip, sizeof(fl->netflow_server_ip)) < 0)
		return -1;
	fl->netflow_server_port = sqlite3_column_int(st, 12);
	struct str v = col_str(st, 13);
	fl->netflow_version = NETFLOW_NONE;
	if (v.len && netflow_version_parse(v, &fl->netflow_version) < 0)
		return -1;
	fl->active_aging = sqlite3_column_int(st, 14);
	fl->inactive_aging = sqlite3_column_int(st, 15);
	fl->account_id = sqlite3_column_int64(st, 16);
	fl->created_ms = sqlite3_column_int64(st, 17);
	fl->total_sag_num = sqlite3_column_int64(st, 18);
	if (sqlite_col_copy(st, 19, fl->sls_prev_project, sizeof(fl->sls_prev_project)) < 0 ||
	    sqlite_col_copy(st, 20, fl->sls_prev_logstore, sizeof(fl->sls_prev_logstore)) < 0)
		return -1;
	fl->sls_prev_until_ms = sqlite3_column_int64(st, 21);
	return 0;
}

/* Steps st expecting at most one row; 0 row read, 1 none, STORE_EIO. */
static int step_one(struct store_tx *tx, sqlite3_stmt *st, const char *what)
{
	int rc = sqlite3_step(st);
	if (rc == SQLITE_DONE)
		return 1;
	if (rc != SQLITE_ROW)
		return sqlite_tx_fail(tx, what);
	return 0;
}

static int step_done(struct store_tx *tx, sqlite3_stmt *st, const char *what)
{
	return sqlite3_step(st) == SQLITE_DONE ? 0 : sqlite_tx_fail(tx, what);
}

/* One flow log by id; sql selects FLOWLOG_COLS or FLOWLOG_COLS_NO_COUNT. */
static int flowlog_get_cols(struct store_tx *tx, struct owner o, const char *flowlog_id,
			    struct flowlog *out, const char *sql)
{
	sqlite3_stmt *st = sqlite_tx_stmt(tx, sql);
	if (!st || bind_owner(st, o) < 0 || bind_text(st, 3, flowlog_id) != SQLITE_OK)
		return st ? sqlite_tx_fail(tx, "flowlog get bind") : STORE_EIO;
	int rc = step_one(tx, st, "flowlog get");
	if (rc != 0)
		return rc;
	return row_flowlog(st, out) < 0 ? sqlite_tx_fail(tx, "flowlog row") : 0;
}

#define FLOWLOG_BY_ID "FROM flowlogs f WHERE f.flowlog_id = ?3 AND f.account_id = ?1 AND f.region_id = ?2"

int sqlite_flowlog_get(struct store_tx *tx, struct owner o, const char *flowlog_id,
		      struct flowlog *out)
{
	return flowlog_get_cols(tx, o, flowlog_id, out, "SELECT " FLOWLOG_COLS FLOWLOG_BY_ID);
}

int sqlite_flowlog_get_config(struct store_tx *tx, struct owner o, const char *flowlog_id,
			     struct flowlog *out)
{
	return flowlog_get_cols(tx, o, flowlog_id, out, "SELECT " FLOWLOG_COLS_NO_COUNT FLOWLOG_BY_ID);
}

int sqlite_flowlog_count(struct store_tx *tx, struct owner o, int64_t *n)
{
	sqlite3_stmt *st = sqlite_tx_stmt(
		tx, "SELECT n FROM flowlog_counts WHERE account_id = ?1 AND region_id = ?2");
	if (!st || bind_owner(st, o) < 0)
		return st ? sqlite_tx_fail(tx, "flowlog count bind") : STORE_EIO;
	int rc = step_one(tx, st, "flowlog count");
	if (rc == STORE_EIO)
		return rc;
	*n = rc == 1 ? 0 : sqlite3_column_int64(st, 0); /* no row yet: none created */
	return 0;
}

/* The mutable columns, bound at 3.. in the same order by insert and update. */
static int bind_flowlog_fields(sqlite3_stmt *st, const struct flowlog *fl)
{
	int rc = SQLITE_OK, i = 3;
	const char *texts[] = {fl->name,
			       fl->description,
			       flowlog_status_name(fl->status),
			       flowlog_output_name(fl->output),
			       fl->sls_region_id,
			       fl->project_name,
			       fl->logstore_name,
			       fl->netflow_server_ip,
			       netflow_version_name(fl->netflow_version)};
	for (size_t k = 0; k < sizeof(texts) / sizeof(texts[0]) && rc == SQLITE_OK; k++)
		rc = bind_text(st, i++, texts[k]);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int(st, i++, fl->netflow_server_port);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int(st, i++, fl->active_aging);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int(st, i++, fl->inactive_aging);
	return rc == SQLITE_OK ? 0 : -1;
}

int sqlite_flowlog_insert(struct store_tx *tx, struct flowlog *fl)
{
	sqlite3_stmt *st = sqlite_tx_stmt(
		tx, "INSERT INTO flowlogs (account_id, region_id, name, description, status, "
		    "output_type, sls_region_id, project_name, logstore_name, netflow_server_ip, "
		    "netflow_version, netflow_server_port, active_aging, inactive_aging, flowlog_id, "
		    "resource_group_id, created_ms) "
		    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)");
	struct owner o = {fl->account_id, fl->region_id};
	if (!st)
		return STORE_EIO;
	if (bind_owner(st, o) < 0 || bind_flowlog_fields(st, fl) < 0 ||
	    bind_text(st, 15, fl->id) != SQLITE_OK ||
	    bind_text(st, 16, fl->resource_group_id) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 17, fl->created_ms) != SQLITE_OK)
		return sqlite_tx_fail(tx, "flowlog insert bind");
	int rc = step_done(tx, st, "flowlog insert");
	if (rc == 0)
		fl->rowid = sqlite3_last_insert_rowid(sqlite_tx_db(tx));
	return rc;
}

int sqlite_flowlog_create(struct store_tx *tx, struct flowlog *fl, int64_t quota)
{
	int64_t n;
	int rc = sqlite_flowlog_count(tx, (struct owner){fl->account_id, fl->region_id}, &n);
	if (rc != 0)
		return rc;
	/* Counted inside the write transaction, and the one writer runs jobs one
	 * after another: concurrent creates cannot overshoot. */
	if (n >= quota)
		return ERR_QUOTA_EXCEEDED_FLOWLOG;
	return sqlite_flowlog_insert(tx, fl);
}

/* An update that takes the Log Service target away (the row had an Active
 * sls/all target and the new values lack it or name another) remembers the
 * old one for DOMAIN_SLS_GRACE_MS (sql/0006_flowlog_sls_grace.sql). SET
 * expressions see the old row, so the comparison is done in SQL. */
#define SLS_TARGET_GONE                                                                         \
	"(status = 'Active' AND output_type IN ('sls', 'all') AND "                               \
	"(?5 <> 'Active' OR ?6 NOT IN ('sls', 'all') OR project_name <> ?8 OR "                   \
	"logstore_name <> ?9))"

int sqlite_flowlog_update(struct store_tx *tx, const struct flowlog *fl)
{
	sqlite3_stmt *st = sqlite_tx_stmt(
		tx, "UPDATE flowlogs SET name = ?3, description = ?4, status = ?5, output_type = ?6, "
		    "sls_region_id = ?7, project_name = ?8, logstore_name = ?9, "
		    "netflow_server_ip = ?10, netflow_version = ?11, netflow_server_port = ?12, "
		    "active_aging = ?13, inactive_aging = ?14, "
		    "sls_prev_project = CASE WHEN " SLS_TARGET_GONE " THEN project_name "
		    "ELSE sls_prev_project END, "
		    "sls_prev_logstore = CASE WHEN " SLS_TARGET_GONE " THEN logstore_name "
		    "ELSE sls_prev_logstore END, "
		    "sls_prev_until_ms = CASE WHEN " SLS_TARGET_GONE " THEN ?15 "
		    "ELSE sls_prev_until_ms END WHERE id = ?1");
	if (!st)
		return STORE_EIO;
	if (sqlite3_bind_int64(st, 1, fl->rowid) != SQLITE_OK || bind_flowlog_fields(st, fl) < 0 ||
	    sqlite3_bind_int64(st, 15, time_now_ms() + DOMAIN_SLS_GRACE_MS) != SQLITE_OK)
		return sqlite_tx_fail(tx, "flowlog update bind");
	return step_done(tx, st, "flowlog update");
}

int sqlite_flowlog_delete(struct store_tx *tx, const struct flowlog *fl)
{
	sqlite3_stmt *st = sqlite_tx_stmt(tx, "DELETE FROM flowlogs WHERE id = ?1");
	if (!st)
		return STORE_EIO;
	if (sqlite3_bind_int64(st, 1, fl->rowid) != SQLITE_OK)
		return sqlite_tx_fail(tx, "flowlog delete bind");
	return step_done(tx, st, "flowlog delete");
}

/* The optional filters as "?N IS NULL OR col = ?N": one statement text for
 * every combination, and the owner index still drives the scan. */
#define FLOWLOG_WHERE                                                                           \
	"WHERE f.account_id = ?1 AND f.region_id = ?2 "                                         \
	"AND (?3 IS NULL OR f.flowlog_id = ?3) AND (?4 IS NULL OR f.name = ?4) "                \
	"AND (?5 IS NULL OR f.description = ?5) AND (?6 IS NULL OR f.resource_group_id = ?6) "  \
	"AND (?7 IS NULL OR f.status = ?7) AND (?8 IS NULL OR f.output_type = ?8) "

static int bind_flowlog_filter(sqlite3_stmt *st, struct owner o, const struct flowlog_filter *f)
{
	if (bind_owner(st, o) < 0)
		return -1;
	const char *v[] = {f->flowlog_id, f->name, f->description, f->resource_group_id,
			   f->status < 0 ? NULL : flowlog_status_name((enum flowlog_status)f->status),
			   f->output < 0 ? NULL : flowlog_output_name((enum flowlog_output)f->output)};
	for (int i = 0; i < 6; i++)
		if (bind_text(st, 3 + i, v[i]) != SQLITE_OK)
			return -1;
	return 0;
}

/* A deferred join: the page's ids come from the owner index alone (covering
 * when unfiltered, so skipped entries never load their table rows), then only
 * those rows are read, in id order. A page in the second half of the range
 * walks from the end (inner ORDER BY id DESC); the IN list is still read back
 * in ascending id order, so both directions return the page in order. */
#define FLOWLOG_PAGE_SQL(where, dir)                                                           \
	"SELECT " FLOWLOG_COLS "FROM flowlogs f WHERE f.id IN (SELECT f.id FROM flowlogs f "     \
	where "ORDER BY f.id " dir " LIMIT ?9 OFFSET ?10) ORDER BY f.id"
/* Unfiltered, the inner query must not name a filter column at all: SQLite
 * cannot see that "?3 IS NULL" holds, and would read every skipped row. */
#define FLOWLOG_OWNER_WHERE "WHERE f.account_id = ?1 AND f.region_id = ?2 "

static bool flowlog_unfiltered(const struct flowlog_filter *f)
{
	return !f->flowlog_id && !f->name && !f->description && !f->resource_group_id &&
	       f->status < 0 && f->output < 0;
}

static const char *flowlog_page_sql(const struct flowlog_filter *f, bool from_end)
{
	static const char *const sql[2][2] = {
		{FLOWLOG_PAGE_SQL(FLOWLOG_WHERE, "ASC"), FLOWLOG_PAGE_SQL(FLOWLOG_WHERE, "DESC")},
		{FLOWLOG_PAGE_SQL(FLOWLOG_OWNER_WHERE, "ASC"),
		 FLOWLOG_PAGE_SQL(FLOWLOG_OWNER_WHERE, "DESC")},
	};
	return sql[flowlog_unfiltered(f)][from_end];
}

static int list_page(struct store_tx *tx, struct owner o, const struct flowlog_filter *f,
		     bool from_end, int64_t skip, int64_t take, flowlog_each_fn fn, void *arg)
{
	sqlite3_stmt *st = sqlite_tx_stmt(tx, flowlog_page_sql(f, from_end));
	/* The owner-only text has no ?3..?8 to bind. */
	if (!st || (flowlog_unfiltered(f) ? bind_owner(st, o) : bind_flowlog_filter(st, o, f)) < 0 ||
	    sqlite3_bind_int64(st, 9, take) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 10, skip) != SQLITE_OK)
		return st ? sqlite_tx_fail(tx, "flowlog list bind") : STORE_EIO;
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct flowlog fl;
		if (row_flowlog(st, &fl) < 0)
			return sqlite_tx_fail(tx, "flowlog row");
		if (fn(&fl, arg))
			return 0;
	}
	return rc == SQLITE_DONE ? 0 : sqlite_tx_fail(tx, "flowlog list");
}

int sqlite_flowlog_list(struct store_tx *tx, struct owner o, const struct flowlog_filter *f,
		       int64_t *total, flowlog_each_fn fn, void *arg)
{
	/* Unfiltered (Terraform's sweeper, the console's list): the kept count. */
	if (flowlog_unfiltered(f)) {
		if (sqlite_flowlog_count(tx, o, total) != 0)
			return STORE_EIO;
	} else {
		sqlite3_stmt *c = sqlite_tx_stmt(tx, "SELECT count(*) FROM flowlogs f " FLOWLOG_WHERE);
		if (!c || bind_flowlog_filter(c, o, f) < 0 || step_one(tx, c, "flowlog list count") != 0)
			return c ? sqlite_tx_fail(tx, "flowlog list count") : STORE_EIO;
		*total = sqlite3_column_int64(c, 0);
	}
	if (f->offset >= *total || f->limit <= 0)
		return 0; /* past the end: no need to walk the range */
	/* OFFSET costs a walk over the skipped index entries; walk from the nearer end. */
	int64_t end = f->offset + f->limit < *total ? f->offset + f->limit : *total;
	if (*total - end < f->offset)
		return list_page(tx, o, f, true, *total - end, end - f->offset, fn, arg);
	return list_page(tx, o, f, false, f->offset, f->limit, fn, arg);
}

/* ---- gateways ---- */

static int row_sag(sqlite3_stmt *st, struct sag *g)
{
	memset(g, 0, sizeof(*g));
	g->rowid = sqlite3_column_int64(st, 0);
	if (sqlite_col_copy(st, 1, g->id, sizeof(g->id)) < 0 ||
	    sqlite_col_copy(st, 2, g->region_id, sizeof(g->region_id)) < 0 ||
	    sqlite_col_copy(st, 3, g->resource_group_id, sizeof(g->resource_group_id)) < 0 ||
	    sqlite_col_copy(st, 4, g->name, sizeof(g->name)) < 0 ||
	    sqlite_col_copy(st, 5, g->description, sizeof(g->description)) < 0 ||
	    sag_spec_parse(col_str(st, 6), &g->spec) < 0 || sag_ha_parse(col_str(st, 7), &g->ha) < 0 ||
	    sqlite_col_copy(st, 9, g->flowlog_id, sizeof(g->flowlog_id)) < 0)
		return -1;
	g->max_bandwidth = sqlite3_column_int(st, 8);
	g->account_id = sqlite3_column_int64(st, 10);
	g->created_ms = sqlite3_column_int64(st, 11);
	return 0;
}

static int load_devices(struct store_tx *tx, struct sag *g)
{
	sqlite3_stmt *st = sqlite_tx_stmt(
		tx, "SELECT serial_number, secret_key, model, software_version, ha_state, "
		    "reported_ms, sls_delivery, last_sequence, sls_delivered, sls_queued, sls_dropped, "
		    "sls_last_error, sls_last_error_ms FROM devices WHERE sag_rowid = ?1 "
		    "ORDER BY bound_ms, serial_number");
	if (!st || sqlite3_bind_int64(st, 1, g->rowid) != SQLITE_OK)
		return st ? sqlite_tx_fail(tx, "devices bind") : STORE_EIO;
	int rc;
	g->ndevices = 0;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW && g->ndevices < DOMAIN_MAX_DEVICES) {
		struct device *d = &g->devices[g->ndevices++];
		struct str ha = col_str(st, 4);
		d->ha_state = DEVICE_HA_UNKNOWN;
		if (sqlite_col_copy(st, 0, d->serial_number, sizeof(d->serial_number)) < 0 ||
		    sqlite_col_copy(st, 1, d->secret_key, sizeof(d->secret_key)) < 0 ||
		    sqlite_col_copy(st, 2, d->model, sizeof(d->model)) < 0 ||
		    sqlite_col_copy(st, 3, d->software_version, sizeof(d->software_version)) < 0 ||
		    sqlite_col_copy(st, 6, d->sls_delivery, sizeof(d->sls_delivery)) < 0 ||
		    sqlite_col_copy(st, 11, d->sls.last_error, sizeof(d->sls.last_error)) < 0 ||
		    (ha.len && device_ha_parse(ha, &d->ha_state) < 0))
			return sqlite_tx_fail(tx, "device row");
		d->reported_ms = sqlite3_column_int64(st, 5);
		d->last_sequence = sqlite3_column_int64(st, 7);
		d->sls.delivered = sqlite3_column_int64(st, 8);
		d->sls.queued = sqlite3_column_int64(st, 9);
		d->sls.dropped = sqlite3_column_int64(st, 10);
		d->sls.last_error_ms = sqlite3_column_int64(st, 12);
	}
	return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : sqlite_tx_fail(tx, "devices");
}

int sqlite_sag_get(struct store_tx *tx, struct owner o, const char *sag_id, struct sag *out)
{
	sqlite3_stmt *st = sqlite_tx_stmt(tx, "SELECT " SAG_COLS "FROM sags g WHERE g.sag_id = ?3 "
					      "AND g.account_id = ?1 AND g.region_id = ?2");
	if (!st || bind_owner(st, o) < 0 || bind_text(st, 3, sag_id) != SQLITE_OK)
		return st ? sqlite_tx_fail(tx, "sag get bind") : STORE_EIO;
	int rc = step_one(tx, st, "sag get");
	if (rc != 0)
		return rc;
	if (row_sag(st, out) < 0)
		return sqlite_tx_fail(tx, "sag row");
	return load_devices(tx, out);
}

int sqlite_sag_insert(struct store_tx *tx, struct sag *g, const char *order_id,
		     const char *order_json)
{
	sqlite3_stmt *st = sqlite_tx_stmt(
		tx, "INSERT INTO sags (account_id, region_id, sag_id, resource_group_id, name, "
		    "description, hardware_spec, ha_type, max_bandwidth, order_id, order_json, "
		    "created_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)");
	struct owner o = {g->account_id, g->region_id};
	if (!st)
		return STORE_EIO;
	if (bind_owner(st, o) < 0 || bind_text(st, 3, g->id) || bind_text(st, 4, g->resource_group_id) ||
	    bind_text(st, 5, g->name) || bind_text(st, 6, g->description) ||
	    bind_text(st, 7, sag_spec_name(g->spec)) || bind_text(st, 8, sag_ha_name(g->ha)) ||
	    sqlite3_bind_int(st, 9, g->max_bandwidth) || bind_text(st, 10, order_id) ||
	    bind_text(st, 11, order_json) || sqlite3_bind_int64(st, 12, g->created_ms))
		return sqlite_tx_fail(tx, "sag insert bind");
	int rc = step_done(tx, st, "sag insert");
	if (rc == 0)
		g->rowid = sqlite3_last_insert_rowid(sqlite_tx_db(tx));
	return rc;
}

int sqlite_sag_delete(struct store_tx *tx, const struct sag *g)
{
	sqlite3_stmt *st = sqlite_tx_stmt(tx, "DELETE FROM devices WHERE sag_rowid = ?1");
	if (!st || sqlite3_bind_int64(st, 1, g->rowid) != SQLITE_OK)
		return st ? sqlite_tx_fail(tx, "sag delete bind") : STORE_EIO;
	if (step_done(tx, st, "sag devices delete") != 0)
		return STORE_EIO;
	st = sqlite_tx_stmt(tx, "DELETE FROM sags WHERE id = ?1");
	if (!st || sqlite3_bind_int64(st, 1, g->rowid) != SQLITE_OK)
		return st ? sqlite_tx_fail(tx, "sag delete bind") : STORE_EIO;
	return step_done(tx, st, "sag delete");
}

int sqlite_sag_set_flowlog(struct store_tx *tx, const struct sag *g, int64_t fl_rowid)
{
	sqlite3_stmt *st = sqlite_tx_stmt(tx, "UPDATE sags SET flowlog_rowid = ?2 WHERE id = ?1");
	if (!st)
		return STORE_EIO;
	int rc = sqlite3_bind_int64(st, 1, g->rowid);
	if (rc == SQLITE_OK)
		rc = fl_rowid ? sqlite3_bind_int64(st, 2, fl_rowid) : sqlite3_bind_null(st, 2);
	if (rc != SQLITE_OK)
		return sqlite_tx_fail(tx, "sag set flowlog bind");
	return step_done(tx, st, "sag set flowlog");
}

static int each_sag(struct store_tx *tx, sqlite3_stmt *st, sag_each_fn fn, void *arg)
{
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct sag g;
		if (row_sag(st, &g) < 0)
			return sqlite_tx_fail(tx, "sag row");
		/* Devices come from another statement: the cache hands out one
		 * statement per SQL text, so stepping st meanwhile is safe. */
		if (load_devices(tx, &g) != 0)
			return STORE_EIO;
		if (fn(&g, arg))
			return 0;
	}
	return rc == SQLITE_DONE ? 0 : sqlite_tx_fail(tx, "sag list");
}

#define SAG_WHERE                                                                               \
	"WHERE g.account_id = ?1 AND g.region_id = ?2 AND (?3 IS NULL OR g.sag_id = ?3) "       \
	"AND (?4 IS NULL OR g.name = ?4) AND (?5 IS NULL OR g.resource_group_id = ?5) "         \
	"AND (?6 IS NULL OR g.hardware_spec = ?6) AND (?7 IS NULL OR EXISTS (SELECT 1 FROM "    \
	"devices d WHERE d.serial_number = ?7 AND d.sag_rowid = g.id)) "                        \
	"AND (?10 IS NULL OR (SELECT CASE WHEN coalesce(max(d.reported_ms), 0) = 0 THEN 'Init' " \
	"WHEN ?11 - max(d.reported_ms) <= ?12 THEN 'Active' ELSE 'Offline' END "               \
	"FROM devices d WHERE d.sag_rowid = g.id) = ?10) "                                      \
	"AND (?13 IS NULL OR g.sag_id IN (SELECT value FROM json_each(?13))) "

static int bind_sag_filter(sqlite3_stmt *st, struct owner o, const struct sag_filter *f)
{
	if (bind_owner(st, o) < 0)
		return -1;
	const char *v[] = {f->sag_id, f->name, f->resource_group_id,
			   f->spec < 0 ? NULL : sag_spec_name((enum sag_spec)f->spec),
			   f->serial_number};
	for (int i = 0; i < 5; i++)
		if (bind_text(st, 3 + i, v[i]) != SQLITE_OK)
			return -1;
	/* The same rule as sag_status() in src/domain, evaluated per row. */
	if (bind_text(st, 10, f->status) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 11, f->now_ms) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 12, f->online_ms) != SQLITE_OK ||
	    bind_text(st, 13, f->ids_json) != SQLITE_OK)
		return -1;
	return 0;
}

int sqlite_sag_list(struct store_tx *tx, struct owner o, const struct sag_filter *f, int64_t *total,
		   sag_each_fn fn, void *arg)
{
	sqlite3_stmt *st = sqlite_tx_stmt(tx, "SELECT count(*) FROM sags g " SAG_WHERE);
	if (!st || bind_sag_filter(st, o, f) < 0 || step_one(tx, st, "sag list count") != 0)
		return st ? sqlite_tx_fail(tx, "sag list count") : STORE_EIO;
	*total = sqlite3_column_int64(st, 0);
	st = sqlite_tx_stmt(tx, "SELECT " SAG_COLS "FROM sags g " SAG_WHERE
				"ORDER BY g.id LIMIT ?8 OFFSET ?9");
	if (!st || bind_sag_filter(st, o, f) < 0 || sqlite3_bind_int64(st, 8, f->limit) ||
	    sqlite3_bind_int64(st, 9, f->offset))
		return st ? sqlite_tx_fail(tx, "sag list bind") : STORE_EIO;
	return each_sag(tx, st, fn, arg);
}

int sqlite_sag_list_by_flowlog(struct store_tx *tx, const struct flowlog *fl, int64_t offset,
			      int64_t limit, int64_t *total, sag_each_fn fn, void *arg)
{
	*total = fl->total_sag_num;
	sqlite3_stmt *st = sqlite_tx_stmt(tx, "SELECT " SAG_COLS "FROM sags g WHERE "
					      "g.flowlog_rowid = ?1 ORDER BY g.id LIMIT ?2 OFFSET ?3");
	if (!st || sqlite3_bind_int64(st, 1, fl->rowid) || sqlite3_bind_int64(st, 2, limit) ||
	    sqlite3_bind_int64(st, 3, offset))
		return st ? sqlite_tx_fail(tx, "sag by flowlog bind") : STORE_EIO;
	return each_sag(tx, st, fn, arg);
}

int sqlite_sag_list_unbound(struct store_tx *tx, struct owner o, int64_t limit, int64_t *total,
			   sag_each_fn fn, void *arg)
{
	sqlite3_stmt *st = sqlite_tx_stmt(tx, "SELECT count(*) FROM sags WHERE account_id = ?1 "
					      "AND region_id = ?2 AND flowlog_rowid IS NULL");
	if (!st || bind_owner(st, o) < 0 || step_one(tx, st, "unbound count") != 0)
		return st ? sqlite_tx_fail(tx, "unbound count") : STORE_EIO;
	*total = sqlite3_column_int64(st, 0);
	st = sqlite_tx_stmt(tx, "SELECT " SAG_COLS "FROM sags g WHERE g.account_id = ?1 AND "
				"g.region_id = ?2 AND g.flowlog_rowid IS NULL ORDER BY g.id LIMIT ?3");
	if (!st || bind_owner(st, o) < 0 || sqlite3_bind_int64(st, 3, limit))
		return st ? sqlite_tx_fail(tx, "unbound bind") : STORE_EIO;
	return each_sag(tx, st, fn, arg);
}

/* ---- devices ---- */

int sqlite_device_insert(struct store_tx *tx, const struct sag *g, const struct device *d,
			int64_t now_ms)
{
	sqlite3_stmt *st = sqlite_tx_stmt(tx, "INSERT INTO devices (serial_number, sag_rowid, "
					      "secret_key, bound_ms) VALUES (?1, ?2, ?3, ?4)");
	if (!st || bind_text(st, 1, d->serial_number) || sqlite3_bind_int64(st, 2, g->rowid) ||
	    bind_text(st, 3, d->secret_key) || sqlite3_bind_int64(st, 4, now_ms))
		return st ? sqlite_tx_fail(tx, "device insert bind") : STORE_EIO;
	return step_done(tx, st, "device insert");
}

int sqlite_device_delete(struct store_tx *tx, const struct sag *g, const char *serial_number)
{
	sqlite3_stmt *st = sqlite_tx_stmt(
		tx, "DELETE FROM devices WHERE serial_number = ?1 AND sag_rowid = ?2");
	if (!st || bind_text(st, 1, serial_number) || sqlite3_bind_int64(st, 2, g->rowid))
		return st ? sqlite_tx_fail(tx, "device delete bind") : STORE_EIO;
	if (step_done(tx, st, "device delete") != 0)
		return STORE_EIO;
	return sqlite3_changes(sqlite_tx_db(tx)) ? 0 : 1;
}

int sqlite_device_owner(struct store_tx *tx, const char *serial_number, struct sag *g)
{
	sqlite3_stmt *st = sqlite_tx_stmt(tx, "SELECT " SAG_COLS "FROM devices d JOIN sags g "
					      "ON g.id = d.sag_rowid WHERE d.serial_number = ?1");
	if (!st || bind_text(st, 1, serial_number) != SQLITE_OK)
		return st ? sqlite_tx_fail(tx, "device owner bind") : STORE_EIO;
	int rc = step_one(tx, st, "device owner");
	if (rc != 0)
		return rc;
	if (row_sag(st, g) < 0)
		return sqlite_tx_fail(tx, "sag row");
	return load_devices(tx, g);
}

int sqlite_device_report(struct store_tx *tx, const struct sag *g, const char *serial_number,
			const struct device *d, int64_t now_ms)
{
	sqlite3_stmt *st = sqlite_tx_stmt(
		tx, "UPDATE devices SET model = ?2, software_version = ?3, ha_state = ?4, "
		    "reported_ms = ?5, sls_delivery = ?6, sls_delivered = ?8, sls_queued = ?9, "
		    "sls_dropped = ?10, sls_last_error = ?11, sls_last_error_ms = ?12 "
		    "WHERE serial_number = ?1 AND sag_rowid = ?7");
	if (!st || bind_text(st, 1, serial_number) || bind_text(st, 2, d->model) ||
	    bind_text(st, 3, d->software_version) || bind_text(st, 4, device_ha_name(d->ha_state)) ||
	    sqlite3_bind_int64(st, 5, now_ms) || bind_text(st, 6, d->sls_delivery) ||
	    sqlite3_bind_int64(st, 7, g->rowid) || sqlite3_bind_int64(st, 8, d->sls.delivered) ||
	    sqlite3_bind_int64(st, 9, d->sls.queued) || sqlite3_bind_int64(st, 10, d->sls.dropped) ||
	    bind_text(st, 11, d->sls.last_error) || sqlite3_bind_int64(st, 12, d->sls.last_error_ms))
		return st ? sqlite_tx_fail(tx, "device report bind") : STORE_EIO;
	int rc = step_done(tx, st, "device report");
	if (rc != 0)
		return rc;
	return sqlite3_changes(sqlite_tx_db(tx)) == 1 ? 0 : 1;
}

int sqlite_device_sequence(struct store_tx *tx, const struct sag *g, const char *serial_number,
			  int64_t seq, int64_t *last)
{
	sqlite3_stmt *st = sqlite_tx_stmt(
		tx, "UPDATE devices SET last_sequence = ?2 WHERE serial_number = ?1 AND "
		    "sag_rowid = ?3 AND last_sequence < ?2");
	if (!st || bind_text(st, 1, serial_number) || sqlite3_bind_int64(st, 2, seq) ||
	    sqlite3_bind_int64(st, 3, g->rowid))
		return st ? sqlite_tx_fail(tx, "device sequence bind") : STORE_EIO;
	int rc = step_done(tx, st, "device sequence");
	if (rc != 0 || sqlite3_changes(sqlite_tx_db(tx)) == 1)
		return rc;
	st = sqlite_tx_stmt(tx, "SELECT last_sequence FROM devices WHERE serial_number = ?1 AND "
				"sag_rowid = ?2");
	if (!st || bind_text(st, 1, serial_number) || sqlite3_bind_int64(st, 2, g->rowid))
		return st ? sqlite_tx_fail(tx, "device sequence bind") : STORE_EIO;
	rc = step_one(tx, st, "device sequence");
	if (rc != 0)
		return rc;
	*last = sqlite3_column_int64(st, 0);
	return 2;
}

int sqlite_device_status_counts(struct store_tx *tx, int64_t now_ms, int64_t online_ms,
			       int64_t counts[3])
{
	sqlite3_stmt *st = sqlite_tx_stmt(
	    tx, "SELECT coalesce(sum(reported_ms = 0), 0), "
		"coalesce(sum(reported_ms > 0 AND ?1 - reported_ms <= ?2), 0), "
		"coalesce(sum(reported_ms > 0 AND ?1 - reported_ms > ?2), 0) FROM devices");
	if (!st || sqlite3_bind_int64(st, 1, now_ms) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 2, online_ms) != SQLITE_OK)
		return st ? sqlite_tx_fail(tx, "device status bind") : STORE_EIO;
	int rc = step_one(tx, st, "device status counts");
	if (rc != 0)
		return rc < 0 ? rc : STORE_EIO;
	for (int i = 0; i < 3; i++)
		counts[i] = sqlite3_column_int64(st, i);
	return 0;
}
