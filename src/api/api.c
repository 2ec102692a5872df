#include "api/api.h"

#include <stdio.h>

#include "api/flowlog.h"
#include "api/gateway.h"
#include "api/region.h"
#include "rpc/rpc.h"

/* Every action family's table, each terminated by {NULL, NULL}. A family adds
 * one line here (and its file to src/api/meson.build). */
static const struct api_action *const api_families[] = {
	region_actions,
	flowlog_actions,
	gateway_actions,
	NULL,
};

const struct api_action *api_action_find(struct str name, unsigned *index)
{
	unsigned i = 0;
	for (size_t f = 0; api_families[f]; f++)
		for (const struct api_action *a = api_families[f]; a->name; a++, i++)
			if (str_eqc(name, a->name)) {
				if (index)
					*index = i;
				return a;
			}
	return NULL;
}

const struct api_action *api_action_at(unsigned i)
{
	for (size_t f = 0; api_families[f]; f++)
		for (const struct api_action *a = api_families[f]; a->name; a++)
			if (i-- == 0)
				return a;
	return NULL;
}

unsigned api_action_count(void)
{
	unsigned n = 0;
	while (api_action_at(n))
		n++;
	return n;
}

void api_fail(struct api_call *c, enum err e, const char *detail)
{
	snprintf(c->err_detail, sizeof(c->err_detail), "%s", detail ? detail : "");
	c->err = e;
	((struct api_finisher *)c->priv)->done(c);
}

void api_finish(struct api_call *c, enum err e)
{
	c->err = e;
	((struct api_finisher *)c->priv)->done(c);
}
