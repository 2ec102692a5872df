/* Accounts and access keys for the PostgreSQL backend: the worked example of
 * a domain module on top of pg_internal.h (the twin of store_sqlite_keys.c). */
#include "store/pg_internal.h"

#include "store/pg_admit.h"

#include <string.h>

#include "core/log.h"
#include "core/timeutil.h"
#include "rpc/errors.h"

#define KEY_COLUMNS "k.account_id, a.name, k.akid, k.secret, k.created_ms"

static int key_from_row(const PGresult *r, int row, struct store_key *out)
{
	memset(out, 0, sizeof(*out));
	out->account_id = pg_int(r, row, 0);
	out->created_ms = pg_int(r, row, 4);
	if (pg_copy(r, row, 1, out->account_name, sizeof(out->account_name)) != 0 ||
	    pg_copy(r, row, 2, out->akid, sizeof(out->akid)) != 0 ||
	    pg_copy(r, row, 3, out->secret, sizeof(out->secret)) != 0) {
		log_err("store: an access key row has a field that does not fit");
		return STORE_EIO;
	}
	return 0;
}

int pg_key_get(struct store_tx *tx, const char *akid, struct store_key *out)
{
	if (!store_key_field_ok(akid))
		return 1;
	struct pg_params p = {0};
	pg_p_text(&p, akid);
	PGresult *r = pg_tx_exec(tx,
				 "SELECT " KEY_COLUMNS " FROM access_keys k "
				 "JOIN accounts a ON a.id = k.account_id WHERE k.akid = $1",
				 &p, "key lookup");
	if (!r)
		return pg_tx_err(tx);
	int rc = PQntuples(r) == 0 ? 1 : key_from_row(r, 0, out);
	PQclear(r);
	return rc;
}

int pg_account_ensure(struct store_tx *tx, const char *name, int64_t *account_id)
{
	if (!store_account_name_ok(name))
		return ERR_INVALID_PARAMETER;
	struct pg_params p = {0};
	pg_p_text(&p, name);
	pg_p_int(&p, time_now_ms());
	PGresult *r = pg_tx_exec(tx,
				 "INSERT INTO accounts (name, created_ms) VALUES ($1, $2) "
				 "ON CONFLICT (name) DO NOTHING",
				 &p, "account insert");
	if (!r)
		return pg_tx_err(tx);
	PQclear(r);
	p.n = 1;
	r = pg_tx_exec(tx, "SELECT id FROM accounts WHERE name = $1", &p, "account lookup");
	if (!r)
		return pg_tx_err(tx);
	int rc = PQntuples(r) == 1 ? 0 : STORE_EIO;
	if (rc == 0)
		*account_id = pg_int(r, 0, 0);
	PQclear(r);
	return rc;
}

/* Every key change raises store_epoch('keys') in its own transaction and
 * NOTIFYs the new value (delivered at COMMIT), so every node's listener
 * flushes its key cache and acknowledges; the writer waits for those
 * acknowledgements after COMMIT (docs/store.md, "N nodes"). */
static int keys_changed(struct store_tx *tx)
{
	PGresult *r = pg_tx_exec(tx, PG_KEYS_CHANGED_SQL, NULL, "key epoch");
	if (!r)
		return pg_tx_err(tx);
	int64_t v = PQntuples(r) == 1 ? pg_int(r, 0, 0) : 0;
	PQclear(r);
	if (v <= 0)
		return STORE_EIO; /* no 'keys' row: the migrations did not run */
	pg_tx_keys_changed(tx, v);
	return 0;
}

int pg_key_insert(struct store_tx *tx, const struct store_key *k)
{
	if (!store_key_field_ok(k->akid) || !store_key_field_ok(k->secret))
		return ERR_INVALID_PARAMETER;
	struct pg_params p = {0};
	pg_p_text(&p, k->akid);
	pg_p_int(&p, k->account_id);
	pg_p_text(&p, k->secret);
	pg_p_int(&p, k->created_ms ? k->created_ms : time_now_ms());
	PGresult *r = pg_tx_exec(tx,
				 "INSERT INTO access_keys (akid, account_id, secret, created_ms) "
				 "VALUES ($1, $2, $3, $4) ON CONFLICT (akid) DO NOTHING",
				 &p, "key insert");
	if (!r) /* a missing account is the caller's mistake, not a disk failure */
		return !strcmp(pg_tx_sqlstate(tx), PG_SQLSTATE_FOREIGN_KEY) ? ERR_INVALID_PARAMETER
									     : pg_tx_err(tx);
	int64_t n = pg_changes(r);
	PQclear(r);
	return n != 1 ? 1 : keys_changed(tx);
}

int pg_key_delete(struct store_tx *tx, const char *akid)
{
	if (!store_key_field_ok(akid))
		return 1;
	struct pg_params p = {0};
	pg_p_text(&p, akid);
	PGresult *r = pg_tx_exec(tx, "DELETE FROM access_keys WHERE akid = $1", &p, "key delete");
	if (!r)
		return pg_tx_err(tx);
	int64_t n = pg_changes(r);
	PQclear(r);
	return n != 1 ? 1 : keys_changed(tx);
}

int pg_key_each(struct store_tx *tx, int (*fn)(const struct store_key *k, void *arg), void *arg)
{
	/* rowid: SQLite's implicit column, explicit on PostgreSQL (sql/pg/0001). */
	PGresult *r = pg_tx_exec(tx,
				 "SELECT " KEY_COLUMNS " FROM access_keys k "
				 "JOIN accounts a ON a.id = k.account_id "
				 "ORDER BY k.account_id, k.created_ms, k.rowid",
				 NULL, "key list");
	if (!r)
		return pg_tx_err(tx);
	int rc = 0;
	struct store_key k;
	for (int i = 0; i < PQntuples(r) && rc == 0; i++) {
		rc = key_from_row(r, i, &k);
		if (rc == 0)
			rc = fn(&k, arg);
	}
	explicit_bzero(&k, sizeof(k));
	PQclear(r);
	return rc;
}
