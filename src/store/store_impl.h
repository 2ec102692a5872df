/* Inside the store: the ops table each backend fills in (store_sqlite.c,
 * store_pg.c). store.c dispatches the public functions of store.h through
 * it; nothing outside src/store/ includes this header. */
#ifndef STORE_STORE_IMPL_H
#define STORE_STORE_IMPL_H
#include <stdint.h>

#include "store/store.h"
#include "store/store_sag.h"

struct store_ops {
	const char *name;
	void (*close)(struct store *s);
	int (*read)(struct store *s, store_fn fn, void *arg);
	/* h: the job's lookup (store_sag.h, store_lock_hint), or NULL; a backend
	 * may ignore it. */
	void (*write_async)(struct store *s, int64_t scope, const struct store_lock_hint *h,
			    store_fn fn, void *arg, store_done_fn done);
	void (*stats)(struct store *s, struct store_stats *out);
	bool (*on_writer)(struct store *s); /* true on the backend's writer thread */
	/* Accounts and access keys (store.h has their contracts). */
	int (*key_get)(struct store_tx *tx, const char *akid, struct store_key *out);
	int (*account_ensure)(struct store_tx *tx, const char *name, int64_t *account_id);
	int (*key_insert)(struct store_tx *tx, const struct store_key *k);
	int (*key_delete)(struct store_tx *tx, const char *akid);
	int (*key_each)(struct store_tx *tx, int (*fn)(const struct store_key *k, void *arg),
			void *arg);
	/* store_admit; an in-process backend points it at store_local_admit. */
	enum store_admit_result (*admit)(struct store *s, const struct store_admission *a,
					 uint64_t *version);
	/* store_admit_async; NULL: store.c calls admit and then done, at once. */
	void (*admit_async)(struct store *s, const struct store_admission *a, bool label,
			    store_admit_done_fn done, void *arg);
	/* Flow logs, gateways and devices (store_sag.h has their contracts). */
	int (*flowlog_get)(struct store_tx *tx, struct owner o, const char *flowlog_id, struct flowlog *out);
	int (*flowlog_get_config)(struct store_tx *tx, struct owner o, const char *flowlog_id, struct flowlog *out);
	int (*flowlog_count)(struct store_tx *tx, struct owner o, int64_t *n);
	int (*flowlog_insert)(struct store_tx *tx, struct flowlog *fl);
	int (*flowlog_create)(struct store_tx *tx, struct flowlog *fl, int64_t quota);
	int (*flowlog_update)(struct store_tx *tx, const struct flowlog *fl);
	int (*flowlog_delete)(struct store_tx *tx, const struct flowlog *fl);
	int (*flowlog_list)(struct store_tx *tx, struct owner o, const struct flowlog_filter *f, int64_t *total, flowlog_each_fn fn, void *arg);
	int (*sag_get)(struct store_tx *tx, struct owner o, const char *sag_id, struct sag *out);
	/* NULL: store_flowlog_sag_each (the two lookups, one after the other). */
	int (*flowlog_sag_get)(struct store_tx *tx, struct owner o, const char *flowlog_id, const char *sag_id, bool devices, struct flowlog *fl, struct sag *g);
	int (*sag_insert)(struct store_tx *tx, struct sag *g, const char *order_id, const char *order_json);
	int (*sag_delete)(struct store_tx *tx, const struct sag *g);
	int (*sag_set_flowlog)(struct store_tx *tx, const struct sag *g, int64_t fl_rowid);
	int (*sag_list)(struct store_tx *tx, struct owner o, const struct sag_filter *f, int64_t *total, sag_each_fn fn, void *arg);
	int (*sag_list_by_flowlog)(struct store_tx *tx, const struct flowlog *fl, int64_t offset, int64_t limit, int64_t *total, sag_each_fn fn, void *arg);
	int (*sag_list_unbound)(struct store_tx *tx, struct owner o, int64_t limit, int64_t *total, sag_each_fn fn, void *arg);
	int (*device_insert)(struct store_tx *tx, const struct sag *g, const struct device *d, int64_t now_ms);
	int (*device_delete)(struct store_tx *tx, const struct sag *g, const char *serial_number);
	int (*device_owner)(struct store_tx *tx, const char *serial_number, struct sag *g);
	int (*device_report)(struct store_tx *tx, const struct sag *g, const char *serial_number, const struct device *d, int64_t now_ms);
	int (*device_sequence)(struct store_tx *tx, const struct sag *g, const char *serial_number, int64_t seq, int64_t *last);
	int (*device_status_counts)(struct store_tx *tx, int64_t now_ms, int64_t online_ms, int64_t counts[3]);
	/* false while the database is unreachable (store_ready); NULL: always. */
	bool (*ready)(struct store *s);
};

/* Every backend's store and transaction begin with their ops pointer. */
struct store {
	const struct store_ops *ops;
	/* Bumped by the backend after a write batch, before any of its jobs is
	 * acknowledged: data_version for unscoped jobs, scope_version[store_scope_slot()]
	 * for jobs scoped to an account. See store_data_version() in store.h. */
	_Atomic uint64_t data_version;
	_Atomic uint64_t scope_version[STORE_SCOPE_SLOTS];
	/* A counter every process with this database open shares, bumped after
	 * each committed change to access keys; NULL when the backend has none,
	 * and then store_key_find always reads the store. */
	_Atomic uint64_t *keys_epoch;
	struct key_cache *key_cache; /* store.c's; NULL when keys_epoch is */
	/* 0: keys_epoch sees every change for as long as the store is open (one
	 * host: the PATH-keys file). Otherwise the monotonic time (time_mono_us)
	 * until which it may be trusted: a backend whose epoch comes from other
	 * nodes' notifications (PostgreSQL's listener, pg_listen.h) moves it
	 * forward after each lease renewal, and a lookup past it reads the store. */
	_Atomic int64_t keys_trusted_until_us;
	/* The in-process replay memory of store_local_admit (nonce.h); NULL until
	 * store_admit_limits or the first admission, and for a shared backend. */
	_Atomic(struct nonce_cache *) nonces;
};

struct store_tx {
	const struct store_ops *ops;
};

/* The scope_version counter of an account (Fibonacci hashing: account ids are
 * small consecutive integers). */
static inline unsigned store_scope_slot(int64_t scope)
{
	return (unsigned)(((uint64_t)scope * 0x9E3779B97F4A7C15u) >> 54) % STORE_SCOPE_SLOTS;
}

/* The store's metrics, NULL unless store_metrics_enable ran (store.c). The
 * backend's writer counts into them. */
struct metrics_family;
extern struct metrics_family *store_m_commits, *store_m_batch, *store_m_commit_us,
    *store_m_round_trips, *store_m_queued_us, *store_m_run_us, *store_m_admit_queued_us,
    *store_m_admit_run_us, *store_m_admit_batch;

/* The steps of store_key_find, for a test-only hook: tests/unit/test_store.c
 * builds its own copy of store.c with STORE_TEST_HOOKS defined and sets
 * store_key_find_hook to run `sagflow keys delete` at each step, to show that
 * no interleaving lets a deleted key through (docs/store.md, "The key cache").
 * Without STORE_TEST_HOOKS (the library, the binary) the steps compile to
 * nothing. */
enum store_key_find_step {
	KEY_FIND_EPOCH_READ, /* the epoch is loaded, the slot not yet looked at */
	KEY_FIND_MISSED,     /* the slot did not answer; the store is read next */
	KEY_FIND_TX_BEGUN,   /* in the read transaction, before the key's SELECT */
	KEY_FIND_ROW_READ,   /* in the read transaction, after the SELECT */
	KEY_FIND_READ_DONE,  /* the read transaction is over; the slot is filled next */
};
#ifdef STORE_TEST_HOOKS
extern void (*store_key_find_hook)(enum store_key_find_step step, const char *akid);
#endif

/* The validation both backends' key functions share (store.c): an account
 * name of 1..STORE_MAX_ACCOUNT_NAME of [A-Za-z0-9._@-]; an AccessKeyId or
 * secret of 1..STORE_MAX_KEY_FIELD printable ASCII characters, no space. */
bool store_account_name_ok(const char *name);
bool store_key_field_ok(const char *v);

/* Admission for a backend that is the only process on its data (SQLite): the
 * in-memory nonce cache and the process's own data versions. */
enum store_admit_result store_local_admit(struct store *s, const struct store_admission *a,
					  uint64_t *version);

/* store_flowlog_sag_get as store_flowlog_get then store_sag_get: SQLite's,
 * and PostgreSQL's when its one statement found no row (which one is
 * missing decides the error). */
int store_flowlog_sag_each(struct store_tx *tx, struct owner o, const char *flowlog_id,
			   const char *sag_id, struct flowlog *fl, struct sag *g);

/* Backend constructors. SQLite: path has its scheme prefix removed;
 * PostgreSQL: a libpq conninfo (URI) as given. */
struct store *store_sqlite_open(const char *path);
struct store *store_pg_open(const char *conninfo, int writers, bool node);

#endif
