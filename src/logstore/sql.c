#include "logstore/sql.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>

#include "core/timeutil.h"
#include "core/xmalloc.h"
#include "logstore/groups.h"
#include "logstore/lscan.h"
#include "logstore/sqlfn.h"
#include "logstore/sqltext.h"
#include "sls/body.h"

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
	enum sqltext_role role[sizeof(fixed_columns) / sizeof(fixed_columns[0]) + SQLTEXT_MAX_NAMES];
	bool preagg;       /* the table answers with one row per group (sqltext_roles) */
	bool preagg_abort; /* ... but met a value it cannot pre-aggregate exactly: run row by row */
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
	bool grouped;      /* pre-aggregated: rows are the groups of gt */
	struct groups gt;
	int acc_of[sizeof(fixed_columns) / sizeof(fixed_columns[0]) + SQLTEXT_MAX_NAMES];
	int keycol[sizeof(fixed_columns) / sizeof(fixed_columns[0]) + SQLTEXT_MAX_NAMES];
	int aggcol[sizeof(fixed_columns) / sizeof(fixed_columns[0]) + SQLTEXT_MAX_NAMES];
	size_t nkeycol, naggcol;
	struct buf key;    /* the current block's matching logs' encoded keys, one after another */
	struct preagg_log {
		size_t i, at, len; /* the log, its key in key */
		uint64_t hash;
	} *logs;           /* SLS_MAX_LOGS_PER_GROUP */
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
	if (c->grouped)
		groups_free(&c->gt);
	c->grouped = false;
	lscan_unload(c->x);
	if (c->it)
		c->q->src->blocks.close(c->it);
	c->it = NULL;
}

static int vt_close(sqlite3_vtab_cursor *cur)
{
	struct vc *c = (struct vc *)cur;
	cursor_reset(c);
	buf_free(&c->key);
	free(c->logs);
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
		/* A column that failed to decode read as absent: the answer is wrong. */
		int rc = c->x->loaded && c->x->b.corrupt ? -1 : load_block(c);
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

static int preagg_fill(struct vc *c);

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
	if (!c->q->preagg)
		return advance(c);
	int rc = preagg_fill(c);
	c->eof = c->gt.n == 0;
	if (rc == 0)
		return SQLITE_OK;
	c->eof = true;
	if (c->q->timed_out)
		return cursor_error(c, "time budget");
	if (!c->q->preagg_abort)
		c->q->read_failed = true;
	return cursor_error(c, "a block cannot be read");
}

static int vt_next(sqlite3_vtab_cursor *cur)
{
	struct vc *c = (struct vc *)cur;
	c->i++;
	c->rowid++;
	if (c->grouped) {
		c->eof = (size_t)c->rowid >= c->gt.n;
		return SQLITE_OK;
	}
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

enum cell_kind { CELL_NULL, CELL_INT, CELL_REAL, CELL_TEXT };

/* Column n of the current block's log i, as SQL sees it: the same answer
 * row by row (vt_column) and pre-aggregated (preagg_row). */
static enum cell_kind cell(struct vc *c, int n, size_t i, struct str *v, sqlite3_int64 *iv,
			   double *dv)
{
	if (n == 0) {
		*iv = c->x->b.time[i];
		return CELL_INT;
	}
	*v = lscan_value(c->x, &c->cols[n], i);
	if (!v->p)
		return CELL_NULL;
	if (c->q->numeric[n] && parse_int(*v, iv))
		return CELL_INT;
	if (c->q->numeric[n] && search_number(*v, dv) == 0)
		return CELL_REAL;
	return CELL_TEXT;
}

static void result_cell(sqlite3_context *ctx, enum cell_kind k, struct str v, sqlite3_int64 iv,
			double dv)
{
	switch (k) {
	case CELL_NULL: sqlite3_result_null(ctx); break;
	case CELL_INT: sqlite3_result_int64(ctx, iv); break;
	case CELL_REAL: sqlite3_result_double(ctx, dv); break;
	case CELL_TEXT: sqlite3_result_text(ctx, v.p, (int)v.len, SQLITE_TRANSIENT); break;
	}
}

static void group_column(struct vc *c, sqlite3_context *ctx, int n);

static int vt_column(sqlite3_vtab_cursor *cur, sqlite3_context *ctx, int n)
{
	struct vc *c = (struct vc *)cur;
	if (c->grouped) {
		group_column(c, ctx, n);
		return SQLITE_OK;
	}
	struct str v = STR_NULL;
	sqlite3_int64 iv = 0;
	double dv = 0;
	enum cell_kind k = cell(c, n, c->i, &v, &iv, &dv);
	result_cell(ctx, k, v, iv, dv);
	return SQLITE_OK;
}

/* ---- pre-aggregation: one row per group, with partial sums, minima, maxima ---- */

/* A group's key: for each key column in order, its kind and value. */
static int key_add(struct buf *k, enum cell_kind kind, struct str v, sqlite3_int64 iv)
{
	buf_addc(k, (char)kind);
	if (kind == CELL_INT)
		buf_add(k, &iv, sizeof(iv));
	if (kind == CELL_TEXT) {
		uint32_t len = (uint32_t)v.len;
		buf_add(k, &len, sizeof(len));
		buf_add(k, v.p, v.len);
	}
	return kind == CELL_REAL ? -1 : 0; /* 1 and 1.0 are one group to SQLite: not ours */
}

/* false when the value cannot be taken exactly. A negative one under sum():
 * SQLite checks each addition for overflow, in its own order, and with mixed
 * signs whether some partial sum overflows depends on that order; with none
 * negative, one does exactly when the total does. */
static bool accumulate(enum sqltext_role r, int64_t *acc, bool *has, sqlite3_int64 v)
{
	if (r == SQLTEXT_SUM && v < 0)
		return false;
	if (!*has) {
		*acc = v;
		*has = true;
		return true;
	}
	if (r == SQLTEXT_SUM)
		return !__builtin_add_overflow(*acc, v, acc); /* SQLite's own error, row by row */
	if ((r == SQLTEXT_MIN && v < *acc) || (r == SQLTEXT_MAX && v > *acc))
		*acc = v;
	return true;
}

/* Log i's key appended to c->key; -1 when it cannot be pre-aggregated exactly. */
static int preagg_key(struct vc *c, size_t i)
{
	struct str v;
	sqlite3_int64 iv;
	double dv;
	for (size_t k = 0; k < c->nkeycol; k++) {
		enum cell_kind kind = cell(c, c->keycol[k], i, &v, &iv, &dv);
		if (key_add(&c->key, kind, v, iv) != 0)
			return -1;
	}
	return 0;
}

/* Log i into group g; -1 when it cannot be pre-aggregated exactly. */
static int preagg_add(struct vc *c, size_t i, size_t g)
{
	struct str v;
	sqlite3_int64 iv;
	double dv;
	int64_t *acc = groups_rec(&c->gt, g)->acc;
	bool *has = groups_has(&c->gt, g);
	for (size_t a = 0; a < c->naggcol; a++) {
		int n = c->aggcol[a];
		enum cell_kind k = cell(c, n, i, &v, &iv, &dv);
		if (k == CELL_NULL)
			continue;
		if (k != CELL_INT || !accumulate(c->q->role[n], &acc[a], &has[a], iv))
			return -1;
	}
	return 0;
}

#define PREAGG_AHEAD 8 /* logs between a slot's prefetch and its record's, and the lookup */

/* The current block's matching logs into their groups: keys and hashes
 * first, then the lookups, each a few logs behind its prefetches. */
static int preagg_block(struct vc *c)
{
	size_t m = 0;
	buf_reset(&c->key);
	for (size_t i = 0; i < c->x->b.n; i++) {
		if (!lscan_match(c->x, c->q->src->s, i, c->from, c->to))
			continue;
		size_t at = c->key.len;
		if (preagg_key(c, i) != 0)
			return -1;
		c->logs[m++] = (struct preagg_log){i, at, c->key.len - at, 0};
	}
	for (size_t j = 0; j < m; j++)
		c->logs[j].hash = groups_hash((struct str){c->key.p + c->logs[j].at, c->logs[j].len});
	for (size_t j = 0; j < m; j++) {
		if (j + 2 * PREAGG_AHEAD < m)
			groups_prefetch(&c->gt, c->logs[j + 2 * PREAGG_AHEAD].hash, false);
		if (j + PREAGG_AHEAD < m)
			groups_prefetch(&c->gt, c->logs[j + PREAGG_AHEAD].hash, true);
		const struct preagg_log *l = &c->logs[j];
		size_t g = groups_find_hashed(&c->gt, (struct str){c->key.p + l->at, l->len}, l->hash);
		if (preagg_add(c, l->i, g) != 0)
			return -1;
	}
	return c->gt.n > SQL_PREAGG_MAX_GROUPS ? -1 : 0;
}

/* Every matching log of the window into the group table. 0, or -1 (see advance). */
static int preagg_fill(struct vc *c)
{
	c->nkeycol = c->naggcol = 0;
	for (size_t n = 0; n < c->q->ncols; n++) {
		c->acc_of[n] = c->q->role[n] > SQLTEXT_KEY ? (int)c->naggcol : -1;
		if (c->q->role[n] == SQLTEXT_KEY)
			c->keycol[c->nkeycol++] = (int)n;
		else if (c->q->role[n] > SQLTEXT_KEY)
			c->aggcol[c->naggcol++] = (int)n;
	}
	groups_init(&c->gt, c->naggcol);
	c->grouped = true;
	if (!c->logs)
		c->logs = xcalloc(SLS_MAX_LOGS_PER_GROUP, sizeof(*c->logs));
	for (;;) {
		int rc = load_block(c);
		if (rc <= 0)
			return rc;
		if (preagg_block(c) != 0) {
			c->q->preagg_abort = true;
			return -1;
		}
		if (c->x->b.corrupt)
			return -1;
	}
}

/* Column n of group c->rowid. */
static void group_column(struct vc *c, sqlite3_context *ctx, int n)
{
	size_t g = (size_t)c->rowid;
	if (c->q->role[n] > SQLTEXT_KEY) {
		int a = c->acc_of[n];
		if (groups_has(&c->gt, g)[a])
			sqlite3_result_int64(ctx, groups_rec(&c->gt, g)->acc[a]);
		else
			sqlite3_result_null(ctx);
		return;
	}
	struct str k = groups_key(&c->gt, g);
	for (size_t j = 0, at = 0; j < c->nkeycol && at < k.len; j++) {
		size_t m = (size_t)c->keycol[j];
		enum cell_kind kind = (enum cell_kind)k.p[at++];
		sqlite3_int64 iv = 0;
		uint32_t len = 0;
		if (kind == CELL_INT)
			memcpy(&iv, k.p + at, sizeof(iv)), at += sizeof(iv);
		if (kind == CELL_TEXT)
			memcpy(&len, k.p + at, sizeof(len)), at += sizeof(len);
		if (m == (size_t)n) {
			result_cell(ctx, kind, (struct str){k.p + at, len}, iv, 0);
			return;
		}
		at += len;
	}
	sqlite3_result_null(ctx);
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
	q->preagg = sqltext_roles((struct str){q->text.sql.p, q->text.sql.len}, q->col, q->ncols,
				  q->role);
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
	if (e != SLS_ERR_OK && q->preagg_abort) {
		/* A value pre-aggregation cannot take exactly: again, row by row. */
		sql_result_free(out);
		q->preagg = q->preagg_abort = false;
		q->processed = 0;
		q->denied[0] = '\0';
		e = run(q, db, out, detail);
	}
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
