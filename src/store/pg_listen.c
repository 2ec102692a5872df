#include "store/pg_listen.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/ids.h"
#include "core/log.h"
#include "core/num.h"
#include "core/timeutil.h"
#include "core/xmalloc.h"
#include "store/pg_admit.h"
#include "store/pg_nodes.h"

#define PG_NUM_TEXT 24

/* The lease row, renewed and acknowledged at once; the epoch comes back so a
 * missed or late notification is caught within one renewal (the backstop). */
static const char PG_RENEW_SQL[] =
    "INSERT INTO node_lease VALUES ($1::uuid, $2::bigint, now() + interval '"
    "3 s"
    "', now()) "
    "ON CONFLICT (node_id) DO UPDATE SET lease_until = EXCLUDED.lease_until, "
    "keys_seen = EXCLUDED.keys_seen "
    "RETURNING (SELECT v FROM store_epoch WHERE name = 'keys')";
_Static_assert(PG_LEASE_MS == 3000, "PG_RENEW_SQL says 3 s");
static const char PG_ACK_SQL[] =
    "UPDATE node_lease SET keys_seen = greatest(keys_seen, $2::bigint) WHERE node_id = $1::uuid";
/* synchronous_commit off: leases are UNLOGGED, so renewals write no WAL; the
 * setting keeps any other statement on this connection from waiting for a
 * flush too. */
static const char PG_SETUP_SQL[] =
    "SET synchronous_commit = off; SET lock_timeout = '200ms'; LISTEN " PG_CHANNEL;

struct pg_listen {
	char *conninfo;
	struct store *s;
	_Atomic uint64_t epoch; /* the key cache's epoch (s->keys_epoch points here) */
	int64_t known;		/* the highest store_epoch 'keys' applied to it */
	char node_id[IDS_UUID_LEN + 1];
	PGconn *c;
	pthread_t thread;
	int wake[2]; /* a byte on wake[1] interrupts the thread's waits */
	_Atomic bool stop;
	int backoff_ms;
	int64_t next_sweep_us;
	_Atomic uint64_t connects, key_changes;
};

static void node_id_new(char out[IDS_UUID_LEN + 1])
{
	unsigned char b[16];
	ids_random(b, sizeof(b));
	b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
	b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
	snprintf(out, IDS_UUID_LEN + 1,
		 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
		 b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14],
		 b[15]);
}

/* Waits up to ms for fd to become readable or for a wake-up: 1 readable, 0
 * timeout or woken (the caller re-checks stop), -1 error. */
static int wait_fd(struct pg_listen *l, int fd, int64_t ms)
{
	struct pollfd p[2] = {{.fd = l->wake[0], .events = POLLIN}, {.fd = fd, .events = POLLIN}};
	int n = poll(p, fd >= 0 ? 2 : 1, ms < 0 ? 0 : ms > INT32_MAX ? INT32_MAX : (int)ms);
	if (n < 0)
		return errno == EINTR ? 0 : -1;
	if (p[0].revents)
		return 0;
	return fd >= 0 && p[1].revents ? 1 : 0;
}

static void drop_conn(struct pg_listen *l, const char *why)
{
	if (!l->c)
		return;
	log_warn("pg listener: %s; reconnecting (the key cache is off until the lease is renewed)",
		 why);
	PQfinish(l->c);
	l->c = NULL;
}

/* Every change the cache may hold is forgotten: its slots carry older epochs. */
static void flush_key_cache(struct pg_listen *l)
{
	atomic_fetch_add_explicit(&l->epoch, 1, memory_order_release);
}

static bool exec_ok(PGconn *c, const char *sql, const char *what)
{
	PGresult *r = PQexec(c, sql);
	bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
	if (!ok)
		log_warn("pg listener: %s: %s", what, PQresultErrorMessage(r));
	PQclear(r);
	return ok;
}

static int connect_setup(struct pg_listen *l)
{
	const char *kw[] = {
	    "dbname",	       "connect_timeout",     "application_name", "keepalives",
	    "keepalives_idle", "keepalives_interval", "keepalives_count", NULL};
	const char *val[] = {l->conninfo, "2", "sagflow-listener", "1", "5", "2", "2", NULL};
	l->c = PQconnectdbParams(kw, val, 1);
	if (PQstatus(l->c) != CONNECTION_OK) {
		log_warn("pg listener: cannot connect: %s", PQerrorMessage(l->c));
		PQfinish(l->c);
		l->c = NULL;
		return -1;
	}
	if (!exec_ok(l->c, PG_SETUP_SQL, "LISTEN")) {
		PQfinish(l->c);
		l->c = NULL;
		return -1;
	}
	/* LISTEN is committed (autocommit); what changed before it is caught by
	 * dropping the cache now and by the renewal's epoch. */
	flush_key_cache(l);
	atomic_fetch_add_explicit(&l->connects, 1, memory_order_relaxed);
	l->backoff_ms = 0;
	return 0;
}

/* Applies store_epoch 'keys' = v when it is news. */
static bool apply_epoch(struct pg_listen *l, int64_t v)
{
	if (v <= l->known)
		return false;
	flush_key_cache(l);
	l->known = v;
	atomic_fetch_add_explicit(&l->key_changes, 1, memory_order_relaxed);
	return true;
}

/* Renews the lease (acknowledging l->known) until the returned epoch is not
 * news, then extends the key cache's trust from t0, the moment before the
 * first renewal was sent. 0, or -1 when the connection failed. */
static int renew(struct pg_listen *l, int64_t t0)
{
	for (int i = 0; i < 3; i++) {
		char known[PG_NUM_TEXT];
		snprintf(known, sizeof(known), "%" PRId64, l->known);
		const char *vals[] = {l->node_id, known};
		PGresult *r = PQexecParams(l->c, PG_RENEW_SQL, 2, NULL, vals, NULL, NULL, 0);
		bool ok = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1;
		int64_t v =
		    ok && !PQgetisnull(r, 0, 0) ? strtoll(PQgetvalue(r, 0, 0), NULL, 10) : 0;
		if (!ok)
			log_warn("pg listener: lease renewal: %s", PQresultErrorMessage(r));
		PQclear(r);
		if (!ok)
			return -1;
		if (!apply_epoch(l, v))
			break; /* acknowledged what the database has */
	}
	/* After the flush above (release): a lookup that sees this deadline sees
	 * the new epoch too (store.c loads the deadline first). */
	atomic_store_explicit(&l->s->keys_trusted_until_us, t0 + (int64_t)PG_LEASE_TRUST_MS * 1000,
			      memory_order_release);
	return 0;
}

static int ack(struct pg_listen *l)
{
	char known[PG_NUM_TEXT];
	snprintf(known, sizeof(known), "%" PRId64, l->known);
	const char *vals[] = {l->node_id, known};
	PGresult *r = PQexecParams(l->c, PG_ACK_SQL, 2, NULL, vals, NULL, NULL, 0);
	int rc = PQresultStatus(r) == PGRES_COMMAND_OK ? 0 : -1;
	PQclear(r);
	return rc;
}

/* Drains notifications; "keys:<v>" flushes the cache and is acknowledged at
 * once (the fast path; the renewal is the backstop). 0, or -1 on failure. */
static int take_notifies(struct pg_listen *l)
{
	if (!PQconsumeInput(l->c))
		return -1;
	bool news = false;
	for (PGnotify *n; (n = PQnotifies(l->c)) != NULL; PQfreemem(n)) {
		size_t plen = strlen(PG_KEYS_PAYLOAD_PREFIX);
		struct str p = str_c(n->extra);
		int64_t v;
		if (p.len > plen && !memcmp(p.p, PG_KEYS_PAYLOAD_PREFIX, plen) &&
		    num_parse_i64((struct str){p.p + plen, p.len - plen}, 1, INT64_MAX, &v) == 0)
			news |= apply_epoch(l, v);
	}
	return news ? ack(l) : 0;
}

/* Listens until the next renewal is due; 0, or -1 when the connection broke. */
static int listen_until(struct pg_listen *l, int64_t due_us)
{
	for (int64_t now; !atomic_load(&l->stop) && (now = time_mono_us()) < due_us;) {
		int rc = wait_fd(l, PQsocket(l->c), (due_us - now + 999) / 1000);
		if (rc < 0 || (rc == 1 && take_notifies(l) < 0))
			return -1;
	}
	return 0;
}

static void maybe_sweep(struct pg_listen *l, int64_t now_us)
{
	if (now_us < l->next_sweep_us)
		return;
	l->next_sweep_us = now_us + (int64_t)PG_SWEEP_PERIOD_S * 1000000;
	int n = pg_nonce_sweep(l->c, time_now_ms() / 1000);
	if (n > 0)
		log_info("pg listener: swept %d nonce partitions", n);
}

static void backoff(struct pg_listen *l)
{
	l->backoff_ms = l->backoff_ms ? l->backoff_ms * 2 : PG_RECONNECT_MIN_MS;
	if (l->backoff_ms > PG_RECONNECT_MAX_MS)
		l->backoff_ms = PG_RECONNECT_MAX_MS;
	unsigned char jitter;
	ids_random(&jitter, 1);
	wait_fd(l, -1, l->backoff_ms + l->backoff_ms * jitter / 1024);
}

static void *listen_main(void *arg)
{
	struct pg_listen *l = arg;
	while (!atomic_load(&l->stop)) {
		if (!l->c && connect_setup(l) != 0) {
			backoff(l);
			continue;
		}
		int64_t t0 = time_mono_us();
		/* A renewal that failed on a live connection (a lock timeout) is
		 * retried at the next period; the trust runs out meanwhile. */
		if (renew(l, t0) != 0 && PQstatus(l->c) != CONNECTION_OK) {
			drop_conn(l, "lease renewal failed");
			continue;
		}
		maybe_sweep(l, t0);
		if (listen_until(l, t0 + (int64_t)PG_LEASE_RENEW_MS * 1000) != 0)
			drop_conn(l, "connection lost");
	}
	return NULL;
}

struct pg_listen *pg_listen_start(const char *conninfo, struct store *s)
{
	struct pg_listen *l = xcalloc(1, sizeof(*l));
	l->conninfo = xstrdup(conninfo);
	l->s = s;
	node_id_new(l->node_id);
	if (pipe2(l->wake, O_CLOEXEC | O_NONBLOCK) != 0)
		fatal("pg listener: pipe: %s", strerror(errno));
	/* Untrusted (in the past, not 0) until the first renewal. */
	atomic_store(&s->keys_trusted_until_us, 1);
	s->keys_epoch = &l->epoch;
	if (pthread_create(&l->thread, NULL, listen_main, l) != 0)
		fatal("pg listener: cannot start its thread");
	return l;
}

void pg_listen_stop(struct pg_listen *l)
{
	if (!l)
		return;
	atomic_store(&l->stop, true);
	(void)!write(l->wake[1], "x", 1);
	pthread_join(l->thread, NULL);
	atomic_store(&l->s->keys_trusted_until_us, 1);
	if (l->c) {
		const char *vals[] = {l->node_id};
		PQclear(PQexecParams(l->c, "DELETE FROM node_lease WHERE node_id = $1::uuid", 1,
				     NULL, vals, NULL, NULL, 0));
		PQfinish(l->c);
	}
	close(l->wake[0]);
	close(l->wake[1]);
	free(l->conninfo);
	free(l);
}

const char *pg_listen_node_id(const struct pg_listen *l)
{
	return l->node_id;
}

uint64_t pg_listen_connects(const struct pg_listen *l)
{
	return atomic_load_explicit(&l->connects, memory_order_relaxed);
}

uint64_t pg_listen_key_changes(const struct pg_listen *l)
{
	return atomic_load_explicit(&l->key_changes, memory_order_relaxed);
}
