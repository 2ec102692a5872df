-- flowlogs' CHECK constraints become domains: the same rules, the same
-- SQLSTATE (23514 check_violation), cheaper. PostgreSQL 15 re-reads a table's
-- CHECK constraints from their stored text (stringToNode) and plans them for
-- every INSERT's and UPDATE's executor, ~20-30 us of CPU a CreateFlowLog here, a
-- quarter to a third of PostgreSQL's per create (docs/benchmarks.md, "Session 8"); a
-- domain's constraints are read and planned once per backend (its type cache).
CREATE DOMAIN flowlog_rg_id AS text CHECK (VALUE <> '');
CREATE DOMAIN flowlog_status AS text CHECK (VALUE IN ('Active', 'Inactive'));
CREATE DOMAIN flowlog_output_type AS text CHECK (VALUE IN ('sls', 'netflow', 'all'));
CREATE DOMAIN flowlog_port AS integer CHECK (VALUE BETWEEN 0 AND 65535);
CREATE DOMAIN flowlog_netflow_version AS text CHECK (VALUE IN ('', 'V5', 'V9', 'V10'));
CREATE DOMAIN flowlog_active_aging AS integer CHECK (VALUE BETWEEN 60 AND 6000);
CREATE DOMAIN flowlog_inactive_aging AS integer CHECK (VALUE BETWEEN 10 AND 600);

ALTER TABLE flowlogs
	DROP CONSTRAINT flowlogs_resource_group_id_check,
	DROP CONSTRAINT flowlogs_status_check,
	DROP CONSTRAINT flowlogs_output_type_check,
	DROP CONSTRAINT flowlogs_netflow_server_port_check,
	DROP CONSTRAINT flowlogs_netflow_version_check,
	DROP CONSTRAINT flowlogs_active_aging_check,
	DROP CONSTRAINT flowlogs_inactive_aging_check,
	ALTER COLUMN resource_group_id TYPE flowlog_rg_id,
	ALTER COLUMN status TYPE flowlog_status,
	ALTER COLUMN output_type TYPE flowlog_output_type,
	ALTER COLUMN netflow_server_port TYPE flowlog_port,
	ALTER COLUMN netflow_version TYPE flowlog_netflow_version,
	ALTER COLUMN active_aging TYPE flowlog_active_aging,
	ALTER COLUMN inactive_aging TYPE flowlog_inactive_aging;
