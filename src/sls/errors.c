#include <stddef.h>

#include "sls/errors.h"

#include <jansson.h>
#include <string.h>

#include "core/xmalloc.h"

#define SLS_ERR_MESSAGE_MAX 512

static const struct sls_err_info sls_err_table[SLS_ERR__COUNT] = {
#define SLS_ERR_INFO(name, http, code, msg) [SLS_ERR_##name] = {http, code, msg},
	SLS_ERR_MAP(SLS_ERR_INFO)
#undef SLS_ERR_INFO
};

const struct sls_err_info *sls_err_info(enum sls_err e)
{
	if ((unsigned)e >= SLS_ERR__COUNT)
		e = SLS_ERR_INTERNAL_SERVER_ERROR;
	return &sls_err_table[e];
}

void sls_err_message(enum sls_err e, const char *detail, char *out, size_t cap)
{
	const char *m = sls_err_info(e)->message, *hole = strstr(m, "{}");
	size_t o = 0;
	if (cap == 0)
		return;
	for (const char *p = m; *p && o + 1 < cap; p++) {
		if (p == hole) {
			for (const char *d = detail ? detail : ""; *d && o + 1 < cap; d++)
				out[o++] = *d;
			p++;
			continue;
		}
		out[o++] = *p;
	}
	out[o] = '\0';
}

char *sls_err_body(enum sls_err e, const char *detail, size_t *len)
{
	char msg[SLS_ERR_MESSAGE_MAX];
	sls_err_message(e, detail, msg, sizeof(msg));
	/* jansson escapes whatever the detail holds (a project name from the Host). */
	json_t *o = json_pack("{s:s,s:s}", "errorCode", sls_err_info(e)->code, "errorMessage", msg);
	char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	if (!s)
		s = xstrdup("{\"errorCode\":\"InternalServerError\",\"errorMessage\":\"\"}");
	*len = strlen(s);
	return s;
}
