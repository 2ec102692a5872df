/* The SQL part of a query (after '|'), as text: a tokenizer and the few
 * rewrites that turn SLS's dialect into SQLite's (docs/logstore.md, "Query"):
 *   - a SELECT without FROM reads the logstore: " FROM log" is inserted
 *     (SLS: "the SQL part needs no FROM"); "FROM <this logstore's name>"
 *     becomes "FROM log";
 *   - approx_distinct(x) becomes count(distinct x) (exact is a valid estimate);
 *   - the outer statement gets "LIMIT 100" when it has none (SLS's default).
 * Everything else — quoted identifiers ("end", `tcp-flags`), CASE, CAST, LIKE,
 * IN, subqueries, "__time__ - __time__ % 60" — is already SQLite's syntax.
 * The tokenizer also collects the names the query uses, because the virtual
 * table's columns must be declared before SQLite compiles the query: every
 * identifier that is not a keyword, a function name or an alias after AS. */
#ifndef LOGSTORE_SQLTEXT_H
#define LOGSTORE_SQLTEXT_H
#include <stdbool.h>
#include <stddef.h>

#include "core/str.h"

#define SQLTEXT_TABLE "log"           /* the virtual table's name */
#define SQLTEXT_DEFAULT_LIMIT 100     /* SLS's rows when the SQL has no LIMIT */
#define SQLTEXT_LIMIT_TEXT "100"      /* the same, as the text appended */
#define SQLTEXT_MAX_NAMES 64          /* distinct names one query may use */
#define SQLTEXT_MAX_NAME 256          /* bytes of one name */
#define SQLTEXT_MAX_DEPTH 64          /* nested parentheses */
#define SQLTEXT_DETAIL_MAX 200

struct sqltext {
	struct buf sql;                  /* the rewritten statement (NUL-terminated) */
	size_t nnames;
	char *names[SQLTEXT_MAX_NAMES];  /* malloc'd, unquoted, distinct case-insensitively */
};

/* 0, or -1 with detail saying what was not understood. logstore: the name
 * that FROM may also use. out must be freed with sqltext_free either way. */
int sqltext_rewrite(struct str sql, struct str logstore, struct sqltext *out,
		    char detail[SQLTEXT_DETAIL_MAX]);
void sqltext_free(struct sqltext *t);

#endif
