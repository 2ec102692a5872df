/* The backend-neutral front of the store: picks a backend from the path's
 * scheme, dispatches through its ops table, and builds the blocking
 * store_write from store_write_async. */
#include "store/store_impl.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "core/ids.h"
#include "core/log.h"
#include "core/timeutil.h"
#include "core/xmalloc.h"
#include "domain/domain.h"
#include "metrics/metrics.h"
#include "store/nonce.h"

#define STORE_SCHEME_SQLITE "sqlite:"
#define STORE_KEY_CACHE_SLOTS 256       /* direct-mapped by a hash of the AccessKeyId */
#define STORE_KEY_CACHE_TTL_US 1000000  /* a cached key is read again after 1 s at most */

/* The key cache: every signed request needs its key, and a read transaction
 * costs SQLite two fcntl(2) locks, more than verifying the signature. A slot is
 * valid while the shared key epoch (store_impl.h) is what it was before the key
 * was read, so a key deleted by any process is refused by the next request; the
 * TTL bounds what an edit that bypasses sagflow (the sqlite3 shell) can leave
 * behind. Unknown ids are not cached: a flood of them cannot evict real keys. */
struct key_slot {
	bool used;
	uint64_t epoch;
	int64_t loaded_us;
	struct store_key key;
};

struct key_cache {
	pthread_mutex_t mu;
	struct key_slot slot[STORE_KEY_CACHE_SLOTS];
};

#ifdef STORE_TEST_HOOKS
void (*store_key_find_hook)(enum store_key_find_step step, const char *akid);
#define KEY_FIND_STEP(step, akid) (store_key_find_hook ? store_key_find_hook(step, akid) : (void)0)
#else
#define KEY_FIND_STEP(step, akid) ((void)0)
#endif

static struct key_cache *key_cache_new(void)
{
	struct key_cache *kc = xcalloc(1, sizeof(*kc));
	pthread_mutex_init(&kc->mu, NULL);
	return kc;
}

static void key_cache_free(struct key_cache *kc)
{
	if (!kc)
		return;
	pthread_mutex_destroy(&kc->mu);
	explicit_bzero(kc->slot, sizeof(kc->slot)); /* secrets */
	free(kc);
}

static size_t key_slot_of(const char *akid)
{
	uint32_t h = 2166136261u; /* FNV-1a */
	for (const unsigned char *p = (const unsigned char *)akid; *p; p++)
		h = (h ^ *p) * 16777619u;
	return h % STORE_KEY_CACHE_SLOTS;
}

bool store_path_is_pg(const char *path)
{
	static const char *const schemes[] = {"postgresql://", "postgres://"};
	for (size_t i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++)
		if (!strncmp(path, schemes[i], strlen(schemes[i])))
			return true;
	return false;
}

struct store *store_open(const char *path)
{
	return store_open_with(path, NULL);
}

struct store *store_open_with(const char *path, const struct store_options *o)
{
	if (!path || !*path) {
		log_err("store: no database path given");
		return NULL;
	}
	struct store *s;
	if (store_path_is_pg(path)) {
#ifdef SAGFLOW_POSTGRES
		s = store_pg_open(path, o && o->pg_writers > 0 ? o->pg_writers : STORE_PG_WRITERS,
				  o && o->node);
#else
		log_err("store: this build has no PostgreSQL backend (configure with -Dpostgres=enabled "
			"and libpq-dev installed); use an SQLite file path");
		return NULL;
#endif
	} else {
		if (!strncmp(path, STORE_SCHEME_SQLITE, strlen(STORE_SCHEME_SQLITE)))
			path += strlen(STORE_SCHEME_SQLITE);
		s = store_sqlite_open(path);
	}
	if (s && s->keys_epoch)
		s->key_cache = key_cache_new();
	return s;
}

void store_close(struct store *s)
{
	if (!s)
		return;
	key_cache_free(s->key_cache);
	s->key_cache = NULL;
	nonce_free(atomic_exchange(&s->nonces, NULL));
	s->ops->close(s);
}

const char *store_tx_backend(struct store_tx *tx)
{
	return tx->ops->name;
}

bool store_ready(struct store *s)
{
	return !s->ops->ready || s->ops->ready(s);
}

int store_read(struct store *s, store_fn fn, void *arg)
{
	return s->ops->read(s, fn, arg);
}

uint64_t store_data_version(struct store *s, int64_t scope)
{
	/* Both counters only grow, so their sum moves whenever either does. */
	return atomic_load_explicit(&s->data_version, memory_order_acquire) +
	       atomic_load_explicit(&s->scope_version[store_scope_slot(scope)],
				    memory_order_acquire);
}

enum store_admit_result store_admit(struct store *s, const struct store_admission *a,
				    uint64_t *version)
{
	return s->ops->admit(s, a, version);
}

void store_admit_async(struct store *s, const struct store_admission *a, bool label,
		       store_admit_done_fn done, void *arg)
{
	if (s->ops->admit_async) {
		s->ops->admit_async(s, a, label, done, arg);
		return;
	}
	uint64_t version = 0;
	enum store_admit_result r = s->ops->admit(s, a, label ? &version : NULL);
	done(arg, r, r == STORE_ADMIT_FRESH ? version : 0);
}

void store_admit_limits(struct store *s, uint32_t max_entries, uint32_t per_key)
{
	if (s->ops->admit != store_local_admit)
		return; /* the database keeps the nonces */
	nonce_free(atomic_exchange(&s->nonces, nonce_new(max_entries, per_key)));
}

/* The nonce cache, created with the default bounds by the first admission
 * when serve did not set them (tests, tools). */
static struct nonce_cache *local_nonces(struct store *s)
{
	struct nonce_cache *c = atomic_load_explicit(&s->nonces, memory_order_acquire);
	if (c)
		return c;
	struct nonce_cache *fresh = nonce_new(0, 0);
	if (atomic_compare_exchange_strong(&s->nonces, &c, fresh))
		return fresh;
	nonce_free(fresh); /* another thread won; c is its cache */
	return c;
}

enum store_admit_result store_local_admit(struct store *s, const struct store_admission *a,
					  uint64_t *version)
{
	switch (nonce_check(local_nonces(s), a->who, a->nonce, a->now_s, a->expires_s)) {
	case NONCE_FRESH: break;
	case NONCE_USED: return STORE_ADMIT_USED;
	default: return STORE_ADMIT_FULL;
	}
	if (version)
		*version = store_data_version(s, a->account);
	return STORE_ADMIT_FRESH;
}

uint64_t store_admit_live(struct store *s, int64_t now_s, uint64_t *capacity)
{
	struct nonce_cache *c = atomic_load_explicit(&s->nonces, memory_order_acquire);
	*capacity = c ? nonce_capacity(c) : 0;
	return c ? nonce_live(c, now_s) : 0;
}

void store_write_async(struct store *s, store_fn fn, void *arg, store_done_fn done)
{
	s->ops->write_async(s, 0, NULL, fn, arg, done);
}

void store_write_async_hinted(struct store *s, int64_t scope, const struct store_lock_hint *h,
			      store_fn fn, void *arg, store_done_fn done)
{
	s->ops->write_async(s, scope > 0 || scope == STORE_SCOPE_NONE ? scope : 0, h, fn, arg, done);
}

void store_write_async_scoped(struct store *s, int64_t scope, store_fn fn, void *arg,
			      store_done_fn done)
{
	store_write_async_hinted(s, scope, NULL, fn, arg, done);
}

struct metrics_family *store_m_commits, *store_m_batch, *store_m_commit_us, *store_m_round_trips,
    *store_m_queued_us, *store_m_run_us, *store_m_admit_queued_us, *store_m_admit_run_us,
    *store_m_admit_batch;

void store_metrics_enable(void)
{
	static const uint64_t jobs[] = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512};
	static const uint64_t us[] = {100,   250,   500,    1000,   2500,   5000,   10000,
				      25000, 50000, 100000, 250000, 500000, 1000000};
	store_m_commits = metrics_add(&(struct metrics_def){
	    .name = "sagflow_store_commits_total",
	    .help = "Write transactions committed durably by the store's writer (one per batch).",
	    .type = METRICS_COUNTER});
	store_m_batch = metrics_add(&(struct metrics_def){
	    .name = "sagflow_store_commit_batch_size",
	    .help = "Write jobs per batch the writer ran in one transaction.",
	    .type = METRICS_HISTOGRAM, .bounds = jobs, .nbounds = sizeof(jobs) / sizeof(jobs[0])});
	store_m_commit_us = metrics_add(&(struct metrics_def){
	    .name = "sagflow_store_fsync_seconds",
	    .help = "Duration of each durable COMMIT: writing the batch to the WAL and its fsync.",
	    .type = METRICS_HISTOGRAM, .bounds = us, .nbounds = sizeof(us) / sizeof(us[0]),
	    .scale = 1e-6});
	store_m_queued_us = metrics_add(&(struct metrics_def){
	    .name = "sagflow_store_job_queued_seconds",
	    .help = "PostgreSQL only: how long each write job waited in its writer's queue "
		    "before its batch began.",
	    .type = METRICS_HISTOGRAM, .bounds = us, .nbounds = sizeof(us) / sizeof(us[0]),
	    .scale = 1e-6});
	store_m_run_us = metrics_add(&(struct metrics_def){
	    .name = "sagflow_store_batch_run_seconds",
	    .help = "PostgreSQL only: how long each batch ran its jobs, from BEGIN to COMMIT sent.",
	    .type = METRICS_HISTOGRAM, .bounds = us, .nbounds = sizeof(us) / sizeof(us[0]),
	    .scale = 1e-6});
	store_m_admit_queued_us = metrics_add(&(struct metrics_def){
	    .name = "sagflow_store_admission_queued_seconds",
	    .help = "PostgreSQL only: how long each admission (nonce + label) waited for its "
		    "batch's statement to be sent.",
	    .type = METRICS_HISTOGRAM, .bounds = us, .nbounds = sizeof(us) / sizeof(us[0]),
	    .scale = 1e-6});
	store_m_admit_run_us = metrics_add(&(struct metrics_def){
	    .name = "sagflow_store_admission_run_seconds",
	    .help = "PostgreSQL only: how long each admission batch's statement took, sent to "
		    "answered.",
	    .type = METRICS_HISTOGRAM, .bounds = us, .nbounds = sizeof(us) / sizeof(us[0]),
	    .scale = 1e-6});
	store_m_admit_batch = metrics_add(&(struct metrics_def){
	    .name = "sagflow_store_admission_batch_size",
	    .help = "PostgreSQL only: admissions per batch statement.",
	    .type = METRICS_HISTOGRAM, .bounds = jobs, .nbounds = sizeof(jobs) / sizeof(jobs[0])});
	store_m_round_trips = metrics_add(&(struct metrics_def){
	    .name = "sagflow_store_round_trips_total",
	    .help = "Round trips of the PostgreSQL writers: one per pipeline Sync (0 on SQLite).",
	    .type = METRICS_COUNTER});
}

void store_stats(struct store *s, struct store_stats *out)
{
	memset(out, 0, sizeof(*out));
	s->ops->stats(s, out);
}

/* store_write waits on its own condition variable: the writer thread signals it
 * from done(), after the batch's COMMIT has returned. */
struct store_waiter {
	store_fn fn;
	void *arg;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool finished;
	int rc;
};

static int store_waiter_run(struct store_tx *tx, void *arg)
{
	struct store_waiter *w = arg;
	return w->fn(tx, w->arg);
}

static void store_waiter_done(void *arg, int rc)
{
	struct store_waiter *w = arg;
	pthread_mutex_lock(&w->mu);
	w->rc = rc;
	w->finished = true;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

int store_write(struct store *s, store_fn fn, void *arg)
{
	if (s->ops->on_writer(s)) {
		log_err("store: store_write from the writer thread would wait for itself");
		return STORE_EIO;
	}
	struct store_waiter w = {.fn = fn, .arg = arg, .finished = false, .rc = STORE_EIO};
	pthread_mutex_init(&w.mu, NULL);
	pthread_cond_init(&w.cv, NULL);
	store_write_async(s, store_waiter_run, &w, store_waiter_done);
	pthread_mutex_lock(&w.mu);
	while (!w.finished)
		pthread_cond_wait(&w.cv, &w.mu);
	pthread_mutex_unlock(&w.mu);
	pthread_cond_destroy(&w.cv);
	pthread_mutex_destroy(&w.mu);
	return w.rc;
}

void store_key_generate(struct store_key *k)
{
	memcpy(k->akid, STORE_AKID_PREFIX, strlen(STORE_AKID_PREFIX));
	ids_alnum(k->akid + strlen(STORE_AKID_PREFIX), STORE_AKID_LEN - strlen(STORE_AKID_PREFIX));
	ids_alnum(k->secret, STORE_SECRET_LEN);
}

int store_key_get(struct store_tx *tx, const char *akid, struct store_key *out)
{
	return tx->ops->key_get(tx, akid, out);
}

struct key_find {
	const char *akid;
	struct store_key *out;
};

static int key_find_read(struct store_tx *tx, void *arg)
{
	struct key_find *f = arg;
	KEY_FIND_STEP(KEY_FIND_TX_BEGUN, f->akid);
	int rc = store_key_get(tx, f->akid, f->out);
	KEY_FIND_STEP(KEY_FIND_ROW_READ, f->akid);
	return rc;
}

int store_key_find(struct store *s, const char *akid, struct store_key *out)
{
	struct key_cache *kc = s->key_cache;
	struct key_find f = {.akid = akid, .out = out};
	if (!kc) { /* no cache (no shared epoch): every lookup reads the store */
		KEY_FIND_STEP(KEY_FIND_EPOCH_READ, akid);
		KEY_FIND_STEP(KEY_FIND_MISSED, akid);
		int rc = store_read(s, key_find_read, &f);
		KEY_FIND_STEP(KEY_FIND_READ_DONE, akid);
		return rc;
	}
	/* Why a deleted key is never used by a lookup that starts after
	 * `sagflow keys delete` returned: the deleting process bumps the epoch
	 * after its COMMIT and before it returns, so such a lookup loads an epoch
	 * E at or past that bump. A slot answers only when it was filled under
	 * the same E, and a slot is labelled with the epoch loaded *before* its
	 * key was read; so its read transaction began after the bump, hence after
	 * the COMMIT, and could not have found the key. A fill that read the key
	 * before the COMMIT carries an older epoch and never answers again. (So
	 * the load must stay above the read: loading it after would label a
	 * stale key with the new epoch.) test_store.c test_key_find_races runs a
	 * real delete at every step of this function. */
	/* A node that lost its lease may have missed a change: no cache then. The
	 * lease is loaded before the epoch because the listener flushes (bumps the
	 * epoch) before it extends the lease (pg_listen.c). */
	int64_t now = time_mono_us();
	int64_t until = atomic_load_explicit(&s->keys_trusted_until_us, memory_order_acquire);
	if (until != 0 && now >= until)
		return store_read(s, key_find_read, &f);
	uint64_t epoch = atomic_load_explicit(s->keys_epoch, memory_order_acquire);
	KEY_FIND_STEP(KEY_FIND_EPOCH_READ, akid);
	struct key_slot *sl = &kc->slot[key_slot_of(akid)];
	pthread_mutex_lock(&kc->mu);
	bool hit = sl->used && sl->epoch == epoch && now - sl->loaded_us < STORE_KEY_CACHE_TTL_US &&
		   strcmp(sl->key.akid, akid) == 0;
	if (hit)
		*out = sl->key;
	pthread_mutex_unlock(&kc->mu);
	if (hit)
		return 0;
	KEY_FIND_STEP(KEY_FIND_MISSED, akid);
	int rc = store_read(s, key_find_read, &f);
	KEY_FIND_STEP(KEY_FIND_READ_DONE, akid);
	if (rc == 0) {
		pthread_mutex_lock(&kc->mu);
		sl->used = true;
		sl->epoch = epoch;
		sl->loaded_us = now;
		sl->key = *out;
		pthread_mutex_unlock(&kc->mu);
	}
	return rc;
}

static bool account_char_ok(unsigned char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
	       ch == '.' || ch == '_' || ch == '@' || ch == '-';
}

/* Names come from the command line: bounded scan, no strlen. */
bool store_account_name_ok(const char *name)
{
	size_t n = strnlen(name, STORE_MAX_ACCOUNT_NAME + 1);
	if (n == 0 || n > STORE_MAX_ACCOUNT_NAME)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!account_char_ok((unsigned char)name[i]))
			return false;
	return true;
}

bool store_key_field_ok(const char *v)
{
	size_t n = strnlen(v, STORE_MAX_KEY_FIELD + 1);
	if (n == 0 || n > STORE_MAX_KEY_FIELD)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)v[i] <= 0x20 || (unsigned char)v[i] >= 0x7f)
			return false;
	return true;
}

int store_account_ensure(struct store_tx *tx, const char *name, int64_t *account_id)
{
	return tx->ops->account_ensure(tx, name, account_id);
}

int store_key_insert(struct store_tx *tx, const struct store_key *k)
{
	/* The device credential's prefix is never an AccessKey's. */
	if (!strncmp(k->akid, DOMAIN_DEVICE_KEY_PREFIX, sizeof(DOMAIN_DEVICE_KEY_PREFIX) - 1))
		return ERR_INVALID_PARAMETER;
	return tx->ops->key_insert(tx, k);
}

int store_key_delete(struct store_tx *tx, const char *akid)
{
	return tx->ops->key_delete(tx, akid);
}

int store_key_each(struct store_tx *tx, int (*fn)(const struct store_key *k, void *arg), void *arg)
{
	return tx->ops->key_each(tx, fn, arg);
}
