#include "store/pg_admitq.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "core/log.h"
#include "core/timeutil.h"
#include "core/xmalloc.h"
#include "metrics/metrics.h"
#include "store/store_impl.h"

/* One submitted admission, queued until the admission thread takes it. */
struct job {
	struct pg_admit_item it;
	pg_admitq_done_fn done;
	void *arg;
	int64_t submitted_us; /* sagflow_store_admission_queued_seconds */
	int64_t deadline_us;  /* refused when still queued then (PG_ADMIT_WAIT_MS) */
	struct job *next;
};

struct pg_admitq {
	pthread_mutex_t mu;
	pthread_cond_t cv;	    /* the thread: work, a full batch, or stop */
	struct job *head, *tail;    /* queued, oldest first */
	size_t queued;
	bool lingering;		    /* the thread waits for its batch to fill */
	bool last_batch_shared;	    /* the last batch had more than one member */
	bool stop;
	pthread_t thread;
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

static void job_answer(struct job *j, enum store_admit_result r)
{
	j->done(j->arg, r, r == STORE_ADMIT_FRESH ? j->it.version : 0);
	free(j);
}

/* The admissions of a list, each refused (unlocked). */
static void refuse_all(struct job *j)
{
	while (j) {
		struct job *next = j->next;
		job_answer(j, STORE_ADMIT_UNAVAIL);
		j = next;
	}
}

/* A batch not full gives the requests being verified on the HTTP threads a
 * moment to join it (group commit's commit_delay). Called with mu held. */
static void linger(struct pg_admitq *q)
{
	if (q->queued >= PG_ADMIT_BATCH_MAX || !q->last_batch_shared)
		return;
	struct timespec until = time_deadline(CLOCK_MONOTONIC, PG_ADMIT_LINGER_US);
	q->lingering = true;
	while (q->queued < PG_ADMIT_BATCH_MAX && !q->stop &&
	       pthread_cond_timedwait(&q->cv, &q->mu, &until) != ETIMEDOUT)
		;
	q->lingering = false;
}

static struct job *queue_pop(struct pg_admitq *q)
{
	struct job *j = q->head;
	q->head = j->next;
	if (!q->head)
		q->tail = NULL;
	q->queued--;
	j->next = NULL;
	return j;
}

/* Takes the next batch (mu held): the admissions past their deadline go to
 * *expired instead. Returns the batch's size. */
static size_t take_batch(struct pg_admitq *q, struct job **m, struct job **expired)
{
	int64_t now = time_mono_us();
	size_t n = 0;
	while (q->head && n < PG_ADMIT_BATCH_MAX) {
		struct job *j = queue_pop(q);
		if (j->deadline_us < now) {
			j->next = *expired;
			*expired = j;
			q->stats.timeouts++;
			continue;
		}
		metrics_observe(store_m_admit_queued_us, 0, 0, (uint64_t)(now - j->submitted_us));
		m[n++] = j;
	}
	if (n) {
		q->last_batch_shared = n > 1;
		q->stats.batches++;
		q->stats.admissions += n;
		if (n > q->stats.max_batch)
			q->stats.max_batch = n;
	}
	return n;
}

/* Runs one batch unlocked and answers each member. */
static void run_batch(struct pg_admitq *q, struct job **m, size_t n)
{
	struct pg_admit_item batch[PG_ADMIT_BATCH_MAX];
	for (size_t i = 0; i < n; i++)
		batch[i] = m[i]->it;
	int64_t t0 = time_mono_us();
	q->run(q->arg, batch, n);
	metrics_observe(store_m_admit_run_us, 0, 0, (uint64_t)(time_mono_us() - t0));
	metrics_observe(store_m_admit_batch, 0, 0, n);
	for (size_t i = 0; i < n; i++) {
		m[i]->it.version = batch[i].version;
		job_answer(m[i], batch[i].result);
	}
}

static void *admitq_main(void *arg)
{
	struct pg_admitq *q = arg;
	pthread_mutex_lock(&q->mu);
	while (!q->stop) {
		if (!q->head) {
			pthread_cond_wait(&q->cv, &q->mu);
			continue;
		}
		linger(q);
		if (q->stop)
			break;
		struct job *m[PG_ADMIT_BATCH_MAX], *expired = NULL;
		size_t n = take_batch(q, m, &expired);
		pthread_mutex_unlock(&q->mu);
		refuse_all(expired);
		if (n)
			run_batch(q, m, n);
		pthread_mutex_lock(&q->mu);
	}
	struct job *left = q->head;
	q->head = q->tail = NULL;
	q->queued = 0;
	pthread_mutex_unlock(&q->mu);
	refuse_all(left);
	return NULL;
}

struct pg_admitq *pg_admitq_new(pg_admitq_run_fn run, void *arg)
{
	struct pg_admitq *q = xcalloc(1, sizeof(*q));
	pthread_mutex_init(&q->mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&q->cv, &ca);
	pthread_condattr_destroy(&ca);
	q->run = run;
	q->arg = arg;
	if (pthread_create(&q->thread, NULL, admitq_main, q) != 0)
		fatal("store: cannot start the admission thread");
	pthread_setname_np(q->thread, "pg-admit");
	return q;
}

void pg_admitq_free(struct pg_admitq *q)
{
	if (!q)
		return;
	pthread_mutex_lock(&q->mu);
	q->stop = true;
	pthread_cond_signal(&q->cv);
	pthread_mutex_unlock(&q->mu);
	pthread_join(q->thread, NULL);
	pthread_cond_destroy(&q->cv);
	pthread_mutex_destroy(&q->mu);
	free(q);
}

void pg_admitq_submit(struct pg_admitq *q, const struct store_admission *a, bool label,
		      pg_admitq_done_fn done, void *arg)
{
	struct job *j = xmalloc(sizeof(*j));
	pg_admit_item_of(a, label, &j->it); /* outside the lock: a SHA-256 */
	j->done = done;
	j->arg = arg;
	j->submitted_us = time_mono_us();
	j->deadline_us = j->submitted_us + (int64_t)PG_ADMIT_WAIT_MS * 1000;
	j->next = NULL;
	pthread_mutex_lock(&q->mu);
	if (q->stop || q->queued >= PG_ADMIT_QUEUE_MAX) {
		pthread_mutex_unlock(&q->mu);
		job_answer(j, STORE_ADMIT_UNAVAIL);
		return;
	}
	bool wake = !q->head || (q->lingering && q->queued + 1 >= PG_ADMIT_BATCH_MAX);
	if (q->tail)
		q->tail->next = j;
	else
		q->head = j;
	q->tail = j;
	q->queued++;
	if (wake)
		pthread_cond_signal(&q->cv);
	pthread_mutex_unlock(&q->mu);
}

/* pg_admitq_admit's rendezvous with the admission thread. */
struct sync_wait {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool done;
	enum store_admit_result r;
	uint64_t version;
};

static void sync_done(void *arg, enum store_admit_result r, uint64_t version)
{
	struct sync_wait *w = arg;
	/* Signalled under the lock: w lives on the waiter's stack, and it may
	 * return as soon as it sees done. */
	pthread_mutex_lock(&w->mu);
	w->r = r;
	w->version = version;
	w->done = true;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

enum store_admit_result pg_admitq_admit(struct pg_admitq *q, const struct store_admission *a,
					uint64_t *version)
{
	struct sync_wait w = {.done = false};
	pthread_mutex_init(&w.mu, NULL);
	pthread_cond_init(&w.cv, NULL);
	pg_admitq_submit(q, a, version != NULL, sync_done, &w);
	pthread_mutex_lock(&w.mu);
	while (!w.done) /* bounded: the thread answers within its own bounds */
		pthread_cond_wait(&w.cv, &w.mu);
	pthread_mutex_unlock(&w.mu);
	pthread_cond_destroy(&w.cv);
	pthread_mutex_destroy(&w.mu);
	if (w.r == STORE_ADMIT_FRESH && version)
		*version = w.version;
	return w.r;
}

void pg_admitq_stats(struct pg_admitq *q, struct pg_admitq_stats *out)
{
	pthread_mutex_lock(&q->mu);
	*out = q->stats;
	pthread_mutex_unlock(&q->mu);
}
