/* The action layer: one handler per Alibaba RPC action, dispatched by name.
 *
 * The HTTP adapter parses and authenticates a request, then calls the action's
 * handler with a struct api_call. A handler reads its parameters, does its work
 * and calls api_finish() exactly once, either before it returns (reads) or later
 * from the store's writer thread (store_write_async's done callback, for durable
 * writes). The adapter suspends the connection until api_finish() is called and
 * then renders c->out (JSON or XML; RequestId is added by the adapter) or the
 * error c->err with c->err_detail replacing "{}" in its message. */
#ifndef API_API_H
#define API_API_H
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/str.h"
#include "rpc/errors.h"
#include "rpc/render.h"

struct params;
struct store;

#define API_ERR_DETAIL_MAX 128

struct api_config {
	int64_t flowlog_quota; /* per account and region, `serve --flowlog-quota` */
	int64_t device_online_ms; /* a gateway is Offline this long after its last report */
	/* Called (on the writer thread) after each acknowledged API write of an
	 * account, before the caller's answer: the device channel wakes that
	 * account's held syncs (long-poll). NULL: nobody listens. */
	void (*account_changed)(void *arg, int64_t account_id);
	void *account_changed_arg;
};

struct api_call {
	/* Inputs, valid until api_finish() returns. */
	const struct params *params; /* query and body merged, decoded */
	int64_t account_id;           /* the authenticated caller's account */
	struct store *store;
	const struct api_config *cfg;
	enum render_format fmt; /* the answer's: for render_list (rpc/render.h) */
	/* Outputs. */
	json_t *out; /* an empty object to fill; owned by the adapter */
	enum err err;
	char err_detail[API_ERR_DETAIL_MAX];
	/* Private to the adapter. */
	void *priv;
};

struct api_action {
	const char *name;
	void (*handler)(struct api_call *c);
	/* The answer depends only on the account, the API parameters and the stored
	 * data (not on the clock): the adapter may serve it from its cache of
	 * rendered answers (rpc/cache.h). */
	bool cacheable;
};

/* Finishes a call with e (ERR_OK for success); thread-safe, exactly once. */
void api_finish(struct api_call *c, enum err e);
/* Same, with a detail for the message's "{}" (a parameter name, say). */
void api_fail(struct api_call *c, enum err e, const char *detail);

/* The action with this exact name, or NULL; *index (when not NULL) gets its
 * place in api_action_at's numbering. */
const struct api_action *api_action_find(struct str name, unsigned *index);
/* Every action, numbered 0..api_action_count()-1 (metrics label tables). */
unsigned api_action_count(void);
const struct api_action *api_action_at(unsigned i); /* NULL past the end */

#endif
