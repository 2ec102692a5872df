-- PostgreSQL only: what N serve nodes share beyond the data (docs/store.md,
-- "N nodes"). No SQLite twin: one process on an SQLite file keeps these in
-- memory (src/store/nonce.c, store.c's counters).
--
-- account_version and store_epoch, which admission and key changes read,
-- are in 0001.

-- One row per live node; the listener renews it every second (pg_listen.c).
-- UNLOGGED: a crash empties it, and every node re-registers at its next renewal.
CREATE UNLOGGED TABLE node_lease (
  node_id uuid PRIMARY KEY,
  keys_seen bigint NOT NULL,
  lease_until timestamptz NOT NULL,
  started_at timestamptz NOT NULL);

-- The replay memory: a 16-byte tag of (AccessKeyId, SignatureNonce) per bucket
-- (pg_nodes.h). No expiry column: a row past its expiry can match only a
-- request whose Timestamp the window check refuses first; whole partitions
-- are TRUNCATEd by the sweeper once no node can use them.
CREATE TABLE nonce (
  bucket smallint NOT NULL,
  tag uuid NOT NULL,
  PRIMARY KEY (bucket, tag)) PARTITION BY LIST (bucket);
CREATE UNLOGGED TABLE nonce_0 PARTITION OF nonce FOR VALUES IN (0);
CREATE UNLOGGED TABLE nonce_1 PARTITION OF nonce FOR VALUES IN (1);
CREATE UNLOGGED TABLE nonce_2 PARTITION OF nonce FOR VALUES IN (2);
CREATE UNLOGGED TABLE nonce_3 PARTITION OF nonce FOR VALUES IN (3);
CREATE UNLOGGED TABLE nonce_4 PARTITION OF nonce FOR VALUES IN (4);
CREATE UNLOGGED TABLE nonce_5 PARTITION OF nonce FOR VALUES IN (5);
CREATE UNLOGGED TABLE nonce_6 PARTITION OF nonce FOR VALUES IN (6);
CREATE UNLOGGED TABLE nonce_7 PARTITION OF nonce FOR VALUES IN (7);
CREATE UNLOGGED TABLE nonce_8 PARTITION OF nonce FOR VALUES IN (8);
CREATE UNLOGGED TABLE nonce_9 PARTITION OF nonce FOR VALUES IN (9);

-- Present while the nonce table has not been emptied by a crash: UNLOGGED
-- like it, so crash recovery resets both at once. A node that finds it
-- missing re-creates it with now() as the horizon (pg_admit.c).
CREATE UNLOGGED TABLE nonce_marker (
  id int PRIMARY KEY CHECK (id = 1),
  horizon timestamptz NOT NULL);
-- A fresh database has never lost its nonces: the marker starts at the epoch
-- (no horizon).
INSERT INTO nonce_marker VALUES (1, 'epoch');
