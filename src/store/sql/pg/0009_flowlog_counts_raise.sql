-- A writer's batch of CreateFlowLog raises each owner's count once, right
-- before COMMIT (store_pg.c "count raise"): the account's flowlog_counts row is
-- then locked only from this statement to the end of COMMIT, not for the whole
-- batch, which is what another node's writer for the same account waits on.
-- Owners go in (account_id, region_id) order, so two batches never lock two
-- rows in opposite orders. Any owner over the quota raises SGQ01, which rolls
-- back the batch; the writer then runs it again with one check per job.
CREATE FUNCTION flowlog_counts_raise(a bigint[], r text[], k bigint[], q bigint)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
	raised bigint;
BEGIN
	WITH d AS (SELECT * FROM unnest(a, r, k) AS d(a, r, k) ORDER BY d.a, d.r),
	u AS (INSERT INTO flowlog_counts AS c (account_id, region_id, n)
		SELECT d.a, d.r, d.k FROM d WHERE d.k <= q
		ON CONFLICT (account_id, region_id) DO UPDATE SET n = c.n + EXCLUDED.n
		WHERE c.n + EXCLUDED.n <= q
		RETURNING 1)
	SELECT count(*) INTO raised FROM u;
	IF raised < cardinality(a) THEN
		RAISE EXCEPTION 'a batch of CreateFlowLog would pass the flow log quota'
			USING ERRCODE = 'SGQ01';
	END IF;
END $$;
