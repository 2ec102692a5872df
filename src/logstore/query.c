#include "logstore/query.h"

#include <stdio.h>
#include <stdlib.h>

#include "core/xmalloc.h"
#include "logstore/lscan.h"

/* ---- splitting "<search> | <SQL>" ---- */

/* The first '|' that is not inside a "..." of the search part (\ escapes). */
static const char *find_bar(struct str q)
{
	bool quoted = false;
	for (size_t i = 0; i < q.len; i++) {
		if (q.p[i] == '\\' && i + 1 < q.len)
			i++;
		else if (q.p[i] == '"')
			quoted = !quoted;
		else if (q.p[i] == '|' && !quoted)
			return q.p + i;
	}
	return NULL;
}

static struct str trim_all(struct str s)
{
	while (s.len && (s.p[0] == ' ' || s.p[0] == '\t' || s.p[0] == '\n' || s.p[0] == '\r'))
		s.p++, s.len--;
	while (s.len && (s.p[s.len - 1] == ' ' || s.p[s.len - 1] == '\t' ||
			 s.p[s.len - 1] == '\n' || s.p[s.len - 1] == '\r'))
		s.len--;
	return s;
}

enum sls_err query_parse(struct str s, struct query *out, char detail[QUERY_DETAIL_MAX])
{
	char sd[SEARCH_DETAIL_MAX];
	detail[0] = '\0';
	out->has_sql = false;
	out->where = out->sql = STR_NULL;
	if (s.len > QUERY_MAX_LEN) {
		snprintf(detail, QUERY_DETAIL_MAX, "the query is longer than %d bytes", QUERY_MAX_LEN);
		return SLS_ERR_INVALID_QUERY_STRING;
	}
	if (!s.p)
		s = (struct str){"", 0};
	const char *bar = find_bar(s);
	out->where = trim_all((struct str){s.p, bar ? (size_t)(bar - s.p) : s.len});
	if (bar) {
		out->has_sql = true;
		out->sql = trim_all((struct str){bar + 1, s.len - (size_t)(bar + 1 - s.p)});
	}
	enum sls_err e = search_parse(out->where, &out->s, sd);
	if (e != SLS_ERR_OK)
		snprintf(detail, QUERY_DETAIL_MAX, "%s", sd);
	return e;
}

/* ---- GetLogs without SQL: the matching logs in time order, a page of them ---- */

/* A matching log: enough to order it and to find it again. */
struct ref {
	uint32_t time, ns;
	int part;
	uint32_t idx;
	int64_t id;
};

struct scan {
	const struct getlogs *g;
	struct lscan_block *x;
	struct ref *refs;
	size_t n, cap; /* refs grow by doubling up to QUERY_MAX_MATCHES */
	int64_t processed;
	bool full;
};

static int scan_block(const struct ldata_block *lb, void *arg)
{
	struct scan *s = arg;
	if (s->g->topic.len && !str_eq(lb->topic, s->g->topic))
		return 0;
	if (lscan_load(s->x, lb, &s->g->q->s) != 0)
		return LDATA_EIO;
	const struct block *b = &s->x->b;
	s->processed += (int64_t)b->n;
	for (size_t i = 0; i < b->n; i++) {
		if (!lscan_match(s->x, &s->g->q->s, i, s->g->from, s->g->to))
			continue;
		if (s->n >= QUERY_MAX_MATCHES) {
			s->full = true;
			break;
		}
		if (s->n == s->cap) {
			s->cap = s->cap ? 2 * s->cap : 1024;
			s->refs = xrealloc(s->refs, s->cap * sizeof(*s->refs));
		}
		s->refs[s->n++] = (struct ref){b->time[i], b->ns ? b->ns[i] : 0, lb->part, (uint32_t)i,
					       lb->id};
	}
	lscan_unload(s->x);
	return s->full ? 1 : 0;
}

static int ref_cmp(const void *x, const void *y)
{
	const struct ref *a = x, *b = y;
	if (a->time != b->time)
		return a->time < b->time ? -1 : 1;
	if (a->ns != b->ns)
		return a->ns < b->ns ? -1 : 1;
	if (a->part != b->part)
		return a->part < b->part ? -1 : 1;
	if (a->id != b->id)
		return a->id < b->id ? -1 : 1;
	return (a->idx > b->idx) - (a->idx < b->idx);
}

/* A JSON string of bytes that may not be UTF-8: invalid bytes become '?'. */
static json_t *jstr(struct str s)
{
	json_t *j = json_stringn(s.p ? s.p : "", s.len);
	if (j)
		return j;
	char *c = xmemdup0(s.p, s.len);
	for (size_t i = 0; i < s.len; i++)
		if ((unsigned char)c[i] >= 0x80 || c[i] == 0)
			c[i] = '?';
	j = json_stringn(c, s.len);
	free(c);
	return j;
}

struct emit {
	json_t *arr;
	struct block b;
	struct ldata_block lb;
	bool have;
	char *meta_copy;
};

static int tag_emit(struct str k, struct str v, void *arg)
{
	char name[QUERY_DETAIL_MAX + 16];
	snprintf(name, sizeof(name), LSCAN_TAG_PREFIX "%.*s",
		 (int)(k.len < QUERY_DETAIL_MAX ? k.len : QUERY_DETAIL_MAX), k.p);
	json_t *jv = jstr(v);
	if (json_object_set_new(arg, name, jv) != 0)
		json_decref(jv);
	return 0;
}

static void emit_log(struct emit *e, size_t i)
{
	json_t *o = json_object();
	char t[16];
	snprintf(t, sizeof(t), "%u", e->b.time[i]);
	json_object_set_new(o, "__time__", json_string(t));
	json_object_set_new(o, "__topic__", jstr(e->lb.topic));
	json_object_set_new(o, "__source__", jstr(e->lb.source));
	ldata_tags_each(e->lb.tags, tag_emit, o);
	for (size_t k = 0; k < e->b.nkeys; k++) {
		struct str v = e->b.vals[i * e->b.nkeys + k];
		if (!v.p)
			continue;
		char *key = xmemdup0(e->b.keys[k].p, e->b.keys[k].len);
		json_t *jv = jstr(v);
		if (json_object_set_new(o, key, jv) != 0) /* a key that is not UTF-8 */
			json_decref(jv);
		free(key);
	}
	json_array_append_new(e->arr, o);
}

/* Keeps a fetched block: its slices must outlive ldata_fetch's statement. */
static int fetch_block(const struct ldata_block *lb, void *arg)
{
	struct emit *e = arg;
	size_t meta = lb->topic.len + lb->source.len + lb->tags.len;
	e->meta_copy = xmalloc(meta + 1);
	char *p = e->meta_copy;
	e->lb = *lb;
	memcpy(p, lb->topic.p, lb->topic.len);
	e->lb.topic.p = p;
	p += lb->topic.len;
	memcpy(p, lb->source.p, lb->source.len);
	e->lb.source.p = p;
	p += lb->source.len;
	memcpy(p, lb->tags.p, lb->tags.len);
	e->lb.tags.p = p;
	e->lb.data = STR_NULL;
	if (block_decode(lb->data, &e->b) != 0)
		return LDATA_EIO;
	e->have = true;
	return 0;
}

static void emit_drop(struct emit *e)
{
	if (e->have)
		block_free(&e->b);
	free(e->meta_copy);
	e->meta_copy = NULL;
	e->have = false;
}

static int emit_page(struct ldata *d, int64_t logstore, const struct scan *s, size_t from,
		     size_t count, bool reverse, json_t *arr)
{
	struct emit e = {.arr = arr};
	int rc = 0;
	for (size_t k = 0; k < count && rc == 0; k++) {
		const struct ref *r = &s->refs[reverse ? s->n - 1 - (from + k) : from + k];
		if (!e.have || e.lb.part != r->part || e.lb.id != r->id) {
			emit_drop(&e);
			rc = ldata_fetch(d, logstore, r->part, r->id, fetch_block, &e);
			if (rc == 0 && !e.have)
				continue; /* gone since the scan (retention) */
		}
		if (rc == 0 && r->idx < e.b.n)
			emit_log(&e, r->idx);
	}
	emit_drop(&e);
	return rc;
}

/* The keys of the page's logs, in first-seen order. */
static json_t *page_keys(json_t *rows)
{
	json_t *seen = json_object(), *keys = json_array(), *row;
	size_t i;
	json_array_foreach(rows, i, row) {
		const char *k;
		json_t *v;
		json_object_foreach(row, k, v) {
			if (!json_object_get(seen, k)) {
				json_object_set_new(seen, k, json_true());
				json_array_append_new(keys, json_string(k));
			}
		}
	}
	json_decref(seen);
	return keys;
}

static enum sls_err getlogs_search(struct ldata *d, int64_t logstore, const struct getlogs *g,
				   struct getlogs_result *out)
{
	struct scan s = {.g = g, .x = xcalloc(1, sizeof(*s.x))};
	int rc = ldata_scan(d, logstore, g->from, g->to, scan_block, &s);
	lscan_unload(s.x);
	free(s.x);
	if (rc < 0) {
		free(s.refs);
		return SLS_ERR_INTERNAL_SERVER_ERROR;
	}
	if (s.n)
		qsort(s.refs, s.n, sizeof(s.refs[0]), ref_cmp);
	size_t from = (size_t)g->offset < s.n ? (size_t)g->offset : s.n;
	size_t count = s.n - from < (size_t)g->line ? s.n - from : (size_t)g->line;
	out->rows = json_array();
	rc = emit_page(d, logstore, &s, from, count, g->reverse, out->rows);
	out->keys = page_keys(out->rows);
	out->count = (int64_t)json_array_size(out->rows);
	out->processed = s.processed;
	out->complete = !s.full;
	free(s.refs);
	return rc < 0 ? SLS_ERR_INTERNAL_SERVER_ERROR : SLS_ERR_OK;
}

enum sls_err query_getlogs(struct ldata *d, int64_t logstore, const struct getlogs *g,
			   struct getlogs_result *out, char detail[QUERY_DETAIL_MAX])
{
	memset(out, 0, sizeof(*out));
	detail[0] = '\0';
	if (!g->q->has_sql)
		return getlogs_search(d, logstore, g, out);
	struct sql_ldata l = {d, logstore};
	struct sql_source src = {sql_blocks_ldata(&l), g->from, g->to, g->topic, &g->q->s,
				 g->logstore};
	struct sql_result r;
	enum sls_err e = sql_run(&src, g->q->sql, &r, detail);
	out->processed = r.processed;
	if (e != SLS_ERR_OK)
		return e;
	*out = (struct getlogs_result){r.rows, r.keys, (int64_t)json_array_size(r.rows),
				       r.processed, r.complete};
	return SLS_ERR_OK;
}

void getlogs_result_free(struct getlogs_result *r)
{
	json_decref(r->rows);
	json_decref(r->keys);
	r->rows = r->keys = NULL;
}

/* ---- GetHistograms ---- */

static const int64_t hist_steps[] = {
	1, 5, 10, 30, 60, 300, 600, 900, 1800, 3600, 7200, 14400, 21600, 43200, 86400,
	7 * 86400, 30 * 86400,
};

int64_t query_hist_interval(int64_t from, int64_t to, int64_t interval)
{
	int64_t span = to > from ? to - from : 1;
	if (interval > 0)
		return (span + interval - 1) / interval + 1 <= QUERY_HIST_MAX_BUCKETS ? interval : 0;
	size_t n = sizeof(hist_steps) / sizeof(hist_steps[0]);
	for (size_t i = 0; i < n; i++)
		if ((span + hist_steps[i] - 1) / hist_steps[i] + 1 <= QUERY_HIST_AUTO_BUCKETS)
			return hist_steps[i];
	int64_t last = hist_steps[n - 1];
	return (span / QUERY_HIST_AUTO_BUCKETS + last) / last * last;
}

struct hist {
	const struct histogram *h;
	struct lscan_block *x;
	int64_t width, first; /* first: from, aligned down */
	int64_t *counts;
	size_t n;
};

static int hist_block(const struct ldata_block *lb, void *arg)
{
	struct hist *s = arg;
	if (s->h->topic.len && !str_eq(lb->topic, s->h->topic))
		return 0;
	if (lscan_load(s->x, lb, &s->h->q->s) != 0)
		return LDATA_EIO;
	for (size_t i = 0; i < s->x->b.n; i++)
		if (lscan_match(s->x, &s->h->q->s, i, s->h->from, s->h->to))
			s->counts[(s->x->b.time[i] - s->first) / s->width]++;
	lscan_unload(s->x);
	return 0;
}

int query_histogram(struct ldata *d, int64_t logstore, const struct histogram *h,
		    struct histogram_result *out)
{
	struct hist s = {.h = h, .x = xcalloc(1, sizeof(*s.x))};
	memset(out, 0, sizeof(*out));
	s.width = query_hist_interval(h->from, h->to, h->interval);
	s.first = h->from - h->from % s.width;
	s.n = h->to > h->from ? (size_t)((h->to - 1 - s.first) / s.width + 1) : 0;
	s.counts = xcalloc(s.n ? s.n : 1, sizeof(int64_t));
	int rc = s.n ? ldata_scan(d, logstore, h->from, h->to, hist_block, &s) : 0;
	lscan_unload(s.x);
	free(s.x);
	out->buckets = json_array();
	for (size_t i = 0; i < s.n && rc >= 0; i++) {
		int64_t b0 = s.first + (int64_t)i * s.width, b1 = b0 + s.width;
		json_array_append_new(out->buckets,
				      json_pack("{s:I,s:I,s:I,s:s}", "from", (json_int_t)(b0 > h->from ? b0 : h->from),
						"to", (json_int_t)(b1 < h->to ? b1 : h->to), "count",
						(json_int_t)s.counts[i], "progress", "Complete"));
		out->count += s.counts[i];
	}
	out->complete = true;
	free(s.counts);
	return rc < 0 ? LDATA_EIO : 0;
}
