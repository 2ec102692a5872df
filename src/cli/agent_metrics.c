#include "cli/agent_metrics.h"

#include <ctype.h>
#include <string.h>

#include "agent/slssend.h"
#include "export/exporter.h"
#include "meter/meter.h"
#include "metrics/metrics.h"

#define AGENT_M_NAME_MAX 24 /* bytes of a lowercased enum name */
#define AGENT_M_RESULTS (DECODE_STATUS_COUNT + 1)

enum { LEG_NETFLOW, LEG_SLS, LEG_COUNT };
static const char *const agent_m_legs[LEG_COUNT] = {"netflow", "sls"};

/* Label values: the enums' own names, lowercased ("BAD_IPV4" -> "bad_ipv4"). */
static const char *const agent_m_decode_names[] = {
#define AGENT_M_DECODE(name, text) #name,
    DECODE_STATUS_MAP(AGENT_M_DECODE)
#undef AGENT_M_DECODE
};
static const char *const agent_m_end_names[] = {
#define AGENT_M_END(name, ie, text) #name,
    FLOW_END_MAP(AGENT_M_END)
#undef AGENT_M_END
};
static char agent_m_results_buf[AGENT_M_RESULTS][AGENT_M_NAME_MAX];
static char agent_m_reasons_buf[FLOW_END_COUNT][AGENT_M_NAME_MAX];
static const char *agent_m_results[AGENT_M_RESULTS], *agent_m_reasons[FLOW_END_COUNT];

static struct metrics_family *agent_m_sls_records, *agent_m_sls_queue, *agent_m_sls_dropped;
static struct metrics_family *agent_m_packets, *agent_m_flows, *agent_m_records, *agent_m_dgrams,
    *agent_m_errors, *agent_m_version, *agent_m_up;

static const char *lowered(char *out, const char *name)
{
	size_t i = 0;
	for (; name[i] && i + 1 < AGENT_M_NAME_MAX; i++)
		out[i] = (char)tolower((unsigned char)name[i]);
	out[i] = '\0';
	return out;
}

static void agent_m_labels(void)
{
	for (unsigned i = 0; i < DECODE_STATUS_COUNT; i++)
		agent_m_results[i] = lowered(agent_m_results_buf[i], agent_m_decode_names[i]);
	agent_m_results[DECODE_OK] = "metered";
	agent_m_results[DECODE_STATUS_COUNT] = "not_exporting";
	for (unsigned i = 0; i < FLOW_END_COUNT; i++)
		agent_m_reasons[i] = lowered(agent_m_reasons_buf[i], agent_m_end_names[i]);
}

void agent_metrics_enable(void)
{
	agent_m_labels();
	struct metrics_label leg = {"leg", agent_m_legs, LEG_COUNT};
	agent_m_packets = metrics_add(&(struct metrics_def){
	    .name = "sagflow_packets_total",
	    .help = "Packets captured, by result: metered, the reason the decoder skipped it, "
		    "or not_exporting (no flow log to meter for).",
	    .type = METRICS_COUNTER, .label = {{"result", agent_m_results, AGENT_M_RESULTS}}});
	agent_m_flows = metrics_add(&(struct metrics_def){
	    .name = "sagflow_flows_active", .help = "Flow records open in the meter's table.",
	    .type = METRICS_GAUGE});
	agent_m_records = metrics_add(&(struct metrics_def){
	    .name = "sagflow_records_total", .help = "Flow records closed, by reason.",
	    .type = METRICS_COUNTER, .label = {{"reason", agent_m_reasons, FLOW_END_COUNT}}});
	agent_m_dgrams = metrics_add(&(struct metrics_def){
	    .name = "sagflow_export_datagrams_total", .help = "Datagrams sent, by leg.",
	    .type = METRICS_COUNTER, .label = {leg}});
	agent_m_errors = metrics_add(&(struct metrics_def){
	    .name = "sagflow_export_errors_total",
	    .help = "Datagrams the socket refused to send, by leg.", .type = METRICS_COUNTER,
	    .label = {leg}});
	agent_m_version = metrics_add(&(struct metrics_def){
	    .name = "sagflow_config_version",
	    .help = "The ConfigVersion the agent runs, as a label (no sample while it has none).",
	    .type = METRICS_INFO, .label = {{"version", NULL, 0}}});
	agent_m_sls_records = metrics_add(&(struct metrics_def){
	    .name = "sagflow_export_records_total",
	    .help = "Flow records delivered, by leg (sls: acknowledged by the log store).",
	    .type = METRICS_COUNTER, .label = {leg}});
	agent_m_sls_queue = metrics_add(&(struct metrics_def){
	    .name = "sagflow_sls_queue_bytes",
	    .help = "Bytes of LogGroups waiting in the Log Service spool.", .type = METRICS_GAUGE});
	agent_m_sls_dropped = metrics_add(&(struct metrics_def){
	    .name = "sagflow_sls_dropped_records_total",
	    .help = "Flow records the Log Service leg dropped (the spool's bound, refusals, "
		    "unreadable spool files).",
	    .type = METRICS_COUNTER});
	agent_m_up = metrics_add(&(struct metrics_def){
	    .name = "sagflow_control_plane_up",
	    .help = "1 when the last sync with the control plane succeeded, else 0.",
	    .type = METRICS_GAUGE});
}

bool agent_metrics_on(void)
{
	return agent_m_packets != NULL;
}

static void tally_add(struct agent_tally *t, struct meter *m)
{
	struct meter_stats s;
	struct export_stats e;
	meter_get_stats(m, &s);
	meter_get_export_stats(m, &e);
	t->packets[DECODE_OK] += s.decoded;
	for (unsigned i = 1; i < DECODE_STATUS_COUNT; i++)
		t->packets[i] += s.skipped[i];
	for (unsigned i = 0; i < FLOW_END_COUNT; i++)
		t->records[i] += s.table.closed[i];
	t->datagrams += e.datagrams;
	t->errors += e.send_errors;
}

/* Adds now - shown to the counter of series i, and remembers now. */
static void show(struct metrics_family *f, unsigned i, uint64_t now, uint64_t *shown)
{
	if (now > *shown)
		metrics_count(f, i, 0, now - *shown);
	*shown = now;
}

void agent_metrics_publish(struct agent_metrics *am, struct meter *m)
{
	if (!agent_metrics_on())
		return;
	struct agent_tally now = am->gone;
	if (m)
		tally_add(&now, m);
	now.packets[DECODE_STATUS_COUNT] = am->unmetered;
	for (unsigned i = 0; i < AGENT_M_RESULTS; i++)
		show(agent_m_packets, i, now.packets[i], &am->shown.packets[i]);
	for (unsigned i = 0; i < FLOW_END_COUNT; i++)
		show(agent_m_records, i, now.records[i], &am->shown.records[i]);
	show(agent_m_dgrams, LEG_NETFLOW, now.datagrams, &am->shown.datagrams);
	show(agent_m_errors, LEG_NETFLOW, now.errors, &am->shown.errors);
	struct meter_stats s = {0};
	if (m)
		meter_get_stats(m, &s);
	metrics_set(agent_m_flows, 0, 0, s.table.open);
}

void agent_metrics_retire(struct agent_metrics *am, struct meter *m)
{
	if (!agent_metrics_on() || !m)
		return;
	tally_add(&am->gone, m);
	agent_metrics_publish(am, NULL);
}

void agent_metrics_sync(bool up)
{
	metrics_set(agent_m_up, 0, 0, up);
}

void agent_metrics_config(const char *version)
{
	metrics_info_set(agent_m_version, version);
}

void agent_metrics_sls(struct agent_metrics *am, struct slssend *s)
{
	if (!agent_metrics_on() || !s)
		return;
	struct slssend_stats st;
	slssend_get_stats(s, &st);
	show(agent_m_sls_records, LEG_SLS, st.delivered, &am->sls_delivered);
	show(agent_m_sls_dropped, 0, st.dropped, &am->sls_dropped);
	metrics_set(agent_m_sls_queue, 0, 0, (int64_t)st.queued_bytes);
}
