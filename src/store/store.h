/* The store: durable state behind an ops table: SQLite (a file path, the
 * default) or PostgreSQL (a postgresql:// or postgres:// URI; docs/store.md).
 *
 * Threads. Reads run on the calling thread with a connection of its own
 * (store_read). Writes never run on the caller: store_write_async hands a
 * function to the single writer thread, which runs many of them inside one
 * transaction (each in its own savepoint) and commits once with a durable
 * fsync — group commit — then calls each job's done() callback. An HTTP handler
 * suspends its connection meanwhile, so an event-loop thread never blocks on
 * the disk. store_write is the blocking form for the CLI and start-up.
 *
 * Every store_fn returns 0 or a positive application error (an enum err of
 * rpc/errors.h); a non-zero result rolls its savepoint back and is handed to
 * done() unchanged. A database failure is reported as STORE_EIO, or as
 * STORE_EUNAVAIL when the database could not be reached and nothing was done.
 *
 * On PostgreSQL a write job may run more than once (its savepoint rolled back
 * after a deadlock, a serialization failure or a unique violation caused by
 * another process, then run again in a later batch, at most
 * STORE_JOB_TRIES times): a store_fn must have no effects outside tx and must
 * set every output it reports afresh on each run. */
#ifndef STORE_STORE_H
#define STORE_STORE_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/str.h"

#define STORE_EIO (-1)
/* The database is unreachable (PostgreSQL down, the connection lost before
 * anything was sent for COMMIT): nothing was done, the request may be retried. */
#define STORE_EUNAVAIL (-2)
/* A STORE_EIO whose write may or may not have been committed: the connection
 * was lost after COMMIT was sent (PostgreSQL). Never reported as success. */
#define STORE_EUNKNOWN (-3)
#define STORE_JOB_TRIES 3 /* runs of one write job on PostgreSQL, at most */

#define STORE_MAX_ACCOUNT_NAME 64
#define STORE_AKID_LEN 24       /* "LTAI" + 20 alnum */
#define STORE_SECRET_LEN 30     /* alnum, ~178 bits */
#define STORE_MAX_KEY_FIELD 128 /* AccessKeyId / secret as supplied by SAGFLOW_ACCESS_KEY_* */
#define STORE_AKID_PREFIX "LTAI"
#define STORE_QUEUE_MAX 65536 /* queued write jobs before store_write_async refuses */

struct store;
struct store_tx; /* a connection inside a transaction (write) or a snapshot (read) */

typedef int (*store_fn)(struct store_tx *tx, void *arg);
/* The backend of a transaction: "sqlite" or "postgresql" (for modules with
 * queries of their own per backend, such as logstore/meta.c). */
const char *store_tx_backend(struct store_tx *tx);
typedef void (*store_done_fn)(void *arg, int rc);

/* path: an SQLite file path ("sqlite:" prefix optional), or a libpq URI
 * starting postgresql:// or postgres:// (several hosts and
 * target_session_attrs=read-write allowed). SQLite: creates the file with mode
 * 0600. Applies pending migrations (on PostgreSQL once, however many
 * processes start at the same moment). Returns NULL with a logged reason. A
 * PostgreSQL server that cannot be reached yet is not an error: the store
 * starts unready (store_ready) and connects, and migrates, in the background. */
struct store *store_open(const char *path);
/* true when path names a PostgreSQL database (postgresql:// or postgres://). */
bool store_path_is_pg(const char *path);
struct store_options {
	int pg_writers; /* PostgreSQL writer threads (connections); 0: STORE_PG_WRITERS */
	/* serve: this process answers requests beside other nodes. PostgreSQL: a
	 * listener thread holds a node lease, acknowledges key changes (so the key
	 * cache can stay on) and sweeps nonces (docs/store.md, "N nodes"). */
	bool node;
};
#define STORE_PG_WRITERS 2
#define STORE_PG_WRITERS_MAX 64
struct store *store_open_with(const char *path, const struct store_options *o);
/* false while the database cannot be reached (PostgreSQL; SQLite: always
 * true). Requests then fail fast with STORE_EUNAVAIL, and /healthz says not
 * ready. */
bool store_ready(struct store *s);
/* Drains pending writes, checkpoints, closes every connection; NULL is a no-op.
 * No store_read may be running or start once it is called. */
void store_close(struct store *s);

/* Runs fn in a read transaction (one snapshot) on this thread's own connection
 * and returns its result, or STORE_EIO. Not re-entrant: fn must not call
 * store_read or store_write. */
int store_read(struct store *s, store_fn fn, void *arg);
/* A number that changes whenever this process may have changed the data of
 * account `scope`: after any write job scoped to that account
 * (store_write_async_scoped) or not scoped at all, once its batch has ended
 * (committed or not) and before the job is acknowledged. Read it before a read
 * transaction to label what the read saw; while it is unchanged, the same read
 * of that account's data gives the same answer (writes by other processes, such
 * as `sagflow keys`, are not seen by it). Accounts share STORE_SCOPE_SLOTS
 * counters: another account's write may change it too, never the reverse. */
uint64_t store_data_version(struct store *s, int64_t scope);
#define STORE_SCOPE_SLOTS 1024
/* Queues fn for the writer thread; done(arg, rc) runs exactly once, normally on
 * the writer thread after the batch's COMMIT is durable. When the queue is full
 * (STORE_QUEUE_MAX) or the store is closing, done(arg, STORE_EIO) runs on the
 * calling thread before this returns. done may be NULL. */
void store_write_async(struct store *s, store_fn fn, void *arg, store_done_fn done);
/* The same, for a job that changes only the data of account scope (> 0): it
 * moves store_data_version() of that account alone, so other accounts' cached
 * answers survive it. scope 0 is store_write_async; STORE_SCOPE_NONE moves none. */
void store_write_async_scoped(struct store *s, int64_t scope, store_fn fn, void *arg,
			      store_done_fn done);
/* The scope of a job that changes nothing a cached answer reads (a device's
 * sequence mark): it moves no data version at all. */
#define STORE_SCOPE_NONE (-1)
/* Blocking form; must not be called from inside a store_fn or a done(). */
int store_write(struct store *s, store_fn fn, void *arg);

/* Admission of one signed request: its nonce and, for a cacheable answer, the
 * label of the caller's account data, in one step so that a backend shared by
 * several processes (PostgreSQL) can answer both in one round trip and one
 * snapshot (docs/store.md, "N nodes"). */
enum store_admit_result {
	STORE_ADMIT_FRESH, /* first use of (who, nonce): go on */
	STORE_ADMIT_USED,  /* a replay within the window */
	STORE_ADMIT_FULL,  /* the replay memory cannot take it: refuse (fail closed) */
	STORE_ADMIT_EARLY, /* signed before the replay horizon (a database crash forgot nonces) */
	STORE_ADMIT_UNAVAIL, /* the database is unreachable: refuse (fail closed) */
};
struct store_admission {
	struct str who;    /* AccessKeyId */
	struct str nonce;  /* SignatureNonce, 1..NONCE_MAX_LEN bytes */
	int64_t ts_s;      /* the request's Timestamp, epoch seconds */
	int64_t now_s;     /* this process's clock */
	int64_t expires_s; /* remember the nonce until then: ts_s + window + 1 */
	int64_t account;   /* the caller's account, for *version */
};
/* version NULL: no label wanted (no per-request version work). Otherwise, when
 * the nonce is fresh, *version is store_data_version(account) as of after the
 * request arrived and before any read it labels. */
enum store_admit_result store_admit(struct store *s, const struct store_admission *a,
				    uint64_t *version);
/* The answer of store_admit_async: version as store_admit's *version (when a
 * label was asked for and r is STORE_ADMIT_FRESH; else 0). */
typedef void (*store_admit_done_fn)(void *arg, enum store_admit_result r, uint64_t version);
/* store_admit without waiting: done(arg, ...) runs exactly once, either on
 * this thread before it returns (SQLite: the replay memory is in-process; on
 * PostgreSQL when refused at once, the server away) or on the backend's
 * admission thread (PostgreSQL: many admissions in one statement, within
 * PG_ADMIT_WAIT_MS + PG_ADMIT_EXEC_MS, refused with STORE_ADMIT_UNAVAIL past
 * them and when the store closes). done must not block nor do real work on
 * the admission thread: it delays every other admission; hand it back to
 * the request's own thread (http_defer). label false: no version wanted. */
void store_admit_async(struct store *s, const struct store_admission *a, bool label,
		       store_admit_done_fn done, void *arg);
/* Bounds of the replay memory of an in-process backend (nonce.h: max_entries,
 * per_key); serve calls it once before serving. A shared backend keeps nonces in
 * the database and ignores it. */
void store_admit_limits(struct store *s, uint32_t max_entries, uint32_t per_key);
/* Nonces remembered now and the most that fit (0, 0 when the database keeps them). */
uint64_t store_admit_live(struct store *s, int64_t now_s, uint64_t *capacity);

/* Counters since store_open, for benchmarks and logs. */
struct store_stats {
	uint64_t batches;     /* COMMITs of the writer (one fsync each) */
	uint64_t jobs;        /* write jobs run */
	uint64_t max_batch;   /* the largest batch seen */
	uint64_t checkpoints; /* WAL checkpoint passes run (incl. restarts) */
	uint64_t read_conns;  /* read connections open (one per thread that read) */
	uint64_t round_trips; /* PostgreSQL: the writers' round trips (pipeline syncs) */
	uint64_t strict_redos; /* PostgreSQL: batches run again with a quota check per job */
};
void store_stats(struct store *s, struct store_stats *out);

/* Registers the store's metrics (commits, batch sizes, commit durations;
 * docs/metrics.md). Call once, before store_open; without it nothing is
 * counted. */
void store_metrics_enable(void);

/* Accounts and access keys. */
struct store_key {
	int64_t account_id;
	char account_name[STORE_MAX_ACCOUNT_NAME + 1];
	char akid[STORE_MAX_KEY_FIELD + 1];
	char secret[STORE_MAX_KEY_FIELD + 1];
	int64_t created_ms;
};

/* Fills k->akid ("LTAI" + 20 alnum) and k->secret (30 alnum) from the CSPRNG. */
void store_key_generate(struct store_key *k);

/* store_key_get in a read transaction of its own, through a small cache that
 * any process's committed key change (store_key_insert/delete) invalidates
 * before that change is acknowledged. For request authentication. */
int store_key_find(struct store *s, const char *akid, struct store_key *out);
/* 0, or 1 when no such key (not an error), or STORE_EIO. */
int store_key_get(struct store_tx *tx, const char *akid, struct store_key *out);
/* Creates the account when new; returns its id in *account_id. A name must be
 * 1..STORE_MAX_ACCOUNT_NAME of [A-Za-z0-9._@-], else ERR_INVALID_PARAMETER. */
int store_account_ensure(struct store_tx *tx, const char *name, int64_t *account_id);
/* Inserts k (account_id, akid, secret; created_ms 0 means now). 0, or 1 when
 * the AccessKeyId exists already, ERR_INVALID_PARAMETER for an id or secret that
 * is empty, too long or not printable ASCII, or an id that starts with
 * DOMAIN_DEVICE_KEY_PREFIX (a device's credential), or STORE_EIO. */
int store_key_insert(struct store_tx *tx, const struct store_key *k);
/* 0, or 1 when no such key. */
int store_key_delete(struct store_tx *tx, const char *akid);
/* Calls fn for each key (ordered by account, then creation); stops when fn returns non-zero. */
int store_key_each(struct store_tx *tx, int (*fn)(const struct store_key *k, void *arg), void *arg);

#endif
