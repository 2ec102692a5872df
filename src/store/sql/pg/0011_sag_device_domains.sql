-- The CHECK constraints of sags and devices become domains, as flowlogs' did
-- in 0010: the same rules, the same SQLSTATE (23514 check_violation). Every
-- Associate/Disassociate updates a sags row and every device report a devices
-- row, and PostgreSQL 15 re-reads a table's CHECKs from their stored text for
-- each such UPDATE's executor; a domain's are read once per backend.
CREATE DOMAIN sag_rg_id AS text CHECK (VALUE <> '');
CREATE DOMAIN sag_hardware_spec AS text CHECK (VALUE IN ('sag-1000', 'sag-100wm', 'sag-vcpe'));
CREATE DOMAIN sag_ha_type AS text CHECK (VALUE IN ('no_backup', 'cold_backup', 'warm_backup'));
CREATE DOMAIN device_ha_state AS text CHECK (VALUE IN ('', 'active', 'standby'));
CREATE DOMAIN device_sls_delivery AS text CHECK (VALUE IN ('', 'delivered', 'not-delivered'));

ALTER TABLE sags
	DROP CONSTRAINT sags_resource_group_id_check,
	DROP CONSTRAINT sags_hardware_spec_check,
	DROP CONSTRAINT sags_ha_type_check,
	ALTER COLUMN resource_group_id TYPE sag_rg_id,
	ALTER COLUMN hardware_spec TYPE sag_hardware_spec,
	ALTER COLUMN ha_type TYPE sag_ha_type;

ALTER TABLE devices
	DROP CONSTRAINT devices_ha_state_check,
	DROP CONSTRAINT devices_sls_delivery_check,
	ALTER COLUMN ha_state TYPE device_ha_state,
	ALTER COLUMN sls_delivery TYPE device_sls_delivery;
