-- pgbench: the statements one CreateFlowLog job issues on PostgreSQL
-- (src/store/pg_sag.c pg_flowlog_create: the quota upsert and the insert in one
-- statement; store_pg.c bump_versions), one job
-- per transaction. Variables from bench/pg/run.sh: acct (the bench account),
-- writers (K); shard = one per client modulo K, as serve's writers each own one.
\set shard :client_id % :writers
BEGIN;
WITH q AS (INSERT INTO flowlog_counts AS c (account_id, region_id, n) VALUES (:acct, 'cn-shanghai', 1)
	ON CONFLICT (account_id, region_id) DO UPDATE SET n = c.n + 1 WHERE c.n < 1000000 RETURNING n)
INSERT INTO flowlogs (account_id, region_id, name, description, status, output_type, sls_region_id,
	project_name, logstore_name, netflow_server_ip, netflow_version, netflow_server_port, active_aging,
	inactive_aging, flowlog_id, resource_group_id, created_ms)
	SELECT :acct, 'cn-shanghai', '', '', 'Active', 'netflow', '', '', '', '192.168.0.2', 'V9', 9995, 300, 15,
	'fl-pgb' || md5(random()::text), 'rg-acfmxazb4ph6aiy', 1764576000000 FROM q RETURNING id;
INSERT INTO account_version (account_id, shard, v) VALUES (:acct, :shard, 1)
	ON CONFLICT (account_id, shard) DO UPDATE SET v = account_version.v + 1;
COMMIT;
