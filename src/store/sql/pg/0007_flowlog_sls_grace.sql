-- PostgreSQL port of ../0007_flowlog_sls_grace.sql.
ALTER TABLE flowlogs ADD COLUMN sls_prev_project text NOT NULL DEFAULT '';
ALTER TABLE flowlogs ADD COLUMN sls_prev_logstore text NOT NULL DEFAULT '';
ALTER TABLE flowlogs ADD COLUMN sls_prev_until_ms bigint NOT NULL DEFAULT 0;
