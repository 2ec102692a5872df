-- What a device last reported about its Log Service delivery (SlsStats,
-- docs/device-protocol.md §2): records delivered, queued and dropped, and the
-- last error with its time (ms, 0 = none). Shown in
-- Devices.Device[].SlsDelivery (docs/api.md).
ALTER TABLE devices ADD COLUMN sls_delivered INTEGER NOT NULL DEFAULT 0;
ALTER TABLE devices ADD COLUMN sls_queued INTEGER NOT NULL DEFAULT 0;
ALTER TABLE devices ADD COLUMN sls_dropped INTEGER NOT NULL DEFAULT 0;
ALTER TABLE devices ADD COLUMN sls_last_error TEXT NOT NULL DEFAULT '';
ALTER TABLE devices ADD COLUMN sls_last_error_ms INTEGER NOT NULL DEFAULT 0;
