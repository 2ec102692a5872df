/* Batches closed records for the delivery thread (slsexport.h). */
#include "agent/slsexport.h"

#include <stdlib.h>

#include "core/xmalloc.h"

_Static_assert((uint64_t)SLSGROUP_MAX_LOGS * SLSGROUP_MAX_LOG_RAW <= SLSGROUP_MAX_RAW,
	       "a full batch stays under the raw size of a group");

struct slsexport {
	struct exporter ex;
	struct slssend *s;
	struct slssend_dest d;
	struct flow_rec *pending; /* SLSGROUP_MAX_LOGS of them, handed over whole */
	size_t n;
	int64_t now_us, oldest_us;
};

/* The batch goes to the delivery thread as it is: the capture thread copies
 * each record once (into the batch), not twice. */
static void sx_hand_over(struct slsexport *x)
{
	if (!x->n)
		return;
	if (x->n < SLSGROUP_MAX_LOGS) /* a tick's: what waits holds what it needs */
		x->pending = xrealloc(x->pending, x->n * sizeof(*x->pending));
	slssend_submit(x->s, &x->d, x->pending, x->n);
	x->ex.st.datagrams++;
	x->pending = NULL;
	x->n = 0;
}

static void sx_record(struct exporter *ex, const struct flow_rec *rec)
{
	struct slsexport *x = (struct slsexport *)ex;
	if (x->n == 0) {
		if (!x->pending)
			x->pending = xmalloc(SLSGROUP_MAX_LOGS * sizeof(*x->pending));
		x->oldest_us = x->now_us > rec->last_us ? x->now_us : rec->last_us;
	}
	x->pending[x->n++] = *rec;
	ex->st.records++;
	if (x->n == SLSGROUP_MAX_LOGS)
		sx_hand_over(x);
}

static void sx_tick(struct exporter *ex, int64_t now_us)
{
	struct slsexport *x = (struct slsexport *)ex;
	if (now_us > x->now_us)
		x->now_us = now_us;
	if (x->n && x->now_us - x->oldest_us >= SLSEXPORT_MAX_DELAY_US)
		sx_hand_over(x);
}

static void sx_flush(struct exporter *ex)
{
	sx_hand_over((struct slsexport *)ex);
}

static void sx_free(struct exporter *ex)
{
	struct slsexport *x = (struct slsexport *)ex;
	sx_hand_over(x);
	free(x->pending);
	free(x);
}

static const struct exporter_ops slsexport_ops = {sx_record, sx_tick, sx_flush, sx_free};

struct exporter *slsexport_new(struct slssend *s, const struct slssend_dest *d)
{
	struct slsexport *x = xcalloc(1, sizeof(*x));
	x->ex.ops = &slsexport_ops;
	x->ex.name = "sls";
	x->s = s;
	x->d = *d;
	return &x->ex;
}
