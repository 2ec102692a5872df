/* The search parser (src/logstore/search.c) on arbitrary bytes; what parses
 * is matched against a fixed flow record, which must neither crash nor
 * depend on anything but the input. */
#include <stdint.h>
#include <stdlib.h>

#include "core/xmalloc.h"
#include "logstore/search.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const row[] = {"srcaddr", "10.0.0.12", "dstport", "443", "bytes", "1500",
				  "msg", "GET /index.html HTTP/1.1", "__tag__:k", "v", NULL};

struct ctx {
	const struct search *s;
};

static struct str value(const void *arg, size_t node)
{
	const struct ctx *c = arg;
	for (const char *const *p = row; *p; p += 2)
		if (str_eqc(c->s->node[node].key, p[0]))
			return str_c(p[1]);
	return STR_NULL;
}

static bool any(const void *arg, const struct search_node *n)
{
	for (const char *const *p = row; *p; p += 2)
		if (search_text_match(n, str_c(p[1])))
			return true;
	return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct search *s;
	char detail[SEARCH_DETAIL_MAX];
	if (!s)
		s = xmalloc(sizeof(*s));
	if (search_parse((struct str){(const char *)data, size}, s, detail) != SLS_ERR_OK) {
		if (!detail[0])
			abort(); /* a refusal always says why */
		return 0;
	}
	struct ctx c = {s};
	struct search_row r = {value, any, &c};
	bool a = search_match(s, &r), b = search_match(s, &r);
	if (a != b || s->root < 0 || (size_t)s->root >= s->n)
		abort();
	return 0;
}
