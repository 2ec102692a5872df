-- PostgreSQL port of ../0008_device_sls_stats.sql.
ALTER TABLE devices ADD COLUMN sls_delivered bigint NOT NULL DEFAULT 0;
ALTER TABLE devices ADD COLUMN sls_queued bigint NOT NULL DEFAULT 0;
ALTER TABLE devices ADD COLUMN sls_dropped bigint NOT NULL DEFAULT 0;
ALTER TABLE devices ADD COLUMN sls_last_error text NOT NULL DEFAULT '';
ALTER TABLE devices ADD COLUMN sls_last_error_ms bigint NOT NULL DEFAULT 0;
