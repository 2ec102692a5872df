#include "logstore/lscan.h"

#include <stdio.h>
#include <strings.h>

static bool key_ieq(struct str a, struct str b)
{
	return a.len == b.len && (a.len == 0 || strncasecmp(a.p, b.p, a.len) == 0);
}

struct tag_find {
	struct str key, value;
	bool found, exact;
};

static int tag_find(struct str k, struct str v, void *arg)
{
	struct tag_find *f = arg;
	if (str_eq(k, f->key) || (!f->exact && key_ieq(k, f->key))) {
		f->value = v;
		f->found = true;
		f->exact |= str_eq(k, f->key);
	}
	return 0;
}

void lscan_resolve(const struct lscan_block *x, struct str key, struct lscan_col *out)
{
	size_t tp = strlen(LSCAN_TAG_PREFIX);
	*out = (struct lscan_col){.kind = LSCAN_ABSENT};
	if (str_caseeq(key, "__time__")) {
		out->kind = LSCAN_TIME;
	} else if (str_caseeq(key, "__topic__") || str_caseeq(key, "__source__")) {
		out->kind = LSCAN_CONST;
		out->value = str_caseeq(key, "__topic__") ? x->meta->topic : x->meta->source;
	} else if (key.len > tp && !strncasecmp(key.p, LSCAN_TAG_PREFIX, tp)) {
		struct tag_find f = {{key.p + tp, key.len - tp}, STR_NULL, false, false};
		ldata_tags_each(x->meta->tags, tag_find, &f);
		if (f.found)
			*out = (struct lscan_col){.kind = LSCAN_CONST, .value = f.value};
	} else {
		for (size_t k = 0; k < x->b.nkeys && out->kind != LSCAN_KEY; k++)
			if (str_eq(x->b.keys[k], key))
				*out = (struct lscan_col){.kind = LSCAN_KEY, .k = k};
		for (size_t k = 0; k < x->b.nkeys && out->kind != LSCAN_KEY; k++)
			if (key_ieq(x->b.keys[k], key))
				*out = (struct lscan_col){.kind = LSCAN_KEY, .k = k};
	}
}

struct str lscan_value(struct lscan_block *x, const struct lscan_col *c, size_t i)
{
	switch (c->kind) {
	case LSCAN_KEY: return x->b.vals[i * x->b.nkeys + c->k];
	case LSCAN_CONST: return c->value;
	case LSCAN_TIME: {
		int n = snprintf(x->tmp, sizeof(x->tmp), "%u", x->b.time[i]);
		return (struct str){x->tmp, (size_t)n};
	}
	case LSCAN_ABSENT: break;
	}
	return STR_NULL;
}

int lscan_load(struct lscan_block *x, const struct ldata_block *lb, const struct search *s)
{
	x->meta = lb;
	x->loaded = false;
	if (block_decode(lb->data, &x->b) != 0)
		return -1;
	x->loaded = true;
	for (size_t n = 0; s && n < s->n; n++)
		if (s->node[n].op == SEARCH_KEY || s->node[n].op == SEARCH_CMP ||
		    s->node[n].op == SEARCH_RANGE)
			lscan_resolve(x, s->node[n].key, &x->slot[n]);
	return 0;
}

void lscan_unload(struct lscan_block *x)
{
	if (x->loaded)
		block_free(&x->b);
	x->loaded = false;
}

struct row {
	struct lscan_block *x;
	size_t i;
};

static struct str row_value(const void *arg, size_t node)
{
	const struct row *r = arg;
	return lscan_value(r->x, &r->x->slot[node], r->i);
}

struct tag_any {
	const struct search_node *n;
	bool hit;
};

static int tag_any(struct str k, struct str v, void *arg)
{
	struct tag_any *t = arg;
	t->hit |= search_text_match(t->n, v);
	return t->hit;
}

/* Full text: any value of the log, its topic, source or tags. */
static bool row_any(const void *arg, const struct search_node *n)
{
	const struct row *r = arg;
	const struct block *b = &r->x->b;
	for (size_t k = 0; k < b->nkeys; k++)
		if (search_text_match(n, b->vals[r->i * b->nkeys + k]))
			return true;
	if (search_text_match(n, r->x->meta->topic) || search_text_match(n, r->x->meta->source))
		return true;
	struct tag_any t = {n, false};
	ldata_tags_each(r->x->meta->tags, tag_any, &t);
	return t.hit;
}

bool lscan_match(struct lscan_block *x, const struct search *s, size_t i, int64_t from, int64_t to)
{
	if (x->b.time[i] < from || x->b.time[i] >= to)
		return false;
	if (!s || search_is_all(s))
		return true;
	struct row r = {x, i};
	struct search_row sr = {row_value, row_any, &r};
	return search_match(s, &sr);
}
