-- What a device reports about the Log Service leg of its flow log (OutputType
-- sls or all): '' not reported (no sls leg), 'delivered', or 'not-delivered'
-- (docs/device-protocol.md §2, §6). The API shows it so an operator sees that
-- an sls leg is configured but no log reaches Log Service.
ALTER TABLE devices ADD COLUMN sls_delivery TEXT NOT NULL DEFAULT ''
	CHECK (sls_delivery IN ('', 'delivered', 'not-delivered'));
