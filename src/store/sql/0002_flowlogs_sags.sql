-- Flow logs, gateways (SAG instances) and their devices (spec §2, §4).
-- Every resource belongs to one (account, region); queries always filter on
-- both, so another account's or region's rows behave as missing.

CREATE TABLE flowlogs (
	id                  INTEGER PRIMARY KEY,
	flowlog_id          TEXT    NOT NULL UNIQUE,
	account_id          INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
	region_id           TEXT    NOT NULL,
	resource_group_id   TEXT    NOT NULL CHECK (resource_group_id <> ''),
	name                TEXT    NOT NULL DEFAULT '',
	description         TEXT    NOT NULL DEFAULT '',
	status              TEXT    NOT NULL CHECK (status IN ('Active', 'Inactive')),
	output_type         TEXT    NOT NULL CHECK (output_type IN ('sls', 'netflow', 'all')),
	sls_region_id       TEXT    NOT NULL DEFAULT '',
	project_name        TEXT    NOT NULL DEFAULT '',
	logstore_name       TEXT    NOT NULL DEFAULT '',
	netflow_server_ip   TEXT    NOT NULL DEFAULT '',
	netflow_server_port INTEGER NOT NULL DEFAULT 0 CHECK (netflow_server_port BETWEEN 0 AND 65535),
	netflow_version     TEXT    NOT NULL DEFAULT '' CHECK (netflow_version IN ('', 'V5', 'V9', 'V10')),
	active_aging        INTEGER NOT NULL CHECK (active_aging BETWEEN 60 AND 6000),
	inactive_aging      INTEGER NOT NULL CHECK (inactive_aging BETWEEN 10 AND 600),
	created_ms          INTEGER NOT NULL
);

-- DescribeFlowLogs pages through one owner's logs in creation order; the quota
-- counts them. Filters (name, status, ...) are evaluated on this range.
CREATE INDEX flowlogs_by_owner ON flowlogs(account_id, region_id, id);

CREATE TABLE sags (
	id                INTEGER PRIMARY KEY,
	sag_id            TEXT    NOT NULL UNIQUE,
	account_id        INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
	region_id         TEXT    NOT NULL,
	resource_group_id TEXT    NOT NULL CHECK (resource_group_id <> ''),
	name              TEXT    NOT NULL DEFAULT '',
	description       TEXT    NOT NULL DEFAULT '',
	hardware_spec     TEXT    NOT NULL CHECK (hardware_spec IN ('sag-1000', 'sag-100wm', 'sag-vcpe')),
	ha_type           TEXT    NOT NULL CHECK (ha_type IN ('no_backup', 'cold_backup', 'warm_backup')),
	max_bandwidth     INTEGER NOT NULL DEFAULT 0,
	order_id          TEXT    NOT NULL,
	order_json        TEXT    NOT NULL DEFAULT '{}', -- ChargeType, Period, Receiver...: kept as sent
	-- The one flow log this gateway is bound to (spec §2: at most one). The
	-- application refuses to delete a bound log; RESTRICT backs that up.
	flowlog_rowid     INTEGER REFERENCES flowlogs(id) ON DELETE RESTRICT,
	created_ms        INTEGER NOT NULL
);

CREATE INDEX sags_by_owner ON sags(account_id, region_id, id);
-- DescribeFlowLogSags and the derived TotalSagNum.
CREATE INDEX sags_by_flowlog ON sags(flowlog_rowid, id);

-- A serial number is bound to at most one gateway, anywhere: it identifies the
-- device on the device channel, before any account is known.
CREATE TABLE devices (
	serial_number    TEXT    PRIMARY KEY,
	sag_rowid        INTEGER NOT NULL REFERENCES sags(id) ON DELETE CASCADE,
	secret_key       TEXT    NOT NULL,
	model            TEXT    NOT NULL DEFAULT '',
	software_version TEXT    NOT NULL DEFAULT '',
	ha_state         TEXT    NOT NULL DEFAULT '' CHECK (ha_state IN ('', 'active', 'standby')),
	reported_ms      INTEGER NOT NULL DEFAULT 0,
	bound_ms         INTEGER NOT NULL
);

CREATE INDEX devices_by_sag ON devices(sag_rowid, bound_ms, serial_number);
