/* Store write benchmark: the bare SQLite loop (one INSERT per durable
 * transaction) against store_write_async with many concurrent submitters, on
 * the same file system with the same pragmas (WAL, synchronous=FULL).
 *
 * usage: store_bench [--dir DIR] [--seconds N] [--threads N]
 *
 * Each submitter is a closed loop (submit, wait for done(), repeat), like an
 * HTTP client waiting for its answer; latency is from submit to done(). */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/num.h"
#include "core/timeutil.h"
#include "store/sqlite_internal.h"
#include "store/store.h"

#define BENCH_MAX_THREADS 1024
#define BENCH_MAX_SECONDS 3600
#define BENCH_MAX_SAMPLES (1u << 24) /* per run; latencies beyond are not recorded */
#define BENCH_MAX_TRIALS 20
#define BENCH_READ_THREADS 2 /* one per core here, like the HTTP server's pool */
#define BENCH_PAYLOAD 100            /* bytes per row, about a flow-log row */

struct samples {
	int64_t *us;
	size_t n, cap;
};

static void samples_add(struct samples *s, int64_t us)
{
	if (s->n == s->cap) {
		if (s->cap >= BENCH_MAX_SAMPLES)
			return;
		s->cap = s->cap ? s->cap * 2 : 4096;
		s->us = realloc(s->us, s->cap * sizeof(*s->us));
		if (!s->us) {
			perror("realloc");
			exit(1);
		}
	}
	s->us[s->n++] = us;
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

static int64_t pct(const struct samples *s, double p)
{
	if (!s->n)
		return 0;
	size_t i = (size_t)(p * (double)(s->n - 1) + 0.5);
	return s->us[i];
}

struct result {
	double rate, p50_ms, p99_ms, max_ms;
};

static struct result report(const char *name, uint64_t ops, double secs, struct samples *s)
{
	qsort(s->us, s->n, sizeof(*s->us), cmp_i64);
	struct result r = {(double)ops / secs, (double)pct(s, 0.50) / 1000.0,
			   (double)pct(s, 0.99) / 1000.0, (double)pct(s, 1.0) / 1000.0};
	printf("%-44s %9.0f writes/s  p50 %6.2f ms  p99 %6.2f ms  max %6.2f ms\n", name, r.rate,
	       r.p50_ms, r.p99_ms, r.max_ms);
	fflush(stdout);
	return r;
}

static void die_sql(sqlite3 *db, const char *what)
{
	fprintf(stderr, "store_bench: %s: %s\n", what, sqlite3_errmsg(db));
	exit(1);
}

static void exec_or_die(sqlite3 *db, const char *sql)
{
	if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
		die_sql(db, sql);
}

static const char payload[BENCH_PAYLOAD] = "0123456789abcdef0123456789abcdef0123456789abcdef"
					   "0123456789abcdef0123456789abcdef";

/* (a) One INSERT per BEGIN IMMEDIATE ... COMMIT: one fsync per row. */
static struct result bare_loop(const char *path, int seconds, bool autockpt)
{
	sqlite3 *db;
	if (sqlite3_open(path, &db) != SQLITE_OK)
		die_sql(db, "open");
	exec_or_die(db, "PRAGMA journal_mode=WAL");
	exec_or_die(db, "PRAGMA synchronous=FULL");
	exec_or_die(db, "PRAGMA foreign_keys=ON");
	exec_or_die(db, autockpt ? "PRAGMA wal_autocheckpoint=1000" : "PRAGMA wal_autocheckpoint=0");
	exec_or_die(db, "CREATE TABLE IF NOT EXISTS bench (id INTEGER PRIMARY KEY, v BLOB NOT NULL)");
	sqlite3_stmt *begin, *ins, *commit;
	if (sqlite3_prepare_v2(db, "BEGIN IMMEDIATE", -1, &begin, NULL) ||
	    sqlite3_prepare_v2(db, "INSERT INTO bench(v) VALUES (?1)", -1, &ins, NULL) ||
	    sqlite3_prepare_v2(db, "COMMIT", -1, &commit, NULL))
		die_sql(db, "prepare");
	struct samples s = {0};
	uint64_t ops = 0;
	int64_t t0 = time_mono_us(), end = t0 + (int64_t)seconds * 1000000;
	int64_t now = t0;
	while (now < end) {
		sqlite3_bind_blob(ins, 1, payload, sizeof(payload), SQLITE_STATIC);
		if (sqlite3_step(begin) != SQLITE_DONE || sqlite3_step(ins) != SQLITE_DONE ||
		    sqlite3_step(commit) != SQLITE_DONE)
			die_sql(db, "insert");
		sqlite3_reset(begin);
		sqlite3_reset(ins);
		sqlite3_reset(commit);
		int64_t t = time_mono_us();
		samples_add(&s, t - now);
		now = t;
		ops++;
	}
	double secs = (double)(now - t0) / 1e6;
	struct result r = report(autockpt ? "(a) bare loop, autocheckpoint 1000"
					  : "(a) bare loop, autocheckpoint off (WAL grows)",
				 ops, secs, &s);
	free(s.us);
	sqlite3_finalize(begin);
	sqlite3_finalize(ins);
	sqlite3_finalize(commit);
	sqlite3_close(db);
	return r;
}

/* (b) store_write_async from N closed-loop submitters. */
struct submitter {
	struct store *s;
	int64_t end_us;
	struct samples lat;
	uint64_t ops;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool done;
	int rc;
};

static int insert_job(struct store_tx *tx, void *arg)
{
	sqlite3_stmt *st = sqlite_tx_stmt(tx, "INSERT INTO bench(v) VALUES (?1)");
	if (!st)
		return STORE_EIO;
	sqlite3_bind_blob(st, 1, payload, sizeof(payload), SQLITE_STATIC);
	return sqlite3_step(st) == SQLITE_DONE ? 0 : sqlite_tx_fail(tx, "insert");
}

static int create_job(struct store_tx *tx, void *arg)
{
	sqlite3_stmt *st = sqlite_tx_stmt(tx, "CREATE TABLE IF NOT EXISTS bench (id INTEGER PRIMARY "
					      "KEY, v BLOB NOT NULL)");
	return st && sqlite3_step(st) == SQLITE_DONE ? 0 : STORE_EIO;
}

static void job_done(void *arg, int rc)
{
	struct submitter *w = arg;
	pthread_mutex_lock(&w->mu);
	w->rc = rc;
	w->done = true;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

static void *submit_main(void *arg)
{
	struct submitter *w = arg;
	for (int64_t t = time_mono_us(); t < w->end_us;) {
		w->done = false;
		store_write_async(w->s, insert_job, w, job_done);
		pthread_mutex_lock(&w->mu);
		while (!w->done)
			pthread_cond_wait(&w->cv, &w->mu);
		pthread_mutex_unlock(&w->mu);
		if (w->rc != 0) {
			fprintf(stderr, "store_bench: a write failed (%d)\n", w->rc);
			exit(1);
		}
		int64_t t2 = time_mono_us();
		samples_add(&w->lat, t2 - t);
		w->ops++;
		t = t2;
	}
	return NULL;
}

static struct result store_run(const char *path, int seconds, int nthreads, const char *ckpt)
{
	/* Read by store_open; the process is single-threaded here. */
	setenv("SAGFLOW_STORE_CHECKPOINT", ckpt, 1);
	struct store *s = store_open(path);
	if (!s)
		exit(1);
	if (store_write(s, create_job, NULL) != 0)
		exit(1);
	struct store_stats before, after;
	store_stats(s, &before);
	struct submitter *w = calloc((size_t)nthreads, sizeof(*w));
	pthread_t *th = calloc((size_t)nthreads, sizeof(*th));
	int64_t t0 = time_mono_us(), end = t0 + (int64_t)seconds * 1000000;
	for (int i = 0; i < nthreads; i++) {
		w[i].s = s;
		w[i].end_us = end;
		pthread_mutex_init(&w[i].mu, NULL);
		pthread_cond_init(&w[i].cv, NULL);
		if (pthread_create(&th[i], NULL, submit_main, &w[i]) != 0) {
			perror("pthread_create");
			exit(1);
		}
	}
	struct samples all = {0};
	uint64_t ops = 0;
	for (int i = 0; i < nthreads; i++) {
		pthread_join(th[i], NULL);
		for (size_t j = 0; j < w[i].lat.n; j++)
			samples_add(&all, w[i].lat.us[j]);
		ops += w[i].ops;
		free(w[i].lat.us);
		pthread_mutex_destroy(&w[i].mu);
		pthread_cond_destroy(&w[i].cv);
	}
	double secs = (double)(time_mono_us() - t0) / 1e6;
	store_stats(s, &after);
	char name[80];
	snprintf(name, sizeof(name), "(b) store_write_async, %d submitter%s, ckpt %s", nthreads,
		 nthreads > 1 ? "s" : "", ckpt);
	struct result r = report(name, ops, secs, &all);
	uint64_t batches = after.batches - before.batches, jobs = after.jobs - before.jobs;
	printf("%-44s %llu commits, %.1f jobs each, largest %llu, %llu checkpoints\n", "",
	       (unsigned long long)batches, batches ? (double)jobs / (double)batches : 0.0,
	       (unsigned long long)after.max_batch, (unsigned long long)after.checkpoints);
	free(all.us);
	free(w);
	free(th);
	store_close(s);
	return r;
}

static int arg_int(const char *v, int max, int *out)
{
	int64_t n;
	if (!v || num_parse_i64(str_c(v), 1, max, &n) != 0)
		return -1;
	*out = (int)n;
	return 0;
}

static void cleanup(const char *path)
{
	char p[4200];
	static const char *const sfx[] = {"", "-wal", "-shm"};
	for (int i = 0; i < 3; i++) {
		snprintf(p, sizeof(p), "%s%s", path, sfx[i]);
		unlink(p);
	}
}

/* (c) store_read: the per-request key lookup of the HTTP server, from
 * nthreads threads each with its own read connection. */
struct lookup_thread {
	struct store *s;
	const char *akid;
	int64_t end_us;
	uint64_t ops;
	int failed;
};

static int key_lookup(struct store_tx *tx, void *arg)
{
	struct store_key k;
	return store_key_get(tx, arg, &k);
}

static void *lookup_main(void *arg)
{
	struct lookup_thread *l = arg;
	while (time_mono_us() < l->end_us) {
		if (store_read(l->s, key_lookup, (void *)(uintptr_t)l->akid) != 0)
			l->failed++;
		l->ops++;
	}
	return NULL;
}

static int add_key(struct store_tx *tx, void *arg)
{
	struct store_key *k = arg;
	int rc = store_account_ensure(tx, "bench", &k->account_id);
	if (rc)
		return rc;
	store_key_generate(k);
	return store_key_insert(tx, k);
}

static struct result read_run(const char *path, int seconds, int nthreads)
{
	setenv("SAGFLOW_STORE_CHECKPOINT", "writer", 1);
	struct store *s = store_open(path);
	struct store_key k = {0};
	if (!s || store_write(s, add_key, &k) != 0)
		exit(1);
	struct lookup_thread l[BENCH_READ_THREADS];
	pthread_t th[BENCH_READ_THREADS];
	int64_t t0 = time_mono_us();
	for (int i = 0; i < nthreads; i++) {
		l[i] = (struct lookup_thread){s, k.akid, t0 + (int64_t)seconds * 1000000, 0, 0};
		if (pthread_create(&th[i], NULL, lookup_main, &l[i]) != 0)
			exit(1);
	}
	uint64_t ops = 0;
	for (int i = 0; i < nthreads; i++) {
		pthread_join(th[i], NULL);
		if (l[i].failed) {
			fprintf(stderr, "store_bench: a key lookup failed\n");
			exit(1);
		}
		ops += l[i].ops;
	}
	double secs = (double)(time_mono_us() - t0) / 1e6;
	struct result r = {(double)ops / secs, 0, 0, 0};
	printf("%-44s %9.0f lookups/s (%d threads, one connection each)\n",
	       "(c) store_read key lookup", r.rate, nthreads);
	store_close(s);
	return r;
}

enum {
	RUN_BARE,
	RUN_BARE_NOCKPT,
	RUN_STORE_1,
	RUN_STORE_N,
	RUN_STORE_N_INLINE,
	RUN_STORE_N_THREAD,
	RUN_READ,
	RUN__COUNT
};

static struct result run_one(int which, const char *dir, int seconds, int threads)
{
	char path[4200];
	snprintf(path, sizeof(path), "%s/%s.db", dir, which <= RUN_BARE_NOCKPT ? "bare" : "store");
	struct result r;
	switch (which) {
	case RUN_BARE: r = bare_loop(path, seconds, true); break;
	case RUN_BARE_NOCKPT: r = bare_loop(path, seconds, false); break;
	case RUN_STORE_1: r = store_run(path, seconds, 1, "writer"); break;
	case RUN_STORE_N: r = store_run(path, seconds, threads, "writer"); break;
	case RUN_STORE_N_INLINE: r = store_run(path, seconds, threads, "inline"); break;
	case RUN_STORE_N_THREAD: r = store_run(path, seconds, threads, "thread"); break;
	default: r = read_run(path, seconds, BENCH_READ_THREADS); break;
	}
	cleanup(path);
	return r;
}

static const char *const run_keys[RUN__COUNT] = {"bare",   "bare-nockpt",   "store1",
						   "storeN", "storeN-inline", "storeN-thread",
						   "read"};

/* "--runs bare,storeN" -> a bit per run; -1 for an unknown name. */
static int parse_runs(const char *list)
{
	int mask = 0;
	while (*list) {
		size_t n = strcspn(list, ",");
		int k;
		for (k = 0; k < RUN__COUNT; k++)
			if (strlen(run_keys[k]) == n && !strncmp(run_keys[k], list, n))
				break;
		if (k == RUN__COUNT)
			return -1;
		mask |= 1 << k;
		list += n + (list[n] == ',');
	}
	return mask;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	return v[n / 2];
}

int main(int argc, char **argv)
{
	const char *dir = ".";
	int seconds = 3, threads = 64, trials = 3, runs = (1 << RUN__COUNT) - 1;
	/* Every option takes a value: they come in pairs. */
	for (int i = 1; i < argc; i += 2) {
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(argv[i], "--dir") && v)
			dir = v;
		else if (!strcmp(argv[i], "--seconds") && arg_int(v, BENCH_MAX_SECONDS, &seconds) == 0)
			;
		else if (!strcmp(argv[i], "--threads") && arg_int(v, BENCH_MAX_THREADS, &threads) == 0)
			;
		else if (!strcmp(argv[i], "--trials") && arg_int(v, BENCH_MAX_TRIALS, &trials) == 0)
			;
		else if (!strcmp(argv[i], "--runs") && v && (runs = parse_runs(v)) > 0)
			;
		else {
			fprintf(stderr, "usage: store_bench [--dir DIR (.)] [--seconds N (3)] "
					"[--threads N (64)] [--trials N (3)]\n"
					"                   [--runs bare,bare-nockpt,store1,storeN,"
					"storeN-inline,storeN-thread,read (all)]\n");
			return 2;
		}
	}
	char tmpl[4096];
	snprintf(tmpl, sizeof(tmpl), "%s/store-bench-XXXXXX", dir);
	if (!mkdtemp(tmpl)) {
		fprintf(stderr, "store_bench: mkdtemp %s: %s\n", tmpl, strerror(errno));
		return 1;
	}
	printf("store_bench: %s, %d trial(s) of %d s per run, SQLite %s, WAL, synchronous=FULL\n",
	       tmpl, trials, seconds, sqlite3_libversion());
	/* Runs are interleaved trial by trial so that a noisy neighbour on the
	 * disk hurts every configuration alike; medians are reported. */
	double rate[RUN__COUNT][BENCH_MAX_TRIALS], p99[RUN__COUNT][BENCH_MAX_TRIALS];
	for (int t = 0; t < trials; t++) {
		printf("-- trial %d\n", t + 1);
		for (int k = 0; k < RUN__COUNT; k++) {
			if (!(runs & (1 << k)))
				continue;
			struct result r = run_one(k, tmpl, seconds, threads);
			rate[k][t] = r.rate;
			p99[k][t] = r.p99_ms;
		}
	}
	rmdir(tmpl);
	static const char *const names[RUN__COUNT] = {
		"(a) bare loop, autocheckpoint 1000", "(a) bare loop, autocheckpoint off",
		"(b) store, 1 submitter", "(b) store, N submitters",
		"(b) store, N submitters, ckpt inline", "(b) store, N submitters, ckpt thread",
		"(c) store_read key lookups, 2 threads"};
	double med[RUN__COUNT];
	printf("-- medians of %d trial(s), N = %d\n", trials, threads);
	for (int k = 0; k < RUN__COUNT; k++) {
		if (!(runs & (1 << k)))
			continue;
		med[k] = median(rate[k], trials);
		if (k == RUN_READ)
			printf("%-44s %9.0f lookups/s\n", names[k], med[k]);
		else
			printf("%-44s %9.0f writes/s  p99 %6.2f ms\n", names[k], med[k],
			       median(p99[k], trials));
	}
	if ((runs & (1 << RUN_STORE_N)) && (runs & (1 << RUN_BARE)))
		printf("ratio (b) N submitters / (a) bare loop: %.1fx\n",
		       med[RUN_STORE_N] / med[RUN_BARE]);
	return 0;
}
