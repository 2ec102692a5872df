/* N nodes on one PostgreSQL: the pure rules (pg_nodes.h) always; with
 * SAGFLOW_TEST_PG (a superuser's libpq URI on a throwaway cluster) also the
 * admission, the horizon, the sweeper, leases and the key-change wait against
 * a real database (a fresh one per run, dropped at the end). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <cmocka.h>
#include <limits.h>
#include <stdatomic.h>
#include <time.h>

#include "core/timeutil.h"
#include "store/pg_admitq.h"
#include "store/pg_nodes.h"

#define T0 1764576000 /* 2026-12-01, a multiple of 300 */

/* ---- pure rules ---- */

static void test_bucket(void **state)
{
	assert_int_equal(pg_nonce_bucket(T0), (T0 / 300) % 10);
	assert_int_equal(pg_nonce_bucket(T0 + 299), pg_nonce_bucket(T0));
	assert_int_equal(pg_nonce_bucket(T0 + 300), (pg_nonce_bucket(T0) + 1) % 10);
	assert_int_equal(pg_nonce_bucket(T0 + 3000), pg_nonce_bucket(T0));
	assert_true(pg_nonce_bucket(-1) < PG_NONCE_BUCKETS); /* no wrap, no crash */
}

/* The invariant the sweeper rests on, checked by brute force over a day: a
 * partition that pg_nonce_bucket_live calls dead at t receives no admission
 * (expires in [t' + 1, t' + 1801]) from any node whose clock t' is within
 * PG_NONCE_SKEW_S of t, and so may be truncated at t. */
static void test_sweep_never_truncates_a_live_window(void **state)
{
	for (int64_t t = T0; t < T0 + 86400; t += 7) {
		for (unsigned b = 0; b < PG_NONCE_BUCKETS; b++) {
			if (pg_nonce_bucket_live(b, t))
				continue;
			for (int64_t skew = -PG_NONCE_SKEW_S; skew <= PG_NONCE_SKEW_S; skew += 30)
				for (int64_t e = t + skew + 1; e <= t + skew + PG_NONCE_LIFETIME_S;
				     e += 11)
					assert_int_not_equal(pg_nonce_bucket(e), b);
		}
	}
}

/* And it does free partitions: at every moment at least two are dead, and each
 * is dead often enough for a sweep every PG_SWEEP_PERIOD_S to catch it. */
static void test_sweep_frees_partitions(void **state)
{
	int64_t dead_for[PG_NONCE_BUCKETS] = {0}, longest[PG_NONCE_BUCKETS] = {0};
	for (int64_t t = T0; t < T0 + 3 * 3000; t++) {
		int dead = 0;
		for (unsigned b = 0; b < PG_NONCE_BUCKETS; b++) {
			bool live = pg_nonce_bucket_live(b, t);
			dead += !live;
			dead_for[b] = live ? 0 : dead_for[b] + 1;
			if (dead_for[b] > longest[b])
				longest[b] = dead_for[b];
		}
		assert_true(dead >= 2);
	}
	for (unsigned b = 0; b < PG_NONCE_BUCKETS; b++)
		assert_true(longest[b] >= 900 - 2 * PG_NONCE_SKEW_S - 1);
	/* The example of docs/store.md: right after T0 + 1 s the windows up to
	 * T0 + 1801 + skew are live, the one that just ended a skew ago too. */
	unsigned b0 = pg_nonce_bucket(T0);
	assert_true(pg_nonce_bucket_live(b0, T0));
	assert_true(pg_nonce_bucket_live((b0 + 6) % 10, T0));
	assert_false(pg_nonce_bucket_live((b0 + 8) % 10, T0));
	assert_true(pg_nonce_bucket_live((b0 + 9) % 10, T0)); /* ended 0 s ago, within the skew */
}

static void test_tag(void **state)
{
	char a[PG_NONCE_TAG_TEXT + 1], b[PG_NONCE_TAG_TEXT + 1];
	pg_nonce_tag(STR_LIT("LTAIabc"), STR_LIT("n1"), a);
	assert_int_equal(strlen(a), PG_NONCE_TAG_TEXT);
	assert_int_equal(a[8], '-');
	assert_int_equal(a[13], '-');
	assert_int_equal(a[23], '-');
	pg_nonce_tag(STR_LIT("LTAIabc"), STR_LIT("n1"), b);
	assert_string_equal(a, b);
	/* The length prefix keeps shifted splits apart. */
	pg_nonce_tag(STR_LIT("LTAIab"), STR_LIT("cn1"), b);
	assert_string_not_equal(a, b);
	pg_nonce_tag(STR_LIT("LTAIabc"), STR_LIT("n2"), b);
	assert_string_not_equal(a, b);
	/* A known answer: SHA-256(00 00 00 01 'a' 'b') starts 0x35 0x3f ... */
	pg_nonce_tag(STR_LIT("a"), STR_LIT("b"), b);
	char want[PG_NONCE_TAG_TEXT + 1];
	FILE *p = popen("printf '\\000\\000\\000\\001ab' | sha256sum", "r");
	assert_non_null(p);
	char hex[65] = {0};
	assert_int_equal(fread(hex, 1, 64, p), 64);
	pclose(p);
	snprintf(want, sizeof(want), "%.8s-%.4s-%.4s-%.4s-%.12s", hex, hex + 8, hex + 12, hex + 16,
		 hex + 20);
	assert_string_equal(b, want);
}

static void test_horizon_rule(void **state)
{
	int64_t h = T0;
	assert_false(pg_horizon_refuses(T0 - 10, T0 + 5, 0)); /* no horizon */
	assert_true(pg_horizon_refuses(T0 - 1, T0 + 5, h)); /* signed before the crash's horizon */
	assert_false(pg_horizon_refuses(T0, T0 + 5, h));    /* signed after */
	assert_true(pg_horizon_refuses(T0 - 1, T0 + PG_HORIZON_S - 1, h));
	/* Once the horizon is a window old, the timestamp check alone suffices. */
	assert_false(pg_horizon_refuses(T0 - 1, T0 + PG_HORIZON_S, h));
}

#ifdef SAGFLOW_POSTGRES
/* ---- the admission queue (pg_admitq.h), with a run() of our own ---- */

struct fake_run {
	_Atomic int batches, items, max, sleep_ms;
};

static void fake_sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

static void fake_run_fn(void *arg, struct pg_admit_item *it, size_t n)
{
	struct fake_run *f = arg;
	atomic_fetch_add(&f->batches, 1);
	atomic_fetch_add(&f->items, (int)n);
	if ((int)n > atomic_load(&f->max))
		atomic_store(&f->max, (int)n);
	fake_sleep_ms(atomic_exchange(&f->sleep_ms, 0) + 1);
	for (size_t i = 0; i < n; i++) {
		it[i].result = STORE_ADMIT_FRESH;
		it[i].version = (uint64_t)it[i].account * 10; /* each waiter gets its own */
	}
}

struct fake_caller {
	struct pg_admitq *q;
	int64_t account;
	enum store_admit_result got;
	uint64_t version;
};

static void *fake_caller_main(void *arg)
{
	struct fake_caller *c = arg;
	char nonce[32];
	snprintf(nonce, sizeof(nonce), "n%lld", (long long)c->account);
	struct store_admission a = {.who = str_c("LTAIq"), .nonce = str_c(nonce), .ts_s = T0,
				    .now_s = T0, .expires_s = T0 + 901, .account = c->account};
	c->got = pg_admitq_admit(c->q, &a, &c->version);
	return NULL;
}

/* Concurrent callers share batches, each gets its own answer, and no batch is
 * larger than PG_ADMIT_BATCH_MAX. */
static void test_admitq_combines(void **state)
{
	enum { N = 150 };
	struct fake_run f = {.sleep_ms = 50}; /* the first batch is slow: the others queue */
	struct pg_admitq *q = pg_admitq_new(fake_run_fn, &f);
	struct fake_caller c[N];
	pthread_t t[N];
	for (int i = 0; i < N; i++) {
		c[i] = (struct fake_caller){.q = q, .account = i + 1};
		pthread_create(&t[i], NULL, fake_caller_main, &c[i]);
	}
	for (int i = 0; i < N; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(c[i].got, STORE_ADMIT_FRESH);
		assert_int_equal(c[i].version, (uint64_t)(i + 1) * 10);
	}
	struct pg_admitq_stats st;
	pg_admitq_stats(q, &st);
	assert_int_equal(st.admissions, N);
	assert_int_equal(f.items, N);
	assert_true(st.batches < N / 4); /* they were combined */
	assert_true(st.max_batch > 1 && st.max_batch <= PG_ADMIT_BATCH_MAX);
	assert_int_equal(st.timeouts, 0);
	pg_admitq_free(q);
}

/* A batch that hangs (as long as one may, PG_ADMIT_EXEC_MS, and more): an
 * admission queued behind it past PG_ADMIT_WAIT_MS is refused with
 * STORE_ADMIT_UNAVAIL as soon as the batch ends, not run after it. */
static void test_admitq_bounded_wait(void **state)
{
	enum { SLOW_MS = PG_ADMIT_WAIT_MS + 500 };
	struct fake_run f = {.sleep_ms = SLOW_MS};
	struct pg_admitq *q = pg_admitq_new(fake_run_fn, &f);
	struct fake_caller first = {.q = q, .account = 1}, second = {.q = q, .account = 2};
	pthread_t t1, t2;
	pthread_create(&t1, NULL, fake_caller_main, &first);
	fake_sleep_ms(100); /* the first's batch runs, slowly */
	int64_t t0 = time_mono_us();
	pthread_create(&t2, NULL, fake_caller_main, &second);
	pthread_join(t2, NULL);
	int64_t waited_ms = (time_mono_us() - t0) / 1000;
	assert_int_equal(second.got, STORE_ADMIT_UNAVAIL);
	assert_true(waited_ms >= PG_ADMIT_WAIT_MS - 50 && waited_ms < SLOW_MS + 500);
	pthread_join(t1, NULL);
	assert_int_equal(first.got, STORE_ADMIT_FRESH);
	struct pg_admitq_stats st;
	pg_admitq_stats(q, &st);
	assert_int_equal(st.timeouts, 1);
	assert_int_equal(st.batches, 1);
	pg_admitq_free(q);
}

/* ---- the asynchronous form (pg_admitq_submit) ---- */

enum { ASYNC_N = 600 };
struct async_rec {
	pthread_t submitter;
	_Atomic int answers, fresh, unavail, on_submitter, wrong_version;
	_Atomic int per[ASYNC_N]; /* answers per admission: exactly one each */
};
struct async_one {
	struct async_rec *rec;
	int index;
};

static void async_done(void *arg, enum store_admit_result r, uint64_t version)
{
	struct async_one *o = arg;
	struct async_rec *rec = o->rec;
	atomic_fetch_add(&rec->per[o->index], 1);
	if (pthread_equal(pthread_self(), rec->submitter))
		atomic_fetch_add(&rec->on_submitter, 1);
	if (r == STORE_ADMIT_FRESH) {
		atomic_fetch_add(&rec->fresh, 1);
		if (version != (uint64_t)(o->index + 1) * 10)
			atomic_fetch_add(&rec->wrong_version, 1);
	} else if (r == STORE_ADMIT_UNAVAIL) {
		atomic_fetch_add(&rec->unavail, 1);
	}
	atomic_fetch_add(&rec->answers, 1); /* last: the test may look at everything now */
}

static void async_submit_all(struct pg_admitq *q, struct async_rec *rec, struct async_one *o)
{
	rec->submitter = pthread_self();
	for (int i = 0; i < ASYNC_N; i++) {
		char nonce[32];
		snprintf(nonce, sizeof(nonce), "a%d", i);
		o[i] = (struct async_one){rec, i};
		struct store_admission a = {.who = str_c("LTAIq"), .nonce = str_c(nonce),
					    .ts_s = T0, .now_s = T0, .expires_s = T0 + 901,
					    .account = i + 1};
		pg_admitq_submit(q, &a, true, async_done, &o[i]);
	}
}

static void async_wait_all(struct async_rec *rec, int ms)
{
	int64_t until = time_mono_us() + (int64_t)ms * 1000;
	while (atomic_load(&rec->answers) < ASYNC_N && time_mono_us() < until)
		fake_sleep_ms(5);
}

/* Many admissions submitted from one thread that never waits: each answered
 * exactly once, on the admission thread, with its own version, in shared
 * batches no larger than PG_ADMIT_BATCH_MAX. */
static void test_admitq_async(void **state)
{
	struct fake_run f = {.sleep_ms = 50}; /* the first batch is slow: the others queue */
	struct pg_admitq *q = pg_admitq_new(fake_run_fn, &f);
	static struct async_rec rec;
	static struct async_one o[ASYNC_N];
	memset(&rec, 0, sizeof(rec));
	int64_t t0 = time_mono_us();
	async_submit_all(q, &rec, o);
	assert_true(time_mono_us() - t0 < 40 * 1000); /* submitting never waited for a batch */
	async_wait_all(&rec, 10000);
	assert_int_equal(atomic_load(&rec.answers), ASYNC_N);
	for (int i = 0; i < ASYNC_N; i++)
		assert_int_equal(atomic_load(&rec.per[i]), 1);
	assert_int_equal(atomic_load(&rec.fresh), ASYNC_N);
	assert_int_equal(atomic_load(&rec.wrong_version), 0);
	assert_int_equal(atomic_load(&rec.on_submitter), 0);
	struct pg_admitq_stats st;
	pg_admitq_stats(q, &st);
	assert_int_equal(st.admissions, ASYNC_N);
	assert_true(st.batches <= ASYNC_N / 8);
	assert_true(st.max_batch > 1 && st.max_batch <= PG_ADMIT_BATCH_MAX);
	pg_admitq_free(q);
}

/* Closing with admissions pending: the running batch finishes, every one
 * still queued is refused (503) before pg_admitq_free returns, none is
 * answered twice or lost (and ASan sees no leak). */
static void test_admitq_free_pending(void **state)
{
	struct fake_run f = {.sleep_ms = 300};
	struct pg_admitq *q = pg_admitq_new(fake_run_fn, &f);
	static struct async_rec rec;
	static struct async_one o[ASYNC_N];
	memset(&rec, 0, sizeof(rec));
	async_submit_all(q, &rec, o);
	fake_sleep_ms(50); /* the first batch is running */
	pg_admitq_free(q);
	assert_int_equal(atomic_load(&rec.answers), ASYNC_N);
	for (int i = 0; i < ASYNC_N; i++)
		assert_int_equal(atomic_load(&rec.per[i]), 1);
	int fresh = atomic_load(&rec.fresh);
	assert_true(fresh >= 1 && fresh <= PG_ADMIT_BATCH_MAX); /* the running batch only */
	assert_int_equal(atomic_load(&rec.unavail), ASYNC_N - fresh);
}

/* ---- against a real cluster (SAGFLOW_TEST_PG) ---- */
#include <libpq-fe.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/timeutil.h"
#include "store/pg_admit.h"
#include "store/pg_listen.h"
#include "store/store_impl.h"
#include "store/store_pg.h"

static char db_conninfo[1024]; /* key=value conninfo of this run's database */
static char db_uri[1024];      /* the same as a postgresql:// URI, for store_open */
static char db_name[64];

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

static PGconn *db_connect(void)
{
	PGconn *c = PQconnectdb(db_conninfo);
	assert_int_equal(PQstatus(c), CONNECTION_OK);
	return c;
}

static void exec_ok(PGconn *c, const char *sql)
{
	PGresult *r = PQexec(c, sql);
	ExecStatusType st = PQresultStatus(r);
	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
		fail_msg("%s: %s", sql, PQresultErrorMessage(r));
	PQclear(r);
}

static int64_t query_i64(PGconn *c, const char *sql)
{
	PGresult *r = PQexec(c, sql);
	if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1)
		fail_msg("%s: %s", sql, PQresultErrorMessage(r));
	int64_t v = PQgetisnull(r, 0, 0) ? -1 : strtoll(PQgetvalue(r, 0, 0), NULL, 10);
	PQclear(r);
	return v;
}

/* A fresh database with the nodes schema; its conninfo in db_conninfo. */
static int db_setup(const char *uri)
{
	PGconn *admin = PQconnectdb(uri);
	if (PQstatus(admin) != CONNECTION_OK) {
		fprintf(stderr, "pg_nodes: cannot connect to SAGFLOW_TEST_PG: %s",
			PQerrorMessage(admin));
		PQfinish(admin);
		return -1;
	}
	snprintf(db_name, sizeof(db_name), "sagflow_pgnodes_%d", (int)getpid());
	char sql[256];
	snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s", db_name);
	PQclear(PQexec(admin, "SET client_min_messages = warning"));
	PQclear(PQexec(admin, sql));
	snprintf(sql, sizeof(sql),
		 "CREATE DATABASE %s TEMPLATE template0 ENCODING 'UTF8' LOCALE 'C'", db_name);
	PGresult *r = PQexec(admin, sql);
	int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
	PQclear(r);
	char host[512], port[16], user[64];
	snprintf(host, sizeof(host), "%s", PQhost(admin));
	snprintf(port, sizeof(port), "%s", PQport(admin));
	snprintf(user, sizeof(user), "%s", PQuser(admin));
	snprintf(db_conninfo, sizeof(db_conninfo), "host='%s' port='%s' user='%s' dbname='%s'",
		 host, port, user, db_name);
	PQfinish(admin);
	if (!ok)
		return -1;
	/* The backend's own migrations (sql/pg/, the nodes' tables in 0001), as serve applies them. */
	snprintf(db_uri, sizeof(db_uri), "postgresql:///%s?host=%s&port=%s&user=%s", db_name, host,
		 port, user);
	struct store *s = store_open(db_uri);
	if (!s)
		return -1;
	store_close(s);
	return 0;
}

static void db_teardown(const char *uri)
{
	PGconn *admin = PQconnectdb(uri);
	char sql[256];
	snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s WITH (FORCE)", db_name);
	PQclear(PQexec(admin, sql));
	PQfinish(admin);
}

static struct store_admission adm(const char *who, const char *nonce, int64_t ts, int64_t acct)
{
	int64_t now = time_now_ms() / 1000;
	return (struct store_admission){.who = str_c(who),
					.nonce = str_c(nonce),
					.ts_s = ts,
					.now_s = now,
					.expires_s = ts + 901,
					.account = acct};
}

/* Two nodes (two connections): a nonce used on A is a replay on B, and B's
 * label moves with a version bump committed through A. */
static void test_admit_across_nodes(void **state)
{
	PGconn *a = db_connect(), *b = db_connect();
	int64_t now = time_now_ms() / 1000;
	struct store_admission x = adm("LTAIkey1", "nonce-1", now, 7);
	uint64_t va = 0, vb = 0;
	exec_ok(a, "INSERT INTO account_version VALUES (7, 0, 5), (7, 1, 2), (8, 0, 100)");
	assert_int_equal(pg_admit(a, &x, &va), STORE_ADMIT_FRESH);
	assert_int_equal(va, 7);
	assert_int_equal(pg_admit(b, &x, &vb), STORE_ADMIT_USED);
	assert_int_equal(pg_admit(a, &x, NULL), STORE_ADMIT_USED);
	/* Another key with the same nonce is another pair. */
	struct store_admission y = adm("LTAIkey2", "nonce-1", now, 7);
	assert_int_equal(pg_admit(b, &y, NULL), STORE_ADMIT_FRESH);
	/* A writer on A bumps its shard; the next admission on B sees it. */
	exec_ok(a, "UPDATE account_version SET v = v + 1 WHERE account_id = 7 AND shard = 1");
	struct store_admission z = adm("LTAIkey1", "nonce-2", now, 7);
	assert_int_equal(pg_admit(b, &z, &vb), STORE_ADMIT_FRESH);
	assert_int_equal(vb, 8);
	/* An account without rows is labelled 0. */
	struct store_admission w = adm("LTAIkey1", "nonce-3", now, 9);
	assert_int_equal(pg_admit(b, &w, &vb), STORE_ADMIT_FRESH);
	assert_int_equal(vb, 0);
	/* Unscoped writes (account 0's rows) move every account's label. */
	exec_ok(a, "INSERT INTO account_version VALUES (0, 0, 1)");
	struct store_admission u = adm("LTAIkey1", "nonce-4", now, 9);
	assert_int_equal(pg_admit(b, &u, &vb), STORE_ADMIT_FRESH);
	assert_int_equal(vb, 1);
	struct store_admission u7 = adm("LTAIkey1", "nonce-5", now, 7);
	assert_int_equal(pg_admit(a, &u7, &va), STORE_ADMIT_FRESH);
	assert_int_equal(va, 9);
	/* A reconnected session has no prepared statement: admission still works. */
	exec_ok(a, "DEALLOCATE ALL");
	struct store_admission d = adm("LTAIkey1", "nonce-6", now, 7);
	assert_int_equal(pg_admit(a, &d, &va), STORE_ADMIT_FRESH);
	assert_int_equal(pg_admit(a, &d, &va), STORE_ADMIT_USED);
	PQfinish(a);
	PQfinish(b);
}

/* Many copies of one request at once on many connections: exactly one wins. */
struct race {
	const char *nonce;
	_Atomic int fresh, used, other;
	_Atomic bool go;
};

static void *race_main(void *arg)
{
	struct race *r = arg;
	PGconn *c = db_connect();
	struct store_admission x = adm("LTAIrace", r->nonce, time_now_ms() / 1000, 1);
	while (!atomic_load(&r->go))
		;
	switch (pg_admit(c, &x, NULL)) {
	case STORE_ADMIT_FRESH:
		atomic_fetch_add(&r->fresh, 1);
		break;
	case STORE_ADMIT_USED:
		atomic_fetch_add(&r->used, 1);
		break;
	default:
		atomic_fetch_add(&r->other, 1);
		break;
	}
	PQfinish(c);
	return NULL;
}

static void test_admit_race(void **state)
{
	enum { N = 8, ROUNDS = 20 };
	for (int round = 0; round < ROUNDS; round++) {
		char nonce[32];
		snprintf(nonce, sizeof(nonce), "race-%d", round);
		struct race r = {.nonce = nonce};
		pthread_t t[N];
		for (int i = 0; i < N; i++)
			pthread_create(&t[i], NULL, race_main, &r);
		sleep_ms(20);
		atomic_store(&r.go, true);
		for (int i = 0; i < N; i++)
			pthread_join(t[i], NULL);
		assert_int_equal(r.fresh, 1);
		assert_int_equal(r.used, N - 1);
		assert_int_equal(r.other, 0);
	}
}

/* What crash recovery leaves (both UNLOGGED tables empty), made by hand: the
 * first admission sets the horizon, and a request signed before it is refused
 * even though its nonce is unknown. */
static void test_horizon_when_marker_missing(void **state)
{
	PGconn *a = db_connect(), *b = db_connect();
	exec_ok(a, "TRUNCATE nonce, nonce_marker");
	int64_t now = time_now_ms() / 1000;
	sleep_ms(1100); /* the horizon (now()) is then after `now` */
	struct store_admission old = adm("LTAIkey1", "pre-crash", now - 1, 0);
	assert_int_equal(pg_admit(a, &old, NULL), STORE_ADMIT_EARLY);
	assert_int_equal(pg_admit(b, &old, NULL), STORE_ADMIT_EARLY); /* every node */
	int64_t h = query_i64(a, "SELECT floor(extract(epoch FROM horizon)) FROM nonce_marker");
	assert_true(h >= now && h <= now + 5);
	struct store_admission fresh = adm("LTAIkey1", "post-crash", h + 1, 0);
	assert_int_equal(pg_admit(b, &fresh, NULL), STORE_ADMIT_FRESH);
	assert_int_equal(pg_admit(a, &fresh, NULL), STORE_ADMIT_USED);
	exec_ok(a, "UPDATE nonce_marker SET horizon = 'epoch'");
	PQfinish(a);
	PQfinish(b);
}

/* The real thing when the harness says how: pg_ctl stop -m immediate, start,
 * and the request admitted before the crash is refused when replayed after. */
static void test_horizon_after_immediate_stop(void **state)
{
	const char *data = getenv("SAGFLOW_TEST_PG_DATA"), *ctl = getenv("SAGFLOW_TEST_PG_CTL");
	if (!data || !ctl || !*data || !*ctl || strchr(ctl, '\'')) {
		printf("pg_nodes: SKIP immediate-stop test: SAGFLOW_TEST_PG_DATA/_CTL not set\n");
		skip();
	}
	PGconn *a = db_connect();
	int64_t now = time_now_ms() / 1000;
	struct store_admission x = adm("LTAIkey1", "signed-before-crash", now, 0);
	assert_int_equal(pg_admit(a, &x, NULL), STORE_ADMIT_FRESH);
	assert_int_equal(pg_admit(a, &x, NULL), STORE_ADMIT_USED);
	PQfinish(a);
	char cmd[2 * PATH_MAX + 64];
	/* The harness's pg_ctl knows its data directory and log (scripts/pg-test.sh). */
	snprintf(cmd, sizeof(cmd),
		 "'%s' stop -m immediate -w >/dev/null && '%s' start -w >/dev/null", ctl, ctl);
	assert_int_equal(system(cmd), 0);
	sleep_ms(1100);
	a = db_connect();
	assert_int_equal(query_i64(a, "SELECT count(*) FROM nonce"), 0); /* the crash forgot it */
	x.now_s = time_now_ms() / 1000;
	assert_int_equal(pg_admit(a, &x, NULL), STORE_ADMIT_EARLY);
	exec_ok(a, "UPDATE nonce_marker SET horizon = 'epoch'");
	PQfinish(a);
}

static void insert_bucket(PGconn *c, unsigned b)
{
	char sql[160];
	snprintf(sql, sizeof(sql), "INSERT INTO nonce VALUES (%u, gen_random_uuid())", b);
	exec_ok(c, sql);
}

static void test_sweep(void **state)
{
	PGconn *a = db_connect(), *b = db_connect();
	exec_ok(a, "TRUNCATE nonce");
	for (unsigned i = 0; i < PG_NONCE_BUCKETS; i++)
		insert_bucket(a, i);
	int64_t now = time_now_ms() / 1000;
	int dead = 0;
	for (unsigned i = 0; i < PG_NONCE_BUCKETS; i++)
		dead += !pg_nonce_bucket_live(i, now);
	assert_int_equal(pg_nonce_sweep(a, now), dead);
	assert_int_equal(query_i64(a, "SELECT count(*) FROM nonce"), PG_NONCE_BUCKETS - dead);
	for (unsigned i = 0; i < PG_NONCE_BUCKETS; i++) {
		char sql[96];
		snprintf(sql, sizeof(sql), "SELECT count(*) FROM nonce_%u", i);
		assert_int_equal(query_i64(a, sql), pg_nonce_bucket_live(i, now) ? 1 : 0);
	}
	/* One node sweeps: b cannot take the lock a holds. */
	for (unsigned i = 0; i < PG_NONCE_BUCKETS; i++)
		insert_bucket(a, i);
	assert_int_equal(pg_nonce_sweep(b, now), 0);
	assert_int_equal(query_i64(a, "SELECT count(*) FROM nonce"), 2 * PG_NONCE_BUCKETS - dead);
	/* Released at once (PQfinish alone lets the server drop it a moment
	 * later): now b sweeps. */
	exec_ok(a, "SELECT pg_advisory_unlock_all()");
	PQfinish(a);
	assert_int_equal(pg_nonce_sweep(b, now), dead);
	PQfinish(b);
}

/* A "node" for the listener: a bare store with no backend. They live in
 * static slots, and a teardown stops whatever a failed test left running: a
 * failed assertion leaves its test by longjmp, and a listener still writing
 * into that test's stack frame would corrupt the next test's. */
struct fake_node {
	struct store s;
	struct pg_listen *l;
};
#define FAKE_NODES_MAX 2
static struct fake_node fake_nodes[FAKE_NODES_MAX];
static pid_t fake_child; /* a forked node still to reap (SIGSTOPped, perhaps) */

static struct fake_node *fake_start(int i)
{
	struct fake_node *n = &fake_nodes[i];
	memset(n, 0, sizeof(*n));
	n->l = pg_listen_start(db_conninfo, &n->s);
	return n;
}

static void fake_stop(struct fake_node *n)
{
	pg_listen_stop(n->l);
	n->l = NULL;
}

static int fake_teardown(void **state)
{
	for (int i = 0; i < FAKE_NODES_MAX; i++)
		if (fake_nodes[i].l)
			fake_stop(&fake_nodes[i]);
	if (fake_child > 0) {
		kill(fake_child, SIGKILL);
		waitpid(fake_child, NULL, 0);
		fake_child = 0;
	}
	return 0;
}

static bool trusted(struct store *s)
{
	return time_mono_us() < atomic_load(&s->keys_trusted_until_us);
}

static void wait_trusted(struct store *s, int ms)
{
	for (int i = 0; i < ms / 10 && !trusted(s); i++)
		sleep_ms(10);
	assert_true(trusted(s));
}

static int64_t keys_change(PGconn *c)
{
	int64_t v = 0;
	exec_ok(c, "BEGIN");
	assert_int_equal(pg_keys_changed(c, &v), 0);
	exec_ok(c, "COMMIT");
	return v;
}

static int64_t elapsed_ms(int64_t t0_us)
{
	return (time_mono_us() - t0_us) / 1000;
}

/* Two live nodes: a key change returns once both acknowledged, which the
 * NOTIFY makes fast, and each node's key epoch moved. */
static void test_key_wait_live_nodes(void **state)
{
	struct fake_node *n1 = fake_start(0), *n2 = fake_start(1);
	assert_false(trusted(&n1->s)); /* untrusted until the first renewal */
	wait_trusted(&n1->s, 3000);
	wait_trusted(&n2->s, 3000);
	PGconn *c = db_connect();
	assert_int_equal(query_i64(c, "SELECT count(*) FROM node_lease WHERE lease_until > now()"),
			 2);
	uint64_t e1 = atomic_load(n1->s.keys_epoch), e2 = atomic_load(n2->s.keys_epoch);
	int64_t t0 = time_mono_us(), pending = -1;
	int64_t v = keys_change(c);
	assert_int_equal(pg_keys_wait(c, v, &pending), 0);
	assert_int_equal(pending, 0);
	printf("pg_nodes: key change acknowledged by 2 nodes in %lld ms\n",
	       (long long)elapsed_ms(t0));
	assert_true(elapsed_ms(t0) < PG_LEASE_RENEW_MS); /* the NOTIFY, not the renewal */
	assert_true(atomic_load(n1->s.keys_epoch) > e1);
	assert_true(atomic_load(n2->s.keys_epoch) > e2);
	/* A clean stop removes the lease: nobody waits for a node that left. */
	fake_stop(n2);
	assert_int_equal(query_i64(c, "SELECT count(*) FROM node_lease"), 1);
	v = keys_change(c);
	assert_int_equal(pg_keys_wait(c, v, &pending), 0);
	fake_stop(n1);
	PQfinish(c);
}

/* A node stopped with SIGSTOP: the wait returns when its lease expires (≤ 3 s
 * after its last renewal, well under PG_KEYS_WAIT_MS), and once resumed it
 * does not trust its key cache before it caught up with the change. The child
 * reports (trusted, epoch) on a pipe when asked before the stop and right
 * after SIGCONT. */
static volatile sig_atomic_t child_continued;

static void on_cont(int sig)
{
	child_continued = 1;
}

static void child_node(int cmd, int out)
{
	struct fake_node n = {0};
	signal(SIGCONT, on_cont);
	n.l = pg_listen_start(db_conninfo, &n.s);
	char ch;
	(void)!read(cmd, &ch, 1); /* the parent asks for the epoch before stopping us */
	uint64_t e = atomic_load(n.s.keys_epoch);
	(void)!write(out, &e, sizeof(e));
	while (!child_continued)
		sleep_ms(1);
	/* First thing after the resume, before the listener could renew: the key
	 * cache must be off, or already flushed. */
	int64_t r[2] = {trusted(&n.s), (int64_t)atomic_load(n.s.keys_epoch)};
	(void)!write(out, r, sizeof(r));
	(void)!read(cmd, &ch, 1);
	pg_listen_stop(n.l);
	_exit(0);
}

static void test_key_wait_stopped_node(void **state)
{
	int cmd[2], out[2];
	assert_int_equal(pipe(cmd), 0);
	assert_int_equal(pipe(out), 0);
	fflush(NULL);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		child_node(cmd[0], out[1]);
	fake_child = pid;
	PGconn *c = db_connect();
	for (int i = 0; i < 300 && query_i64(c, "SELECT count(*) FROM node_lease") < 1; i++)
		sleep_ms(10);
	sleep_ms(200);
	uint64_t e0 = 0;
	assert_int_equal(write(cmd[1], "e", 1), 1);
	assert_int_equal(read(out[0], &e0, sizeof(e0)), sizeof(e0));
	kill(pid, SIGSTOP);
	int64_t t0 = time_mono_us(), pending = -1;
	int64_t v = keys_change(c);
	assert_int_equal(pg_keys_wait(c, v, &pending), 0);
	int64_t ms = elapsed_ms(t0);
	printf("pg_nodes: key change with a stopped node returned in %lld ms\n", (long long)ms);
	assert_true(ms <= PG_LEASE_MS + 500);
	kill(pid, SIGCONT);
	int64_t r[2];
	assert_int_equal(read(out[0], r, sizeof(r)), sizeof(r));
	assert_true(r[0] == 0 || (uint64_t)r[1] != e0);
	/* And it catches up: its lease comes back with keys_seen = v. */
	char sql[160];
	snprintf(sql, sizeof(sql),
		 "SELECT count(*) FROM node_lease WHERE lease_until > now() AND keys_seen >= %lld",
		 (long long)v);
	int64_t n = 0;
	for (int i = 0; i < 300 && (n = query_i64(c, sql)) < 1; i++)
		sleep_ms(10);
	assert_int_equal(n, 1);
	assert_int_equal(write(cmd[1], "q", 1), 1);
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	fake_child = 0;
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	PQfinish(c);
}

/* The listener's connection killed: it reconnects, flushes the cache, trusts
 * it again after renewing, and a change made while it was away is applied. */
static void test_listener_terminated(void **state)
{
	struct fake_node *n = fake_start(0);
	wait_trusted(&n->s, 3000);
	PGconn *c = db_connect();
	assert_int_equal(pg_listen_connects(n->l), 1);
	uint64_t e0 = atomic_load(n->s.keys_epoch);
	assert_int_equal(
	    query_i64(c, "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM "
			 "pg_stat_activity WHERE application_name = 'sagflow-listener') t"),
	    1);
	int64_t v = keys_change(c); /* while it is away (or about to notice) */
	for (int i = 0; i < 500 && pg_listen_connects(n->l) < 2; i++)
		sleep_ms(10);
	assert_int_equal(pg_listen_connects(n->l), 2);
	wait_trusted(&n->s, 3000);
	assert_true(atomic_load(n->s.keys_epoch) > e0);
	int64_t pending = -1;
	assert_int_equal(pg_keys_wait(c, v, &pending), 0);
	fake_stop(n);
	PQfinish(c);
}

/* A lease that is not renewed: the node stops trusting its cache within
 * PG_LEASE_TRUST_MS; the database's lease runs out within PG_LEASE_MS. */
static void test_lease_expiry(void **state)
{
	struct fake_node *n = fake_start(0);
	wait_trusted(&n->s, 3000);
	PGconn *c = db_connect();
	/* Block renewals: lock the lease table so the listener's upsert waits. */
	exec_ok(c, "BEGIN");
	exec_ok(c, "LOCK TABLE node_lease IN ACCESS EXCLUSIVE MODE");
	int64_t t0 = time_mono_us();
	while (trusted(&n->s) && elapsed_ms(t0) < 5000)
		sleep_ms(5);
	int64_t ms = elapsed_ms(t0);
	printf("pg_nodes: blocked listener stopped trusting its cache after %lld ms\n",
	       (long long)ms);
	assert_true(ms <= PG_LEASE_TRUST_MS + 50);
	exec_ok(c, "ROLLBACK");
	wait_trusted(&n->s, 3000);
	fake_stop(n);
	PQfinish(c);
}

/* One batch with duplicates: equal (bucket, tag) pairs inside it are resolved
 * before the statement (the first FRESH, the later USED); the same nonce
 * with another Timestamp (another bucket) is another row; each member gets
 * its own account's label. */
static void test_admit_batch_duplicates(void **state)
{
	PGconn *c = db_connect();
	exec_ok(c, "INSERT INTO account_version VALUES (21, 0, 4), (22, 3, 9)");
	int64_t now = time_now_ms() / 1000, v0 = query_i64(c, "SELECT coalesce(sum(v), 0) FROM "
							      "account_version WHERE account_id = 0");
	struct store_admission a[6] = {
	    adm("LTAIdup", "same", now, 21), adm("LTAIdup", "other", now, 22),
	    adm("LTAIdup", "same", now, 22), adm("LTAIdup", "other", now - 600, 21),
	    adm("LTAIdup", "same", now, 21), adm("LTAIdup", "third", now, 21)};
	struct pg_admit_item it[6];
	for (int i = 0; i < 6; i++)
		pg_admit_item_of(&a[i], i != 5, &it[i]);
	assert_true(pg_admit_batch(c, it, 6));
	const enum store_admit_result want[6] = {STORE_ADMIT_FRESH, STORE_ADMIT_FRESH,
						 STORE_ADMIT_USED,  STORE_ADMIT_FRESH,
						 STORE_ADMIT_USED,  STORE_ADMIT_FRESH};
	for (int i = 0; i < 6; i++)
		assert_int_equal(it[i].result, want[i]);
	assert_int_equal(it[0].version, 4 + v0);
	assert_int_equal(it[1].version, 9 + v0);
	assert_int_equal(it[3].version, 4 + v0);
	assert_int_equal(it[5].version, 0); /* no label wanted */
	/* The same batch again: all of it is a replay now. */
	for (int i = 0; i < 6; i++)
		pg_admit_item_of(&a[i], true, &it[i]);
	assert_true(pg_admit_batch(c, it, 6));
	for (int i = 0; i < 6; i++)
		assert_int_equal(it[i].result, STORE_ADMIT_USED);
	PQfinish(c);
}

/* The fast form (a plain INSERT, every nonce fresh) and its fallback: a batch
 * holding one replay runs again with ON CONFLICT, its fresh members still
 * FRESH (the failed statement inserted nothing) with their labels; the next
 * PG_ADMIT_CAREFUL_BATCHES batches skip the fast form, the one after tries
 * it again. */
static void admit_n(PGconn *c, const char *who, const char *const nonces[], size_t n,
		    int64_t acct, enum store_admit_result want_first, uint64_t want_version)
{
	int64_t now = time_now_ms() / 1000;
	struct pg_admit_item it[8];
	assert_true(n <= 8);
	for (size_t i = 0; i < n; i++) {
		struct store_admission a = adm(who, nonces[i], now, acct);
		pg_admit_item_of(&a, true, &it[i]);
	}
	assert_true(pg_admit_batch(c, it, n));
	assert_int_equal(it[0].result, want_first);
	for (size_t i = 1; i < n; i++) {
		assert_int_equal(it[i].result, STORE_ADMIT_FRESH);
		assert_int_equal(it[i].version, want_version);
	}
}

static void test_admit_fast_form_fallback(void **state)
{
	PGconn *c = db_connect();
	exec_ok(c, "INSERT INTO account_version VALUES (41, 0, 6)");
	uint64_t v = 6 + (uint64_t)query_i64(c, "SELECT coalesce(sum(v), 0) FROM account_version "
						"WHERE account_id = 0");
	char nonce[PG_ADMIT_CAREFUL_BATCHES + 8][16];
	for (int i = 0; i < PG_ADMIT_CAREFUL_BATCHES + 8; i++)
		snprintf(nonce[i], sizeof(nonce[i]), "ff-%d", i);
	/* Earlier tests' replays may have left the careful batches running. */
	for (int i = 0; i < PG_ADMIT_CAREFUL_BATCHES; i++)
		admit_n(c, "LTAIdrain", (const char *const[]){nonce[i]}, 1, 41, STORE_ADMIT_FRESH, v);
	uint64_t f0 = pg_admit_fallbacks();
	admit_n(c, "LTAIfast", (const char *const[]){"a", "b", "c"}, 3, 41, STORE_ADMIT_FRESH, v);
	assert_int_equal(pg_admit_fallbacks(), f0);
	/* "b" again, among fresh ones: the fast form fails as a whole, the batch
	 * runs again, and only the three fresh rows are there. */
	int64_t rows = query_i64(c, "SELECT count(*) FROM nonce");
	admit_n(c, "LTAIfast", (const char *const[]){"b", "d", "e", "f"}, 4, 41, STORE_ADMIT_USED, v);
	assert_int_equal(pg_admit_fallbacks(), f0 + 1);
	assert_int_equal(query_i64(c, "SELECT count(*) FROM nonce"), rows + 3);
	/* Careful now: a replay costs no second statement. */
	admit_n(c, "LTAIfast", (const char *const[]){"d", "g"}, 2, 41, STORE_ADMIT_USED, v);
	assert_int_equal(pg_admit_fallbacks(), f0 + 1);
	for (int i = 0; i < PG_ADMIT_CAREFUL_BATCHES - 2; i++)
		admit_n(c, "LTAIcareful", (const char *const[]){nonce[i]}, 1, 41, STORE_ADMIT_FRESH, v);
	/* The last careful batch, then the fast form again. */
	admit_n(c, "LTAIfast", (const char *const[]){"e", "h"}, 2, 41, STORE_ADMIT_USED, v);
	assert_int_equal(pg_admit_fallbacks(), f0 + 1);
	admit_n(c, "LTAIfast", (const char *const[]){"f", "i"}, 2, 41, STORE_ADMIT_USED, v);
	assert_int_equal(pg_admit_fallbacks(), f0 + 2);
	PQfinish(c);
}

/* Many threads admitting through one store (the batcher), each request sent
 * by several threads at once, over several rounds: exactly one acceptance per
 * request, the right label for each accepted one, and batches really formed. */
enum { CONC_THREADS = 24, CONC_NONCES = 300, CONC_COPIES = 3 };
struct conc {
	struct store *s;
	int index;
	_Atomic int *fresh;
	_Atomic int other, wrong_label;
};

static void *conc_main(void *arg)
{
	struct conc *c = arg;
	int64_t now = time_now_ms() / 1000;
	/* Thread t sends nonce k when k % (THREADS / COPIES) == t % (THREADS / COPIES):
	 * each nonce by COPIES threads, at about the same moment. */
	int groups = CONC_THREADS / CONC_COPIES;
	for (int k = 0; k < CONC_NONCES; k++) {
		if (k % groups != c->index % groups)
			continue;
		char nonce[32];
		snprintf(nonce, sizeof(nonce), "conc-%d", k);
		int64_t acct = 31 + k % 2;
		struct store_admission a = adm("LTAIconc", nonce, now, acct);
		uint64_t v = 12345;
		enum store_admit_result r = store_admit(c->s, &a, k % 3 ? &v : NULL);
		if (r == STORE_ADMIT_FRESH) {
			atomic_fetch_add(&c->fresh[k], 1);
			uint64_t want = k % 3 ? (acct == 31 ? 50 : 70) + 1 : 12345;
			if (v != want)
				atomic_fetch_add(&c->wrong_label, 1);
		} else if (r != STORE_ADMIT_USED) {
			atomic_fetch_add(&c->other, 1);
		}
	}
	return NULL;
}

static void test_admit_concurrent_store(void **state)
{
	PGconn *db = db_connect();
	exec_ok(db, "DELETE FROM account_version");
	exec_ok(db, "INSERT INTO account_version VALUES (31, 0, 20), (31, 1, 30), (32, 0, 70), "
		    "(0, 0, 1)");
	struct store *s = store_open(db_uri);
	assert_non_null(s);
	static _Atomic int fresh[CONC_NONCES];
	for (int k = 0; k < CONC_NONCES; k++)
		atomic_store(&fresh[k], 0);
	struct conc c[CONC_THREADS];
	pthread_t t[CONC_THREADS];
	for (int i = 0; i < CONC_THREADS; i++) {
		c[i] = (struct conc){.s = s, .index = i, .fresh = fresh};
		pthread_create(&t[i], NULL, conc_main, &c[i]);
	}
	int other = 0, wrong = 0;
	for (int i = 0; i < CONC_THREADS; i++) {
		pthread_join(t[i], NULL);
		other += c[i].other;
		wrong += c[i].wrong_label;
	}
	for (int k = 0; k < CONC_NONCES; k++)
		if (atomic_load(&fresh[k]) != 1)
			fail_msg("nonce %d accepted %d times", k, atomic_load(&fresh[k]));
	assert_int_equal(other, 0);
	assert_int_equal(wrong, 0);
	struct pg_admitq_stats st;
	assert_true(store_pg_admit_stats(s, &st));
	assert_int_equal(st.admissions, CONC_NONCES * CONC_COPIES);
	assert_true(st.max_batch > 1);
	assert_int_equal(st.timeouts, 0);
	printf("pg_nodes: %llu admissions in %llu batches (at most %llu)\n",
	       (unsigned long long)st.admissions, (unsigned long long)st.batches,
	       (unsigned long long)st.max_batch);
	store_close(s);
	exec_ok(db, "DELETE FROM account_version");
	PQfinish(db);
}

/* A statement that cannot finish (its partition locked by another session)
 * is given up after PG_ADMIT_EXEC_MS: every member refused, the connection
 * reported unusable (it is still inside the command), no hang. */
static void test_admit_exec_bound(void **state)
{
	PGconn *lock = db_connect(), *c = db_connect();
	int64_t now = time_now_ms() / 1000;
	struct store_admission a = adm("LTAIlock", "blocked", now, 0);
	char sql[128];
	snprintf(sql, sizeof(sql), "LOCK TABLE nonce_%u IN ACCESS EXCLUSIVE MODE",
		 pg_nonce_bucket(a.expires_s));
	exec_ok(lock, "BEGIN");
	exec_ok(lock, sql);
	struct pg_admit_item it;
	pg_admit_item_of(&a, false, &it);
	int64_t t0 = time_mono_us();
	assert_false(pg_admit_batch(c, &it, 1));
	int64_t ms = (time_mono_us() - t0) / 1000;
	assert_int_equal(it.result, STORE_ADMIT_UNAVAIL);
	assert_true(ms >= PG_ADMIT_EXEC_MS - 50 && ms < PG_ADMIT_EXEC_MS + 1000);
	exec_ok(lock, "ROLLBACK");
	PQfinish(c);
	/* The abandoned statement may still complete on the server (so a retry of
	 * that very request may be a replay: fail closed); a new connection admits
	 * new requests. */
	c = db_connect();
	struct store_admission b = adm("LTAIlock", "after", now, 0);
	assert_int_equal(pg_admit(c, &b, NULL), STORE_ADMIT_FRESH);
	PQfinish(c);
	PQfinish(lock);
}

/* The store's asynchronous admission while PostgreSQL hangs (the nonce
 * partition locked by another session): every admission submitted is
 * answered STORE_ADMIT_UNAVAIL (503) off the submitting thread within
 * PG_ADMIT_WAIT_MS + PG_ADMIT_EXEC_MS, none twice; once the database
 * answers again, new admissions are FRESH. */
struct hung_rec {
	_Atomic int answers, unavail, fresh;
	_Atomic int64_t last_us;
};

static void hung_done(void *arg, enum store_admit_result r, uint64_t version)
{
	struct hung_rec *h = arg;
	(void)version;
	atomic_store(&h->last_us, time_mono_us());
	atomic_fetch_add(r == STORE_ADMIT_UNAVAIL ? &h->unavail : &h->fresh, 1);
	atomic_fetch_add(&h->answers, 1);
}

static void test_admit_async_hung(void **state)
{
	enum { N = 100 };
	struct store *s = store_open(db_uri);
	assert_non_null(s);
	PGconn *lock = db_connect();
	int64_t now = time_now_ms() / 1000;
	struct store_admission a = adm("LTAIhung", "x", now, 0);
	char sql[128];
	snprintf(sql, sizeof(sql), "LOCK TABLE nonce_%u IN ACCESS EXCLUSIVE MODE",
		 pg_nonce_bucket(a.expires_s));
	exec_ok(lock, "BEGIN");
	exec_ok(lock, sql);
	static struct hung_rec h;
	memset(&h, 0, sizeof(h));
	int64_t t0 = time_mono_us();
	for (int i = 0; i < N; i++) {
		char nonce[32];
		snprintf(nonce, sizeof(nonce), "hung-%d", i);
		a = adm("LTAIhung", nonce, now, 0);
		store_admit_async(s, &a, i % 2 == 0, hung_done, &h);
		if (i == 0)
			sleep_ms(100); /* the first batch hangs; the others queue behind it */
	}
	while (atomic_load(&h.answers) < N &&
	       time_mono_us() - t0 < (int64_t)(PG_ADMIT_WAIT_MS + PG_ADMIT_EXEC_MS + 3000) * 1000)
		sleep_ms(10);
	assert_int_equal(atomic_load(&h.answers), N);
	assert_int_equal(atomic_load(&h.unavail), N);
	int64_t ms = (atomic_load(&h.last_us) - t0) / 1000;
	printf("pg_nodes: %d admissions refused within %lld ms of a hung statement\n", N,
	       (long long)ms);
	assert_true(ms < PG_ADMIT_WAIT_MS + PG_ADMIT_EXEC_MS + 500);
	exec_ok(lock, "ROLLBACK");
	PQfinish(lock);
	struct store_admission b = adm("LTAIhung", "after", now, 0);
	enum store_admit_result r = STORE_ADMIT_UNAVAIL;
	for (int i = 0; i < 50 && r == STORE_ADMIT_UNAVAIL; i++) { /* the health thread reconnects */
		r = store_admit(s, &b, NULL);
		if (r == STORE_ADMIT_UNAVAIL)
			sleep_ms(100);
	}
	assert_int_equal(r, STORE_ADMIT_FRESH);
	store_close(s);
}

/* Closing a store with admissions queued behind a hung statement: each is
 * answered (refused) exactly once by store_close, nothing leaks. */
static void test_admit_async_close_pending(void **state)
{
	enum { N = 200 };
	struct store *s = store_open(db_uri);
	assert_non_null(s);
	PGconn *lock = db_connect();
	int64_t now = time_now_ms() / 1000;
	struct store_admission a = adm("LTAIclose", "x", now, 0);
	char sql[128];
	snprintf(sql, sizeof(sql), "LOCK TABLE nonce_%u IN ACCESS EXCLUSIVE MODE",
		 pg_nonce_bucket(a.expires_s));
	exec_ok(lock, "BEGIN");
	exec_ok(lock, sql);
	static struct hung_rec h;
	memset(&h, 0, sizeof(h));
	for (int i = 0; i < N; i++) {
		char nonce[32];
		snprintf(nonce, sizeof(nonce), "close-%d", i);
		a = adm("LTAIclose", nonce, now, 7);
		store_admit_async(s, &a, true, hung_done, &h);
	}
	sleep_ms(100);
	store_close(s); /* waits for the hung batch (its bound), refuses the rest */
	assert_int_equal(atomic_load(&h.answers), N);
	assert_int_equal(atomic_load(&h.unavail), N);
	exec_ok(lock, "ROLLBACK");
	PQfinish(lock);
}

static int pg_db_tests(void)
{
	const char *uri = getenv("SAGFLOW_TEST_PG");
	if (!uri || !*uri) {
		printf("pg_nodes: SKIP database tests: SAGFLOW_TEST_PG is not set "
		       "(scripts/pg-test.sh sets it)\n");
		return 0;
	}
	if (db_setup(uri) != 0)
		return 1;
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_admit_across_nodes),
	    cmocka_unit_test(test_admit_race),
	    cmocka_unit_test(test_admit_batch_duplicates),
	    cmocka_unit_test(test_admit_fast_form_fallback),
	    cmocka_unit_test(test_admit_concurrent_store),
	    cmocka_unit_test(test_admit_exec_bound),
	    cmocka_unit_test(test_admit_async_hung),
	    cmocka_unit_test(test_admit_async_close_pending),
	    cmocka_unit_test(test_horizon_when_marker_missing),
	    cmocka_unit_test(test_sweep),
	    cmocka_unit_test_teardown(test_key_wait_live_nodes, fake_teardown),
	    cmocka_unit_test_teardown(test_key_wait_stopped_node, fake_teardown),
	    cmocka_unit_test_teardown(test_listener_terminated, fake_teardown),
	    cmocka_unit_test_teardown(test_lease_expiry, fake_teardown),
	    cmocka_unit_test(test_horizon_after_immediate_stop),
	};
	int failed = cmocka_run_group_tests_name("pg_nodes_db", tests, NULL, NULL);
	db_teardown(uri);
	return failed;
}
#endif

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_bucket),
	    cmocka_unit_test(test_sweep_never_truncates_a_live_window),
	    cmocka_unit_test(test_sweep_frees_partitions),
	    cmocka_unit_test(test_tag),
	    cmocka_unit_test(test_horizon_rule),
	    cmocka_unit_test(test_admitq_combines),
	    cmocka_unit_test(test_admitq_bounded_wait),
	    cmocka_unit_test(test_admitq_async),
	    cmocka_unit_test(test_admitq_free_pending),
	};
	int failed = cmocka_run_group_tests_name("pg_nodes", tests, NULL, NULL);
#ifdef SAGFLOW_POSTGRES
	failed += pg_db_tests();
#else
	printf("pg_nodes: SKIP database tests: built without libpq (-Dpostgres)\n");
#endif
	return failed;
}
