-- Nothing to change on SQLite: PostgreSQL's 0010 turns flowlogs' CHECK
-- constraints into domains (the same rules, read once per connection instead
-- of for every INSERT; sql/pg/0010). SQLite compiles a table's CHECKs into
-- each prepared statement once; the file keeps both sets' numbers alike.
SELECT 1;
