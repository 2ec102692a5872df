-- PostgreSQL port of ../0006_device_sequence.sql.
ALTER TABLE devices ADD COLUMN last_sequence bigint NOT NULL DEFAULT 0;
