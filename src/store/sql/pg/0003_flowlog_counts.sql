-- PostgreSQL port of ../0003_flowlog_counts.sql. No triggers here: the
-- backend keeps n itself, and raises it with the conditional upsert that is
-- also CreateFlowLog's quota check (pg_sag.c, docs/store.md), so the quota
-- holds across processes.
CREATE TABLE flowlog_counts (
	account_id bigint NOT NULL,
	region_id  text   NOT NULL,
	n          bigint NOT NULL CHECK (n >= 0),
	PRIMARY KEY (account_id, region_id)
);

INSERT INTO flowlog_counts (account_id, region_id, n)
	SELECT account_id, region_id, count(*) FROM flowlogs GROUP BY account_id, region_id;
