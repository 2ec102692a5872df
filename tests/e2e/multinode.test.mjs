// Issue 13: N `sagflow serve` nodes on one PostgreSQL database keep every
// guarantee one node gives (spec scale-out.md §7.9). Each test starts 2-3
// serves at the same moment on a fresh database, drives them with the real
// clients (pop-core, and a hand-signed V1 request where the same signed bytes
// must reach two nodes), and checks the database itself afterwards
// (lib/pg.mjs INVARIANTS). Only on the PostgreSQL backend: SQLite is one node
// on one file by design.
//
// Every test proves it exercised what it claims: requests are counted per node
// (each node must have answered its share), races must show both orders, and
// the answer cache must have served hits where staleness is the question.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import test from 'node:test';
import { commonParams, goFormEncode, isoNow, percentEncode, raw, signV1 } from './lib/clients.mjs';
import { BACKEND, PG_URI, createDatabase, dropDatabase, invariantViolations, psql, psqlValue } from './lib/pg.mjs';
import { api, createKey, gateway, netflowLog } from './lib/sag.mjs';
import { BIN, TEST_AKID, TEST_SECRET, startServer, stopClean } from './lib/server.mjs';

const SKIP = BACKEND !== 'pg' ? 'multi-node tests need PostgreSQL (SAGFLOW_TEST_BACKEND=pg under scripts/pg-test.sh)' : false;
const PG_CTL = process.env.SAGFLOW_TEST_PG_CTL;
// Budgets far above what a test sends: what refuses must be the rule under test.
const NODE_ARGS = ['--rate-limit', 'key=1000000,device=1000000', '--flowlog-quota', '100000'];
const KEY_DELETE_MAX_MS = 3500;       // G6: with a node stopped, the CLI returns within the lease
const KEY_DELETE_SLACK_MS = 6500;     // shared 2-core VM under ASan: the test's bound
const PG_RECOVER_MAX_MS = 30000;      // PG accepting again → both nodes answering

// n serves started at once on one new database (migrations race too).
async function startNodes(n, { args = [], metrics = false } = {}) {
  const db = createDatabase('mn');
  const extra = metrics ? ['--metrics-listen', '127.0.0.1:0'] : [];
  const started = await Promise.allSettled(Array.from({ length: n },
    () => startServer({ dbPath: db, args: [...NODE_ARGS, ...extra, ...args] })));
  const nodes = started.filter((r) => r.status === 'fulfilled').map((r) => r.value);
  const failed = started.filter((r) => r.status === 'rejected');
  if (failed.length) {
    await Promise.all(nodes.map((s) => s.stop()));
    throw new Error(`${failed.length} of ${n} serves did not start on one database: ${failed[0].reason.message.slice(0, 3000)}`);
  }
  return { db, nodes };
}

// Stops the nodes (exit 0 required), then checks the invariants and drops the database.
async function finish({ db, nodes }) {
  for (const s of nodes) { try { process.kill(s.proc.pid, 'SIGCONT'); } catch { /* gone */ } }
  const stops = await Promise.allSettled(nodes.map((s) => stopClean(s)));
  const bad = invariantViolations(db);
  dropDatabase(db);
  const failedStop = stops.find((r) => r.status === 'rejected');
  assert.deepEqual(bad, [], 'invariants on the database');
  if (failedStop) throw failedStop.reason;
}

function range(n) {
  return Array.from({ length: n }, (_, i) => i);
}

// Runs fn(i) for i < n, at most `width` at a time.
async function lanes(n, width, fn) {
  let next = 0;
  await Promise.all(range(Math.min(width, n)).map(async () => {
    while (next < n) await fn(next++);
  }));
}

// A V1-signed RPC request (tea-rpc shape) as bytes: the same request can be
// sent to several nodes. Returns raw() options.
function signedRequest(action, apiParams = {}, { akid = TEST_AKID, secret = TEST_SECRET, timestamp = isoNow() } = {}) {
  const q = commonParams(action, { akid, timestamp, nonce: randomUUID() });
  q.Signature = signV1('POST', { ...q, ...apiParams }, secret);
  const query = Object.keys(q).map((k) => `${percentEncode(k)}=${percentEncode(q[k])}`).join('&');
  return { method: 'POST', path: `/?${query}`, body: goFormEncode(apiParams),
    headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-acs-action': action,
      'x-acs-version': '2018-03-13' } };
}

// The error code of a rejected pop-core call ('OK' when it succeeded).
async function outcome(p) {
  try {
    return { code: 'OK', value: await p };
  } catch (e) {
    return { code: e.code || e.name || String(e), message: e.message };
  }
}

function tally(list) {
  const t = {};
  for (const x of list) t[x] = (t[x] || 0) + 1;
  return t;
}

function keys(...args) {
  return new Promise((resolve) => {
    const p = spawn(BIN, ['keys', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '', err = '';
    p.stdout.setEncoding('utf8').on('data', (d) => { out += d; });
    p.stderr.setEncoding('utf8').on('data', (d) => { err += d; });
    p.on('exit', (code) => resolve({ code, stdout: out, stderr: err }));
  });
}

async function scrape(srv, name) {
  const text = await (await fetch(srv.metricsUrl)).text();
  const m = text.match(new RegExp(`^${name} (\\d+)`, 'm'));
  return m ? Number(m[1]) : null;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

test('one signed request sent to two nodes at once, 1,000 times: exactly one of each pair accepted', { skip: SKIP }, async () => {
  const c = await startNodes(2);
  try {
    const [a, b] = c.nodes;
    const wins = [0, 0], refusals = [0, 0], wrong = [];
    await lanes(1000, 16, async () => {
      const req = signedRequest('DescribeRegions');
      const rs = await Promise.all([raw(a, req), raw(b, req)]);
      const ok = rs.map((r) => r.status === 200);
      rs.forEach((r, i) => {
        if (r.status === 200) wins[i]++;
        else if (r.json && r.json.Code === 'SignatureNonceUsed') refusals[i]++;
        else wrong.push(`${i ? 'B' : 'A'}: ${r.status} ${r.text.slice(0, 200)}`);
      });
      if (ok[0] === ok[1] && wrong.length < 20) wrong.push(`pair: both ${ok[0] ? 'accepted' : 'refused'} (${rs.map((r) => r.status)})`);
    });
    assert.deepEqual(wrong.slice(0, 20), [], `wins A/B ${wins}, refusals A/B ${refusals}`);
    assert.equal(wins[0] + wins[1], 1000, 'exactly one of each pair accepted');
    // Both nodes took part: each answered 1,000 requests, accepted or refused as used.
    assert.equal(wins[0] + refusals[0], 1000);
    assert.equal(wins[1] + refusals[1], 1000);
  } finally {
    await finish(c);
  }
});

test('64 concurrent CreateFlowLog across 3 nodes with quota Q: exactly Q succeed', { skip: SKIP }, async () => {
  const Q = 10;
  const c = await startNodes(3, { args: ['--flowlog-quota', String(Q)] });
  try {
    const key = createKey(c.db, 'quota');
    const clients = c.nodes.map((s) => api(s, key));
    const res = await Promise.all(range(64).map((i) => outcome(clients[i % 3].call('CreateFlowLog',
      { OutputType: 'netflow', NetflowServerIp: '192.168.0.2', Name: `q${i}` }))));
    const codes = tally(res.map((r) => r.code));
    assert.deepEqual(codes, { OK: Q, 'QuotaExceeded.Flowlog': 64 - Q }, JSON.stringify(res.filter((r) => r.code !== 'OK' && r.code !== 'QuotaExceeded.Flowlog').slice(0, 3)));
    // Each node answered its share (22, 21, 21) with one of the two outcomes.
    for (let n = 0; n < 3; n++)
      assert.equal(res.filter((r, i) => i % 3 === n).length, n === 0 ? 22 : 21);
    assert.equal(psqlValue(`SELECT count(*) FROM flowlogs WHERE account_id = ${Number(key.accountId)}`, { db: c.db }), String(Q));
    const listed = await clients[1].call('DescribeFlowLogs', { PageSize: 50 });
    assert.equal(listed.TotalCount, Q);
  } finally {
    await finish(c);
  }
});

test('50 concurrent AssociateFlowLog of one gateway spread over 3 nodes: exactly one wins', { skip: SKIP }, async () => {
  const c = await startNodes(3);
  try {
    const clients = c.nodes.map((s) => api(s));
    const logs = [];
    for (let i = 0; i < 50; i++) logs.push(await netflowLog(clients[i % 3], { Name: `a${i}` }));
    const g = await gateway(c.nodes[0], clients[0], { devices: [{ version: '1.7.0' }] });
    const res = await Promise.all(logs.map((fl, i) => outcome(clients[i % 3].call('AssociateFlowLog',
      { FlowLogId: fl, SmartAGId: g.id }))));
    const codes = tally(res.map((r) => r.code));
    assert.deepEqual(codes, { OK: 1, 'OperationFailed.AssociateFlowLog': 49 });
    const winner = logs[res.findIndex((r) => r.code === 'OK')];
    const bound = psql(`SELECT f.flowlog_id FROM sags s JOIN flowlogs f ON f.id = s.flowlog_rowid WHERE s.sag_id = '${g.id}'`, { db: c.db });
    assert.deepEqual(bound, [[winner]]);
  } finally {
    await finish(c);
  }
});

test('3 concurrent BindSerialNumber on an HA gateway across 3 nodes: at most 2 bound (20 gateways)', { skip: SKIP }, async () => {
  const c = await startNodes(3);
  try {
    const clients = c.nodes.map((s) => api(s));
    const outcomes = [];
    for (let round = 0; round < 20; round++) {
      const g = await clients[round % 3].call('CreateSmartAccessGateway', { HardWareSpec: 'sag-1000', HaType: 'warm_backup' });
      const res = await Promise.all(range(3).map((n) => outcome(clients[n].call('BindSerialNumber',
        { SmartAGId: g.SmartAGId, SerialNumber: `SNB${process.pid}r${round}n${n}` }))));
      outcomes.push(...res.map((r) => r.code));
      assert.equal(res.filter((r) => r.code === 'OK').length, 2, `round ${round}: ${JSON.stringify(res.map((r) => r.code))}`);
      const n = psqlValue(`SELECT count(*) FROM devices d JOIN sags s ON s.id = d.sag_rowid WHERE s.sag_id = '${g.SmartAGId}'`, { db: c.db });
      assert.equal(n, '2', `round ${round}: devices in the database`);
    }
    assert.deepEqual(tally(outcomes), { OK: 40, InvalidParameter: 20 });
  } finally {
    await finish(c);
  }
});

test('ActiveFlowLog on one node racing AssociateFlowLog of an old-firmware gateway on another, 500 rounds: never Active and bound to it', { skip: SKIP }, async () => {
  const c = await startNodes(2);
  try {
    const [qa, qb] = c.nodes.map((s) => api(s));
    const old = await gateway(c.nodes[1], qb, { devices: [{ version: '1.6.0' }] });
    const assoc = [], active = [];
    await lanes(500, 8, async (round) => {
      const fl = await netflowLog(qa, { Name: `fw${round}` });
      await qa.call('DeactiveFlowLog', { FlowLogId: fl });
      // Either request first, so both orders are raced.
      const go = [() => outcome(qa.call('ActiveFlowLog', { FlowLogId: fl })),
        () => outcome(qb.call('AssociateFlowLog', { FlowLogId: fl, SmartAGId: old.id }))];
      if (round % 2) go.reverse();
      const [x, y] = await Promise.all(go.map((f) => f()));
      const [act, asc] = round % 2 ? [y, x] : [x, y];
      active.push(act.code);
      assoc.push(asc.code);
    });
    assert.deepEqual(tally(active), { OK: 500 });
    const t = tally(assoc);
    assert.equal(t.OK, undefined, `an old-firmware gateway was associated: ${JSON.stringify(t)}`);
    // Both orders happened: the flow log seen Inactive (refused for its
    // status) and seen Active (refused for the firmware).
    assert.ok(t['IncorrectStatus.FlowLog'] > 0 && t.FeatureNotSupport > 0, JSON.stringify(t));
    assert.equal(t['IncorrectStatus.FlowLog'] + t.FeatureNotSupport, 500, JSON.stringify(t));
    const bad = psql(`SELECT f.flowlog_id, s.sag_id, d.software_version FROM flowlogs f
      JOIN sags s ON s.flowlog_rowid = f.id JOIN devices d ON d.sag_rowid = s.id
      WHERE f.status = 'Active' AND d.software_version <> ''
        AND string_to_array(d.software_version, '.')::int[] < '{1,7,0}'::int[]`, { db: c.db });
    assert.deepEqual(bad, [], 'an Active flow log bound to a gateway with firmware < 1.7.0');
    assert.equal(psqlValue(`SELECT count(*) FROM sags WHERE flowlog_rowid IS NOT NULL`, { db: c.db }), '0');
  } finally {
    await finish(c);
  }
});

test('a write acknowledged on one node, then read on another, 5,000 rounds: never stale', { skip: SKIP }, async () => {
  const c = await startNodes(3, { metrics: true });
  try {
    const clients = c.nodes.map((s) => api(s));
    const LANES = 4, ROUNDS = 5000;
    const logs = [];
    for (let i = 0; i < LANES; i++) logs.push(await netflowLog(clients[i % 3], { Name: `ryw${i}` }));
    const hits0 = await Promise.all(c.nodes.map((s) => scrape(s, 'sagflow_answer_cache_hits_total')));
    const stale = [];
    // Each lane its own flow log, rounds one after another: the answer must be
    // exactly the lane's last acknowledged write.
    await Promise.all(logs.map(async (fl, lane) => {
      for (let i = 0; i < ROUNDS / LANES; i++) {
        const round = i * LANES + lane;
        const w = round % 3, r = (round + 1 + (i % 2)) % 3; // written on one node, read on another
        // The reader's page is cached before the write (read twice: the second is a hit).
        await clients[r].call('DescribeFlowLogs', { FlowLogId: fl });
        await clients[r].call('DescribeFlowLogs', { FlowLogId: fl });
        const want = `r${round}`;
        await clients[w].call('ModifyFlowLogAttribute', { FlowLogId: fl, Description: want });
        const got = (await clients[r].call('DescribeFlowLogs', { FlowLogId: fl })).FlowLogs.FlowLogSetType[0].Description;
        if (got !== want) stale.push(`round ${round}: wrote ${want} on node ${w}, read ${got} on node ${r}`);
      }
    }));
    assert.deepEqual(stale.slice(0, 10), [], `${stale.length} stale reads`);
    const hits1 = await Promise.all(c.nodes.map((s) => scrape(s, 'sagflow_answer_cache_hits_total')));
    // Not vacuous: every reader served pages from its answer cache meanwhile.
    for (let n = 0; n < 3; n++)
      assert.ok(hits1[n] - hits0[n] > 0, `node ${n} never answered from its cache (hits ${hits0[n]} → ${hits1[n]}): a stale page could not have been seen`);
  } finally {
    await finish(c);
  }
});

// The next request with a deleted key on node i: refused as unknown.
async function assertRefused(srv, key, what) {
  const r = await raw(srv, signedRequest('DescribeRegions', {}, { akid: key.akid, secret: key.secret }));
  assert.equal(r.status, 404, `${what}: ${r.status} ${r.text.slice(0, 300)}`);
  assert.equal(r.json.Code, 'InvalidAccessKeyId.NotFound', what);
}

async function assertAccepted(srv, key, what) {
  const r = await raw(srv, signedRequest('DescribeRegions', {}, { akid: key.akid, secret: key.secret }));
  assert.equal(r.status, 200, `${what}: ${r.status} ${r.text.slice(0, 300)}`);
}

test('sagflow keys delete: refused on every node at the next request, also with one node stopped (SIGSTOP) and resumed', { skip: SKIP }, async () => {
  const c = await startNodes(3);
  try {
    for (let round = 0; round < 5; round++) {
      const key = createKey(c.db, `kd${round}`);
      for (const [n, s] of c.nodes.entries()) await assertAccepted(s, key, `round ${round}: node ${n} before the delete`);
      const r = await keys('delete', '--db', c.db, '--access-key-id', key.akid);
      assert.equal(r.code, 0, r.stderr);
      await Promise.all(c.nodes.map((s, n) => assertRefused(s, key, `round ${round}: node ${n} right after the delete returned`)));
    }
    // One node stopped: the delete must not wait for it beyond its lease, and
    // once resumed it must not use the key it had cached.
    const key = createKey(c.db, 'kdstop');
    for (const [n, s] of c.nodes.entries()) await assertAccepted(s, key, `node ${n} before the delete`);
    const stopped = c.nodes[2];
    process.kill(stopped.proc.pid, 'SIGSTOP');
    let ms;
    try {
      const t0 = Date.now();
      const r = await keys('delete', '--db', c.db, '--access-key-id', key.akid);
      ms = Date.now() - t0;
      assert.equal(r.code, 0, r.stderr);
      await assertRefused(c.nodes[0], key, 'node 0 with node 2 stopped');
      await assertRefused(c.nodes[1], key, 'node 1 with node 2 stopped');
    } finally {
      process.kill(stopped.proc.pid, 'SIGCONT');
    }
    await assertRefused(stopped, key, 'node 2 at its first request after SIGCONT');
    if (ms > KEY_DELETE_MAX_MS) console.log(`# keys delete with a node stopped took ${ms} ms (goal G6: ${KEY_DELETE_MAX_MS} ms)`);
    assert.ok(ms <= KEY_DELETE_SLACK_MS, `keys delete with a node stopped took ${ms} ms`);
  } finally {
    await finish(c);
  }
});

// The backends of c.db that hold a LISTEN (the key-change listener of each node).
function listenerPids(db) {
  const name = new URL(db).pathname.slice(1);
  return psql(`SELECT pid FROM pg_stat_activity WHERE datname = '${name}' AND pid <> pg_backend_pid()
    AND (application_name ILIKE '%listen%' OR query ILIKE 'LISTEN%' OR query ILIKE '%node_lease%')`)
    .map((r) => Number(r[0]));
}

test("a node's listener connection killed with pg_terminate_backend: answers stay correct", { skip: SKIP }, async () => {
  const c = await startNodes(2);
  try {
    const [qa, qb] = c.nodes.map((s) => api(s));
    const fl = await netflowLog(qa, { Name: 'listener' });
    await qb.call('DescribeFlowLogs', { FlowLogId: fl });
    const pids = listenerPids(c.db);
    assert.ok(pids.length >= 2, `a listener connection per node in pg_stat_activity (found ${pids.length}: ` +
      "application_name containing 'listen', or a last query LISTEN/node_lease)");
    psql(`SELECT pg_terminate_backend(pid) FROM unnest('{${pids.join(',')}}'::int[]) AS pid`);
    // Writes on A, reads on B, right away and for the next 3 s: never stale, never an error.
    const t0 = Date.now();
    let round = 0;
    while (Date.now() - t0 < 3000) {
      const want = `l${round++}`;
      await qa.call('ModifyFlowLogAttribute', { FlowLogId: fl, Description: want });
      const got = (await qb.call('DescribeFlowLogs', { FlowLogId: fl })).FlowLogs.FlowLogSetType[0].Description;
      assert.equal(got, want, `round ${round}: stale read on B after the listeners were killed`);
    }
    // A key deleted meanwhile is refused by both.
    const key = createKey(c.db, 'afterkill');
    await assertAccepted(c.nodes[0], key, 'node 0');
    await assertAccepted(c.nodes[1], key, 'node 1');
    const r = await keys('delete', '--db', c.db, '--access-key-id', key.akid);
    assert.equal(r.code, 0, r.stderr);
    await assertRefused(c.nodes[0], key, 'node 0 after the listeners were killed');
    await assertRefused(c.nodes[1], key, 'node 1 after the listeners were killed');
    // And the listeners are back.
    let back = [];
    for (let i = 0; i < 100 && back.length < 2; i++, await sleep(100)) back = listenerPids(c.db).filter((p) => !pids.includes(p));
    assert.ok(back.length >= 2, `listeners reconnected (found ${back.length})`);
  } finally {
    await finish(c);
  }
});

async function waitAnswering(srv, deadline) {
  for (;;) {
    try {
      const h = await raw(srv, { path: '/healthz', timeout: 2000 });
      const r = h.status === 200 ? await raw(srv, signedRequest('DescribeRegions')) : h;
      if (r.status === 200) return;
    } catch { /* not yet */ }
    if (Date.now() > deadline) throw new Error(`${srv.url} did not answer within ${PG_RECOVER_MAX_MS} ms of PostgreSQL restarting`);
    await sleep(100);
  }
}

test('pg_ctl stop -m immediate under 8 concurrent writers, then start: every acknowledged write present, pre-crash requests refused when replayed', { skip: SKIP || (!PG_CTL && 'needs SAGFLOW_TEST_PG_CTL (scripts/pg-test.sh)') }, async () => {
  const c = await startNodes(2);
  let pgDown = false;
  try {
    const clients = c.nodes.map((s) => api(s));
    const acked = [], errors = [];
    let after = 0, stop = false, phase = 'before';
    const writers = range(8).map(async (w) => {
      for (let i = 0; !stop; i++) {
        const r = await outcome(clients[w % 2].call('CreateFlowLog', { OutputType: 'netflow', NetflowServerIp: '192.168.0.2', Name: `c${w}-${i}` }));
        if (r.code === 'OK') {
          acked.push(r.value.FlowLogId);
          if (phase === 'after') after++;
        } else {
          errors.push(`${phase}: ${r.code}`);
          await sleep(20);
        }
      }
    });
    await sleep(1500);
    // Signed and used before the crash: each accepted once, on either node.
    const used = range(20).map(() => signedRequest('DescribeRegions'));
    for (const [i, req] of used.entries()) {
      const r = await raw(c.nodes[i % 2], req);
      assert.equal(r.status, 200, r.text);
    }
    const beforeCrash = acked.length;
    assert.ok(beforeCrash > 0, 'writes were acknowledged before the crash');
    phase = 'down';
    pgDown = true;
    assert.equal(spawnSync(PG_CTL, ['stop', '-m', 'immediate', '-w'], { encoding: 'utf8' }).status, 0);
    await sleep(1000);
    const st = spawnSync(PG_CTL, ['start', '-w', '-t', '60'], { encoding: 'utf8' });
    assert.equal(st.status, 0, st.stderr);
    pgDown = false;
    const deadline = Date.now() + PG_RECOVER_MAX_MS;
    await Promise.all(c.nodes.map((s) => waitAnswering(s, deadline)));
    phase = 'after';
    await sleep(1500);
    stop = true;
    await Promise.all(writers);
    assert.ok(after > 0, 'writes acknowledged after PostgreSQL came back, without restarting serve');
    // Every acknowledged write is in the database.
    const ids = new Set(psql(`SELECT flowlog_id FROM flowlogs`, { db: c.db }).map((r) => r[0]));
    const lost = acked.filter((id) => !ids.has(id));
    assert.deepEqual(lost, [], `${lost.length} of ${acked.length} acknowledged CreateFlowLog lost`);
    // While it was down: refused as unavailable (or, for a COMMIT in flight, an
    // InternalError saying the outcome is unknown) — never anything else.
    const kinds = tally(errors.map((e) => e.replace(/^\w+: /, '')));
    for (const k of Object.keys(kinds))
      assert.ok(['ServiceUnavailable', 'InternalError'].includes(k), `unexpected error while PostgreSQL was down: ${k} ${JSON.stringify(kinds)}`);
    // Replays of requests used before the crash: refused on both nodes.
    for (const [i, req] of used.entries()) {
      for (const s of c.nodes) {
        const r = await raw(s, req);
        // Used already, or signed before the horizon: the 503 that asks for a new
        // signature (not a plain unavailability: PostgreSQL answers by now).
        const code = r.json && r.json.Code;
        assert.ok((r.status === 400 && code === 'SignatureNonceUsed') ||
          (r.status === 503 && code === 'ServiceUnavailable' && /signed before the database recovered/.test(r.json.Message)),
          `pre-crash request ${i} replayed after the restart: ${r.status} ${r.text.slice(0, 200)}`);
      }
    }
  } finally {
    if (pgDown) spawnSync(PG_CTL, ['start', '-w', '-t', '60']);
    await finish(c);
  }
});
