/* Held requests (long-poll) without a thread each: a request that may wait for
 * a change of its account's data is parked here, and one waker thread hands it
 * back when that account changes, when its deadline passes, or at drain.
 *
 * Changes mark their account's slot of HOLD_SLOTS (accounts hashed; a
 * collision only wakes more items than needed) and count in one epoch. A caller
 * reads the epoch before the read its answer is built from and passes it to
 * hold_add: if any change came in between, the item is woken at once, so no
 * change is ever missed (another account's change costs it one more read). The
 * adapter keeps the HTTP connection suspended meanwhile (http.h). */
#ifndef DEVICE_HOLD_H
#define DEVICE_HOLD_H
#include <stdbool.h>
#include <stdint.h>

#define HOLD_SLOTS 1024
#define HOLD_TICK_MS 100 /* how often deadlines are checked, at most this late */
#define HOLD_PEER_CHECK_MS 5000 /* how often each item's client is checked for having gone */

struct hold_item {
	struct hold_item *prev, *next; /* private */
	int64_t account;
	int64_t deadline_us; /* monotonic */
	uint64_t epoch;      /* holds_epoch() before its answer was read */
	bool wake;           /* private: woken by a change */
	int64_t checked_us;  /* private: when gone() last ran */
};

/* Called on the waker thread, outside any lock, once per woken item: expired
 * when its deadline passed or the holds drain (answer as is), else its
 * account changed (re-read; hold_add it again to keep waiting). */
typedef void (*hold_wake_fn)(struct hold_item *it, bool expired, void *arg);
/* Whether the item's client went away (it is then woken as expired at once,
 * freeing its place); called under the holds' lock, so it must be quick. */
typedef bool (*hold_gone_fn)(struct hold_item *it, void *arg);
/* Called on the waker thread after each batch of wake calls: answers made
 * during the batch can be sent together (libmicrohttpd resumes suspended
 * connections in one pass over all of them, so one pass per batch, not per
 * answer). */
typedef void (*hold_flush_fn)(void *arg);

struct holds;

struct holds *holds_new(unsigned max, hold_wake_fn wake, hold_gone_fn gone, hold_flush_fn flush,
			void *arg);
/* Drains (every item woken as expired) and stops the waker; NULL is a no-op. */
void holds_free(struct holds *h);

uint64_t holds_epoch(struct holds *h);
/* Parks it until it->deadline_us: false (nothing parked) when max items are
 * held already or the holds drain. */
bool holds_add(struct holds *h, struct hold_item *it);
/* The account's data changed: its items are woken. Any thread. */
void holds_changed(struct holds *h, int64_t account);
/* Wakes every item as expired, now and from then on refuses new ones; returns
 * once every held item has been handed back. */
void holds_drain(struct holds *h);
unsigned holds_count(struct holds *h);

#endif
