-- Nothing to change on SQLite: PostgreSQL's 0011 turns the CHECK constraints
-- of sags and devices into domains, as 0010 did for flowlogs (sql/pg/0011);
-- the file keeps both sets' numbers alike.
SELECT 1;
