/* The exporter of the Log Service leg: the meter hands it closed records
 * (export/exporter.h), it gathers them into batches of at most
 * SLSGROUP_MAX_LOGS and hands each to the delivery thread once its oldest
 * record has waited SLSEXPORT_MAX_DELAY_US of meter time, or at a flush. */
#ifndef AGENT_SLSEXPORT_H
#define AGENT_SLSEXPORT_H
#include "agent/slssend.h"
#include "export/exporter.h"

#define SLSEXPORT_MAX_DELAY_US 500000LL /* a closed record waits at most 0.5 s to be sent */

/* The exporter sends through s (owned by the caller, must outlive it) to d (copied). */
struct exporter *slsexport_new(struct slssend *s, const struct slssend_dest *d);

#endif
