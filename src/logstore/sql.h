/* The SQL part of a query, run by SQLite over a read-only virtual table of
 * one logstore (docs/logstore.md, "Query"). Each query gets its own
 * in-memory connection that knows one table, "log" (an eponymous virtual
 * table over the blocks that meet [from, to), with the search part as a
 * filter inside it), and is confined three ways:
 *   - an authorizer: SELECT, reads of "log" and allow-listed functions only
 *     (no PRAGMA, ATTACH, writes, recursive WITH, other tables);
 *   - a progress handler and a per-block check: SQL_TIME_BUDGET_MS;
 *   - sqlite3_limit: statement length, expression depth, compound SELECTs,
 *     value length, function arguments, attached databases (none).
 * Answers are strings, as SLS gives them. */
#ifndef LOGSTORE_SQL_H
#define LOGSTORE_SQL_H
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/str.h"
#include "logstore/ldata.h"
#include "logstore/search.h"
#include "sls/errors.h"

#define SQL_TIME_BUDGET_MS 5000        /* wall time one query may run */
#define SQL_PROGRESS_OPS 1000          /* VM steps between two budget checks */
#define SQL_MAX_ROWS 100000            /* answer rows; past it: Incomplete */
#define SQL_MAX_ANSWER_BYTES (32u << 20) /* answer value bytes; past it: Incomplete */
#define SQL_MAX_VALUE (1 << 20)        /* SQLITE_LIMIT_LENGTH: bytes of one string */
#define SQL_MAX_STATEMENT 32768        /* SQLITE_LIMIT_SQL_LENGTH, after rewriting */
#define SQL_MAX_EXPR_DEPTH 64          /* SQLITE_LIMIT_EXPR_DEPTH */
#define SQL_MAX_COMPOUND 4             /* SQLITE_LIMIT_COMPOUND_SELECT */
#define SQL_MAX_COLUMNS 128            /* SQLITE_LIMIT_COLUMN */
#define SQL_MAX_VDBE_OPS 50000         /* SQLITE_LIMIT_VDBE_OP: program size */
#define SQL_MAX_FUNCTION_ARGS 8        /* SQLITE_LIMIT_FUNCTION_ARG */
#define SQL_MAX_LIKE_PATTERN 256       /* SQLITE_LIMIT_LIKE_PATTERN_LENGTH */
#define SQL_DETAIL_MAX 256

/* Where the table's blocks come from: the logstore's files (sql_source_ldata)
 * or, for the fuzz target and unit tests, blocks in memory. */
struct sql_blocks {
	void *(*open)(void *arg, int64_t from, int64_t to);
	int (*next)(void *it, struct ldata_block *out); /* 1, 0 at the end, <0 error */
	void (*close)(void *it);
	void *arg;
};

struct sql_source {
	struct sql_blocks blocks;
	int64_t from, to;         /* [from, to), unix seconds */
	struct str topic;         /* empty: any */
	const struct search *s;   /* the search part, as a filter */
	struct str logstore;      /* its name, which FROM may use besides "log" */
};

struct sql_result {
	json_t *rows;       /* array of objects of strings */
	json_t *keys;       /* the columns' names */
	int64_t processed;  /* logs the table read */
	bool complete;
};

/* SLS_ERR_OK with out filled, or SLS_ERR_INVALID_QUERY_STRING (anything
 * refused, a syntax error, the time budget) with detail, or
 * SLS_ERR_INTERNAL_SERVER_ERROR (a read failed). */
enum sls_err sql_run(const struct sql_source *src, struct str sql, struct sql_result *out,
		     char detail[SQL_DETAIL_MAX]);
void sql_result_free(struct sql_result *r);

/* Blocks from a logstore's files; l must outlive the query. */
struct sql_ldata {
	struct ldata *d;
	int64_t logstore;
};
struct sql_blocks sql_blocks_ldata(struct sql_ldata *l);

/* Blocks held in memory (the fuzz target's and the unit tests' logstore):
 * every block is offered; the table filters by time itself. */
struct sql_memory {
	const struct ldata_block *blocks;
	size_t n;
};
struct sql_blocks sql_blocks_memory(struct sql_memory *m);

#endif
