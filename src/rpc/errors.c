#include "rpc/errors.h"

#include <string.h>

static const struct err_info err_table[ERR__COUNT] = {
#define ERR_INFO(name, http, code, msg) [ERR_##name] = {http, code, msg},
	ERR_MAP(ERR_INFO)
#undef ERR_INFO
};

const struct err_info *err_info(enum err e)
{
	if ((unsigned)e >= ERR__COUNT)
		e = ERR_INTERNAL_ERROR;
	return &err_table[e];
}

void err_message(enum err e, const char *detail, char *out, unsigned cap)
{
	const char *m = err_info(e)->message, *hole = strstr(m, "{}");
	size_t o = 0;
	if (cap == 0)
		return;
	if (detail == NULL)
		detail = "";
	for (const char *p = m; *p && o + 1 < cap; p++) {
		if (p == hole) {
			for (const char *d = detail; *d && o + 1 < cap; d++)
				out[o++] = *d;
			p++;
			continue;
		}
		out[o++] = *p;
	}
	out[o] = '\0';
}

enum err err_by_code(const char *code)
{
	for (int i = 1; i < ERR__COUNT; i++)
		if (strcmp(err_table[i].code, code) == 0)
			return (enum err)i;
	return ERR__COUNT;
}
