-- pgbench: the statements one CreateFlowLog job issues on PostgreSQL
-- in a writer's batch (src/store/pg_sag.c pg_flowlog_create: the insert;
-- store_pg.c commit: the version bump, then the owner's count raise, sql/pg/0009,
-- both once per batch and here once per job), one job
-- per transaction. Variables from bench/pg/run.sh: acct (the bench account),
-- writers (K); shard = one per client modulo K, as serve's writers each own one.
\set shard :client_id % :writers
BEGIN;
INSERT INTO flowlogs (account_id, region_id, name, description, status, output_type, sls_region_id,
	project_name, logstore_name, netflow_server_ip, netflow_version, netflow_server_port, active_aging,
	inactive_aging, flowlog_id, resource_group_id, created_ms)
	VALUES (:acct, 'cn-shanghai', '', '', 'Active', 'netflow', '', '', '', '192.168.0.2', 'V9', 9995, 300, 15,
	'fl-pgb' || md5(random()::text), 'rg-acfmxazb4ph6aiy', 1764576000000) RETURNING id;
INSERT INTO account_version (account_id, shard, v) VALUES (:acct, :shard, 1)
	ON CONFLICT (account_id, shard) DO UPDATE SET v = account_version.v + 1;
SELECT flowlog_counts_raise(ARRAY[:acct]::bigint[], ARRAY['cn-shanghai'], ARRAY[1]::bigint[], 1000000);
COMMIT;
