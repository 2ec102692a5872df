/* The PostgreSQL side of what N nodes share (docs/store.md, "N nodes"): the
 * admission of a signed request in one round trip, the horizon after a crash,
 * the nonce sweeper, and the key-change protocol (bump + NOTIFY, then wait for
 * every live node's acknowledgement). Each function takes the connection it
 * runs on; the backend (store_pg.c) owns the connections. */
#ifndef STORE_PG_ADMIT_H
#define STORE_PG_ADMIT_H
#include <libpq-fe.h>
#include <stdint.h>

#include "store/pg_admitq.h"
#include "store/store.h"

#define PG_CHANNEL "sagflow"	       /* LISTEN/NOTIFY channel */
#define PG_KEYS_PAYLOAD_PREFIX "keys:" /* payload: keys:<store_epoch v> */
#define PG_SWEEP_LOCK 0x73616766l      /* pg_try_advisory_lock key of the sweeper ("sagf") */
#define PG_KEYS_WAIT_MS 3500	       /* a node's lease (3 s) + one renewal's slack */
#define PG_KEYS_POLL_MS 5
/* The bound of one admission statement (with the horizon's re-creation after
 * a crash): past it the batch is refused (STORE_ADMIT_UNAVAIL) and the
 * connection, still inside the command, must be dropped. */
#define PG_ADMIT_EXEC_MS 2000
/* After a batch's fast form (every nonce fresh, one plain INSERT) met a
 * replay and the batch ran again with ON CONFLICT, this many batches of the
 * process run the ON CONFLICT form at once: a stream of replays costs at
 * most one failed statement per this many batches, never twice the work of
 * every batch (pg_admit.c). */
#define PG_ADMIT_CAREFUL_BATCHES 64

/* n admissions (1..PG_ADMIT_BATCH_MAX) on connection c (autocommit, not
 * inside a transaction) in one statement and one snapshot: inserts each
 * nonce's tag and reads each labelled account's version sum and the horizon
 * marker (first without ON CONFLICT, as if none were a replay; again with it
 * when one was, PG_ADMIT_CAREFUL_BATCHES). Items repeating an earlier item's (bucket, tag) are not sent and
 * answer STORE_ADMIT_USED: at most one of equal requests is FRESH. A missing
 * marker (crash recovery emptied the UNLOGGED tables) is re-created with
 * now() as the horizon. Any database failure makes every item
 * STORE_ADMIT_UNAVAIL (fail closed), logged without the nonces. Bounded by
 * PG_ADMIT_EXEC_MS. Returns false when c must not be used again (no answer in
 * time, or not idle after a failure). */
bool pg_admit_batch(PGconn *c, struct pg_admit_item *it, size_t n);

/* How many batches' fast form met a replay since the process started. */
uint64_t pg_admit_fallbacks(void);

/* One admission: a batch of one. */
enum store_admit_result pg_admit(PGconn *c, const struct store_admission *a, uint64_t *version);

/* One sweep, if this connection holds (or now takes) the session-level
 * sweeper lock: TRUNCATEs each nonce partition that is not live at now_s
 * (pg_nonce_bucket_live) and not empty. Returns the number of partitions
 * truncated, 0 when another node sweeps, or -1 on a database error. */
int pg_nonce_sweep(PGconn *c, int64_t now_s);

/* The statement of pg_keys_changed, for a backend that runs it through its
 * own statement cache: one row, (v, the NOTIFY's void). */
#define PG_KEYS_CHANGED_SQL                                                                        \
	"WITH e AS (UPDATE store_epoch SET v = v + 1 WHERE name = 'keys' RETURNING v) "            \
	"SELECT v, pg_notify('" PG_CHANNEL "', '" PG_KEYS_PAYLOAD_PREFIX "' || v) FROM e"

/* Inside the transaction of a key change: bumps store_epoch 'keys' and
 * NOTIFYs PG_CHANNEL with its new value, delivered at COMMIT. 0 and *v, or
 * STORE_EIO. */
int pg_keys_changed(PGconn *c, int64_t *v);

/* After that transaction committed: waits until every node with an unexpired
 * lease has acknowledged version v (or its lease ran out), polling every
 * PG_KEYS_POLL_MS for at most PG_KEYS_WAIT_MS. 0, 1 on timeout (*pending: the
 * nodes still behind), or STORE_EIO. */
int pg_keys_wait(PGconn *c, int64_t v, int64_t *pending);

#endif
