// The PostgreSQL side of the e2e suites: which backend this run uses, psql,
// and throwaway databases on the cluster of scripts/pg-test.sh.
//
//   BACKEND               'sqlite' (default) or 'pg' (SAGFLOW_TEST_BACKEND=pg)
//   PG_URI                the superuser URI of the cluster (SAGFLOW_TEST_PG), or null
//   psql(sql, { db })     runs SQL (db: a URI, default PG_URI) → rows of fields (strings)
//   createDatabase()      a new empty database → its URI (dropped at exit at the latest)
//   dropDatabase(uri)     drops it, disconnecting whoever is still on it
//   databaseFor(path)     the database a file path stands for on this backend (the
//                         same path gives the same database; created when new)
//
// One suite on every backend: scripts/test.sh runs the e2e files once with
// SAGFLOW_TEST_BACKEND=sqlite and once with =pg, and lib/server.mjs gives every
// serve a fresh PostgreSQL database in the second run.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { join } from 'node:path';

export const BACKEND = process.env.SAGFLOW_TEST_BACKEND === 'pg' ? 'pg' : 'sqlite';
export const PG_URI = process.env.SAGFLOW_TEST_PG || null;
const PSQL = process.env.SAGFLOW_TEST_PG_BIN ? join(process.env.SAGFLOW_TEST_PG_BIN, 'psql') : 'psql';
const PSQL_TIMEOUT_MS = 60000;
const FIELD_SEP = '\x1f'; // never in the values the tests read

if (BACKEND === 'pg' && !PG_URI)
  throw new Error('SAGFLOW_TEST_BACKEND=pg needs SAGFLOW_TEST_PG (run under scripts/pg-test.sh)');

export function isPgUri(s) {
  return typeof s === 'string' && /^postgres(ql)?:\/\//.test(s);
}

// The URI of database `name` on the cluster of PG_URI (same host, user, options).
export function uriOf(name) {
  const u = new URL(PG_URI);
  u.pathname = `/${name}`;
  return u.toString();
}

export function databaseOf(uri) {
  return decodeURIComponent(new URL(uri).pathname.slice(1));
}

// Runs sql (one or more statements) and returns the rows of the last one, each
// an array of strings (NULL as ''). Throws with psql's message on an error.
export function psql(sql, { db = PG_URI, timeout = PSQL_TIMEOUT_MS } = {}) {
  if (!PG_URI) throw new Error('psql: no SAGFLOW_TEST_PG');
  const r = spawnSync(PSQL, ['-X', '-q', '-A', '-t', '-F', FIELD_SEP, '-v', 'ON_ERROR_STOP=1', '-d', db, '-c', sql],
    { encoding: 'utf8', timeout });
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`psql failed (${r.status}): ${r.stderr.trim()}\n  SQL: ${sql}`);
  return r.stdout.split('\n').filter((l) => l.length).map((l) => l.split(FIELD_SEP));
}

// One value (first column of the first row).
export function psqlValue(sql, opts) {
  const rows = psql(sql, opts);
  return rows.length ? rows[0][0] : null;
}

const created = new Set();
let seq = 0;

export function createDatabase(prefix = 'e2e') {
  const name = `${prefix}_${process.pid}_${++seq}_${Date.now().toString(36)}`;
  psql(`CREATE DATABASE "${name}"`);
  created.add(name);
  return uriOf(name);
}

export function dropDatabase(uri) {
  const name = databaseOf(uri);
  psql(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
  created.delete(name);
}

// A file path that stands for a database made elsewhere: a serve started
// without dbPath has SQLite's path DIR/sagflow.db, and a test may restart on it.
const aliases = new Map();
export function aliasDatabase(path, uri) {
  aliases.set(path, uri);
}

export function databaseFor(path) {
  if (BACKEND !== 'pg' || isPgUri(path)) return path;
  if (aliases.has(path)) return aliases.get(path);
  const name = `e2e_f_${createHash('sha256').update(path).digest('hex').slice(0, 24)}`;
  if (!created.has(name)) {
    if (psqlValue(`SELECT count(*) FROM pg_database WHERE datname = '${name}'`) === '0')
      psql(`CREATE DATABASE "${name}"`);
    created.add(name);
  }
  return uriOf(name);
}

// Nothing a test file made outlives it (the cluster itself goes at the end of
// make test; this keeps a long run's cluster small).
process.on('exit', () => {
  if (!PG_URI || !created.size) return;
  // One -c each: DROP DATABASE cannot share a (multi-statement) transaction.
  const cs = [...created].flatMap((n) => ['-c', `DROP DATABASE IF EXISTS "${n}" WITH (FORCE)`]);
  spawnSync(PSQL, ['-X', '-q', '-d', PG_URI, ...cs], { timeout: PSQL_TIMEOUT_MS });
});

// The invariants every multi-node test checks on the database itself (spec
// scale-out.md §7.9): each a query returning the rows that break it.
export const INVARIANTS = {
  'flowlog_counts.n equals the flow logs per account and region': `
    SELECT coalesce(c.account_id, f.account_id), coalesce(c.region_id, f.region_id), coalesce(c.n, 0), coalesce(f.k, 0)
    FROM flowlog_counts c
    FULL JOIN (SELECT account_id, region_id, count(*) AS k FROM flowlogs GROUP BY 1, 2) f
      ON f.account_id = c.account_id AND f.region_id = c.region_id
    WHERE coalesce(c.n, 0) <> coalesce(f.k, 0)`,
  'no gateway bound to a missing flow log': `
    SELECT s.sag_id, s.flowlog_rowid FROM sags s LEFT JOIN flowlogs f ON f.id = s.flowlog_rowid
    WHERE s.flowlog_rowid IS NOT NULL AND f.id IS NULL`,
  'no gateway over its device limit (1, or 2 for an HA pair)': `
    SELECT s.sag_id, s.ha_type, count(*) FROM sags s JOIN devices d ON d.sag_rowid = s.id
    GROUP BY s.id, s.sag_id, s.ha_type
    HAVING count(*) > CASE s.ha_type WHEN 'no_backup' THEN 1 ELSE 2 END`,
  'no device of a missing gateway': `
    SELECT d.serial_number FROM devices d LEFT JOIN sags s ON s.id = d.sag_rowid WHERE s.id IS NULL`,
};

// The nonce table is the cross-node guarantee's (issue 13): checked when it exists.
const NONCE_DUPLICATES = `SELECT bucket, tag, count(*) FROM nonce GROUP BY 1, 2 HAVING count(*) > 1`;

// Every violated invariant as "name: rows" (empty when all hold).
export function invariantViolations(db) {
  const out = [];
  for (const [name, sql] of Object.entries(INVARIANTS)) {
    const rows = psql(sql, { db });
    if (rows.length) out.push(`${name}: ${JSON.stringify(rows.slice(0, 10))}`);
  }
  if (psqlValue(`SELECT to_regclass('nonce') IS NOT NULL`, { db }) === 't') {
    const rows = psql(NONCE_DUPLICATES, { db });
    if (rows.length) out.push(`no duplicate nonce: ${JSON.stringify(rows.slice(0, 10))}`);
  }
  return out;
}
