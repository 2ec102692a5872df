/* GetLogs over a logstore's blocks: the search subset of this step and the
 * paging. The search part understood so far is "*" (or empty) and terms
 * key:value / key:"value" joined by "and" (values compare case-insensitively,
 * as an SLS text index does). Anything else — full-text words, or, prefix '*',
 * comparisons, SQL after '|' — is InvalidQueryString saying so; the full
 * search and SQL engine is the next step of issue 10 (docs/logstore.md). */
#ifndef LOGSTORE_QUERY_H
#define LOGSTORE_QUERY_H
#include <stdbool.h>
#include <stdint.h>

#include "core/str.h"
#include "logstore/ldata.h"
#include "sls/errors.h"

#define QUERY_MAX_TERMS 32
#define QUERY_MAX_LEN 16384             /* bytes of a query string */
#define QUERY_MAX_MATCHES (1u << 20)    /* matching logs one GetLogs orders; past it: Incomplete */
#define QUERY_MAX_LINE 100              /* GetLogs line: 0..100 */
#define QUERY_DETAIL_MAX 160

struct query_term {
	struct str key, value; /* unescaped, in the query's arena */
};

struct query {
	size_t n;
	struct query_term t[QUERY_MAX_TERMS];
	char arena[QUERY_MAX_LEN];
};

enum sls_err query_parse(struct str q, struct query *out, char detail[QUERY_DETAIL_MAX]);

struct getlogs {
	int64_t from, to;    /* [from, to), unix seconds */
	int64_t line, offset;
	bool reverse;
	struct str topic;    /* empty: any */
	const struct query *q;
};

struct getlogs_result {
	char *json;          /* the answer's array (malloc'd) */
	size_t len;
	int64_t count;       /* logs in the page */
	int64_t processed;   /* logs looked at */
	bool complete;
};

/* 0, or LDATA_EIO. */
int query_getlogs(struct ldata *d, int64_t logstore, const struct getlogs *g,
		  struct getlogs_result *out);

#endif
