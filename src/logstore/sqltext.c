#include "logstore/sqltext.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>

#include "core/xmalloc.h"

enum tok { T_END, T_SPACE, T_STRING, T_QIDENT, T_WORD, T_NUMBER, T_PUNCT, T_BAD };

struct lex {
	const char *p, *end;
	struct str t;  /* the current token's text */
	enum tok kind;
};

static bool word_start(unsigned char c)
{
	return isalpha(c) || c == '_' || c >= 0x80;
}

static bool word_char(unsigned char c)
{
	return isalnum(c) || c == '_' || c == '$' || c >= 0x80;
}

/* A run quoted by q with qq as its escape ('' "" ``); T_BAD if unterminated. */
static enum tok quoted(struct lex *l, char q, enum tok kind)
{
	for (l->p++; l->p < l->end; l->p++) {
		if (*l->p != q)
			continue;
		if (l->p + 1 < l->end && l->p[1] == q) {
			l->p++;
			continue;
		}
		l->p++;
		return kind;
	}
	return T_BAD;
}

static enum tok comment(struct lex *l)
{
	if (l->p[1] == '-') {
		while (l->p < l->end && *l->p != '\n')
			l->p++;
		return T_SPACE;
	}
	for (l->p += 2; l->p + 1 < l->end; l->p++)
		if (l->p[0] == '*' && l->p[1] == '/') {
			l->p += 2;
			return T_SPACE;
		}
	return T_BAD;
}

static enum tok scan(struct lex *l)
{
	unsigned char c = (unsigned char)*l->p;
	if (isspace(c)) {
		while (l->p < l->end && isspace((unsigned char)*l->p))
			l->p++;
		return T_SPACE;
	}
	if (l->p + 1 < l->end && ((c == '-' && l->p[1] == '-') || (c == '/' && l->p[1] == '*')))
		return comment(l);
	if (c == '\'')
		return quoted(l, '\'', T_STRING);
	if (c == '"' || c == '`')
		return quoted(l, (char)c, T_QIDENT);
	if (word_start(c)) {
		while (l->p < l->end && word_char((unsigned char)*l->p))
			l->p++;
		return T_WORD;
	}
	if (isdigit(c) || (c == '.' && l->p + 1 < l->end && isdigit((unsigned char)l->p[1]))) {
		for (l->p++; l->p < l->end; l->p++) {
			unsigned char d = (unsigned char)*l->p;
			bool sign = (d == '+' || d == '-') && (l->p[-1] == 'e' || l->p[-1] == 'E');
			if (!isalnum(d) && d != '.' && !sign)
				break;
		}
		return T_NUMBER;
	}
	l->p++;
	return T_PUNCT;
}

static enum tok next(struct lex *l)
{
	const char *s = l->p;
	l->kind = l->p >= l->end ? T_END : scan(l);
	l->t = (struct str){s, (size_t)(l->p - s)};
	return l->kind;
}

/* The next token that is not space or a comment, without consuming it. */
static struct lex peek(const struct lex *l)
{
	struct lex c = *l;
	while (next(&c) == T_SPACE)
		;
	return c;
}

static bool is_word(const struct lex *l, const char *w)
{
	return l->kind == T_WORD && str_caseeq(l->t, w);
}

/* Words that are syntax, never a log's key. */
static const char *const sql_keywords[] = {
	"select", "from", "where", "group", "by", "having", "order", "limit", "offset", "as",
	"and", "or", "not", "in", "is", "null", "like", "glob", "between", "case", "when", "then",
	"else", "end", "distinct", "all", "asc", "desc", "on", "join", "left", "right", "full",
	"inner", "outer", "cross", "natural", "using", "union", "intersect", "except", "exists",
	"cast", "collate", "escape", "true", "false", "with", "recursive", "over", "partition",
	"window", "filter", "nulls", "first", "last", "current_time", "current_date",
	"current_timestamp", "isnull", "notnull", "values", "escape",
};

static bool is_keyword(struct str w)
{
	for (size_t i = 0; i < sizeof(sql_keywords) / sizeof(sql_keywords[0]); i++)
		if (str_caseeq(w, sql_keywords[i]))
			return true;
	return false;
}

/* A quoted identifier's name, unescaped into buf (at most SQLTEXT_MAX_NAME). */
static int unquote(struct str t, char *buf, size_t *len)
{
	char q = t.p[0];
	size_t n = 0;
	for (size_t i = 1; i + 1 < t.len; i++) {
		if (n >= SQLTEXT_MAX_NAME)
			return -1;
		buf[n++] = t.p[i];
		if (t.p[i] == q)
			i++; /* "" -> " */
	}
	*len = n;
	return 0;
}

struct rw {
	struct lex l;
	struct sqltext *out;
	struct str logstore;
	char *detail;
	int depth;
	int sel_depth[SQLTEXT_MAX_DEPTH + 1]; /* depth of each open SELECT */
	bool sel_from[SQLTEXT_MAX_DEPTH + 1];
	int nsel;
	bool limit, after_from, after_as;
	size_t naliases;
	char *aliases[SQLTEXT_MAX_NAMES]; /* names after AS: the query's own, not the log's */
};

static int rw_fail(struct rw *r, const char *what)
{
	snprintf(r->detail, SQLTEXT_DETAIL_MAX, "%s near '%.*s'", what,
		 (int)(r->l.t.len < 40 ? r->l.t.len : 40), r->l.t.p);
	return -1;
}

static bool has_name(char *const *names, size_t count, const char *p, size_t n)
{
	for (size_t i = 0; i < count; i++)
		if (strlen(names[i]) == n && !strncasecmp(names[i], p, n))
			return true;
	return false;
}

static int add_alias(struct rw *r, const char *p, size_t n)
{
	if (has_name(r->aliases, r->naliases, p, n))
		return 0;
	if (r->naliases >= SQLTEXT_MAX_NAMES)
		return rw_fail(r, "more than 64 aliases");
	r->aliases[r->naliases++] = xmemdup0(p, n);
	return 0;
}

/* The log's keys the query names: every name collected, less its aliases. */
static void drop_aliases(struct rw *r)
{
	struct sqltext *o = r->out;
	size_t k = 0;
	for (size_t i = 0; i < o->nnames; i++) {
		if (has_name(r->aliases, r->naliases, o->names[i], strlen(o->names[i])))
			free(o->names[i]);
		else
			o->names[k++] = o->names[i];
	}
	o->nnames = k;
}

static void free_aliases(struct rw *r)
{
	for (size_t i = 0; i < r->naliases; i++)
		free(r->aliases[i]);
}

static int add_name(struct rw *r, const char *p, size_t n)
{
	struct sqltext *o = r->out;
	if (n == 0 || n > SQLTEXT_MAX_NAME || memchr(p, '\0', n))
		return rw_fail(r, "a name that is empty, too long or has a NUL");
	if (n == strlen(SQLTEXT_TABLE) && !strncasecmp(p, SQLTEXT_TABLE, n))
		return 0;
	for (size_t i = 0; i < o->nnames; i++)
		if (strlen(o->names[i]) == n && !strncasecmp(o->names[i], p, n))
			return 0;
	if (o->nnames >= SQLTEXT_MAX_NAMES)
		return rw_fail(r, "more than 64 distinct names");
	o->names[o->nnames++] = xmemdup0(p, n);
	return 0;
}

/* Adds text between spaces, without doubling the one already there. */
static void emit_spaced(struct rw *r, const char *text)
{
	struct buf *b = &r->out->sql;
	if (b->len && b->p[b->len - 1] != ' ')
		buf_adds(b, " ");
	buf_adds(b, text);
	buf_adds(b, " ");
}

static void emit(struct rw *r, struct str s)
{
	buf_add(&r->out->sql, s.p, s.len);
}

/* Closes the SELECT open at the current depth: it reads the log if it named nothing. */
static void close_select(struct rw *r, bool pop)
{
	if (r->nsel && r->sel_depth[r->nsel - 1] == r->depth) {
		if (!r->sel_from[r->nsel - 1])
			emit_spaced(r, "FROM " SQLTEXT_TABLE);
		r->sel_from[r->nsel - 1] = true;
		if (pop)
			r->nsel--;
	}
}

static const char *const clause_words[] = {"where", "group", "having", "order", "limit", "window"};
static const char *const compound_words[] = {"union", "intersect", "except"};

static bool in_list(const struct lex *l, const char *const *w, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (is_word(l, w[i]))
			return true;
	return false;
}

static int on_word(struct rw *r)
{
	struct lex *l = &r->l;
	if (is_word(l, "select")) {
		if (r->nsel > SQLTEXT_MAX_DEPTH)
			return rw_fail(r, "too many nested SELECTs");
		r->sel_depth[r->nsel] = r->depth;
		r->sel_from[r->nsel++] = false;
	} else if (is_word(l, "from")) {
		if (r->nsel && r->sel_depth[r->nsel - 1] == r->depth)
			r->sel_from[r->nsel - 1] = true;
		r->after_from = true;
		emit(r, l->t);
		return 0;
	} else if (in_list(l, clause_words, 6)) {
		close_select(r, false);
		r->limit |= r->depth == 0 && is_word(l, "limit");
	} else if (in_list(l, compound_words, 3)) {
		close_select(r, true);
	} else if (is_word(l, "approx_distinct") && peek(l).kind == T_PUNCT && peek(l).t.p[0] == '(') {
		*l = peek(l);
		if (++r->depth > SQLTEXT_MAX_DEPTH)
			return rw_fail(r, "parentheses nested deeper than 64");
		buf_adds(&r->out->sql, "count(distinct ");
		return 0;
	} else if (r->after_as) {
		if (!is_keyword(l->t) && add_alias(r, l->t.p, l->t.len) != 0)
			return -1;
	} else if (!is_keyword(l->t) && !(peek(l).kind == T_PUNCT && peek(l).t.p[0] == '(')) {
		if (add_name(r, l->t.p, l->t.len) != 0)
			return -1;
	}
	emit(r, l->t);
	return 0;
}

/* The table after FROM: this logstore's own name reads it too. */
static bool from_self(struct rw *r)
{
	char name[SQLTEXT_MAX_NAME];
	size_t n = r->l.t.len;
	const char *p = r->l.t.p;
	if (r->l.kind == T_QIDENT) {
		if (unquote(r->l.t, name, &n) != 0)
			return false;
		p = name;
	} else if (r->l.kind != T_WORD) {
		return false;
	}
	return r->logstore.len && n == r->logstore.len && !memcmp(p, r->logstore.p, n);
}

static int on_punct(struct rw *r)
{
	char c = r->l.t.p[0];
	if (c == ';')
		return rw_fail(r, "';': one statement only, without ';'");
	if (c == '(') {
		if (++r->depth > SQLTEXT_MAX_DEPTH)
			return rw_fail(r, "parentheses nested deeper than 64");
	} else if (c == ')') {
		if (r->depth == 0)
			return rw_fail(r, "an unbalanced ')'");
		close_select(r, true);
		r->depth--;
	}
	emit(r, r->l.t);
	return 0;
}

static int on_token(struct rw *r)
{
	struct lex *l = &r->l;
	bool was_as = r->after_as;
	r->after_as = false;
	if (r->after_from) {
		r->after_from = false;
		if (from_self(r)) {
			buf_adds(&r->out->sql, SQLTEXT_TABLE);
			return 0;
		}
	}
	switch (l->kind) {
	case T_WORD:
		r->after_as = was_as;
		if (on_word(r) != 0)
			return -1;
		r->after_as = is_word(l, "as");
		return 0;
	case T_QIDENT: {
		char name[SQLTEXT_MAX_NAME];
		size_t n;
		if (unquote(l->t, name, &n) != 0)
			return rw_fail(r, "a quoted name longer than 256 bytes");
		if ((was_as ? add_alias(r, name, n) : add_name(r, name, n)) != 0)
			return -1;
		emit(r, l->t);
		return 0;
	}
	case T_PUNCT: return on_punct(r);
	case T_BAD: return rw_fail(r, "an unterminated quote or comment");
	default: emit(r, l->t); return 0;
	}
}

static int check_start(struct rw *r)
{
	struct lex first = peek(&r->l);
	if (is_word(&first, "select") || is_word(&first, "with"))
		return 0;
	if (first.kind == T_END) {
		snprintf(r->detail, SQLTEXT_DETAIL_MAX, "an empty SQL part after '|'");
		return -1;
	}
	r->l = first;
	return rw_fail(r, "only SELECT is supported after '|'");
}

static int rewrite(struct rw *r)
{
	if (check_start(r) != 0)
		return -1;
	while (next(&r->l) != T_END) {
		if (r->l.kind == T_SPACE) {
			buf_adds(&r->out->sql, " ");
			continue;
		}
		if (on_token(r) != 0)
			return -1;
	}
	if (r->depth != 0) {
		snprintf(r->detail, SQLTEXT_DETAIL_MAX, "a '(' is not closed");
		return -1;
	}
	close_select(r, true);
	if (!r->limit)
		emit_spaced(r, "LIMIT " SQLTEXT_LIMIT_TEXT);
	return 0;
}

int sqltext_rewrite(struct str sql, struct str logstore, struct sqltext *out,
		    char detail[SQLTEXT_DETAIL_MAX])
{
	struct rw r = {.l = {sql.p ? sql.p : "", (sql.p ? sql.p : "") + sql.len, STR_NULL, T_END},
		       .out = out, .logstore = logstore, .detail = detail};
	memset(out, 0, sizeof(*out));
	detail[0] = '\0';
	buf_reserve(&out->sql, sql.len + 64);
	int rc = rewrite(&r);
	if (rc == 0)
		drop_aliases(&r);
	free_aliases(&r);
	return rc;
}

void sqltext_free(struct sqltext *t)
{
	for (size_t i = 0; i < t->nnames; i++)
		free(t->names[i]);
	buf_free(&t->sql);
	memset(t, 0, sizeof(*t));
}
