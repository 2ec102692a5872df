/* Process-wide metrics: counters, gauges and histograms defined by tables,
 * counted in per-thread shards and summed when /metrics is scraped, written in
 * the Prometheus text exposition format 0.0.4 (docs/metrics.md).
 *
 * Why shards: a request thread adds to counters in a cache-line-aligned array
 * of its own (relaxed atomic adds that no other thread writes), so counting
 * takes no lock and moves no cache line between cores; only a scrape reads
 * every shard. Threads beyond METRICS_SHARDS share shards, which stays correct
 * because every add is atomic.
 *
 * Label values come from finite tables given at registration (the API's
 * actions, the error catalogue, a device's decode results), so a series is an
 * index computed by the caller, never a string from input: clients cannot
 * create series. A family not registered is a NULL pointer, and counting into
 * NULL does nothing: a process that serves no metrics pays one test per call.
 *
 * Registration (metrics_add, metrics_on_scrape) happens before the threads that
 * count start; it is not thread-safe. Counting and scraping are. */
#ifndef METRICS_METRICS_H
#define METRICS_METRICS_H
#include <stdbool.h>
#include <stdint.h>

#include "core/str.h"

#define METRICS_SHARDS 64        /* per-thread counter arrays */
#define METRICS_MAX_SLOTS 4096   /* 64-bit cells per shard, every family together */
#define METRICS_MAX_FAMILIES 64
#define METRICS_MAX_DIMS 2       /* label dimensions of one family */
#define METRICS_MAX_VALUES 256   /* values of one label dimension */
#define METRICS_MAX_BOUNDS 24    /* histogram buckets besides +Inf */
#define METRICS_MAX_HOOKS 8      /* scrape-time callbacks */
#define METRICS_INFO_MAX 64      /* bytes of an info family's label value */

enum metrics_type {
	METRICS_COUNTER,   /* only grows; the name ends in _total */
	METRICS_GAUGE,     /* set to a value (metrics_set) */
	METRICS_HISTOGRAM, /* observations into buckets (metrics_observe) */
	METRICS_INFO,      /* a gauge of 1 whose one label carries a string (metrics_info_set) */
};

struct metrics_label {
	const char *name;          /* NULL: this dimension is not used */
	const char *const *values; /* nvalues strings, living as long as the process */
	unsigned nvalues;
};

struct metrics_def {
	const char *name, *help;
	enum metrics_type type;
	struct metrics_label label[METRICS_MAX_DIMS];
	/* Histograms: ascending bucket upper bounds in the unit observed (an
	 * integer: microseconds, jobs); scale turns that unit into the exposed one
	 * (1e-6 for microseconds as seconds). 0 means 1. */
	const uint64_t *bounds;
	unsigned nbounds;
	double scale;
};

struct metrics_family;

/* Registers a family (def and its strings must outlive the process's use of
 * it). Returns NULL with a logged reason when a limit would be passed. */
struct metrics_family *metrics_add(const struct metrics_def *def);

/* The series of label values (a, b) — indexes into the label tables; 0 for an
 * unused dimension. Out-of-range indexes are ignored (a programming error). */
void metrics_count(struct metrics_family *f, unsigned a, unsigned b, uint64_t n);
void metrics_observe(struct metrics_family *f, unsigned a, unsigned b, uint64_t v);
void metrics_set(struct metrics_family *f, unsigned a, unsigned b, int64_t v);
/* An info family's value; NULL or "" removes the sample. Copied (at most
 * METRICS_INFO_MAX bytes). */
void metrics_info_set(struct metrics_family *f, const char *value);

/* Called at the start of every scrape, on the scraping thread: the place to
 * set gauges whose value is read from elsewhere (the store, a cache). */
int metrics_on_scrape(void (*fn)(void *arg), void *arg);

/* Appends the exposition of every family to out. Counters and histograms with
 * labels show the series that have counted anything; unlabelled families and
 * gauges show every series. */
void metrics_write(struct buf *out);

/* The exposition's Content-Type. */
#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* Forgets every family, hook and count. Tests only: nothing may count meanwhile. */
void metrics_reset(void);

#endif
