-- PostgreSQL port of ../0004_device_sls_delivery.sql.
ALTER TABLE devices ADD COLUMN sls_delivery text NOT NULL DEFAULT ''
	CHECK (sls_delivery IN ('', 'delivered', 'not-delivered'));
