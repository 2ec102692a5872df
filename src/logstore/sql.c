#include "logstore/sql.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>

#include "core/timeutil.h"
#include "core/xmalloc.h"
#include "logstore/lscan.h"
#include "logstore/sqlfn.h"
#include "logstore/sqltext.h"

/* Columns every query sees (so "select *" shows a SAG flow record, spec
 * §2.2), before the names the query itself uses. Column 0 is __time__. */
static const char *const fixed_columns[] = {
	"__time__", "__topic__", "__source__", "Instance_id", "snid", "ali-uid", "start", "end",
	"protocol", "srcaddr", "srcport", "dstaddr", "dstport", "packets", "bytes", "tcp-flags",
	"tos", "inport", "outport",
};

/* The SAG flow-log fields that are numbers (spec §2.3): SQL sees integers. */
static const char *const numeric_columns[] = {
	"__time__", "start", "end", "protocol", "srcport", "dstport", "packets", "bytes",
	"tcp-flags", "tos", "inport", "outport",
};

/* Functions a query may call; everything else is refused by the authorizer.
 * "like"/"glob" are the LIKE and GLOB operators. */
static const char *const allowed_functions[] = {
	"count", "sum", "avg", "min", "max", "total", "group_concat", "abs", "round", "lower",
	"upper", "length", "substr", "substring", "coalesce", "ifnull", "nullif", "iif", "instr",
	"replace", "trim", "ltrim", "rtrim", "like", "glob", "typeof", "floor", "ceil", "ceiling",
	"sqrt", "pow", "power", "ln", "log", "log10", "log2", "exp", "mod", "sign",
	"date_trunc", "date_format", "from_unixtime", "to_unixtime",
};

struct sqlq {
	const struct sql_source *src;
	struct sqltext text;
	const char *col[sizeof(fixed_columns) / sizeof(fixed_columns[0]) + SQLTEXT_MAX_NAMES];
	bool numeric[sizeof(fixed_columns) / sizeof(fixed_columns[0]) + SQLTEXT_MAX_NAMES];
	size_t ncols;
	int64_t processed, deadline_us;
	bool timed_out, declaring, read_failed;
	char denied[SQL_DETAIL_MAX / 2];
};

static bool in_list(const char *s, const char *const *list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!strcasecmp(s, list[i]))
			return true;
	return false;
}

static bool over_budget(struct sqlq *q)
{
	if (!q->timed_out && time_mono_us() > q->deadline_us)
		q->timed_out = true;
	return q->timed_out;
}

/* ---- the virtual table ---- */

struct vt {
	sqlite3_vtab base;
	struct sqlq *q;
};

struct vc {
	sqlite3_vtab_cursor base;
	struct sqlq *q;
	void *it;
	struct ldata_block lb;
	struct lscan_block *x;
	struct lscan_col *cols;
	size_t i;
	bool eof;
	int64_t from, to, rowid;
};

static void add_quoted(struct buf *b, const char *name)
{
	buf_adds(b, "\"");
	for (const char *p = name; *p; p++) {
		buf_add(b, p, 1);
		if (*p == '"')
			buf_add(b, p, 1); /* "" inside a quoted name */
	}
	buf_adds(b, "\"");
}

static int vt_connect(sqlite3 *db, void *aux, int argc, const char *const *argv,
		      sqlite3_vtab **out, char **err)
{
	struct sqlq *q = aux;
	struct buf b = {0};
	buf_adds(&b, "CREATE TABLE x(");
	for (size_t i = 0; i < q->ncols; i++) {
		if (i)
			buf_adds(&b, ",");
		add_quoted(&b, q->col[i]);
	}
	buf_adds(&b, ")");
	q->declaring = true;
	int rc = sqlite3_declare_vtab(db, b.p);
	q->declaring = false;
	buf_free(&b);
	if (rc != SQLITE_OK)
		return rc;
	struct vt *v = xcalloc(1, sizeof(*v));
	v->q = q;
	*out = &v->base;
	return SQLITE_OK;
}

static int vt_disconnect(sqlite3_vtab *v)
{
	free(v);
	return SQLITE_OK;
}

/* Constraints on __time__ narrow the blocks read; idxStr holds their operators. */
static int vt_best_index(sqlite3_vtab *tab, sqlite3_index_info *ii)
{
	char ops[8];
	int n = 0;
	for (int i = 0; i < ii->nConstraint && n < (int)sizeof(ops) - 1; i++) {
		const struct sqlite3_index_constraint *c = &ii->aConstraint[i];
		if (!c->usable || c->iColumn != 0)
			continue;
		char op = c->op == SQLITE_INDEX_CONSTRAINT_EQ   ? '='
			  : c->op == SQLITE_INDEX_CONSTRAINT_GT ? '>'
			  : c->op == SQLITE_INDEX_CONSTRAINT_GE ? 'g'
			  : c->op == SQLITE_INDEX_CONSTRAINT_LT ? '<'
			  : c->op == SQLITE_INDEX_CONSTRAINT_LE ? 'l'
								: 0;
		if (!op)
			continue;
		ops[n++] = op;
		ii->aConstraintUsage[i].argvIndex = n; /* SQLite still checks: omit stays 0 */
	}
	ops[n] = '\0';
	ii->idxNum = n;
	ii->idxStr = sqlite3_mprintf("%s", ops);
	ii->needToFreeIdxStr = 1;
	ii->estimatedCost = n ? 1e4 : 1e6;
	return SQLITE_OK;
}

static int vt_open(sqlite3_vtab *tab, sqlite3_vtab_cursor **out)
{
	struct vc *c = xcalloc(1, sizeof(*c));
	c->q = ((struct vt *)tab)->q;
	c->x = xcalloc(1, sizeof(*c->x));
	c->cols = xcalloc(c->q->ncols, sizeof(*c->cols));
	c->eof = true;
	*out = &c->base;
	return SQLITE_OK;
}

static void cursor_reset(struct vc *c)
{
	lscan_unload(c->x);
	if (c->it)
		c->q->src->blocks.close(c->it);
	c->it = NULL;
}

static int vt_close(sqlite3_vtab_cursor *cur)
{
	struct vc *c = (struct vc *)cur;
	cursor_reset(c);
	free(c->x);
	free(c->cols);
	free(c);
	return SQLITE_OK;
}

static int cursor_error(struct vc *c, const char *why)
{
	sqlite3_free(c->base.pVtab->zErrMsg);
	c->base.pVtab->zErrMsg = sqlite3_mprintf("%s", why);
	return SQLITE_ERROR;
}

/* The next block of the window that passes the topic filter, decoded. 1, 0 at the end, <0. */
static int load_block(struct vc *c)
{
	const struct sql_source *src = c->q->src;
	for (;;) {
		lscan_unload(c->x);
		if (over_budget(c->q))
			return -1;
		int rc = src->blocks.next(c->it, &c->lb);
		if (rc <= 0)
			return rc;
		if (src->topic.len && !str_eq(c->lb.topic, src->topic))
			continue;
		if (lscan_load(c->x, &c->lb, src->s) != 0)
			return -1;
		c->q->processed += (int64_t)c->x->b.n;
		for (size_t k = 0; k < c->q->ncols; k++)
			lscan_resolve(c->x, str_c(c->q->col[k]), &c->cols[k]);
		return 1;
	}
}

/* Moves to the next matching log, from log c->i (included) on. */
static int advance(struct vc *c)
{
	for (;;) {
		for (; c->x->loaded && c->i < c->x->b.n; c->i++)
			if (lscan_match(c->x, c->q->src->s, c->i, c->from, c->to))
				return SQLITE_OK;
		int rc = load_block(c);
		c->i = 0;
		if (rc == 0) {
			c->eof = true;
			return SQLITE_OK;
		}
		if (rc < 0) {
			c->eof = true;
			if (c->q->timed_out)
				return cursor_error(c, "time budget");
			c->q->read_failed = true;
			return cursor_error(c, "a block cannot be read");
		}
	}
}

static void narrow(struct vc *c, char op, sqlite3_value *v)
{
	if (sqlite3_value_numeric_type(v) != SQLITE_INTEGER)
		return; /* SQLite checks every constraint itself anyway */
	int64_t t = sqlite3_value_int64(v);
	if (t < 0)
		t = -1;
	if (t > (int64_t)UINT32_MAX + 1)
		t = (int64_t)UINT32_MAX + 1;
	int64_t lo = op == '=' || op == 'g' ? t : op == '>' ? t + 1 : INT64_MIN;
	int64_t hi = op == '=' || op == 'l' ? t + 1 : op == '<' ? t : INT64_MAX;
	c->from = lo > c->from ? lo : c->from;
	c->to = hi < c->to ? hi : c->to;
}

static int vt_filter(sqlite3_vtab_cursor *cur, int idx_num, const char *idx_str, int argc,
		     sqlite3_value **argv)
{
	struct vc *c = (struct vc *)cur;
	const struct sql_source *src = c->q->src;
	cursor_reset(c);
	c->from = src->from;
	c->to = src->to;
	for (int i = 0; i < argc && idx_str && idx_str[i]; i++)
		narrow(c, idx_str[i], argv[i]);
	c->eof = false;
	c->i = 0;
	c->rowid = 0;
	if (c->from >= c->to) {
		c->eof = true;
		return SQLITE_OK;
	}
	c->it = src->blocks.open(src->blocks.arg, c->from, c->to);
	return advance(c);
}

static int vt_next(sqlite3_vtab_cursor *cur)
{
	struct vc *c = (struct vc *)cur;
	c->i++;
	c->rowid++;
	return advance(c);
}

static int vt_eof(sqlite3_vtab_cursor *cur)
{
	return ((struct vc *)cur)->eof;
}

/* A decimal integer without sign oddities or overflow, as SAG fields are. */
static bool parse_int(struct str v, sqlite3_int64 *out)
{
	size_t i = v.len && v.p[0] == '-';
	uint64_t n = 0;
	if (i >= v.len || v.len - i > 18)
		return false;
	for (; i < v.len; i++) {
		if (v.p[i] < '0' || v.p[i] > '9')
			return false;
		n = n * 10 + (uint64_t)(v.p[i] - '0');
	}
	*out = v.p[0] == '-' ? -(sqlite3_int64)n : (sqlite3_int64)n;
	return true;
}

static int vt_column(sqlite3_vtab_cursor *cur, sqlite3_context *ctx, int n)
{
	struct vc *c = (struct vc *)cur;
	if (n == 0) {
		sqlite3_result_int64(ctx, c->x->b.time[c->i]);
		return SQLITE_OK;
	}
	struct str v = lscan_value(c->x, &c->cols[n], c->i);
	sqlite3_int64 iv;
	double dv;
	if (!v.p)
		sqlite3_result_null(ctx);
	else if (c->q->numeric[n] && parse_int(v, &iv))
		sqlite3_result_int64(ctx, iv);
	else if (c->q->numeric[n] && search_number(v, &dv) == 0)
		sqlite3_result_double(ctx, dv);
	else
		sqlite3_result_text(ctx, v.p, (int)v.len, SQLITE_TRANSIENT);
	return SQLITE_OK;
}

static int vt_rowid(sqlite3_vtab_cursor *cur, sqlite3_int64 *rowid)
{
	*rowid = ((struct vc *)cur)->rowid;
	return SQLITE_OK;
}

/* Eponymous-only (no xCreate) and read-only (no xUpdate). */
static const sqlite3_module vt_module = {
	.iVersion = 0,
	.xConnect = vt_connect,
	.xBestIndex = vt_best_index,
	.xDisconnect = vt_disconnect,
	.xDestroy = vt_disconnect,
	.xOpen = vt_open,
	.xClose = vt_close,
	.xFilter = vt_filter,
	.xNext = vt_next,
	.xEof = vt_eof,
	.xColumn = vt_column,
	.xRowid = vt_rowid,
};

/* ---- confinement ---- */

/* Remembers the first refusal: "<what> '<name>'", or what alone. */
static int deny(struct sqlq *q, const char *what, const char *name)
{
	if (!q->denied[0] && name)
		snprintf(q->denied, sizeof(q->denied), "%s '%.64s'", what, name);
	else if (!q->denied[0])
		snprintf(q->denied, sizeof(q->denied), "%s", what);
	return SQLITE_DENY;
}

struct action_name {
	int code;
	const char *what;
};

static const struct action_name action_names[] = {
	{SQLITE_PRAGMA, "PRAGMA"},      {SQLITE_ATTACH, "ATTACH"},     {SQLITE_DETACH, "DETACH"},
	{SQLITE_INSERT, "INSERT"},      {SQLITE_UPDATE, "UPDATE"},     {SQLITE_DELETE, "DELETE"},
	{SQLITE_TRANSACTION, "a transaction"}, {SQLITE_RECURSIVE, "a recursive WITH"},
	{SQLITE_CREATE_TABLE, "CREATE"}, {SQLITE_CREATE_VTABLE, "CREATE"}, {SQLITE_ANALYZE, "ANALYZE"},
};

static int authorize(void *arg, int action, const char *a, const char *b, const char *db,
		     const char *trigger)
{
	struct sqlq *q = arg;
	if (q->declaring)
		return SQLITE_OK; /* our own CREATE TABLE for sqlite3_declare_vtab */
	switch (action) {
	case SQLITE_SELECT: return SQLITE_OK;
	case SQLITE_READ:
		if (a && !strcmp(a, SQLTEXT_TABLE))
			return SQLITE_OK; /* the only table there is (or a WITH of that name) */
		if (!db) /* the queue of a recursive WITH is read before SQLITE_RECURSIVE is asked */
			return deny(q, "a recursive WITH", NULL);
		return deny(q, "reading another table than 'log':", a ? a : "?");
	case SQLITE_FUNCTION:
		if (b && in_list(b, allowed_functions, sizeof(allowed_functions) / sizeof(allowed_functions[0])))
			return SQLITE_OK;
		return deny(q, "the function", b ? b : "?");
	}
	for (size_t i = 0; i < sizeof(action_names) / sizeof(action_names[0]); i++)
		if (action_names[i].code == action)
			return deny(q, action_names[i].what, a);
	return deny(q, "this statement", NULL);
}

static int progress(void *arg)
{
	return over_budget(arg);
}

struct limit {
	int id, value;
};

static const struct limit limits[] = {
	{SQLITE_LIMIT_LENGTH, SQL_MAX_VALUE},
	{SQLITE_LIMIT_SQL_LENGTH, SQL_MAX_STATEMENT},
	{SQLITE_LIMIT_COLUMN, SQL_MAX_COLUMNS},
	{SQLITE_LIMIT_EXPR_DEPTH, SQL_MAX_EXPR_DEPTH},
	{SQLITE_LIMIT_COMPOUND_SELECT, SQL_MAX_COMPOUND},
	{SQLITE_LIMIT_VDBE_OP, SQL_MAX_VDBE_OPS},
	{SQLITE_LIMIT_FUNCTION_ARG, SQL_MAX_FUNCTION_ARGS},
	{SQLITE_LIMIT_ATTACHED, 0},
	{SQLITE_LIMIT_LIKE_PATTERN_LENGTH, SQL_MAX_LIKE_PATTERN},
	{SQLITE_LIMIT_VARIABLE_NUMBER, 0},
	{SQLITE_LIMIT_TRIGGER_DEPTH, 1},
	{SQLITE_LIMIT_WORKER_THREADS, 0},
};

static const int db_off[] = {
	SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION, SQLITE_DBCONFIG_ENABLE_TRIGGER,
	SQLITE_DBCONFIG_ENABLE_VIEW, SQLITE_DBCONFIG_TRUSTED_SCHEMA,
	SQLITE_DBCONFIG_DQS_DML, SQLITE_DBCONFIG_DQS_DDL,
};

static sqlite3 *open_confined(struct sqlq *q)
{
	sqlite3 *db = NULL;
	if (sqlite3_open_v2(":memory:", &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) !=
	    SQLITE_OK) {
		sqlite3_close(db);
		return NULL;
	}
	for (size_t i = 0; i < sizeof(db_off) / sizeof(db_off[0]); i++)
		sqlite3_db_config(db, db_off[i], 0, (int *)NULL);
	sqlite3_db_config(db, SQLITE_DBCONFIG_DEFENSIVE, 1, (int *)NULL);
	for (size_t i = 0; i < sizeof(limits) / sizeof(limits[0]); i++)
		sqlite3_limit(db, limits[i].id, limits[i].value);
	if (sqlfn_register(db) != SQLITE_OK ||
	    sqlite3_create_module_v2(db, SQLTEXT_TABLE, &vt_module, q, NULL) != SQLITE_OK) {
		sqlite3_close(db);
		return NULL;
	}
	sqlite3_set_authorizer(db, authorize, q);
	sqlite3_progress_handler(db, SQL_PROGRESS_OPS, progress, q);
	return db;
}

/* ---- running it ---- */

static void columns_of(struct sqlq *q)
{
	size_t nf = sizeof(fixed_columns) / sizeof(fixed_columns[0]);
	for (size_t i = 0; i < nf; i++)
		q->col[q->ncols++] = fixed_columns[i];
	for (size_t i = 0; i < q->text.nnames; i++)
		if (!in_list(q->text.names[i], fixed_columns, nf))
			q->col[q->ncols++] = q->text.names[i];
	for (size_t i = 0; i < q->ncols; i++)
		q->numeric[i] = in_list(q->col[i], numeric_columns,
					sizeof(numeric_columns) / sizeof(numeric_columns[0]));
}

static json_t *value_json(sqlite3_stmt *st, int i, size_t *bytes)
{
	if (sqlite3_column_type(st, i) == SQLITE_NULL)
		return json_string("null");
	const char *t = (const char *)sqlite3_column_text(st, i);
	size_t n = (size_t)sqlite3_column_bytes(st, i);
	*bytes += n;
	json_t *j = json_stringn(t ? t : "", n);
	if (j)
		return j;
	char *c = xmemdup0(t, n); /* bytes that are not UTF-8: '?' each */
	for (size_t k = 0; k < n; k++)
		if ((unsigned char)c[k] >= 0x80 || !c[k])
			c[k] = '?';
	j = json_stringn(c, n);
	free(c);
	return j;
}

static int collect(sqlite3_stmt *st, struct sql_result *out)
{
	int nc = sqlite3_column_count(st), rc;
	size_t bytes = 0;
	out->keys = json_array();
	for (int i = 0; i < nc; i++)
		json_array_append_new(out->keys, json_string(sqlite3_column_name(st, i)));
	out->rows = json_array();
	out->complete = true;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (json_array_size(out->rows) >= SQL_MAX_ROWS || bytes >= SQL_MAX_ANSWER_BYTES) {
			out->complete = false;
			return SQLITE_DONE;
		}
		json_t *o = json_object();
		for (int i = 0; i < nc; i++)
			json_object_set_new(o, sqlite3_column_name(st, i), value_json(st, i, &bytes));
		json_array_append_new(out->rows, o);
	}
	return rc;
}

static bool only_space(const char *p)
{
	while (p && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
		p++;
	return !p || !*p;
}

static enum sls_err failed(struct sqlq *q, sqlite3 *db, char *detail)
{
	if (q->read_failed)
		return SLS_ERR_INTERNAL_SERVER_ERROR;
	if (q->timed_out)
		snprintf(detail, SQL_DETAIL_MAX, "the query ran past its time budget of %d ms",
			 SQL_TIME_BUDGET_MS);
	else if (q->denied[0])
		snprintf(detail, SQL_DETAIL_MAX, "%s is not allowed", q->denied);
	else
		snprintf(detail, SQL_DETAIL_MAX, "%s", db ? sqlite3_errmsg(db) : "no memory");
	return SLS_ERR_INVALID_QUERY_STRING;
}

static enum sls_err run(struct sqlq *q, sqlite3 *db, struct sql_result *out, char *detail)
{
	sqlite3_stmt *st = NULL;
	const char *tail = NULL;
	if (sqlite3_prepare_v2(db, q->text.sql.p, (int)q->text.sql.len, &st, &tail) != SQLITE_OK)
		return failed(q, db, detail);
	enum sls_err e = SLS_ERR_OK;
	if (!st || !only_space(tail) || !sqlite3_stmt_readonly(st)) {
		snprintf(detail, SQL_DETAIL_MAX, "one SELECT statement expected");
		e = SLS_ERR_INVALID_QUERY_STRING;
	} else if (collect(st, out) != SQLITE_DONE) {
		e = failed(q, db, detail);
	}
	sqlite3_finalize(st);
	return e;
}

enum sls_err sql_run(const struct sql_source *src, struct str sql, struct sql_result *out,
		     char detail[SQL_DETAIL_MAX])
{
	struct sqlq *q = xcalloc(1, sizeof(*q));
	memset(out, 0, sizeof(*out));
	detail[0] = '\0';
	q->src = src;
	q->deadline_us = time_mono_us() + (int64_t)SQL_TIME_BUDGET_MS * 1000;
	char td[SQLTEXT_DETAIL_MAX];
	enum sls_err e = SLS_ERR_INVALID_QUERY_STRING;
	sqlite3 *db = NULL;
	if (sqltext_rewrite(sql, src->logstore, &q->text, td) != 0) {
		snprintf(detail, SQL_DETAIL_MAX, "%s", td);
		goto out;
	}
	columns_of(q);
	if (!(db = open_confined(q))) {
		e = SLS_ERR_INTERNAL_SERVER_ERROR;
		goto out;
	}
	e = run(q, db, out, detail);
out:
	out->processed = q->processed;
	if (e != SLS_ERR_OK)
		sql_result_free(out);
	sqlite3_close(db);
	sqltext_free(&q->text);
	free(q);
	return e;
}

void sql_result_free(struct sql_result *r)
{
	json_decref(r->rows);
	json_decref(r->keys);
	r->rows = r->keys = NULL;
}

/* ---- blocks from the logstore's files ---- */

static void *ldata_open_it(void *arg, int64_t from, int64_t to)
{
	struct sql_ldata *l = arg;
	return ldata_iter_open(l->d, l->logstore, from, to);
}

static int ldata_next_it(void *it, struct ldata_block *out)
{
	return ldata_iter_next(it, out);
}

static void ldata_close_it(void *it)
{
	ldata_iter_close(it);
}

struct sql_blocks sql_blocks_ldata(struct sql_ldata *l)
{
	return (struct sql_blocks){ldata_open_it, ldata_next_it, ldata_close_it, l};
}

/* ---- blocks in memory ---- */

struct mem_it {
	const struct sql_memory *m;
	size_t next;
};

static void *mem_open(void *arg, int64_t from, int64_t to)
{
	struct mem_it *it = xcalloc(1, sizeof(*it));
	it->m = arg;
	return it;
}

static int mem_next(void *arg, struct ldata_block *out)
{
	struct mem_it *it = arg;
	if (it->next >= it->m->n)
		return 0;
	*out = it->m->blocks[it->next++];
	return 1;
}

struct sql_blocks sql_blocks_memory(struct sql_memory *m)
{
	return (struct sql_blocks){mem_open, mem_next, free, m};
}
