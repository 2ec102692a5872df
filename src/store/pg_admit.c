#include "store/pg_admit.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "core/timeutil.h"
#include "store/pg_nodes.h"

#define PG_NUM_TEXT 24 /* an int64 in decimal with sign and NUL */

/* The nonce insert, the account's version and the horizon in one snapshot.
 * The version is read after the request arrived, so a cached answer labelled
 * with an older sum is never served after a write another node acknowledged
 * (each writer's bump commits with its batch). Account 0's rows count the
 * unscoped writes (sql/pg/0001), which may change any account's answers. */
#define PG_ADMIT_INSERT                                                                            \
	"WITH n AS (INSERT INTO nonce VALUES ($1::smallint, $2::uuid) ON CONFLICT DO NOTHING "     \
	"RETURNING 1) SELECT (SELECT count(*) FROM n), "
#define PG_ADMIT_HORIZON                                                                           \
	"(SELECT floor(extract(epoch FROM horizon))::bigint FROM nonce_marker WHERE id = 1)"
static const struct {
	const char *name, *sql;
	int nparams;
} pg_admit_stmt[2] = {
    {"sagflow_admit", PG_ADMIT_INSERT "0::bigint, " PG_ADMIT_HORIZON, 2},
    {"sagflow_admit_label",
     PG_ADMIT_INSERT "(SELECT coalesce(sum(v), 0) FROM account_version WHERE account_id IN "
		     "($3::bigint, 0))::bigint, " PG_ADMIT_HORIZON,
     3},
};
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

/* The horizon after the marker was found missing; -1 on error. */
static int64_t horizon_restore(PGconn *c)
{
	for (int attempt = 0; attempt < 2; attempt++) {
		PGresult *r = PQexec(c, PG_HORIZON_SQL);
		bool ok = result_ok(r, 1, 1, "nonce horizon");
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

/* Runs admission statement i prepared: a connection that has not prepared it
 * yet (new, or reconnected) says so, and it is prepared and run again. So no
 * per-connection state is needed here, and each later call is one round trip. */
static PGresult *admit_exec(PGconn *c, int i, const char *const *vals)
{
	for (int attempt = 0;; attempt++) {
		PGresult *r = PQexecPrepared(c, pg_admit_stmt[i].name, pg_admit_stmt[i].nparams,
					     vals, NULL, NULL, 0);
		const char *st = PQresultErrorField(r, PG_DIAG_SQLSTATE);
		if (attempt > 0 || !st || strcmp(st, PG_SQLSTATE_NO_STATEMENT) != 0)
			return r;
		PQclear(r);
		r = PQprepare(c, pg_admit_stmt[i].name, pg_admit_stmt[i].sql, 0, NULL);
		if (PQresultStatus(r) != PGRES_COMMAND_OK)
			return r;
		PQclear(r);
	}
}

enum store_admit_result pg_admit(PGconn *c, const struct store_admission *a, uint64_t *version)
{
	char bucket[PG_NUM_TEXT], tag[PG_NONCE_TAG_TEXT + 1], acct[PG_NUM_TEXT];
	snprintf(bucket, sizeof(bucket), "%u", pg_nonce_bucket(a->expires_s));
	pg_nonce_tag(a->who, a->nonce, tag);
	snprintf(acct, sizeof(acct), "%" PRId64, a->account);
	const char *vals[] = {bucket, tag, acct};
	PGresult *r = admit_exec(c, version ? 1 : 0, vals);
	if (!result_ok(r, 1, 3, "admit")) {
		PQclear(r);
		return STORE_ADMIT_UNAVAIL;
	}
	bool fresh = field_i64(r, 0, 0) == 1, marker = !PQgetisnull(r, 0, 2);
	uint64_t v = (uint64_t)field_i64(r, 0, 1);
	int64_t horizon = field_i64(r, 0, 2);
	PQclear(r);
	if (!marker && (horizon = horizon_restore(c)) < 0)
		return STORE_ADMIT_UNAVAIL;
	/* Before the nonce: a replay of a pre-crash request finds the (emptied)
	 * table fresh, so the horizon must decide first. */
	if (pg_horizon_refuses(a->ts_s, a->now_s, horizon))
		return STORE_ADMIT_EARLY;
	if (!fresh)
		return STORE_ADMIT_USED;
	if (version)
		*version = v;
	return STORE_ADMIT_FRESH;
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
