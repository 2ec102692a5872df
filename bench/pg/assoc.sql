-- pgbench: the statements one AssociateFlowLog or DisassociateFlowLog job
-- issues on PostgreSQL (src/api/flowlog.c associate_tx → pg_sag.c
-- pg_flowlog_sag_get: the flow log and the gateway locked by one statement,
-- Associate's devices by a second one — serve sends both in one round trip,
-- pgbench one after the other — then the binding written and the account's
-- version bumped), one job per transaction. Each client works its own
-- (flow log, gateway) pair, as flowlog_bench's connections do: rowids
-- fl0 + client and sag0 + client (bench/pg/run.sh).
\set fl :fl0 + :client_id
\set sag :sag0 + :client_id
\set bind random(0, 1)
\set shard :client_id % :writers
BEGIN;
SELECT f.id, f.flowlog_id, f.region_id, f.resource_group_id, f.name, f.description, f.status,
	f.output_type, f.sls_region_id, f.project_name, f.logstore_name, f.netflow_server_ip,
	f.netflow_server_port, f.netflow_version, f.active_aging, f.inactive_aging, f.account_id, f.created_ms,
	0, f.sls_prev_project, f.sls_prev_logstore, f.sls_prev_until_ms,
	g.id, g.sag_id, g.region_id, g.resource_group_id, g.name, g.description, g.hardware_spec, g.ha_type,
	g.max_bandwidth, coalesce((SELECT flowlog_id FROM flowlogs WHERE id = g.flowlog_rowid), ''),
	g.account_id, g.created_ms, g.flowlog_rowid
	FROM flowlogs f, sags g WHERE f.id = :fl AND f.account_id = :acct AND f.region_id = 'cn-shanghai'
	AND g.id = :sag AND g.account_id = :acct AND g.region_id = 'cn-shanghai' FOR UPDATE OF f, g;
\if :bind
SELECT serial_number, secret_key, model, software_version, ha_state, reported_ms, sls_delivery,
	last_sequence, sls_delivered, sls_queued, sls_dropped, sls_last_error, sls_last_error_ms
	FROM devices WHERE sag_rowid = :sag ORDER BY bound_ms, serial_number;
\endif
UPDATE sags SET flowlog_rowid = CASE WHEN :bind = 1 THEN :fl::bigint END WHERE id = :sag;
INSERT INTO account_version (account_id, shard, v) VALUES (:acct, :shard, 1)
	ON CONFLICT (account_id, shard) DO UPDATE SET v = account_version.v + 1;
COMMIT;
