#include "store/pg_admit.h"

#include <inttypes.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "core/timeutil.h"
#include "core/xmalloc.h"
#include "store/pg_nodes.h"

#define PG_NUM_TEXT 24 /* an int64 in decimal with sign and NUL */

/* A batch of admissions in one statement and one snapshot: every member's
 * nonce insert, the version sums of the members' accounts and the horizon
 * marker. The rows say what happened, by kind: 0 an inserted (fresh) nonce
 * (bucket, tag) from RETURNING — a replay returns nothing —, 1 an account's
 * sum (account_id, sum), 2 the horizon (absent: the marker is missing). The
 * tags are distinct (pg_admit_batch removes duplicates first: two equal rows
 * in one INSERT could not be told apart by RETURNING), so a returned row
 * names one member. The sums are read after every member arrived (the
 * statement starts after the batch was taken), so a cached answer labelled
 * with an older sum is never served after a write another node acknowledged
 * (each writer's bump commits with its batch). Account 0's rows count the
 * unscoped writes (sql/pg/0001), which may change any account's answers.
 * Why one row per outcome rather than one per member (unnest WITH
 * ORDINALITY joined to the insert's RETURNING): that plan sorts and joins;
 * measured here it cost PostgreSQL ~400 us of CPU per request against ~45
 * for this one (and ~110 for one statement per request). The nonces go in
 * in key order: two nodes admitting the same requests at once (a client
 * sending one request to both) would otherwise insert them in different
 * orders, each wait for the other's uncommitted row, and deadlock (a 1-s
 * stall, then a batch refused with 503); in one order they queue instead. */
static const char PG_ADMIT_NAME[] = "sagflow_admit_batch";
static const char PG_ADMIT_SQL[] =
    "WITH n AS (INSERT INTO nonce (bucket, tag) SELECT b, t FROM unnest($1::smallint[], "
    "$2::uuid[]) AS u (b, t) ORDER BY b, t ON CONFLICT DO NOTHING RETURNING bucket, tag) "
    "SELECT 0, bucket::bigint, tag::text FROM n "
    "UNION ALL SELECT 1, account_id, sum(v)::text FROM account_version "
    "WHERE account_id = ANY ($3::bigint[]) GROUP BY account_id "
    "UNION ALL SELECT 2, floor(extract(epoch FROM horizon))::bigint, NULL FROM nonce_marker "
    "WHERE id = 1";
/* The same batch when no member is a replay, the common case: a plain INSERT
 * of every nonce (one index descent a row, where ON CONFLICT first probes
 * the index and then inserts: ~25 % of PostgreSQL's CPU per admission,
 * docs/benchmarks.md "Session 7"), answered with the count of rows inserted
 * instead of each one. A replay in the batch, or a nonce another node
 * inserts meanwhile, fails it with unique_violation as a whole (nothing
 * inserted), and the batch runs again as PG_ADMIT_SQL: the primary key
 * still decides, in the same key order. */
static const char PG_ADMIT_FAST_NAME[] = "sagflow_admit_fresh";
static const char PG_ADMIT_FAST_SQL[] =
    "WITH n AS (INSERT INTO nonce (bucket, tag) SELECT b, t FROM unnest($1::smallint[], "
    "$2::uuid[]) AS u (b, t) ORDER BY b, t RETURNING 1) "
    "SELECT 3, count(*)::bigint, NULL FROM n "
    "UNION ALL SELECT 1, account_id, sum(v)::text FROM account_version "
    "WHERE account_id = ANY ($3::bigint[]) GROUP BY account_id "
    "UNION ALL SELECT 2, floor(extract(epoch FROM horizon))::bigint, NULL FROM nonce_marker "
    "WHERE id = 1";
enum { ROW_FRESH, ROW_SUM, ROW_HORIZON, ROW_ALL_FRESH };
#define PG_SQLSTATE_UNIQUE "23505" /* unique_violation: a replay in the fast form */
static _Atomic unsigned admit_careful;	 /* batches left to run PG_ADMIT_SQL directly */
static _Atomic uint64_t admit_fallbacks; /* fast forms that met a replay */
#define PG_SQLSTATE_NO_STATEMENT "26000" /* invalid_sql_statement_name */
/* Only after a crash: the first node to notice sets the horizon; the others'
 * inserts do nothing and read it. */
static const char PG_HORIZON_SQL[] =
    "WITH i AS (INSERT INTO nonce_marker VALUES (1, now()) ON CONFLICT (id) DO NOTHING "
    "RETURNING horizon) SELECT floor(extract(epoch FROM coalesce((SELECT horizon FROM i), "
    "(SELECT horizon FROM nonce_marker WHERE id = 1))))::bigint";
static const char PG_KEYS_PENDING_SQL[] =
    "SELECT count(*) FROM node_lease WHERE lease_until > now() AND keys_seen < $1::bigint";

static bool result_ok(PGresult *r, int rows, int cols, const char *what)
{
	ExecStatusType st = PQresultStatus(r);
	if (st == PGRES_TUPLES_OK && PQntuples(r) == rows && PQnfields(r) == cols)
		return true;
	log_err("pg: %s: %s", what,
		st == PGRES_TUPLES_OK ? "unexpected result shape" : PQresultErrorMessage(r));
	return false;
}

static int64_t field_i64(PGresult *r, int row, int col)
{
	return PQgetisnull(r, row, col) ? 0 : strtoll(PQgetvalue(r, row, col), NULL, 10);
}

/* Waits for the socket until the monotonic deadline: false on timeout. */
static bool wait_readable(PGconn *c, int64_t deadline_us)
{
	int64_t left = deadline_us - time_mono_us();
	if (left <= 0)
		return false;
	struct pollfd pf = {.fd = PQsocket(c), .events = POLLIN};
	int rc = poll(&pf, 1, (int)((left + 999) / 1000));
	return rc != 0; /* an error is for PQconsumeInput to report */
}

/* The last result of the command sent, read without blocking past the
 * deadline; NULL with *timed_out when it passed (the connection is then in
 * the middle of a command: the caller must drop it). */
static PGresult *result_until(PGconn *c, int64_t deadline_us, bool *timed_out)
{
	PGresult *last = NULL;
	for (;;) {
		while (PQisBusy(c)) {
			if (!wait_readable(c, deadline_us)) {
				*timed_out = true;
				PQclear(last);
				return NULL;
			}
			if (!PQconsumeInput(c))
				break; /* PQgetResult reports the failure */
		}
		PGresult *r = PQgetResult(c);
		if (!r)
			return last;
		PQclear(last);
		last = r;
	}
}

/* Runs the admission statement prepared, within the deadline: a connection
 * that has not prepared it yet (new, or reconnected) says so, and it is
 * prepared and run again. So no per-connection state is needed here, and each
 * later call is one round trip. */
static PGresult *admit_exec(PGconn *c, bool fast, const char *const vals[3], int64_t deadline_us,
			    bool *timed_out)
{
	const char *name = fast ? PG_ADMIT_FAST_NAME : PG_ADMIT_NAME;
	for (int attempt = 0;; attempt++) {
		if (!PQsendQueryPrepared(c, name, 3, vals, NULL, NULL, 0))
			return NULL;
		PGresult *r = result_until(c, deadline_us, timed_out);
		const char *st = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
		if (attempt > 0 || !st || strcmp(st, PG_SQLSTATE_NO_STATEMENT) != 0)
			return r;
		PQclear(r);
		if (!PQsendPrepare(c, name, fast ? PG_ADMIT_FAST_SQL : PG_ADMIT_SQL, 3, NULL))
			return NULL;
		r = result_until(c, deadline_us, timed_out);
		if (!r || PQresultStatus(r) != PGRES_COMMAND_OK)
			return r;
		PQclear(r);
	}
}

static bool is_unique_violation(const PGresult *r)
{
	const char *st = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
	return st && strcmp(st, PG_SQLSTATE_UNIQUE) == 0;
}

/* The batch's statement: the fast form unless a recent batch found a
 * replay, and the careful one after the fast form found one (the failed
 * statement inserted nothing: it ran as one). */
static PGresult *admit_run(PGconn *c, const char *const vals[3], int64_t deadline_us,
			   bool *timed_out)
{
	unsigned careful = atomic_load(&admit_careful);
	if (careful > 0) {
		atomic_compare_exchange_strong(&admit_careful, &careful, careful - 1);
		return admit_exec(c, false, vals, deadline_us, timed_out);
	}
	PGresult *r = admit_exec(c, true, vals, deadline_us, timed_out);
	if (!is_unique_violation(r))
		return r;
	PQclear(r);
	atomic_fetch_add(&admit_fallbacks, 1);
	atomic_store(&admit_careful, PG_ADMIT_CAREFUL_BATCHES);
	return admit_exec(c, false, vals, deadline_us, timed_out);
}

/* The horizon after the marker was found missing; -1 on error. */
static int64_t horizon_restore(PGconn *c, int64_t deadline_us, bool *timed_out)
{
	for (int attempt = 0; attempt < 2; attempt++) {
		PGresult *r = PQsendQuery(c, PG_HORIZON_SQL) ? result_until(c, deadline_us, timed_out)
							     : NULL;
		bool ok = r && result_ok(r, 1, 1, "nonce horizon");
		bool null = ok && PQgetisnull(r, 0, 0);
		int64_t h = ok && !null ? field_i64(r, 0, 0) : -1;
		PQclear(r);
		if (!ok)
			return -1;
		if (!null) {
			if (attempt == 0)
				log_warn(
				    "pg: the nonce table was reset (database crash or failover): "
				    "requests signed before the horizon are refused for %d s",
				    PG_HORIZON_S);
			return h;
		}
		/* Another node's insert committed after this statement's snapshot. */
	}
	return -1;
}

/* Marks each item that repeats an earlier one's (bucket, tag) as a replay
 * (dup[i] = true) and fills sent[] with the indexes of the others. */
static size_t dedupe(const struct pg_admit_item *it, size_t n, bool dup[], size_t sent[])
{
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		dup[i] = false;
		for (size_t j = 0; j < k && !dup[i]; j++) {
			const struct pg_admit_item *o = &it[sent[j]];
			dup[i] = o->bucket == it[i].bucket && !memcmp(o->tag, it[i].tag, sizeof(o->tag));
		}
		if (!dup[i])
			sent[k++] = i;
	}
	return k;
}

/* Array literals for the statement: {b,...}, {tag,...}, and the distinct
 * accounts that want a label, with 0 ({} when none does). */
struct admit_arrays {
	char bucket[PG_ADMIT_BATCH_MAX * 4 + 3];
	char tag[PG_ADMIT_BATCH_MAX * (PG_NONCE_TAG_TEXT + 1) + 3];
	char account[(PG_ADMIT_BATCH_MAX + 1) * PG_NUM_TEXT + 3];
	int64_t acct[PG_ADMIT_BATCH_MAX + 1];
	uint64_t sum[PG_ADMIT_BATCH_MAX + 1];
	size_t nacct;
};

static size_t acct_find(const struct admit_arrays *a, int64_t id)
{
	size_t i = 0;
	while (i < a->nacct && a->acct[i] != id)
		i++;
	return i;
}

static void accounts_build(const struct pg_admit_item *it, size_t n, struct admit_arrays *a)
{
	a->nacct = 0;
	for (size_t i = 0; i < n; i++) {
		if (!it[i].label)
			continue;
		if (a->nacct == 0)
			a->acct[a->nacct++] = 0;
		if (acct_find(a, it[i].account) == a->nacct)
			a->acct[a->nacct++] = it[i].account;
	}
	size_t l = 0;
	for (size_t i = 0; i < a->nacct; i++) {
		a->sum[i] = 0;
		l += (size_t)snprintf(a->account + l, sizeof(a->account) - l, "%c%" PRId64,
				      i ? ',' : '{', a->acct[i]);
	}
	snprintf(a->account + l, sizeof(a->account) - l, "%s", a->nacct ? "}" : "{}");
}

static void arrays_build(const struct pg_admit_item *it, size_t n, const size_t sent[], size_t k,
			 struct admit_arrays *a)
{
	size_t lb = 0, lt = 0;
	for (size_t j = 0; j < k; j++) {
		const struct pg_admit_item *x = &it[sent[j]];
		char sep = j ? ',' : '{';
		lb += (size_t)snprintf(a->bucket + lb, sizeof(a->bucket) - lb, "%c%u", sep, x->bucket);
		lt += (size_t)snprintf(a->tag + lt, sizeof(a->tag) - lt, "%c%s", sep, x->tag);
	}
	snprintf(a->bucket + lb, sizeof(a->bucket) - lb, "}");
	snprintf(a->tag + lt, sizeof(a->tag) - lt, "}");
	accounts_build(it, n, a);
}

static void fail_all(struct pg_admit_item *it, size_t n)
{
	for (size_t i = 0; i < n; i++)
		it[i].result = STORE_ADMIT_UNAVAIL;
}

/* The sent item a fresh row names; k when none does (a bad row). */
static size_t fresh_of(PGresult *r, int row, const struct pg_admit_item *it, const size_t sent[],
		       size_t k)
{
	unsigned bucket = (unsigned)strtoul(PQgetvalue(r, row, 1), NULL, 10);
	const char *tag = PQgetvalue(r, row, 2);
	if (PQgetlength(r, row, 2) != PG_NONCE_TAG_TEXT)
		return k;
	size_t j = 0;
	while (j < k && (it[sent[j]].bucket != bucket ||
			 memcmp(it[sent[j]].tag, tag, PG_NONCE_TAG_TEXT) != 0))
		j++;
	return j;
}

/* Reads the statement's rows: which sent items are fresh, the accounts'
 * sums, the horizon (*marker false when the row is missing). 0, or -1 on a
 * row that names nothing sent. */
static int rows_read(PGresult *r, const struct pg_admit_item *it, const size_t sent[], size_t k,
		     bool fresh[], struct admit_arrays *a, bool *marker, int64_t *horizon)
{
	if (PQresultStatus(r) != PGRES_TUPLES_OK || PQnfields(r) != 3) {
		log_err("pg: admit: %s", PQresultStatus(r) == PGRES_TUPLES_OK
					     ? "unexpected result shape"
					     : PQresultErrorMessage(r));
		return -1;
	}
	*marker = false;
	for (int row = 0; row < PQntuples(r); row++) {
		int64_t kind = field_i64(r, row, 0);
		size_t j = kind == ROW_FRESH ? fresh_of(r, row, it, sent, k)
			   : kind == ROW_SUM ? acct_find(a, field_i64(r, row, 1))
			   : kind == ROW_ALL_FRESH && field_i64(r, row, 1) != (int64_t)k ? k
					     : 0;
		if (((kind == ROW_FRESH || kind == ROW_ALL_FRESH) && j == k) ||
		    (kind == ROW_SUM && j == a->nacct)) {
			log_err("pg: admit: a result row names no member of the batch");
			return -1;
		}
		if (kind == ROW_FRESH)
			fresh[sent[j]] = true;
		else if (kind == ROW_ALL_FRESH)
			for (size_t m = 0; m < k; m++)
				fresh[sent[m]] = true;
		else if (kind == ROW_SUM)
			a->sum[j] = (uint64_t)strtoull(PQgetvalue(r, row, 2), NULL, 10);
		else if (kind == ROW_HORIZON) {
			*marker = true;
			*horizon = field_i64(r, row, 1);
		}
	}
	return 0;
}

/* The label of an account: its rows' sum plus account 0's (unscoped writes). */
static uint64_t label_of(const struct admit_arrays *a, int64_t account)
{
	size_t i = acct_find(a, account), z = acct_find(a, 0);
	uint64_t v = i < a->nacct ? a->sum[i] : 0;
	return account != 0 && z < a->nacct ? v + a->sum[z] : v;
}

/* Each item's answer, once the statement ran. The horizon decides before the
 * nonce: a replay of a pre-crash request finds the (emptied) table fresh. */
static void answer(struct pg_admit_item *it, size_t n, const bool dup[], const bool fresh[],
		   const struct admit_arrays *a, int64_t horizon)
{
	for (size_t i = 0; i < n; i++) {
		if (pg_horizon_refuses(it[i].ts_s, it[i].now_s, horizon))
			it[i].result = STORE_ADMIT_EARLY;
		else if (dup[i] || !fresh[i])
			it[i].result = STORE_ADMIT_USED;
		else
			it[i].result = STORE_ADMIT_FRESH;
		it[i].version = it[i].result == STORE_ADMIT_FRESH && it[i].label
				    ? label_of(a, it[i].account)
				    : 0;
	}
}

bool pg_admit_batch(PGconn *c, struct pg_admit_item *it, size_t n)
{
	bool dup[PG_ADMIT_BATCH_MAX], fresh[PG_ADMIT_BATCH_MAX] = {false}, timed_out = false;
	size_t sent[PG_ADMIT_BATCH_MAX];
	if (n == 0 || n > PG_ADMIT_BATCH_MAX) {
		fail_all(it, n);
		return true;
	}
	size_t k = dedupe(it, n, dup, sent);
	struct admit_arrays *arr = xmalloc(sizeof(*arr));
	arrays_build(it, n, sent, k, arr);
	const char *vals[3] = {arr->bucket, arr->tag, arr->account};
	int64_t deadline = time_mono_us() + (int64_t)PG_ADMIT_EXEC_MS * 1000;
	PGresult *r = admit_run(c, vals, deadline, &timed_out);
	bool marker = false;
	int64_t horizon = 0;
	int rc = r ? rows_read(r, it, sent, k, fresh, arr, &marker, &horizon) : -1;
	if (!r && !timed_out)
		log_err("pg: admit: %s", PQerrorMessage(c));
	PQclear(r);
	if (rc == 0 && !marker && (horizon = horizon_restore(c, deadline, &timed_out)) < 0)
		rc = -1;
	if (timed_out)
		log_err("pg: admit: no answer within %d ms; dropping the connection",
			PG_ADMIT_EXEC_MS);
	if (rc == 0)
		answer(it, n, dup, fresh, arr, horizon);
	free(arr);
	if (rc == 0)
		return true;
	fail_all(it, n);
	return !timed_out && PQstatus(c) == CONNECTION_OK && PQtransactionStatus(c) == PQTRANS_IDLE;
}

uint64_t pg_admit_fallbacks(void)
{
	return atomic_load(&admit_fallbacks);
}

enum store_admit_result pg_admit(PGconn *c, const struct store_admission *a, uint64_t *version)
{
	struct pg_admit_item it;
	pg_admit_item_of(a, version != NULL, &it);
	pg_admit_batch(c, &it, 1);
	if (it.result == STORE_ADMIT_FRESH && version)
		*version = it.version;
	return it.result;
}

/* -1 error, 0 another node holds the lock, 1 this connection holds it. */
static int sweep_lock(PGconn *c)
{
	char key[PG_NUM_TEXT];
	snprintf(key, sizeof(key), "%ld", PG_SWEEP_LOCK);
	const char *vals[] = {key};
	PGresult *r = PQexecParams(c, "SELECT pg_try_advisory_lock($1::bigint)", 1, NULL, vals,
				   NULL, NULL, 0);
	int rc = result_ok(r, 1, 1, "sweeper lock") ? PQgetvalue(r, 0, 0)[0] == 't' : -1;
	PQclear(r);
	return rc;
}

/* Truncates nonce_<b> when it has rows: 1 truncated, 0 empty, -1 error. A
 * lock_timeout on the connection keeps a busy partition from stalling it. */
static int sweep_one(PGconn *c, unsigned b)
{
	char sql[96];
	snprintf(sql, sizeof(sql), "SELECT EXISTS (SELECT 1 FROM nonce_%u)", b);
	PGresult *r = PQexec(c, sql);
	int rc = result_ok(r, 1, 1, "sweep probe") ? PQgetvalue(r, 0, 0)[0] == 't' : -1;
	PQclear(r);
	if (rc != 1)
		return rc;
	snprintf(sql, sizeof(sql), "TRUNCATE nonce_%u", b);
	r = PQexec(c, sql);
	rc = PQresultStatus(r) == PGRES_COMMAND_OK ? 1 : -1;
	if (rc < 0)
		log_warn("pg: sweeping nonce_%u: %s", b, PQresultErrorMessage(r));
	PQclear(r);
	return rc;
}

int pg_nonce_sweep(PGconn *c, int64_t now_s)
{
	int held = sweep_lock(c);
	if (held <= 0)
		return held;
	int n = 0;
	for (unsigned b = 0; b < PG_NONCE_BUCKETS; b++) {
		if (pg_nonce_bucket_live(b, now_s))
			continue;
		int rc = sweep_one(c, b);
		if (rc < 0)
			return -1;
		n += rc;
	}
	return n;
}

int pg_keys_changed(PGconn *c, int64_t *v)
{
	PGresult *r = PQexec(c, PG_KEYS_CHANGED_SQL);
	bool ok = result_ok(r, 1, 2, "keys epoch");
	if (ok)
		*v = field_i64(r, 0, 0);
	PQclear(r);
	return ok ? 0 : STORE_EIO;
}

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

int pg_keys_wait(PGconn *c, int64_t v, int64_t *pending)
{
	char val[PG_NUM_TEXT];
	snprintf(val, sizeof(val), "%" PRId64, v);
	const char *vals[] = {val};
	int64_t deadline = time_mono_us() + (int64_t)PG_KEYS_WAIT_MS * 1000;
	for (;;) {
		PGresult *r = PQexecParams(c, PG_KEYS_PENDING_SQL, 1, NULL, vals, NULL, NULL, 0);
		bool ok = result_ok(r, 1, 1, "key acknowledgements");
		*pending = ok ? field_i64(r, 0, 0) : -1;
		PQclear(r);
		if (!ok)
			return STORE_EIO;
		if (*pending == 0)
			return 0;
		if (time_mono_us() >= deadline)
			return 1;
		sleep_ms(PG_KEYS_POLL_MS);
	}
}
