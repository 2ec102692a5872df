-- The Log Service target a flow log had before a change took it away
-- (OutputType sls/all -> netflow, another ProjectName/LogstoreName, or
-- DeactiveFlowLog), and until when its gateways' devices may still PutLogs
-- there (docs/device-protocol.md §8, "grace"): the records a device closed
-- under the old configuration reach the log store instead of being refused.
-- Kept in the row, so a restart of serve inside the window changes nothing.
ALTER TABLE flowlogs ADD COLUMN sls_prev_project TEXT NOT NULL DEFAULT '';
ALTER TABLE flowlogs ADD COLUMN sls_prev_logstore TEXT NOT NULL DEFAULT '';
ALTER TABLE flowlogs ADD COLUMN sls_prev_until_ms INTEGER NOT NULL DEFAULT 0;
