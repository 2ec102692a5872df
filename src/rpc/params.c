#include "rpc/params.h"

#include <stdio.h>
#include <stdlib.h>

#include "core/xmalloc.h"

#define PARAMS_INITIAL_CAP 16

struct params {
	struct param *v; /* grown by doubling: most requests carry 10-20 parameters */
	size_t n, cap;
	/* Decoded bytes live in one arena per parsed source: decoding never grows
	 * a string, so an arena as long as its input (plus a NUL per pair) suffices. */
	char *arena[PARAMS_MAX_SOURCES];
	size_t narena;
};

struct params *params_new(void)
{
	return xcalloc(1, sizeof(struct params));
}

void params_free(struct params *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->narena; i++)
		free(p->arena[i]);
	free(p->v);
	free(p);
}

void params_printable(struct str s, char *out, size_t cap)
{
	size_t o = 0;
	if (cap == 0)
		return;
	for (size_t i = 0; i < s.len && o + 1 < cap; i++) {
		unsigned char c = (unsigned char)s.p[i];
		out[o++] = (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') ? (char)c : '?';
	}
	out[o] = '\0';
}

static int hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Decodes in[0..len) into out; returns the decoded length or -1 on a bad
 * escape or a NUL byte (values are handed on as C strings too, so a NUL would
 * make the signed value and the used value differ). */
static long decode(const char *in, size_t len, char *out)
{
	size_t o = 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)in[i];
		if (c == '+') {
			c = ' ';
		} else if (c == '%') {
			if (len - i < 3)
				return -1;
			int hi = hexval((unsigned char)in[i + 1]), lo = hexval((unsigned char)in[i + 2]);
			if (hi < 0 || lo < 0)
				return -1;
			c = (unsigned char)(hi << 4 | lo);
			i += 2;
		}
		if (c == '\0')
			return -1;
		out[o++] = (char)c;
	}
	return (long)o;
}

static enum err check_duplicate(const struct params *p, struct str name, char *detail)
{
	for (size_t i = 0; i < p->n; i++) {
		if (str_eq(p->v[i].name, name)) {
			params_printable(name, detail, PARAMS_DETAIL_MAX);
			return ERR_INVALID_PARAMETER;
		}
	}
	return ERR_OK;
}

/* Decodes one "name[=value]" pair into the arena at *used. */
static enum err add_pair(struct params *p, const char *pair, size_t len, enum params_src src,
			 char *arena, size_t *used, char *detail)
{
	const char *eq = memchr(pair, '=', len);
	size_t nlen = eq ? (size_t)(eq - pair) : len;
	const char *val = eq ? eq + 1 : pair + len;
	size_t vlen = eq ? len - nlen - 1 : 0;

	if (p->n >= PARAMS_MAX_COUNT) {
		snprintf(detail, PARAMS_DETAIL_MAX, "more than %d parameters", PARAMS_MAX_COUNT);
		return ERR_REQUEST_TOO_LARGE;
	}
	char *name = arena + *used;
	long dn = decode(pair, nlen, name);
	if (dn <= 0) {
		snprintf(detail, PARAMS_DETAIL_MAX, "%s", dn == 0 ? "empty parameter name" :
			 "bad percent-escape or NUL byte in a parameter name");
		return ERR_MALFORMED_REQUEST;
	}
	if ((size_t)dn > PARAMS_MAX_NAME) {
		snprintf(detail, PARAMS_DETAIL_MAX, "parameter name longer than %d bytes",
			 PARAMS_MAX_NAME);
		return ERR_REQUEST_TOO_LARGE;
	}
	name[dn] = '\0';
	char *value = name + dn + 1;
	long dv = decode(val, vlen, value);
	struct str n = {name, (size_t)dn};
	if (dv < 0) {
		char pn[PARAMS_DETAIL_MAX - 48];
		params_printable(n, pn, sizeof(pn));
		snprintf(detail, PARAMS_DETAIL_MAX, "bad percent-escape or NUL byte in \"%s\"", pn);
		return ERR_MALFORMED_REQUEST;
	}
	if ((size_t)dv > PARAMS_MAX_VALUE) {
		params_printable(n, detail, PARAMS_DETAIL_MAX);
		return ERR_INVALID_PARAMETER;
	}
	value[dv] = '\0';
	enum err e = check_duplicate(p, n, detail);
	if (e != ERR_OK)
		return e;
	*used += (size_t)dn + 1 + (size_t)dv + 1;
	if (p->n == p->cap) {
		p->cap = p->cap ? 2 * p->cap : PARAMS_INITIAL_CAP;
		p->v = xrealloc(p->v, p->cap * sizeof(*p->v));
	}
	p->v[p->n++] = (struct param){n, {value, (size_t)dv}, src};
	return ERR_OK;
}

enum err params_parse(struct params *p, struct str s, enum params_src src,
		      char detail[PARAMS_DETAIL_MAX])
{
	detail[0] = '\0';
	if (s.len == 0)
		return ERR_OK;
	if (p->narena >= PARAMS_MAX_SOURCES) {
		snprintf(detail, PARAMS_DETAIL_MAX, "too many parameter sources");
		return ERR_MALFORMED_REQUEST;
	}
	/* Each pair's name and value get a NUL; a pair costs at least one input byte
	 * ('&' or the pair itself), so 2 * len + 2 bounds the arena. */
	char *arena = xmalloc(2 * s.len + 2);
	size_t used = 0;
	p->arena[p->narena++] = arena;
	size_t i = 0;
	while (i < s.len) {
		const char *amp = memchr(s.p + i, '&', s.len - i);
		size_t end = amp ? (size_t)(amp - s.p) : s.len;
		if (end > i) {
			enum err e = add_pair(p, s.p + i, end - i, src, arena, &used, detail);
			if (e != ERR_OK)
				return e;
		}
		i = end + 1;
	}
	return ERR_OK;
}

size_t params_count(const struct params *p)
{
	return p ? p->n : 0;
}

const struct param *params_at(const struct params *p, size_t i)
{
	return (p && i < p->n) ? &p->v[i] : NULL;
}

const struct param *params_find(const struct params *p, const char *name)
{
	if (!p)
		return NULL;
	struct str n = str_c(name);
	for (size_t i = 0; i < p->n; i++)
		if (str_eq(p->v[i].name, n))
			return &p->v[i];
	return NULL;
}

struct str params_get(const struct params *p, const char *name)
{
	const struct param *x = params_find(p, name);
	return x ? x->value : STR_NULL;
}

bool params_has(const struct params *p, const char *name)
{
	return params_find(p, name) != NULL;
}
