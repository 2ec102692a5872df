#include "device/hold.h"

#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "core/log.h"
#include "core/timeutil.h"
#include "core/xmalloc.h"

struct holds {
	pthread_mutex_t mu;
	pthread_cond_t cv, idle;
	pthread_t waker;
	hold_wake_fn wake;
	hold_gone_fn gone;
	hold_flush_fn flush;
	void *arg;
	unsigned max, count;
	bool quit, draining, busy, dirty_any;
	struct hold_item *head; /* held items, newest first */
	uint64_t epoch;
	bool dirty[HOLD_SLOTS];
};

static unsigned slot_of(int64_t account)
{
	return (unsigned)(((uint64_t)account * 0x9e3779b97f4a7c15ull) >> 54) % HOLD_SLOTS;
}

static void unlink_item(struct holds *h, struct hold_item *it)
{
	if (it->prev)
		it->prev->next = it->next;
	else
		h->head = it->next;
	if (it->next)
		it->next->prev = it->prev;
	it->prev = it->next = NULL;
	h->count--;
}

/* Under mu: takes out every item that is due (changed account, deadline, or
 * drain) into a list of its own. */
static struct hold_item *take_due(struct holds *h, int64_t now)
{
	struct hold_item *due = NULL;
	for (struct hold_item *it = h->head, *next; it; it = next) {
		next = it->next;
		bool changed = h->dirty_any && h->dirty[slot_of(it->account)];
		bool gone = false;
		if (!changed && h->gone && now - it->checked_us >= HOLD_PEER_CHECK_MS * 1000LL) {
			it->checked_us = now;
			gone = h->gone(it, h->arg);
		}
		if (!changed && !gone && !h->draining && it->deadline_us > now)
			continue;
		unlink_item(h, it);
		it->wake = changed && !h->draining && !gone;
		it->next = due;
		due = it;
	}
	if (h->dirty_any)
		for (unsigned i = 0; i < HOLD_SLOTS; i++)
			h->dirty[i] = false;
	h->dirty_any = false;
	return due;
}

static void *waker_main(void *arg)
{
	struct holds *h = arg;
	pthread_mutex_lock(&h->mu);
	while (!h->quit) {
		if (!h->dirty_any && !(h->draining && h->count)) {
			struct timespec ts =
			    time_deadline(CLOCK_REALTIME, (int64_t)HOLD_TICK_MS * 1000);
			pthread_cond_timedwait(&h->cv, &h->mu, &ts);
		}
		struct hold_item *due = take_due(h, time_mono_us());
		h->busy = due != NULL;
		pthread_mutex_unlock(&h->mu);
		for (struct hold_item *it = due, *next; it; it = next) {
			next = it->next;
			it->next = NULL;
			h->wake(it, !it->wake, h->arg);
		}
		if (due && h->flush)
			h->flush(h->arg);
		pthread_mutex_lock(&h->mu);
		h->busy = false;
		if (h->draining && !h->count)
			pthread_cond_broadcast(&h->idle);
	}
	pthread_mutex_unlock(&h->mu);
	return NULL;
}

struct holds *holds_new(unsigned max, hold_wake_fn wake, hold_gone_fn gone, hold_flush_fn flush,
			void *arg)
{
	struct holds *h = xcalloc(1, sizeof(*h));
	pthread_mutex_init(&h->mu, NULL);
	pthread_cond_init(&h->cv, NULL);
	pthread_cond_init(&h->idle, NULL);
	h->max = max;
	h->wake = wake;
	h->gone = gone;
	h->flush = flush;
	h->arg = arg;
	if (pthread_create(&h->waker, NULL, waker_main, h) != 0)
		fatal("hold: cannot start the waker thread");
	return h;
}

void holds_drain(struct holds *h)
{
	pthread_mutex_lock(&h->mu);
	h->draining = true;
	pthread_cond_signal(&h->cv);
	while (h->count || h->busy)
		pthread_cond_wait(&h->idle, &h->mu);
	pthread_mutex_unlock(&h->mu);
}

void holds_free(struct holds *h)
{
	if (!h)
		return;
	holds_drain(h);
	pthread_mutex_lock(&h->mu);
	h->quit = true;
	pthread_cond_signal(&h->cv);
	pthread_mutex_unlock(&h->mu);
	pthread_join(h->waker, NULL);
	pthread_cond_destroy(&h->cv);
	pthread_cond_destroy(&h->idle);
	pthread_mutex_destroy(&h->mu);
	free(h);
}

uint64_t holds_epoch(struct holds *h)
{
	pthread_mutex_lock(&h->mu);
	uint64_t e = h->epoch;
	pthread_mutex_unlock(&h->mu);
	return e;
}

bool holds_add(struct holds *h, struct hold_item *it)
{
	pthread_mutex_lock(&h->mu);
	bool ok = !h->draining && h->count < h->max;
	if (ok) {
		unsigned s = slot_of(it->account);
		if (!it->checked_us)
			it->checked_us = time_mono_us();
		it->prev = NULL;
		it->next = h->head;
		if (h->head)
			h->head->prev = it;
		h->head = it;
		h->count++;
		/* A change between the caller's read and now: wake it at once. */
		if (h->epoch != it->epoch) {
			h->dirty[s] = h->dirty_any = true;
			pthread_cond_signal(&h->cv);
		}
	}
	pthread_mutex_unlock(&h->mu);
	return ok;
}

void holds_changed(struct holds *h, int64_t account)
{
	unsigned s = slot_of(account);
	pthread_mutex_lock(&h->mu);
	h->epoch++;
	if (h->count) {
		h->dirty[s] = h->dirty_any = true;
		pthread_cond_signal(&h->cv);
	}
	pthread_mutex_unlock(&h->mu);
}

unsigned holds_count(struct holds *h)
{
	pthread_mutex_lock(&h->mu);
	unsigned n = h->count;
	pthread_mutex_unlock(&h->mu);
	return n;
}
