-- The device channel's replay state (docs/device-protocol.md §3): the highest
-- X-Sag-Sequence accepted from each device. A sync is accepted only with a
-- greater one, and the mark is committed before the sync is answered, so a
-- replayed or older request is refused across restarts too. O(devices), one
-- column: a shared database (PostgreSQL) carries it across nodes as is.
ALTER TABLE devices ADD COLUMN last_sequence INTEGER NOT NULL DEFAULT 0;
