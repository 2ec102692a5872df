/* The PostgreSQL backend (docs/store.md, "PostgreSQL"): one read connection
 * per reading thread, K writer threads each with its own connection doing
 * group commit, a health thread that notices an unreachable server and
 * reconnects with backoff, migrations under an advisory lock.
 *
 * Why K writers routed by account rather than one: PostgreSQL groups the
 * fsyncs of concurrent commits itself, so K connections committing at once
 * share them; and routing every job of one account to one writer keeps that
 * account's hot rows (flowlog_counts, account_version) on one connection,
 * where a batch updates them once instead of two connections queueing behind
 * each other's commit (spec scale-out §3.1: 3.5 x fewer batches).
 *
 * Why pipeline mode for the batches: a job's own statements depend on each
 * other's answers, but the fixed commands around them do not, so BEGIN,
 * SAVEPOINT and RELEASE ride with the next statement and the version bump
 * with COMMIT: one round trip per statement plus one per batch, instead of
 * two more per job and three more per batch (§3: pipelined batches were the
 * fastest case measured). A job's last statement whose answer decides only
 * the job's own result (pg_tx_exec_deferred) is sent without waiting: its
 * answer is read at the next round trip, of a later job or of COMMIT. */
#include "store/pg_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "core/timeutil.h"
#include "core/xmalloc.h"
#include "metrics/metrics.h"
#include "store/migrations.h"
#include "store/pg_admit.h"
#include "store/pg_admitq.h"
#include "store/pg_listen.h"
#include "store/store_pg.h"

#define PG_BATCH_MAX 32		  /* jobs per transaction: <= 64 subtransactions (spec §3) */
#define PG_CONNECT_TIMEOUT "5"	  /* seconds, unless the conninfo says otherwise */
#define PG_BACKOFF_MIN_US 100000  /* reconnect backoff: 100 ms ... */
/* ... doubling up to 1 s, plus up to 25 % jitter: a node is back within about a
 * second of the server (issue 13 asks for 5 s; 5 s of backoff alone missed it),
 * and a connect attempt a second is nothing to a server that is down. */
#define PG_BACKOFF_MAX_US 1000000
#define PG_PING_US 1000000	  /* the health thread checks a live server this often */
/* A writer connection that answered this recently counts as alive for its
 * next batch: the batch's first statement is deferred too, so the whole batch
 * is one round trip (pipe_begin). */
#define PG_LIVE_US 100000
/* The writer's linger (linger): the jobs a batch must have had for the next
 * to wait for as many, and the longest that wait lasts. Measured with 2 nodes
 * x 32 connections: batches of ~15 became ~29 and CPU per create fell to one
 * node's (docs/benchmarks.md "Session 9"). */
#define PG_LINGER_MIN 8
#define PG_LINGER_US 2000
/* After a batch's count raise hit the quota, this many batches check it per
 * job: an account at its quota does not run every batch twice. */
#define PG_STRICT_BATCHES 16
#define PG_SQLSTATE_QUOTA "SGQ01"	   /* raised by flowlog_counts_raise (sql/pg/0009) */
#define PG_MIGRATION_LOCK 0x7361676d6967LL /* pg_advisory_xact_lock key: "sagmig" */
#define PG_APP_NAME "sagflow"
/* Fixed commands waiting for the next statement: at most BEGIN, a job's
 * ROLLBACK TO and RELEASE, the next job's SAVEPOINT (every statement sends
 * them). */
#define PG_PENDING_MAX 4
#define PG_PIPE_MAX (PG_PENDING_MAX + 2 * PG_TX_STMTS_MAX + 1) /* + PREPAREs, statements, COMMIT */
/* Queries sent and not yet answered: per job that sent only its deferred
 * statement, its fixed commands, a PREPARE and the statement; then one
 * round trip's worth. */
#define PG_INFLIGHT_MAX (PG_BATCH_MAX * (PG_PENDING_MAX + 2) + PG_PIPE_MAX)
#define PG_SLOT_LOCK 0x73616773 /* pg_try_advisory_lock(class, slot): "sags" */
#define PG_SLOTS (32767 / STORE_PG_WRITERS_MAX) /* shard = slot x 64 + writer: a smallint */

struct pg_store;
struct pjob;

struct pstmt {
	char *sql; /* our own copy, the cache key */
	bool prepared;
};

/* A query sent in pipeline mode, until its answer was read. */
enum pent_kind { PENT_FIXED, PENT_PREPARE, PENT_STMT };
struct pent {
	const char *what;
	enum pent_kind kind;
	PGresult *r;
	struct pstmt *slot; /* PENT_PREPARE: marked prepared until its answer says no */
	/* A deferred statement (and its PREPARE): the job whose result its
	 * answer decides, through check(ctx). NULL otherwise. */
	struct pjob *job;
	pg_check_fn check;
	void *ctx;
};

/* One connection and its statement cache; the transaction handed to store
 * functions is the connection itself (tx is the first member). */
struct pconn {
	struct store_tx tx;
	PGconn *db;
	struct pg_store *owner;
	bool in_tx, writing, keys_changed;
	int64_t keys_version; /* the store_epoch 'keys' a key change of this batch set */
	bool broken; /* the connection was lost: reconnect before the next use */
	bool retry;  /* the running job hit a deadlock/serialization/unique failure */
	/* Writers only, during a batch: the connection is in pipeline mode and
	 * the fixed commands (BEGIN, SAVEPOINT, RELEASE...) wait in pending to
	 * go out with the next statement, in the same round trip. */
	bool pipe;
	bool job_failed;   /* a statement of the running job failed (pipeline mode) */
	bool batch_failed; /* a fixed command of the batch failed: nothing commits */
	int npending;
	const char *pending[PG_PENDING_MAX];
	/* Sent and not yet answered (pipeline mode); qsent: every send of them
	 * was accepted by libpq. */
	int nq;
	bool qsent;
	struct pent q[PG_INFLIGHT_MAX];
	struct pjob *job;   /* the running job (writers) */
	bool job_deferred;  /* it sent a deferred statement: its last */
	bool confirmed;	    /* a round trip of this batch came back: the connection lives */
	bool strict;	     /* this batch raises flowlog_counts per job (pwriter.strict) */
	int64_t answered_us; /* time_mono_us of its last round trip that came back */
	/* The job whose deferred statement failed (the pipeline skipped what
	 * followed it) and whether it is to run again; NULL: none. */
	struct pjob *defer_failed;
	bool defer_retry;
	char sqlstate[6];
	struct pstmt cache[PG_STMT_CACHE_MAX];
	struct pconn *next, *next_free;
};

/* A job's store_lock_hint, copied (store_sag.h). */
struct pg_hint {
	int64_t account;
	char region[DOMAIN_REGION_MAX + 1];
	char flowlog_id[DOMAIN_ID_MAX + 1];
	char sag_id[DOMAIN_ID_MAX + 1];
	bool devices;
};

struct pjob {
	store_fn fn;
	void *arg;
	store_done_fn done;
	int64_t scope;
	int64_t queued_us; /* time_mono_us when queued */
	int rc, tries;
	int drc; /* what its deferred statement's answer decided (0: none or success) */
	/* A flow log it inserted counts toward this owner's flowlog_counts raise
	 * at COMMIT (pg_tx_count_in_batch); count_region NULL: none. */
	int64_t count_account, count_quota;
	const char *count_region;
	/* hinted: hint holds its lookup; pf: that lookup's answers, read at the
	 * start of the batch (prefetch), valid for this batch only. */
	bool hinted, pf_ready;
	struct pg_hint hint;
	PGresult *pf[PG_TX_STMTS_MAX];
	struct pjob *next;
};

struct pwriter {
	struct pg_store *s;
	int index;
	pthread_t th;
	pthread_cond_t cv;
	struct pjob *head, **tailp;
	size_t queued;
	bool done;
	/* Batches still to run with one quota check per job, after a batch's
	 * count raise found an owner at its quota (PG_STRICT_BATCHES). */
	int strict;
	size_t last_batch; /* the size of its last batch (linger) */
	struct pconn *conn;
};

struct pg_store {
	struct store base;
	char *conninfo;
	int nwriters;
	atomic_int shard_base; /* this node's slot x STORE_PG_WRITERS_MAX (slot_take) */
	atomic_int slot;       /* the slot the health connection holds, or -1 */
	atomic_int peers;      /* other nodes with a live lease, at the last ping (peers_set) */
	bool node;		/* serve: take a slot (store_options.node) */
	pthread_mutex_t mu; /* queues, reader lists, stats, health state */
	pthread_cond_t cv_health;
	struct pwriter *w;
	bool stopping, health_stop, health_started, migrated;
	atomic_bool up;
	pthread_t health;
	pthread_key_t reader_key;
	struct pconn *readers, *free_readers;
	struct store_stats stats;
	_Atomic uint64_t round_trips; /* the writers' (stats.round_trips) */
	_Atomic uint64_t strict_redos; /* stats.strict_redos */
	struct pg_listen *listen; /* serve's node membership (pg_listen.h), or NULL */
	struct pg_admitq *admitq; /* store_admit's batcher (pg_admitq.h) */
};

static const struct store_ops pg_ops;
static void admit_run(void *arg, struct pg_admit_item *it, size_t n);
static __thread const struct pg_store *pg_writer_self;

/* ---- values and columns ---- */

void pg_p_text(struct pg_params *p, const char *s)
{
	if (p->n >= PG_MAX_PARAMS)
		fatal("store: more than %d values for one statement", PG_MAX_PARAMS);
	p->v[p->n++] = s;
}

void pg_p_int(struct pg_params *p, int64_t v)
{
	if (p->n >= PG_MAX_PARAMS)
		fatal("store: more than %d values for one statement", PG_MAX_PARAMS);
	snprintf(p->num[p->n], PG_NUM_MAX, "%" PRId64, v);
	p->v[p->n] = p->num[p->n];
	p->n++;
}

int64_t pg_int(const PGresult *r, int row, int col)
{
	if (PQgetisnull(r, row, col))
		return 0;
	/* The server's own text for an integer column: digits and a sign. */
	return strtoll(PQgetvalue(r, row, col), NULL, 10);
}

int pg_copy(const PGresult *r, int row, int col, char *out, size_t cap)
{
	if (PQgetisnull(r, row, col))
		return -1;
	int n = PQgetlength(r, row, col);
	if (n < 0 || (size_t)n >= cap)
		return -1;
	memcpy(out, PQgetvalue(r, row, col), (size_t)n);
	out[n] = '\0';
	return 0;
}

int64_t pg_changes(PGresult *r)
{
	return strtoll(PQcmdTuples(r), NULL, 10);
}

/* ---- connections and the statement cache ---- */

static struct pconn *conn_of(struct store_tx *tx)
{
	return (struct pconn *)tx;
}

static unsigned sql_hash(const char *sql)
{
	unsigned h = 2166136261u; /* FNV-1a, as the SQLite cache */
	for (const unsigned char *p = (const unsigned char *)sql; *p; p++)
		h = (h ^ *p) * 16777619u;
	return h;
}

static void conn_forget_statements(struct pconn *c)
{
	for (int i = 0; i < PG_STMT_CACHE_MAX; i++) {
		free(c->cache[i].sql);
		c->cache[i].sql = NULL;
		c->cache[i].prepared = false;
	}
}

static void conn_disconnect(struct pconn *c)
{
	PQfinish(c->db);
	c->db = NULL;
	c->broken = false;
	c->answered_us = 0;
	conn_forget_statements(c); /* prepared statements live in the session */
}

static bool conn_lost(const struct pconn *c)
{
	return !c->db || PQstatus(c->db) != CONNECTION_OK;
}

/* SQLSTATEs after which the job runs again in the next batch: its savepoint
 * is rolled back, and the other transaction has finished by then. */
static bool sqlstate_retry(const char *st)
{
	static const char *const codes[] = {"40P01", "40001", "23505"};
	for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
		if (!strcmp(st, codes[i]))
			return true;
	return false;
}

static void conn_note_failure(struct pconn *c, const PGresult *r, const char *what)
{
	const char *st = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
	snprintf(c->sqlstate, sizeof(c->sqlstate), "%s", st ? st : "");
	/* Class 08 is a connection exception, 57P0x the server shutting down
	 * or starting (the connection is about to go); no SQLSTATE at all is an
	 * error of libpq's own (a send that hit a closed socket leaves the
	 * status CONNECTION_OK for a while); a bad status is a connection lost
	 * under us. In every case nothing more can be done on it. */
	if (conn_lost(c) || !c->sqlstate[0] || !strncmp(c->sqlstate, "08", 2) ||
	    !strncmp(c->sqlstate, "57P", 3))
		c->broken = true;
	else if (c->writing &&
		 (sqlstate_retry(c->sqlstate) || !strcmp(c->sqlstate, PG_SQLSTATE_QUOTA)))
		c->retry = true;
	const char *msg = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	if (!msg)
		msg = c->db ? PQerrorMessage(c->db) : "no connection";
	/* A retried job logs at info: it is expected under contention. */
	if (c->retry)
		log_info("store: %s: %s (SQLSTATE %s; the job runs again)", what, msg, c->sqlstate);
	else
		log_err("store: %s: %s%s%s", what, msg, c->sqlstate[0] ? " SQLSTATE " : "",
			c->sqlstate);
}

/* The cache slot of sql, prepared on this session when new. */
static struct pstmt *conn_stmt(struct pconn *c, const char *sql, int *index)
{
	unsigned mask = PG_STMT_CACHE_MAX - 1, i = sql_hash(sql) & mask;
	for (unsigned n = 0; n < PG_STMT_CACHE_MAX; n++, i = (i + 1) & mask) {
		struct pstmt *slot = &c->cache[i];
		if (!slot->sql || !strcmp(slot->sql, sql)) {
			*index = (int)i;
			return slot;
		}
	}
	log_err("store: more than %d distinct statements on one connection", PG_STMT_CACHE_MAX);
	return NULL;
}

_Static_assert((PG_STMT_CACHE_MAX & (PG_STMT_CACHE_MAX - 1)) == 0,
	       "the statement cache is an open-addressing table of a power of two");

static void stmt_name(int index, char name[16])
{
	snprintf(name, 16, "s%d", index);
}

static void stmt_prepared(struct pstmt *slot, const char *sql)
{
	if (!slot->sql)
		slot->sql = xstrdup(sql);
	slot->prepared = true;
}

static bool result_ok(const PGresult *r)
{
	ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
	return st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK;
}

/* ---- pipeline mode (writers): one round trip per statement, the fixed
 * commands riding along ---- */

/* The fixed commands of a batch. Compared by address: pending[] holds these. */
static const char SQL_BEGIN[] = "BEGIN", SQL_SAVEPOINT[] = "SAVEPOINT job",
		  SQL_RELEASE[] = "RELEASE SAVEPOINT job",
		  SQL_ROLLBACK_TO[] = "ROLLBACK TO SAVEPOINT job", SQL_COMMIT[] = "COMMIT",
		  SQL_ROLLBACK[] = "ROLLBACK";

static void pipe_reset(struct pconn *c)
{
	for (int i = 0; i < c->nq; i++)
		PQclear(c->q[i].r);
	c->nq = 0;
	c->qsent = true;
}

static struct pent *pipe_add(struct pconn *c, const char *what, enum pent_kind kind)
{
	if (c->nq == PG_INFLIGHT_MAX)
		fatal("store: more than %d queries in flight", PG_INFLIGHT_MAX);
	struct pent *e = &c->q[c->nq++];
	*e = (struct pent){.what = what, .kind = kind};
	return e;
}

/* Sends a command without parameters. */
static void pipe_cmd(struct pconn *c, const char *sql)
{
	pipe_add(c, sql, PENT_FIXED);
	c->qsent = c->qsent && PQsendQueryParams(c->db, sql, 0, NULL, NULL, NULL, NULL, 0) == 1;
}

/* The pending fixed commands go first: they belong before whatever comes
 * next. */
static void pipe_start(struct pconn *c)
{
	for (int i = 0; i < c->npending; i++)
		pipe_cmd(c, c->pending[i]);
	c->npending = 0;
}

/* Sends the prepared statement of slot (a PREPARE first when new, counted as
 * prepared from then on: a later query of this pipeline may use it); returns
 * the index of its answer. */
static int pipe_stmt_queue(struct pconn *c, struct pstmt *slot, int index, const char *sql,
			   const struct pg_params *p, const char *what)
{
	char name[16];
	stmt_name(index, name);
	if (!slot->prepared) {
		pipe_add(c, what, PENT_PREPARE)->slot = slot;
		c->qsent = c->qsent && PQsendPrepare(c->db, name, sql, 0, NULL) == 1;
		stmt_prepared(slot, sql);
	}
	pipe_add(c, what, PENT_STMT);
	c->qsent = c->qsent && PQsendQueryPrepared(c->db, name, p ? p->n : 0, p ? p->v : NULL,
						   NULL, NULL, 0) == 1;
	return c->nq - 1;
}

/* Reads the one answer of a query and the NULL that ends it; false when
 * the connection failed instead. */
static bool pipe_read_one(struct pconn *c, PGresult **out)
{
	*out = PQgetResult(c->db);
	if (!*out)
		return false;
	PGresult *end = PQgetResult(c->db);
	PQclear(end);
	return !end && !conn_lost(c);
}

/* A deferred statement failed: its job is answered by its check (or runs
 * again, for a deadlock and the like), and the running job is not to blame
 * for what the pipeline skipped after it. */
static void pipe_defer_failed(struct pconn *c, const struct pent *e)
{
	int rc = e->check(NULL, c->sqlstate, e->ctx);
	e->job->drc = rc ? rc : STORE_EIO;
	c->defer_failed = e->job;
	c->defer_retry = c->retry && rc == STORE_EIO;
	c->retry = false;
}

/* What the answers of the round trip mean, in order: a deferred statement's
 * is handed to its check; the first failure is noted (conn_note_failure) and
 * blamed on the batch (a fixed command), the running job (its statement) or
 * a deferred statement's job. */
static void pipe_answers(struct pconn *c, int bad)
{
	for (int i = 0; i < c->nq; i++) {
		struct pent *e = &c->q[i];
		if (e->kind == PENT_PREPARE && !result_ok(e->r))
			e->slot->prepared = false; /* failed, or skipped after a failure */
		if (i < bad || bad < 0) {
			if (e->job && e->kind == PENT_STMT)
				e->job->drc = e->check(e->r, "", e->ctx);
			continue;
		}
		if (i > bad)
			continue; /* skipped (PGRES_PIPELINE_ABORTED) */
		conn_note_failure(c, e->r, e->what);
		if (e->job)
			pipe_defer_failed(c, e);
		else if (e->kind == PENT_FIXED)
			c->batch_failed = c->job_failed = true;
		else
			c->job_failed = true;
	}
}

/* A Sync, then every answer in flight, in order: one round trip. Returns the
 * index of the first failure, -1 when everything succeeded; the answers stay
 * in c->q until pipe_reset. After an error PostgreSQL skips the rest up to
 * the Sync (PGRES_PIPELINE_ABORTED); inside BEGIN the transaction stays
 * open, aborted, until ROLLBACK (TO SAVEPOINT). */
static int pipe_sync(struct pconn *c)
{
	atomic_fetch_add_explicit(&c->owner->round_trips, 1, memory_order_relaxed);
	metrics_count(store_m_round_trips, 0, 0, 1);
	int bad = -1;
	bool alive = c->qsent && PQpipelineSync(c->db) == 1;
	for (int i = 0; i < c->nq; i++)
		c->q[i].r = NULL;
	for (int i = 0; alive && i < c->nq; i++) {
		alive = pipe_read_one(c, &c->q[i].r);
		if (bad < 0 && !result_ok(c->q[i].r))
			bad = i;
	}
	if (alive) {
		PGresult *sync = PQgetResult(c->db);
		alive = sync && PQresultStatus(sync) == PGRES_PIPELINE_SYNC;
		PQclear(sync);
	}
	if (!alive) {
		c->broken = true;
		for (int i = 0; i < c->nq; i++)
			if (c->q[i].kind == PENT_PREPARE)
				c->q[i].slot->prepared = false;
		conn_note_failure(c, bad >= 0 ? c->q[bad].r : NULL,
				  c->nq ? c->q[bad >= 0 ? bad : 0].what : "pipeline");
		return bad >= 0 ? bad : 0;
	}
	c->confirmed = true;
	c->answered_us = time_mono_us();
	pipe_answers(c, bad);
	return bad;
}

static int conn_ensure(struct pconn *c);

static int pipe_reconnect(struct pconn *c)
{
	conn_disconnect(c);
	if (conn_ensure(c) != 0 || PQenterPipelineMode(c->db) != 1)
		return -1;
	c->sqlstate[0] = '\0';
	c->retry = false;
	return 0;
}

/* Statements of a write job (at most PG_TX_STMTS_MAX) after whatever is in
 * flight, in one round trip: PostgreSQL runs each after the one before has
 * finished, so in READ COMMITTED each takes its snapshot after the locks of
 * the ones before it were granted. A failure of a fixed command fails the
 * batch (batch_failed); one of a statement fails the job (the statements
 * after it are skipped); one of a deferred statement before them fails that
 * statement's job (defer_failed). */
static bool pipe_exec_once(struct pconn *c, const struct pg_stmt *st, int n, PGresult **out)
{
	int index[PG_TX_STMTS_MAX], at[PG_TX_STMTS_MAX];
	struct pstmt *slot[PG_TX_STMTS_MAX];
	for (int k = 0; k < n; k++)
		if (!(slot[k] = conn_stmt(c, st[k].sql, &index[k])))
			return false;
	pipe_start(c);
	for (int k = 0; k < n; k++)
		at[k] = pipe_stmt_queue(c, slot[k], index[k], st[k].sql, st[k].p, st[k].what);
	int bad = pipe_sync(c);
	for (int k = 0; k < n; k++) {
		out[k] = bad < 0 ? c->q[at[k]].r : NULL;
		if (bad < 0)
			c->q[at[k]].r = NULL;
	}
	pipe_reset(c);
	return bad < 0;
}

static bool pipe_exec(struct pconn *c, const struct pg_stmt *st, int n, PGresult **out)
{
	/* Nothing of this batch has been sent yet: only its BEGIN and SAVEPOINT
	 * are pending. */
	bool fresh = !c->confirmed && !c->nq;
	const char *saved[PG_PENDING_MAX];
	int nsaved = c->npending;
	memcpy(saved, c->pending, sizeof(saved));
	bool ok = pipe_exec_once(c, st, n, out);
	if (ok || !fresh || !c->broken)
		return ok;
	/* The connection was dead before this transaction began (the server
	 * restarted while it was idle: libpq notices only now). Nothing ran on
	 * it, so once more on a new one, instead of failing the first batch of
	 * every writer after a restart. */
	if (pipe_reconnect(c) != 0)
		return false;
	c->job_failed = false;
	memcpy(c->pending, saved, sizeof(saved));
	c->npending = nsaved;
	return pipe_exec_once(c, st, n, out);
}

/* A fixed command for the next round trip (PG_PENDING_MAX says why the
 * list never overflows). */
static void pipe_defer(struct pconn *c, const char *sql)
{
	if (c->npending == PG_PENDING_MAX)
		fatal("store: more than %d fixed commands pending", PG_PENDING_MAX);
	c->pending[c->npending++] = sql;
}

/* One statement outside pipeline mode (reads, migrations, the health
 * connection): prepared once, then run. */
static PGresult *plain_exec(struct pconn *c, const struct pg_stmt *st)
{
	int index;
	struct pstmt *slot = conn_stmt(c, st->sql, &index);
	if (!slot)
		return NULL;
	char name[16];
	stmt_name(index, name);
	if (!slot->prepared) {
		PGresult *r = PQprepare(c->db, name, st->sql, 0, NULL);
		if (!result_ok(r)) {
			conn_note_failure(c, r, st->what);
			PQclear(r);
			return NULL;
		}
		PQclear(r);
		stmt_prepared(slot, st->sql);
	}
	const struct pg_params *p = st->p;
	PGresult *r = PQexecPrepared(c->db, name, p ? p->n : 0, p ? p->v : NULL, NULL, NULL, 0);
	if (result_ok(r))
		return r;
	conn_note_failure(c, r, st->what);
	PQclear(r);
	return NULL;
}

int pg_tx_exec_n(struct store_tx *tx, const struct pg_stmt *st, int n, PGresult **out)
{
	struct pconn *c = conn_of(tx);
	for (int k = 0; k < n; k++)
		out[k] = NULL;
	if (n < 1 || n > PG_TX_STMTS_MAX)
		fatal("store: %d statements in one round trip (1..%d)", n, PG_TX_STMTS_MAX);
	if (c->job_deferred)
		fatal("store: %s after a deferred statement (it must be the job's last)", st[0].what);
	if (c->broken || !c->db || c->defer_failed)
		return -1; /* gone, or skipped: the job runs again */
	if (c->pipe)
		return pipe_exec(c, st, n, out) ? 0 : -1;
	for (int k = 0; k < n; k++)
		if (!(out[k] = plain_exec(c, &st[k]))) {
			for (int i = 0; i < k; i++) {
				PQclear(out[i]);
				out[i] = NULL;
			}
			return -1;
		}
	return 0;
}

PGresult *pg_tx_exec(struct store_tx *tx, const char *sql, const struct pg_params *p,
		     const char *what)
{
	struct pg_stmt st = {sql, p, what};
	PGresult *r = NULL;
	return pg_tx_exec_n(tx, &st, 1, &r) == 0 ? r : NULL;
}

/* Not deferred: on a plain connection, outside a job, or for the first
 * statement of a batch (its answer proves the connection alive, so a
 * connection that died while idle is replaced before anything is sent for
 * COMMIT; pipe_exec). */
static int exec_now(struct pconn *c, const char *sql, const struct pg_params *p,
		    const char *what, pg_check_fn check, void *ctx)
{
	PGresult *r = pg_tx_exec(&c->tx, sql, p, what);
	if (r) {
		int rc = check(r, "", ctx);
		PQclear(r);
		return rc;
	}
	int rc = c->broken || c->defer_failed ? STORE_EIO : check(NULL, c->sqlstate, ctx);
	if (rc != STORE_EIO)
		c->retry = false; /* the check answered the failure itself */
	return rc == STORE_EIO ? pg_tx_err(&c->tx) : rc;
}

int pg_tx_exec_deferred(struct store_tx *tx, const char *sql, const struct pg_params *p,
			const char *what, pg_check_fn check, void *ctx)
{
	struct pconn *c = conn_of(tx);
	if (!c->pipe || !c->job || !c->confirmed) {
		int rc = exec_now(c, sql, p, what, check, ctx);
		c->job_deferred = c->pipe; /* the same rule either way */
		return rc;
	}
	if (c->job_deferred)
		fatal("store: %s after a deferred statement (it must be the job's last)", what);
	if (c->broken || !c->db || c->defer_failed)
		return pg_tx_err(tx);
	int index;
	struct pstmt *slot = conn_stmt(c, sql, &index);
	if (!slot)
		return STORE_EIO;
	pipe_start(c);
	int first = c->nq;
	pipe_stmt_queue(c, slot, index, sql, p, what);
	for (int i = first; i < c->nq; i++) {
		c->q[i].job = c->job;
		c->q[i].check = check;
		c->q[i].ctx = ctx;
	}
	c->job_deferred = true;
	return 0;
}

int pg_tx_err(struct store_tx *tx)
{
	return conn_of(tx)->broken ? STORE_EUNAVAIL : STORE_EIO;
}

const char *pg_tx_sqlstate(struct store_tx *tx)
{
	return conn_of(tx)->sqlstate;
}

void pg_tx_no_retry(struct store_tx *tx)
{
	conn_of(tx)->retry = false;
}

bool pg_tx_writing(struct store_tx *tx)
{
	return conn_of(tx)->writing;
}

void pg_tx_keys_changed(struct store_tx *tx, int64_t v)
{
	struct pconn *c = conn_of(tx);
	c->keys_changed = true;
	if (v > c->keys_version)
		c->keys_version = v;
}

/* A statement of our own (BEGIN, SAVEPOINT, COMMIT...): 0 or -1. */
static int conn_cmd(struct pconn *c, const char *sql)
{
	if (c->broken || !c->db)
		return -1;
	PGresult *r = PQexec(c->db, sql);
	int rc = r && PQresultStatus(r) == PGRES_COMMAND_OK ? 0 : -1;
	if (rc)
		conn_note_failure(c, r, sql);
	PQclear(r);
	return rc;
}

/* Session settings: the durability and isolation the backend's guarantees
 * rest on, whatever postgresql.conf or the role say. */
static const char conn_settings[] = "SET synchronous_commit = on; "
				    "SET default_transaction_isolation = 'read committed'; "
				    "SET client_min_messages = warning";

/* Server notices (WARNING: terminating connection ...) go to our log, not
 * to stderr on their own. */
static void conn_notice(void *arg, const char *msg)
{
	size_t n = strnlen(msg, 512);
	while (n && msg[n - 1] == '\n')
		n--;
	log_warn("store: PostgreSQL says: %.*s", (int)n, msg);
}

/* Connects c. The conninfo's own connect_timeout wins over ours (the
 * expanded URI comes after the default in the keyword list). */
static int conn_connect(struct pconn *c, bool quiet)
{
	const char *const keys[] = {"connect_timeout", "fallback_application_name", "dbname", NULL};
	const char *const vals[] = {PG_CONNECT_TIMEOUT, PG_APP_NAME, c->owner->conninfo, NULL};
	conn_disconnect(c);
	c->db = PQconnectdbParams(keys, vals, 1);
	if (!c->db || PQstatus(c->db) != CONNECTION_OK) {
		if (!quiet)
			log_warn("store: cannot connect to PostgreSQL: %s",
				 c->db ? PQerrorMessage(c->db) : "out of memory");
		PQfinish(c->db);
		c->db = NULL;
		return -1;
	}
	PQsetNoticeProcessor(c->db, conn_notice, NULL);
	PGresult *r = PQexec(c->db, conn_settings);
	int rc = r && PQresultStatus(r) == PGRES_COMMAND_OK ? 0 : -1;
	if (rc)
		log_warn("store: PostgreSQL session settings: %s", PQerrorMessage(c->db));
	PQclear(r);
	if (rc)
		conn_disconnect(c);
	return rc;
}

static struct pconn *conn_new(struct pg_store *s)
{
	struct pconn *c = xcalloc(1, sizeof(*c));
	c->tx.ops = &pg_ops;
	c->owner = s;
	return c;
}

static void conn_free(struct pconn *c)
{
	if (!c)
		return;
	conn_disconnect(c);
	free(c);
}

/* ---- health: noticing an unreachable server, reconnecting with backoff ---- */

static void mark_down(struct pg_store *s)
{
	if (atomic_exchange(&s->up, false))
		log_warn(
		    "store: PostgreSQL is unreachable; requests fail with 503 until it is back");
	pthread_mutex_lock(&s->mu);
	pthread_cond_signal(&s->cv_health);
	pthread_mutex_unlock(&s->mu);
}

static int migrate(struct pconn *c);

static int64_t backoff_next(int64_t cur)
{
	int64_t next = cur ? cur * 2 : PG_BACKOFF_MIN_US;
	return next > PG_BACKOFF_MAX_US ? PG_BACKOFF_MAX_US : next;
}

static int64_t jitter(int64_t us)
{
	return us + (int64_t)((uint64_t)random() % (uint64_t)(us / 4 + 1));
}

/* Waits on cv_health for up to us; false when the store is closing. */
static bool health_wait(struct pg_store *s, int64_t us)
{
	struct timespec until = time_deadline(CLOCK_REALTIME, us);
	pthread_mutex_lock(&s->mu);
	if (!s->health_stop)
		pthread_cond_timedwait(&s->cv_health, &s->mu, &until);
	bool go = !s->health_stop;
	pthread_mutex_unlock(&s->mu);
	return go;
}

/* The node's shard slot (docs/store.md, "Shard slots"): a session-level
 * advisory lock on the health connection, so N nodes starting at once never
 * hold the same slot, and a node that dies frees its slot with its
 * connection. The slot held before a reconnection is tried first, then the
 * lowest free one, so restarts reuse slots and account_version keeps
 * accounts x slots in use x K rows. Sharing a slot is never wrong (a version
 * is a sum of counters that only grow), only slower: when none is free the
 * node shares slot 0. */
static void slot_take(struct pg_store *s, struct pconn *c)
{
	int prev = atomic_exchange(&s->slot, -1), got = -1;
	for (int i = -1; i < PG_SLOTS && got < 0; i++) {
		int slot = i < 0 ? prev : i;
		if (slot < 0 || (i >= 0 && slot == prev))
			continue;
		struct pg_params p = {0};
		pg_p_int(&p, PG_SLOT_LOCK);
		pg_p_int(&p, slot);
		PGresult *r = pg_tx_exec(&c->tx, "SELECT pg_try_advisory_lock($1::int, $2::int)", &p,
					 "shard slot");
		if (!r) {
			atomic_store(&s->slot, prev); /* the next connection tries it first */
			return;
		}
		if (!strcmp(PQgetvalue(r, 0, 0), "t"))
			got = slot;
		PQclear(r);
	}
	if (got < 0)
		log_warn("store: all %d shard slots are held by other nodes; sharing slot 0",
			 PG_SLOTS);
	else if (got != prev)
		log_info("store: shard slot %d", got);
	atomic_store(&s->shard_base, (got < 0 ? 0 : got) * STORE_PG_WRITERS_MAX);
	atomic_store(&s->slot, got);
}

/* The health thread's ping counts the nodes whose lease is live
 * (pg_listen.h): the writers linger only while another node shares the
 * database (linger). A node's own lease is among them once renewed. */
static const char PEERS_SQL[] = "SELECT count(*) FROM node_lease WHERE lease_until > now()";

static void peers_set(struct pg_store *s, int64_t live)
{
	int64_t others = live - (s->node ? 1 : 0);
	atomic_store_explicit(&s->peers, others > 0 ? (int)others : 0, memory_order_relaxed);
}

/* One look: a ping on the health connection, or, when it is gone, a
 * connection attempt (and the migrations, the first time). Up or down is
 * decided here alone, so a connection that only one thread lost (its backend
 * terminated) does not keep the store down. */
static bool health_check(struct pg_store *s, struct pconn *c)
{
	bool fresh = !c->db;
	if (c->db) {
		PGresult *r = PQexec(c->db, PEERS_SQL);
		bool ok = r && PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1;
		if (ok)
			peers_set(s, pg_int(r, 0, 0));
		PQclear(r);
		if (!ok)
			conn_disconnect(c);
		fresh = !ok;
	}
	if (!c->db && conn_connect(c, !atomic_load(&s->up)) != 0)
		return false;
	if (!s->migrated && migrate(c) != 0) {
		conn_disconnect(c);
		return false;
	}
	s->migrated = true;
	if (fresh && s->node)
		slot_take(s, c);
	if (!atomic_exchange(&s->up, true))
		log_info("store: PostgreSQL is reachable");
	return true;
}

static void *health_main(void *arg)
{
	struct pg_store *s = arg;
	struct pconn *c = conn_new(s);
	int64_t backoff = 0;
	do {
		if (health_check(s, c)) {
			backoff = 0;
		} else {
			mark_down(s);
			backoff = backoff_next(backoff);
		}
	} while (health_wait(s, backoff ? jitter(backoff) : PG_PING_US));
	conn_free(c);
	return NULL;
}

static bool pg_ready(struct store *base)
{
	return atomic_load(&((struct pg_store *)base)->up);
}

/* ---- migrations: once, however many processes start at once ---- */

static int migrate_apply(struct pconn *c, int have)
{
	for (int i = have; i < store_pg_migrations_count; i++) {
		const struct store_migration *m = &store_pg_migrations[i];
		if (conn_cmd(c, m->sql) != 0)
			return -1;
		struct pg_params p = {0};
		pg_p_int(&p, m->version);
		pg_p_text(&p, m->name);
		PGresult *r = pg_tx_exec(&c->tx,
					 "INSERT INTO schema_migrations (version, name) "
					 "VALUES ($1, $2)",
					 &p, "migration record");
		if (!r)
			return -1;
		PQclear(r);
		log_info("store: applied migration %s", m->name);
	}
	return 0;
}

/* Every migration runs in one transaction under a transaction-scoped advisory
 * lock, and the applied versions are read after the lock is held: a process
 * that waited for another's migrations finds them applied. */
static int migrate(struct pconn *c)
{
	if (conn_cmd(c, "BEGIN") != 0)
		return -1;
	int rc = -1;
	PGresult *r = NULL;
	struct pg_params p = {0};
	pg_p_int(&p, PG_MIGRATION_LOCK);
	if (!(r = pg_tx_exec(&c->tx, "SELECT pg_advisory_xact_lock($1)", &p, "migration lock")))
		goto out;
	PQclear(r);
	if (conn_cmd(
		c, "CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY "
		   "KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())") != 0)
		goto out;
	if (!(r = pg_tx_exec(&c->tx, "SELECT coalesce(max(version), 0) FROM schema_migrations",
			     NULL, "schema version")))
		goto out;
	int have = (int)pg_int(r, 0, 0);
	PQclear(r);
	if (have > store_pg_migrations_count) {
		log_err("store: the database has schema version %d, newer than this binary's %d; "
			"refusing to open it",
			have, store_pg_migrations_count);
		goto out;
	}
	if (migrate_apply(c, have) == 0 && conn_cmd(c, "COMMIT") == 0)
		rc = 0;
out:
	if (rc && !conn_lost(c))
		conn_cmd(c, "ROLLBACK");
	return rc; /* prepared statements outlive a transaction: the cache stays valid */
}

/* ---- reads: one connection per thread, one snapshot per store_read ---- */

static void reader_release(void *p)
{
	struct pconn *c = p;
	struct pg_store *s = c->owner;
	pthread_mutex_lock(&s->mu);
	c->next_free = s->free_readers;
	s->free_readers = c;
	pthread_mutex_unlock(&s->mu);
}

static struct pconn *reader_get(struct pg_store *s)
{
	struct pconn *c = pthread_getspecific(s->reader_key);
	if (!c) {
		pthread_mutex_lock(&s->mu);
		c = s->free_readers;
		if (c)
			s->free_readers = c->next_free;
		pthread_mutex_unlock(&s->mu);
	}
	if (!c) {
		c = conn_new(s);
		pthread_mutex_lock(&s->mu);
		c->next = s->readers;
		s->readers = c;
		s->stats.read_conns++;
		pthread_mutex_unlock(&s->mu);
	}
	pthread_setspecific(s->reader_key, c);
	return c;
}

/* A connection ready for a transaction, or NULL (unreachable: fail fast). */
static int conn_ensure(struct pconn *c)
{
	if (!atomic_load(&c->owner->up))
		return -1;
	if (c->db && !c->broken && !conn_lost(c))
		return 0;
	if (conn_connect(c, false) != 0) {
		mark_down(c->owner);
		return -1;
	}
	return 0;
}

/* BEGINs a transaction on c. A connection that turns out dead at BEGIN (the
 * server restarted while it was idle: libpq notices only now) has run
 * nothing, so it is replaced once and BEGIN tried again, instead of failing
 * the first request of every thread after a restart. */
static int conn_begin(struct pconn *c, const char *sql)
{
	if (conn_cmd(c, sql) == 0)
		return 0;
	if (!c->broken)
		return -1;
	conn_disconnect(c);
	if (conn_ensure(c) != 0)
		return -1;
	return conn_cmd(c, sql);
}

static int pg_read(struct store *base, store_fn fn, void *arg)
{
	struct pg_store *s = (struct pg_store *)base;
	struct pconn *c = reader_get(s);
	if (c->in_tx) {
		log_err("store: store_read called inside store_read");
		return STORE_EIO;
	}
	if (conn_ensure(c) != 0)
		return STORE_EUNAVAIL;
	c->writing = false;
	c->sqlstate[0] = '\0';
	/* One snapshot for every statement of fn. */
	if (conn_begin(c, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY") != 0)
		return c->broken || !c->db ? STORE_EUNAVAIL : STORE_EIO;
	c->in_tx = true;
	int rc = fn(&c->tx, arg);
	c->in_tx = false;
	if (c->broken)
		return STORE_EUNAVAIL;
	bool failed = PQtransactionStatus(c->db) == PQTRANS_INERROR;
	if (conn_cmd(c, failed ? "ROLLBACK" : "COMMIT") != 0)
		return c->broken ? STORE_EUNAVAIL : STORE_EIO;
	if (failed && rc == 0) /* a failed statement the function did not report */
		rc = STORE_EIO;
	return rc;
}

/* ---- writes: K queues, K writers, batches of savepoints ---- */

static unsigned writer_of(const struct pg_store *s, int64_t scope)
{
	if (scope <= 0)
		return 0;
	uint64_t h = (uint64_t)scope * 0x9E3779B97F4A7C15u;
	return (unsigned)((h >> 32) % (uint64_t)s->nwriters);
}

static int hint_copy(char *out, size_t cap, const char *v)
{
	size_t n = v ? strnlen(v, cap) : cap;
	if (n >= cap)
		return -1;
	memcpy(out, v, n + 1);
	return 0;
}

/* A hint whose strings do not fit is no hint: the job looks up as always. */
static bool hint_set(struct pg_hint *h, const struct store_lock_hint *from)
{
	h->account = from->o.account_id;
	h->devices = from->devices;
	return hint_copy(h->region, sizeof(h->region), from->o.region_id) == 0 &&
	       hint_copy(h->flowlog_id, sizeof(h->flowlog_id), from->flowlog_id) == 0 &&
	       hint_copy(h->sag_id, sizeof(h->sag_id), from->sag_id) == 0;
}

static void pg_write_async(struct store *base, int64_t scope, const struct store_lock_hint *h,
			   store_fn fn, void *arg, store_done_fn done)
{
	struct pg_store *s = (struct pg_store *)base;
	struct pwriter *w = &s->w[writer_of(s, scope)];
	struct pjob *j = xmalloc(sizeof(*j));
	*j = (struct pjob){.fn = fn, .arg = arg, .done = done, .scope = scope, .rc = STORE_EIO,
			   .queued_us = time_mono_us()};
	j->hinted = h && hint_set(&j->hint, h);
	int refuse = 0;
	pthread_mutex_lock(&s->mu);
	/* Fail fast while the server is away: no unbounded queueing. */
	if (w->done)
		refuse = STORE_EIO;
	else if (!atomic_load(&s->up))
		refuse = STORE_EUNAVAIL;
	else if (w->queued >= STORE_QUEUE_MAX)
		refuse = STORE_EIO;
	if (!refuse) {
		*w->tailp = j;
		w->tailp = &j->next;
		w->queued++;
		pthread_cond_signal(&w->cv);
	}
	pthread_mutex_unlock(&s->mu);
	if (refuse) {
		if (refuse == STORE_EIO)
			log_warn("store: write refused (%s)",
				 w->done ? "store closing" : "queue full");
		if (done)
			done(arg, refuse);
		free(j);
	}
}

/* JOB_RERUN: the pipeline skipped the job's statements after an earlier
 * job's deferred statement failed; it runs again in this batch, uncounted. */
enum job_outcome { JOB_RAN, JOB_AGAIN, JOB_LOST, JOB_RERUN };

/* Runs one job under its own savepoint. The SAVEPOINT goes out with the
 * job's first statement, the RELEASE (and the ROLLBACK TO of a failed job)
 * with the next job's, or with the batch's COMMIT; a job that issued no
 * statement sends neither. A job whose deferred statement is not answered
 * yet is released all the same: a failure of that statement makes the
 * pipeline skip the RELEASE, and defer_recover rolls the job back. */
static enum job_outcome run_job(struct pconn *c, struct pjob *j)
{
	pipe_defer(c, SQL_SAVEPOINT);
	c->retry = false;
	c->job_failed = false;
	c->job_deferred = false;
	c->sqlstate[0] = '\0';
	c->job = j;
	j->drc = 0;
	j->count_region = NULL;
	c->in_tx = true;
	j->rc = j->fn(&c->tx, j->arg);
	c->in_tx = false;
	c->job = NULL;
	c->job_deferred = false;
	if (c->broken || conn_lost(c) || c->batch_failed)
		return JOB_LOST;
	if (c->defer_failed)
		return JOB_RERUN;
	bool failed = c->job_failed;
	if (failed && j->rc == 0) {
		log_err("store: a write job ignored a failed statement; it is rolled back");
		j->rc = STORE_EIO;
	}
	bool again = c->retry && ++j->tries < STORE_JOB_TRIES;
	if (c->retry && !again) {
		log_err("store: a write job failed %d times (SQLSTATE %s)", STORE_JOB_TRIES,
			c->sqlstate);
		j->rc = STORE_EIO;
	}
	if (c->npending && c->pending[c->npending - 1] == SQL_SAVEPOINT) {
		c->npending--; /* no statement: nothing to release or undo */
		return JOB_RAN;
	}
	if (failed || j->rc != 0 || again)
		pipe_defer(c, SQL_ROLLBACK_TO);
	pipe_defer(c, SQL_RELEASE);
	return again ? JOB_AGAIN : JOB_RAN;
}

/* After jobs[k]'s deferred statement failed: PostgreSQL skipped everything
 * after it, so the innermost savepoint is still jobs[k]'s. It is rolled back
 * and released, jobs[k] is answered (or runs again in the next batch, for a
 * deadlock and the like), and the batch goes on from jobs[k + 1], whose
 * effects were never applied. Returns k + 1. */
static int defer_recover(struct pconn *c, struct pjob **jobs, enum job_outcome *out, int n)
{
	struct pjob *j = c->defer_failed;
	int k = 0;
	while (k < n - 1 && jobs[k] != j)
		k++;
	bool again = c->defer_retry && ++j->tries < STORE_JOB_TRIES;
	if (c->defer_retry && !again)
		log_err("store: a write job failed %d times (SQLSTATE %s)", STORE_JOB_TRIES,
			c->sqlstate);
	if (c->defer_retry)
		j->drc = STORE_EIO;
	out[k] = again ? JOB_AGAIN : JOB_RAN;
	c->defer_failed = NULL;
	c->defer_retry = false;
	pipe_defer(c, SQL_ROLLBACK_TO);
	pipe_defer(c, SQL_RELEASE);
	return k + 1;
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

/* A PostgreSQL array literal being built: "{" first, then elements. Its
 * buffer is sized for PG_BATCH_MAX of the largest element (count_list, the
 * bump's list). */
struct arr {
	char *b;
	size_t cap, len;
};

static void arr_open(struct arr *a, char *b, size_t cap)
{
	*a = (struct arr){b, cap, 1};
	memcpy(b, "{}", 3);
}

static void arr_char(struct arr *a, char ch)
{
	if (a->len + 2 >= a->cap)
		fatal("store: array literal over %zu bytes", a->cap);
	a->b[a->len++] = ch;
	memcpy(a->b + a->len, "}", 2);
}

/* One element, double-quoted with \ before " and \: taken as it is. */
static void arr_text(struct arr *a, const char *v)
{
	if (a->len > 1)
		arr_char(a, ',');
	arr_char(a, '"');
	for (; *v; v++) {
		if (*v == '"' || *v == '\\')
			arr_char(a, '\\');
		arr_char(a, *v);
	}
	arr_char(a, '"');
}

static void arr_int(struct arr *a, int64_t v)
{
	char num[PG_NUM_MAX];
	snprintf(num, sizeof(num), "%" PRId64, v);
	if (a->len > 1)
		arr_char(a, ',');
	for (const char *d = num; *d; d++)
		arr_char(a, *d);
}

static const char BUMP_SQL[] =
    "INSERT INTO account_version (account_id, shard, v) "
    "SELECT a, $2, 1 FROM unnest($1::bigint[]) AS a "
    "ON CONFLICT (account_id, shard) DO UPDATE SET v = account_version.v + 1";

/* The parameters of the account_version bump: one per account of the batch
 * (account 0 for unscoped jobs), on this writer's own shard. false: no job
 * of the batch moves a version. */
static bool bump_params(struct pwriter *w, struct pjob *const *jobs,
			const enum job_outcome *out, int njobs, char *list, size_t cap,
			struct pg_params *p)
{
	int64_t acct[PG_BATCH_MAX];
	size_t n = 0;
	for (int i = 0; i < njobs; i++)
		if (out[i] != JOB_AGAIN && jobs[i]->scope >= 0)
			acct[n++] = jobs[i]->scope;
	if (!n)
		return false;
	qsort(acct, n, sizeof(acct[0]), cmp_i64);
	struct arr a;
	arr_open(&a, list, cap);
	for (size_t i = 0; i < n; i++)
		if (i == 0 || acct[i] != acct[i - 1])
			arr_int(&a, acct[i]);
	pg_p_text(p, list);
	pg_p_int(p, atomic_load_explicit(&w->s->shard_base, memory_order_relaxed) + w->index);
	return true;
}

static const char COUNT_SQL[] =
    "SELECT flowlog_counts_raise($1::bigint[], $2::text[], $3::bigint[], $4::bigint)";

/* The count raise's parameters: per owner, in (account, region) order. */
struct count_list {
	char accounts[PG_BATCH_MAX * PG_NUM_MAX + 3];
	char regions[PG_BATCH_MAX * (2 * DOMAIN_REGION_MAX + 3) + 3];
	char counts[PG_BATCH_MAX * PG_NUM_MAX + 3];
};

static int cmp_count_owner(const void *a, const void *b)
{
	const struct pjob *x = *(struct pjob *const *)a, *y = *(struct pjob *const *)b;
	if (x->count_account != y->count_account)
		return x->count_account < y->count_account ? -1 : 1;
	return strcmp(x->count_region, y->count_region);
}

/* A job whose flow log the batch keeps: it ran, and neither it nor the answer
 * of its insert (when already read) failed; an answer still to come that
 * fails skips this raise with COMMIT (defer_recover, then a new raise). */
static bool job_counts(const struct pjob *j, enum job_outcome out)
{
	return j->count_region && out == JOB_RAN && j->rc == 0 && j->drc == 0;
}

/* false: no flow log of the batch counts. The quota is the smallest any of
 * its jobs asked for (they all come from one configuration). */
static bool count_params(struct pjob *const *jobs, const enum job_outcome *out, int njobs,
			 struct count_list *cl, struct pg_params *p)
{
	struct pjob *c[PG_BATCH_MAX];
	int n = 0;
	int64_t quota = INT64_MAX;
	for (int i = 0; i < njobs; i++)
		if (job_counts(jobs[i], out[i])) {
			c[n++] = jobs[i];
			quota = jobs[i]->count_quota < quota ? jobs[i]->count_quota : quota;
		}
	if (!n)
		return false;
	qsort(c, (size_t)n, sizeof(c[0]), cmp_count_owner);
	struct arr acc, reg, cnt;
	arr_open(&acc, cl->accounts, sizeof(cl->accounts));
	arr_open(&reg, cl->regions, sizeof(cl->regions));
	arr_open(&cnt, cl->counts, sizeof(cl->counts));
	for (int i = 0, k; i < n; i = k) {
		for (k = i + 1; k < n && !cmp_count_owner(&c[i], &c[k]); k++)
			;
		arr_int(&acc, c[i]->count_account);
		arr_text(&reg, c[i]->count_region);
		arr_int(&cnt, k - i);
	}
	pg_p_text(p, cl->accounts);
	pg_p_text(p, cl->regions);
	pg_p_text(p, cl->counts);
	pg_p_int(p, quota);
	return true;
}

bool pg_tx_count_in_batch(struct store_tx *tx, struct owner o, int64_t quota)
{
	struct pconn *c = conn_of(tx);
	if (!c->pipe || !c->job || c->strict)
		return false;
	c->job->count_account = o.account_id;
	c->job->count_region = o.region_id;
	c->job->count_quota = quota;
	return true;
}

/* What a batch's COMMIT came to (commit), and so its run (run_jobs). */
enum batch_end {
	BATCH_LOST = -1,    /* not committed */
	BATCH_COMMITTED,    /* durable */
	BATCH_DEFER_FAILED, /* a deferred statement failed: COMMIT was skipped, the
			       transaction is open and aborted (defer_recover, commit again) */
	BATCH_REDO_STRICT,  /* the count raise found an owner at its quota or deadlocked */
	BATCH_REDO,	    /* the version bump deadlocked */
};

/* The pending RELEASE, the version bump and COMMIT in one round trip, and
 * what COMMIT's answer means (enum batch_end). After BATCH_REDO_STRICT the
 * batch is rolled back and runs again strictly, after BATCH_REDO as it was.
 * The bump can deadlock only where two writers share a shard slot: a strict
 * batch holding the counter row waits for the version row, which the other
 * writer's normal batch holds while its raise waits for the counter row;
 * losing the batch to that would answer every job with an error. The count
 * raise goes last, right before COMMIT: the account's counter row, which
 * every node's writer for that account updates, is then locked for the
 * raise and COMMIT alone; the version row (this writer's own) may wait.
 * *sent_commit: COMMIT was handed to libpq,
 * so from then on a lost connection leaves the outcome unknown (the jobs get
 * STORE_EUNKNOWN, a kind of STORE_EIO, never success). */
static enum batch_end commit(struct pwriter *w, struct pjob *const *jobs,
			     const enum job_outcome *out, int njobs, bool *sent_commit)
{
	struct pconn *c = w->conn;
	char list[PG_BATCH_MAX * PG_NUM_MAX + 3];
	struct pg_params p = {0}, cp = {0};
	struct count_list cl;
	bool bump = bump_params(w, jobs, out, njobs, list, sizeof(list), &p);
	bool count = count_params(jobs, out, njobs, &cl, &cp);
	int index = 0, cindex = 0;
	struct pstmt *slot = bump ? conn_stmt(c, BUMP_SQL, &index) : NULL;
	struct pstmt *cslot = count ? conn_stmt(c, COUNT_SQL, &cindex) : NULL;
	if ((bump && !slot) || (count && !cslot))
		return BATCH_LOST;
	int64_t t0 = time_mono_us();
	pipe_start(c);
	int bump_at = bump ? pipe_stmt_queue(c, slot, index, BUMP_SQL, &p, "account version") : -1;
	int count_at =
	    count ? pipe_stmt_queue(c, cslot, cindex, COUNT_SQL, &cp, "flowlog count raise") : -1;
	int at = c->nq;
	pipe_cmd(c, SQL_COMMIT);
	*sent_commit = *sent_commit || c->qsent;
	int bad = pipe_sync(c);
	bool ok = bad < 0 && !strcmp(PQcmdStatus(c->q[at].r), "COMMIT");
	bool again = !ok && bad >= 0 && !c->broken && c->retry;
	c->retry = false;
	pipe_reset(c);
	if (!ok && c->defer_failed && !c->broken && !c->batch_failed)
		return BATCH_DEFER_FAILED;
	if (again && (bad == count_at || bad == bump_at))
		return bad == count_at ? BATCH_REDO_STRICT : BATCH_REDO;
	if (!ok && c->broken && *sent_commit)
		log_err(
		    "store: commit outcome unknown: the connection to PostgreSQL was lost after "
		    "COMMIT was sent");
	if (!ok)
		return BATCH_LOST;
	metrics_count(store_m_commits, 0, 0, 1);
	metrics_observe(store_m_commit_us, 0, 0, (uint64_t)(time_mono_us() - t0));
	return BATCH_COMMITTED;
}

static void fail_all(struct pjob *list, int rc)
{
	for (struct pjob *j = list; j; j = j->next)
		j->rc = rc;
}

/* After a COMMIT that changed access keys, before any job is acknowledged:
 * every live node must have flushed its key cache (pg_listen.h). A node that
 * neither acknowledges nor lets its lease expire within PG_KEYS_WAIT_MS
 * cannot exist while leases are honoured; if the wait fails anyway, the
 * change is committed but not confirmed, so the jobs get STORE_EIO. */
static void keys_wait(struct pconn *c, struct pjob *ran)
{
	int64_t pending = 0;
	int rc = pg_keys_wait(c->db, c->keys_version, &pending);
	if (rc == 0)
		return;
	log_err("store: key change committed, but %lld node(s) did not confirm it within %d ms",
		(long long)pending, PG_KEYS_WAIT_MS);
	fail_all(ran, STORE_EIO);
}

/* Pipeline mode for one batch: entered when it starts, left when every
 * answer is in, so that keys_wait, ROLLBACK and the next migration see a
 * plain connection.
 * A connection idle for longer than PG_LIVE_US first proves itself alive with
 * the batch's first statement, so that one which died while idle is replaced
 * before COMMIT is sent (pipe_exec). A busy one sends the whole batch at once:
 * then no lock its jobs take (the account's flowlog_counts row) is held across
 * a round trip to this process, which is what another node's writer waits
 * for; should the server die in those few milliseconds, the batch is answered
 * as any batch in flight then is (STORE_EUNKNOWN once COMMIT was sent). */
static bool pipe_begin(struct pconn *c)
{
	c->npending = 0;
	c->batch_failed = false;
	c->confirmed = c->answered_us && time_mono_us() - c->answered_us < PG_LIVE_US;
	c->defer_failed = NULL;
	pipe_reset(c);
	if (conn_ensure(c) != 0 || PQenterPipelineMode(c->db) != 1)
		return false;
	c->pipe = true;
	c->pending[c->npending++] = SQL_BEGIN;
	return true;
}

static void pipe_end(struct pconn *c)
{
	if (c->nq) /* answers never read (a batch lost before its Sync) */
		c->broken = true;
	pipe_reset(c);
	if (c->pipe && c->db && !c->broken && PQexitPipelineMode(c->db) != 1)
		c->broken = true;
	c->pipe = false;
	c->npending = 0;
}

/* ---- prefetched lookups (docs/store.md): the locking lookups of the
 * batch's first hinted jobs, all in its first round trip ---- */

/* Only a shared gateway: a hinted job writes nothing but its gateway's
 * binding, so many gateways bound to one flow log (Terraform's usual shape)
 * stay one run; the flow log's row is locked by the first and read unchanged. */
static bool hints_overlap(const struct pg_hint *a, const struct pg_hint *b)
{
	return !strcmp(a->sag_id, b->sag_id);
}

/* How many jobs from the start of the batch are hinted and share no SagId
 * with each other. Their lookups read ahead answer
 * as they would have live: no job before one of them changes its rows (a
 * hinted job changes only its own gateway's binding, store_sag.h), and the
 * transaction takes the same locks in the same order, only earlier. */
static int prefetch_count(struct pjob *const *jobs, int n)
{
	for (int k = 0; k < n; k++) {
		if (!jobs[k]->hinted)
			return k;
		for (int i = 0; i < k; i++)
			if (hints_overlap(&jobs[i]->hint, &jobs[k]->hint))
				return k;
	}
	return n;
}

static void prefetch_clear(struct pjob *const *jobs, int n)
{
	for (int i = 0; i < n; i++) {
		for (int k = 0; k < PG_TX_STMTS_MAX; k++) {
			PQclear(jobs[i]->pf[k]);
			jobs[i]->pf[k] = NULL;
		}
		jobs[i]->pf_ready = false;
	}
}

/* Sends the lookups of jobs[0..k) after the pending BEGIN and reads every
 * answer: one round trip. at[i][t]: where statement t of job i answers. A
 * full statement cache (conn_stmt logs it) ends the prefetch at that job:
 * what was sent of it only takes the locks the job takes anyway. */
static bool prefetch_once(struct pconn *c, struct pjob *const *jobs, int k)
{
	int at[PG_BATCH_MAX][PG_TX_STMTS_MAX], ns[PG_BATCH_MAX];
	pipe_start(c);
	for (int i = 0; i < k; i++) {
		const struct pg_hint *h = &jobs[i]->hint;
		struct pg_params p, pd;
		struct pg_stmt st[PG_TX_STMTS_MAX];
		ns[i] = pg_flowlog_sag_stmts((struct owner){h->account, h->region}, h->flowlog_id,
					     h->sag_id, h->devices, &p, &pd, st);
		for (int t = 0; t < ns[i]; t++) {
			int index;
			struct pstmt *slot = conn_stmt(c, st[t].sql, &index);
			if (!slot) {
				k = i;
				break;
			}
			at[i][t] = pipe_stmt_queue(c, slot, index, st[t].sql, st[t].p, st[t].what);
		}
	}
	int bad = pipe_sync(c);
	for (int i = 0; bad < 0 && i < k; i++) {
		for (int t = 0; t < ns[i]; t++) {
			jobs[i]->pf[t] = c->q[at[i][t]].r;
			c->q[at[i][t]].r = NULL;
		}
		jobs[i]->pf_ready = true;
	}
	pipe_reset(c);
	return bad < 0;
}

/* The batch's first round trip, when its first job is hinted. A connection
 * that was dead before BEGIN is replaced and the round trip sent once more,
 * as pipe_exec does. A lookup that failed (a deadlock with another node, say)
 * aborted the transaction before any job ran: ROLLBACK and BEGIN go out with
 * the first job's statement, which releases the prefetch's locks, and every
 * job looks up live, as without a prefetch. */
static void prefetch(struct pconn *c, struct pjob *const *jobs, int n)
{
	int k = prefetch_count(jobs, n);
	if (k == 0)
		return;
	bool fresh = !c->confirmed && !c->nq;
	if (prefetch_once(c, jobs, k))
		return;
	if (fresh && c->broken && pipe_reconnect(c) == 0) {
		c->npending = 0;
		pipe_defer(c, SQL_BEGIN);
		if (prefetch_once(c, jobs, k))
			return;
	}
	prefetch_clear(jobs, k);
	if (c->broken || c->batch_failed || conn_lost(c))
		return; /* the batch is lost: its first job finds out */
	log_info("store: the batch's prefetched lookups failed; its jobs look up one by one");
	c->job_failed = false;
	c->retry = false;
	c->sqlstate[0] = '\0';
	pipe_defer(c, SQL_ROLLBACK);
	pipe_defer(c, SQL_BEGIN);
}

static bool hint_is(const struct pg_hint *h, struct owner o, const char *flowlog_id,
		    const char *sag_id, bool devices)
{
	return h->account == o.account_id && h->devices == devices && o.region_id &&
	       flowlog_id && sag_id && !strcmp(h->region, o.region_id) &&
	       !strcmp(h->flowlog_id, flowlog_id) && !strcmp(h->sag_id, sag_id);
}

bool pg_tx_prefetched(struct store_tx *tx, struct owner o, const char *flowlog_id,
		      const char *sag_id, bool devices, PGresult *r[PG_TX_STMTS_MAX])
{
	struct pconn *c = conn_of(tx);
	struct pjob *j = c->job;
	/* Gone or skipped: the live path says so (the job runs again). */
	if (!c->pipe || !j || !j->pf_ready || c->broken || c->defer_failed ||
	    !hint_is(&j->hint, o, flowlog_id, sag_id, devices))
		return false;
	for (int k = 0; k < PG_TX_STMTS_MAX; k++)
		r[k] = j->pf[k];
	return true;
}

/* Runs the jobs and commits: each ends up in out[] as run, to run again or
 * lost (every one when the batch is). A failed deferred statement sends the
 * batch back to the job after it (defer_recover), also from COMMIT; each
 * such pass answers one more job, so the loop ends. Returns BATCH_COMMITTED,
 * BATCH_LOST, or one of the BATCH_REDOs. */
static enum batch_end run_jobs(struct pwriter *w, struct pjob **jobs, enum job_outcome *out, int n,
		     bool *sent_commit)
{
	struct pconn *c = w->conn;
	int64_t t0 = time_mono_us();
	bool lost = !pipe_begin(c);
	if (!lost)
		prefetch(c, jobs, n);
	bool timed = false;
	int i = 0;
	while (!lost) {
		while (i < n && !lost) {
			out[i] = run_job(c, jobs[i]);
			if (out[i] == JOB_RERUN)
				i = defer_recover(c, jobs, out, n);
			else
				lost = out[i++] == JOB_LOST;
		}
		if (lost)
			break;
		if (!timed)
			metrics_observe(store_m_run_us, 0, 0, (uint64_t)(time_mono_us() - t0));
		timed = true;
		enum batch_end end = commit(w, jobs, out, n, sent_commit);
		if (end != BATCH_DEFER_FAILED)
			return end;
		i = defer_recover(c, jobs, out, n);
	}
	return BATCH_LOST;
}

/* The count raise (strict) or the bump refused the batch: nothing of it
 * commits, and every job runs again, first in the queue; after the raise, in
 * the strict batches that follow. */
static void redo_batch(struct pwriter *w, struct pjob **jobs, enum job_outcome *out, int n,
		       bool strict)
{
	struct pconn *c = w->conn;
	if (conn_cmd(c, "ROLLBACK") != 0)
		conn_disconnect(c); /* reconnected at the next batch */
	for (int i = 0; i < n; i++) {
		out[i] = JOB_AGAIN;
		jobs[i]->rc = 0;
	}
	c->keys_changed = false;
	if (!strict)
		return;
	w->strict = PG_STRICT_BATCHES;
	atomic_fetch_add_explicit(&w->s->strict_redos, 1, memory_order_relaxed);
}

/* Runs a batch: the jobs that ran (with their results) end up in *ran, the
 * ones to run again in *again. */
static void run_batch(struct pwriter *w, struct pjob *batch, struct pjob **ran, struct pjob **again)
{
	struct pconn *c = w->conn;
	struct pjob *jobs[PG_BATCH_MAX];
	enum job_outcome out[PG_BATCH_MAX];
	int n = 0;
	int64_t t0 = time_mono_us();
	for (struct pjob *j = batch; j && n < PG_BATCH_MAX; j = j->next) {
		metrics_observe(store_m_queued_us, 0, 0, (uint64_t)(t0 - j->queued_us));
		out[n] = JOB_LOST;
		jobs[n++] = j;
	}
	c->writing = true;
	c->strict = w->strict > 0;
	w->strict -= c->strict;
	bool sent_commit = false;
	enum batch_end run = run_jobs(w, jobs, out, n, &sent_commit);
	prefetch_clear(jobs, n); /* never reused across a rollback of the batch */
	bool lost = run == BATCH_LOST;
	pipe_end(c);
	c->writing = false;
	if (run == BATCH_REDO_STRICT || run == BATCH_REDO)
		redo_batch(w, jobs, out, n, run == BATCH_REDO_STRICT);
	if (lost) {
		/* Nothing was committed unless COMMIT was sent and its answer lost. */
		bool gone = c->broken || !c->db;
		int rc = !gone ? STORE_EIO : sent_commit ? STORE_EUNKNOWN : STORE_EUNAVAIL;
		if (!c->broken && !conn_lost(c) && PQtransactionStatus(c->db) != PQTRANS_IDLE)
			conn_cmd(c, "ROLLBACK");
		for (int i = 0; i < n; i++) {
			out[i] = JOB_LOST;
			jobs[i]->rc = rc;
		}
		/* Reconnected at the next batch; if that fails, the store goes
		 * down (conn_ensure). */
		if (c->broken || conn_lost(c))
			conn_disconnect(c);
	}
	struct pjob **rt = ran, **at = again;
	for (int i = 0; i < n; i++) {
		struct pjob *j = jobs[i];
		j->next = NULL;
		if (out[i] == JOB_AGAIN) {
			*at = j;
			at = &j->next;
			continue;
		}
		if (j->rc == 0)
			j->rc = j->drc; /* the answer of its deferred statement */
		*rt = j;
		rt = &j->next;
	}
	*at = NULL;
	*rt = NULL;
	if (!lost && c->keys_changed)
		keys_wait(c, *ran);
	c->keys_changed = false;
	c->keys_version = 0;
}

/* Before any done(), as the SQLite writer: this process's answer cache never
 * serves a page from before an acknowledged write (rpc/cache.h). */
static void bump_local_versions(struct pg_store *s, struct pjob *ran)
{
	bool any = false;
	for (struct pjob *j = ran; j; j = j->next) {
		if (j->scope > 0)
			atomic_fetch_add_explicit(
			    &s->base.scope_version[store_scope_slot(j->scope)], 1,
			    memory_order_release);
		else if (j->scope == 0)
			any = true;
	}
	if (any)
		atomic_fetch_add_explicit(&s->base.data_version, 1, memory_order_release);
}

static struct pjob *take_batch(struct pg_store *s, struct pwriter *w, size_t *count)
{
	struct pjob *batch = w->head, **end = &w->head;
	size_t n = 0;
	while (*end && n < PG_BATCH_MAX) {
		end = &(*end)->next;
		n++;
	}
	w->head = *end;
	*end = NULL;
	if (!w->head)
		w->tailp = &w->head;
	w->queued -= n;
	s->stats.batches++;
	s->stats.jobs += n;
	if (n > s->stats.max_batch)
		s->stats.max_batch = n;
	*count = n;
	return batch;
}

/* Jobs to run again go back to the front of the queue, in order. */
static void requeue_front(struct pwriter *w, struct pjob *again)
{
	if (!again)
		return;
	struct pjob *last = again;
	size_t n = 1;
	while (last->next) {
		last = last->next;
		n++;
	}
	last->next = w->head;
	if (!w->head)
		w->tailp = &last->next;
	w->head = again;
	w->queued += n;
}

/* Under load (its last batch had PG_LINGER_MIN jobs or more) and while
 * another node shares the database (peers), a writer waits before it takes a
 * batch until as many jobs are queued as its last batch held, for at most
 * PG_LINGER_US. Each transaction has a fixed part (its
 * fsync, BEGIN/COMMIT, the count raise, the version bump, a round trip and
 * the backend's wake-up): two nodes on one database split the clients, so
 * each node's batches were half the size and that part was paid twice as
 * often per create (docs/benchmarks.md "PostgreSQL", "Session 9"). Waiting
 * for the last batch's size, not for a full one, lets a steady load whose
 * every client is already queued go at once, and the batch still grows,
 * since take_batch takes all that is queued; a light load never waits. A
 * node alone does not wait: there its waiting left the database idle between
 * batches, which cost 1-node throughput (docs/benchmarks.md). Called with mu
 * held. */
static void linger(struct pg_store *s, struct pwriter *w)
{
	size_t want = w->last_batch;
	if (want < PG_LINGER_MIN || atomic_load_explicit(&s->peers, memory_order_relaxed) < 1)
		return;
	struct timespec until = time_deadline(CLOCK_MONOTONIC, PG_LINGER_US);
	while (w->queued < want && !s->stopping &&
	       pthread_cond_timedwait(&w->cv, &s->mu, &until) != ETIMEDOUT)
		;
}

/* The writer's condition variable waits on CLOCK_MONOTONIC (linger). */
static void cond_init_mono(pthread_cond_t *cv)
{
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(cv, &ca);
	pthread_condattr_destroy(&ca);
}

static void *writer_main(void *arg)
{
	struct pwriter *w = arg;
	struct pg_store *s = w->s;
	pg_writer_self = s;
	pthread_mutex_lock(&s->mu);
	for (;;) {
		while (!w->head && !s->stopping)
			pthread_cond_wait(&w->cv, &s->mu);
		if (!w->head)
			break;
		linger(s, w);
		size_t n;
		struct pjob *batch = take_batch(s, w, &n), *ran, *again;
		w->last_batch = n;
		pthread_mutex_unlock(&s->mu);
		metrics_observe(store_m_batch, 0, 0, n);
		run_batch(w, batch, &ran, &again);
		bump_local_versions(s, ran);
		while (ran) {
			struct pjob *next = ran->next;
			if (ran->done)
				ran->done(ran->arg, ran->rc);
			free(ran);
			ran = next;
		}
		pthread_mutex_lock(&s->mu);
		requeue_front(w, again);
	}
	w->done = true;
	pthread_mutex_unlock(&s->mu);
	return NULL;
}

/* ---- open and close ---- */

static void pg_free(struct pg_store *s)
{
	for (int i = 0; s->w && i < s->nwriters; i++) {
		conn_free(s->w[i].conn);
		pthread_cond_destroy(&s->w[i].cv);
	}
	free(s->w);
	pg_admitq_free(s->admitq);
	pthread_cond_destroy(&s->cv_health);
	pthread_mutex_destroy(&s->mu);
	free(s->conninfo);
	free(s);
}

/* Checks the conninfo's syntax now, so a typo is an error at start rather
 * than an endless reconnect. Never logs it: it may hold a password. */
static int conninfo_ok(const char *conninfo)
{
	char *err = NULL;
	PQconninfoOption *o = PQconninfoParse(conninfo, &err);
	if (!o) {
		log_err("store: the PostgreSQL URI is not valid: %s", err ? err : "out of memory");
		PQfreemem(err);
		return -1;
	}
	PQconninfoFree(o);
	return 0;
}

/* The first connection, the migrations, then the threads. A server that is
 * not reachable yet leaves the store unready; the health thread connects
 * and migrates when it can. */
struct store *store_pg_open(const char *conninfo, int writers, bool node)
{
	if (conninfo_ok(conninfo) != 0)
		return NULL;
	if (writers < 1 || writers > STORE_PG_WRITERS_MAX) {
		log_err("store: --pg-writers must be 1..%d", STORE_PG_WRITERS_MAX);
		return NULL;
	}
	struct pg_store *s = xcalloc(1, sizeof(*s));
	s->base.ops = &pg_ops;
	s->conninfo = xstrdup(conninfo);
	s->nwriters = writers;
	s->node = node;
	atomic_init(&s->slot, -1);
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->cv_health, NULL);
	s->admitq = pg_admitq_new(admit_run, s);
	s->w = xcalloc((size_t)writers, sizeof(*s->w));
	for (int i = 0; i < writers; i++) {
		s->w[i] = (struct pwriter){.s = s, .index = i, .conn = conn_new(s)};
		s->w[i].tailp = &s->w[i].head;
		cond_init_mono(&s->w[i].cv);
	}
	struct pconn *first = s->w[0].conn;
	if (conn_connect(first, false) == 0) {
		if (migrate(first) != 0) {
			pg_free(s);
			return NULL;
		}
		s->migrated = true;
		atomic_store(&s->up, true);
	} else {
		log_warn("store: PostgreSQL is not reachable yet; retrying in the background");
	}
	if (pthread_key_create(&s->reader_key, reader_release) != 0)
		fatal("store: pthread_key_create");
	for (int i = 0; i < writers; i++)
		if (pthread_create(&s->w[i].th, NULL, writer_main, &s->w[i]) != 0)
			fatal("store: cannot start a writer thread");
	if (pthread_create(&s->health, NULL, health_main, s) != 0)
		fatal("store: cannot start the health thread");
	s->health_started = true;
	/* Before store.c sees keys_epoch: it then gives the store a key cache. */
	if (node)
		s->listen = pg_listen_start(conninfo, &s->base);
	return &s->base;
}

static void pg_close(struct store *base)
{
	struct pg_store *s = (struct pg_store *)base;
	struct pg_admitq_stats a;
	pg_admitq_stats(s->admitq, &a);
	if (a.batches)
		log_info("store: %llu admissions in %llu batches (%.1f a batch, at most %llu); "
			 "%llu timed out",
			 (unsigned long long)a.admissions, (unsigned long long)a.batches,
			 (double)a.admissions / (double)a.batches, (unsigned long long)a.max_batch,
			 (unsigned long long)a.timeouts);
	/* First: its thread's connection is one of the readers freed below, and
	 * the admissions still queued are answered (refused) now. */
	pg_admitq_free(s->admitq);
	s->admitq = NULL;
	pg_listen_stop(s->listen); /* store.c freed the key cache already */
	s->listen = NULL;
	s->base.keys_epoch = NULL;
	pthread_mutex_lock(&s->mu);
	s->stopping = true;
	for (int i = 0; i < s->nwriters; i++)
		pthread_cond_signal(&s->w[i].cv);
	pthread_mutex_unlock(&s->mu);
	for (int i = 0; i < s->nwriters; i++)
		pthread_join(s->w[i].th, NULL); /* each drains its queue first */
	pthread_mutex_lock(&s->mu);
	s->health_stop = true;
	pthread_cond_signal(&s->cv_health);
	pthread_mutex_unlock(&s->mu);
	if (s->health_started)
		pthread_join(s->health, NULL);
	pthread_key_delete(s->reader_key);
	struct pconn *c = s->readers;
	while (c) {
		struct pconn *next = c->next;
		conn_free(c);
		c = next;
	}
	pg_free(s);
}

/* A batch of admissions, run on the admission thread (pg_admitq.h) with its
 * own connection (its reader's): one round trip for every member. */
static void admit_run(void *arg, struct pg_admit_item *it, size_t n)
{
	struct pconn *c = reader_get(arg);
	if (c->in_tx || conn_ensure(c) != 0) {
		for (size_t i = 0; i < n; i++)
			it[i].result = STORE_ADMIT_UNAVAIL;
		return;
	}
	if (!pg_admit_batch(c->db, it, n) || conn_lost(c))
		c->broken = true;
}

/* store_admit through the node's batcher: fails at once, without queueing,
 * while the server is away. */
static enum store_admit_result pgs_admit(struct store *base, const struct store_admission *a,
					 uint64_t *version)
{
	struct pg_store *s = (struct pg_store *)base;
	if (!atomic_load(&s->up))
		return STORE_ADMIT_UNAVAIL;
	return pg_admitq_admit(s->admitq, a, version);
}

static void pgs_admit_async(struct store *base, const struct store_admission *a, bool label,
			    store_admit_done_fn done, void *arg)
{
	struct pg_store *s = (struct pg_store *)base;
	if (!atomic_load(&s->up)) {
		done(arg, STORE_ADMIT_UNAVAIL, 0);
		return;
	}
	pg_admitq_submit(s->admitq, a, label, done, arg);
}

bool store_pg_admit_stats(struct store *base, struct pg_admitq_stats *out)
{
	if (base->ops != &pg_ops)
		return false;
	pg_admitq_stats(((struct pg_store *)base)->admitq, out);
	return true;
}

static bool pg_on_writer(struct store *base)
{
	return pg_writer_self == (const struct pg_store *)base;
}

static void pg_stats(struct store *base, struct store_stats *out)
{
	struct pg_store *s = (struct pg_store *)base;
	pthread_mutex_lock(&s->mu);
	*out = s->stats;
	pthread_mutex_unlock(&s->mu);
	out->round_trips = atomic_load_explicit(&s->round_trips, memory_order_relaxed);
	out->strict_redos = atomic_load_explicit(&s->strict_redos, memory_order_relaxed);
}

const char *store_pg_conninfo(struct store *base)
{
	return base->ops == &pg_ops ? ((struct pg_store *)base)->conninfo : NULL;
}

int store_pg_writers(struct store *base)
{
	return base->ops == &pg_ops ? ((struct pg_store *)base)->nwriters : 0;
}

int store_pg_peers(struct store *base)
{
	if (base->ops != &pg_ops)
		return -1;
	return atomic_load(&((struct pg_store *)base)->peers);
}

int store_pg_shard_base(struct store *base)
{
	if (base->ops != &pg_ops)
		return -1;
	struct pg_store *s = (struct pg_store *)base;
	return s->node && atomic_load(&s->slot) < 0 ? -1 : atomic_load(&s->shard_base);
}

static const struct store_ops pg_ops = {
	.name = "postgresql",
	.close = pg_close,
	.read = pg_read,
	.write_async = pg_write_async,
	.stats = pg_stats,
	.on_writer = pg_on_writer,
	.ready = pg_ready,
	.admit = pgs_admit,
	.admit_async = pgs_admit_async,
	.key_get = pg_key_get,
	.account_ensure = pg_account_ensure,
	.key_insert = pg_key_insert,
	.key_delete = pg_key_delete,
	.key_each = pg_key_each,
	.flowlog_get = pg_flowlog_get,
	.flowlog_get_config = pg_flowlog_get_config,
	.flowlog_count = pg_flowlog_count,
	.flowlog_insert = pg_flowlog_insert,
	.flowlog_create = pg_flowlog_create,
	.flowlog_update = pg_flowlog_update,
	.flowlog_delete = pg_flowlog_delete,
	.flowlog_list = pg_flowlog_list,
	.sag_get = pg_sag_get,
	.flowlog_sag_get = pg_flowlog_sag_get,
	.sag_insert = pg_sag_insert,
	.sag_delete = pg_sag_delete,
	.sag_set_flowlog = pg_sag_set_flowlog,
	.sag_list = pg_sag_list,
	.sag_list_by_flowlog = pg_sag_list_by_flowlog,
	.sag_list_unbound = pg_sag_list_unbound,
	.device_insert = pg_device_insert,
	.device_delete = pg_device_delete,
	.device_owner = pg_device_owner,
	.device_report = pg_device_report,
	.device_sequence = pg_device_sequence,
	.device_status_counts = pg_device_status_counts,
};
