/* The backend-neutral front of the store: picks a backend from the path's
 * scheme, dispatches through its ops table, and builds the blocking
 * store_write from store_write_async. */
#include "store/store_impl.h"

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "core/ids.h"
#include "core/log.h"

#define STORE_SCHEME_SQLITE "sqlite:"

struct store *store_open(const char *path)
{
	if (!path || !*path) {
		log_err("store: no database path given");
		return NULL;
	}
	if (!strncmp(path, "postgres://", 11) || !strncmp(path, "postgresql://", 13)) {
		log_err("store: PostgreSQL is not supported by this build; use an SQLite file path");
		return NULL;
	}
	if (!strncmp(path, STORE_SCHEME_SQLITE, strlen(STORE_SCHEME_SQLITE)))
		path += strlen(STORE_SCHEME_SQLITE);
	return store_sqlite_open(path);
}

void store_close(struct store *s)
{
	if (s)
		s->ops->close(s);
}

int store_read(struct store *s, store_fn fn, void *arg)
{
	return s->ops->read(s, fn, arg);
}

uint64_t store_data_version(struct store *s)
{
	return atomic_load_explicit(&s->data_version, memory_order_acquire);
}

void store_write_async(struct store *s, store_fn fn, void *arg, store_done_fn done)
{
	s->ops->write_async(s, fn, arg, done);
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

int store_account_ensure(struct store_tx *tx, const char *name, int64_t *account_id)
{
	return tx->ops->account_ensure(tx, name, account_id);
}

int store_key_insert(struct store_tx *tx, const struct store_key *k)
{
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
