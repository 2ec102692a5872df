/* The SQLite backend's extension point: what a domain module needs to write its
 * queries for SQLite (store_sqlite_keys.c is the worked example; docs/store.md).
 *
 * A struct store_tx handed to a store_fn by the SQLite backend is one
 * connection inside a transaction: a BEGIN IMMEDIATE batch (under a savepoint
 * of its own) for writes, a deferred read transaction for reads. Use only
 * prepared statements from sqlite_tx_stmt; never BEGIN/COMMIT/SAVEPOINT
 * yourself, and never keep a statement past the store_fn's return. */
#ifndef STORE_SQLITE_INTERNAL_H
#define STORE_SQLITE_INTERNAL_H
#include <sqlite3.h>
#include <stddef.h>

#include "store/store_impl.h"
#include "store/store_sag.h"

#define SQLITE_STMT_CACHE_MAX 256 /* distinct SQL texts per connection */

/* The connection under tx. */
sqlite3 *sqlite_tx_db(struct store_tx *tx);

/* The prepared statement for sql (its text is the cache key, so build no SQL
 * from values: bind them), reset and with its bindings cleared; prepared once
 * per connection. NULL, with
 * the reason logged, when sql does not compile or the cache is full — the
 * caller returns STORE_EIO. Every statement is reset again when the store_fn
 * returns, so it may stop stepping early. */
sqlite3_stmt *sqlite_tx_stmt(struct store_tx *tx, const char *sql);

/* Logs what failed with SQLite's message (never bound values: they may be
 * secrets) and returns STORE_EIO. */
int sqlite_tx_fail(struct store_tx *tx, const char *what);
/* Marks the running transaction as changing access keys: after its COMMIT the
 * shared key epoch is bumped, so every process's key cache lets go. */
void sqlite_tx_keys_changed(struct store_tx *tx);

/* Copies text column col into out (capacity cap, NUL added). -1 when it is
 * NULL or does not fit. */
int sqlite_col_copy(sqlite3_stmt *st, int col, char *out, size_t cap);

/* Key functions of the SQLite backend (store_sqlite_keys.c). */
int sqlite_key_get(struct store_tx *tx, const char *akid, struct store_key *out);
int sqlite_account_ensure(struct store_tx *tx, const char *name, int64_t *account_id);
int sqlite_key_insert(struct store_tx *tx, const struct store_key *k);
int sqlite_key_delete(struct store_tx *tx, const char *akid);
int sqlite_key_each(struct store_tx *tx, int (*fn)(const struct store_key *k, void *arg), void *arg);

/* Flow logs, gateways and devices of the SQLite backend (sqlite_sag.c). */
int sqlite_flowlog_get(struct store_tx *tx, struct owner o, const char *flowlog_id, struct flowlog *out);
int sqlite_flowlog_get_config(struct store_tx *tx, struct owner o, const char *flowlog_id, struct flowlog *out);
int sqlite_flowlog_count(struct store_tx *tx, struct owner o, int64_t *n);
int sqlite_flowlog_insert(struct store_tx *tx, struct flowlog *fl);
int sqlite_flowlog_create(struct store_tx *tx, struct flowlog *fl, int64_t quota);
int sqlite_flowlog_update(struct store_tx *tx, const struct flowlog *fl);
int sqlite_flowlog_delete(struct store_tx *tx, const struct flowlog *fl);
int sqlite_flowlog_list(struct store_tx *tx, struct owner o, const struct flowlog_filter *f, int64_t *total, flowlog_each_fn fn, void *arg);
int sqlite_sag_get(struct store_tx *tx, struct owner o, const char *sag_id, struct sag *out);
int sqlite_sag_insert(struct store_tx *tx, struct sag *g, const char *order_id, const char *order_json);
int sqlite_sag_delete(struct store_tx *tx, const struct sag *g);
int sqlite_sag_set_flowlog(struct store_tx *tx, const struct sag *g, int64_t fl_rowid);
int sqlite_sag_list(struct store_tx *tx, struct owner o, const struct sag_filter *f, int64_t *total, sag_each_fn fn, void *arg);
int sqlite_sag_list_by_flowlog(struct store_tx *tx, const struct flowlog *fl, int64_t offset, int64_t limit, int64_t *total, sag_each_fn fn, void *arg);
int sqlite_sag_list_unbound(struct store_tx *tx, struct owner o, int64_t limit, int64_t *total, sag_each_fn fn, void *arg);
int sqlite_device_insert(struct store_tx *tx, const struct sag *g, const struct device *d, int64_t now_ms);
int sqlite_device_delete(struct store_tx *tx, const struct sag *g, const char *serial_number);
int sqlite_device_owner(struct store_tx *tx, const char *serial_number, struct sag *g);
int sqlite_device_report(struct store_tx *tx, const struct sag *g, const char *serial_number, const struct device *d, int64_t now_ms);
int sqlite_device_sequence(struct store_tx *tx, const struct sag *g, const char *serial_number, int64_t seq, int64_t *last);
int sqlite_device_status_counts(struct store_tx *tx, int64_t now_ms, int64_t online_ms, int64_t counts[3]);

#endif
