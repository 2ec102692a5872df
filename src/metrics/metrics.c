#include "metrics/metrics.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "core/log.h"

#define METRICS_CACHE_LINE 64

struct metrics_family {
	struct metrics_def def;
	unsigned nseries; /* product of the used dimensions' value counts */
	unsigned cells;   /* per series: 1, or nbounds + 2 for a histogram (buckets, +Inf, sum) */
	unsigned base;    /* first cell in every shard */
	pthread_mutex_t info_mu;
	char info[METRICS_INFO_MAX + 1];
};

/* Each shard is written by the threads mapped to it; the alignment keeps two
 * shards off one cache line. Static, so untouched pages cost nothing. */
struct metrics_shard {
	_Alignas(METRICS_CACHE_LINE) _Atomic uint64_t cell[METRICS_MAX_SLOTS];
};

static struct metrics_shard metrics_shards[METRICS_SHARDS];
static struct metrics_family metrics_fams[METRICS_MAX_FAMILIES];
static unsigned metrics_nfams, metrics_ncells;
static struct {
	void (*fn)(void *arg);
	void *arg;
} metrics_hooks[METRICS_MAX_HOOKS];
static unsigned metrics_nhooks;
static pthread_mutex_t metrics_scrape_mu = PTHREAD_MUTEX_INITIALIZER;
static atomic_uint metrics_next_shard;
static __thread unsigned metrics_tls_shard; /* shard index + 1; 0 until first use */

static unsigned family_cells(const struct metrics_def *d)
{
	if (d->type == METRICS_HISTOGRAM)
		return d->nbounds + 2;
	return d->type == METRICS_INFO ? 0 : 1;
}

static int def_check(const struct metrics_def *d)
{
	for (unsigned i = 0; i < METRICS_MAX_DIMS && d->type != METRICS_INFO; i++)
		if (d->label[i].name && (d->label[i].nvalues == 0 ||
					 d->label[i].nvalues > METRICS_MAX_VALUES))
			return -1;
	if (d->type == METRICS_INFO && (!d->label[0].name || d->label[1].name))
		return -1;
	if (d->type == METRICS_HISTOGRAM && (d->nbounds == 0 || d->nbounds > METRICS_MAX_BOUNDS))
		return -1;
	for (unsigned i = 1; d->type == METRICS_HISTOGRAM && i < d->nbounds; i++)
		if (d->bounds[i] <= d->bounds[i - 1])
			return -1;
	return 0;
}

struct metrics_family *metrics_add(const struct metrics_def *d)
{
	if (metrics_nfams >= METRICS_MAX_FAMILIES || def_check(d) < 0) {
		log_err("metrics: cannot register %s (a limit of metrics.h, or a bad definition)",
			d->name);
		return NULL;
	}
	unsigned nseries = 1;
	for (unsigned i = 0; i < METRICS_MAX_DIMS; i++)
		if (d->label[i].name && d->type != METRICS_INFO)
			nseries *= d->label[i].nvalues;
	unsigned cells = family_cells(d);
	if ((uint64_t)nseries * cells > METRICS_MAX_SLOTS - metrics_ncells) {
		log_err("metrics: cannot register %s: METRICS_MAX_SLOTS reached", d->name);
		return NULL;
	}
	struct metrics_family *f = &metrics_fams[metrics_nfams++];
	*f = (struct metrics_family){.def = *d, .nseries = nseries, .cells = cells,
				     .base = metrics_ncells};
	pthread_mutex_init(&f->info_mu, NULL);
	metrics_ncells += nseries * cells;
	return f;
}

int metrics_on_scrape(void (*fn)(void *arg), void *arg)
{
	if (metrics_nhooks >= METRICS_MAX_HOOKS)
		return -1;
	metrics_hooks[metrics_nhooks].fn = fn;
	metrics_hooks[metrics_nhooks++].arg = arg;
	return 0;
}

static struct metrics_shard *my_shard(void)
{
	if (!metrics_tls_shard)
		metrics_tls_shard = atomic_fetch_add_explicit(&metrics_next_shard, 1,
							      memory_order_relaxed) % METRICS_SHARDS + 1;
	return &metrics_shards[metrics_tls_shard - 1];
}

/* The first cell of series (a, b), or -1 when an index is out of range. */
static int64_t series_cell(const struct metrics_family *f, unsigned a, unsigned b)
{
	unsigned na = f->def.label[0].name ? f->def.label[0].nvalues : 1;
	unsigned nb = f->def.label[1].name ? f->def.label[1].nvalues : 1;
	if (a >= na || b >= nb)
		return -1;
	return (int64_t)f->base + (int64_t)(a * nb + b) * f->cells;
}

static void cell_add(struct metrics_shard *s, int64_t cell, uint64_t n)
{
	atomic_fetch_add_explicit(&s->cell[cell], n, memory_order_relaxed);
}

void metrics_count(struct metrics_family *f, unsigned a, unsigned b, uint64_t n)
{
	if (!f || f->def.type != METRICS_COUNTER)
		return;
	int64_t c = series_cell(f, a, b);
	if (c >= 0)
		cell_add(my_shard(), c, n);
}

void metrics_observe(struct metrics_family *f, unsigned a, unsigned b, uint64_t v)
{
	if (!f || f->def.type != METRICS_HISTOGRAM)
		return;
	int64_t c = series_cell(f, a, b);
	if (c < 0)
		return;
	unsigned i = 0;
	while (i < f->def.nbounds && v > f->def.bounds[i])
		i++;
	struct metrics_shard *s = my_shard();
	cell_add(s, c + i, 1);
	cell_add(s, c + f->def.nbounds + 1, v);
}

/* Gauges live in shard 0 alone: a set replaces, it does not add up. */
void metrics_set(struct metrics_family *f, unsigned a, unsigned b, int64_t v)
{
	if (!f || f->def.type != METRICS_GAUGE)
		return;
	int64_t c = series_cell(f, a, b);
	if (c >= 0)
		atomic_store_explicit(&metrics_shards[0].cell[c], (uint64_t)v, memory_order_relaxed);
}

void metrics_info_set(struct metrics_family *f, const char *value)
{
	if (!f || f->def.type != METRICS_INFO)
		return;
	pthread_mutex_lock(&f->info_mu);
	snprintf(f->info, sizeof(f->info), "%s", value ? value : "");
	pthread_mutex_unlock(&f->info_mu);
}

/* ---- the exposition (text format 0.0.4) ---- */

/* Only shards some thread was given can hold counts: a serve with a few
 * threads has a scrape read a few shards, not all of them. A thread given one
 * during the scrape is seen by the next scrape. */
static unsigned shards_in_use(void)
{
	unsigned n = atomic_load_explicit(&metrics_next_shard, memory_order_relaxed);
	return n < METRICS_SHARDS ? n : METRICS_SHARDS;
}

static uint64_t cell_sum(unsigned cell)
{
	uint64_t v = 0;
	unsigned used = shards_in_use();
	for (unsigned s = 0; s < used; s++)
		v += atomic_load_explicit(&metrics_shards[s].cell[cell], memory_order_relaxed);
	return v;
}

/* HELP text escapes backslash and newline; label values also the quote. */
static void add_escaped(struct buf *out, const char *s, bool quote)
{
	for (; *s; s++) {
		if (*s == '\\')
			buf_adds(out, "\\\\");
		else if (*s == '\n')
			buf_adds(out, "\\n");
		else if (*s == '"' && quote)
			buf_adds(out, "\\\"");
		else
			buf_addc(out, *s);
	}
}

static double family_scale(const struct metrics_family *f)
{
	return f->def.scale > 0 ? f->def.scale : 1;
}

/* `name{labels` without the closing brace, so `le` can follow. */
static void add_series_head(struct buf *out, const struct metrics_family *f, const char *suffix,
			    const unsigned idx[METRICS_MAX_DIMS], bool *open)
{
	buf_adds(out, f->def.name);
	buf_adds(out, suffix);
	*open = false;
	for (unsigned i = 0; i < METRICS_MAX_DIMS; i++) {
		const struct metrics_label *l = &f->def.label[i];
		if (!l->name)
			continue;
		buf_addc(out, *open ? ',' : '{');
		*open = true;
		buf_adds(out, l->name);
		buf_adds(out, "=\"");
		add_escaped(out, l->values[idx[i]], true);
		buf_addc(out, '"');
	}
}

static void add_sample(struct buf *out, const struct metrics_family *f, const char *suffix,
		       const unsigned idx[METRICS_MAX_DIMS], const char *value)
{
	bool open;
	add_series_head(out, f, suffix, idx, &open);
	buf_adds(out, open ? "} " : " ");
	buf_adds(out, value);
	buf_addc(out, '\n');
}

static void add_bucket(struct buf *out, const struct metrics_family *f,
		       const unsigned idx[METRICS_MAX_DIMS], const char *le, uint64_t v)
{
	bool open;
	add_series_head(out, f, "_bucket", idx, &open);
	buf_adds(out, open ? ",le=\"" : "{le=\"");
	buf_adds(out, le);
	buf_printf(out, "\"} %" PRIu64 "\n", v);
}

static void write_histogram(struct buf *out, const struct metrics_family *f, unsigned cell,
			    const unsigned idx[METRICS_MAX_DIMS])
{
	uint64_t cum = 0;
	char le[32], num[32];
	for (unsigned i = 0; i < f->def.nbounds; i++) {
		cum += cell_sum(cell + i);
		snprintf(le, sizeof(le), "%.15g", (double)f->def.bounds[i] * family_scale(f));
		add_bucket(out, f, idx, le, cum);
	}
	cum += cell_sum(cell + f->def.nbounds);
	add_bucket(out, f, idx, "+Inf", cum);
	uint64_t sum = cell_sum(cell + f->def.nbounds + 1);
	if (f->def.scale > 0 && f->def.scale != 1)
		snprintf(num, sizeof(num), "%.15g", (double)sum * f->def.scale);
	else
		snprintf(num, sizeof(num), "%" PRIu64, sum);
	add_sample(out, f, "_sum", idx, num);
	snprintf(num, sizeof(num), "%" PRIu64, cum);
	add_sample(out, f, "_count", idx, num);
}

static bool series_used(const struct metrics_family *f, unsigned cell)
{
	for (unsigned i = 0; i < f->cells; i++)
		if (cell_sum(cell + i))
			return true;
	return false;
}

static void write_series(struct buf *out, const struct metrics_family *f, unsigned s)
{
	unsigned nb = f->def.label[1].name ? f->def.label[1].nvalues : 1;
	unsigned idx[METRICS_MAX_DIMS] = {s / nb, s % nb};
	unsigned cell = f->base + s * f->cells;
	bool labelled = f->def.label[0].name || f->def.label[1].name;
	char num[32];
	if (f->def.type == METRICS_GAUGE) {
		snprintf(num, sizeof(num), "%" PRId64,
			 (int64_t)atomic_load_explicit(&metrics_shards[0].cell[cell],
						       memory_order_relaxed));
		add_sample(out, f, "", idx, num);
		return;
	}
	if (labelled && !series_used(f, cell))
		return;
	if (f->def.type == METRICS_HISTOGRAM) {
		write_histogram(out, f, cell, idx);
		return;
	}
	snprintf(num, sizeof(num), "%" PRIu64, cell_sum(cell));
	add_sample(out, f, "", idx, num);
}

static void write_info(struct buf *out, struct metrics_family *f)
{
	pthread_mutex_lock(&f->info_mu);
	if (f->info[0]) {
		buf_printf(out, "%s{%s=\"", f->def.name, f->def.label[0].name);
		add_escaped(out, f->info, true);
		buf_adds(out, "\"} 1\n");
	}
	pthread_mutex_unlock(&f->info_mu);
}

static void write_family(struct buf *out, struct metrics_family *f)
{
	static const char *const types[] = {[METRICS_COUNTER] = "counter",
					    [METRICS_GAUGE] = "gauge",
					    [METRICS_HISTOGRAM] = "histogram",
					    [METRICS_INFO] = "gauge"};
	buf_printf(out, "# HELP %s ", f->def.name);
	add_escaped(out, f->def.help, false);
	buf_printf(out, "\n# TYPE %s %s\n", f->def.name, types[f->def.type]);
	if (f->def.type == METRICS_INFO) {
		write_info(out, f);
		return;
	}
	for (unsigned s = 0; s < f->nseries; s++)
		write_series(out, f, s);
}

void metrics_write(struct buf *out)
{
	pthread_mutex_lock(&metrics_scrape_mu);
	for (unsigned i = 0; i < metrics_nhooks; i++)
		metrics_hooks[i].fn(metrics_hooks[i].arg);
	for (unsigned i = 0; i < metrics_nfams; i++)
		write_family(out, &metrics_fams[i]);
	pthread_mutex_unlock(&metrics_scrape_mu);
}

void metrics_reset(void)
{
	for (unsigned i = 0; i < metrics_nfams; i++)
		pthread_mutex_destroy(&metrics_fams[i].info_mu);
	memset(metrics_shards, 0, sizeof(metrics_shards));
	metrics_nfams = metrics_ncells = metrics_nhooks = 0;
}
