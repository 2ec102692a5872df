// --metrics-listen end to end (issue 9, docs/metrics.md): the real `sagflow
// serve` and `sagflow agent` scraped over HTTP, every exposition checked by
// Prometheus's own `promtool check metrics` (lint warnings fail too), and the
// counters required to move by exactly what the test did through pop-core, the
// device channel and loopback traffic.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { setTimeout as sleep } from 'node:timers/promises';
import { startServer, stopClean, BIN } from './lib/server.mjs';
import { api } from './lib/sag.mjs';
import { popCore } from './lib/clients.mjs';
import { device } from './lib/device.mjs';
import { freeUdpPort } from './lib/collector.mjs';
import { BACKEND, psqlValue } from './lib/pg.mjs';
import { agentRun, agentLive, provision, udpFlows } from './lib/agent.mjs';

const POLL_MS = 50;
const WAIT_MS = 8000;
let srv, a;

before(async () => {
  srv = await startServer({ args: ['--metrics-listen', '127.0.0.1:0', '--device-offline-after', '3'] });
  a = api(srv);
});

after(async () => {
  await stopClean(srv);
});

// The exposition as { 'name{a="x",b="y"}': value }, labels sorted by name.
// Only what the test needs: sagflow writes no timestamps and no exemplars.
function parse(text) {
  const out = {};
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    assert.ok(m, `not a sample line: ${line}`);
    const labels = [...(m[2] || '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)]
      .map(([, k, v]) => `${k}="${v}"`).sort();
    out[labels.length ? `${m[1]}{${labels.join(',')}}` : m[1]] = Number(m[3]);
  }
  return out;
}

function promtool(text) {
  const r = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
  assert.equal(r.error, undefined, `promtool: ${r.error}`);
  assert.equal(r.status, 0, `promtool check metrics failed:\n${r.stdout}${r.stderr}\n---\n${text}`);
  assert.equal((r.stdout + r.stderr).trim(), '', `promtool lint:\n${r.stdout}${r.stderr}`);
}

// One scrape: checked by promtool, returned parsed (and raw).
async function scrape(url) {
  const r = await fetch(url);
  assert.equal(r.status, 200);
  assert.equal(r.headers.get('content-type'), 'text/plain; version=0.0.4; charset=utf-8');
  const text = await r.text();
  promtool(text);
  return Object.assign(parse(text), { text });
}

const v = (m, k) => m[k] ?? 0;
const delta = (m0, m1, k) => v(m1, k) - v(m0, k);
// The sum of every sample of a family (all label values).
function total(m, name) {
  return Object.entries(m).filter(([k]) => k === name || k.startsWith(`${name}{`))
    .reduce((s, [, x]) => s + x, 0);
}

async function until(url, pred, what) {
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    const m = await scrape(url);
    if (pred(m)) return m;
    if (Date.now() > deadline) assert.fail(`${what} never held; last scrape:\n${m.text}`);
    await sleep(POLL_MS);
  }
}

test('serve --help documents --metrics-listen; a bad address exits 2', () => {
  const h = spawnSync(BIN, ['serve', '--help'], { encoding: 'utf8' });
  assert.equal(h.status, 0);
  assert.match(h.stdout, /--metrics-listen HOST:PORT/);
  assert.match(h.stdout, /Off by default/);
  const bad = spawnSync(BIN, ['serve', '--metrics-listen', 'nowhere'], { encoding: 'utf8' });
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /bad --metrics-listen 'nowhere'/);
});

test('the metrics endpoint serves GET /metrics and /healthz only, apart from the API', async () => {
  const base = srv.metricsUrl.replace(/\/metrics$/, '');
  assert.equal((await fetch(`${base}/healthz`)).status, 200);
  assert.equal((await fetch(`${base}/nope`)).status, 404);
  assert.equal((await fetch(srv.metricsUrl, { method: 'POST', body: 'x' })).status, 405);
  // The API's port does not serve metrics (it answers as the RPC API does).
  assert.notEqual((await fetch(`${srv.url}/metrics`)).status, 200);
  const m = await scrape(srv.metricsUrl);
  for (const name of ['sagflow_store_commits_total', 'sagflow_answer_cache_hits_total',
    'sagflow_answer_cache_misses_total', 'sagflow_store_commit_batch_size_count',
    'sagflow_store_fsync_seconds_count'])
    assert.ok(name in m, `${name} missing:\n${m.text}`);
  for (const s of ['Init', 'Active', 'Offline']) assert.ok(`sagflow_devices{status="${s}"}` in m);
  assert.ok('sagflow_replay_cache_entries{cache="api"}' in m);
  assert.ok(!('sagflow_replay_cache_entries{cache="device"}' in m)); // devices keep a sequence instead
  assert.match(m.text, /# TYPE sagflow_request_duration_seconds histogram/);
  assert.match(m.text, /# TYPE sagflow_requests_total counter/);
});

test('requests, durations, cache hits and misses, commits and nonces move by exactly what was done', async () => {
  const m0 = await scrape(srv.metricsUrl);
  // On PostgreSQL the nonces are rows of the shared nonce table, not this process's cache.
  const nonceRows = () => Number(psqlValue('SELECT count(*) FROM nonce', { db: srv.dbPath }));
  const rows0 = BACKEND === 'pg' ? nonceRows() : 0;
  // 5 DescribeRegions (cacheable: one miss, then four hits), 3 known errors, 4 writes.
  for (let i = 0; i < 5; i++) await a.call('DescribeRegions');
  for (let i = 0; i < 3; i++)
    await assert.rejects(a.call('DescribeSmartAccessGatewayAttribute', { SmartAGId: 'sag-nosuchgateway' }),
      (e) => e.code === 'InvalidSmartAGId.NotFound');
  for (let i = 0; i < 4; i++)
    await a.call('CreateFlowLog', { OutputType: 'netflow', NetflowServerIp: '192.0.2.10' });
  // A wrong secret (the action is known by then), and an action nobody has:
  // its name must not become a label value.
  await assert.rejects(popCore(srv, { secret: 'wrong' }).call('DescribeRegions', {}, { method: 'POST' }),
    (e) => e.code === 'SignatureDoesNotMatch');
  await assert.rejects(a.call('NoSuchActionAtAll'), (e) => e.code === 'InvalidAction.NotFound');
  const m1 = await scrape(srv.metricsUrl);

  const req = (action, code) => `sagflow_requests_total{action="${action}",code="${code}"}`;
  assert.equal(delta(m0, m1, req('DescribeRegions', 'OK')), 5);
  assert.equal(delta(m0, m1, req('DescribeSmartAccessGatewayAttribute', 'InvalidSmartAGId.NotFound')), 3);
  assert.equal(delta(m0, m1, req('CreateFlowLog', 'OK')), 4);
  assert.equal(delta(m0, m1, req('DescribeRegions', 'SignatureDoesNotMatch')), 1);
  assert.equal(delta(m0, m1, req('unknown', 'InvalidAction.NotFound')), 1);
  assert.equal(total(m1, 'sagflow_requests_total') - total(m0, 'sagflow_requests_total'), 14);
  assert.doesNotMatch(m1.text, /NoSuchActionAtAll/);

  const dur = (action, s) => `sagflow_request_duration_seconds_${s}{action="${action}"}`;
  assert.equal(delta(m0, m1, dur('DescribeRegions', 'count')), 6);
  assert.equal(delta(m0, m1, 'sagflow_request_duration_seconds_bucket{action="DescribeRegions",le="+Inf"}'), 6);
  assert.equal(delta(m0, m1, dur('CreateFlowLog', 'count')), 4);
  assert.equal(total(m1, 'sagflow_request_duration_seconds_count') - total(m0, 'sagflow_request_duration_seconds_count'), 14);
  assert.ok(delta(m0, m1, dur('CreateFlowLog', 'sum')) > 0);

  assert.equal(delta(m0, m1, 'sagflow_answer_cache_misses_total'), 1);
  assert.equal(delta(m0, m1, 'sagflow_answer_cache_hits_total'), 4);

  // Four write jobs, grouped into one to four durable commits.
  const commits = delta(m0, m1, 'sagflow_store_commits_total');
  assert.ok(commits >= 1 && commits <= 4, `commits moved by ${commits}`);
  assert.equal(delta(m0, m1, 'sagflow_store_commit_batch_size_sum'), 4);
  assert.equal(delta(m0, m1, 'sagflow_store_commit_batch_size_count'), commits);
  assert.equal(delta(m0, m1, 'sagflow_store_fsync_seconds_count'), commits);
  assert.ok(delta(m0, m1, 'sagflow_store_fsync_seconds_sum') > 0);

  // Every request whose signature verified spent one nonce: 5 + 3 + 4. On
  // PostgreSQL they are in the database (docs/store.md, "N nodes"), and the
  // in-process cache the gauge describes stays empty.
  // On PostgreSQL each of them went through the admission batcher: queued
  // once, in batches whose sizes add up to 12, each batch's statement timed.
  const adm = (s) => delta(m0, m1, `sagflow_store_admission_${s}`);
  if (BACKEND === 'pg') {
    assert.equal(nonceRows() - rows0, 12);
    assert.equal(delta(m0, m1, 'sagflow_replay_cache_entries{cache="api"}'), 0);
    assert.equal(adm('queued_seconds_count'), 12);
    assert.equal(adm('batch_size_sum'), 12);
    const batches = adm('batch_size_count');
    assert.ok(batches >= 1 && batches <= 12, `admission batches moved by ${batches}`);
    assert.equal(adm('run_seconds_count'), batches);
    assert.ok(adm('run_seconds_sum') > 0);
  } else {
    assert.equal(delta(m0, m1, 'sagflow_replay_cache_entries{cache="api"}'), 12);
    assert.equal(adm('queued_seconds_count'), 0); // admitted in process, no batcher
  }
});

test('sagflow_devices follows each device from Init to Active to Offline', async () => {
  const g = await provision(a);
  const m0 = await scrape(srv.metricsUrl);
  const d = device(srv, { serial: g.serial, secret: g.secret });
  const m1 = await scrape(srv.metricsUrl);
  assert.equal(v(m1, 'sagflow_devices{status="Init"}'), v(m0, 'sagflow_devices{status="Init"}'));
  assert.equal((await d.sync()).status, 200);
  const m2 = await scrape(srv.metricsUrl);
  assert.equal(delta(m1, m2, 'sagflow_devices{status="Init"}'), -1);
  assert.equal(delta(m1, m2, 'sagflow_devices{status="Active"}'), 1);
  // --device-offline-after 3: the device is Offline once 3 s pass without a report.
  const m3 = await until(srv.metricsUrl, (m) => delta(m2, m, 'sagflow_devices{status="Offline"}') === 1,
    'the device turning Offline');
  assert.equal(delta(m2, m3, 'sagflow_devices{status="Active"}'), -1);
});

test('serve without --metrics-listen prints no metrics line', async () => {
  const plain = await startServer();
  try {
    assert.equal(plain.metricsUrl, null);
  } finally {
    await stopClean(plain);
  }
});

// A UDP collector that counts the datagrams it receives.
async function datagramCounter(port) {
  const s = createSocket('udp4');
  let n = 0;
  s.on('message', () => { n += 1; });
  await new Promise((r) => s.bind(port, '127.0.0.1', r));
  return { count: () => n, close: () => new Promise((r) => s.close(r)) };
}

test('agent --help documents --metrics-listen', () => {
  const h = agentRun('http://127.0.0.1:1', { serial: 'x', secret: 'y' }, ['--help']);
  assert.equal(h.status, 0);
  assert.match(h.stdout, /--metrics-listen HOST:PORT/);
  const bad = agentRun('http://127.0.0.1:1', { serial: 'x', secret: 'y' }, ['--once', '--metrics-listen', '1.2.3.4']);
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /bad --metrics-listen/);
});

test('a live agent counts packets, records and datagrams exactly, and shows its config and control plane', async () => {
  // A control plane of its own, so the test can take it away at the end.
  const cp = await startServer();
  const ca = api(cp);
  const cport = await freeUdpPort(), tport = await freeUdpPort();
  const collector = await datagramCounter(cport);
  const fl = (await ca.call('CreateFlowLog', { OutputType: 'netflow', NetflowServerIp: '127.0.0.1',
    NetflowServerPort: cport, NetflowVersion: 'V9', ActiveAging: 300, InactiveAging: 60 })).FlowLogId;
  const g = await provision(ca);
  assert.equal(agentRun(cp.url, g, ['--once']).status, 0);
  await ca.call('AssociateFlowLog', { FlowLogId: fl, SmartAGId: g.id });
  const FLOWS = 8, PER_FLOW = 25;
  const traffic = await udpFlows(tport, FLOWS);
  const agent = agentLive(cp.url, g, ['--interface', 'lo', '--filter',
    `udp and dst host 127.0.0.1 and dst port ${tport}`, '--metrics-listen', '127.0.0.1:0']);
  try {
    const url = `http://127.0.0.1:${(await agent.waitLog(/metrics on 127\.0\.0\.1:(\d+)/))[1]}/metrics`;
    await agent.waitLog(/capturing on lo/);
    const v1 = (await agent.waitLog(/config ([0-9a-f]{16}): flow log \S+, NetFlow V9/))[1];
    const m0 = await scrape(url);
    assert.equal(v(m0, 'sagflow_control_plane_up'), 1);
    assert.equal(v(m0, `sagflow_config_version{version="${v1}"}`), 1);
    assert.equal(v(m0, 'sagflow_packets_total{result="metered"}'), 0);
    assert.equal(v(m0, 'sagflow_flows_active'), 0);

    await traffic.send(PER_FLOW);
    const sent = FLOWS * PER_FLOW;
    const m1 = await until(url, (m) => v(m, 'sagflow_packets_total{result="metered"}') >= sent,
      `${sent} packets metered`);
    assert.equal(total(m1, 'sagflow_packets_total'), sent, 'every packet counted once, all metered');
    assert.equal(v(m1, 'sagflow_flows_active'), FLOWS);
    assert.equal(total(m1, 'sagflow_records_total'), 0);

    // A change of agings closes every open record (reason reconfig) and exports it.
    const mark = agent.mark();
    await ca.call('ModifyFlowLogAttribute', { FlowLogId: fl, ActiveAging: 120 });
    const v2 = (await agent.waitLog(/config ([0-9a-f]{16}): flow log \S+, NetFlow V9 to \S+, ActiveAging 120 s/, { after: mark }))[1];
    const m2 = await until(url, (m) => v(m, 'sagflow_records_total{reason="reconfig"}') === FLOWS &&
      v(m, 'sagflow_export_datagrams_total{leg="netflow"}') > 0 &&
      v(m, 'sagflow_export_datagrams_total{leg="netflow"}') === collector.count(),
    'the closed records exported and received');
    assert.equal(total(m2, 'sagflow_records_total'), FLOWS);
    assert.equal(v(m2, 'sagflow_flows_active'), 0);
    assert.equal(total(m2, 'sagflow_export_errors_total'), 0);
    assert.equal(v(m2, `sagflow_config_version{version="${v2}"}`), 1);
    assert.ok(!(`sagflow_config_version{version="${v1}"}` in m2), 'one version at a time');
    assert.equal(total(m2, 'sagflow_packets_total'), sent);

    // The control plane goes away: the next sync fails, the config stays.
    await stopClean(cp);
    const m3 = await until(url, (m) => v(m, 'sagflow_control_plane_up') === 0, 'control plane down');
    assert.equal(v(m3, `sagflow_config_version{version="${v2}"}`), 1);
    const r = await agent.stop();
    assert.equal(r.code, 0, r.log);
  } finally {
    await agent.stop('SIGKILL');
    traffic.close();
    await collector.close();
    await stopClean(cp);
  }
});
