/* The queries of the Log Service (GetLogs, GetLogsV2, GetHistograms) over a
 * logstore's blocks. A query is "<search> | <SQL>" (spec §2.1): the search
 * part (logstore/search.h) filters logs; the SQL part, when there is one,
 * runs through SQLite over them (logstore/sql.h). Without SQL, GetLogs pages
 * the matching logs in time order. */
#ifndef LOGSTORE_QUERY_H
#define LOGSTORE_QUERY_H
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/str.h"
#include "logstore/ldata.h"
#include "logstore/search.h"
#include "logstore/sql.h"
#include "sls/errors.h"

#define QUERY_MAX_LEN 16384             /* bytes of a query string (search and SQL) */
#define QUERY_MAX_MATCHES (1u << 20)    /* matching logs one GetLogs orders; past it: Incomplete */
#define QUERY_MAX_LINE 100              /* GetLogs line: 0..100 */
#define QUERY_DETAIL_MAX SQL_DETAIL_MAX
#define QUERY_HIST_AUTO_BUCKETS 100     /* GetHistograms without interval: at most this many */
#define QUERY_HIST_MAX_BUCKETS 1440     /* with an explicit interval */

struct query {
	struct str where, sql; /* the two parts, trimmed (slices of the caller's string) */
	bool has_sql;
	struct search s;
};

/* Splits at the first '|' outside quotes and parses the search part; the SQL
 * part is checked when it runs. */
enum sls_err query_parse(struct str q, struct query *out, char detail[QUERY_DETAIL_MAX]);

struct getlogs {
	int64_t from, to;    /* [from, to), unix seconds */
	int64_t line, offset; /* without SQL only */
	bool reverse;
	struct str topic;    /* empty: any */
	struct str logstore; /* its name (FROM may use it) */
	const struct query *q;
};

struct getlogs_result {
	json_t *rows;        /* array of objects of strings */
	json_t *keys;        /* the answer's keys (SQL: the columns) */
	int64_t count;       /* rows */
	int64_t processed;   /* logs looked at */
	bool complete;
};

/* SLS_ERR_OK, SLS_ERR_INVALID_QUERY_STRING (SQL) with detail, or
 * SLS_ERR_INTERNAL_SERVER_ERROR. out must be freed with getlogs_result_free. */
enum sls_err query_getlogs(struct ldata *d, int64_t logstore, const struct getlogs *g,
			   struct getlogs_result *out, char detail[QUERY_DETAIL_MAX]);
void getlogs_result_free(struct getlogs_result *r);

/* GetHistograms: counts of matching logs (the search part only) in buckets
 * over [from, to). interval 0: the smallest of 1 s, 5 s, 10 s, 30 s, 1, 5, 10,
 * 15, 30 min, 1, 2, 4, 6, 12 h, 1, 7, 30 days that makes at most
 * QUERY_HIST_AUTO_BUCKETS (a day: 96 of 15 min). Buckets are aligned to
 * multiples of the interval and clipped to [from, to). */
struct histogram {
	int64_t from, to, interval;
	struct str topic;
	const struct query *q;
};

struct histogram_result {
	json_t *buckets; /* [{"from","to","count","progress"}] */
	int64_t count;
	bool complete;
};

/* 0, or LDATA_EIO. */
int query_histogram(struct ldata *d, int64_t logstore, const struct histogram *h,
		    struct histogram_result *out);
/* The bucket width for [from, to) and interval (0: automatic); 0 when an
 * explicit interval would make more than QUERY_HIST_MAX_BUCKETS. */
int64_t query_hist_interval(int64_t from, int64_t to, int64_t interval);

#endif
