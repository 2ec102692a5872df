/* The per-node admission batcher of the PostgreSQL backend (spec scale-out
 * §7.3 step 2; docs/store.md, "N nodes"): the admissions of one process are
 * combined into one statement (pg_admit_batch), so the database sees one
 * round trip per batch instead of one per request.
 *
 * Asynchronous, with a thread of its own (the admission thread): a caller
 * submits an admission with a completion callback and returns at once; the
 * thread takes every queued admission (up to PG_ADMIT_BATCH_MAX), runs the
 * batch through run() and calls each callback with its answer. One batch
 * runs at a time, so the batch grows with the load: the admissions that
 * arrive during one round trip share the next. Why a thread rather than the
 * leader/follower combining this replaced: there a request's HTTP thread
 * slept on a condition variable until its batch was answered, and parking
 * and waking one thread per request cost more kernel time than the whole
 * cached answer (docs/benchmarks.md, "PostgreSQL"); here no HTTP thread waits,
 * and a batch costs one wake-up of the admission thread.
 *
 * No libpq here: the queue is tested with any run() (tests/unit). */
#ifndef STORE_PG_ADMITQ_H
#define STORE_PG_ADMITQ_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/pg_nodes.h"
#include "store/store.h"

/* Admissions per statement: spec §3.1 measured 64 nonces per statement at
 * ~7 us of machine CPU each, against ~50 us for one per statement. */
#define PG_ADMIT_BATCH_MAX 64
/* The longest an admission waits in the queue for a batch to take it; then it
 * is refused with STORE_ADMIT_UNAVAIL (503). One taken into a batch waits for
 * that batch, whose statement is bounded by PG_ADMIT_EXEC_MS (pg_admit.h):
 * no admission waits longer than the sum. */
#define PG_ADMIT_WAIT_MS 2000
/* How long the admission thread, its batch not full, waits for more members
 * when the last batch had company (under load); a lone request never waits (spec §2:
 * "collects verified requests for <= 0.2 ms"). Measured with 16 HTTP threads
 * against no wait: batches of 2.4-3.8 became 5.4-9.5, PostgreSQL's CPU per
 * admission fell from ~44 to ~28-45 us (loaded machine, single runs). */
#define PG_ADMIT_LINGER_US 200

/* One admission by value: what the batch statement needs, and its answer. */
struct pg_admit_item {
	unsigned bucket;		      /* pg_nonce_bucket(expires) */
	char tag[PG_NONCE_TAG_TEXT + 1];      /* pg_nonce_tag(who, nonce) */
	int64_t account;		      /* for the label */
	bool label;			      /* false: no version wanted */
	int64_t ts_s, now_s;		      /* for the horizon rule */
	enum store_admit_result result;	      /* out */
	uint64_t version;		      /* out, when label and FRESH */
};

/* Fills it from a (outside any lock: the tag is a SHA-256). */
void pg_admit_item_of(const struct store_admission *a, bool label, struct pg_admit_item *it);

/* Runs n (1..PG_ADMIT_BATCH_MAX) admissions as one batch on the calling
 * thread, setting every item's result (and version); must not block beyond
 * its own bound. */
typedef void (*pg_admitq_run_fn)(void *arg, struct pg_admit_item *items, size_t n);

/* The answer of one admission: version is meaningful when it asked for a
 * label and r is STORE_ADMIT_FRESH. Called on the admission thread (or on
 * the submitting thread when refused at once): it must not block. */
typedef void (*pg_admitq_done_fn)(void *arg, enum store_admit_result r, uint64_t version);

/* Admissions queued at most; past it one is refused (STORE_ADMIT_UNAVAIL).
 * Each is a request waiting for its answer, so connections bound them first. */
#define PG_ADMIT_QUEUE_MAX 65536

struct pg_admitq;
/* Starts the admission thread; run() is called only on it. */
struct pg_admitq *pg_admitq_new(pg_admitq_run_fn run, void *arg);
/* Stops the thread: the running batch finishes, the admissions still queued
 * (and any submitted from now on) are answered STORE_ADMIT_UNAVAIL. No
 * pg_admitq_submit may start once it returns. NULL is a no-op. */
void pg_admitq_free(struct pg_admitq *q);

/* Queues one admission; done(arg, ...) runs exactly once, on the admission
 * thread, within PG_ADMIT_WAIT_MS in the queue plus one batch's
 * PG_ADMIT_EXEC_MS (pg_admit.h), or on this thread before it returns when
 * refused at once (queue full, stopping). label false: no version wanted. */
void pg_admitq_submit(struct pg_admitq *q, const struct store_admission *a, bool label,
		      pg_admitq_done_fn done, void *arg);

/* The blocking form (tools, tests): submits and waits for the answer. */
enum store_admit_result pg_admitq_admit(struct pg_admitq *q, const struct store_admission *a,
					uint64_t *version);

struct pg_admitq_stats {
	uint64_t batches;    /* statements run */
	uint64_t admissions; /* admissions that went through a batch */
	uint64_t max_batch;  /* the largest batch */
	uint64_t timeouts;   /* admissions refused after PG_ADMIT_WAIT_MS in the queue */
};
void pg_admitq_stats(struct pg_admitq *q, struct pg_admitq_stats *out);

#endif
