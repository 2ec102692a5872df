/* src/logstore/search.c (the SLS search syntax), src/logstore/sqltext.c (the
 * SQL rewrites) and src/logstore/sql.c (SQL through the confined SQLite) over
 * the in-memory logstore of tests/fuzz/logstore_fixture.h. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <cmocka.h>
#include <string.h>

#include "../fuzz/logstore_fixture.h"
#include "core/xmalloc.h"
#include "logstore/search.h"
#include "logstore/sql.h"
#include "logstore/sqltext.h"

/* ---- search ---- */

struct trow {
	const struct search *s;
	const char *const *kv; /* key, value, ..., NULL */
};

static struct str trow_value(const void *arg, size_t node)
{
	const struct trow *r = arg;
	struct str key = r->s->node[node].key;
	for (const char *const *p = r->kv; *p; p += 2)
		if (str_eqc(key, p[0]))
			return str_c(p[1]);
	return STR_NULL;
}

static bool trow_any(const void *arg, const struct search_node *n)
{
	const struct trow *r = arg;
	for (const char *const *p = r->kv; *p; p += 2)
		if (search_text_match(n, str_c(p[1])))
			return true;
	return false;
}

static const char *const flow[] = {"srcaddr", "10.0.0.12", "dstaddr", "192.168.1.10", "dstport", "443",
				   "bytes", "1500", "protocol", "6", "msg", "GET /index.html HTTP/1.1",
				   "__tag__:sag_id", "sag-123", NULL};

/* 1 match, 0 no match, -1 a parse error. */
static int eval(const char *q)
{
	struct search *s = xmalloc(sizeof(*s));
	char d[SEARCH_DETAIL_MAX];
	int rc = -1;
	if (search_parse(str_c(q), s, d) == SLS_ERR_OK) {
		struct trow r = {s, flow};
		struct search_row sr = {trow_value, trow_any, &r};
		rc = search_match(s, &sr);
	}
	free(s);
	return rc;
}

static void test_search_match(void **state)
{
	static const struct {
		const char *q;
		int want;
	} cases[] = {
		{"", 1}, {"*", 1}, {"  *  ", 1},
		{"srcaddr:10.0.0.12", 1}, {"srcaddr:10.0.0.1", 0}, {"SRCADDR:10.0.0.12", 0},
		{"srcaddr: \"10.0.0.12\"", 1}, {"srcaddr:10.0.0.1*", 1}, {"srcaddr:10.0.0.?2", 1},
		{"srcaddr:10.0.0.1?", 1}, {"srcaddr:10.0.0.?", 0}, {"srcaddr:*", 1}, {"nokey:*", 0},
		{"10.0.0.12", 1}, {"10.0.0.13", 0}, {"index.html", 1}, {"INDEX.HTML", 1},
		{"msg:\"index.html HTTP\"", 1}, {"msg:\"HTTP index.html\"", 0}, {"msg:get", 1},
		{"\"GET /index.html\"", 1}, {"msg:\"GET*\"", 0}, {"msg:GE*", 1},
		{"__tag__:sag_id:sag-123", 1}, {"__tag__:sag_id:sag-124", 0},
		{"dstport:443 and protocol:6", 1}, {"dstport:443 protocol:6", 1},
		{"dstport:443 and protocol:17", 0}, {"dstport:80 or protocol:6", 1},
		{"not dstport:80", 1}, {"not dstport:443", 0}, {"dstport:443 not protocol:6", 0},
		{"dstport:443 NOT protocol:17", 1}, {"NOT (dstport:80 OR protocol:17)", 1},
		{"dstport:80 or dstport:443 and protocol:17", 0}, /* and binds tighter */
		{"(dstport:80 or dstport:443) and protocol:6", 1},
		{"bytes > 1000", 1}, {"bytes>1500", 0}, {"bytes >= 1500", 1}, {"bytes < 1500.5", 1},
		{"bytes <= 1499", 0}, {"bytes = 1500", 1}, {"bytes = 1.5e3", 1}, {"srcaddr > 1", 0},
		{"nokey > 1", 0}, {"dstport in [0 1024)", 1}, {"dstport in [443 443]", 1},
		{"dstport in (443 1000]", 0}, {"dstport in [0, 442]", 0}, {"bytes in (1000 2000)", 1},
		{"\"dstport\":443", 1}, {"srcaddr:10.0.0.12\\*", 0},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int got = eval(cases[i].q);
		if (got != cases[i].want)
			fail_msg("'%s': got %d, want %d", cases[i].q, got, cases[i].want);
	}
}

static enum sls_err parse_err(const char *q, char *d)
{
	struct search *s = xmalloc(sizeof(*s));
	enum sls_err e = search_parse(str_c(q), s, d);
	free(s);
	return e;
}

static void test_search_errors(void **state)
{
	static const struct {
		const char *q, *detail;
	} cases[] = {
		{"srcaddr:\"10.0", "unterminated quote"}, {"(a or b", "')' expected"},
		{"a or b)", "unbalanced ')'"}, {"srcaddr:*abc", "cannot start with"}, {"*abc", "cannot start with"},
		{"?abc", "cannot start with"}, {"bytes > many", "a number expected"}, {"bytes >", "a number expected"},
		{"bytes > inf", "a number expected"}, {"dstport in [1 2", "']' or ')'"}, {"srcaddr:", "a value expected"},
		{"a and", "a term expected"}, {"()", "unbalanced ')'"}, {"not", "a term expected"},
	};
	char d[SEARCH_DETAIL_MAX];
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (parse_err(cases[i].q, d) != SLS_ERR_INVALID_QUERY_STRING || !strstr(d, cases[i].detail))
			fail_msg("'%s': detail '%s', want '%s'", cases[i].q, d, cases[i].detail);
	}
}

static void test_search_bounds(void **state)
{
	char d[SEARCH_DETAIL_MAX];
	char *q = xmalloc(SEARCH_MAX_LEN + 2);
	/* SEARCH_MAX_DEPTH nested groups parse; one more does not. */
	for (int depth = SEARCH_MAX_DEPTH - 1; depth <= SEARCH_MAX_DEPTH; depth++) {
		size_t n = 0;
		for (int i = 0; i < depth; i++)
			q[n++] = '(';
		q[n++] = 'a';
		for (int i = 0; i < depth; i++)
			q[n++] = ')';
		q[n] = '\0';
		assert_int_equal(parse_err(q, d), depth < SEARCH_MAX_DEPTH ? SLS_ERR_OK : SLS_ERR_INVALID_QUERY_STRING);
	}
	for (int i = 0; i < 3000; i++)
		memcpy(q + 4 * i, "not ", 4);
	q[12000] = 'a';
	q[12001] = '\0';
	assert_int_equal(parse_err(q, d), SLS_ERR_INVALID_QUERY_STRING);
	assert_non_null(strstr(d, "nested deeper than 32"));
	/* Terms past SEARCH_MAX_NODES. */
	size_t n = 0;
	for (int i = 0; i < SEARCH_MAX_NODES; i++)
		n += (size_t)snprintf(q + n, 16, "a%d ", i);
	assert_int_equal(parse_err(q, d), SLS_ERR_INVALID_QUERY_STRING);
	assert_non_null(strstr(d, "more than 256 terms"));
	memset(q, 'a', SEARCH_MAX_LEN + 1);
	q[SEARCH_MAX_LEN + 1] = '\0';
	assert_int_equal(parse_err(q, d), SLS_ERR_INVALID_QUERY_STRING);
	assert_non_null(strstr(d, "longer than 16384"));
	free(q);
}

/* ---- the SQL rewrites ---- */

static void rewrite_is(const char *in, const char *want_sql, const char *want_names)
{
	struct sqltext t;
	char d[SQLTEXT_DETAIL_MAX], names[512] = "";
	if (sqltext_rewrite(str_c(in), STR_LIT("flowstore"), &t, d) != 0)
		fail_msg("'%s': %s", in, d);
	for (size_t i = 0; i < t.nnames; i++)
		snprintf(names + strlen(names), sizeof(names) - strlen(names), "%s%s", i ? "," : "", t.names[i]);
	if (strcmp(t.sql.p, want_sql) || strcmp(names, want_names))
		fail_msg("'%s': got '%s' [%s], want '%s' [%s]", in, t.sql.p, names, want_sql, want_names);
	sqltext_free(&t);
}

static void test_sqltext(void **state)
{
	rewrite_is("select count(*) as c", "select count(*) as c FROM log LIMIT 100 ", "");
	rewrite_is("select srcaddr, sum(bytes) as b group by srcaddr order by b desc limit 10",
		   "select srcaddr, sum(bytes) as b FROM log group by srcaddr order by b desc limit 10",
		   "srcaddr,bytes");
	rewrite_is("select approx_distinct(dstaddr) as n from flowstore",
		   "select count(distinct dstaddr) as n from log LIMIT 100 ", "dstaddr");
	rewrite_is("SELECT sum(\"end\" - start) AS d, max(`tcp-flags`) f",
		   "SELECT sum(\"end\" - start) AS d, max(`tcp-flags`) f FROM log LIMIT 100 ",
		   "end,start,tcp-flags,f");
	rewrite_is("select count(1) from (select srcaddr, sum(bytes) as s group by srcaddr having s > 5)",
		   "select count(1) from (select srcaddr, sum(bytes) as s FROM log group by srcaddr having s > 5) LIMIT 100 ",
		   "srcaddr,bytes");
	rewrite_is("select 'from' as x, a from log where b = 'limit'",
		   "select 'from' as x, a from log where b = 'limit' LIMIT 100 ", "a,b");
}

static void test_sqltext_errors(void **state)
{
	static const struct {
		const char *q, *detail;
	} cases[] = {
		{"", "empty SQL"}, {"pragma table_info(log)", "only SELECT"},
		{"attach 'x' as y", "only SELECT"}, {"select 1; delete from log", "one statement only"},
		{"select 'abc", "unterminated"}, {"select \"abc", "unterminated"}, {"select (1", "not closed"},
		{"select 1)", "unbalanced"}, {"select /* x", "unterminated"},
	};
	char d[SQLTEXT_DETAIL_MAX];
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct sqltext t;
		int rc = sqltext_rewrite(str_c(cases[i].q), STR_NULL, &t, d);
		sqltext_free(&t);
		if (rc != -1 || !strstr(d, cases[i].detail))
			fail_msg("'%s': rc %d detail '%s', want '%s'", cases[i].q, rc, d, cases[i].detail);
	}
}

/* ---- SQL over the in-memory logstore ---- */

static enum sls_err run_sql(struct lsfix *f, const char *where, const char *sql, char **json, char *d,
			    int64_t *processed)
{
	struct search *s = xmalloc(sizeof(*s));
	char sd[SEARCH_DETAIL_MAX];
	assert_int_equal(search_parse(str_c(where), s, sd), SLS_ERR_OK);
	struct sql_source src = {sql_blocks_memory(&f->mem), LSFIX_T0, LSFIX_T0 + LSFIX_N, STR_NULL, s,
				 STR_LIT("flowstore")};
	struct sql_result r;
	enum sls_err e = sql_run(&src, str_c(sql), &r, d);
	*json = e == SLS_ERR_OK ? json_dumps(r.rows, JSON_COMPACT) : NULL;
	if (processed)
		*processed = r.processed;
	sql_result_free(&r);
	free(s);
	return e;
}

static void sql_is(struct lsfix *f, const char *where, const char *sql, const char *want)
{
	char *json, d[SQL_DETAIL_MAX];
	if (run_sql(f, where, sql, &json, d, NULL) != SLS_ERR_OK)
		fail_msg("'%s': %s", sql, d);
	if (strcmp(json, want))
		fail_msg("'%s': got %s, want %s", sql, json, want);
	free(json);
}

static void test_sql(void **state)
{
	struct lsfix *f = xmalloc(sizeof(*f));
	lsfix_init(f);
	char want[256];
	/* sum of 100*(i+1) over i = 0..63 */
	snprintf(want, sizeof(want), "[{\"c\":\"%d\",\"b\":\"%d\"}]", LSFIX_N, 100 * LSFIX_N * (LSFIX_N + 1) / 2);
	sql_is(f, "*", "select count(*) as c, sum(bytes) as b", want);
	/* odd i: dstport 443; i%4==1 -> 10.0.0.1, i%4==3 -> 10.0.0.3: 16 each */
	sql_is(f, "dstport:443", "select srcaddr, count(*) as c group by srcaddr order by srcaddr",
	       "[{\"srcaddr\":\"10.0.0.1\",\"c\":\"16\"},{\"srcaddr\":\"10.0.0.3\",\"c\":\"16\"}]");
	sql_is(f, "*", "select __time__ - __time__ % 32 as t, count(*) as c group by t order by t",
	       "[{\"t\":\"992\",\"c\":\"24\"},{\"t\":\"1024\",\"c\":\"32\"},{\"t\":\"1056\",\"c\":\"8\"}]");
	sql_is(f, "*", "select sum(\"end\" - start) as d, max(bytes) as m from flowstore", "[{\"d\":\"640\",\"m\":\"6400\"}]");
	sql_is(f, "*", "select date_format(from_unixtime(__time__), '%Y-%m-%d %H:%i:%s') as t order by __time__ limit 1",
	       "[{\"t\":\"1970-01-01 00:16:40\"}]");
	sql_is(f, "*", "select date_trunc('hour', 7322) as h, date_trunc('day', '1970-01-02 10:11:12.5') as d, "
		       "to_unixtime('1970-01-01 00:01:40.250') as u limit 1",
	       "[{\"h\":\"7200\",\"d\":\"1970-01-02 00:00:00.000\",\"u\":\"100.25\"}]");
	sql_is(f, "*", "select nosuch from log limit 1", "[{\"nosuch\":\"null\"}]");
	/* A time constraint narrows what the table reads. */
	char *json, d[SQL_DETAIL_MAX];
	int64_t processed;
	assert_int_equal(run_sql(f, "*", "select count(*) as c where __time__ >= 1010 and __time__ < 1020", &json, d,
				 &processed), SLS_ERR_OK);
	assert_string_equal(json, "[{\"c\":\"10\"}]");
	free(json);
	lsfix_free(f);
	free(f);
}

static void test_sql_confined(void **state)
{
	static const struct {
		const char *sql, *detail;
	} cases[] = {
		{"select * from sqlite_master", "another table than 'log': 'sqlite_master'"},
		{"select * from temp.sqlite_master", "sqlite_temp_master"},
		{"select load_extension('x')", "the function 'load_extension'"},
		{"select randomblob(10)", "the function 'randomblob'"},
		{"with recursive c(x) as (select 1 union all select x + 1 from c) select count(*) from c",
		 "a recursive WITH"},
		{"select * from pragma_table_info('log')", "not allowed"},
		{"select * from json_each('[1]')", "not allowed"},
		{"select nosuchfn(1)", "no such function: nosuchfn"},
		{"select 1 union select 2 union select 3 union select 4 union select 5 union select 6",
		 "too many terms in compound SELECT"},
		{"select ?1", "variable number must be between"},
	};
	struct lsfix *f = xmalloc(sizeof(*f));
	lsfix_init(f);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *json, d[SQL_DETAIL_MAX];
		enum sls_err e = run_sql(f, "*", cases[i].sql, &json, d, NULL);
		free(json);
		if (e != SLS_ERR_INVALID_QUERY_STRING || !strstr(d, cases[i].detail))
			fail_msg("'%s': %d '%s', want '%s'", cases[i].sql, e, d, cases[i].detail);
	}
	lsfix_free(f);
	free(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_search_match), cmocka_unit_test(test_search_errors),
		cmocka_unit_test(test_search_bounds), cmocka_unit_test(test_sqltext),
		cmocka_unit_test(test_sqltext_errors), cmocka_unit_test(test_sql),
		cmocka_unit_test(test_sql_confined),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
