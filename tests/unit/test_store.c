/* The store against a real SQLite file in a fresh temporary directory, and
 * the backend-neutral half of it once more against a fresh PostgreSQL
 * database when SAGFLOW_TEST_PG names a cluster (a libpq URI for a superuser;
 * every test creates its own database and drops it): schema migrations, keys,
 * file modes, group commit under many threads, persistence and durability
 * across kill -9 (and, on PostgreSQL, across pg_ctl stop -m immediate when
 * SAGFLOW_TEST_PG_DATA and SAGFLOW_TEST_PG_CTL are set too). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "rpc/errors.h"
#include "store/migrations.h"
#include "store/sqlite_internal.h"
#include "store/store.h"
#ifdef SAGFLOW_POSTGRES
#include "store/pg_internal.h"
#include "store/store_pg.h"
#endif

#define TEST_THREADS 16
#define TEST_JOBS_PER_THREAD 200
#define TEST_KILL_ROWS 100000 /* more than the child can write before it is killed */
#define TEST_KILL_AFTER 2000  /* acknowledged rows before the parent kills it */
#define TEST_KILL_THREADS 8
#define TEST_READERS 8
#define TEST_FAIL_JOBS 100 /* rows of TEST_BIG_ROW bytes in the batch whose COMMIT fails */
#define TEST_BIG_ROW 8000                 /* bytes: two overflow pages a row */
#define TEST_BIG_ROWS 12800               /* ~100 MiB through the WAL */
#define TEST_WAL_BOUND (64 * 1024 * 1024) /* the WAL without a restart would exceed 100 MiB */
#define TEST_WAL_BOUND_WRITER (16 * 1024 * 1024)

struct fixture {
	char dir[64];
	char path[512]; /* the SQLite file, or the PostgreSQL URI */
	bool pg;
	char dbname[64]; /* PostgreSQL: the test's own database */
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	snprintf(f->dir, sizeof(f->dir), "/tmp/sagflow-store-XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	snprintf(f->path, sizeof(f->path), "%s/db.sqlite", f->dir);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char p[sizeof(f->path) + 16];
	static const char *const suffixes[] = {"", "-wal", "-shm", "-journal", "-keys"};
	for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
		snprintf(p, sizeof(p), "%s%s", f->path, suffixes[i]);
		unlink(p);
	}
	rmdir(f->dir);
	free(f);
	return 0;
}

/* ---- helpers: statements on either backend ---- */

static bool tx_is_pg(struct store_tx *tx)
{
	return !strcmp(tx->ops->name, "postgresql");
}

/* Runs sql with n integer values on the backend of tx. Placeholders are $1..$n
 * in order of first use (SQLite reads them as named parameters numbered that
 * way). 0 and the first column of the first row in *out (if any row and out),
 * 1 when out was wanted and no row came, or a store error. */
static int t_exec(struct store_tx *tx, const char *sql, int n, const int64_t *vals, int64_t *out)
{
#ifdef SAGFLOW_POSTGRES
	if (tx_is_pg(tx)) {
		struct pg_params p = {0};
		for (int i = 0; i < n; i++)
			pg_p_int(&p, vals[i]);
		PGresult *r = pg_tx_exec(tx, sql, &p, "test statement");
		if (!r)
			return pg_tx_err(tx);
		int rc = 0;
		if (out && PQntuples(r) == 0)
			rc = 1;
		else if (out)
			*out = pg_int(r, 0, 0);
		PQclear(r);
		return rc;
	}
#endif
	sqlite3_stmt *st = sqlite_tx_stmt(tx, sql);
	if (!st)
		return STORE_EIO;
	for (int i = 0; i < n; i++)
		sqlite3_bind_int64(st, i + 1, vals[i]);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW && out) {
		*out = sqlite3_column_int64(st, 0);
		return 0;
	}
	if (rc == SQLITE_DONE)
		return out ? 1 : 0;
	return rc == SQLITE_ROW ? 0 : sqlite_tx_fail(tx, "test statement");
}

/* ---- a scratch table for generic jobs ---- */

static int make_table(struct store_tx *tx, void *arg)
{
	return t_exec(tx, tx_is_pg(tx) ? "CREATE TABLE IF NOT EXISTS t (id bigint PRIMARY KEY, "
					 "v bigint NOT NULL)"
				       : "CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, "
					 "v INTEGER NOT NULL)",
		      0, NULL, NULL);
}

struct row {
	int64_t id, v;
	int fail_with; /* returned after the insert, to check the savepoint rollback */
};

static int insert_row(struct store_tx *tx, void *arg)
{
	struct row *r = arg;
	int64_t v[2] = {r->id, r->v};
	int rc = t_exec(tx, "INSERT INTO t(id, v) VALUES ($1, $2)", 2, v, NULL);
	return rc != 0 ? rc : r->fail_with;
}

struct lookup {
	int64_t id, v;
	bool found;
};

static int get_row(struct store_tx *tx, void *arg)
{
	struct lookup *l = arg;
	l->v = 0;
	int rc = t_exec(tx, "SELECT v FROM t WHERE id = $1", 1, &l->id, &l->v);
	l->found = rc == 0;
	return rc < 0 ? rc : 0;
}

static int count_rows(struct store_tx *tx, void *arg)
{
	int rc = t_exec(tx, "SELECT count(*) FROM t", 0, NULL, arg);
	return rc == 1 ? STORE_EIO : rc;
}

static int read_version(struct store_tx *tx, void *arg)
{
	sqlite3_stmt *st = sqlite_tx_stmt(tx, "PRAGMA user_version");
	if (!st || sqlite3_step(st) != SQLITE_ROW)
		return STORE_EIO;
	*(int *)arg = sqlite3_column_int(st, 0);
	return 0;
}

/* ---- migrations ---- */

static void test_migrations(void **state)
{
	struct fixture *f = *state;
	assert_true(store_migrations_count >= 1);
	for (int i = 0; i < store_migrations_count; i++)
		assert_int_equal(store_migrations[i].version, i + 1);

	struct store *s = store_open(f->path);
	assert_non_null(s);
	int v = -1;
	assert_int_equal(store_read(s, read_version, &v), 0);
	assert_int_equal(v, store_migrations_count);
	store_close(s);

	/* Reopening applies nothing and keeps the data. */
	s = store_open(f->path);
	assert_non_null(s);
	assert_int_equal(store_read(s, read_version, &v), 0);
	assert_int_equal(v, store_migrations_count);
	store_close(s);
}

static void test_open_rejects(void **state)
{
	struct fixture *f = *state;
	assert_null(store_open(""));
	assert_null(store_open("postgres://[bad")); /* not a URI libpq accepts */
	assert_null(store_open(f->dir)); /* a directory */
	char missing[192];
	snprintf(missing, sizeof(missing), "%s/no/such/dir/db", f->dir);
	assert_null(store_open(missing));
	/* "sqlite:" prefix is accepted. */
	char pref[sizeof(f->path) + 8];
	snprintf(pref, sizeof(pref), "sqlite:%s", f->path);
	struct store *s = store_open(pref);
	assert_non_null(s);
	store_close(s);
}

/* A file from a newer binary is refused rather than misread. */
static void test_newer_schema_refused(void **state)
{
	struct fixture *f = *state;
	sqlite3 *db;
	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	char sql[64];
	snprintf(sql, sizeof(sql), "PRAGMA user_version=%d", store_migrations_count + 1);
	assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	chmod(f->path, 0600);
	assert_null(store_open(f->path));
}

/* ---- the settings every connection must have ---- */

struct pragmas {
	char journal[16];
	int synchronous, foreign_keys;
};

static int pragma_int(struct store_tx *tx, const char *sql, int *out)
{
	sqlite3_stmt *st = sqlite_tx_stmt(tx, sql);
	if (!st || sqlite3_step(st) != SQLITE_ROW)
		return STORE_EIO;
	*out = sqlite3_column_int(st, 0);
	return 0;
}

static int read_pragmas(struct store_tx *tx, void *arg)
{
	struct pragmas *p = arg;
	sqlite3_stmt *st = sqlite_tx_stmt(tx, "PRAGMA journal_mode");
	if (!st || sqlite3_step(st) != SQLITE_ROW ||
	    sqlite_col_copy(st, 0, p->journal, sizeof(p->journal)) != 0)
		return STORE_EIO;
	if (pragma_int(tx, "PRAGMA synchronous", &p->synchronous) != 0)
		return STORE_EIO;
	return pragma_int(tx, "PRAGMA foreign_keys", &p->foreign_keys);
}

/* WAL, synchronous=FULL (2) and foreign keys, on the writer and on readers. */
static void test_pragmas(void **state)
{
	struct fixture *f = *state;
	struct store *s = store_open(f->path);
	assert_non_null(s);
	struct pragmas w = {0}, r = {0};
	assert_int_equal(store_write(s, read_pragmas, &w), 0);
	assert_int_equal(store_read(s, read_pragmas, &r), 0);
	assert_string_equal(w.journal, "wal");
	assert_string_equal(r.journal, "wal");
	assert_int_equal(w.synchronous, 2);
	assert_int_equal(r.synchronous, 2);
	assert_int_equal(w.foreign_keys, 1);
	assert_int_equal(r.foreign_keys, 1);
	store_close(s);
}

/* ---- file modes ---- */

static void assert_mode_0600(const char *path)
{
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
}

static void test_modes(void **state)
{
	struct fixture *f = *state;
	mode_t old = umask(0);
	struct store *s = store_open(f->path);
	umask(old);
	assert_non_null(s);
	assert_int_equal(store_write(s, make_table, NULL), 0);
	char p[sizeof(f->path) + 16];
	assert_mode_0600(f->path);
	snprintf(p, sizeof(p), "%s-wal", f->path);
	assert_mode_0600(p);
	snprintf(p, sizeof(p), "%s-shm", f->path);
	assert_mode_0600(p);
	store_close(s);

	/* A file left readable by others is tightened on open. */
	assert_int_equal(chmod(f->path, 0644), 0);
	s = store_open(f->path);
	assert_non_null(s);
	assert_mode_0600(f->path);
	store_close(s);
}

/* ---- keys ---- */

struct new_key {
	const char *account;
	struct store_key k;
};

static int create_key(struct store_tx *tx, void *arg)
{
	struct new_key *nk = arg;
	int rc = store_account_ensure(tx, nk->account, &nk->k.account_id);
	if (rc)
		return rc;
	store_key_generate(&nk->k);
	return store_key_insert(tx, &nk->k);
}

struct get_key {
	const char *akid;
	struct store_key k;
	int rc;
};

static int get_key(struct store_tx *tx, void *arg)
{
	struct get_key *g = arg;
	g->rc = store_key_get(tx, g->akid, &g->k);
	return g->rc < 0 ? g->rc : 0;
}

static int del_key(struct store_tx *tx, void *arg)
{
	return store_key_delete(tx, arg);
}

struct listing {
	int n;
	struct store_key keys[8];
};

static int collect(const struct store_key *k, void *arg)
{
	struct listing *l = arg;
	if (l->n < 8)
		l->keys[l->n] = *k;
	l->n++;
	return 0;
}

static int list_keys(struct store_tx *tx, void *arg)
{
	return store_key_each(tx, collect, arg);
}

static bool all_alnum(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!((p[i] >= 'a' && p[i] <= 'z') || (p[i] >= 'A' && p[i] <= 'Z') ||
		      (p[i] >= '0' && p[i] <= '9')))
			return false;
	return true;
}

static void test_keys(void **state)
{
	struct fixture *f = *state;
	struct store *s = store_open(f->path);
	assert_non_null(s);

	struct new_key a1 = {.account = "alice"}, a2 = {.account = "alice"}, b1 = {.account = "bob"};
	assert_int_equal(store_write(s, create_key, &a1), 0);
	assert_int_equal(store_write(s, create_key, &a2), 0);
	assert_int_equal(store_write(s, create_key, &b1), 0);
	assert_int_equal(a1.k.account_id, a2.k.account_id);
	assert_true(a1.k.account_id != b1.k.account_id);
	assert_int_equal(strlen(a1.k.akid), STORE_AKID_LEN);
	assert_memory_equal(a1.k.akid, "LTAI", 4);
	assert_true(all_alnum(a1.k.akid, STORE_AKID_LEN));
	assert_int_equal(strlen(a1.k.secret), STORE_SECRET_LEN);
	assert_true(all_alnum(a1.k.secret, STORE_SECRET_LEN));
	assert_string_not_equal(a1.k.akid, a2.k.akid);
	assert_string_not_equal(a1.k.secret, a2.k.secret);

	struct get_key g = {.akid = a2.k.akid};
	assert_int_equal(store_read(s, get_key, &g), 0);
	assert_int_equal(g.rc, 0);
	assert_string_equal(g.k.secret, a2.k.secret);
	assert_string_equal(g.k.account_name, "alice");
	assert_int_equal(g.k.account_id, a1.k.account_id);
	assert_true(g.k.created_ms > 0);

	/* Unknown, empty, overlong and non-printable ids are "not found". */
	static const char *const bad[] = {"LTAInosuchkey00000000000", "", "LTAI\x01x",
					  "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
					  "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
					  "x"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		g = (struct get_key){.akid = bad[i]};
		assert_int_equal(store_read(s, get_key, &g), 0);
		assert_int_equal(g.rc, 1);
	}

	struct listing l = {0};
	assert_int_equal(store_read(s, list_keys, &l), 0);
	assert_int_equal(l.n, 3);
	assert_string_equal(l.keys[0].akid, a1.k.akid);
	assert_string_equal(l.keys[1].akid, a2.k.akid);
	assert_string_equal(l.keys[2].akid, b1.k.akid);
	assert_string_equal(l.keys[2].account_name, "bob");

	assert_int_equal(store_write(s, del_key, a1.k.akid), 0);
	assert_int_equal(store_write(s, del_key, a1.k.akid), 1);
	g = (struct get_key){.akid = a1.k.akid};
	assert_int_equal(store_read(s, get_key, &g), 0);
	assert_int_equal(g.rc, 1);
	store_close(s);

	/* Persisted across reopen. */
	s = store_open(f->path);
	assert_non_null(s);
	l = (struct listing){0};
	assert_int_equal(store_read(s, list_keys, &l), 0);
	assert_int_equal(l.n, 2);
	g = (struct get_key){.akid = b1.k.akid};
	assert_int_equal(store_read(s, get_key, &g), 0);
	assert_int_equal(g.rc, 0);
	assert_string_equal(g.k.secret, b1.k.secret);
	store_close(s);
}

/* The key cache (store_key_find) of one handle sees a key deleted or created
 * through another handle on the same file — what `sagflow keys` does beside a
 * running serve — on the very next lookup, and a cached key survives nothing
 * but a change of its own epoch. */
static void test_key_cache_other_process(void **state)
{
	struct fixture *f = *state;
	struct store *serve = store_open(f->path);
	struct store *cli = store_open(f->path);
	assert_non_null(serve);
	assert_non_null(cli);
	struct new_key a = {.account = "alice"}, b = {.account = "bob"};
	assert_int_equal(store_write(cli, create_key, &a), 0);

	struct store_key k;
	for (int i = 0; i < 3; i++) { /* the first reads the store, the others hit */
		memset(&k, 0, sizeof(k));
		assert_int_equal(store_key_find(serve, a.k.akid, &k), 0);
		assert_string_equal(k.secret, a.k.secret);
		assert_string_equal(k.account_name, "alice");
	}
	assert_int_equal(store_key_find(serve, "LTAInosuchkey00000000000", &k), 1);

	/* Created elsewhere: found at once (unknown ids are never cached). */
	assert_int_equal(store_write(cli, create_key, &b), 0);
	assert_int_equal(store_key_find(serve, b.k.akid, &k), 0);
	assert_string_equal(k.secret, b.k.secret);

	/* Deleted elsewhere: refused by the next lookup, though it was cached. */
	assert_int_equal(store_write(cli, del_key, a.k.akid), 0);
	assert_int_equal(store_key_find(serve, a.k.akid, &k), 1);
	assert_int_equal(store_key_find(serve, b.k.akid, &k), 0);
	assert_int_equal(store_write(cli, del_key, b.k.akid), 0);
	assert_int_equal(store_key_find(serve, b.k.akid, &k), 1);

	/* And through the same handle. */
	struct new_key c = {.account = "carol"};
	assert_int_equal(store_write(serve, create_key, &c), 0);
	assert_int_equal(store_key_find(serve, c.k.akid, &k), 0);
	assert_int_equal(store_write(serve, del_key, c.k.akid), 0);
	assert_int_equal(store_key_find(serve, c.k.akid, &k), 1);
	store_close(cli);
	store_close(serve);
}

/* ---- store_key_find against a real `sagflow keys delete` at each step ---- */

/* This binary's store.c is built with STORE_TEST_HOOKS (tests/unit/meson.build):
 * store_key_find calls the hook at each of its steps, and the hook runs the
 * real CLI, another process, to delete the key right there. */
struct race {
	const char *db, *akid;
	enum store_key_find_step at;
	bool fired;
};

static struct race *race_now;

static void keys_delete_process(const char *db, const char *akid)
{
	const char *bin = getenv("SAGFLOW_BIN");
	assert_non_null(bin); /* meson sets it to the sagflow it built */
	char dbv[512], idv[STORE_MAX_KEY_FIELD + 1];
	snprintf(dbv, sizeof(dbv), "%s", db);
	snprintf(idv, sizeof(idv), "%s", akid);
	char *argv[] = {"sagflow", "keys", "delete", "--db", dbv, "--access-key-id", idv, NULL};
	pid_t pid;
	int st = 0;
	assert_int_equal(posix_spawn(&pid, bin, NULL, NULL, argv, environ), 0);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

static void race_hook(enum store_key_find_step step, const char *akid)
{
	struct race *r = race_now;
	if (!r || r->fired || step != r->at || strcmp(akid, r->akid) != 0)
		return;
	r->fired = true;
	keys_delete_process(r->db, r->akid);
}

struct find_arg {
	struct store *s;
	const char *akid;
	int rc;
};

static void *find_on_thread(void *p)
{
	struct find_arg *a = p;
	struct store_key k;
	a->rc = store_key_find(a->s, a->akid, &k);
	return NULL;
}

/* Whatever step a lookup is at when `keys delete` runs, every lookup that
 * starts after the command returned refuses the key: on the same thread (its
 * read connection), on another one, and although the racing lookup may still
 * have filled the cache. The racing lookup itself began before the delete
 * returned, so either answer is allowed there; the expected one is checked
 * to pin down the reasoning in store_key_find's comment. */
static void test_key_find_races(void **state)
{
	static const struct {
		enum store_key_find_step at;
		bool warm;     /* the key is in the cache when the racing lookup starts */
		int racing_rc; /* what the racing lookup returns */
	} cases[] = {
		{KEY_FIND_EPOCH_READ, true, 0},   /* the slot answers: same epoch as its fill */
		{KEY_FIND_EPOCH_READ, false, 1},  /* the store is read after the COMMIT */
		{KEY_FIND_MISSED, false, 1},
		{KEY_FIND_TX_BEGUN, false, 1},    /* BEGIN is deferred: the SELECT takes the snapshot */
		{KEY_FIND_ROW_READ, false, 0},    /* read before the COMMIT, cached under the old epoch */
		{KEY_FIND_READ_DONE, false, 0},
	};
	struct fixture *f = *state;
	struct store *serve = store_open(f->path);
	assert_non_null(serve);
	store_key_find_hook = race_hook;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct new_key nk = {.account = "racer"};
		struct store_key k;
		assert_int_equal(store_write(serve, create_key, &nk), 0);
		if (cases[i].warm)
			assert_int_equal(store_key_find(serve, nk.k.akid, &k), 0);
		struct race r = {.db = f->path, .akid = nk.k.akid, .at = cases[i].at};
		race_now = &r;
		int rc = store_key_find(serve, nk.k.akid, &k);
		race_now = NULL;
		assert_true(r.fired);
		/* PostgreSQL has no key cache yet (keys_epoch NULL): a warm slot
		 * does not answer, the store does, after the COMMIT. */
		assert_int_equal(rc, f->pg && cases[i].warm ? 1 : cases[i].racing_rc);
		assert_int_equal(store_key_find(serve, nk.k.akid, &k), 1);
		struct find_arg a = {.s = serve, .akid = nk.k.akid, .rc = -1};
		pthread_t t;
		assert_int_equal(pthread_create(&t, NULL, find_on_thread, &a), 0);
		pthread_join(t, NULL);
		assert_int_equal(a.rc, 1);
		assert_int_equal(store_key_find(serve, nk.k.akid, &k), 1);
	}
	store_key_find_hook = NULL;
	store_close(serve);
}

/* store_data_version moves for an account after a write scoped to it or
 * unscoped, before the write is acknowledged; another account's scoped write
 * leaves it alone (the answer cache of rpc/cache.h relies on both). */
static int noop(struct store_tx *tx, void *arg)
{
	return 0;
}

struct scoped_wait {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool done;
	uint64_t seen; /* account 1's version when done() ran */
	struct store *s;
};

static void scoped_done(void *arg, int rc)
{
	struct scoped_wait *w = arg;
	pthread_mutex_lock(&w->mu);
	w->seen = store_data_version(w->s, 1);
	w->done = true;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

static uint64_t write_scoped(struct store *s, int64_t scope)
{
	struct scoped_wait w = {.s = s};
	pthread_mutex_init(&w.mu, NULL);
	pthread_cond_init(&w.cv, NULL);
	store_write_async_scoped(s, scope, noop, &w, scoped_done);
	pthread_mutex_lock(&w.mu);
	while (!w.done)
		pthread_cond_wait(&w.cv, &w.mu);
	pthread_mutex_unlock(&w.mu);
	pthread_cond_destroy(&w.cv);
	pthread_mutex_destroy(&w.mu);
	return w.seen;
}

static void test_data_version_scopes(void **state)
{
	struct fixture *f = *state;
	struct store *s = store_open(f->path);
	assert_non_null(s);
	uint64_t a = store_data_version(s, 1), b = store_data_version(s, 2);
	assert_true(write_scoped(s, 1) != a); /* moved before the acknowledgement */
	assert_true(store_data_version(s, 1) != a);
	assert_int_equal(store_data_version(s, 2), b);
	a = store_data_version(s, 1);
	write_scoped(s, 2);
	assert_int_equal(store_data_version(s, 1), a);
	assert_true(store_data_version(s, 2) != b);
	b = store_data_version(s, 2);
	write_scoped(s, 0); /* unscoped: every account */
	assert_true(store_data_version(s, 1) != a);
	assert_true(store_data_version(s, 2) != b);
	store_close(s);
}

static int insert_dup(struct store_tx *tx, void *arg)
{
	return store_key_insert(tx, arg);
}

static int ensure_account(struct store_tx *tx, void *arg)
{
	int64_t id;
	return store_account_ensure(tx, arg, &id);
}

static void test_key_validation(void **state)
{
	struct fixture *f = *state;
	struct store *s = store_open(f->path);
	assert_non_null(s);
	struct new_key a = {.account = "acct-1"};
	assert_int_equal(store_write(s, create_key, &a), 0);

	struct store_key dup = a.k;
	memcpy(dup.secret, "othersecret", 12);
	assert_int_equal(store_write(s, insert_dup, &dup), 1);
	struct get_key g = {.akid = a.k.akid};
	assert_int_equal(store_read(s, get_key, &g), 0);
	assert_string_equal(g.k.secret, a.k.secret);

	struct store_key bad = {.account_id = a.k.account_id};
	memcpy(bad.akid, "has space", 10);
	memcpy(bad.secret, "s", 2);
	assert_int_equal(store_write(s, insert_dup, &bad), ERR_INVALID_PARAMETER);
	struct store_key orphan = {.account_id = 999999};
	memcpy(orphan.akid, "LTAIorphan", 11);
	memcpy(orphan.secret, "s", 2);
	assert_int_equal(store_write(s, insert_dup, &orphan), ERR_INVALID_PARAMETER);

	assert_int_equal(store_write(s, ensure_account, ""), ERR_INVALID_PARAMETER);
	assert_int_equal(store_write(s, ensure_account, "white space"), ERR_INVALID_PARAMETER);
	assert_int_equal(store_write(s, ensure_account, "quote\"d"), ERR_INVALID_PARAMETER);
	char longname[STORE_MAX_ACCOUNT_NAME + 2];
	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	assert_int_equal(store_write(s, ensure_account, longname), ERR_INVALID_PARAMETER);
	longname[STORE_MAX_ACCOUNT_NAME] = '\0';
	assert_int_equal(store_write(s, ensure_account, longname), 0);
	store_close(s);
}

/* ---- group commit ---- */

struct gc_job {
	struct row row;
	int rc;
	int calls;
	pthread_mutex_t *mu;
	pthread_cond_t *cv;
	int *pending;
};

static void gc_done(void *arg, int rc)
{
	struct gc_job *j = arg;
	pthread_mutex_lock(j->mu);
	j->rc = rc;
	j->calls++;
	if (--*j->pending == 0)
		pthread_cond_broadcast(j->cv);
	pthread_mutex_unlock(j->mu);
}

struct submitter {
	struct store *s;
	struct gc_job *jobs;
	int n;
};

static void *submit_main(void *arg)
{
	struct submitter *sub = arg;
	for (int i = 0; i < sub->n; i++)
		store_write_async(sub->s, insert_row, &sub->jobs[i], gc_done);
	return NULL;
}

static void test_group_commit(void **state)
{
	struct fixture *f = *state;
	struct store *s = store_open(f->path);
	assert_non_null(s);
	assert_int_equal(store_write(s, make_table, NULL), 0);

	enum { N = TEST_THREADS * TEST_JOBS_PER_THREAD };
	struct gc_job *jobs = calloc(N, sizeof(*jobs));
	pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
	pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
	int pending = N;
	for (int i = 0; i < N; i++) {
		jobs[i] = (struct gc_job){.row = {.id = i + 1, .v = (int64_t)i * 7},
					  .rc = -99, .mu = &mu, .cv = &cv, .pending = &pending};
		/* Every 10th job fails after inserting: only its own row must go. */
		if (i % 10 == 3)
			jobs[i].row.fail_with = ERR_INVALID_PARAMETER;
	}
	pthread_t th[TEST_THREADS];
	struct submitter subs[TEST_THREADS];
	for (int t = 0; t < TEST_THREADS; t++) {
		subs[t] = (struct submitter){s, jobs + t * TEST_JOBS_PER_THREAD, TEST_JOBS_PER_THREAD};
		assert_int_equal(pthread_create(&th[t], NULL, submit_main, &subs[t]), 0);
	}
	for (int t = 0; t < TEST_THREADS; t++)
		pthread_join(th[t], NULL);
	pthread_mutex_lock(&mu);
	while (pending > 0)
		pthread_cond_wait(&cv, &mu);
	pthread_mutex_unlock(&mu);

	int failing = 0;
	for (int i = 0; i < N; i++) {
		assert_int_equal(jobs[i].calls, 1);
		bool fails = i % 10 == 3;
		failing += fails;
		assert_int_equal(jobs[i].rc, fails ? ERR_INVALID_PARAMETER : 0);
		struct lookup l = {.id = i + 1};
		assert_int_equal(store_read(s, get_row, &l), 0);
		assert_int_equal(l.found, !fails);
		if (!fails)
			assert_int_equal(l.v, (int64_t)i * 7);
	}
	int64_t count = 0;
	assert_int_equal(store_read(s, count_rows, &count), 0);
	assert_int_equal(count, N - failing);

	struct store_stats st;
	store_stats(s, &st);
	assert_int_equal(st.jobs, N + 1);
	/* With 16 submitters and one fsync per commit, batches must form. */
	assert_true(st.batches < st.jobs);
	assert_true(st.max_batch > 1);
	print_message("group commit: %llu jobs in %llu commits, largest batch %llu\n",
		      (unsigned long long)st.jobs, (unsigned long long)st.batches,
		      (unsigned long long)st.max_batch);
	store_close(s);
	free(jobs);
}

/* A duplicate primary key is an SQLite error inside one job: it fails that job
 * with STORE_EIO and leaves the batch's other jobs committed. */
static void test_job_sql_error(void **state)
{
	struct fixture *f = *state;
	struct store *s = store_open(f->path);
	assert_non_null(s);
	assert_int_equal(store_write(s, make_table, NULL), 0);
	struct row r = {.id = 1, .v = 1};
	assert_int_equal(store_write(s, insert_row, &r), 0);
	assert_int_equal(store_write(s, insert_row, &r), STORE_EIO);
	struct row r2 = {.id = 2, .v = 2};
	assert_int_equal(store_write(s, insert_row, &r2), 0);
	int64_t count = 0;
	assert_int_equal(store_read(s, count_rows, &count), 0);
	assert_int_equal(count, 2);
	store_close(s);
}

static int write_in_read(struct store_tx *tx, void *arg)
{
	struct row *r = arg;
	return insert_row(tx, r);
}

static int nested_write(struct store_tx *tx, void *arg)
{
	return store_write(arg, make_table, NULL);
}

/* Misuse fails cleanly instead of deadlocking or writing through a reader. */
static void test_misuse(void **state)
{
	struct fixture *f = *state;
	struct store *s = store_open(f->path);
	assert_non_null(s);
	assert_int_equal(store_write(s, make_table, NULL), 0);
	struct row r = {.id = 5, .v = 5};
	assert_int_equal(store_read(s, write_in_read, &r), STORE_EIO);
	assert_int_equal(store_write(s, nested_write, s), STORE_EIO);
	int64_t count = -1;
	assert_int_equal(store_read(s, count_rows, &count), 0);
	assert_int_equal(count, 0);
	store_close(s);
}

/* ---- batches: a gate holds the writer so that the next jobs form one batch ---- */

struct gate {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool entered, open;
};

static int gate_job(struct store_tx *tx, void *arg)
{
	struct gate *g = arg;
	pthread_mutex_lock(&g->mu);
	g->entered = true;
	pthread_cond_broadcast(&g->cv);
	while (!g->open)
		pthread_cond_wait(&g->cv, &g->mu);
	pthread_mutex_unlock(&g->mu);
	return 0;
}

static void gate_close(struct store *s, struct gate *g)
{
	pthread_mutex_init(&g->mu, NULL);
	pthread_cond_init(&g->cv, NULL);
	g->entered = g->open = false;
	store_write_async(s, gate_job, g, NULL);
	pthread_mutex_lock(&g->mu);
	while (!g->entered)
		pthread_cond_wait(&g->cv, &g->mu);
	pthread_mutex_unlock(&g->mu);
}

static void gate_open(struct gate *g)
{
	pthread_mutex_lock(&g->mu);
	g->open = true;
	pthread_cond_broadcast(&g->cv);
	pthread_mutex_unlock(&g->mu);
}

struct fk_row {
	int64_t id, account;
	int rc, calls;
	pthread_mutex_t *mu;
	pthread_cond_t *cv;
	int *pending;
};

static int make_fk_table(struct store_tx *tx, void *arg)
{
	int64_t *account = arg;
	sqlite3_stmt *st = sqlite_tx_stmt(tx, "CREATE TABLE IF NOT EXISTS fkc (id INTEGER PRIMARY KEY, "
					      "acc INTEGER NOT NULL REFERENCES accounts(id) "
					      "DEFERRABLE INITIALLY DEFERRED)");
	if (!st || sqlite3_step(st) != SQLITE_DONE)
		return STORE_EIO;
	return store_account_ensure(tx, "fk-owner", account);
}

static int insert_fk(struct store_tx *tx, void *arg)
{
	struct fk_row *r = arg;
	sqlite3_stmt *st = sqlite_tx_stmt(tx, "INSERT INTO fkc(id, acc) VALUES (?1, ?2)");
	if (!st)
		return STORE_EIO;
	sqlite3_bind_int64(st, 1, r->id);
	sqlite3_bind_int64(st, 2, r->account);
	return sqlite3_step(st) == SQLITE_DONE ? 0 : sqlite_tx_fail(tx, "insert fk");
}

static void fk_done(void *arg, int rc)
{
	struct fk_row *r = arg;
	pthread_mutex_lock(r->mu);
	r->rc = rc;
	r->calls++;
	if (--*r->pending == 0)
		pthread_cond_broadcast(r->cv);
	pthread_mutex_unlock(r->mu);
}

static int count_fk(struct store_tx *tx, void *arg)
{
	sqlite3_stmt *st = sqlite_tx_stmt(tx, "SELECT count(*) FROM fkc");
	if (!st || sqlite3_step(st) != SQLITE_ROW)
		return STORE_EIO;
	*(int64_t *)arg = sqlite3_column_int64(st, 0);
	return 0;
}

/* A job that leaves a deferred foreign key dangling would fail the whole
 * batch's COMMIT; it must fail alone. */
static void test_deferred_fk_isolated(void **state)
{
	struct fixture *f = *state;
	struct store *s = store_open(f->path);
	assert_non_null(s);
	int64_t account = 0;
	assert_int_equal(store_write(s, make_fk_table, &account), 0);

	enum { N = 40 };
	struct fk_row rows[N];
	pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
	pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
	int pending = N;
	struct gate g;
	gate_close(s, &g);
	for (int i = 0; i < N; i++) {
		rows[i] = (struct fk_row){.id = i + 1, .account = i % 5 == 0 ? 999999 : account,
					  .rc = -99, .mu = &mu, .cv = &cv, .pending = &pending};
		store_write_async(s, insert_fk, &rows[i], fk_done);
	}
	gate_open(&g);
	pthread_mutex_lock(&mu);
	while (pending > 0)
		pthread_cond_wait(&cv, &mu);
	pthread_mutex_unlock(&mu);
	for (int i = 0; i < N; i++) {
		assert_int_equal(rows[i].calls, 1);
		assert_int_equal(rows[i].rc, i % 5 == 0 ? STORE_EIO : 0);
	}
	struct store_stats st;
	store_stats(s, &st);
	assert_true(st.max_batch >= N); /* they did share one transaction */
	int64_t n = 0;
	assert_int_equal(store_read(s, count_fk, &n), 0);
	assert_int_equal(n, N - N / 5);
	store_close(s);
	pthread_mutex_destroy(&g.mu);
	pthread_cond_destroy(&g.cv);
}

/* ---- a full queue ---- */

static int noop_job(struct store_tx *tx, void *arg)
{
	return 0;
}

static void count_done(void *arg, int rc)
{
	int *counts = arg; /* [0] successes, [1] failures; only the writer thread writes them */
	counts[rc == 0 ? 0 : 1]++;
}

static void refused_done(void *arg, int rc)
{
	*(int *)arg = rc;
}

/* With the writer held, STORE_QUEUE_MAX jobs queue and the next is refused at
 * once, on the caller, with STORE_EIO; the queued ones all run afterwards. */
static void test_queue_full(void **state)
{
	struct fixture *f = *state;
	struct store *s = store_open(f->path);
	assert_non_null(s);
	int counts[2] = {0, 0};
	struct gate g;
	gate_close(s, &g);
	for (int i = 0; i < STORE_QUEUE_MAX; i++)
		store_write_async(s, noop_job, counts, count_done);
	int refused = 12345;
	store_write_async(s, noop_job, &refused, refused_done);
	assert_int_equal(refused, STORE_EIO);
	gate_open(&g);
	store_close(s); /* drains the queue */
	assert_int_equal(counts[0], STORE_QUEUE_MAX);
	assert_int_equal(counts[1], 0);
	pthread_mutex_destroy(&g.mu);
	pthread_cond_destroy(&g.cv);
}

/* ---- readers beside the writer ---- */

struct reader {
	struct store *s;
	atomic_bool *stop;
	int reads, errors, backwards;
};

static void *reader_main(void *arg)
{
	struct reader *r = arg;
	int64_t last = 0;
	/* At least one read even if the writes finish before this thread runs. */
	do {
		int64_t n = 0;
		if (store_read(r->s, count_rows, &n) != 0)
			r->errors++;
		/* Snapshots only move forward. */
		if (n < last)
			r->backwards++;
		last = n;
		r->reads++;
	} while (!atomic_load(r->stop));
	return NULL;
}

/* Many reading threads (each with its own connection, as libmicrohttpd's pool
 * threads have) run beside a stream of writes; threads that exit hand their
 * connection to the next ones. */
static void test_readers_and_writer(void **state)
{
	struct fixture *f = *state;
	struct store *s = store_open(f->path);
	assert_non_null(s);
	assert_int_equal(store_write(s, make_table, NULL), 0);
	for (int round = 0; round < 2; round++) {
		atomic_bool stop = false;
		pthread_t th[TEST_READERS];
		struct reader r[TEST_READERS];
		for (int t = 0; t < TEST_READERS; t++) {
			r[t] = (struct reader){.s = s, .stop = &stop};
			assert_int_equal(pthread_create(&th[t], NULL, reader_main, &r[t]), 0);
		}
		for (int i = 0; i < TEST_JOBS_PER_THREAD; i++) {
			struct row row = {.id = round * TEST_JOBS_PER_THREAD + i + 1, .v = i};
			assert_int_equal(store_write(s, insert_row, &row), 0);
		}
		atomic_store(&stop, true);
		for (int t = 0; t < TEST_READERS; t++) {
			pthread_join(th[t], NULL);
			assert_int_equal(r[t].errors, 0);
			assert_int_equal(r[t].backwards, 0);
			assert_true(r[t].reads > 0);
		}
	}
	int64_t n = 0;
	assert_int_equal(store_read(s, count_rows, &n), 0);
	assert_int_equal(n, 2 * TEST_JOBS_PER_THREAD);
	/* The second round's threads reused the first round's connections. */
	struct store_stats st;
	store_stats(s, &st);
	assert_true(st.read_conns <= TEST_READERS + 1);
	store_close(s);
}

/* ---- a bounded WAL ---- */

static int make_big(struct store_tx *tx, void *arg)
{
	sqlite3_stmt *st = sqlite_tx_stmt(tx, "CREATE TABLE IF NOT EXISTS big (id INTEGER PRIMARY "
					      "KEY, b BLOB NOT NULL)");
	return st && sqlite3_step(st) == SQLITE_DONE ? 0 : STORE_EIO;
}

static int insert_big(struct store_tx *tx, void *arg)
{
	sqlite3_stmt *st = sqlite_tx_stmt(tx, "INSERT INTO big(b) VALUES (zeroblob(?1))");
	if (!st)
		return STORE_EIO;
	sqlite3_bind_int(st, 1, TEST_BIG_ROW);
	return sqlite3_step(st) == SQLITE_DONE ? 0 : sqlite_tx_fail(tx, "insert big");
}

struct big_submitter {
	struct store *s;
	int n, failed;
};

static void *big_main(void *arg)
{
	struct big_submitter *b = arg;
	for (int i = 0; i < b->n; i++)
		if (store_write(b->s, insert_big, NULL) != 0)
			b->failed++;
	return NULL;
}

/* Sustained writes (~100 MiB through the WAL) must not grow the WAL without
 * end: the background checkpointer plus the writer's RESTART keep it reused. */
static void wal_bounded(struct fixture *f, off_t bound)
{
	struct store *s = store_open(f->path);
	assert_non_null(s);
	assert_int_equal(store_write(s, make_big, NULL), 0);
	pthread_t th[TEST_THREADS];
	struct big_submitter b[TEST_THREADS];
	for (int t = 0; t < TEST_THREADS; t++) {
		b[t] = (struct big_submitter){s, TEST_BIG_ROWS / TEST_THREADS, 0};
		assert_int_equal(pthread_create(&th[t], NULL, big_main, &b[t]), 0);
	}
	for (int t = 0; t < TEST_THREADS; t++) {
		pthread_join(th[t], NULL);
		assert_int_equal(b[t].failed, 0);
	}
	char wal[sizeof(f->path) + 8];
	snprintf(wal, sizeof(wal), "%s-wal", f->path);
	struct stat st;
	assert_int_equal(stat(wal, &st), 0);
	struct store_stats ss;
	store_stats(s, &ss);
	print_message("WAL after %d rows of %d bytes: %lld bytes, %llu checkpoints\n", TEST_BIG_ROWS,
		      TEST_BIG_ROW, (long long)st.st_size, (unsigned long long)ss.checkpoints);
	assert_true(st.st_size <= bound);
	store_close(s);
	/* store_close checkpoints and removes the WAL. */
	assert_int_equal(stat(wal, &st), -1);
}

static void test_wal_bounded(void **state)
{
	/* The writer checkpoints between batches with nothing else writing, so
	 * the WAL starts over every ~1000 frames (4 MiB measured). */
	wal_bounded(*state, TEST_WAL_BOUND_WRITER);
}

/* The other checkpoint modes (docs/store.md) keep the same bound. */
static void test_wal_bounded_thread(void **state)
{
	setenv("SAGFLOW_STORE_CHECKPOINT", "thread", 1);
	wal_bounded(*state, TEST_WAL_BOUND);
	unsetenv("SAGFLOW_STORE_CHECKPOINT");
}

static void test_checkpoint_mode_invalid(void **state)
{
	struct fixture *f = *state;
	setenv("SAGFLOW_STORE_CHECKPOINT", "sometimes", 1);
	struct store *s = store_open(f->path);
	unsetenv("SAGFLOW_STORE_CHECKPOINT");
	assert_null(s);
}

/* ---- a COMMIT that fails ---- */

struct big_job {
	int rc, calls;
	pthread_mutex_t *mu;
	pthread_cond_t *cv;
	int *pending;
};

static void big_done(void *arg, int rc)
{
	struct big_job *b = arg;
	pthread_mutex_lock(b->mu);
	b->rc = rc;
	b->calls++;
	if (--*b->pending == 0)
		pthread_cond_broadcast(b->cv);
	pthread_mutex_unlock(b->mu);
}

static int count_big(struct store_tx *tx, void *arg)
{
	sqlite3_stmt *st = sqlite_tx_stmt(tx, "SELECT count(*) FROM big");
	if (!st || sqlite3_step(st) != SQLITE_ROW)
		return STORE_EIO;
	*(int64_t *)arg = sqlite3_column_int64(st, 0);
	return 0;
}

/* In a child whose file size limit (RLIMIT_FSIZE) stops the WAL from growing:
 * one batch of jobs that each succeed, whose COMMIT then cannot be written.
 * Every job must get STORE_EIO, and the store must work again once there is
 * room. Returns the child's exit status. */
static int commit_failure_child(const char *path)
{
	signal(SIGXFSZ, SIG_IGN); /* writes past the limit fail with EFBIG instead */
	struct store *s = store_open(path);
	if (!s || store_write(s, make_big, NULL) != 0)
		return 3;
	char wal[192];
	snprintf(wal, sizeof(wal), "%s-wal", path);
	struct stat a, b;
	if (stat(path, &a) != 0 || stat(wal, &b) != 0)
		return 4;
	struct big_job jobs[TEST_FAIL_JOBS];
	pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
	pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
	int pending = TEST_FAIL_JOBS;
	struct gate g;
	gate_close(s, &g);
	struct rlimit lim = {(rlim_t)(a.st_size > b.st_size ? a.st_size : b.st_size) + 8192,
			     RLIM_INFINITY};
	if (setrlimit(RLIMIT_FSIZE, &lim) != 0)
		return 5;
	for (int i = 0; i < TEST_FAIL_JOBS; i++) {
		jobs[i] = (struct big_job){.rc = -99, .mu = &mu, .cv = &cv, .pending = &pending};
		store_write_async(s, insert_big, &jobs[i], big_done);
	}
	gate_open(&g);
	pthread_mutex_lock(&mu);
	while (pending > 0)
		pthread_cond_wait(&cv, &mu);
	pthread_mutex_unlock(&mu);
	for (int i = 0; i < TEST_FAIL_JOBS; i++)
		if (jobs[i].calls != 1 || jobs[i].rc != STORE_EIO)
			return 6;
	lim.rlim_cur = RLIM_INFINITY;
	if (setrlimit(RLIMIT_FSIZE, &lim) != 0)
		return 7;
	if (store_write(s, insert_big, NULL) != 0)
		return 8;
	store_close(s);
	return 0;
}

static void test_commit_failure(void **state)
{
	struct fixture *f = *state;
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(commit_failure_child(f->path));
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	/* Only the row written after the failure is there. */
	struct store *s = store_open(f->path);
	assert_non_null(s);
	int64_t n = -1;
	assert_int_equal(store_read(s, count_big, &n), 0);
	assert_int_equal(n, 1);
	store_close(s);
}

/* ---- durability across kill -9 ---- */

struct kill_writer {
	struct store *s;
	int fd;
	int64_t first, step;
};

static void *kill_writer_main(void *arg)
{
	struct kill_writer *w = arg;
	for (int64_t i = w->first; i <= TEST_KILL_ROWS; i += w->step) {
		struct row r = {.id = i, .v = i * 3};
		if (store_write(w->s, insert_row, &r) != 0)
			_exit(4);
		/* Only now is the row acknowledged: tell the parent (an 8-byte
		 * write to a pipe is atomic). */
		if (write(w->fd, &i, sizeof(i)) != (ssize_t)sizeof(i))
			_exit(5);
	}
	return NULL;
}

/* The child writes from several threads, so the kill lands with batches
 * in flight, some of them committed and not yet acknowledged. */
static void child_writer(const char *path, int fd)
{
	struct store *s = store_open(path);
	if (!s)
		_exit(3);
	pthread_t th[TEST_KILL_THREADS];
	struct kill_writer w[TEST_KILL_THREADS];
	for (int t = 0; t < TEST_KILL_THREADS; t++) {
		w[t] = (struct kill_writer){s, fd, t + 1, TEST_KILL_THREADS};
		if (pthread_create(&th[t], NULL, kill_writer_main, &w[t]) != 0)
			_exit(6);
	}
	for (int t = 0; t < TEST_KILL_THREADS; t++)
		pthread_join(th[t], NULL);
	_exit(0);
}

static void test_kill9_durability(void **state)
{
	struct fixture *f = *state;
	struct store *s = store_open(f->path);
	assert_non_null(s);
	assert_int_equal(store_write(s, make_table, NULL), 0);
	store_close(s);

	int p[2];
	assert_int_equal(pipe(p), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(p[0]);
		child_writer(f->path, p[1]);
	}
	close(p[1]);
	unsigned char *acked = calloc(TEST_KILL_ROWS + 1, 1);
	int64_t nacked = 0, id;
	while (read(p[0], &id, sizeof(id)) == (ssize_t)sizeof(id)) {
		assert_true(id >= 1 && id <= TEST_KILL_ROWS);
		assert_false(acked[id]);
		acked[id] = 1;
		if (++nacked == TEST_KILL_AFTER)
			kill(pid, SIGKILL);
	}
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	close(p[0]);
	assert_true(WIFSIGNALED(status));
	assert_int_equal(WTERMSIG(status), SIGKILL);
	assert_true(nacked >= TEST_KILL_AFTER);

	s = store_open(f->path);
	assert_non_null(s);
	for (int64_t i = 1; i <= TEST_KILL_ROWS; i++) {
		if (!acked[i])
			continue;
		struct lookup l = {.id = i};
		assert_int_equal(store_read(s, get_row, &l), 0);
		assert_true(l.found);
		assert_int_equal(l.v, i * 3);
	}
	int64_t count = 0;
	assert_int_equal(store_read(s, count_rows, &count), 0);
	/* Rows committed but not yet acknowledged may be there too; never fewer. */
	assert_true(count >= nacked);
	print_message("kill -9: %lld acknowledged, %lld present after reopen\n", (long long)nacked,
		      (long long)count);
	store_close(s);
	free(acked);
}

/* ---- PostgreSQL: a fresh database per test ---- */

#ifdef SAGFLOW_POSTGRES
#define TEST_PG_ENV "SAGFLOW_TEST_PG"
#define TEST_PG_DATA_ENV "SAGFLOW_TEST_PG_DATA"
#define TEST_PG_CTL_ENV "SAGFLOW_TEST_PG_CTL"
#define TEST_PG_MIGRATORS 4
#define TEST_PG_CRASH_AFTER 2000 /* acknowledged rows before the immediate stop */

/* A connection to the cluster's admin database (SAGFLOW_TEST_PG), or to
 * dbname in the same cluster. */
static PGconn *pg_admin(const char *dbname)
{
	const char *const keys[] = {"dbname", "dbname", NULL};
	const char *const vals[] = {getenv(TEST_PG_ENV), dbname, NULL};
	PGconn *c = PQconnectdbParams(keys, vals, 1);
	if (PQstatus(c) != CONNECTION_OK)
		fail_msg("cannot connect to %s: %s", TEST_PG_ENV, PQerrorMessage(c));
	return c;
}

static void pg_ok(PGconn *c, const char *sql)
{
	PGresult *r = PQexec(c, sql);
	if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
		fail_msg("%s: %s", sql, PQerrorMessage(c));
	PQclear(r);
}

static int64_t pg_scalar(PGconn *c, const char *sql)
{
	PGresult *r = PQexec(c, sql);
	if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1)
		fail_msg("%s: %s", sql, PQerrorMessage(c));
	int64_t v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
	PQclear(r);
	return v;
}

/* Waits until one session of the database waits for a lock. */
static void wait_one_lock_waiter(const char *dbname)
{
	PGconn *w = pg_admin(dbname);
	int64_t waiting = 0;
	for (int i = 0; i < 500 && waiting < 1; i++, usleep(10000))
		waiting = pg_scalar(w, "SELECT count(*) FROM pg_stat_activity WHERE "
				       "wait_event_type = 'Lock' AND datname = current_database()");
	PQfinish(w);
	assert_int_equal(waiting, 1);
}

/* Deadlock tests: the store's sessions look for a deadlock after 100 ms, so
 * they are its victim; the returned session of the test waits 5 s first. */
static PGconn *deadlock_setup(const char *dbname)
{
	PGconn *c = pg_admin(NULL);
	char sql[160];
	snprintf(sql, sizeof(sql), "ALTER DATABASE %s SET deadlock_timeout = '100ms'", dbname);
	pg_ok(c, sql);
	PQfinish(c);
	PGconn *o = pg_admin(dbname);
	pg_ok(o, "SET deadlock_timeout = '5s'");
	return o;
}

/* Appends key=value as a URI query parameter, percent-encoded. */
static void uri_param(char *out, size_t cap, const char *key, const char *val)
{
	size_t len = strlen(out);
	len += (size_t)snprintf(out + len, cap - len, "%s%s=", strchr(out, '?') ? "&" : "?", key);
	for (const unsigned char *p = (const unsigned char *)val; *p && len + 4 < cap; p++)
		len += (size_t)snprintf(out + len, cap - len, (isalnum(*p) || strchr("-._~", *p)) ? "%c" : "%%%02X", *p);
}

/* The URI of dbname on the cluster of SAGFLOW_TEST_PG: what store_open gets. */
static void pg_uri(const char *dbname, char *out, size_t cap)
{
	char *err = NULL;
	PQconninfoOption *opts = PQconninfoParse(getenv(TEST_PG_ENV), &err);
	assert_non_null(opts);
	snprintf(out, cap, "postgresql:///%s", dbname);
	for (PQconninfoOption *o = opts; o->keyword; o++)
		if (o->val && *o->val && strcmp(o->keyword, "dbname"))
			uri_param(out, cap, o->keyword, o->val);
	PQconninfoFree(opts);
}

static int setup_pg(void **state)
{
	static int seq;
	struct fixture *f = calloc(1, sizeof(*f));
	f->pg = true;
	snprintf(f->dir, sizeof(f->dir), "/tmp/sagflow-store-XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	snprintf(f->dbname, sizeof(f->dbname), "sagflow_test_%d_%d", (int)getpid(), ++seq);
	PGconn *c = pg_admin(NULL);
	char sql[160];
	snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s", f->dbname);
	pg_ok(c, sql);
	snprintf(sql, sizeof(sql), "CREATE DATABASE %s TEMPLATE template0 ENCODING 'UTF8' LOCALE 'C'",
		 f->dbname);
	pg_ok(c, sql);
	PQfinish(c);
	pg_uri(f->dbname, f->path, sizeof(f->path));
	*state = f;
	return 0;
}

static int teardown_pg(void **state)
{
	struct fixture *f = *state;
	PGconn *c = pg_admin(NULL);
	char sql[160];
	snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s WITH (FORCE)", f->dbname);
	pg_ok(c, sql);
	PQfinish(c);
	rmdir(f->dir);
	free(f);
	return 0;
}

/* From an empty database every migration is applied once, recorded in
 * schema_migrations; reopening applies nothing. */
static void test_pg_migrations(void **state)
{
	struct fixture *f = *state;
	for (int i = 0; i < store_pg_migrations_count; i++)
		assert_int_equal(store_pg_migrations[i].version, i + 1);
	assert_int_equal(store_pg_migrations_count, store_migrations_count);
	for (int round = 0; round < 2; round++) {
		struct store *s = store_open(f->path);
		assert_non_null(s);
		assert_true(store_ready(s));
		store_close(s);
		PGconn *c = pg_admin(f->dbname);
		assert_int_equal(pg_scalar(c, "SELECT count(*) FROM schema_migrations"),
				 store_pg_migrations_count);
		assert_int_equal(pg_scalar(c, "SELECT max(version) FROM schema_migrations"),
				 store_pg_migrations_count);
		assert_int_equal(pg_scalar(c, "SELECT count(DISTINCT applied_at) FROM schema_migrations"), 1);
		assert_int_equal(pg_scalar(c, "SELECT v FROM store_epoch WHERE name = 'keys'"), 0);
		PQfinish(c);
	}
	/* A database migrated by a newer binary is refused, not misread. */
	PGconn *c = pg_admin(f->dbname);
	char sql[128];
	snprintf(sql, sizeof(sql), "INSERT INTO schema_migrations (version, name) VALUES (%d, 'x')",
		 store_pg_migrations_count + 1);
	pg_ok(c, sql);
	PQfinish(c);
	assert_null(store_open(f->path));
}

/* TEST_PG_MIGRATORS processes open one fresh database at the same moment:
 * all succeed, and each migration is applied (recorded) once. */
static void test_pg_concurrent_migrations(void **state)
{
	struct fixture *f = *state;
	int go[2];
	assert_int_equal(pipe(go), 0);
	pid_t pids[TEST_PG_MIGRATORS];
	for (int i = 0; i < TEST_PG_MIGRATORS; i++) {
		pids[i] = fork();
		assert_true(pids[i] >= 0);
		if (pids[i] == 0) {
			close(go[1]);
			char b;
			if (read(go[0], &b, 1) != 0) /* the parent closes its end: all start */
				_exit(2);
			struct store *s = store_open(f->path);
			if (!s || !store_ready(s))
				_exit(3);
			store_close(s);
			_exit(0);
		}
	}
	close(go[0]);
	close(go[1]);
	for (int i = 0; i < TEST_PG_MIGRATORS; i++) {
		int st;
		assert_int_equal(waitpid(pids[i], &st, 0), pids[i]);
		assert_true(WIFEXITED(st));
		assert_int_equal(WEXITSTATUS(st), 0);
	}
	PGconn *c = pg_admin(f->dbname);
	assert_int_equal(pg_scalar(c, "SELECT count(*) FROM schema_migrations"),
			 store_pg_migrations_count);
	/* One transaction applied them all: one timestamp. */
	assert_int_equal(pg_scalar(c, "SELECT count(DISTINCT applied_at) FROM schema_migrations"), 1);
	PQfinish(c);
}

/* The two schemas have the same tables and columns, apart from what only
 * PostgreSQL has: its bookkeeping tables, and access_keys.rowid (SQLite's
 * implicit rowid, explicit there). */
static void test_pg_schema_parity(void **state)
{
	struct fixture *f = *state;
	char sqlite_path[160];
	snprintf(sqlite_path, sizeof(sqlite_path), "%s/parity.sqlite", f->dir);
	struct store *s = store_open(sqlite_path);
	assert_non_null(s);
	store_close(s);
	s = store_open(f->path);
	assert_non_null(s);
	store_close(s);

	sqlite3 *db;
	assert_int_equal(sqlite3_open(sqlite_path, &db), SQLITE_OK);
	sqlite3_stmt *st;
	assert_int_equal(sqlite3_prepare_v2(db, "SELECT m.name || '.' || p.name FROM sqlite_master m, "
						"pragma_table_info(m.name) p WHERE m.type = 'table' "
						"AND m.name NOT LIKE 'sqlite_%' ORDER BY 1",
					    -1, &st, NULL),
			 SQLITE_OK);
	PGconn *c = pg_admin(f->dbname);
	PGresult *r = PQexec(c, "SELECT table_name || '.' || column_name FROM "
				"information_schema.columns WHERE table_schema = 'public' AND "
				"table_name NOT IN ('schema_migrations', 'account_version', "
				"'store_epoch', 'node_lease', 'nonce_marker') AND table_name NOT LIKE "
				"'nonce%' AND (table_name, column_name) <> ('access_keys', "
				"'rowid') ORDER BY table_name || '.' || column_name COLLATE \"C\"");
	assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
	int n = 0;
	while (sqlite3_step(st) == SQLITE_ROW) {
		const char *col = (const char *)sqlite3_column_text(st, 0);
		if (n >= PQntuples(r))
			fail_msg("only in SQLite: %s", col);
		if (strcmp(col, PQgetvalue(r, n, 0)))
			fail_msg("SQLite has %s where PostgreSQL has %s", col, PQgetvalue(r, n, 0));
		n++;
	}
	if (n < PQntuples(r))
		fail_msg("only in PostgreSQL: %s", PQgetvalue(r, n, 0));
	assert_true(n > 40);
	print_message("schema parity: %d columns alike\n", n);
	PQclear(r);
	PQfinish(c);
	sqlite3_finalize(st);
	sqlite3_close(db);
	unlink(sqlite_path);
	char keys[192];
	snprintf(keys, sizeof(keys), "%s-keys", sqlite_path);
	unlink(keys);
}

/* store_write for a job scoped to an account (so routed to that account's
 * writer, as the API's jobs are). */
struct scoped_call {
	store_fn fn;
	void *arg;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool done;
	int rc;
};

static int scoped_call_run(struct store_tx *tx, void *arg)
{
	struct scoped_call *w = arg;
	return w->fn(tx, w->arg);
}

static void scoped_call_done(void *arg, int rc)
{
	struct scoped_call *w = arg;
	pthread_mutex_lock(&w->mu);
	w->rc = rc;
	w->done = true;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

static int store_write_async_wait(struct store *s, int64_t scope, store_fn fn, void *arg)
{
	struct scoped_call w = {.fn = fn, .arg = arg, .rc = -99};
	pthread_mutex_init(&w.mu, NULL);
	pthread_cond_init(&w.cv, NULL);
	store_write_async_scoped(s, scope, scoped_call_run, &w, scoped_call_done);
	pthread_mutex_lock(&w.mu);
	while (!w.done)
		pthread_cond_wait(&w.cv, &w.mu);
	pthread_mutex_unlock(&w.mu);
	pthread_mutex_destroy(&w.mu);
	pthread_cond_destroy(&w.cv);
	return w.rc;
}

static int ensure_account_id(struct store_tx *tx, void *arg)
{
	return store_account_ensure(tx, "cas", arg);
}

/* Check-and-set across processes: two store handles on one database stand
 * for two nodes (each has its own writers and connections). */
#define TEST_PG_CREATORS 64
#define TEST_PG_QUOTA 5

struct cas_arg {
	struct store *s;
	int64_t account;
	int idx, rc;
	int64_t sag_rowid;
	const char *region; /* the create's; NULL: cn-hangzhou */
	struct flowlog fl; /* the create's: its answer may arrive after the job returned */
};

static int cas_create(struct store_tx *tx, void *arg)
{
	struct cas_arg *a = arg;
	struct flowlog *fl = &a->fl;
	flowlog_init(fl);
	fl->account_id = a->account;
	snprintf(fl->region_id, sizeof(fl->region_id), "%s", a->region ? a->region : "cn-hangzhou");
	snprintf(fl->resource_group_id, sizeof(fl->resource_group_id), "rg-test");
	snprintf(fl->id, sizeof(fl->id), "fl-test%011d", a->idx);
	fl->created_ms = 1;
	fl->rowid = 0;
	return store_flowlog_create(tx, fl, TEST_PG_QUOTA);
}

static void *cas_create_main(void *p)
{
	struct cas_arg *a = p;
	a->rc = store_write_async_wait(a->s, a->account, cas_create, a);
	return NULL;
}

/* One gateway, two device slots (HA): the API's Bind rule, as a job. */
static int cas_bind(struct store_tx *tx, void *arg)
{
	struct cas_arg *a = arg;
	struct sag g;
	int rc = store_sag_get(tx, (struct owner){a->account, "cn-hangzhou"}, "sag-cas", &g);
	if (rc != 0)
		return rc;
	if (g.ndevices >= sag_max_devices(&g))
		return ERR_INVALID_PARAMETER;
	struct device d = {0};
	snprintf(d.serial_number, sizeof(d.serial_number), "sn-cas-%d", a->idx);
	snprintf(d.secret_key, sizeof(d.secret_key), "k");
	return store_device_insert(tx, &g, &d, 1);
}

static void *cas_bind_main(void *p)
{
	struct cas_arg *a = p;
	a->rc = store_write_async_wait(a->s, a->account, cas_bind, a);
	return NULL;
}

static int cas_gateway(struct store_tx *tx, void *arg)
{
	struct cas_arg *a = arg;
	struct sag g = {.account_id = a->account, .spec = SAG_SPEC_1000, .ha = SAG_HA_WARM};
	snprintf(g.id, sizeof(g.id), "sag-cas");
	snprintf(g.region_id, sizeof(g.region_id), "cn-hangzhou");
	snprintf(g.resource_group_id, sizeof(g.resource_group_id), "rg-test");
	return store_sag_insert(tx, &g, "order", "{}");
}

static void test_pg_check_and_set(void **state)
{
	struct fixture *f = *state;
	struct store *node[2] = {store_open(f->path), store_open(f->path)};
	assert_non_null(node[0]);
	assert_non_null(node[1]);
	int64_t account;
	assert_int_equal(store_write(node[0], ensure_account_id, &account), 0);

	/* 64 creates with quota 5, spread over both: exactly 5 succeed. */
	pthread_t th[TEST_PG_CREATORS];
	struct cas_arg a[TEST_PG_CREATORS];
	for (int i = 0; i < TEST_PG_CREATORS; i++) {
		a[i] = (struct cas_arg){.s = node[i % 2], .account = account, .idx = i};
		assert_int_equal(pthread_create(&th[i], NULL, cas_create_main, &a[i]), 0);
	}
	int ok = 0, over = 0;
	for (int i = 0; i < TEST_PG_CREATORS; i++) {
		pthread_join(th[i], NULL);
		ok += a[i].rc == 0;
		over += a[i].rc == ERR_QUOTA_EXCEEDED_FLOWLOG;
	}
	assert_int_equal(ok, TEST_PG_QUOTA);
	assert_int_equal(over, TEST_PG_CREATORS - TEST_PG_QUOTA);
	PGconn *c = pg_admin(f->dbname);
	assert_int_equal(pg_scalar(c, "SELECT count(*) FROM flowlogs"), TEST_PG_QUOTA);
	assert_int_equal(pg_scalar(c, "SELECT n FROM flowlog_counts"), TEST_PG_QUOTA);

	/* 3 binds of different serial numbers to one HA gateway: at most 2. */
	struct cas_arg g = {.account = account};
	assert_int_equal(store_write(node[0], cas_gateway, &g), 0);
	for (int i = 0; i < 3; i++) {
		a[i] = (struct cas_arg){.s = node[i % 2], .account = account, .idx = i};
		assert_int_equal(pthread_create(&th[i], NULL, cas_bind_main, &a[i]), 0);
	}
	ok = 0;
	for (int i = 0; i < 3; i++) {
		pthread_join(th[i], NULL);
		ok += a[i].rc == 0;
	}
	assert_int_equal(ok, 2);
	assert_int_equal(pg_scalar(c, "SELECT count(*) FROM devices"), 2);
	PQfinish(c);
	store_close(node[1]);
	store_close(node[0]);
}

/* DeleteFlowLog racing an Associate that commits while the delete waits for
 * the flow log's lock: the delete's TotalSagNum comes from the snapshot its
 * statement took before the lock was granted (READ COMMITTED), so it reads 0
 * and the foreign key refuses the DELETE. That must be the API's
 * DependencyViolation.FlowLog, not a store failure (a 500). */
static int race_delete(struct store_tx *tx, void *arg)
{
	struct cas_arg *a = arg;
	struct flowlog fl;
	int rc = store_flowlog_get(tx, (struct owner){a->account, "cn-hangzhou"},
				   "fl-test00000000000", &fl);
	if (rc != 0)
		return rc;
	if (fl.total_sag_num > 0)
		return ERR_DEPENDENCY_VIOLATION_FLOWLOG;
	return store_flowlog_delete(tx, &fl);
}

static void *race_delete_main(void *p)
{
	struct cas_arg *a = p;
	a->rc = store_write_async_wait(a->s, a->account, race_delete, a);
	return NULL;
}

static void test_pg_delete_while_bound(void **state)
{
	struct fixture *f = *state;
	struct store *s = store_open(f->path);
	assert_non_null(s);
	struct cas_arg a = {.s = s};
	assert_int_equal(store_write(s, ensure_account_id, &a.account), 0);
	assert_int_equal(store_write(s, cas_create, &a), 0);
	assert_int_equal(store_write(s, cas_gateway, &a), 0);
	PGconn *c = pg_admin(f->dbname);
	pg_ok(c, "BEGIN");
	pg_ok(c, "SELECT 1 FROM flowlogs WHERE flowlog_id = 'fl-test00000000000' FOR UPDATE");
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, race_delete_main, &a), 0);
	wait_one_lock_waiter(f->dbname);
	pg_ok(c, "UPDATE sags SET flowlog_rowid = (SELECT id FROM flowlogs WHERE flowlog_id = "
		 "'fl-test00000000000') WHERE sag_id = 'sag-cas'");
	pg_ok(c, "COMMIT");
	pthread_join(th, NULL);
	assert_int_equal(a.rc, ERR_DEPENDENCY_VIOLATION_FLOWLOG);
	assert_int_equal(pg_scalar(c, "SELECT count(*) FROM flowlogs"), 1);
	assert_int_equal(pg_scalar(c, "SELECT n FROM flowlog_counts"), 1);
	PQfinish(c);
	store_close(s);
}

/* ---- Associate/Disassociate's combined lookup (pg_sag.c pg_flowlog_sag_get) ---- */

struct lookup_arg {
	struct store *s;
	int64_t account;
	const char *flowlog_id, *sag_id;
	bool devices;
	int rc;
	struct flowlog fl;
	struct sag g;
};

static int lookup_job(struct store_tx *tx, void *arg)
{
	struct lookup_arg *a = arg;
	a->rc = store_flowlog_sag_get(tx, (struct owner){a->account, "cn-hangzhou"}, a->flowlog_id,
				      a->sag_id, a->devices, &a->fl, &a->g);
	return a->rc < 0 ? a->rc : 0;
}

static void *lookup_main(void *p)
{
	struct lookup_arg *a = p;
	int rc = store_write_async_wait(a->s, a->account, lookup_job, a);
	if (rc != 0)
		a->rc = rc;
	return NULL;
}

static int lookup(struct lookup_arg *a, const char *flowlog_id, const char *sag_id, bool devices)
{
	a->flowlog_id = flowlog_id;
	a->sag_id = sag_id;
	a->devices = devices;
	assert_int_equal(store_write_async_wait(a->s, a->account, lookup_job, a), 0);
	return a->rc;
}

static int cas_device(struct store_tx *tx, void *arg)
{
	struct cas_arg *a = arg;
	struct sag g;
	int rc = store_sag_get(tx, (struct owner){a->account, "cn-hangzhou"}, "sag-cas", &g);
	struct device d = {0};
	snprintf(d.serial_number, sizeof(d.serial_number), "sn-cas-%d", a->idx);
	snprintf(d.secret_key, sizeof(d.secret_key), "k");
	return rc != 0 ? rc : store_device_insert(tx, &g, &d, 1);
}

#define FL0 "fl-test00000000000"
#define FL1 "fl-test00000000001"

/* Associate's shape: the lookup, then the binding's deferred update. */
static int bind_job(struct store_tx *tx, void *arg)
{
	struct lookup_arg *a = arg;
	int rc = lookup_job(tx, a);
	if (rc != 0 || a->rc != 0)
		return rc ? rc : a->rc;
	return store_sag_set_flowlog(tx, &a->g, a->devices ? a->fl.rowid : 0);
}

/* The answers in spec §3.7's order (a missing flow log first, whether the
 * gateway exists or not), the devices and the bound id read, and the round
 * trips: the lookup with the devices is one, as without them. */
static void test_pg_flowlog_sag_lookup(void **state)
{
	struct fixture *f = *state;
	struct store *s = store_open(f->path);
	assert_non_null(s);
	struct cas_arg c = {.s = s};
	assert_int_equal(store_write(s, ensure_account_id, &c.account), 0);
	assert_int_equal(store_write(s, cas_create, &c), 0);
	assert_int_equal(store_write(s, cas_gateway, &c), 0);
	assert_int_equal(store_write(s, cas_device, &c), 0);
	struct lookup_arg a = {.s = s, .account = c.account};
	assert_int_equal(lookup(&a, "fl-missing", "sag-cas", true), 1);
	assert_int_equal(lookup(&a, "fl-missing", "sag-missing", true), 1);
	assert_int_equal(lookup(&a, FL0, "sag-missing", true), 2);
	for (int devices = 0; devices < 2; devices++) {
		struct store_stats before, after;
		store_stats(s, &before);
		assert_int_equal(lookup(&a, FL0, "sag-cas", devices), 0);
		store_stats(s, &after);
		assert_int_equal(after.round_trips - before.round_trips, 2); /* + the COMMIT */
		assert_string_equal(a.fl.id, FL0);
		assert_string_equal(a.g.id, "sag-cas");
		assert_string_equal(a.g.flowlog_id, "");
		assert_int_equal(a.g.ndevices, devices ? 1 : 0);
		if (devices)
			assert_string_equal(a.g.devices[0].serial_number, "sn-cas-0");
	}
	PGconn *pc = pg_admin(f->dbname);
	pg_ok(pc, "UPDATE sags SET flowlog_rowid = (SELECT id FROM flowlogs WHERE flowlog_id = '" FL0
		  "')");
	PQfinish(pc);
	assert_int_equal(lookup(&a, FL0, "sag-cas", false), 0);
	assert_string_equal(a.g.flowlog_id, FL0);
	/* Unbind, then bind: the lookup is the job's one round trip, the
	 * binding's update rides with COMMIT. */
	for (int bind = 0; bind < 2; bind++) {
		struct store_stats before, after;
		store_stats(s, &before);
		a.flowlog_id = FL0;
		a.sag_id = "sag-cas";
		a.devices = bind;
		assert_int_equal(store_write_async_wait(s, a.account, bind_job, &a), 0);
		store_stats(s, &after);
		assert_int_equal(after.round_trips - before.round_trips, 2);
		assert_int_equal(lookup(&a, FL0, "sag-cas", false), 0);
		assert_string_equal(a.g.flowlog_id, bind ? FL0 : "");
	}
	store_close(s);
}

/* Holds the rows that hold[] locks in a transaction of its own, starts the
 * lookup of a, waits until it waits for a lock, runs meanwhile (others'
 * commits during the wait), then commits and lets the lookup finish. */
static void lookup_race(struct fixture *f, struct lookup_arg *a, const char *const *hold,
			void (*meanwhile)(struct fixture *f, void *arg), void *marg)
{
	PGconn *c = pg_admin(f->dbname);
	pg_ok(c, "BEGIN");
	for (int i = 0; hold[i]; i++)
		pg_ok(c, hold[i]);
	a->rc = -99;
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, lookup_main, a), 0);
	wait_one_lock_waiter(f->dbname);
	if (meanwhile)
		meanwhile(f, marg);
	pg_ok(c, "COMMIT");
	pthread_join(th, NULL);
	PQfinish(c);
}

/* While the lookup waits for the flow log, another node creates FL1 and binds
 * the (unlocked) gateway to it, and a second device is bound. */
static void rebind_meanwhile(struct fixture *f, void *arg)
{
	struct cas_arg *c = arg;
	struct store *other = store_open(f->path);
	assert_non_null(other);
	c->s = other;
	assert_int_equal(store_write(other, cas_create, c), 0);
	store_close(other);
	PGconn *w = pg_admin(f->dbname);
	/* Were the gateway locked already (the wrong lock order), this would
	 * wait for the lookup, which waits for the holder: fail instead. */
	pg_ok(w, "SET lock_timeout = '5s'");
	pg_ok(w, "UPDATE sags SET flowlog_rowid = (SELECT id FROM flowlogs WHERE flowlog_id = '" FL1
		 "')");
	pg_ok(w, "INSERT INTO devices (serial_number, sag_rowid, secret_key, bound_ms) "
		 "SELECT 'sn-cas-1', id, 'k', 2 FROM sags");
	PQfinish(w);
}

#define HOLD_FL0 "SELECT 1 FROM flowlogs WHERE flowlog_id = '" FL0 "' FOR UPDATE"

/* While the lookup waits for the gateway, it holds the flow log already: the
 * lock order flow log -> gateway (docs/store.md). */
static void flowlog_held_meanwhile(struct fixture *f, void *arg)
{
	(void)arg;
	PGconn *w = pg_admin(f->dbname);
	PGresult *r = PQexec(w, "SELECT 1 FROM flowlogs WHERE flowlog_id = '" FL0 "' FOR UPDATE NOWAIT");
	const char *st = PQresultErrorField(r, PG_DIAG_SQLSTATE);
	assert_string_equal(st ? st : "", "55P03"); /* lock_not_available */
	PQclear(r);
	PQfinish(w);
}

/* The combined lookup waits for a lock while others commit: what it answers
 * must be what the rows are once its locks are granted. READ COMMITTED
 * re-reads both locked rows (a changed status, a deleted row), but the
 * gateway's bound flow-log id and the devices are other rows: they must not
 * come from the snapshot taken before the wait, or an Associate would take a
 * gateway bound meanwhile to another flow log (and count too few devices). */
static void test_pg_flowlog_sag_races(void **state)
{
	struct fixture *f = *state;
	struct store *s = store_open(f->path);
	assert_non_null(s);
	struct cas_arg c = {.s = s};
	assert_int_equal(store_write(s, ensure_account_id, &c.account), 0);
	assert_int_equal(store_write(s, cas_create, &c), 0);
	assert_int_equal(store_write(s, cas_gateway, &c), 0);
	assert_int_equal(store_write(s, cas_device, &c), 0);
	/* Static: a failed assertion leaves the test while a lookup may still
	 * be writing its answer. */
	static struct lookup_arg a;
	a = (struct lookup_arg){.s = s, .account = c.account, .flowlog_id = FL0,
				.sag_id = "sag-cas", .devices = true};

	/* The flow log deactivated while the lookup waits for it. */
	lookup_race(f, &a,
		    (const char *const[]){"UPDATE flowlogs SET status = 'Inactive' WHERE "
					  "flowlog_id = '" FL0 "'", NULL},
		    NULL, NULL);
	assert_int_equal(a.rc, 0);
	assert_int_equal(a.fl.status, FLOWLOG_INACTIVE);
	assert_int_equal(assoc_check(&a.fl, &a.g), ERR_INCORRECT_STATUS_FLOWLOG);
	PGconn *pc = pg_admin(f->dbname);
	pg_ok(pc, "UPDATE flowlogs SET status = 'Active'");

	/* The gateway bound to a flow log created during the wait, and a device
	 * bound: both seen (Associate's rules then refuse it). */
	struct cas_arg c1 = {.account = c.account, .idx = 1};
	lookup_race(f, &a, (const char *const[]){HOLD_FL0, NULL}, rebind_meanwhile, &c1);
	assert_int_equal(a.rc, 0);
	assert_string_equal(a.g.flowlog_id, FL1);
	assert_int_equal(a.g.ndevices, 2); /* assoc_check then refuses: another flow log's */

	/* The gateway deleted while the lookup (holding the flow log) waits for
	 * it: the gateway is missing. */
	lookup_race(f, &a,
		    (const char *const[]){"DELETE FROM devices",
					  "DELETE FROM sags WHERE sag_id = 'sag-cas'", NULL},
		    flowlog_held_meanwhile, NULL);
	assert_int_equal(a.rc, 2);

	/* The flow log deleted while the lookup waits for it: the flow log is
	 * missing, though the gateway exists. */
	assert_int_equal(store_write(s, cas_gateway, &c), 0);
	a.flowlog_id = FL1;
	lookup_race(f, &a,
		    (const char *const[]){"DELETE FROM flowlogs WHERE flowlog_id = '" FL1 "'",
					  NULL},
		    NULL, NULL);
	assert_int_equal(a.rc, 1);
	assert_int_equal(pg_scalar(pc, "SELECT count(*) FROM sags"), 1);
	PQfinish(pc);
	store_close(s);
}

/* ---- the pipelined writer (store_pg.c): round trips and error paths ---- */

enum pipe_kind {
	PIPE_OK,
	PIPE_FAIL_AFTER,
	PIPE_BAD_SQL,
	PIPE_SECOND_FAILS,
	PIPE_NOOP,
	PIPE_DEFER,	  /* one deferred insert */
	PIPE_DEFER_FAILS, /* one deferred insert of NULL: not_null_violation */
};

/* A deferred statement's check: a NOT NULL violation is the job's invalid
 * parameter (a mapped SQLSTATE), any other failure the store's. */
static int t_check(PGresult *r, const char *sqlstate, void *ctx)
{
	int *checked = ctx;
	++*checked;
	if (r)
		return PQresultStatus(r) == PGRES_COMMAND_OK ? 0 : STORE_EIO;
	return !strcmp(sqlstate, "23502") ? ERR_INVALID_PARAMETER : STORE_EIO;
}

struct pipe_job {
	int64_t id;
	enum pipe_kind kind;
	int rc, calls, checked;
	int *statements; /* statements sent, for the round-trip count */
	pthread_mutex_t *mu;
	pthread_cond_t *cv;
	int *pending;
};

static int pipe_job_fn(struct store_tx *tx, void *arg)
{
	struct pipe_job *j = arg;
	j->calls++;
	int64_t v[2] = {j->id, j->id * 3};
	switch (j->kind) {
	case PIPE_NOOP:
		return 0;
	case PIPE_DEFER:
	case PIPE_DEFER_FAILS: {
		struct pg_params p = {0};
		pg_p_int(&p, j->id);
		if (j->kind == PIPE_DEFER)
			pg_p_int(&p, j->id * 3);
		else
			pg_p_text(&p, NULL);
		return pg_tx_exec_deferred(tx, "INSERT INTO t(id, v) VALUES ($1, $2)", &p,
					   "test deferred", t_check, &j->checked);
	}
	case PIPE_BAD_SQL: /* a PREPARE that fails: the job fails, the batch goes on */
		++*j->statements;
		return t_exec(tx, "INSERT INTO t(id, no_such_column) VALUES ($1, $2)", 2, v, NULL);
	default:
		break;
	}
	++*j->statements;
	int rc = t_exec(tx, "INSERT INTO t(id, v) VALUES ($1, $2)", 2, v, NULL);
	if (rc == 0 && j->kind == PIPE_SECOND_FAILS) {
		/* The first insert succeeded; this one fails: both must go. */
		++*j->statements;
		int64_t bad[1] = {j->id};
		rc = t_exec(tx, "INSERT INTO t(id, v) VALUES ($1, NULL)", 1, bad, NULL);
	}
	return rc == 0 && j->kind == PIPE_FAIL_AFTER ? ERR_INVALID_PARAMETER : rc;
}

static void pipe_job_done(void *arg, int rc)
{
	struct pipe_job *j = arg;
	pthread_mutex_lock(j->mu);
	j->rc = rc;
	if (--*j->pending == 0)
		pthread_cond_broadcast(j->cv);
	pthread_mutex_unlock(j->mu);
}

/* n pipe jobs of kinds[i % nkinds], queued behind a gate so that they share
 * one batch; waits for every answer and returns the store's counters moved
 * meanwhile (the gate's batch in them) and, in *statements, how many
 * statements the jobs sent. */
static struct store_stats run_pipe_jobs(struct store *s, struct pipe_job *jobs, int n,
					const enum pipe_kind *kinds, int nkinds, int *statements)
{
	pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
	pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
	int pending = n;
	*statements = 0;
	struct gate g;
	gate_close(s, &g);
	struct store_stats before, after;
	store_stats(s, &before);
	for (int i = 0; i < n; i++) {
		jobs[i] = (struct pipe_job){.id = i + 1, .kind = kinds[i % nkinds], .rc = -99,
					    .statements = statements, .mu = &mu, .cv = &cv,
					    .pending = &pending};
		store_write_async(s, pipe_job_fn, &jobs[i], pipe_job_done);
	}
	gate_open(&g);
	pthread_mutex_lock(&mu);
	while (pending > 0)
		pthread_cond_wait(&cv, &mu);
	pthread_mutex_unlock(&mu);
	pthread_mutex_destroy(&g.mu);
	pthread_cond_destroy(&g.cv);
	store_stats(s, &after);
	return (struct store_stats){.max_batch = after.max_batch,
				    .round_trips = after.round_trips - before.round_trips};
}

/* One batch of jobs of every kind, failures in the middle: each failing job's
 * own rows are rolled back to its savepoint, the others commit, and the
 * whole batch costs one round trip per statement plus one for the version
 * bump and COMMIT (BEGIN, SAVEPOINT, ROLLBACK TO and RELEASE ride along). */
static void test_pg_pipelined_batch(void **state)
{
	struct fixture *f = *state;
	struct store *s = store_open(f->path);
	assert_non_null(s);
	assert_int_equal(store_write(s, make_table, NULL), 0);
	enum { N = 24 };
	static const enum pipe_kind kinds[] = {PIPE_OK, PIPE_FAIL_AFTER, PIPE_OK, PIPE_BAD_SQL,
					       PIPE_NOOP, PIPE_SECOND_FAILS, PIPE_OK, PIPE_OK};
	struct pipe_job jobs[N];
	int statements;
	struct store_stats d = run_pipe_jobs(s, jobs, N, kinds, 8, &statements);
	int64_t ok = 0;
	for (int i = 0; i < N; i++) {
		enum pipe_kind k = jobs[i].kind;
		bool good = k == PIPE_OK || k == PIPE_NOOP;
		assert_int_equal(jobs[i].calls, 1);
		assert_int_equal(jobs[i].rc, k == PIPE_FAIL_AFTER ? ERR_INVALID_PARAMETER
					     : good		  ? 0
								  : STORE_EIO);
		struct lookup l = {.id = i + 1};
		assert_int_equal(store_read(s, get_row, &l), 0);
		assert_int_equal(l.found, k == PIPE_OK);
		ok += k == PIPE_OK;
	}
	int64_t count = 0;
	assert_int_equal(store_read(s, count_rows, &count), 0);
	assert_int_equal(count, ok);
	assert_int_equal(d.max_batch, N); /* they did share one transaction */
	/* The gate's batch: its COMMIT alone; then ours: statements + 1. */
	assert_int_equal(d.round_trips, 1 + statements + 1);
	print_message("pipelined batch: %d jobs, %d statements, %llu round trips\n", N, statements,
		      (unsigned long long)(d.round_trips - 1));
	store_close(s);
}

/* The writer's linger (store_pg.c linger, docs/store.md "Linger under load"):
 * LINGER_MIN is store_pg.c's PG_LINGER_MIN. n jobs that change nothing,
 * submitted one at a time LINGER_GAP_US apart; returns the batches they took. */
enum { LINGER_MIN = 8, LINGER_GAP_US = 50, LINGER_TRIES = 3 };

static uint64_t trickle_batches(struct store *s, struct pipe_job *jobs, int n)
{
	pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
	pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
	int pending = n, statements = 0;
	struct store_stats before, after;
	store_stats(s, &before);
	for (int i = 0; i < n; i++) {
		jobs[i] = (struct pipe_job){.id = i + 1, .kind = PIPE_NOOP, .rc = -99,
					    .statements = &statements, .mu = &mu, .cv = &cv,
					    .pending = &pending};
		store_write_async(s, pipe_job_fn, &jobs[i], pipe_job_done);
		usleep(LINGER_GAP_US);
	}
	pthread_mutex_lock(&mu);
	while (pending > 0)
		pthread_cond_wait(&cv, &mu);
	pthread_mutex_unlock(&mu);
	store_stats(s, &after);
	for (int i = 0; i < n; i++)
		assert_int_equal(jobs[i].rc, 0);
	return after.batches - before.batches;
}

/* A batch of LINGER_MIN behind a gate, then LINGER_MIN jobs one by one:
 * the batches those took. */
static uint64_t after_full_batch(struct store *s, struct pipe_job *jobs)
{
	int statements;
	static const enum pipe_kind noop[] = {PIPE_NOOP};
	struct store_stats d = run_pipe_jobs(s, jobs, LINGER_MIN, noop, 1, &statements);
	assert_int_equal(d.max_batch, LINGER_MIN);
	return trickle_batches(s, jobs, LINGER_MIN);
}

/* Alone on the database, a writer does not wait: after a batch of
 * LINGER_MIN, as many jobs arriving one by one take more than one batch.
 * With another node's lease live, they share one (well within PG_LINGER_US:
 * the writer waited for them); after a batch of one they do not. Timing is
 * involved (50 us between jobs against PG_LINGER_US = 2 ms), so the two
 * first cases take the best of LINGER_TRIES. */
static void test_pg_writer_linger(void **state)
{
	struct fixture *f = *state;
	struct store *s = store_open(f->path);
	assert_non_null(s);
	struct pipe_job jobs[LINGER_MIN];
	assert_int_equal(store_pg_peers(s), 0);
	uint64_t alone = 0;
	for (int i = 0; i < LINGER_TRIES && alone < 2; i++) {
		uint64_t b = after_full_batch(s, jobs);
		alone = b > alone ? b : alone;
	}
	PGconn *c = pg_admin(f->dbname);
	PQclear(PQexec(c, "INSERT INTO node_lease VALUES (gen_random_uuid(), 0, "
			  "now() + interval '1 hour', now())"));
	for (int i = 0; i < 100 && store_pg_peers(s) < 1; i++)
		usleep(50000); /* the health thread counts leases every PG_PING_US */
	assert_int_equal(store_pg_peers(s), 1);
	/* The best of LINGER_TRIES: a loaded machine may stall this thread. */
	uint64_t lingered = UINT64_MAX;
	for (int i = 0; i < LINGER_TRIES && lingered > 1; i++) {
		uint64_t b = after_full_batch(s, jobs);
		lingered = b < lingered ? b : lingered;
	}
	assert_int_equal(trickle_batches(s, jobs, 1), 1);
	uint64_t plain = trickle_batches(s, jobs, LINGER_MIN);
	print_message("linger: %d jobs one by one took %llu batch(es) alone, %llu with a peer after "
		      "a batch of %d, %llu after a batch of 1\n",
		      LINGER_MIN, (unsigned long long)alone, (unsigned long long)lingered,
		      LINGER_MIN, (unsigned long long)plain);
	assert_true(alone > 1);
	assert_int_equal(lingered, 1);
	assert_true(plain > 1);
	PQclear(PQexec(c, "DELETE FROM node_lease"));
	PQfinish(c);
	store_close(s);
}

/* Deferred statements (pg_tx_exec_deferred) in one batch, two of them failing
 * in the middle and one as the last job (found at COMMIT): each failing job
 * gets its check's answer and leaves no row, the jobs whose statements the
 * pipeline skipped after it run once more, the rest once, and every other
 * row is durable. Round trips: the first job's statement (PIPE_OK, never
 * deferred), each normal statement, one more for each normal statement a
 * failure skipped, and COMMIT twice (the first one skipped). */
static void test_pg_deferred_batch(void **state)
{
	struct fixture *f = *state;
	struct store *s = store_open(f->path);
	assert_non_null(s);
	assert_int_equal(store_write(s, make_table, NULL), 0);
	enum { N = 14 };
	static const enum pipe_kind kinds[N] = {
	    PIPE_OK,    PIPE_DEFER, PIPE_DEFER, PIPE_DEFER_FAILS, PIPE_DEFER,
	    PIPE_OK,    PIPE_DEFER, PIPE_NOOP,  PIPE_DEFER_FAILS, PIPE_DEFER,
	    PIPE_DEFER, PIPE_OK,    PIPE_DEFER, PIPE_DEFER_FAILS};
	static const int calls[N] = {1, 1, 1, 1, 2, 2, 1, 1, 1, 2, 2, 2, 1, 1};
	struct pipe_job jobs[N];
	int statements;
	struct store_stats d = run_pipe_jobs(s, jobs, N, kinds, N, &statements);
	int64_t ok = 0;
	for (int i = 0; i < N; i++) {
		enum pipe_kind k = kinds[i];
		bool fails = k == PIPE_DEFER_FAILS;
		print_message("job %d: calls %d checked %d rc %d\n", i, jobs[i].calls,
			      jobs[i].checked, jobs[i].rc);
		assert_int_equal(jobs[i].calls, calls[i]);
		assert_int_equal(jobs[i].rc, fails ? ERR_INVALID_PARAMETER : 0);
		/* Every answer checked once; the skipped ones never reach it. */
		assert_int_equal(jobs[i].checked, k == PIPE_DEFER || fails);
		struct lookup l = {.id = i + 1};
		assert_int_equal(store_read(s, get_row, &l), 0);
		assert_int_equal(l.found, k == PIPE_OK || k == PIPE_DEFER);
		ok += k == PIPE_OK || k == PIPE_DEFER;
	}
	int64_t count = 0;
	assert_int_equal(store_read(s, count_rows, &count), 0);
	assert_int_equal(count, ok);
	assert_int_equal(d.max_batch, N);
	/* The gate's COMMIT; then job 0; jobs 5 and 11 twice each (the first
	 * time skipped); COMMIT twice. */
	assert_int_equal(d.round_trips, 1 + 1 + 2 + 2 + 2);
	store_close(s);
}

/* n creates queued behind a gate on one writer, so that they share one
 * batch, job i in regions[i % nregions]; waits for every answer (in a[i].rc)
 * and returns the store's counters moved meanwhile, the gate's batch in
 * them. */
static struct store_stats create_batch(struct store *s, int64_t account, struct cas_arg *a, int n,
				       const char *const *regions, int nregions)
{
	struct scoped_call *calls = calloc((size_t)n, sizeof(*calls));
	assert_non_null(calls);
	struct gate g;
	gate_close(s, &g);
	static int next_idx; /* flow log ids stay unique across calls */
	struct store_stats before, after;
	store_stats(s, &before);
	for (int i = 0; i < n; i++) {
		a[i] = (struct cas_arg){.s = s,
					.account = account,
					.idx = next_idx++,
					.rc = -99,
					.region = regions[i % nregions]};
		calls[i] = (struct scoped_call){.fn = cas_create, .arg = &a[i], .rc = -99};
		pthread_mutex_init(&calls[i].mu, NULL);
		pthread_cond_init(&calls[i].cv, NULL);
		/* Unscoped: on the gate's writer, so they wait behind it. */
		store_write_async(s, scoped_call_run, &calls[i], scoped_call_done);
	}
	gate_open(&g);
	for (int i = 0; i < n; i++) {
		pthread_mutex_lock(&calls[i].mu);
		while (!calls[i].done)
			pthread_cond_wait(&calls[i].cv, &calls[i].mu);
		pthread_mutex_unlock(&calls[i].mu);
		a[i].rc = calls[i].rc;
		pthread_mutex_destroy(&calls[i].mu);
		pthread_cond_destroy(&calls[i].cv);
	}
	free(calls);
	pthread_mutex_destroy(&g.mu);
	pthread_cond_destroy(&g.cv);
	store_stats(s, &after);
	return (struct store_stats){.max_batch = after.max_batch,
				    .round_trips = after.round_trips - before.round_trips,
				    .strict_redos = after.strict_redos - before.strict_redos};
}

/* One batch of creates beyond the quota: its count raise at COMMIT refuses
 * it, the batch runs again with the quota checked per job, and the first
 * TEST_PG_QUOTA succeed (with their row ids) while the rest get
 * QuotaExceeded.FlowLog and leave nothing. */
static void test_pg_deferred_quota(void **state)
{
	struct fixture *f = *state;
	struct store *s = store_open(f->path);
	assert_non_null(s);
	int64_t account;
	assert_int_equal(store_write(s, ensure_account_id, &account), 0);
	enum { N = 12 };
	struct cas_arg a[N];
	const char *region[] = {NULL};
	struct store_stats d = create_batch(s, account, a, N, region, 1);
	for (int i = 0; i < N; i++) {
		assert_int_equal(a[i].rc, i < TEST_PG_QUOTA ? 0 : ERR_QUOTA_EXCEEDED_FLOWLOG);
		if (i < TEST_PG_QUOTA)
			assert_true(a[i].fl.rowid > 0);
	}
	assert_int_equal(d.max_batch, N);
	assert_int_equal(d.strict_redos, 1);
	/* The gate's COMMIT; the batch in one round trip, refused; again. */
	assert_int_equal(d.round_trips, 1 + 1 + 1);
	PGconn *c = pg_admin(f->dbname);
	assert_int_equal(pg_scalar(c, "SELECT count(*) FROM flowlogs"), TEST_PG_QUOTA);
	assert_int_equal(pg_scalar(c, "SELECT n FROM flowlog_counts"), TEST_PG_QUOTA);
	PQfinish(c);
	/* The batches after it check per job: one more create, refused. */
	struct cas_arg more;
	d = create_batch(s, account, &more, 1, region, 1);
	assert_int_equal(more.rc, ERR_QUOTA_EXCEEDED_FLOWLOG);
	assert_int_equal(d.strict_redos, 0);
	store_close(s);
}

/* A batch of creates within the quota, for two owners (regions): one round
 * trip for the whole batch once the connection is known alive, each owner's
 * count raised by its own flow logs, nothing run again. */
static void test_pg_count_raise(void **state)
{
	struct fixture *f = *state;
	struct store *s = store_open(f->path);
	assert_non_null(s);
	int64_t account;
	assert_int_equal(store_write(s, ensure_account_id, &account), 0);
	enum { N = 2 * TEST_PG_QUOTA - 1 };
	struct cas_arg a[N];
	const char *regions[] = {"cn-hangzhou", "cn-shanghai"};
	struct store_stats d = create_batch(s, account, a, N, regions, 2);
	for (int i = 0; i < N; i++) {
		assert_int_equal(a[i].rc, 0);
		assert_true(a[i].fl.rowid > 0);
	}
	assert_int_equal(d.max_batch, N);
	assert_int_equal(d.strict_redos, 0);
	assert_int_equal(d.round_trips, 1 + 1); /* the gate's COMMIT; the batch */
	PGconn *c = pg_admin(f->dbname);
	assert_int_equal(pg_scalar(c, "SELECT count(*) FROM flowlogs"), N);
	assert_int_equal(
	    pg_scalar(c, "SELECT n FROM flowlog_counts WHERE region_id = 'cn-hangzhou'"),
	    TEST_PG_QUOTA);
	assert_int_equal(
	    pg_scalar(c, "SELECT n FROM flowlog_counts WHERE region_id = 'cn-shanghai'"),
	    TEST_PG_QUOTA - 1);
	PQfinish(c);
	/* cn-hangzhou is full, cn-shanghai has one left: a batch of one each way
	 * is refused at COMMIT and run again, one check per job. */
	struct cas_arg b[2];
	d = create_batch(s, account, b, 2, regions, 2);
	assert_int_equal(b[0].rc, ERR_QUOTA_EXCEEDED_FLOWLOG);
	assert_int_equal(b[1].rc, 0);
	assert_int_equal(d.strict_redos, 1);
	store_close(s);
}

/* ---- prefetched lookups: a batch's hinted Associates (store_pg.c prefetch) ---- */

#define PF_GATEWAYS 16

/* PF_GATEWAYS flow logs and gateways, fl-pf...i and sag-pfi, all unbound
 * (inserted without the quota's counter: more than TEST_PG_QUOTA). */
static int pf_setup(struct store_tx *tx, void *arg)
{
	int64_t account = *(int64_t *)arg;
	for (int i = 0; i < PF_GATEWAYS; i++) {
		struct flowlog fl;
		flowlog_init(&fl);
		fl.account_id = account;
		snprintf(fl.region_id, sizeof(fl.region_id), "cn-hangzhou");
		snprintf(fl.resource_group_id, sizeof(fl.resource_group_id), "rg-test");
		snprintf(fl.id, sizeof(fl.id), "fl-pf%013d", i);
		fl.created_ms = 1;
		struct sag g = {.account_id = account, .spec = SAG_SPEC_1000, .ha = SAG_HA_WARM};
		snprintf(g.id, sizeof(g.id), "sag-pf%d", i);
		snprintf(g.region_id, sizeof(g.region_id), "cn-hangzhou");
		snprintf(g.resource_group_id, sizeof(g.resource_group_id), "rg-test");
		int rc = store_flowlog_insert(tx, &fl);
		if (rc == 0)
			rc = store_sag_insert(tx, &g, "order", "{}");
		if (rc != 0)
			return rc;
	}
	return 0;
}

struct pf_job {
	struct lookup_arg a;
	char flowlog_id[DOMAIN_ID_MAX + 1], sag_id[DOMAIN_ID_MAX + 1];
	int rc;
	pthread_mutex_t *mu;
	pthread_cond_t *cv;
	int *pending;
};

static int pf_job_fn(struct store_tx *tx, void *arg)
{
	return bind_job(tx, &((struct pf_job *)arg)->a);
}

static void pf_job_done(void *arg, int rc)
{
	struct pf_job *j = arg;
	pthread_mutex_lock(j->mu);
	j->rc = rc;
	if (--*j->pending == 0)
		pthread_cond_broadcast(j->cv);
	pthread_mutex_unlock(j->mu);
}

/* Job i binds (bind[i]) or unbinds flow log fl[i] and gateway sag[i]
 * (indices of pf_setup's), hinted as the API does, queued behind a gate on
 * writer 0 so that they share one batch; meanwhile (may be NULL) runs once
 * the gate is open. Returns the round trips the gate's batch and theirs
 * cost. */
static uint64_t pf_batch(struct store *s, int64_t account, struct pf_job *jobs, int n,
			 const int *fl, const int *sag, const bool *bind, size_t *max_batch)
{
	pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
	pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
	int pending = n;
	struct gate g;
	gate_close(s, &g);
	struct store_stats before, after;
	store_stats(s, &before);
	for (int i = 0; i < n; i++) {
		struct pf_job *j = &jobs[i];
		*j = (struct pf_job){.rc = -99, .mu = &mu, .cv = &cv, .pending = &pending};
		snprintf(j->flowlog_id, sizeof(j->flowlog_id), "fl-pf%013d", fl[i]);
		snprintf(j->sag_id, sizeof(j->sag_id), "sag-pf%d", sag[i]);
		j->a = (struct lookup_arg){.s = s, .account = account, .flowlog_id = j->flowlog_id,
					   .sag_id = j->sag_id, .devices = bind[i], .rc = -99};
		struct store_lock_hint h = {{account, "cn-hangzhou"}, j->flowlog_id, j->sag_id, bind[i]};
		store_write_async_hinted(s, 0, &h, pf_job_fn, j, pf_job_done);
	}
	gate_open(&g);
	pthread_mutex_lock(&mu);
	while (pending > 0)
		pthread_cond_wait(&cv, &mu);
	pthread_mutex_unlock(&mu);
	pthread_mutex_destroy(&g.mu);
	pthread_cond_destroy(&g.cv);
	store_stats(s, &after);
	*max_batch = after.max_batch;
	return after.round_trips - before.round_trips;
}

/* The flow log gateway sag-pf<sag> is bound to, "" when none. */
static void pf_bound(const char *dbname, int sag, char out[DOMAIN_ID_MAX + 1])
{
	char sql[200];
	snprintf(sql, sizeof(sql),
		 "SELECT coalesce((SELECT flowlog_id FROM flowlogs WHERE id = flowlog_rowid), '') "
		 "FROM sags WHERE sag_id = 'sag-pf%d'",
		 sag);
	PGconn *c = pg_admin(dbname);
	PGresult *r = PQexec(c, sql);
	assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
	assert_int_equal(PQntuples(r), 1);
	snprintf(out, DOMAIN_ID_MAX + 1, "%s", PQgetvalue(r, 0, 0));
	PQclear(r);
	PQfinish(c);
}

/* A batch of hinted Associates on distinct flow logs and gateways costs two
 * round trips however many jobs it holds (the lookups, read ahead; the
 * bindings with COMMIT), where it cost one per job plus one; each job got
 * its own rows' answer; then a batch of Disassociates sees every binding. */
static void test_pg_prefetch_batch(void **state)
{
	struct fixture *f = *state;
	struct store *s = store_open(f->path);
	assert_non_null(s);
	int64_t account;
	assert_int_equal(store_write(s, ensure_account_id, &account), 0);
	assert_int_equal(store_write(s, pf_setup, &account), 0);
	enum { N = PF_GATEWAYS };
	int idx[N];
	bool bind[N];
	for (int i = 0; i < N; i++)
		idx[i] = i;
	struct pf_job jobs[N];
	for (int round = 0; round < 2; round++) {
		for (int i = 0; i < N; i++)
			bind[i] = round == 0;
		size_t max_batch;
		uint64_t rt = pf_batch(s, account, jobs, N, idx, idx, bind, &max_batch);
		assert_int_equal(max_batch, N);
		print_message("prefetch: %d jobs, %llu round trips (the gate's 1 in them)\n", N,
			      (unsigned long long)rt);
		assert_int_equal(rt, 1 + 2); /* the gate's COMMIT; the batch */
		for (int i = 0; i < N; i++) {
			assert_int_equal(jobs[i].rc, 0);
			assert_int_equal(jobs[i].a.rc, 0);
			assert_string_equal(jobs[i].a.fl.id, jobs[i].flowlog_id);
			assert_string_equal(jobs[i].a.g.id, jobs[i].sag_id);
			/* What the job saw: unbound before the Associate, its
			 * own flow log before the Disassociate. */
			assert_string_equal(jobs[i].a.g.flowlog_id, round ? jobs[i].flowlog_id : "");
			char bound[DOMAIN_ID_MAX + 1];
			pf_bound(f->dbname, i, bound);
			assert_string_equal(bound, round ? "" : jobs[i].flowlog_id);
		}
	}
	/* Every gateway onto one flow log: one run too (only a shared gateway
	 * ends it). */
	int one[N] = {0};
	for (int i = 0; i < N; i++)
		bind[i] = true;
	size_t max_batch;
	assert_int_equal(pf_batch(s, account, jobs, N, one, idx, bind, &max_batch), 1 + 2);
	for (int i = 0; i < N; i++) {
		char bound[DOMAIN_ID_MAX + 1];
		assert_int_equal(jobs[i].rc, 0);
		pf_bound(f->dbname, i, bound);
		assert_string_equal(bound, jobs[0].flowlog_id);
	}
	store_close(s);
}

/* Jobs on one gateway in one batch: the second must see the first's binding,
 * so only the first is read ahead and the others look up live (the prefetch
 * stops at the first job that shares a gateway with one before it).
 * Associate fl0 -> sag0, Disassociate fl0/sag0 (sees fl0 bound: unbinds),
 * Associate fl1 -> sag1, Associate fl2 -> sag0 (sees it unbound again). Were the second answered from the prefetch, sag0 would stay
 * bound to fl0 and the fourth would find it bound. */
static void test_pg_prefetch_invalidated(void **state)
{
	struct fixture *f = *state;
	struct store *s = store_open(f->path);
	assert_non_null(s);
	int64_t account;
	assert_int_equal(store_write(s, ensure_account_id, &account), 0);
	assert_int_equal(store_write(s, pf_setup, &account), 0);
	enum { N = 4 };
	static const int fl[N] = {0, 0, 1, 2}, sag[N] = {0, 0, 1, 0};
	static const bool bind[N] = {true, false, true, true};
	struct pf_job jobs[N];
	size_t max_batch;
	uint64_t rt = pf_batch(s, account, jobs, N, fl, sag, bind, &max_batch);
	assert_int_equal(max_batch, N);
	for (int i = 0; i < N; i++) {
		assert_int_equal(jobs[i].rc, 0);
		assert_int_equal(jobs[i].a.rc, 0);
	}
	assert_string_equal(jobs[1].a.g.flowlog_id, "fl-pf0000000000000");
	assert_string_equal(jobs[3].a.g.flowlog_id, "");
	char bound[DOMAIN_ID_MAX + 1];
	pf_bound(f->dbname, 0, bound);
	assert_string_equal(bound, "fl-pf0000000000002");
	pf_bound(f->dbname, 1, bound);
	assert_string_equal(bound, "fl-pf0000000000001");
	/* The gate's COMMIT; the first job's lookup read ahead; the other
	 * three live; COMMIT. */
	assert_int_equal(rt, 1 + 1 + 3 + 1);
	store_close(s);
}

struct pf_arg {
	struct store *s;
	int64_t account;
	struct pf_job jobs[2];
	uint64_t rt;
	size_t max_batch;
};

/* Associate fl-pf0 -> sag-pf0 and fl-pf1 -> sag-pf1 in one batch. */
static void *pf_deadlock_main(void *p)
{
	struct pf_arg *a = p;
	static const int idx[2] = {0, 1};
	static const bool bind[2] = {true, true};
	a->rt = pf_batch(a->s, a->account, a->jobs, 2, idx, idx, bind, &a->max_batch);
	return NULL;
}

/* The prefetch deadlocks with another transaction (it holds sag-pf1 and
 * then asks for fl-pf0, which the prefetch locked): PostgreSQL aborts the
 * prefetch, the writer rolls the transaction back and begins again with the
 * first job, and every job looks up live and succeeds once the other
 * transaction committed. */
static void test_pg_prefetch_deadlock(void **state)
{
	struct fixture *f = *state;
	PGconn *o = deadlock_setup(f->dbname); /* the prefetch is the one to find it */
	struct store *s = store_open(f->path);
	assert_non_null(s);
	int64_t account;
	assert_int_equal(store_write(s, ensure_account_id, &account), 0);
	assert_int_equal(store_write(s, pf_setup, &account), 0);
	pg_ok(o, "BEGIN");
	pg_ok(o, "SELECT 1 FROM sags WHERE sag_id = 'sag-pf1' FOR UPDATE");
	struct pf_arg *a = calloc(1, sizeof(*a));
	assert_non_null(a);
	a->s = s;
	a->account = account;
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, pf_deadlock_main, a), 0);
	wait_one_lock_waiter(f->dbname);
	/* Closes the cycle; waits until the prefetch was aborted. */
	pg_ok(o, "SELECT 1 FROM flowlogs WHERE flowlog_id = 'fl-pf0000000000000' FOR UPDATE");
	pg_ok(o, "COMMIT");
	PQfinish(o);
	pthread_join(th, NULL);
	assert_int_equal(a->max_batch, 2);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(a->jobs[i].rc, 0);
		assert_string_equal(a->jobs[i].a.g.flowlog_id, "");
	}
	char bound[DOMAIN_ID_MAX + 1];
	pf_bound(f->dbname, 0, bound);
	assert_string_equal(bound, "fl-pf0000000000000");
	pf_bound(f->dbname, 1, bound);
	assert_string_equal(bound, "fl-pf0000000000001");
	/* The gate's COMMIT; the prefetch, aborted; two live lookups; COMMIT.
	 * Or two more: woken by the ROLLBACK, the other transaction's statement
	 * may find fl-pf0 locked again by the first live lookup, which closes a
	 * second cycle; job 1 then runs again in a batch of its own (its
	 * prefetch, COMMIT), and both still succeed. */
	assert_true(a->rt == 1 + 1 + 2 + 1 || a->rt == 1 + 1 + 2 + 1 + 2);
	free(a);
	store_close(s);
}

/* flowlogs' value rules on PostgreSQL are domains (sql/pg/0010), not table
 * CHECK constraints (re-read for every INSERT): the table has none left, and
 * each rule still refuses a bad value with check_violation, on INSERT and on
 * UPDATE. */
static const char *pg_sqlstate_of(PGconn *c, const char *sql)
{
	static char st[6];
	PGresult *r = PQexec(c, sql);
	const char *v = PQresultErrorField(r, PG_DIAG_SQLSTATE);
	snprintf(st, sizeof(st), "%s", v ? v : "00000");
	PQclear(r);
	return st;
}

/* A flow log read and written back changed (store_flowlog_update): to
 * Inactive with a new name and agings. */
static int dom_update(struct store_tx *tx, void *arg)
{
	struct cas_arg *a = arg;
	struct flowlog fl;
	int rc = store_flowlog_get(tx, (struct owner){a->account, "cn-hangzhou"}, a->fl.id, &fl);
	if (rc != 0)
		return rc;
	fl.status = FLOWLOG_INACTIVE;
	fl.active_aging = 120;
	fl.inactive_aging = 20;
	snprintf(fl.name, sizeof(fl.name), "renamed");
	return store_flowlog_update(tx, &fl);
}

static void test_pg_flowlog_domains(void **state)
{
	struct fixture *f = *state;
	struct store *s = store_open(f->path);
	assert_non_null(s);
	int64_t account;
	assert_int_equal(store_write(s, ensure_account_id, &account), 0);
	PGconn *c = pg_admin(f->dbname);
	assert_int_equal(pg_scalar(c, "SELECT count(*) FROM pg_constraint WHERE conrelid = "
				      "'flowlogs'::regclass AND contype = 'c'"),
			 0);
	static const char *const bad[] = {
	    "resource_group_id = ''",	  "status = 'Bogus'",	  "output_type = 'ftp'",
	    "netflow_server_port = 65536", "netflow_version = 'V6'", "active_aging = 59",
	    "inactive_aging = 601"};
	char sql[512];
	snprintf(sql, sizeof(sql),
		 "INSERT INTO flowlogs (flowlog_id, account_id, region_id, resource_group_id, "
		 "status, output_type, netflow_server_port, netflow_version, active_aging, "
		 "inactive_aging, created_ms) VALUES ('fl-dom', %lld, 'cn-hangzhou', 'rg', "
		 "'Active', 'netflow', 9995, 'V9', 300, 15, 1)",
		 (long long)account);
	assert_string_equal(pg_sqlstate_of(c, sql), "00000");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(sql, sizeof(sql), "UPDATE flowlogs SET %s WHERE flowlog_id = 'fl-dom'",
			 bad[i]);
		assert_string_equal(pg_sqlstate_of(c, sql), "23514");
	}
	snprintf(sql, sizeof(sql),
		 "INSERT INTO flowlogs (flowlog_id, account_id, region_id, resource_group_id, "
		 "status, output_type, active_aging, inactive_aging, created_ms) VALUES "
		 "('fl-dom2', %lld, 'cn-hangzhou', 'rg', 'Paused', 'sls', 300, 15, 1)",
		 (long long)account);
	assert_string_equal(pg_sqlstate_of(c, sql), "23514");
	/* The store's own update of every domain column. */
	struct cas_arg made;
	const char *region[] = {NULL};
	create_batch(s, account, &made, 1, region, 1);
	assert_int_equal(made.rc, 0);
	assert_int_equal(store_write(s, dom_update, &made), 0);
	assert_int_equal(pg_scalar(c, "SELECT count(*) FROM flowlogs WHERE name = 'renamed' AND "
				      "status = 'Inactive' AND active_aging = 120 AND "
				      "inactive_aging = 20"),
			 1);
	PQfinish(c);
	store_close(s);
}

/* The version bump deadlocks (two writers sharing a shard slot, store.md
 * "Shard slots"; here an admin session holding account_version and then
 * waiting for the row the job updated): the batch runs again and its job
 * succeeds, never answered with an error. */
struct bump_arg {
	struct cas_arg made;
	int rc;
};

static void *bump_deadlock_main(void *p)
{
	struct bump_arg *b = p;
	b->rc = store_write(b->made.s, dom_update, &b->made);
	return NULL;
}

static void test_pg_bump_deadlock(void **state)
{
	struct fixture *f = *state;
	PGconn *o = deadlock_setup(f->dbname); /* the writer is the one to find it */
	char sql[200];
	struct store *s = store_open(f->path);
	assert_non_null(s);
	int64_t account;
	assert_int_equal(store_write(s, ensure_account_id, &account), 0);
	struct bump_arg b = {.rc = -99};
	const char *region[] = {NULL};
	create_batch(s, account, &b.made, 1, region, 1);
	assert_int_equal(b.made.rc, 0);
	b.made.s = s;
	pg_ok(o, "BEGIN");
	pg_ok(o, "LOCK TABLE account_version IN EXCLUSIVE MODE");
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, bump_deadlock_main, &b), 0);
	wait_one_lock_waiter(f->dbname); /* the bump, after the job's UPDATE */
	/* Closes the cycle; returns once the writer's batch was aborted. */
	snprintf(sql, sizeof(sql), "SELECT 1 FROM flowlogs WHERE flowlog_id = '%s' FOR UPDATE",
		 b.made.fl.id);
	pg_ok(o, sql);
	pg_ok(o, "COMMIT");
	pthread_join(th, NULL);
	assert_int_equal(b.rc, 0);
	assert_int_equal(pg_scalar(o, "SELECT count(*) FROM flowlogs WHERE name = 'renamed'"), 1);
	PQfinish(o);
	store_close(s);
}

/* sags' and devices' CHECKs are domains too (sql/pg/0011): none left on
 * the tables, each rule still refused with 23514, and good rows go in. */
static void test_pg_sag_device_domains(void **state)
{
	struct fixture *f = *state;
	struct store *s = store_open(f->path);
	assert_non_null(s);
	int64_t account;
	assert_int_equal(store_write(s, ensure_account_id, &account), 0);
	PGconn *c = pg_admin(f->dbname);
	assert_int_equal(pg_scalar(c, "SELECT count(*) FROM pg_constraint WHERE conrelid IN "
				      "('sags'::regclass, 'devices'::regclass) AND contype = 'c'"),
			 0);
	char sql[512];
	snprintf(sql, sizeof(sql),
		 "INSERT INTO sags (sag_id, account_id, region_id, resource_group_id, "
		 "hardware_spec, ha_type, order_id, created_ms) VALUES ('sag-dom', %lld, "
		 "'cn-hangzhou', 'rg', 'sag-1000', 'warm_backup', 'o', 1)",
		 (long long)account);
	assert_string_equal(pg_sqlstate_of(c, sql), "00000");
	assert_string_equal(pg_sqlstate_of(c, "INSERT INTO devices (serial_number, sag_rowid, "
					      "secret_key, ha_state, sls_delivery, bound_ms) SELECT "
					      "'sn-dom', id, 'k', 'active', 'delivered', 1 FROM sags "
					      "WHERE sag_id = 'sag-dom'"),
			    "00000");
	static const char *const bad[] = {
	    "UPDATE sags SET resource_group_id = '' WHERE sag_id = 'sag-dom'",
	    "UPDATE sags SET hardware_spec = 'sag-9000' WHERE sag_id = 'sag-dom'",
	    "UPDATE sags SET ha_type = 'hot_backup' WHERE sag_id = 'sag-dom'",
	    "UPDATE devices SET ha_state = 'primary' WHERE serial_number = 'sn-dom'",
	    "UPDATE devices SET sls_delivery = 'lost' WHERE serial_number = 'sn-dom'"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_string_equal(pg_sqlstate_of(c, bad[i]), "23514");
	PQfinish(c);
	store_close(s);
}

/* The count raise is a batch's last statement before COMMIT, after the
 * version bump: while the bump waits (here for a row lock held by another
 * session), the account's counter row, which every node's writer for that
 * account updates, is not locked yet; NOWAIT on it succeeds. Then the batch
 * commits and its flow log counts. */
static bool pg_lock_waiter(PGconn *c)
{
	for (int i = 0; i < 1000; i++) {
		if (pg_scalar(c, "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = "
				 "'Lock' AND pid <> pg_backend_pid()") > 0)
			return true;
		struct timespec ts = {0, 10 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	return false;
}

static void test_pg_raise_after_bump(void **state)
{
	struct fixture *f = *state;
	struct store *s = store_open(f->path);
	assert_non_null(s);
	int64_t account;
	assert_int_equal(store_write(s, ensure_account_id, &account), 0);
	struct cas_arg first;
	const char *region[] = {NULL};
	create_batch(s, account, &first, 1, region, 1); /* the rows exist */
	assert_int_equal(first.rc, 0);
	PGconn *holder = pg_admin(f->dbname), *probe = pg_admin(f->dbname);
	pg_ok(holder, "BEGIN");
	pg_ok(holder, "SELECT 1 FROM account_version FOR UPDATE");
	struct cas_arg a = {.s = s, .account = account, .idx = 900, .rc = -99};
	struct scoped_call call = {.fn = cas_create, .arg = &a, .rc = -99};
	pthread_mutex_init(&call.mu, NULL);
	pthread_cond_init(&call.cv, NULL);
	store_write_async(s, scoped_call_run, &call, scoped_call_done);
	assert_true(pg_lock_waiter(probe)); /* the writer waits for the version row */
	pg_ok(probe, "BEGIN");
	PGresult *r = PQexec(probe, "SELECT n FROM flowlog_counts FOR UPDATE NOWAIT");
	if (PQresultStatus(r) != PGRES_TUPLES_OK)
		fail_msg("the counter row is locked while the bump waits: %s",
			 PQerrorMessage(probe));
	PQclear(r);
	pg_ok(probe, "ROLLBACK");
	pg_ok(holder, "ROLLBACK");
	pthread_mutex_lock(&call.mu);
	while (!call.done)
		pthread_cond_wait(&call.cv, &call.mu);
	pthread_mutex_unlock(&call.mu);
	assert_int_equal(call.rc, 0);
	assert_true(a.fl.rowid > 0);
	assert_int_equal(pg_scalar(probe, "SELECT n FROM flowlog_counts"), 2);
	pthread_mutex_destroy(&call.mu);
	pthread_cond_destroy(&call.cv);
	PQfinish(holder);
	PQfinish(probe);
	store_close(s);
}

/* Two jobs on two stores (two nodes' writers) lock rows 1 and 2 in opposite
 * orders at the same moment: PostgreSQL kills one with 40P01, whose
 * savepoint is rolled back and which runs again in its writer's next batch,
 * after the winner committed. Both succeed, the victim ran twice, and each
 * update is in the table once. */
struct dl_shared {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int locked; /* first runs that hold their first row */
};

struct dl_job {
	struct dl_shared *sh;
	struct store *s;
	int64_t first, second;
	int rc, calls, checked;
	bool deferred; /* the second update is the job's deferred statement */
};

static bool dl_wait_both(struct dl_shared *sh)
{
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 10;
	pthread_mutex_lock(&sh->mu);
	sh->locked++;
	pthread_cond_broadcast(&sh->cv);
	while (sh->locked < 2 && pthread_cond_timedwait(&sh->cv, &sh->mu, &until) == 0)
		;
	bool both = sh->locked >= 2;
	pthread_mutex_unlock(&sh->mu);
	return both;
}

static int dl_job_fn(struct store_tx *tx, void *arg)
{
	struct dl_job *j = arg;
	int64_t a[1] = {j->first}, b[1] = {j->second};
	bool first_run = j->calls++ == 0;
	int rc = t_exec(tx, "UPDATE t SET v = v + 1 WHERE id = $1", 1, a, NULL);
	if (rc == 0 && first_run && !dl_wait_both(j->sh))
		return STORE_EIO;
	if (rc == 0 && j->deferred) {
		struct pg_params p = {0};
		pg_p_int(&p, b[0]);
		return pg_tx_exec_deferred(tx, "UPDATE t SET v = v + 1 WHERE id = $1", &p,
					   "test deferred update", t_check, &j->checked);
	}
	return rc ? rc : t_exec(tx, "UPDATE t SET v = v + 1 WHERE id = $1", 1, b, NULL);
}

static void *dl_main(void *arg)
{
	struct dl_job *j = arg;
	j->rc = store_write(j->s, dl_job_fn, j);
	return NULL;
}

static void deadlock_run(void **state, bool deferred)
{
	struct fixture *f = *state;
	PGconn *c = pg_admin(NULL);
	char sql[160];
	snprintf(sql, sizeof(sql), "ALTER DATABASE %s SET deadlock_timeout = '100ms'", f->dbname);
	pg_ok(c, sql);
	PQfinish(c);
	struct store *s[2] = {store_open(f->path), store_open(f->path)};
	assert_non_null(s[0]);
	assert_non_null(s[1]);
	assert_int_equal(store_write(s[0], make_table, NULL), 0);
	struct row r1 = {.id = 1, .v = 0}, r2 = {.id = 2, .v = 0};
	assert_int_equal(store_write(s[0], insert_row, &r1), 0);
	assert_int_equal(store_write(s[0], insert_row, &r2), 0);
	struct dl_shared sh = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
	struct dl_job j[2] = {{.sh = &sh, .s = s[0], .first = 1, .second = 2, .deferred = deferred},
			      {.sh = &sh, .s = s[1], .first = 2, .second = 1, .deferred = deferred}};
	pthread_t th[2];
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&th[i], NULL, dl_main, &j[i]), 0);
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	assert_int_equal(j[0].rc, 0);
	assert_int_equal(j[1].rc, 0);
	/* The victim ran again (PostgreSQL may pick both when their detectors
	 * run at nearly the same moment: each then runs twice). */
	assert_true(j[0].calls + j[1].calls >= 3);
	store_close(s[1]); /* a backend that exits reports its statistics */
	store_close(s[0]);
	c = pg_admin(f->dbname);
	assert_int_equal(pg_scalar(c, "SELECT sum(v) FROM t"), 4); /* each update once */
	/* and the report reaches pg_stat_database a little later. */
	int64_t deadlocks = 0;
	for (int i = 0; i < 300 && deadlocks < 1; i++, usleep(10000))
		deadlocks = pg_scalar(c, "SELECT deadlocks FROM pg_stat_database "
					 "WHERE datname = current_database()");
	assert_true(deadlocks >= 1);
	PQfinish(c);
}

static void test_pg_deadlock_requeued(void **state)
{
	deadlock_run(state, false);
}

/* The same with the second update deferred: the deadlock is found at the
 * victim's COMMIT, which PostgreSQL skipped; the victim is rolled back to
 * its savepoint and runs again, the batch commits without it. */
static void test_pg_deadlock_deferred(void **state)
{
	deadlock_run(state, true);
}

/* ---- shard slots: N nodes starting at once hold distinct ones ---- */

#define TEST_PG_NODES 4

struct slot_open {
	const char *path;
	struct store *s;
};

static void *slot_open_main(void *arg)
{
	struct slot_open *o = arg;
	o->s = store_open_with(o->path, &(struct store_options){.node = true});
	return NULL;
}

static int slot_wait(struct store *s)
{
	for (int i = 0; i < 1000 && store_pg_shard_base(s) < 0; i++)
		usleep(10000);
	return store_pg_shard_base(s);
}

static int noop_statementless(struct store_tx *tx, void *arg)
{
	return 0; /* no statement: the batch's version bump is the write */
}

struct wait_done {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int rc;
	bool done;
};

static void wait_done_fn(void *arg, int rc)
{
	struct wait_done *w = arg;
	pthread_mutex_lock(&w->mu);
	w->rc = rc;
	w->done = true;
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

/* A statementless job scoped to account, waited for. */
static int bump_scoped(struct store *s, int64_t account)
{
	struct wait_done w = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
	store_write_async_scoped(s, account, noop_statementless, &w, wait_done_fn);
	pthread_mutex_lock(&w.mu);
	while (!w.done)
		pthread_cond_wait(&w.cv, &w.mu);
	pthread_mutex_unlock(&w.mu);
	return w.rc;
}

static void test_pg_shard_slots(void **state)
{
	struct fixture *f = *state;
	struct slot_open o[TEST_PG_NODES];
	pthread_t th[TEST_PG_NODES];
	for (int i = 0; i < TEST_PG_NODES; i++) {
		o[i] = (struct slot_open){.path = f->path};
		assert_int_equal(pthread_create(&th[i], NULL, slot_open_main, &o[i]), 0);
	}
	for (int i = 0; i < TEST_PG_NODES; i++) {
		pthread_join(th[i], NULL);
		assert_non_null(o[i].s);
	}
	bool seen[TEST_PG_NODES] = {false};
	int freed = -1;
	for (int i = 0; i < TEST_PG_NODES; i++) {
		int base = slot_wait(o[i].s);
		/* The lowest free slots, one each: 0, 64, 128, 192 in some order. */
		assert_true(base >= 0 && base % STORE_PG_WRITERS_MAX == 0);
		assert_true(base / STORE_PG_WRITERS_MAX < TEST_PG_NODES);
		assert_false(seen[base / STORE_PG_WRITERS_MAX]);
		seen[base / STORE_PG_WRITERS_MAX] = true;
		if (base == STORE_PG_WRITERS_MAX)
			freed = i;
	}
	/* Each node's writers bump rows of their own slot. */
	int64_t account;
	assert_int_equal(store_write(o[0].s, ensure_account_id, &account), 0);
	for (int i = 0; i < TEST_PG_NODES; i++)
		assert_int_equal(bump_scoped(o[i].s, account), 0);
	PGconn *c = pg_admin(f->dbname);
	char sql[200];
	snprintf(sql, sizeof(sql),
		 "SELECT count(DISTINCT shard / %d) FROM account_version WHERE account_id = %lld",
		 STORE_PG_WRITERS_MAX, (long long)account);
	assert_int_equal(pg_scalar(c, sql), TEST_PG_NODES);
	/* A stopped node frees its slot; the next node to start takes it. */
	assert_true(freed >= 0);
	store_close(o[freed].s);
	o[freed].s = store_open_with(f->path, &(struct store_options){.node = true});
	assert_non_null(o[freed].s);
	assert_int_equal(slot_wait(o[freed].s), STORE_PG_WRITERS_MAX);
	/* A store that is not a node (the keys CLI) holds none: slot 0's rows. */
	struct store *cli = store_open(f->path);
	assert_non_null(cli);
	assert_int_equal(store_pg_shard_base(cli), 0);
	store_close(cli);
	PQfinish(c);
	for (int i = 0; i < TEST_PG_NODES; i++)
		store_close(o[i].s);
}

/* Runs SAGFLOW_TEST_PG_CTL (pg_ctl) with args on SAGFLOW_TEST_PG_DATA, as
 * the data directory's owner when we are root (PostgreSQL refuses root). */
static void pg_ctl(const char *action, const char *mode)
{
	const char *ctl = getenv(TEST_PG_CTL_ENV), *data = getenv(TEST_PG_DATA_ENV);
	struct stat st;
	assert_int_equal(stat(data, &st), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		if (getuid() == 0 && (setgid(st.st_gid) != 0 || setuid(st.st_uid) != 0))
			_exit(126);
		char log[256];
		snprintf(log, sizeof(log), "%s/../test-restart.log", data);
		if (mode)
			execl(ctl, ctl, action, "-D", data, "-m", mode, "-w", (char *)NULL);
		else
			execl(ctl, ctl, action, "-D", data, "-l", log, "-w", (char *)NULL);
		_exit(127);
	}
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

struct crash_writer {
	struct store *s;
	int64_t first, step;
	atomic_bool *stop;
	unsigned char *acked;
	int64_t nacked, eunavail, eio;
};

static void *crash_writer_main(void *arg)
{
	struct crash_writer *w = arg;
	for (int64_t i = w->first; i <= TEST_KILL_ROWS && !atomic_load(w->stop); i += w->step) {
		struct row r = {.id = i, .v = i * 3};
		int rc = store_write(w->s, insert_row, &r);
		if (rc == 0) {
			w->acked[i] = 1;
			w->nacked++;
		} else if (rc == STORE_EUNAVAIL) {
			w->eunavail++;
		} else {
			w->eio++;
		}
	}
	return NULL;
}

/* 8 threads write through one store; PostgreSQL is stopped with
 * -m immediate (no shutdown checkpoint: recovery replays the WAL) and
 * started again. The store reconnects by itself, every acknowledged row is
 * there, and writes succeed again without reopening the store. */
static void test_pg_immediate_stop(void **state)
{
	struct fixture *f = *state;
	if (!getenv(TEST_PG_DATA_ENV) || !getenv(TEST_PG_CTL_ENV)) {
		print_message("skipped: set %s and %s to run the immediate-stop test\n",
			      TEST_PG_DATA_ENV, TEST_PG_CTL_ENV);
		skip();
	}
	struct store *s = store_open(f->path);
	assert_non_null(s);
	assert_int_equal(store_write(s, make_table, NULL), 0);
	unsigned char *acked = calloc(TEST_KILL_ROWS + 1, 1);
	atomic_bool stop = false;
	pthread_t th[TEST_KILL_THREADS];
	struct crash_writer w[TEST_KILL_THREADS];
	for (int t = 0; t < TEST_KILL_THREADS; t++) {
		w[t] = (struct crash_writer){.s = s, .first = t + 1, .step = TEST_KILL_THREADS,
					    .stop = &stop, .acked = acked};
		assert_int_equal(pthread_create(&th[t], NULL, crash_writer_main, &w[t]), 0);
	}
	int64_t total = 0;
	while (total < TEST_PG_CRASH_AFTER) {
		usleep(10000);
		total = 0;
		for (int t = 0; t < TEST_KILL_THREADS; t++)
			total += w[t].nacked; /* a racy read: only a threshold */
	}
	pg_ctl("stop", "immediate");
	usleep(300000); /* the writers meet the dead server */
	atomic_store(&stop, true);
	for (int t = 0; t < TEST_KILL_THREADS; t++)
		pthread_join(th[t], NULL);
	int64_t nacked = 0, unavail = 0, eio = 0;
	for (int t = 0; t < TEST_KILL_THREADS; t++) {
		nacked += w[t].nacked;
		unavail += w[t].eunavail;
		eio += w[t].eio;
	}
	assert_false(store_ready(s));
	struct row probe = {.id = TEST_KILL_ROWS + 1, .v = 1};
	assert_int_equal(store_write(s, insert_row, &probe), STORE_EUNAVAIL); /* fails fast */
	pg_ctl("start", NULL);
	for (int i = 0; i < 200 && !store_ready(s); i++) /* backoff <= 5 s + jitter */
		usleep(50000);
	assert_true(store_ready(s));
	int64_t found = 0;
	for (int64_t i = 1; i <= TEST_KILL_ROWS; i++) {
		if (!acked[i])
			continue;
		struct lookup l = {.id = i};
		int rc = store_read(s, get_row, &l);
		if (rc == STORE_EUNAVAIL) { /* this thread's connection died with the server */
			rc = store_read(s, get_row, &l);
		}
		assert_int_equal(rc, 0);
		if (!l.found)
			fail_msg("acknowledged row %lld is missing after the restart", (long long)i);
		assert_int_equal(l.v, i * 3);
		found++;
	}
	assert_int_equal(found, nacked);
	assert_int_equal(store_write(s, insert_row, &probe), 0);
	print_message("immediate stop: %lld acknowledged and present, %lld unavailable, %lld "
		      "failed otherwise\n",
		      (long long)nacked, (long long)unavail, (long long)eio);
	store_close(s);
	free(acked);
}
#endif

int main(void)
{
	/* SAGFLOW_TEST_FILTER=test_pg_bump* runs the matching tests alone. */
	if (getenv("SAGFLOW_TEST_FILTER"))
		cmocka_set_test_filter(getenv("SAGFLOW_TEST_FILTER"));
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_migrations, setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_rejects, setup, teardown),
		cmocka_unit_test_setup_teardown(test_newer_schema_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pragmas, setup, teardown),
		cmocka_unit_test_setup_teardown(test_modes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_keys, setup, teardown),
		cmocka_unit_test_setup_teardown(test_key_validation, setup, teardown),
		cmocka_unit_test_setup_teardown(test_group_commit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_job_sql_error, setup, teardown),
		cmocka_unit_test_setup_teardown(test_misuse, setup, teardown),
		cmocka_unit_test_setup_teardown(test_deferred_fk_isolated, setup, teardown),
		cmocka_unit_test_setup_teardown(test_commit_failure, setup, teardown),
		cmocka_unit_test_setup_teardown(test_queue_full, setup, teardown),
		cmocka_unit_test_setup_teardown(test_readers_and_writer, setup, teardown),
		cmocka_unit_test_setup_teardown(test_key_cache_other_process, setup, teardown),
		cmocka_unit_test_setup_teardown(test_key_find_races, setup, teardown),
		cmocka_unit_test_setup_teardown(test_data_version_scopes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wal_bounded, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wal_bounded_thread, setup, teardown),
		cmocka_unit_test_setup_teardown(test_checkpoint_mode_invalid, setup, teardown),
		cmocka_unit_test_setup_teardown(test_kill9_durability, setup, teardown),
	};
	int failed = cmocka_run_group_tests_name("store on SQLite", tests, NULL, NULL);
#ifdef SAGFLOW_POSTGRES
	if (!getenv(TEST_PG_ENV) || !*getenv(TEST_PG_ENV)) {
		printf("[  SKIPPED ] store on PostgreSQL: set %s to a libpq URI of a superuser on a "
		       "private cluster to run it\n", TEST_PG_ENV);
		return failed;
	}
	/* The backend-neutral tests again, then PostgreSQL's own. */
	const struct CMUnitTest pg_tests[] = {
		cmocka_unit_test_setup_teardown(test_pg_migrations, setup_pg, teardown_pg),
		cmocka_unit_test_setup_teardown(test_pg_concurrent_migrations, setup_pg, teardown_pg),
		cmocka_unit_test_setup_teardown(test_pg_schema_parity, setup_pg, teardown_pg),
		cmocka_unit_test_setup_teardown(test_pg_check_and_set, setup_pg, teardown_pg),
		cmocka_unit_test_setup_teardown(test_pg_delete_while_bound, setup_pg, teardown_pg),
		cmocka_unit_test_setup_teardown(test_pg_flowlog_sag_lookup, setup_pg, teardown_pg),
		cmocka_unit_test_setup_teardown(test_pg_flowlog_sag_races, setup_pg, teardown_pg),
		cmocka_unit_test_setup_teardown(test_keys, setup_pg, teardown_pg),
		cmocka_unit_test_setup_teardown(test_key_validation, setup_pg, teardown_pg),
		cmocka_unit_test_setup_teardown(test_group_commit, setup_pg, teardown_pg),
		cmocka_unit_test_setup_teardown(test_job_sql_error, setup_pg, teardown_pg),
		cmocka_unit_test_setup_teardown(test_misuse, setup_pg, teardown_pg),
		cmocka_unit_test_setup_teardown(test_queue_full, setup_pg, teardown_pg),
		cmocka_unit_test_setup_teardown(test_readers_and_writer, setup_pg, teardown_pg),
		cmocka_unit_test_setup_teardown(test_key_cache_other_process, setup_pg, teardown_pg),
		cmocka_unit_test_setup_teardown(test_key_find_races, setup_pg, teardown_pg),
		cmocka_unit_test_setup_teardown(test_data_version_scopes, setup_pg, teardown_pg),
		cmocka_unit_test_setup_teardown(test_kill9_durability, setup_pg, teardown_pg),
		cmocka_unit_test_setup_teardown(test_pg_immediate_stop, setup_pg, teardown_pg),
		cmocka_unit_test_setup_teardown(test_pg_pipelined_batch, setup_pg, teardown_pg),
		cmocka_unit_test_setup_teardown(test_pg_deadlock_requeued, setup_pg, teardown_pg),
		cmocka_unit_test_setup_teardown(test_pg_deferred_batch, setup_pg, teardown_pg),
		cmocka_unit_test_setup_teardown(test_pg_writer_linger, setup_pg, teardown_pg),
		cmocka_unit_test_setup_teardown(test_pg_deferred_quota, setup_pg, teardown_pg),
		cmocka_unit_test_setup_teardown(test_pg_count_raise, setup_pg, teardown_pg),
		cmocka_unit_test_setup_teardown(test_pg_raise_after_bump, setup_pg, teardown_pg),
		cmocka_unit_test_setup_teardown(test_pg_flowlog_domains, setup_pg, teardown_pg),
		cmocka_unit_test_setup_teardown(test_pg_sag_device_domains, setup_pg, teardown_pg),
		cmocka_unit_test_setup_teardown(test_pg_deadlock_deferred, setup_pg, teardown_pg),
		cmocka_unit_test_setup_teardown(test_pg_prefetch_batch, setup_pg, teardown_pg),
		cmocka_unit_test_setup_teardown(test_pg_prefetch_invalidated, setup_pg, teardown_pg),
		cmocka_unit_test_setup_teardown(test_pg_prefetch_deadlock, setup_pg, teardown_pg),
		cmocka_unit_test_setup_teardown(test_pg_bump_deadlock, setup_pg, teardown_pg),
		cmocka_unit_test_setup_teardown(test_pg_shard_slots, setup_pg, teardown_pg),
	};
	failed += cmocka_run_group_tests_name("store on PostgreSQL", pg_tests, NULL, NULL);
#else
	printf("[  SKIPPED ] store on PostgreSQL: this build has no PostgreSQL backend\n");
#endif
	return failed;
}
