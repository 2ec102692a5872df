#include "logstore/query.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/xmalloc.h"

#define QUERY_TAG_PREFIX "__tag__:"

struct qparse {
	const char *p, *end;
	char *arena, *arena_end;
	char *detail;
};

static void skip_spaces(struct qparse *q)
{
	while (q->p < q->end && (*q->p == ' ' || *q->p == '\t' || *q->p == '\n' || *q->p == '\r'))
		q->p++;
}

static bool is_word_char(char c)
{
	return c != ' ' && c != '\t' && c != '\n' && c != '\r' && c != ':' && c != '"' &&
	       c != '(' && c != ')' && c != '|';
}

/* A quoted string ("..." with \ escapes) or a bare word, copied into the arena. */
static int read_atom(struct qparse *q, struct str *out, bool is_key)
{
	char *o = q->arena;
	if (q->p < q->end && *q->p == '"') {
		for (q->p++; q->p < q->end && *q->p != '"'; q->p++) {
			if (*q->p == '\\' && q->p + 1 < q->end)
				q->p++;
			*o++ = *q->p;
		}
		if (q->p >= q->end)
			return snprintf(q->detail, QUERY_DETAIL_MAX, "an unterminated quote"), -1;
		q->p++;
	} else {
		/* "__tag__:name" is one key: its first ':' belongs to it. */
		if (is_key && (size_t)(q->end - q->p) > strlen(QUERY_TAG_PREFIX) &&
		    !memcmp(q->p, QUERY_TAG_PREFIX, strlen(QUERY_TAG_PREFIX)))
			for (size_t i = 0; i < strlen(QUERY_TAG_PREFIX); i++)
				*o++ = *q->p++;
		while (q->p < q->end && is_word_char(*q->p))
			*o++ = *q->p++;
	}
	*out = (struct str){q->arena, (size_t)(o - q->arena)};
	q->arena = o;
	return 0;
}

static int read_term(struct qparse *q, struct query *out)
{
	struct query_term t;
	const char *start = q->p;
	if (read_atom(q, &t.key, true) != 0)
		return -1;
	skip_spaces(q);
	if (q->p >= q->end || *q->p != ':' || !t.key.len) {
		snprintf(q->detail, QUERY_DETAIL_MAX,
			 "'%.*s': only '*' and key:value terms joined by 'and' are supported so far",
			 (int)((q->p - start) < 40 ? q->p - start : 40), start);
		return -1;
	}
	q->p++;
	skip_spaces(q);
	if (read_atom(q, &t.value, false) != 0)
		return -1;
	if (memchr(t.value.p, '*', t.value.len) || memchr(t.value.p, '?', t.value.len)) {
		snprintf(q->detail, QUERY_DETAIL_MAX, "fuzzy values ('*', '?') are not supported yet");
		return -1;
	}
	if (out->n >= QUERY_MAX_TERMS) {
		snprintf(q->detail, QUERY_DETAIL_MAX, "more than %d terms", QUERY_MAX_TERMS);
		return -1;
	}
	out->t[out->n++] = t;
	return 0;
}

static bool at_and(struct qparse *q)
{
	if (q->end - q->p < 4 || strncasecmp(q->p, "and", 3) != 0 ||
	    (q->p[3] != ' ' && q->p[3] != '\t'))
		return false;
	q->p += 3;
	return true;
}

enum sls_err query_parse(struct str s, struct query *out, char detail[QUERY_DETAIL_MAX])
{
	out->n = 0;
	detail[0] = '\0';
	if (s.len > QUERY_MAX_LEN) {
		snprintf(detail, QUERY_DETAIL_MAX, "longer than %d bytes", QUERY_MAX_LEN);
		return SLS_ERR_INVALID_QUERY_STRING;
	}
	if (memchr(s.p ? s.p : "", '|', s.len)) {
		snprintf(detail, QUERY_DETAIL_MAX, "SQL after '|' is not supported yet");
		return SLS_ERR_INVALID_QUERY_STRING;
	}
	struct qparse q = {s.p, s.p + s.len, out->arena, out->arena + sizeof(out->arena), detail};
	skip_spaces(&q);
	if (q.p < q.end && *q.p == '*') {
		q.p++;
		skip_spaces(&q);
		if (q.p == q.end)
			return SLS_ERR_OK;
		if (!at_and(&q)) {
			snprintf(detail, QUERY_DETAIL_MAX, "'*' must stand alone or be joined by 'and'");
			return SLS_ERR_INVALID_QUERY_STRING;
		}
		skip_spaces(&q);
	}
	while (q.p < q.end) {
		if (read_term(&q, out) != 0)
			return SLS_ERR_INVALID_QUERY_STRING;
		skip_spaces(&q);
		if (q.p < q.end && !at_and(&q)) {
			snprintf(detail, QUERY_DETAIL_MAX,
				 "'%.*s': only 'and' joins terms so far", (int)(q.end - q.p < 40 ? q.end - q.p : 40), q.p);
			return SLS_ERR_INVALID_QUERY_STRING;
		}
		skip_spaces(&q);
	}
	return SLS_ERR_OK;
}

/* A matching log: enough to order it and to find it again. */
struct ref {
	uint32_t time, ns;
	int part;
	uint32_t idx;
	int64_t id;
};

struct scan {
	const struct getlogs *g;
	struct ref *refs;
	size_t n, cap; /* refs grow by doubling up to QUERY_MAX_MATCHES */
	int64_t processed;
	bool full;
};

static bool ieq(struct str a, struct str b)
{
	return a.len == b.len && (a.len == 0 || strncasecmp(a.p, b.p, a.len) == 0);
}

struct tag_find {
	struct str key, value;
	bool found;
};

static int tag_match(struct str k, struct str v, void *arg)
{
	struct tag_find *f = arg;
	if (str_eq(k, f->key)) {
		f->value = v;
		f->found = true;
	}
	return 0;
}

/* The value of key in log i of a block, or .p NULL. */
static struct str value_of(const struct ldata_block *lb, const struct block *b, size_t i,
			   struct str key)
{
	if (str_eqc(key, "__topic__"))
		return lb->topic;
	if (str_eqc(key, "__source__"))
		return lb->source;
	size_t tp = strlen(QUERY_TAG_PREFIX);
	if (key.len > tp && !memcmp(key.p, QUERY_TAG_PREFIX, tp)) {
		struct tag_find f = {{key.p + tp, key.len - tp}, STR_NULL, false};
		ldata_tags_each(lb->tags, tag_match, &f);
		return f.found ? f.value : STR_NULL;
	}
	for (size_t k = 0; k < b->nkeys; k++)
		if (str_eq(b->keys[k], key))
			return b->vals[i * b->nkeys + k];
	return STR_NULL;
}

static bool log_matches(const struct getlogs *g, const struct ldata_block *lb,
			const struct block *b, size_t i)
{
	if (b->time[i] < g->from || b->time[i] >= g->to)
		return false;
	for (size_t t = 0; t < g->q->n; t++) {
		struct str v = value_of(lb, b, i, g->q->t[t].key);
		if (!v.p || !ieq(v, g->q->t[t].value))
			return false;
	}
	return true;
}

static int scan_block(const struct ldata_block *lb, void *arg)
{
	struct scan *s = arg;
	struct block b;
	if (s->g->topic.len && !str_eq(lb->topic, s->g->topic))
		return 0;
	if (block_decode(lb->data, &b) != 0)
		return LDATA_EIO;
	s->processed += (int64_t)b.n;
	for (size_t i = 0; i < b.n; i++) {
		if (!log_matches(s->g, lb, &b, i))
			continue;
		if (s->n >= QUERY_MAX_MATCHES) {
			s->full = true;
			break;
		}
		if (s->n == s->cap) {
			s->cap = s->cap ? 2 * s->cap : 1024;
			s->refs = xrealloc(s->refs, s->cap * sizeof(*s->refs));
		}
		s->refs[s->n++] = (struct ref){b.time[i], b.ns ? b.ns[i] : 0, lb->part, (uint32_t)i,
					       lb->id};
	}
	block_free(&b);
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
	const struct ref *want;
	struct block b;
	struct ldata_block lb;
	bool have;
	char *data_copy;
	char *meta_copy;
};

static int tag_emit(struct str k, struct str v, void *arg)
{
	char name[QUERY_DETAIL_MAX + 16];
	snprintf(name, sizeof(name), QUERY_TAG_PREFIX "%.*s", (int)(k.len < QUERY_DETAIL_MAX ? k.len : QUERY_DETAIL_MAX), k.p);
	json_object_set_new(arg, name, jstr(v));
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

int query_getlogs(struct ldata *d, int64_t logstore, const struct getlogs *g,
		  struct getlogs_result *out)
{
	struct scan s = {.g = g};
	int rc = ldata_scan(d, logstore, g->from, g->to, scan_block, &s);
	memset(out, 0, sizeof(*out));
	if (rc < 0) {
		free(s.refs);
		return LDATA_EIO;
	}
	if (s.n)
		qsort(s.refs, s.n, sizeof(s.refs[0]), ref_cmp);
	size_t from = (size_t)g->offset < s.n ? (size_t)g->offset : s.n;
	size_t count = s.n - from < (size_t)g->line ? s.n - from : (size_t)g->line;
	json_t *arr = json_array();
	rc = emit_page(d, logstore, &s, from, count, g->reverse, arr);
	out->json = json_dumps(arr, JSON_COMPACT);
	out->len = out->json ? strlen(out->json) : 0;
	out->count = (int64_t)json_array_size(arr);
	out->processed = s.processed;
	out->complete = !s.full;
	json_decref(arr);
	free(s.refs);
	return rc < 0 || !out->json ? LDATA_EIO : 0;
}
