/* Accounts and access keys for the SQLite backend: the worked example of a
 * domain module on top of sqlite_internal.h. */
#include "store/sqlite_internal.h"

#include <string.h>

#include "core/log.h"
#include "core/timeutil.h"
#include "rpc/errors.h"

#define KEY_COLUMNS "k.account_id, a.name, k.akid, k.secret, k.created_ms"

static int key_from_row(sqlite3_stmt *st, struct store_key *out)
{
	memset(out, 0, sizeof(*out));
	out->account_id = sqlite3_column_int64(st, 0);
	out->created_ms = sqlite3_column_int64(st, 4);
	if (sqlite_col_copy(st, 1, out->account_name, sizeof(out->account_name)) != 0 ||
	    sqlite_col_copy(st, 2, out->akid, sizeof(out->akid)) != 0 ||
	    sqlite_col_copy(st, 3, out->secret, sizeof(out->secret)) != 0) {
		log_err("store: an access key row has a field that does not fit");
		return STORE_EIO;
	}
	return 0;
}

int sqlite_key_get(struct store_tx *tx, const char *akid, struct store_key *out)
{
	/* An id that could never have been stored is simply not found. */
	if (!store_key_field_ok(akid))
		return 1;
	sqlite3_stmt *st = sqlite_tx_stmt(tx, "SELECT " KEY_COLUMNS " FROM access_keys k "
					      "JOIN accounts a ON a.id = k.account_id WHERE k.akid = ?1");
	if (!st)
		return STORE_EIO;
	sqlite3_bind_text(st, 1, akid, -1, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_DONE)
		return 1;
	if (rc != SQLITE_ROW)
		return sqlite_tx_fail(tx, "key lookup");
	return key_from_row(st, out);
}

int sqlite_account_ensure(struct store_tx *tx, const char *name, int64_t *account_id)
{
	if (!store_account_name_ok(name))
		return ERR_INVALID_PARAMETER;
	sqlite3_stmt *st = sqlite_tx_stmt(tx, "INSERT INTO accounts(name, created_ms) VALUES (?1, ?2) "
					      "ON CONFLICT(name) DO NOTHING");
	if (!st)
		return STORE_EIO;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, time_now_ms());
	if (sqlite3_step(st) != SQLITE_DONE)
		return sqlite_tx_fail(tx, "account insert");
	st = sqlite_tx_stmt(tx, "SELECT id FROM accounts WHERE name = ?1");
	if (!st)
		return STORE_EIO;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_ROW)
		return sqlite_tx_fail(tx, "account lookup");
	*account_id = sqlite3_column_int64(st, 0);
	return 0;
}

int sqlite_key_insert(struct store_tx *tx, const struct store_key *k)
{
	if (!store_key_field_ok(k->akid) || !store_key_field_ok(k->secret))
		return ERR_INVALID_PARAMETER;
	sqlite3_stmt *st = sqlite_tx_stmt(tx, "INSERT INTO access_keys(akid, account_id, secret, "
					      "created_ms) VALUES (?1, ?2, ?3, ?4) "
					      "ON CONFLICT(akid) DO NOTHING");
	if (!st)
		return STORE_EIO;
	sqlite3_bind_text(st, 1, k->akid, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, k->account_id);
	sqlite3_bind_text(st, 3, k->secret, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, k->created_ms ? k->created_ms : time_now_ms());
	int rc = sqlite3_step(st);
	if (rc != SQLITE_DONE) {
		/* A missing account is the caller's mistake, not a disk failure. */
		if (sqlite3_extended_errcode(sqlite_tx_db(tx)) == SQLITE_CONSTRAINT_FOREIGNKEY)
			return ERR_INVALID_PARAMETER;
		return sqlite_tx_fail(tx, "key insert");
	}
	if (sqlite3_changes(sqlite_tx_db(tx)) != 1)
		return 1;
	sqlite_tx_keys_changed(tx);
	return 0;
}

int sqlite_key_delete(struct store_tx *tx, const char *akid)
{
	if (!store_key_field_ok(akid))
		return 1;
	sqlite3_stmt *st = sqlite_tx_stmt(tx, "DELETE FROM access_keys WHERE akid = ?1");
	if (!st)
		return STORE_EIO;
	sqlite3_bind_text(st, 1, akid, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE)
		return sqlite_tx_fail(tx, "key delete");
	if (sqlite3_changes(sqlite_tx_db(tx)) != 1)
		return 1;
	sqlite_tx_keys_changed(tx);
	return 0;
}

int sqlite_key_each(struct store_tx *tx, int (*fn)(const struct store_key *k, void *arg), void *arg)
{
	sqlite3_stmt *st = sqlite_tx_stmt(tx, "SELECT " KEY_COLUMNS " FROM access_keys k "
					      "JOIN accounts a ON a.id = k.account_id "
					      "ORDER BY k.account_id, k.created_ms, k.rowid");
	if (!st)
		return STORE_EIO;
	struct store_key k;
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (key_from_row(st, &k) != 0)
			return STORE_EIO;
		int stop = fn(&k, arg);
		if (stop)
			return stop;
	}
	return rc == SQLITE_DONE ? 0 : sqlite_tx_fail(tx, "key list");
}
