#include "logstore/search.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>

#define SEARCH_TAG_PREFIX "__tag__:"
#define SEARCH_SHOW 40 /* bytes of the query quoted in an error */

struct sp {
	const char *p, *end;
	char *arena;
	struct search *s;
	char *detail;
	int depth;
};

static int sp_fail(struct sp *q, const char *what)
{
	int left = (int)(q->end - q->p);
	if (left > 0)
		snprintf(q->detail, SEARCH_DETAIL_MAX, "%s at '%.*s'", what,
			 left < SEARCH_SHOW ? left : SEARCH_SHOW, q->p);
	else
		snprintf(q->detail, SEARCH_DETAIL_MAX, "%s at the end of the search", what);
	return -1;
}

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static void skip_spaces(struct sp *q)
{
	while (q->p < q->end && is_space(*q->p))
		q->p++;
}

/* Characters that end a key or a full-text word; a value also takes ':<>=[]'. */
static bool ends_word(char c, bool value)
{
	if (is_space(c) || c == '(' || c == ')' || c == '"')
		return true;
	return !value && (c == ':' || c == '<' || c == '>' || c == '=' || c == '[' || c == ']');
}

static bool at_word(struct sp *q, const char *w)
{
	size_t n = strlen(w);
	if ((size_t)(q->end - q->p) < n || strncasecmp(q->p, w, n) != 0)
		return false;
	return q->p + n == q->end || ends_word(q->p[n], false);
}

static int new_node(struct sp *q, struct search_node n)
{
	if (q->s->n >= SEARCH_MAX_NODES) {
		snprintf(q->detail, SEARCH_DETAIL_MAX, "more than %d terms and operators",
			 SEARCH_MAX_NODES);
		return -1;
	}
	q->s->node[q->s->n] = n;
	return (int)q->s->n++;
}

/* A quoted string ("..." with \ escapes) or a bare word, unescaped into the arena. */
static int read_atom(struct sp *q, struct str *out, bool value, bool *quoted)
{
	char *o = q->arena;
	*quoted = q->p < q->end && *q->p == '"';
	if (*quoted) {
		for (q->p++; q->p < q->end && *q->p != '"'; q->p++) {
			if (*q->p == '\\' && q->p + 1 < q->end)
				q->p++;
			*o++ = *q->p;
		}
		if (q->p >= q->end)
			return sp_fail(q, "an unterminated quote");
		q->p++;
	} else {
		if (!value && (size_t)(q->end - q->p) > strlen(SEARCH_TAG_PREFIX) &&
		    !memcmp(q->p, SEARCH_TAG_PREFIX, strlen(SEARCH_TAG_PREFIX)))
			for (size_t i = 0; i < strlen(SEARCH_TAG_PREFIX); i++)
				*o++ = *q->p++; /* "__tag__:name" is one key */
		while (q->p < q->end && !ends_word(*q->p, value)) {
			if (*q->p == '\\' && q->p + 1 < q->end) {
				q->p++;
				*quoted = true; /* an escaped '*' or '?' is literal */
			}
			*o++ = *q->p++;
		}
	}
	*out = (struct str){q->arena, (size_t)(o - q->arena)};
	q->arena = o;
	return 0;
}

int search_number(struct str v, double *out)
{
	char b[SEARCH_MAX_NUMBER + 1], *e;
	if (v.len == 0 || v.len > SEARCH_MAX_NUMBER)
		return -1;
	memcpy(b, v.p, v.len);
	b[v.len] = '\0';
	if (!isdigit((unsigned char)b[0]) && b[0] != '-' && b[0] != '+' && b[0] != '.')
		return -1; /* no "inf", "nan", hex */
	*out = strtod(b, &e);
	return *e == '\0' && isfinite(*out) ? 0 : -1;
}

static int read_number(struct sp *q, double *out)
{
	const char *start = q->p;
	skip_spaces(q);
	start = q->p;
	while (q->p < q->end && !ends_word(*q->p, false) && *q->p != ',')
		q->p++;
	if (search_number((struct str){start, (size_t)(q->p - start)}, out) != 0) {
		q->p = start;
		return sp_fail(q, "a number expected");
	}
	return 0;
}

struct cmp_op {
	const char *text;
	enum search_cmp cmp;
};

static const struct cmp_op cmp_ops[] = {
	{">=", SEARCH_GE}, {"<=", SEARCH_LE}, {">", SEARCH_GT}, {"<", SEARCH_LT}, {"=", SEARCH_EQ},
};

static int term_cmp(struct sp *q, struct search_node *n)
{
	for (size_t i = 0; i < sizeof(cmp_ops) / sizeof(cmp_ops[0]); i++) {
		size_t l = strlen(cmp_ops[i].text);
		if ((size_t)(q->end - q->p) >= l && !memcmp(q->p, cmp_ops[i].text, l)) {
			q->p += l;
			n->op = SEARCH_CMP;
			n->cmp = cmp_ops[i].cmp;
			return read_number(q, &n->num);
		}
	}
	return 1; /* not a comparison */
}

/* key in [a b], with '(' / ')' for open ends. */
static int term_range(struct sp *q, struct search_node *n)
{
	q->p += 2;
	skip_spaces(q);
	n->op = SEARCH_RANGE;
	n->lo_open = *q->p == '(';
	q->p++;
	if (read_number(q, &n->num) != 0)
		return -1;
	skip_spaces(q);
	if (q->p < q->end && *q->p == ',')
		q->p++;
	if (read_number(q, &n->num2) != 0)
		return -1;
	skip_spaces(q);
	if (q->p >= q->end || (*q->p != ']' && *q->p != ')'))
		return sp_fail(q, "a range needs ']' or ')'");
	n->hi_open = *q->p++ == ')';
	return 0;
}

static bool at_in_range(struct sp *q)
{
	if (!at_word(q, "in"))
		return false;
	const char *p = q->p + 2;
	while (p < q->end && is_space(*p))
		p++;
	return p < q->end && (*p == '[' || *p == '(');
}

static int check_fuzzy(struct sp *q, const struct search_node *n)
{
	if (n->phrase || !n->value.len || (n->value.p[0] != '*' && n->value.p[0] != '?'))
		return 0;
	return sp_fail(q, "a fuzzy term cannot start with '*' or '?'");
}

static int term_value(struct sp *q, struct search_node *n)
{
	q->p++; /* ':' */
	skip_spaces(q);
	n->op = SEARCH_KEY;
	if (q->p >= q->end || *q->p == ')')
		return sp_fail(q, "a value expected after ':'");
	if (read_atom(q, &n->value, true, &n->phrase) != 0)
		return -1;
	n->any = !n->phrase && n->value.len == 1 && n->value.p[0] == '*';
	return n->any ? 0 : check_fuzzy(q, n);
}

static int parse_term(struct sp *q)
{
	struct search_node n = {.op = SEARCH_TEXT, .a = -1, .b = -1};
	const char *start = q->p;
	if (read_atom(q, &n.key, false, &n.phrase) != 0)
		return -1;
	if (!n.phrase && n.key.len == 0)
		return sp_fail(q, "a term expected");
	const char *after = q->p;
	skip_spaces(q);
	int rc = 1;
	if (q->p < q->end && *q->p == ':')
		rc = term_value(q, &n);
	else if (q->p < q->end)
		rc = at_in_range(q) ? term_range(q, &n) : term_cmp(q, &n);
	if (rc < 0)
		return -1;
	if (rc == 1) { /* a full-text word or phrase */
		q->p = after;
		n.value = n.key;
		n.key = STR_NULL;
		if (check_fuzzy(q, &n) != 0) {
			q->p = start;
			return sp_fail(q, "a fuzzy term cannot start with '*' or '?'");
		}
	}
	return new_node(q, n);
}

static int parse_or(struct sp *q);

static int parse_primary(struct sp *q)
{
	skip_spaces(q);
	if (q->p >= q->end)
		return sp_fail(q, "a term expected");
	if (*q->p == '(') {
		q->p++;
		int r = parse_or(q);
		skip_spaces(q);
		if (r < 0)
			return -1;
		if (q->p >= q->end || *q->p != ')')
			return sp_fail(q, "')' expected");
		q->p++;
		return r;
	}
	if (*q->p == ')')
		return sp_fail(q, "an unbalanced ')'");
	if (*q->p == '*' && (q->p + 1 == q->end || ends_word(q->p[1], false))) {
		q->p++;
		return new_node(q, (struct search_node){.op = SEARCH_ALL, .a = -1, .b = -1});
	}
	return parse_term(q);
}

static int parse_unary(struct sp *q)
{
	skip_spaces(q);
	if (!at_word(q, "not"))
		return parse_primary(q);
	if (++q->depth > SEARCH_MAX_DEPTH)
		return sp_fail(q, "nested deeper than " SEARCH_DEPTH_TEXT);
	q->p += 3;
	int a = parse_unary(q);
	q->depth--;
	return a < 0 ? -1 : new_node(q, (struct search_node){.op = SEARCH_NOT, .a = a, .b = -1});
}

static int parse_and(struct sp *q)
{
	int left = parse_unary(q);
	for (;;) {
		if (left < 0)
			return -1;
		skip_spaces(q);
		if (q->p >= q->end || *q->p == ')' || at_word(q, "or"))
			return left;
		if (at_word(q, "and"))
			q->p += 3;
		int right = parse_unary(q);
		if (right < 0)
			return -1;
		left = new_node(q, (struct search_node){.op = SEARCH_AND, .a = left, .b = right});
	}
}

static int parse_or(struct sp *q)
{
	if (++q->depth > SEARCH_MAX_DEPTH)
		return sp_fail(q, "nested deeper than " SEARCH_DEPTH_TEXT);
	int left = parse_and(q);
	while (left >= 0) {
		skip_spaces(q);
		if (!at_word(q, "or"))
			break;
		q->p += 2;
		int right = parse_and(q);
		left = right < 0 ? -1
				 : new_node(q, (struct search_node){.op = SEARCH_OR, .a = left, .b = right});
	}
	q->depth--;
	return left;
}

enum sls_err search_parse(struct str s, struct search *out, char detail[SEARCH_DETAIL_MAX])
{
	out->n = 0;
	out->root = -1;
	detail[0] = '\0';
	if (s.len > SEARCH_MAX_LEN) {
		snprintf(detail, SEARCH_DETAIL_MAX, "the search is longer than %d bytes", SEARCH_MAX_LEN);
		return SLS_ERR_INVALID_QUERY_STRING;
	}
	struct sp q = {s.p ? s.p : "", (s.p ? s.p : "") + s.len, out->arena, out, detail, 0};
	skip_spaces(&q);
	if (q.p == q.end) {
		out->root = new_node(&q, (struct search_node){.op = SEARCH_ALL, .a = -1, .b = -1});
		return SLS_ERR_OK;
	}
	out->root = parse_or(&q);
	if (out->root >= 0) {
		skip_spaces(&q);
		if (q.p < q.end) {
			out->root = -1;
			sp_fail(&q, *q.p == ')' ? "an unbalanced ')'" : "an operator or term expected");
		}
	}
	return out->root >= 0 ? SLS_ERR_OK : SLS_ERR_INVALID_QUERY_STRING;
}

bool search_is_all(const struct search *s)
{
	return s->root >= 0 && s->node[s->root].op == SEARCH_ALL;
}

/* ---- matching ---- */

static bool is_delim(char c)
{
	return memchr(SEARCH_DELIMS, c, sizeof(SEARCH_DELIMS) - 1) != NULL;
}

/* The next token of [*p, end), or an empty slice at the end. */
static struct str next_token(const char **p, const char *end, bool keep_fuzzy)
{
	while (*p < end && is_delim(**p) && !(keep_fuzzy && **p == '?'))
		(*p)++;
	const char *s = *p;
	while (*p < end && (!is_delim(**p) || (keep_fuzzy && **p == '?')))
		(*p)++;
	return (struct str){s, (size_t)(*p - s)};
}

/* Case-insensitive glob ('*' any run, '?' one byte), iterative: a failed
 * match after a '*' resumes one byte further, so it is O(len(t) x len(g)). */
static bool glob_eq(struct str g, struct str t)
{
	size_t gi = 0, ti = 0, star = SIZE_MAX, mark = 0;
	while (ti < t.len) {
		if (gi < g.len && (g.p[gi] == '?' || tolower((unsigned char)g.p[gi]) ==
							tolower((unsigned char)t.p[ti]))) {
			gi++;
			ti++;
		} else if (gi < g.len && g.p[gi] == '*') {
			star = gi++;
			mark = ti;
		} else if (star != SIZE_MAX) {
			gi = star + 1;
			ti = ++mark;
		} else {
			return false;
		}
	}
	while (gi < g.len && g.p[gi] == '*')
		gi++;
	return gi == g.len;
}

static bool token_eq(struct str q, struct str t, bool fuzzy)
{
	if (fuzzy)
		return glob_eq(q, t);
	return q.len == t.len && strncasecmp(q.p, t.p, q.len) == 0;
}

/* Do the query's tokens appear, consecutively, among v's tokens? */
static bool tokens_at(struct str qv, bool fuzzy, const char *vp, const char *vend)
{
	const char *qp = qv.p, *qend = qv.p + qv.len;
	for (;;) {
		struct str qt = next_token(&qp, qend, fuzzy);
		if (!qt.len)
			return true;
		struct str vt = next_token(&vp, vend, false);
		if (!vt.len || !token_eq(qt, vt, fuzzy))
			return false;
	}
}

bool search_text_match(const struct search_node *n, struct str v)
{
	if (n->any)
		return v.p != NULL;
	if (!v.p)
		return false;
	bool fuzzy = !n->phrase && (memchr(n->value.p ? n->value.p : "", '*', n->value.len) ||
				    memchr(n->value.p ? n->value.p : "", '?', n->value.len));
	const char *qp = n->value.p ? n->value.p : "";
	if (!next_token(&qp, qp + n->value.len, fuzzy).len) /* no tokens: an empty value */
		return !next_token(&(const char *){v.p}, v.p + v.len, false).len;
	const char *vp = v.p, *vend = v.p + v.len;
	while (vp < vend) {
		while (vp < vend && is_delim(*vp))
			vp++;
		if (vp < vend && tokens_at(n->value, fuzzy, vp, vend))
			return true;
		while (vp < vend && !is_delim(*vp))
			vp++;
	}
	return false;
}

static bool cmp_match(const struct search_node *n, struct str v)
{
	double x;
	if (!v.p || search_number(v, &x) != 0)
		return false;
	if (n->op == SEARCH_RANGE)
		return (n->lo_open ? x > n->num : x >= n->num) && (n->hi_open ? x < n->num2 : x <= n->num2);
	switch (n->cmp) {
	case SEARCH_LT: return x < n->num;
	case SEARCH_LE: return x <= n->num;
	case SEARCH_GT: return x > n->num;
	case SEARCH_GE: return x >= n->num;
	case SEARCH_EQ: return x == n->num;
	}
	return false;
}

/* Depth is bounded by the parser (SEARCH_MAX_DEPTH nested groups, and
 * and/or chains are left-deep: at most SEARCH_MAX_NODES). */
static bool match_node(const struct search *s, int i, const struct search_row *r)
{
	const struct search_node *n = &s->node[i];
	switch (n->op) {
	case SEARCH_ALL: return true;
	case SEARCH_TEXT: return r->any(r->row, n);
	case SEARCH_KEY: return search_text_match(n, r->value(r->row, (size_t)i));
	case SEARCH_CMP:
	case SEARCH_RANGE: return cmp_match(n, r->value(r->row, (size_t)i));
	case SEARCH_AND: return match_node(s, n->a, r) && match_node(s, n->b, r);
	case SEARCH_OR: return match_node(s, n->a, r) || match_node(s, n->b, r);
	case SEARCH_NOT: return !match_node(s, n->a, r);
	}
	return false;
}

bool search_match(const struct search *s, const struct search_row *r)
{
	return s->root >= 0 && match_node(s, s->root, r);
}
