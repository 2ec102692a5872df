/* The PostgreSQL backend's extension point: what a domain module needs to
 * write its queries for PostgreSQL (the twin of sqlite_internal.h;
 * store_pg_keys.c is the worked example, docs/store.md).
 *
 * A struct store_tx handed to a store_fn by this backend is one connection
 * inside a transaction: a READ COMMITTED batch of a writer (under a savepoint
 * of its own) for writes, a REPEATABLE READ READ ONLY snapshot for reads. Run
 * statements only through pg_tx_exec (prepared once per connection, cached by
 * their text); never BEGIN/COMMIT/SAVEPOINT yourself. A failed statement
 * leaves the job's savepoint aborted: return pg_tx_err(tx) at once. */
#ifndef STORE_PG_INTERNAL_H
#define STORE_PG_INTERNAL_H
#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>

#include "store/store_impl.h"
#include "store/store_sag.h"

#define PG_STMT_CACHE_MAX 256 /* distinct SQL texts per connection */
#define PG_SQLSTATE_FOREIGN_KEY "23503" /* foreign_key_violation */
#define PG_MAX_PARAMS 24      /* bound values per statement */
#define PG_NUM_MAX 24	      /* an int64 as text, with sign and NUL */

/* Bound values, sent as text (PostgreSQL casts them to the column's type). */
struct pg_params {
	int n;
	const char *v[PG_MAX_PARAMS];
	char num[PG_MAX_PARAMS][PG_NUM_MAX];
};

/* Appends a text value (NULL binds SQL NULL) or an integer. Past
 * PG_MAX_PARAMS they abort: a programming error, not input. */
void pg_p_text(struct pg_params *p, const char *s);
void pg_p_int(struct pg_params *p, int64_t v);

/* Runs sql with p (NULL: no values) and returns its result (rows or command
 * done); the caller PQclear()s it. NULL when it failed: the reason is logged
 * with what (never bound values: they may be secrets), the SQLSTATE is kept
 * for pg_tx_sqlstate, and the job is marked for a retry when the failure was
 * a deadlock, a serialization failure or a unique violation (another process
 * got there first: the job runs again in the next batch and sees its row). */
PGresult *pg_tx_exec(struct store_tx *tx, const char *sql, const struct pg_params *p,
		     const char *what);

/* Statements that need nothing of each other's answers, in one round trip on
 * a writer (pipeline mode; one after another elsewhere). PostgreSQL starts
 * each after the one before finished: in a write job each takes its snapshot
 * after the locks of those before it were granted, so a read placed after a
 * locking statement sees what committed while that lock was awaited. 0 and
 * every out[k] (the caller PQclear()s them), or -1 and none, as pg_tx_exec. */
#define PG_TX_STMTS_MAX 2
struct pg_stmt {
	const char *sql;
	const struct pg_params *p;
	const char *what;
};
int pg_tx_exec_n(struct store_tx *tx, const struct pg_stmt *st, int n, PGresult **out);
/* A statement whose answer decides only the running job's own result, not
 * anything the job does next: it must be the job's last statement (another
 * one after it aborts the process), and the job must return what this
 * returns. On a writer it is sent without waiting and 0 returned; its
 * answer is read with the next round trip (a later job's statement, or
 * COMMIT) and handed to check, whose result becomes the job's unless the
 * job returned an error of its own. r is the answer, or NULL when the
 * statement failed (sqlstate says why): the job is then rolled back to its
 * savepoint and answered with check's result (STORE_EIO: the failure's own,
 * or a retry for a deadlock and the like), and the jobs after it in the
 * batch run again. The job's savepoint is released before check has seen a
 * successful answer, so an error from check must mean the statement changed
 * nothing (a conditional insert that found no room). Elsewhere (reads, the
 * first statement of a batch on a connection idle for a while: store_pg.c
 * pipe_begin) it runs at once and returns check's result.
 * ctx must live until the job's done(). */
typedef int (*pg_check_fn)(PGresult *r, const char *sqlstate, void *ctx);
int pg_tx_exec_deferred(struct store_tx *tx, const char *sql, const struct pg_params *p,
			const char *what, pg_check_fn check, void *ctx);
/* For a quota-checked insert on a writer: true, and the job's flow log
 * counts toward owner o's flowlog_counts in one raise per owner for the whole
 * batch, sent with COMMIT (store_pg.c, count_params): the caller inserts its
 * row without touching the counter, and a batch that would pass quota runs
 * again with one check per job. false (reads, the first batches after such a
 * refusal): the caller checks and raises the counter itself. o.region_id must
 * live until the job's done(). */
bool pg_tx_count_in_batch(struct store_tx *tx, struct owner o, int64_t quota);
/* Prefetched lookups (docs/store.md): the running job's store_lock_hint was
 * looked up ahead, at the start of its batch, and is still what a lookup now
 * would answer. true, with its answers in r[0] (and r[1] when devices),
 * borrowed (the writer clears them after the batch), when the job has such
 * a lookup with exactly these arguments; false: look up now. */
bool pg_tx_prefetched(struct store_tx *tx, struct owner o, const char *flowlog_id,
		      const char *sag_id, bool devices, PGresult *r[PG_TX_STMTS_MAX]);
/* What a store_fn returns after pg_tx_exec failed: STORE_EUNAVAIL when the
 * connection is gone, STORE_EIO otherwise. */
int pg_tx_err(struct store_tx *tx);
/* The SQLSTATE of the last failed statement ("" when none). */
const char *pg_tx_sqlstate(struct store_tx *tx);
/* Tells the writer that this failure is not the caller's to retry: a
 * unique violation that the job expected and answers itself. */
void pg_tx_no_retry(struct store_tx *tx);
/* True inside a write job: lookups that a rule depends on lock their rows. */
bool pg_tx_writing(struct store_tx *tx);
/* Marks the running transaction as changing access keys to store_epoch
 * 'keys' = v: after its COMMIT the writer waits for every node's
 * acknowledgement of v before any job of the batch is acknowledged. */
void pg_tx_keys_changed(struct store_tx *tx, int64_t v);

/* Column helpers. pg_int parses an integer column (0 for NULL); pg_copy
 * copies text into out (capacity cap, NUL added): -1 when NULL or too long.
 * pg_changes is the row count of an INSERT/UPDATE/DELETE. */
int64_t pg_int(const PGresult *r, int row, int col);
int pg_copy(const PGresult *r, int row, int col, char *out, size_t cap);
int64_t pg_changes(PGresult *r);

/* Key functions of the PostgreSQL backend (store_pg_keys.c). */
int pg_key_get(struct store_tx *tx, const char *akid, struct store_key *out);
int pg_account_ensure(struct store_tx *tx, const char *name, int64_t *account_id);
int pg_key_insert(struct store_tx *tx, const struct store_key *k);
int pg_key_delete(struct store_tx *tx, const char *akid);
int pg_key_each(struct store_tx *tx, int (*fn)(const struct store_key *k, void *arg), void *arg);

/* Flow logs, gateways and devices of the PostgreSQL backend (pg_sag.c). */
int pg_flowlog_get(struct store_tx *tx, struct owner o, const char *flowlog_id,
		   struct flowlog *out);
int pg_flowlog_get_config(struct store_tx *tx, struct owner o, const char *flowlog_id,
			  struct flowlog *out);
int pg_flowlog_count(struct store_tx *tx, struct owner o, int64_t *n);
int pg_flowlog_insert(struct store_tx *tx, struct flowlog *fl);
int pg_flowlog_create(struct store_tx *tx, struct flowlog *fl, int64_t quota);
int pg_flowlog_update(struct store_tx *tx, const struct flowlog *fl);
int pg_flowlog_delete(struct store_tx *tx, const struct flowlog *fl);
int pg_flowlog_list(struct store_tx *tx, struct owner o, const struct flowlog_filter *f,
		    int64_t *total, flowlog_each_fn fn, void *arg);
int pg_sag_get(struct store_tx *tx, struct owner o, const char *sag_id, struct sag *out);
int pg_flowlog_sag_get(struct store_tx *tx, struct owner o, const char *flowlog_id,
		       const char *sag_id, bool devices, struct flowlog *fl, struct sag *g);
/* The statements of pg_flowlog_sag_get's locking lookup in st (their values
 * in p and pd, which must outlive st's use): returns how many (1, or 2 with
 * the devices). The writer's prefetch sends these, so that what it reads
 * ahead is what the job itself would read. */
int pg_flowlog_sag_stmts(struct owner o, const char *flowlog_id, const char *sag_id,
			 bool devices, struct pg_params *p, struct pg_params *pd,
			 struct pg_stmt st[PG_TX_STMTS_MAX]);
int pg_sag_insert(struct store_tx *tx, struct sag *g, const char *order_id, const char *order_json);
int pg_sag_delete(struct store_tx *tx, const struct sag *g);
int pg_sag_set_flowlog(struct store_tx *tx, const struct sag *g, int64_t fl_rowid);
int pg_sag_list(struct store_tx *tx, struct owner o, const struct sag_filter *f, int64_t *total,
		sag_each_fn fn, void *arg);
int pg_sag_list_by_flowlog(struct store_tx *tx, const struct flowlog *fl, int64_t offset,
			   int64_t limit, int64_t *total, sag_each_fn fn, void *arg);
int pg_sag_list_unbound(struct store_tx *tx, struct owner o, int64_t limit, int64_t *total,
			sag_each_fn fn, void *arg);
int pg_device_insert(struct store_tx *tx, const struct sag *g, const struct device *d,
		     int64_t now_ms);
int pg_device_delete(struct store_tx *tx, const struct sag *g, const char *serial_number);
int pg_device_owner(struct store_tx *tx, const char *serial_number, struct sag *g);
int pg_device_report(struct store_tx *tx, const struct sag *g, const char *serial_number,
		     const struct device *d, int64_t now_ms);
int pg_device_sequence(struct store_tx *tx, const struct sag *g, const char *serial_number,
		       int64_t seq, int64_t *last);
int pg_device_status_counts(struct store_tx *tx, int64_t now_ms, int64_t online_ms,
			    int64_t counts[3]);

#endif
