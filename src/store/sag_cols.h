/* The column lists both backends read flow logs and gateways with, in the
 * order their row readers (row_flowlog, row_sag) expect. One copy: two lists
 * that drifted apart once gave every device sync a 500 (NOTES.md). */
#ifndef STORE_SAG_COLS_H
#define STORE_SAG_COLS_H

/* FLOWLOG_COLS_WITH(count): the flow-log columns, with the bound-gateway
 * count as an expression of the caller's choosing. */
#define FLOWLOG_COLS_WITH(count)                                                                \
	"f.id, f.flowlog_id, f.region_id, f.resource_group_id, f.name, f.description, f.status, " \
	"f.output_type, f.sls_region_id, f.project_name, f.logstore_name, f.netflow_server_ip, "  \
	"f.netflow_server_port, f.netflow_version, f.active_aging, f.inactive_aging, "            \
	"f.account_id, f.created_ms, " count ", "                                                 \
	"f.sls_prev_project, f.sls_prev_logstore, f.sls_prev_until_ms "

#define FLOWLOG_COLS FLOWLOG_COLS_WITH("(SELECT count(*) FROM sags s WHERE s.flowlog_rowid = f.id)")

/* The same without the count of bound gateways, which costs a scan of them
 * (20,000 under one flow log: ~0.4 ms): for the device channel, which reads a
 * flow log on every sync and never shows the count. */
#define FLOWLOG_COLS_NO_COUNT FLOWLOG_COLS_WITH("0")

#define SAG_COLS                                                                                \
	"g.id, g.sag_id, g.region_id, g.resource_group_id, g.name, g.description, "              \
	"g.hardware_spec, g.ha_type, g.max_bandwidth, "                                           \
	"coalesce((SELECT flowlog_id FROM flowlogs WHERE id = g.flowlog_rowid), ''), "            \
	"g.account_id, g.created_ms "

#endif
