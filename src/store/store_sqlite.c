/* The SQLite backend: WAL, synchronous=FULL, one writer thread doing group
 * commit, one read connection per reading thread, checkpoints between batches.
 *
 * Why one writer: SQLite allows one writer at a time anyway; serialising writes
 * in the process means no thread ever waits in SQLite's busy handler, and the
 * writer can put every queued job into one transaction and pay one fsync for
 * all of them (group commit). Each job runs in its own SAVEPOINT so a job that
 * fails rolls back only itself. */
#include "store/sqlite_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "core/timeutil.h"
#include "core/xmalloc.h"
#include "metrics/metrics.h"
#include "store/migrations.h"

#define STORE_BATCH_MAX 512          /* jobs per transaction; bounds one commit's latency */
#define STORE_BUSY_TIMEOUT_MS 5000   /* another process (sagflow keys) holding the lock */
#define STORE_MAX_PATH 4096
#define STORE_CKPT_FRAMES 1000       /* new WAL frames that call for a checkpoint */
#define STORE_CKPT_INTERVAL_MS 1000  /* thread mode: the checkpointer also looks this often */
#define STORE_WAL_RESTART_FRAMES 8192 /* ~32 MiB of WAL: the writer makes it start over */
#define STORE_RESTART_BUSY_MS 10       /* how long that RESTART waits for readers */
#define STORE_CHECKPOINT_ENV "SAGFLOW_STORE_CHECKPOINT" /* writer (default), inline, thread */
#define STORE_JOURNAL_SIZE_LIMIT 67108864 /* WAL bytes kept after a reset (64 MiB) */
#define STORE_EPOCH_SUFFIX "-keys" /* the shared key epoch beside the database */
#define STORE_EPOCH_BYTES 4096      /* one page: the counter lives at its start */
#define STORE_STR_(x) #x
#define STORE_STR(x) STORE_STR_(x)

struct sqlite_store;

struct stmt_slot {
	char *sql; /* our own copy: the caller's text need not outlive the connection */
	sqlite3_stmt *st;
};

/* One connection and its statement cache. The transaction handed to store
 * functions is the connection itself (tx is the first member). */
struct sconn {
	struct store_tx tx;
	sqlite3 *db;
	struct sqlite_store *owner;
	bool in_tx;
	bool keys_changed; /* writer: this batch changed access keys */
	struct stmt_slot cache[SQLITE_STMT_CACHE_MAX];
	struct sconn *next; /* every reader connection, for store_close */
	struct sconn *next_free;
};

struct job {
	store_fn fn;
	void *arg;
	store_done_fn done;
	int64_t scope; /* the account it changes, or 0: any */
	int rc;
	struct job *next;
};

struct sqlite_store {
	struct store base;
	char *path;
	pthread_mutex_t mu;
	pthread_cond_t cv_work; /* the writer waits for jobs */
	pthread_cond_t cv_ckpt; /* the checkpointer waits for frames */
	struct job *head, **tailp;
	size_t queued;
	bool stopping, writer_done, ckpt_stop, ckpt_wanted;
	pthread_t writer, ckpt;
	struct sconn *wconn, *cconn;
	pthread_key_t reader_key;
	struct sconn *readers, *free_readers;
	atomic_int wal_frames; /* the WAL's size after the last commit */
	atomic_int ckpt_base;  /* ... when the last checkpoint pass ran */
	enum ckpt_mode { CKPT_WRITER, CKPT_INLINE, CKPT_THREAD } ckpt_mode;
	bool ckpt_started;
	int restart_retry_at; /* writer thread only: WAL frames before the next RESTART try */
	struct store_stats stats; /* under mu */
	void *epoch_mem;          /* the mapped key epoch file (epoch_map), or NULL */
};

static const struct store_ops sqlite_ops;
static void writer_after_batch(struct sqlite_store *s);

/* Set on the writer thread, so a store_write from a job or a done() callback
 * (which would wait for itself forever) is refused instead. */
static __thread const struct sqlite_store *writer_self;

/* ---- connections and the statement cache ---- */

static struct sconn *conn_of(struct store_tx *tx)
{
	return (struct sconn *)tx;
}

sqlite3 *sqlite_tx_db(struct store_tx *tx)
{
	return conn_of(tx)->db;
}

int sqlite_tx_fail(struct store_tx *tx, const char *what)
{
	log_err("store: %s: %s", what, sqlite3_errmsg(conn_of(tx)->db));
	return STORE_EIO;
}

/* FNV-1a over the SQL text: the cache is keyed by content, so two call sites
 * with the same query share one statement. */
static unsigned sql_hash(const char *sql)
{
	unsigned h = 2166136261u;
	for (const unsigned char *p = (const unsigned char *)sql; *p; p++)
		h = (h ^ *p) * 16777619u;
	return h;
}

static sqlite3_stmt *conn_stmt(struct sconn *c, const char *sql)
{
	unsigned mask = SQLITE_STMT_CACHE_MAX - 1, i = sql_hash(sql) & mask;
	for (unsigned n = 0; n < SQLITE_STMT_CACHE_MAX; n++, i = (i + 1) & mask) {
		struct stmt_slot *slot = &c->cache[i];
		if (slot->sql && !strcmp(slot->sql, sql)) {
			sqlite3_reset(slot->st);
			sqlite3_clear_bindings(slot->st);
			return slot->st;
		}
		if (!slot->sql) {
			if (sqlite3_prepare_v3(c->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &slot->st,
					       NULL) != SQLITE_OK) {
				log_err("store: prepare failed: %s (%s)", sqlite3_errmsg(c->db), sql);
				sqlite3_finalize(slot->st);
				slot->st = NULL;
				return NULL;
			}
			slot->sql = xstrdup(sql);
			return slot->st;
		}
	}
	log_err("store: more than %d distinct statements on one connection",
		SQLITE_STMT_CACHE_MAX);
	return NULL;
}

_Static_assert((SQLITE_STMT_CACHE_MAX & (SQLITE_STMT_CACHE_MAX - 1)) == 0,
	       "the statement cache is an open-addressing table of a power of two");

void sqlite_tx_keys_changed(struct store_tx *tx)
{
	conn_of(tx)->keys_changed = true;
}

sqlite3_stmt *sqlite_tx_stmt(struct store_tx *tx, const char *sql)
{
	/* Code written for SQLite (the log store's meta.c) handed another
	 * backend's transaction fails instead of misreading it. */
	if (tx->ops != &sqlite_ops) {
		log_err("store: an SQLite query on a %s transaction", tx->ops->name);
		return NULL;
	}
	return conn_stmt(conn_of(tx), sql);
}

int sqlite_col_copy(sqlite3_stmt *st, int col, char *out, size_t cap)
{
	const unsigned char *t = sqlite3_column_text(st, col);
	int n = sqlite3_column_bytes(st, col);
	if (!t || n < 0 || (size_t)n >= cap)
		return -1;
	memcpy(out, t, (size_t)n);
	out[n] = '\0';
	return 0;
}

/* A statement left mid-result would keep its read snapshot (or block COMMIT). */
static void conn_reset_all(struct sconn *c)
{
	for (sqlite3_stmt *st = sqlite3_next_stmt(c->db, NULL); st; st = sqlite3_next_stmt(c->db, st))
		if (sqlite3_stmt_busy(st))
			sqlite3_reset(st);
}

/* Runs one cached statement that returns no rows. */
static int conn_exec(struct sconn *c, const char *sql)
{
	sqlite3_stmt *st = conn_stmt(c, sql);
	if (!st)
		return -1;
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
		log_err("store: %s: %s", sql, sqlite3_errmsg(c->db));
		return -1;
	}
	return 0;
}

static void conn_close(struct sconn *c)
{
	if (!c)
		return;
	for (int i = 0; i < SQLITE_STMT_CACHE_MAX; i++) {
		sqlite3_finalize(c->cache[i].st);
		free(c->cache[i].sql);
	}
	if (sqlite3_close(c->db) != SQLITE_OK)
		log_err("store: close: %s", sqlite3_errmsg(c->db));
	free(c);
}

/* Settings every connection gets. synchronous=FULL in WAL mode syncs the WAL
 * on every COMMIT: an acknowledged write survives power loss. */
static const char *const conn_pragmas[] = {
	"PRAGMA synchronous=FULL",
	"PRAGMA foreign_keys=ON",
	("PRAGMA journal_size_limit=" STORE_STR(STORE_JOURNAL_SIZE_LIMIT)),
};

static struct sconn *conn_open(struct sqlite_store *s, const char *role)
{
	struct sconn *c = xcalloc(1, sizeof(*c));
	c->tx.ops = &sqlite_ops;
	c->owner = s;
	int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_NOFOLLOW;
	if (sqlite3_open_v2(s->path, &c->db, flags, NULL) != SQLITE_OK) {
		log_err("store: open %s (%s connection): %s", s->path, role,
			c->db ? sqlite3_errmsg(c->db) : "out of memory");
		sqlite3_close(c->db);
		free(c);
		return NULL;
	}
	sqlite3_extended_result_codes(c->db, 1);
	sqlite3_busy_timeout(c->db, STORE_BUSY_TIMEOUT_MS);
	for (size_t i = 0; i < sizeof(conn_pragmas) / sizeof(conn_pragmas[0]); i++) {
		char *msg = NULL;
		if (sqlite3_exec(c->db, conn_pragmas[i], NULL, NULL, &msg) != SQLITE_OK) {
			log_err("store: %s: %s", conn_pragmas[i], msg ? msg : "failed");
			sqlite3_free(msg);
			conn_close(c);
			return NULL;
		}
	}
	return c;
}

/* ---- opening: the file, its mode, migrations ---- */

/* The database holds access key secrets: create it 0600 ourselves, before
 * SQLite does with its default 0644. SQLite gives the -wal and -shm files the
 * database file's mode, so they are 0600 too. */
static int create_private_file(const char *path)
{
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		log_err("store: %s: %s", path, strerror(errno));
		return -1;
	}
	struct stat st;
	int rc = 0;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		log_err("store: %s: not a regular file", path);
		rc = -1;
	} else if ((st.st_mode & 077) != 0) {
		log_warn("store: %s was readable by others (mode %03o); setting 0600", path,
			 (unsigned)(st.st_mode & 0777));
		if (fchmod(fd, 0600) != 0) {
			log_err("store: chmod %s: %s", path, strerror(errno));
			rc = -1;
		}
	}
	close(fd);
	return rc;
}

static int exec_sql(sqlite3 *db, const char *sql, const char *what)
{
	char *msg = NULL;
	if (sqlite3_exec(db, sql, NULL, NULL, &msg) == SQLITE_OK)
		return 0;
	log_err("store: %s: %s", what, msg ? msg : sqlite3_errmsg(db));
	sqlite3_free(msg);
	return -1;
}

static int user_version(sqlite3 *db, int *out)
{
	sqlite3_stmt *st = NULL;
	int rc = -1;
	if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW) {
		*out = sqlite3_column_int(st, 0);
		rc = 0;
	}
	sqlite3_finalize(st);
	return rc;
}

/* Applies one migration in its own transaction. The version is read again under
 * the write lock, so two processes opening a new file do not both apply it. */
static int migrate_one(sqlite3 *db, const struct store_migration *m)
{
	int have = 0;
	if (exec_sql(db, "BEGIN IMMEDIATE", "migration begin") != 0)
		return -1;
	if (user_version(db, &have) != 0)
		goto fail;
	if (have >= m->version) {
		exec_sql(db, "ROLLBACK", "migration rollback");
		return 0;
	}
	if (exec_sql(db, m->sql, m->name) != 0)
		goto fail;
	char set[64];
	snprintf(set, sizeof(set), "PRAGMA user_version=%d", m->version);
	if (exec_sql(db, set, "set user_version") != 0 || exec_sql(db, "COMMIT", "migration commit") != 0)
		goto fail;
	log_info("store: applied migration %s", m->name);
	return 0;
fail:
	exec_sql(db, "ROLLBACK", "migration rollback");
	return -1;
}

static int migrate(sqlite3 *db, const char *path)
{
	int have = 0;
	if (user_version(db, &have) != 0) {
		log_err("store: %s: cannot read the schema version: %s", path, sqlite3_errmsg(db));
		return -1;
	}
	if (have > store_migrations_count) {
		log_err("store: %s has schema version %d, newer than this binary's %d; refusing to "
			"open it",
			path, have, store_migrations_count);
		return -1;
	}
	for (int i = have; i < store_migrations_count; i++)
		if (migrate_one(db, &store_migrations[i]) != 0)
			return -1;
	return 0;
}

static int enable_wal(sqlite3 *db, const char *path)
{
	sqlite3_stmt *st = NULL;
	int ok = sqlite3_prepare_v2(db, "PRAGMA journal_mode=WAL", -1, &st, NULL) == SQLITE_OK &&
		 sqlite3_step(st) == SQLITE_ROW &&
		 !sqlite3_stricmp((const char *)sqlite3_column_text(st, 0), "wal");
	sqlite3_finalize(st);
	if (!ok)
		log_err("store: %s: cannot switch to WAL mode: %s", path, sqlite3_errmsg(db));
	return ok ? 0 : -1;
}

/* ---- reads: one connection per thread ---- */

/* A thread that exits gives its connection back for the next new thread. */
static void reader_release(void *p)
{
	struct sconn *c = p;
	struct sqlite_store *s = c->owner;
	pthread_mutex_lock(&s->mu);
	c->next_free = s->free_readers;
	s->free_readers = c;
	pthread_mutex_unlock(&s->mu);
}

static struct sconn *reader_get(struct sqlite_store *s)
{
	struct sconn *c = pthread_getspecific(s->reader_key);
	if (c)
		return c;
	pthread_mutex_lock(&s->mu);
	c = s->free_readers;
	if (c)
		s->free_readers = c->next_free;
	pthread_mutex_unlock(&s->mu);
	if (!c) {
		c = conn_open(s, "read");
		/* query_only: a store_read function that tries to write fails loudly. */
		if (!c || exec_sql(c->db, "PRAGMA query_only=1", "query_only") != 0) {
			conn_close(c);
			return NULL;
		}
		pthread_mutex_lock(&s->mu);
		c->next = s->readers;
		s->readers = c;
		s->stats.read_conns++;
		pthread_mutex_unlock(&s->mu);
	}
	pthread_setspecific(s->reader_key, c);
	return c;
}

static int sqlite_read(struct store *base, store_fn fn, void *arg)
{
	struct sqlite_store *s = (struct sqlite_store *)base;
	struct sconn *c = reader_get(s);
	if (!c)
		return STORE_EIO;
	if (c->in_tx) {
		log_err("store: store_read called inside store_read");
		return STORE_EIO;
	}
	if (conn_exec(c, "BEGIN") != 0)
		return STORE_EIO;
	c->in_tx = true;
	int rc = fn(&c->tx, arg);
	c->in_tx = false;
	conn_reset_all(c);
	if (conn_exec(c, "COMMIT") != 0) {
		if (!sqlite3_get_autocommit(c->db))
			conn_exec(c, "ROLLBACK");
		return STORE_EIO;
	}
	return rc;
}

/* ---- writes: the queue and the group-commit writer ---- */

/* The hint is not needed: the one writer runs each lookup in process. */
static void sqlite_write_async(struct store *base, int64_t scope, const struct store_lock_hint *h,
			       store_fn fn, void *arg, store_done_fn done)
{
	(void)h;
	struct sqlite_store *s = (struct sqlite_store *)base;
	struct job *j = xmalloc(sizeof(*j));
	*j = (struct job){.fn = fn, .arg = arg, .done = done, .scope = scope, .rc = STORE_EIO};
	pthread_mutex_lock(&s->mu);
	bool refuse = s->writer_done || s->queued >= STORE_QUEUE_MAX;
	if (!refuse) {
		*s->tailp = j;
		s->tailp = &j->next;
		s->queued++;
		pthread_cond_signal(&s->cv_work);
	}
	pthread_mutex_unlock(&s->mu);
	if (refuse) {
		log_warn("store: write refused (%s)", s->writer_done ? "store closing" : "queue full");
		if (done)
			done(arg, STORE_EIO);
		free(j);
	}
}

/* Runs one job under its own savepoint. Returns -1 when the transaction as a
 * whole is lost (SQLite rolled it back, or a savepoint statement failed). */
static int run_job(struct sconn *c, struct job *j)
{
	if (conn_exec(c, "SAVEPOINT job") != 0)
		return -1;
	c->in_tx = true;
	j->rc = j->fn(&c->tx, j->arg);
	c->in_tx = false;
	conn_reset_all(c);
	/* Some errors (disk full, I/O) make SQLite roll back the whole transaction. */
	if (sqlite3_get_autocommit(c->db))
		return -1;
	/* A deferred foreign key left dangling would fail the COMMIT, and with it
	 * every job of the batch: charge it to this job instead. The count was
	 * zero before it ran, since every earlier job was checked the same way. */
	int dangling = 0, high = 0;
	if (j->rc == 0 &&
	    sqlite3_db_status(c->db, SQLITE_DBSTATUS_DEFERRED_FKS, &dangling, &high, 0) == SQLITE_OK &&
	    dangling > 0) {
		log_err("store: a write left a foreign key unresolved; it is rolled back");
		j->rc = STORE_EIO;
	}
	if (j->rc != 0 && conn_exec(c, "ROLLBACK TO job") != 0)
		return -1;
	return conn_exec(c, "RELEASE job");
}

static void run_batch(struct sqlite_store *s, struct job *batch)
{
	struct sconn *c = s->wconn;
	bool lost = conn_exec(c, "BEGIN IMMEDIATE") != 0;
	for (struct job *j = batch; j && !lost; j = j->next)
		lost = run_job(c, j) != 0;
	if (!lost) {
		/* synchronous=FULL: the COMMIT returns once the WAL is fsynced. */
		int64_t t0 = time_mono_us();
		lost = conn_exec(c, "COMMIT") != 0;
		if (!lost) {
			metrics_count(store_m_commits, 0, 0, 1);
			metrics_observe(store_m_commit_us, 0, 0, (uint64_t)(time_mono_us() - t0));
		}
	}
	if (lost) {
		if (!sqlite3_get_autocommit(c->db))
			conn_exec(c, "ROLLBACK");
		for (struct job *j = batch; j; j = j->next)
			j->rc = STORE_EIO;
	}
	/* Before any done(): a client that saw its write acknowledged never gets a
	 * response cached from before it (rpc/cache.h), and a `sagflow keys delete`
	 * that returned is seen by every serve's key cache (store.c). */
	bool any = false;
	for (struct job *j = batch; j; j = j->next) {
		if (j->scope > 0)
			atomic_fetch_add_explicit(&s->base.scope_version[store_scope_slot(j->scope)], 1,
						  memory_order_release);
		else if (j->scope == 0)
			any = true;
	}
	if (any)
		atomic_fetch_add_explicit(&s->base.data_version, 1, memory_order_release);
	if (c->keys_changed && s->base.keys_epoch)
		atomic_fetch_add_explicit(s->base.keys_epoch, 1, memory_order_release);
	c->keys_changed = false;
	while (batch) {
		struct job *next = batch->next;
		if (batch->done)
			batch->done(batch->arg, batch->rc);
		free(batch);
		batch = next;
	}
}

static void *writer_main(void *arg)
{
	struct sqlite_store *s = arg;
	writer_self = s;
	pthread_mutex_lock(&s->mu);
	for (;;) {
		while (!s->head && !s->stopping)
			pthread_cond_wait(&s->cv_work, &s->mu);
		if (!s->head)
			break;
		/* Take up to STORE_BATCH_MAX jobs; the rest wait for the next commit. */
		struct job *batch = s->head, **end = &s->head;
		size_t n = 0;
		while (*end && n < STORE_BATCH_MAX) {
			end = &(*end)->next;
			n++;
		}
		s->head = *end;
		*end = NULL;
		if (!s->head)
			s->tailp = &s->head;
		s->queued -= n;
		s->stats.batches++;
		s->stats.jobs += n;
		if (n > s->stats.max_batch)
			s->stats.max_batch = n;
		metrics_observe(store_m_batch, 0, 0, n);
		pthread_mutex_unlock(&s->mu);
		run_batch(s, batch);
		writer_after_batch(s);
		pthread_mutex_lock(&s->mu);
	}
	s->writer_done = true;
	pthread_mutex_unlock(&s->mu);
	return NULL;
}

/* ---- checkpoints off the write path ---- */

/* Three ways to checkpoint, chosen by SAGFLOW_STORE_CHECKPOINT (docs/store.md
 * has the measurements behind the default):
 *   writer  (default) the writer thread runs a PASSIVE checkpoint between
 *           batches, after their done() callbacks, once STORE_CKPT_FRAMES new
 *           frames are in the WAL: no acknowledgement waits for it, and with no
 *           write in progress it catches up fully, so the WAL starts over;
 *   inline  SQLite's autocheckpoint, inside the COMMIT that crosses 1000 frames;
 *   thread  a separate thread with its own connection runs PASSIVE checkpoints
 *           concurrently with the writer.
 *
 * Called on the writer after each COMMIT with the WAL's size in frames.
 * Installing it turns off SQLite's own autocheckpoint. */
static int wal_hook(void *arg, sqlite3 *db, const char *name, int frames)
{
	struct sqlite_store *s = arg;
	atomic_store(&s->wal_frames, frames);
	int base = atomic_load(&s->ckpt_base);
	if (frames < base) /* the WAL was restarted from the top */
		atomic_store(&s->ckpt_base, base = 0);
	/* Woken once per STORE_CKPT_FRAMES new frames, not on every commit: each
	 * pass fsyncs the database file, and that fsync competes with the WAL's. */
	if (s->ckpt_mode == CKPT_THREAD && frames - base >= STORE_CKPT_FRAMES) {
		pthread_mutex_lock(&s->mu);
		s->ckpt_wanted = true;
		pthread_cond_signal(&s->cv_ckpt);
		pthread_mutex_unlock(&s->mu);
	}
	return SQLITE_OK;
}

static void count_checkpoint(struct sqlite_store *s)
{
	pthread_mutex_lock(&s->mu);
	s->stats.checkpoints++;
	pthread_mutex_unlock(&s->mu);
}

/* PASSIVE copies what no reader still needs and never waits for anyone. */
static void checkpoint(struct sqlite_store *s, sqlite3 *db)
{
	int frames = atomic_load(&s->wal_frames);
	if (frames <= atomic_load(&s->ckpt_base))
		return;
	int log_frames = 0, done_frames = 0;
	int rc = sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_PASSIVE, &log_frames,
					   &done_frames);
	if (rc != SQLITE_OK && rc != SQLITE_BUSY)
		log_warn("store: checkpoint: %s", sqlite3_errmsg(db));
	if (rc == SQLITE_OK)
		atomic_store(&s->ckpt_base, log_frames);
	count_checkpoint(s);
}

/* A PASSIVE pass cannot finish while a reader still needs old frames (or, in
 * thread mode, while the writer keeps committing), and then the WAL never
 * starts over and grows without end; appending to a growing file costs more per
 * fsync than overwriting (docs/store.md). So once the WAL passes
 * STORE_WAL_RESTART_FRAMES the writer, between batches and after their done()
 * callbacks, runs a RESTART checkpoint. */
static void writer_maybe_restart(struct sqlite_store *s)
{
	int frames = atomic_load(&s->wal_frames);
	if (frames < STORE_WAL_RESTART_FRAMES || frames < s->restart_retry_at)
		return;
	/* RESTART waits for readers still on the old WAL; a long one must not
	 * stall the writer for the whole busy timeout, so wait briefly and try
	 * again STORE_CKPT_FRAMES frames later. */
	sqlite3_busy_timeout(s->wconn->db, STORE_RESTART_BUSY_MS);
	int rc = sqlite3_wal_checkpoint_v2(s->wconn->db, NULL, SQLITE_CHECKPOINT_RESTART, NULL, NULL);
	sqlite3_busy_timeout(s->wconn->db, STORE_BUSY_TIMEOUT_MS);
	if (rc == SQLITE_OK) {
		atomic_store(&s->wal_frames, 0);
		atomic_store(&s->ckpt_base, 0);
		s->restart_retry_at = 0;
	} else {
		if (rc != SQLITE_BUSY)
			log_warn("store: restart checkpoint: %s", sqlite3_errmsg(s->wconn->db));
		s->restart_retry_at = frames + STORE_CKPT_FRAMES;
	}
	count_checkpoint(s);
}

static void writer_after_batch(struct sqlite_store *s)
{
	if (s->ckpt_mode == CKPT_INLINE)
		return;
	if (s->ckpt_mode == CKPT_WRITER &&
	    atomic_load(&s->wal_frames) - atomic_load(&s->ckpt_base) >= STORE_CKPT_FRAMES)
		checkpoint(s, s->wconn->db);
	writer_maybe_restart(s);
}

static void *ckpt_main(void *arg)
{
	struct sqlite_store *s = arg;
	pthread_mutex_lock(&s->mu);
	while (!s->ckpt_stop) {
		struct timespec until =
		    time_deadline(CLOCK_REALTIME, (int64_t)STORE_CKPT_INTERVAL_MS * 1000);
		while (!s->ckpt_wanted && !s->ckpt_stop)
			if (pthread_cond_timedwait(&s->cv_ckpt, &s->mu, &until) == ETIMEDOUT)
				break;
		if (s->ckpt_stop)
			break;
		s->ckpt_wanted = false;
		pthread_mutex_unlock(&s->mu);
		checkpoint(s, s->cconn->db);
		pthread_mutex_lock(&s->mu);
	}
	pthread_mutex_unlock(&s->mu);
	return NULL;
}

/* ---- open and close ---- */

static int ckpt_mode_from_env(enum ckpt_mode *out)
{
	static const char *const names[] = {[CKPT_WRITER] = "writer", [CKPT_INLINE] = "inline",
					    [CKPT_THREAD] = "thread"};
	const char *v = getenv(STORE_CHECKPOINT_ENV);
	*out = CKPT_WRITER;
	if (!v || !*v)
		return 0;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (!strcmp(v, names[i])) {
			*out = (enum ckpt_mode)i;
			return 0;
		}
	log_err("store: %s must be writer, inline or thread", STORE_CHECKPOINT_ENV);
	return -1;
}

/* Access keys also change in other processes (`sagflow keys` beside a running
 * serve). Every process maps the same small file beside the database, and the
 * writer bumps the counter at its start after any COMMIT that changed a key:
 * a key cache then notices with one memory load instead of a read transaction
 * (two fcntl(2) locks) per request. Without the file there is no key cache. */
static void *epoch_map(const char *db_path)
{
	char path[STORE_MAX_PATH + sizeof(STORE_EPOCH_SUFFIX)];
	snprintf(path, sizeof(path), "%s%s", db_path, STORE_EPOCH_SUFFIX);
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		log_warn("store: %s: %s; access keys are read from the database every time", path,
			 strerror(errno));
		return NULL;
	}
	void *m = MAP_FAILED;
	struct stat st;
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
	    (st.st_size >= STORE_EPOCH_BYTES || ftruncate(fd, STORE_EPOCH_BYTES) == 0))
		m = mmap(NULL, STORE_EPOCH_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED)
		log_warn("store: %s: cannot map it (%s); access keys are read from the database "
			 "every time", path, strerror(errno));
	close(fd);
	return m == MAP_FAILED ? NULL : m;
}

static void sqlite_free(struct sqlite_store *s)
{
	if (s->epoch_mem)
		munmap(s->epoch_mem, STORE_EPOCH_BYTES);
	conn_close(s->cconn);
	conn_close(s->wconn);
	pthread_cond_destroy(&s->cv_ckpt);
	pthread_cond_destroy(&s->cv_work);
	pthread_mutex_destroy(&s->mu);
	free(s->path);
	free(s);
}

struct store *store_sqlite_open(const char *path)
{
	size_t plen = strnlen(path, STORE_MAX_PATH);
	if (plen == 0 || plen >= STORE_MAX_PATH) {
		log_err("store: the database path is empty or longer than %d bytes", STORE_MAX_PATH);
		return NULL;
	}
	if (create_private_file(path) != 0)
		return NULL;
	struct sqlite_store *s = xcalloc(1, sizeof(*s));
	s->base.ops = &sqlite_ops;
	s->path = xstrndup(path, plen);
	s->tailp = &s->head;
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->cv_work, NULL);
	pthread_cond_init(&s->cv_ckpt, NULL);
	s->wconn = conn_open(s, "write");
	if (!s->wconn || enable_wal(s->wconn->db, path) != 0 || migrate(s->wconn->db, path) != 0)
		goto fail;
	if (ckpt_mode_from_env(&s->ckpt_mode) != 0)
		goto fail;
	s->epoch_mem = epoch_map(s->path);
	s->base.keys_epoch = s->epoch_mem;
	if (s->ckpt_mode == CKPT_THREAD && !(s->cconn = conn_open(s, "checkpoint")))
		goto fail;
	if (s->ckpt_mode != CKPT_INLINE)
		sqlite3_wal_hook(s->wconn->db, wal_hook, s);
	if (pthread_key_create(&s->reader_key, reader_release) != 0)
		goto fail;
	if (pthread_create(&s->writer, NULL, writer_main, s) != 0) {
		pthread_key_delete(s->reader_key);
		goto fail;
	}
	if (s->ckpt_mode == CKPT_THREAD) {
		if (pthread_create(&s->ckpt, NULL, ckpt_main, s) != 0)
			fatal("store: cannot start the checkpoint thread");
		s->ckpt_started = true;
	}
	return &s->base;
fail:
	sqlite_free(s);
	return NULL;
}

static void sqlite_close(struct store *base)
{
	struct sqlite_store *s = (struct sqlite_store *)base;
	pthread_mutex_lock(&s->mu);
	s->stopping = true;
	pthread_cond_signal(&s->cv_work);
	pthread_mutex_unlock(&s->mu);
	pthread_join(s->writer, NULL); /* it drains the queue before it exits */
	pthread_mutex_lock(&s->mu);
	s->ckpt_stop = true;
	pthread_cond_signal(&s->cv_ckpt);
	pthread_mutex_unlock(&s->mu);
	if (s->ckpt_started)
		pthread_join(s->ckpt, NULL);
	/* The readers first: the last connection to close checkpoints and removes
	 * the WAL, and that should be the writer. */
	pthread_key_delete(s->reader_key);
	struct sconn *c = s->readers;
	while (c) {
		struct sconn *next = c->next;
		conn_close(c);
		c = next;
	}
	if (sqlite3_wal_checkpoint_v2(s->wconn->db, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL) !=
	    SQLITE_OK)
		log_warn("store: final checkpoint: %s", sqlite3_errmsg(s->wconn->db));
	sqlite_free(s);
}

static bool sqlite_on_writer(struct store *base)
{
	return writer_self == (const struct sqlite_store *)base;
}

static void sqlite_stats(struct store *base, struct store_stats *out)
{
	struct sqlite_store *s = (struct sqlite_store *)base;
	pthread_mutex_lock(&s->mu);
	*out = s->stats;
	pthread_mutex_unlock(&s->mu);
}

static const struct store_ops sqlite_ops = {
	.name = "sqlite",
	.close = sqlite_close,
	.read = sqlite_read,
	.write_async = sqlite_write_async,
	.stats = sqlite_stats,
	.on_writer = sqlite_on_writer,
	.key_get = sqlite_key_get,
	.account_ensure = sqlite_account_ensure,
	.key_insert = sqlite_key_insert,
	.key_delete = sqlite_key_delete,
	.key_each = sqlite_key_each,
	.admit = store_local_admit,
	.flowlog_get = sqlite_flowlog_get,
	.flowlog_get_config = sqlite_flowlog_get_config,
	.flowlog_count = sqlite_flowlog_count,
	.flowlog_insert = sqlite_flowlog_insert,
	.flowlog_create = sqlite_flowlog_create,
	.flowlog_update = sqlite_flowlog_update,
	.flowlog_delete = sqlite_flowlog_delete,
	.flowlog_list = sqlite_flowlog_list,
	.sag_get = sqlite_sag_get,
	.sag_insert = sqlite_sag_insert,
	.sag_delete = sqlite_sag_delete,
	.sag_set_flowlog = sqlite_sag_set_flowlog,
	.sag_list = sqlite_sag_list,
	.sag_list_by_flowlog = sqlite_sag_list_by_flowlog,
	.sag_list_unbound = sqlite_sag_list_unbound,
	.device_insert = sqlite_device_insert,
	.device_delete = sqlite_device_delete,
	.device_owner = sqlite_device_owner,
	.device_report = sqlite_device_report,
	.device_sequence = sqlite_device_sequence,
	.device_status_counts = sqlite_device_status_counts,
};
