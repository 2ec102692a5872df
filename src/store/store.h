/* The store: durable state behind an ops table (SQLite now, PostgreSQL later).
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
 * done() unchanged. A database failure is reported as STORE_EIO. */
#ifndef STORE_STORE_H
#define STORE_STORE_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define STORE_EIO (-1)

#define STORE_MAX_ACCOUNT_NAME 64
#define STORE_AKID_LEN 24       /* "LTAI" + 20 alnum */
#define STORE_SECRET_LEN 30     /* alnum, ~178 bits */
#define STORE_MAX_KEY_FIELD 128 /* AccessKeyId / secret as supplied by SAGFLOW_ACCESS_KEY_* */

struct store;
struct store_tx; /* a connection inside a transaction (write) or a snapshot (read) */

typedef int (*store_fn)(struct store_tx *tx, void *arg);
typedef void (*store_done_fn)(void *arg, int rc);

/* path: an SQLite file path ("sqlite:" prefix optional). Creates the file with
 * mode 0600, applies pending migrations. Returns NULL with a logged reason. */
struct store *store_open(const char *path);
void store_close(struct store *s); /* drains pending writes; NULL is a no-op */

int store_read(struct store *s, store_fn fn, void *arg);
void store_write_async(struct store *s, store_fn fn, void *arg, store_done_fn done);
int store_write(struct store *s, store_fn fn, void *arg);

/* Accounts and access keys. */
struct store_key {
	int64_t account_id;
	char account_name[STORE_MAX_ACCOUNT_NAME + 1];
	char akid[STORE_MAX_KEY_FIELD + 1];
	char secret[STORE_MAX_KEY_FIELD + 1];
	int64_t created_ms;
};

/* 0, or 1 when no such key (not an error), or STORE_EIO. */
int store_key_get(struct store_tx *tx, const char *akid, struct store_key *out);
/* Creates the account when new; returns its id in *account_id. */
int store_account_ensure(struct store_tx *tx, const char *name, int64_t *account_id);
int store_key_insert(struct store_tx *tx, const struct store_key *k);
/* 0, or 1 when no such key. */
int store_key_delete(struct store_tx *tx, const char *akid);
/* Calls fn for each key (ordered by account, then creation); stops when fn returns non-zero. */
int store_key_each(struct store_tx *tx, int (*fn)(const struct store_key *k, void *arg), void *arg);

#endif
