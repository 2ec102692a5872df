-- Nothing to change on SQLite: PostgreSQL's 0009 adds the function with which
-- a writer's batch raises flowlog_counts once per owner (sql/pg/0009). Here one
-- writer runs every job and the triggers of 0003 keep the count; the file
-- exists so that both sets keep the same numbers for the same change.
SELECT 1;
