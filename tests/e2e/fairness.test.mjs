// Fairness (issue 14): a noisy caller at full speed beside well-behaved ones.
// Every request of the well-behaved caller succeeds; only the noisy one is
// refused (Throttling.User for an AccessKey, 429 Device.Throttled for a device).
// The serve runs with a small replay cache, as in the report, to show
// the noisy key cannot fill it for the others.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { startServer, stopClean, BIN } from './lib/server.mjs';
import { popCore, raw } from './lib/clients.mjs';
import { api, gateway } from './lib/sag.mjs';

const NOISY_MS = 3000;      // how long the noisy caller runs
const NOISY_INFLIGHT = 32;  // its requests in flight at once
const QUIET_EVERY_MS = 50;  // the well-behaved key: 20 requests a second
const KEY_RATE = 50, KEY_BURST = 100, DEVICE_RATE = 2, DEVICE_BURST = 4;

let srv;
before(async () => {
  srv = await startServer({ args: ['--replay-cache', '4096',
    '--rate-limit', `key=${KEY_RATE}:${KEY_BURST},device=${DEVICE_RATE}:${DEVICE_BURST}`] });
});
after(async () => {
  await stopClean(srv);
});

function newKey(account) {
  const r = spawnSync(BIN, ['keys', 'create', '--db', srv.dbPath, '--account', account], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const k = JSON.parse(r.stdout);
  return { akid: k.AccessKeyId, secret: k.AccessKeySecret };
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Runs fn with `inflight` calls at once until `quiet` (the well-behaved
// callers' promise) settles; counts outcomes by code.
async function flood(quiet, inflight, fn) {
  let over = false;
  quiet.finally(() => { over = true; });
  const codes = {};
  const messages = {};
  const one = async () => {
    while (!over) {
      const code = await fn().then(() => 'OK', (e) => {
        const c = e.code || e.message;
        messages[c] = e.message;
        return c;
      });
      codes[code] = (codes[code] || 0) + 1;
    }
  };
  await Promise.all(Array.from({ length: inflight }, one));
  Object.defineProperty(codes, 'messages', { value: messages });
  return codes;
}

// Calls fn every `every` ms for `ms`; returns every failure.
async function steady(ms, every, fn) {
  const end = Date.now() + ms;
  const failures = [];
  let n = 0;
  while (Date.now() < end) {
    const t = Date.now();
    await fn().then(() => n++, (e) => failures.push(e.code || e.message));
    await sleep(Math.max(0, every - (Date.now() - t)));
  }
  return { n, failures };
}

test('a noisy AccessKey at full speed: the other key is never refused', async () => {
  const noisy = popCore(srv, newKey('noisy'));
  const quiet = popCore(srv, newKey('quiet'));
  const call = (c) => c.call('DescribeRegions', {}, { method: 'POST' });
  const t0 = Date.now();
  const quietRun = steady(NOISY_MS, QUIET_EVERY_MS, () => call(quiet), 20);
  const [loud, calm] = await Promise.all([flood(quietRun, NOISY_INFLIGHT, () => call(noisy)), quietRun]);
  const secs = (Date.now() - t0) / 1000;
  assert.deepEqual(calm.failures, [], `the well-behaved key was refused: ${calm.failures}`);
  assert.ok(calm.n >= 20, `the well-behaved key sent ${calm.n}`);
  assert.ok(loud['Throttling.User'] > 0, JSON.stringify(loud));
  assert.deepEqual(Object.keys(loud).sort(), ['OK', 'Throttling.User'], JSON.stringify(loud));
  // The budget holds: no more than the burst plus the rate over the time it ran.
  assert.ok(loud.OK <= KEY_BURST + KEY_RATE * (secs + 1), `${loud.OK} accepted in ${secs} s`);
  // The refusal has Alibaba's shape, and the default key keeps working too.
  assert.match(loud.messages['Throttling.User'], /Request was denied due to user flow control\./);
  await call(popCore(srv));
});

test('a noisy device at full speed: the other devices are never refused', async () => {
  const a = api(srv);
  const loudGw = await gateway(srv, a, { devices: [{ silent: true }] });
  const quietGws = [];
  for (let i = 0; i < 4; i++) quietGws.push(await gateway(srv, a, { devices: [{ silent: true }] }));
  const loudDev = loudGw.devices[0];
  const sync = async (d) => {
    const r = await d.sync();
    if (r.status !== 200) throw Object.assign(new Error(r.text), { code: `${r.status} ${r.json && r.json.Code}` });
  };
  const t0 = Date.now();
  const quietRuns = Promise.all(quietGws.map((g) => steady(NOISY_MS, 1000 / DEVICE_RATE + 50, () => sync(g.devices[0]), 4)));
  const [loud, calm] = await Promise.all([flood(quietRuns, 8, () => sync(loudDev)), quietRuns]);
  const secs = (Date.now() - t0) / 1000;
  for (const c of calm) {
    assert.deepEqual(c.failures, [], `a well-behaved device was refused: ${c.failures}`);
    assert.ok(c.n >= 4);
  }
  assert.ok(loud['429 Device.Throttled'] > 0, JSON.stringify(loud));
  // Its 8 syncs in flight may also overtake one another: a later sequence
  // committed first makes the earlier one stale (409), its own doing.
  for (const code of Object.keys(loud))
    assert.ok(['429 Device.Throttled', 'OK', '409 Device.SequenceStale'].includes(code), JSON.stringify(loud));
  assert.ok(loud.OK <= DEVICE_BURST + DEVICE_RATE * (secs + 2), JSON.stringify(loud));
});

test('bounds: past --max-connections a request gets 503 and the server stays healthy', async () => {
  const { createConnection } = await import('node:net');
  const s = await startServer({ args: ['--max-connections', '64', '--max-held-syncs', '2',
    '--metrics-listen', '127.0.0.1:0'] });
  const socks = [];
  try {
    for (let i = 0; i < 100 && !/up to 64 connections/.test(s.stderr()); i++) await sleep(20);
    assert.match(s.stderr(), /up to 64 connections, 2 of them held syncs/);
    for (let i = 0; i < 70; i++) {
      const c = createConnection({ host: '127.0.0.1', port: s.port });
      await new Promise((res, rej) => c.once('connect', res).once('error', rej));
      socks.push(c);
    }
    await sleep(200);
    const r = await raw(s, { path: '/healthz' });
    assert.equal(r.status, 503, r.text);
    assert.equal(r.json.Code, 'ServiceUnavailable');
    assert.equal(r.headers.connection, 'close');
    socks.forEach((c) => c.destroy());
    socks.length = 0;
    await sleep(200);
    assert.equal((await raw(s, { path: '/healthz' })).status, 200);
    const m = await (await fetch(s.metricsUrl)).text();
    assert.match(m, /^sagflow_connections_max 64$/m);
    assert.match(m, /^sagflow_held_syncs_max 2$/m);

    // Past --max-held-syncs a long-poll is answered at once, and told to poll.
    const a2 = api(s);
    const gws = [];
    for (let i = 0; i < 3; i++) gws.push(await gateway(s, a2, { devices: [{}] }));
    const t0 = Date.now();
    const rs = await Promise.all(gws.map(async (g, i) => {
      await sleep(i * 150); // the third comes last
      return g.devices[0].sync({ wait: 3 });
    }));
    const third = rs[2];
    assert.equal(third.status, 200, third.text);
    assert.equal(third.json.NextSyncSeconds, third.json.PollIntervalSeconds);
    for (const held of rs.slice(0, 2)) assert.equal(held.json.NextSyncSeconds, 0);
    assert.ok(Date.now() - t0 >= 2900, 'the first two were held');
    const m2 = await (await fetch(s.metricsUrl)).text();
    assert.match(m2, /^sagflow_throttled_total\{kind="held_syncs"\} 1$/m);
    // Refused at start: held syncs that would leave API callers no room.
    const bad = spawnSync(BIN, ['serve', '--max-connections', '100', '--max-held-syncs', '90'], { encoding: 'utf8' });
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /leaves too few of --max-connections/);
  } finally {
    socks.forEach((c) => c.destroy());
    await stopClean(s);
  }
});
