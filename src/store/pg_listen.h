/* The listener of one serve node on PostgreSQL (docs/store.md, "N nodes"): a
 * thread with its own connection that LISTENs on PG_CHANNEL, renews this
 * node's row in node_lease every PG_LEASE_RENEW_MS, acknowledges key changes
 * (keys_seen), and runs the nonce sweeper when it holds the sweeper lock.
 *
 * It is what lets the key cache stay on with N nodes (Chubby's protocol): a
 * key change waits for every live lease's acknowledgement (pg_keys_wait), and
 * a node trusts its key cache only until PG_LEASE_TRUST_MS after the start of
 * its last successful renewal — a second before its lease (PG_LEASE_MS,
 * counted by the database from a later moment) can have expired. A node whose
 * listener is cut off, blocked or stopped (SIGSTOP) thus reads every key from
 * the database once its trust lapsed, and a deleter stops waiting for it once
 * its lease expired. After a reconnect it LISTENs (autocommit: committed),
 * then flushes its key cache, then renews: LISTEN(7)'s rule, so no change
 * between the two connections is missed. */
#ifndef STORE_PG_LISTEN_H
#define STORE_PG_LISTEN_H
#include <stdint.h>

#include "store/store_impl.h"

#define PG_LEASE_MS 3000       /* lease_until = now() + this at each renewal */
#define PG_LEASE_RENEW_MS 1000 /* renewal period */
#define PG_LEASE_TRUST_MS 2000 /* key cache trusted this long after a renewal began */
#define PG_RECONNECT_MIN_MS 100
#define PG_RECONNECT_MAX_MS 5000

struct pg_listen;

/* Starts the listener for store s on conninfo (a libpq URI or key=value
 * string). Before it returns, s->keys_epoch points at the listener's epoch and
 * s->keys_trusted_until_us is in the past, so the key cache reads the
 * database until the first renewal succeeded. Never fails for an unreachable
 * database: the thread retries with backoff. */
struct pg_listen *pg_listen_start(const char *conninfo, struct store *s);
/* Stops the thread and deletes this node's lease (a clean shutdown's deleter
 * need not wait for it); NULL is a no-op. */
void pg_listen_stop(struct pg_listen *l);

/* For tests and metrics: this node's id (uuid text), how many connections
 * the listener made, how many key changes it applied, and whether it is
 * connected with its lease renewed. */
const char *pg_listen_node_id(const struct pg_listen *l);
uint64_t pg_listen_connects(const struct pg_listen *l);
uint64_t pg_listen_key_changes(const struct pg_listen *l);

#endif
