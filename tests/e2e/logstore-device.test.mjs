// The log store's ownership rules for gateway devices, retention and the
// addressing forms beyond "<project>.<domain>" (issue 10 parts 1, 3 and 6;
// docs/device-protocol.md §8, docs/logstore.md). A device writes with
// @alicloud/log itself: its credential is the AccessKeyId
// "device.<serial number>" and its SecretKey, so an unmodified client can do it.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import { after, before, describe, test } from 'node:test';
import { BIN, TEST_AKID, TEST_SECRET, startServer, stopClean } from './lib/server.mjs';
import { api, createKey, gateway } from './lib/sag.mjs';
import { agent, encodeGroup, logClient, rawRequest, slsClient, Sls } from './lib/sls.mjs';

const require = createRequire(import.meta.url);
const { $OpenApiUtil } = require('@alicloud/openapi-core');
const opts = { agent };
const NOW = () => Math.floor(Date.now() / 1000);
const DEVICE_PREFIX = 'device.';

function accountOf(dbPath, akid) {
  const r = spawnSync(BIN, ['keys', 'list', '--db', dbPath], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const k = r.stdout.trim().split('\n').map((l) => JSON.parse(l)).find((x) => x.AccessKeyId === akid);
  return String(k.AccountId);
}

// The error a client call fails with: { code, message } (or 'no error').
async function errorOf(p) {
  try { await p; } catch (e) { return { code: e.code, message: e.message }; }
  return { code: 'no error' };
}

function deviceClient(srv, dev) {
  return logClient(srv, `${DEVICE_PREFIX}${dev.state.serial}`, dev.state.secret);
}

function flowRecord(i, extra = {}) {
  return { srcaddr: `10.1.0.${i}`, dstaddr: '192.0.2.1', srcport: String(40000 + i), dstport: '443',
    protocol: '6', packets: String(i + 1), bytes: String(1000 * (i + 1)), ...extra };
}

describe('gateway devices write only their flow log\'s logstore', () => {
  let srv, a, owner, g1, g2, g3, fl1, fl2, c;
  const t0 = NOW() - 120;
  const sls = { OutputType: 'sls', SlsRegionId: 'cn-shanghai' };
  before(async () => {
    srv = await startServer();
    a = api(srv);
    owner = accountOf(srv.dbPath, TEST_AKID);
    c = logClient(srv, TEST_AKID, TEST_SECRET);
    fl1 = (await a.call('CreateFlowLog', { ...sls, ProjectName: 'devproj', LogstoreName: 'devstore' })).FlowLogId;
    fl2 = (await a.call('CreateFlowLog', { OutputType: 'all', SlsRegionId: 'cn-hangzhou', ProjectName: 'otherproj',
      LogstoreName: 'otherstore', NetflowServerIp: '127.0.0.1' })).FlowLogId;
    g1 = await gateway(srv, a);
    g2 = await gateway(srv, a);
    g3 = await gateway(srv, a); // bound to no flow log
    await a.call('AssociateFlowLog', { FlowLogId: fl1, SmartAGId: g1.id });
    await a.call('AssociateFlowLog', { FlowLogId: fl2, SmartAGId: g2.id });
  });
  after(async () => {
    // Whatever happened, no device SecretKey reached the log.
    for (const g of [g1, g2, g3].filter(Boolean)) {
      assert.ok(!srv.stderr().includes(g.devices[0].state.secret), 'a SecretKey in the server log');
    }
    await stopClean(srv);
  });

  test('the first write creates the flow log\'s project and logstore in its account; records are stamped', async () => {
    const before = await errorOf(c.getProject('devproj', opts));
    assert.equal(before.code, 'ProjectNotExist');
    const dc = deviceClient(srv, g1.devices[0]);
    const logs = [
      // A payload that lies about who it is, twice over: the server's identity wins.
      { timestamp: t0, content: flowRecord(1, { Instance_id: 'sag-forged', snid: 'FORGED', 'ali-uid': '1' }) },
      { timestamp: t0 + 1, content: flowRecord(2) },
    ];
    assert.equal(await dc.postLogStoreLogs('devproj', 'devstore', { logs, topic: 'flowlog' }, opts), '');
    const got = await c.getLogs('devproj', 'devstore', new Date((t0 - 1) * 1000), new Date((t0 + 10) * 1000), {}, opts);
    assert.equal(got.length, 2);
    for (const [i, r] of got.entries()) {
      assert.equal(r.Instance_id, g1.id);
      assert.equal(r.snid, g1.devices[0].state.serial);
      assert.equal(r['ali-uid'], owner);
      assert.equal(r.bytes, flowRecord(i + 1).bytes);
      assert.equal(r.__topic__, 'flowlog');
    }
    const p = await c.getProject('devproj', opts);
    assert.equal(p.projectName, 'devproj');
    const ls = await c.getLogStore('devproj', 'devstore', opts);
    assert.equal(ls.ttl, 30);
    // Another account's AccessKey does not see it.
    const other = createKey(srv.dbPath, 'tenant-b');
    const oc = logClient(srv, other.akid, other.secret);
    assert.equal((await errorOf(oc.getProject('devproj', opts))).code, 'ProjectNotExist');
    assert.equal((await errorOf(oc.getLogs('devproj', 'devstore', new Date((t0 - 1) * 1000),
      new Date((t0 + 10) * 1000), {}, opts))).code, 'ProjectNotExist');
    // An existing logstore is written again without a second creation.
    await dc.postLogStoreLogs('devproj', 'devstore', { logs: [{ timestamp: t0 + 2, content: flowRecord(3) }] }, opts);
    const all = await c.getLogs('devproj', 'devstore', new Date((t0 - 1) * 1000), new Date((t0 + 10) * 1000), {}, opts);
    assert.equal(all.length, 3);
    assert.equal((await c.listLogStore('devproj', {}, opts)).total, 1);
  });

  test('a device may do nothing but PutLogs to its own flow log\'s logstore', async () => {
    const dc = deviceClient(srv, g1.devices[0]);
    const one = { logs: [{ timestamp: t0, content: flowRecord(9) }] };
    const wrongStore = await errorOf(dc.postLogStoreLogs('devproj', 'elsewhere', one, opts));
    assert.equal(wrongStore.code, 'Unauthorized');
    assert.match(wrongStore.message, /may only PutLogs to project devproj logstore devstore/);
    assert.equal((await errorOf(dc.postLogStoreLogs('otherproj', 'otherstore', one, opts))).code, 'Unauthorized');
    for (const call of [
      () => dc.getLogs('devproj', 'devstore', new Date((t0 - 1) * 1000), new Date((t0 + 10) * 1000), {}, opts),
      () => dc.getProject('devproj', opts),
      () => dc.listLogStore('devproj', {}, opts),
      () => dc.createLogStore('devproj', 'newstore', { ttl: 1 }, opts),
      () => dc.deleteLogStore('devproj', 'devstore', opts),
      () => dc.createProject('devproj2', {}, opts),
    ]) {
      const e = await errorOf(call());
      assert.equal(e.code, 'Unauthorized');
      assert.match(e.message, /Denied: a gateway device may only PutLogs/);
    }
    assert.equal((await errorOf(c.getLogStore('devproj', 'newstore', opts))).code, 'LogStoreNotExist');
    assert.equal((await errorOf(c.getLogStore('devproj', 'elsewhere', opts))).code, 'LogStoreNotExist');
  });

  test('a device of another gateway is refused; it writes its own (OutputType all)', async () => {
    const other = deviceClient(srv, g2.devices[0]);
    const one = { logs: [{ timestamp: t0 + 5, content: flowRecord(5) }] };
    assert.equal((await errorOf(other.postLogStoreLogs('devproj', 'devstore', one, opts))).code, 'Unauthorized');
    await other.postLogStoreLogs('otherproj', 'otherstore', one, opts);
    const got = await c.getLogs('otherproj', 'otherstore', new Date((t0 - 1) * 1000), new Date((t0 + 10) * 1000), {}, opts);
    assert.deepEqual(got.map((r) => [r.Instance_id, r.snid]), [[g2.id, g2.devices[0].state.serial]]);
    assert.equal((await c.getLogs('devproj', 'devstore', new Date((t0 + 5) * 1000), new Date((t0 + 6) * 1000), {}, opts)).length, 0);
  });

  test('no flow log, an Inactive one, or one with OutputType netflow: FlowLogForbidden', async () => {
    const one = { logs: [{ timestamp: t0, content: flowRecord(7) }] };
    let e = await errorOf(deviceClient(srv, g3.devices[0]).postLogStoreLogs('devproj', 'devstore', one, opts));
    assert.equal(e.code, 'FlowLogForbidden');
    assert.match(e.message, new RegExp(`gateway ${g3.id} has no flow log bound`));
    const dc = deviceClient(srv, g1.devices[0]);
    // Within the grace after a change (device-protocol.md §8) the previous
    // target still takes writes; anything else gets the refusal at once.
    const late = { logs: [{ timestamp: t0 + 100, content: flowRecord(7) }] };
    await a.call('DeactiveFlowLog', { FlowLogId: fl1 });
    e = await errorOf(dc.postLogStoreLogs('devproj', 'otherstore', one, opts));
    assert.equal(e.code, 'FlowLogForbidden');
    assert.match(e.message, /is Inactive/);
    assert.equal((await errorOf(dc.postLogStoreLogs('devproj', 'devstore', late, opts))).code, 'no error', 'the grace');
    await a.call('ActiveFlowLog', { FlowLogId: fl1 });
    await a.call('ModifyFlowLogAttribute', { FlowLogId: fl1, OutputType: 'netflow', NetflowServerIp: '127.0.0.1' });
    e = await errorOf(dc.postLogStoreLogs('devproj', 'otherstore', one, opts));
    assert.equal(e.code, 'FlowLogForbidden');
    assert.match(e.message, /OutputType netflow/);
    assert.equal((await errorOf(dc.postLogStoreLogs('devproj', 'devstore', late, opts))).code, 'no error', 'the grace');
    // A flow log that never had a Log Service target has no grace.
    const nfl = (await a.call('CreateFlowLog', { OutputType: 'netflow', NetflowServerIp: '127.0.0.1' })).FlowLogId;
    await a.call('AssociateFlowLog', { FlowLogId: nfl, SmartAGId: g3.id });
    e = await errorOf(deviceClient(srv, g3.devices[0]).postLogStoreLogs('devproj', 'devstore', one, opts));
    assert.equal(e.code, 'FlowLogForbidden');
    assert.match(e.message, /OutputType netflow/);
    await a.call('ModifyFlowLogAttribute', { FlowLogId: fl1, OutputType: 'sls' });
    await dc.postLogStoreLogs('devproj', 'devstore', one, opts);
  });

  test('a flow log naming another account\'s project: ProjectForbidden, nothing created', async () => {
    const other = createKey(srv.dbPath, 'tenant-c');
    await logClient(srv, other.akid, other.secret).createProject('takenproj', {}, opts);
    const fl = (await a.call('CreateFlowLog', { ...sls, ProjectName: 'takenproj', LogstoreName: 'store' })).FlowLogId;
    const g = await gateway(srv, a);
    await a.call('AssociateFlowLog', { FlowLogId: fl, SmartAGId: g.id });
    const e = await errorOf(deviceClient(srv, g.devices[0]).postLogStoreLogs('takenproj', 'store',
      { logs: [{ timestamp: t0, content: flowRecord(1) }] }, opts));
    assert.equal(e.code, 'ProjectForbidden');
    assert.deepEqual((await logClient(srv, other.akid, other.secret).listLogStore('takenproj', {}, opts)).logstores, []);
  });

  test('a wrong SecretKey and an unbound serial number get the same 401', async () => {
    const one = { logs: [{ timestamp: t0, content: flowRecord(1) }] };
    const wrong = await errorOf(logClient(srv, `${DEVICE_PREFIX}${g1.devices[0].state.serial}`, 'x'.repeat(32))
      .postLogStoreLogs('devproj', 'devstore', one, opts));
    const unbound = await errorOf(logClient(srv, `${DEVICE_PREFIX}NOSUCHSERIAL1`, g1.devices[0].state.secret)
      .postLogStoreLogs('devproj', 'devstore', one, opts));
    const malformed = await errorOf(logClient(srv, `${DEVICE_PREFIX}bad serial!`, 'x').postLogStoreLogs('devproj',
      'devstore', one, opts));
    for (const e of [wrong, unbound, malformed]) {
      assert.equal(e.code, 'Unauthorized');
      assert.match(e.message, /not bound to a gateway or the signature does not match/);
    }
    // A bad Content-MD5 is refused before the serial number is looked up, so it tells nothing either.
    const body = encodeGroup({ logs: [{ time: t0, content: { a: 'b' } }] });
    for (const serial of [g1.devices[0].state.serial, 'NOSUCHSERIAL1']) {
      const r = await rawRequest(srv, { project: 'devproj', path: '/logstores/devstore/shards/lb', body,
        akid: `${DEVICE_PREFIX}${serial}`, secret: 'x', headers: { 'content-md5': '0'.repeat(32) } });
      assert.equal(r.json.errorCode, 'InvalidContentMD5');
    }
  });

  test('an AccessKeyId with the device prefix cannot be created', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sagflow-devkey-'));
    try {
      const r = spawnSync(BIN, ['serve', '--listen', '127.0.0.1:0', '--db', join(dir, 'db')], { encoding: 'utf8',
        timeout: 20000, env: { ...process.env, SAGFLOW_ACCESS_KEY_ID: `${DEVICE_PREFIX}SN1`, SAGFLOW_ACCESS_KEY_SECRET: 's' } });
      assert.notEqual(r.status, 0);
      assert.match(r.stderr, /must not start with "device\."/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('addressing: <project>.@<ip> (sls20201230) and absolute-form targets', () => {
  let srv;
  before(async () => { srv = await startServer(); });
  after(() => stopClean(srv));

  test('sls20201230 with endpoint \'@127.0.0.1:PORT\' needs no DNS entry', async () => {
    // No harness DNS shim is involved: the host part of the URL is the address.
    const s = new Sls.default(new $OpenApiUtil.Config({ accessKeyId: TEST_AKID, accessKeySecret: TEST_SECRET,
      endpoint: `@127.0.0.1:${srv.port}`, protocol: 'http' }));
    await s.createProject(new Sls.CreateProjectRequest({ projectName: 'atproj', description: 'via @ip' }));
    await s.createLogStore('atproj', new Sls.CreateLogStoreRequest({ logstoreName: 'atstore', ttl: 3, shardCount: 1 }));
    assert.equal((await s.getProject('atproj')).body.description, 'via @ip');
    assert.deepEqual((await s.listLogStores('atproj', new Sls.ListLogStoresRequest({}))).body.logstores, ['atstore']);
    assert.deepEqual((await s.listProject(new Sls.ListProjectRequest({}))).body.projects.map((p) => p.projectName), ['atproj']);
    const t = NOW() - 30;
    await logClient(srv, TEST_AKID, TEST_SECRET).postLogStoreLogs('atproj', 'atstore',
      { logs: [{ timestamp: t, content: { marker: 'at' } }] }, opts);
    const r = await s.getLogs('atproj', 'atstore', new Sls.GetLogsRequest({ from: t - 1, to: t + 1, query: '*' }));
    assert.deepEqual(r.body.map((x) => x.marker), ['at']);
    // V4 signs the Host as sent ('atproj.@127.0.0.1:PORT') and verifies too.
    const v4 = new Sls.default(new $OpenApiUtil.Config({ accessKeyId: TEST_AKID, accessKeySecret: TEST_SECRET,
      endpoint: `@127.0.0.1:${srv.port}`, protocol: 'http', signatureVersion: 'v4', regionId: 'cn-hangzhou' }));
    assert.equal((await v4.getLogStore('atproj', 'atstore')).body.ttl, 3);
  });

  test('an absolute-form target names the project; its authority overrides Host', async () => {
    const t = NOW() - 90;
    const body = encodeGroup({ logs: [{ time: t, content: { marker: 'absolute' } }] });
    const put = await rawRequest(srv, { path: '/logstores/atstore/shards/lb', body, akid: TEST_AKID, secret: TEST_SECRET,
      target: `http://atproj.127.0.0.1:${srv.port}/logstores/atstore/shards/lb`, host: 'proxy.example:3128',
      headers: { 'content-type': 'application/x-protobuf', 'x-log-bodyrawsize': String(body.length) } });
    assert.equal(put.status, 200, put.body);
    const get = await rawRequest(srv, { method: 'GET', path: '/logstores/atstore', query: `type=log&from=${t}&to=${t + 1}`,
      akid: TEST_AKID, secret: TEST_SECRET, target: `http://atproj.sls.localhost:${srv.port}/logstores/atstore`,
      host: `127.0.0.1:${srv.port}` });
    assert.equal(get.status, 200, get.body);
    assert.deepEqual(get.json.map((x) => x.marker), ['absolute']);
    // A "<project>.<IPv4>" Host (an IP endpoint with a pinned lookup) works the same way.
    const byIp = await rawRequest(srv, { method: 'GET', path: '/', akid: TEST_AKID, secret: TEST_SECRET,
      host: `atproj.127.0.0.1:${srv.port}` });
    assert.equal(byIp.json.projectName, 'atproj');
    // The RPC API on the same address is untouched.
    const rpc = await fetch(`${srv.url}/?Action=DescribeRegions`);
    assert.equal(rpc.headers.get('x-log-requestid'), null);
  });
});

// The day files of a logstore (docs/logstore.md, "Layout"): LOGS/<id>/YYYYMMDD.db.
function dayName(days) {
  return `${new Date(days * 86400e3).toISOString().slice(0, 10).replaceAll('-', '')}.db`;
}
function dayOf(name) {
  return Date.UTC(Number(name.slice(0, 4)), Number(name.slice(4, 6)) - 1, Number(name.slice(6, 8))) / 86400e3;
}
function dayFiles(dir) {
  return readdirSync(dir).filter((f) => /^\d{8}\.db$/.test(f)).sort();
}
async function until(what, cond, ms = 15000) {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('retention: a logstore\'s ttl, counted from the day a group arrived', () => {
  test('expired day files are removed whole at start and after UpdateLogStore; the rest stays readable', async () => {
    let srv = await startServer({ keepDir: true });
    const dir = srv.dir;
    const logsDir = join(dir, 'logs');
    try {
      let c = logClient(srv, TEST_AKID, TEST_SECRET);
      await c.createProject('retproj', {}, opts);
      await c.createLogStore('retproj', 'short', { ttl: 1, shardCount: 1 }, opts); // id 1
      await c.createLogStore('retproj', 'long', {}, opts); // id 2, the default ttl
      assert.equal((await c.getLogStore('retproj', 'long', opts)).ttl, 30);
      // A replay of an old capture: its __time__ is years ago, it arrives today.
      const old = Date.UTC(2020, 0, 1) / 1000;
      for (const ls of ['short', 'long']) {
        await c.postLogStoreLogs('retproj', ls, { logs: [{ timestamp: old, content: { marker: `old-${ls}` } }] }, opts);
      }
      await stopClean(srv);
      const short = join(logsDir, '1'), long = join(logsDir, '2');
      const [todayShort] = dayFiles(short), [todayLong] = dayFiles(long);
      assert.ok(todayShort && todayLong, 'each logstore has its day file');
      const today = dayOf(todayShort);
      // Copies of today's file under older days' names stand for groups that arrived then.
      const place = (d, days) => copyFileSync(join(d, dayName(today)), join(d, dayName(today - days)));
      [1, 2, 40].forEach((n) => place(short, n));
      [5, 30, 31, 400].forEach((n) => place(long, n));

      srv = await startServer({ dbPath: join(dir, 'sagflow.db') });
      c = logClient(srv, TEST_AKID, TEST_SECRET);
      // ttl 1: the file of day D goes once D + 1 + ttl <= today, so yesterday's stays.
      // The line follows the sweep's last unlink (and stderr is read asynchronously); waiting for
      // one file to go is not enough, since the sweep removes in directory order.
      await until('the log line at start', () => /retention removed 4 day file\(s\)/.test(srv.stderr()));
      assert.deepEqual(dayFiles(short), [dayName(today - 1), dayName(today)]);
      assert.deepEqual(dayFiles(long), [dayName(today - 30), dayName(today - 5), dayName(today)]);
      // Kept means readable: today's group and yesterday's copy, whatever their __time__.
      const got = await c.getLogs('retproj', 'short', new Date((old - 1) * 1000), new Date((old + 1) * 1000), {}, opts);
      assert.deepEqual(got.map((r) => r.marker), ['old-short', 'old-short']);

      // UpdateLogStore: ttl 3 takes effect at once.
      assert.equal((await errorOf(c.updateLogStore('retproj', 'long', { ttl: 0 }, opts))).code, 'InvalidParameter');
      assert.equal((await errorOf(c.updateLogStore('retproj', 'nosuch', { ttl: 3 }, opts))).code, 'LogStoreNotExist');
      await c.updateLogStore('retproj', 'long', { ttl: 3 }, opts);
      assert.equal((await c.getLogStore('retproj', 'long', opts)).ttl, 3);
      await until('the sweep after UpdateLogStore', () => dayFiles(long).length === 1);
      assert.deepEqual(dayFiles(long), [dayName(today)]);
      const left = await c.getLogs('retproj', 'long', new Date((old - 1) * 1000), new Date((old + 1) * 1000), {}, opts);
      assert.deepEqual(left.map((r) => r.marker), ['old-long']);
      await until('the log line', () => /retention removed 2 day file\(s\)/.test(srv.stderr()));
      // Writes go on into today's file.
      await c.postLogStoreLogs('retproj', 'long', { logs: [{ timestamp: NOW(), content: { marker: 'after' } }] }, opts);
      await stopClean(srv);
    } finally {
      await srv.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
