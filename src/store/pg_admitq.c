#include "store/pg_admitq.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "core/timeutil.h"
#include "core/xmalloc.h"

enum waiter_state { W_QUEUED, W_RUNNING, W_DONE };

/* A caller of pg_admitq_admit, on its own stack. It leaves only when DONE or
 * while QUEUED (then it unlinks itself); a RUNNING waiter is in the leader's
 * batch and waits for it (bounded by the statement's own bound). */
struct waiter {
	struct pg_admit_item it;
	pthread_cond_t cv;
	enum waiter_state state;
	struct waiter *prev, *next;
};

struct pg_admitq {
	pthread_mutex_t mu;
	struct waiter *head, *tail; /* QUEUED waiters, oldest first */
	bool busy;		    /* a leader is running a batch */
	size_t queued;		    /* waiters in the queue */
	struct waiter *lingering;   /* a leader waiting for its batch to fill, or NULL */
	bool last_batch_shared;	    /* the last batch had more than one member */
	pg_admitq_run_fn run;
	void *arg;
	struct pg_admitq_stats stats;
};

void pg_admit_item_of(const struct store_admission *a, bool label, struct pg_admit_item *it)
{
	*it = (struct pg_admit_item){.bucket = pg_nonce_bucket(a->expires_s),
				     .account = a->account,
				     .label = label,
				     .ts_s = a->ts_s,
				     .now_s = a->now_s,
				     .result = STORE_ADMIT_UNAVAIL};
	pg_nonce_tag(a->who, a->nonce, it->tag);
}

struct pg_admitq *pg_admitq_new(pg_admitq_run_fn run, void *arg)
{
	struct pg_admitq *q = xcalloc(1, sizeof(*q));
	pthread_mutex_init(&q->mu, NULL);
	q->run = run;
	q->arg = arg;
	return q;
}

void pg_admitq_free(struct pg_admitq *q)
{
	if (!q)
		return;
	pthread_mutex_destroy(&q->mu);
	free(q);
}

static void queue_append(struct pg_admitq *q, struct waiter *w)
{
	q->queued++;
	w->prev = q->tail;
	w->next = NULL;
	if (q->tail)
		q->tail->next = w;
	else
		q->head = w;
	q->tail = w;
}

static void queue_unlink(struct pg_admitq *q, struct waiter *w)
{
	q->queued--;
	if (w->prev)
		w->prev->next = w->next;
	else
		q->head = w->next;
	if (w->next)
		w->next->prev = w->prev;
	else
		q->tail = w->prev;
	w->prev = w->next = NULL;
}

/* The leader of a batch that is not full gives the requests being verified
 * on other threads a moment to join it (group commit's commit_delay). */
static void linger(struct pg_admitq *q, struct waiter *self)
{
	if (q->queued >= PG_ADMIT_BATCH_MAX || !q->last_batch_shared)
		return;
	struct timespec until = time_deadline(CLOCK_MONOTONIC, PG_ADMIT_LINGER_US);
	q->lingering = self;
	while (q->queued < PG_ADMIT_BATCH_MAX &&
	       pthread_cond_timedwait(&self->cv, &q->mu, &until) != ETIMEDOUT)
		;
	q->lingering = NULL;
}

/* Called with mu held by a QUEUED waiter that found no batch running: takes
 * itself and the oldest others, runs them unlocked, answers each, and wakes
 * the next leader if more are waiting. Returns with mu held. */
static void lead(struct pg_admitq *q, struct waiter *self)
{
	struct waiter *m[PG_ADMIT_BATCH_MAX];
	struct pg_admit_item batch[PG_ADMIT_BATCH_MAX];
	size_t n = 0;
	q->busy = true;
	linger(q, self);
	queue_unlink(q, self);
	m[n++] = self;
	while (q->head && n < PG_ADMIT_BATCH_MAX) {
		struct waiter *w = q->head;
		queue_unlink(q, w);
		m[n++] = w;
	}
	for (size_t i = 0; i < n; i++) {
		m[i]->state = W_RUNNING;
		batch[i] = m[i]->it;
	}
	q->last_batch_shared = n > 1;
	q->stats.batches++;
	q->stats.admissions += n;
	if (n > q->stats.max_batch)
		q->stats.max_batch = n;
	pthread_mutex_unlock(&q->mu);
	q->run(q->arg, batch, n);
	pthread_mutex_lock(&q->mu);
	/* Signalled under the lock: a waiter's condition variable lives on its
	 * stack, and it may return as soon as it sees DONE. */
	for (size_t i = 0; i < n; i++) {
		m[i]->it.result = batch[i].result;
		m[i]->it.version = batch[i].version;
		m[i]->state = W_DONE;
		if (m[i] != self)
			pthread_cond_signal(&m[i]->cv);
	}
	q->busy = false;
	if (q->head)
		pthread_cond_signal(&q->head->cv);
}

/* Waits (mu held) until w is answered, leads a batch when none runs, or gives
 * up while still queued at the deadline. */
static void wait_answer(struct pg_admitq *q, struct waiter *w, const struct timespec *until)
{
	while (w->state != W_DONE) {
		if (w->state == W_QUEUED && !q->busy) {
			lead(q, w);
			continue;
		}
		int rc = w->state == W_QUEUED ? pthread_cond_timedwait(&w->cv, &q->mu, until)
					      : pthread_cond_wait(&w->cv, &q->mu);
		/* Past the deadline with no batch running it leads instead: a
		 * batch is bounded, and the others queued need a leader. */
		if (rc == ETIMEDOUT && w->state == W_QUEUED && q->busy) {
			queue_unlink(q, w);
			w->it.result = STORE_ADMIT_UNAVAIL;
			w->state = W_DONE;
			q->stats.timeouts++;
		}
	}
}

enum store_admit_result pg_admitq_admit(struct pg_admitq *q, const struct store_admission *a,
					uint64_t *version)
{
	struct waiter w = {.state = W_QUEUED};
	pg_admit_item_of(a, version != NULL, &w.it);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&w.cv, &ca);
	pthread_condattr_destroy(&ca);
	struct timespec until = time_deadline(CLOCK_MONOTONIC, (int64_t)PG_ADMIT_WAIT_MS * 1000);
	pthread_mutex_lock(&q->mu);
	queue_append(q, &w);
	if (q->lingering && q->queued >= PG_ADMIT_BATCH_MAX)
		pthread_cond_signal(&q->lingering->cv);
	wait_answer(q, &w, &until);
	pthread_mutex_unlock(&q->mu);
	pthread_cond_destroy(&w.cv);
	if (w.it.result == STORE_ADMIT_FRESH && version)
		*version = w.it.version;
	return w.it.result;
}

void pg_admitq_stats(struct pg_admitq *q, struct pg_admitq_stats *out)
{
	pthread_mutex_lock(&q->mu);
	*out = q->stats;
	pthread_mutex_unlock(&q->mu);
}
