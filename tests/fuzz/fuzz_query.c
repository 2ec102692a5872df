/* The query front end on arbitrary bytes: "<search> | <SQL>" split and
 * parsed (src/logstore/query.c), the SQL rewritten (sqltext.c) and run by the
 * confined SQLite (sql.c) over a tiny in-memory logstore. A search alone is
 * run as "select count(*)" so the filter inside the virtual table runs too.
 * Any input must give an answer or InvalidQueryString with a reason. */
#include <stdint.h>
#include <stdlib.h>

#include "core/xmalloc.h"
#include "logstore/query.h"
#include "logstore_fixture.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct lsfix *f;
	static struct query *q;
	char detail[QUERY_DETAIL_MAX];
	if (!f) {
		f = xmalloc(sizeof(*f));
		lsfix_init(f);
		q = xmalloc(sizeof(*q));
	}
	if (query_parse((struct str){(const char *)data, size}, q, detail) != SLS_ERR_OK)
		return 0;
	struct sql_source src = {sql_blocks_memory(&f->mem), LSFIX_T0, LSFIX_T0 + LSFIX_N, STR_NULL,
				 &q->s, STR_LIT("flowstore")};
	struct sql_result r;
	struct str sql = q->has_sql ? q->sql : STR_LIT("select count(*) as c");
	enum sls_err e = sql_run(&src, sql, &r, detail);
	if (e == SLS_ERR_OK) {
		if (!r.rows || !r.keys || json_array_size(r.rows) > SQL_MAX_ROWS)
			abort();
	} else if (e != SLS_ERR_INVALID_QUERY_STRING || !detail[0]) {
		abort();
	}
	sql_result_free(&r);
	return 0;
}
