/* The agent's metrics (docs/metrics.md). The meter is not thread-safe and
 * counts in plain integers, so the capture thread publishes what it counted
 * (deltas into the metrics' counters) at the turns of its loop, at most
 * AGENT_METRICS_EVERY packets apart, instead of the meter counting twice per
 * packet; a scrape on the metrics thread sees numbers at most one loop turn
 * old. Calls are cheap no-ops unless agent_metrics_enable ran. */
#ifndef CLI_AGENT_METRICS_H
#define CLI_AGENT_METRICS_H
#include <stdbool.h>
#include <stdint.h>

#include "meter/decode.h"
#include "meter/flow.h"

#define AGENT_METRICS_EVERY 4096 /* packets of a file between two publications */

struct meter;

/* Counts since start: packets by result (decode statuses, then "not
 * exporting"), records by end reason, datagrams and send errors. */
struct agent_tally {
	uint64_t packets[DECODE_STATUS_COUNT + 1];
	uint64_t records[FLOW_END_COUNT];
	uint64_t datagrams, errors;
};

struct agent_metrics {
	uint64_t unmetered;        /* packets read while nothing is exported */
	struct agent_tally gone;   /* what meters that were freed had counted */
	struct agent_tally shown;  /* what the counters hold */
	uint64_t sls_delivered, sls_dropped; /* what the sls counters hold */
};

struct slssend;

void agent_metrics_enable(void);
/* Publishes the Log Service sender's counts (s NULL: nothing). */
void agent_metrics_sls(struct agent_metrics *am, struct slssend *s);
bool agent_metrics_on(void);
/* Publishes what m (NULL: no meter now) and the freed meters counted. */
void agent_metrics_publish(struct agent_metrics *am, struct meter *m);
/* Before m is freed: keeps its counts (publishing them first). */
void agent_metrics_retire(struct agent_metrics *am, struct meter *m);
/* After each sync: whether the control plane answered; the configuration
 * version the agent runs (NULL or "" when none). */
void agent_metrics_sync(bool up);
void agent_metrics_config(const char *version);

#endif
