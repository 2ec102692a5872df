// Starts and stops the real `sagflow serve` (SAGFLOW_BIN) on 127.0.0.1:0 with a
// temporary database, for every e2e test file.
//
//   const srv = await startServer({ env: { ... }, args: [ ... ] });
//   srv.port, srv.url ('http://127.0.0.1:PORT'), srv.endpoint ('127.0.0.1:PORT'),
//   srv.dbPath, srv.dir, srv.proc, srv.stderr() (log so far),
//   srv.metricsUrl ('http://127.0.0.1:PORT/metrics' with --metrics-listen, else null),
//   await srv.stop() → { code, signal, stderr }  (SIGTERM, then waits for exit)
//
// By default the server gets the key TEST_AKID/TEST_SECRET through
// SAGFLOW_ACCESS_KEY_ID/SECRET. Pass { dbPath } to reuse a database (restart
// tests); the temporary directory is removed by stop() unless keepDir is set.
// Pass { tls: { cert, key, ca } } (file paths) to serve HTTPS: srv.url is then
// 'https://127.0.0.1:PORT' and srv.ca the CA's PEM, which lib/clients.mjs's
// raw() trusts.
//
// On the PostgreSQL backend (SAGFLOW_TEST_BACKEND=pg, lib/pg.mjs) each serve
// started without dbPath gets a fresh database on the test cluster, and
// srv.dbPath is its postgresql:// URI (so `sagflow keys --db srv.dbPath` and
// startServer({ dbPath: srv.dbPath }) work as with a file); stop() drops it
// once no other serve started here uses it (keepDir keeps it until the test
// file exits). A dbPath that is a file path names a database too (the same
// path, the same database). The log store's directory is given explicitly
// where SQLite's default would put it (logs/ beside the file; serves on one
// database share it, as they do on SQLite) unless args name one.
// freshDb(dir) is a new database for a test that runs the CLI on its own: a
// file path in dir on SQLite, a new database's URI on PostgreSQL.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { BACKEND, aliasDatabase, createDatabase, databaseFor, dropDatabase, isPgUri } from './pg.mjs';

export const BIN = process.env.SAGFLOW_BIN || new URL('../../../build/sagflow', import.meta.url).pathname;
export const TEST_AKID = 'testid';
export const TEST_SECRET = 'testsecret';
const START_TIMEOUT_MS = 20000;
const STOP_TIMEOUT_MS = 20000;

// Databases made here, and how many serves started here use each (pg only).
const dbUsers = new Map(); // uri -> { users, owned: drop when the last user stops }
const logsOf = new Map(); // uri -> the --logs-dir of its serves (kept across restarts)

export function freshDb(dir) {
  return BACKEND === 'pg' ? createDatabase() : join(dir, 'sagflow.db');
}

function backendArgs(db, args) {
  if (BACKEND !== 'pg' || args.includes('--logs-dir') || args.includes('--log-store-at')) return [];
  return ['--logs-dir', logsOf.get(db)];
}

export async function startServer({ env = {}, args = [], dbPath, keepDir = false, tls } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'sagflow-e2e-'));
  let db = dbPath || join(dir, 'sagflow.db');
  if (BACKEND === 'pg') {
    db = dbPath ? databaseFor(dbPath) : createDatabase();
    if (!dbPath) aliasDatabase(join(dir, 'sagflow.db'), db); // where SQLite would have it
    if (dbPath && !isPgUri(dbPath) && !logsOf.has(db)) logsOf.set(db, join(dirname(dbPath), 'logs'));
    else if (!logsOf.has(db)) logsOf.set(db, join(dir, 'logs'));
    const u = dbUsers.get(db) || { users: 0, owned: false };
    if (!dbPath && !keepDir) u.owned = true;
    u.users++;
    dbUsers.set(db, u);
  }
  const tlsArgs = tls ? ['--tls-cert', tls.cert, '--tls-key', tls.key] : [];
  const proc = spawn(BIN, ['serve', '--listen', '127.0.0.1:0', '--db', db, ...backendArgs(db, args), ...tlsArgs,
    ...args], {
    env: {
      ...process.env,
      SAGFLOW_ACCESS_KEY_ID: TEST_AKID,
      SAGFLOW_ACCESS_KEY_SECRET: TEST_SECRET,
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  let stdout = '';
  let released = false;
  const release = () => {
    if (released || BACKEND !== 'pg') return;
    released = true;
    const u = dbUsers.get(db);
    if (--u.users > 0) return;
    dbUsers.delete(db);
    if (u.owned) dropDatabase(db);
  };
  proc.stderr.setEncoding('utf8').on('data', (d) => { stderr += d; });
  const exited = new Promise((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal })));
  const port = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`serve did not start: ${stderr}`)), START_TIMEOUT_MS);
    proc.stdout.setEncoding('utf8').on('data', (d) => {
      stdout += d;
      const m = stdout.match(/^listening on 127\.0\.0\.1:(\d+)$/m);
      if (m) { clearTimeout(timer); resolve(Number(m[1])); }
    });
    exited.then(({ code, signal }) => {
      clearTimeout(timer);
      release();
      reject(new Error(`serve exited (${code ?? signal}) before listening: ${stderr}`));
    });
  });
  // serve prints 'metrics on HOST:PORT' before 'listening on': it is there now.
  const mm = stdout.match(/^metrics on 127\.0\.0\.1:(\d+)$/m);
  let stopped = null;
  return {
    port,
    metricsUrl: mm ? `http://127.0.0.1:${mm[1]}/metrics` : null,
    url: `${tls ? 'https' : 'http'}://127.0.0.1:${port}`,
    ca: tls && tls.ca ? readFileSync(tls.ca, 'utf8') : undefined,
    endpoint: `127.0.0.1:${port}`,
    dbPath: db,
    dir,
    proc,
    stderr: () => stderr,
    async stop() {
      if (stopped) return stopped;
      proc.kill('SIGTERM');
      const timer = setTimeout(() => proc.kill('SIGKILL'), STOP_TIMEOUT_MS);
      const r = await exited;
      clearTimeout(timer);
      if (!keepDir && !dbPath) rmSync(dir, { recursive: true, force: true });
      release();
      stopped = { ...r, stderr };
      return stopped;
    },
  };
}

// Stops a server and requires exit 0: under ASan a leak or memory error makes
// it exit non-zero, and its stderr tail says why.
export async function stopClean(srv) {
  if (!srv) return;
  const r = await srv.stop();
  assert.equal(r.code, 0, r.stderr.slice(-4000));
}
