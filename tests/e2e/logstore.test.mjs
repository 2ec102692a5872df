// The Log Service endpoint of sagflow serve (issue 10, docs/logstore.md),
// driven by the unmodified npm clients @alicloud/log 1.2.6 (PutLogs, reads) and
// @alicloud/sls20201230 5.9.0 (reads, creates), plus raw signed HTTP for what
// no client sends.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { BIN, TEST_AKID, TEST_SECRET, startServer, stopClean } from './lib/server.mjs';
import { agent, encodeGroup, logClient, lz4Block, rawRequest, slsClient, Sls, DOMAIN } from './lib/sls.mjs';

const NOW = () => Math.floor(Date.now() / 1000);
const opts = { agent };

async function codeOf(p) {
  try { await p; } catch (e) { return e.code; }
  return 'no error';
}

function sagRecord(i) {
  return { srcaddr: `10.0.${i % 4}.${i % 250}`, dstaddr: '192.0.2.10', srcport: String(1024 + i),
    dstport: '443', protocol: '6', bytes: String(100 * (i + 1)), packets: String(i + 1) };
}

describe('Log Service: projects, logstores, PutLogs, GetLogs', () => {
  let srv, c, t0;
  before(async () => {
    srv = await startServer();
    c = logClient(srv, TEST_AKID, TEST_SECRET);
    t0 = NOW() - 60;
    await c.createProject('flowproj', { description: 'flow logs' }, opts);
    await c.createLogStore('flowproj', 'flowstore', { ttl: 7, shardCount: 2 }, opts);
  });
  after(() => stopClean(srv));

  test('created project and logstore read back through both clients', async () => {
    const s = slsClient(srv, TEST_AKID, TEST_SECRET);
    const p = await s.getProject('flowproj');
    assert.equal(p.body.projectName, 'flowproj');
    assert.equal(p.body.description, 'flow logs');
    assert.match(p.headers['x-log-requestid'], /^[0-9A-F]{24}$/);
    const ls = await c.listLogStore('flowproj', {}, opts);
    assert.deepEqual(ls.logstores, ['flowstore']);
    assert.equal(ls.total, 1);
    const g = await s.getLogStore('flowproj', 'flowstore');
    assert.equal(g.body.logstoreName, 'flowstore');
    assert.equal(g.body.ttl, 7);
    assert.equal(g.body.shardCount, 2);
    const l2 = await s.listLogStores('flowproj', new Sls.ListLogStoresRequest({}));
    assert.deepEqual(l2.body.logstores, ['flowstore']);
    const projects = await s.listProject(new Sls.ListProjectRequest({}));
    assert.deepEqual(projects.body.projects.map((x) => x.projectName), ['flowproj']);
  });

  test('PutLogs (uncompressed, @alicloud/log) then GetLogs returns every log, paginated', async () => {
    const logs = Array.from({ length: 25 }, (_, i) => ({ timestamp: t0 + i, content: sagRecord(i) }));
    const r = await c.postLogStoreLogs('flowproj', 'flowstore', { logs, topic: 'flowlog', source: '10.0.0.1',
      tags: [{ sag_id: 'sag-123' }] }, opts);
    assert.equal(r, ''); // empty 200, no Content-Type: nothing to parse
    const all = await c.getLogs('flowproj', 'flowstore', new Date((t0 - 1) * 1000), new Date((t0 + 100) * 1000),
      { query: '*', line: 100, offset: 0 }, opts);
    assert.equal(all.length, 25);
    assert.deepEqual(all[0], { __time__: String(t0), __topic__: 'flowlog', __source__: '10.0.0.1',
      '__tag__:sag_id': 'sag-123', ...sagRecord(0) });
    assert.deepEqual(all.map((x) => Number(x.__time__)), logs.map((l) => l.timestamp));
    const pages = [];
    for (let off = 0; off < 25; off += 10) {
      pages.push(...await c.getLogs('flowproj', 'flowstore', new Date((t0 - 1) * 1000),
        new Date((t0 + 100) * 1000), { line: 10, offset: off }, opts));
    }
    assert.deepEqual(pages, all);
    const rev = await c.getLogs('flowproj', 'flowstore', new Date((t0 - 1) * 1000), new Date((t0 + 100) * 1000),
      { line: 3, reverse: true }, opts);
    assert.deepEqual(rev, all.slice(-3).reverse());
    const win = await c.getLogs('flowproj', 'flowstore', new Date((t0 + 5) * 1000), new Date((t0 + 8) * 1000), {}, opts);
    assert.deepEqual(win.map((x) => Number(x.__time__)), [t0 + 5, t0 + 6, t0 + 7]); // [from, to)
    const kv = await c.getLogs('flowproj', 'flowstore', new Date((t0 - 1) * 1000), new Date((t0 + 100) * 1000),
      { query: 'srcaddr:10.0.1.1 and dstport:443' }, opts);
    assert.deepEqual(kv.map((x) => x.srcport), ['1025']);
    const tagq = await c.getLogs('flowproj', 'flowstore', new Date((t0 - 1) * 1000), new Date((t0 + 100) * 1000),
      { query: '__tag__:sag_id:"sag-123" and __topic__:flowlog', line: 1 }, opts);
    assert.equal(tagq.length, 1);
  });

  test('GetLogs through sls20201230 (hmac-sha256) answers strings and the x-log headers', async () => {
    const s = slsClient(srv, TEST_AKID, TEST_SECRET);
    const r = await s.getLogs('flowproj', 'flowstore', new Sls.GetLogsRequest({ from: t0 - 1, to: t0 + 100,
      query: 'srcaddr:10.0.2.2', line: 100 }));
    assert.equal(r.headers['x-log-progress'], 'Complete');
    assert.equal(r.headers['x-log-count'], '1');
    assert.equal(r.body[0].bytes, '300');
  });

  test('GetLogs with a V4 signature (SLS4-HMAC-SHA256) from sls20201230', async () => {
    const s = slsClient(srv, TEST_AKID, TEST_SECRET, { signatureVersion: 'v4', regionId: 'cn-hangzhou' });
    const r = await s.getLogs('flowproj', 'flowstore', new Sls.GetLogsRequest({ from: t0 - 1, to: t0 + 100,
      query: '*', line: 2 }));
    assert.equal(r.body.length, 2);
  });

  test('an lz4 PutLogs (raw block, x-log-bodyrawsize) is stored; deflate and zstd are refused when corrupt', async () => {
    const raw = encodeGroup({ logs: [{ time: t0 + 200, content: { marker: 'lz4-one', bytes: '1' } }], topic: 'lz' });
    const body = lz4Block(raw);
    const r = await rawRequest(srv, { project: 'flowproj', path: '/logstores/flowstore/shards/lb', body,
      akid: TEST_AKID, secret: TEST_SECRET, headers: { 'content-type': 'application/x-protobuf',
        'x-log-compresstype': 'lz4', 'x-log-bodyrawsize': String(raw.length) } });
    assert.equal(r.status, 200, r.body);
    assert.equal(r.headers['content-type'], undefined);
    assert.match(r.headers['x-log-requestid'], /^[0-9A-F]{24}$/);
    const got = await c.getLogs('flowproj', 'flowstore', new Date((t0 + 200) * 1000), new Date((t0 + 201) * 1000), {}, opts);
    assert.deepEqual(got.map((x) => x.marker), ['lz4-one']);
    const bad = await rawRequest(srv, { project: 'flowproj', path: '/logstores/flowstore', body: Buffer.from('nonsense'),
      akid: TEST_AKID, secret: TEST_SECRET, headers: { 'x-log-compresstype': 'zstd', 'x-log-bodyrawsize': '100' } });
    assert.equal(bad.json.errorCode, 'PostBodyUncompressError');
  });

  test('a LogGroup retried with the same __pack_id__ is stored once', async () => {
    const data = { logs: [{ timestamp: t0 + 300, content: { marker: 'packed' } }], tags: [{ __pack_id__: '5F3A9C21B0D4E6F7-1' }] };
    await c.postLogStoreLogs('flowproj', 'flowstore', data, opts);
    await c.postLogStoreLogs('flowproj', 'flowstore', data, opts);
    await Promise.all([1, 2, 3].map(() => c.postLogStoreLogs('flowproj', 'flowstore', data, opts)));
    const got = await c.getLogs('flowproj', 'flowstore', new Date((t0 + 300) * 1000), new Date((t0 + 301) * 1000), {}, opts);
    assert.equal(got.length, 1);
    assert.equal(got[0]['__tag__:__pack_id__'], '5F3A9C21B0D4E6F7-1');
  });

  test('another account sees ProjectNotExist; its own project is separate', async () => {
    const k = spawnSync(BIN, ['keys', 'create', '--db', srv.dbPath, '--account', 'other'], { encoding: 'utf8' });
    assert.equal(k.status, 0, k.stderr);
    const key = JSON.parse(k.stdout);
    const o = logClient(srv, key.AccessKeyId, key.AccessKeySecret);
    assert.equal(await codeOf(o.getProject('flowproj', opts)), 'ProjectNotExist');
    assert.equal(await codeOf(o.getLogs('flowproj', 'flowstore', new Date(0), new Date(), {}, opts)), 'ProjectNotExist');
    assert.equal(await codeOf(o.postLogStoreLogs('flowproj', 'flowstore', { logs: [{ timestamp: t0, content: { a: 'b' } }] }, opts)),
      'ProjectNotExist');
    assert.equal(await codeOf(o.createProject('flowproj', {}, opts)), 'ProjectAlreadyExist'); // names are global
    await o.createProject('otherproj', {}, opts);
    const s = slsClient(srv, key.AccessKeyId, key.AccessKeySecret);
    const mine = await s.listProject(new Sls.ListProjectRequest({}));
    assert.deepEqual(mine.body.projects.map((x) => x.projectName), ['otherproj']);
  });

  test('error codes through the clients', async () => {
    assert.equal(await codeOf(logClient(srv, TEST_AKID, 'wrong').getProject('flowproj', opts)), 'SignatureNotMatch');
    assert.equal(await codeOf(logClient(srv, 'nosuchkey', 'x').getProject('flowproj', opts)), 'Unauthorized');
    assert.equal(await codeOf(c.getLogs('flowproj', 'nostore', new Date(0), new Date(), {}, opts)), 'LogStoreNotExist');
    assert.equal(await codeOf(c.getProject('noproject', opts)), 'ProjectNotExist');
    assert.equal(await codeOf(c.createProject('flowproj', {}, opts)), 'ProjectAlreadyExist');
    assert.equal(await codeOf(c.createLogStore('flowproj', 'flowstore', {}, opts)), 'LogStoreAlreadyExist');
    assert.equal(await codeOf(c.createProject('Bad_Name', {}, opts)), 'InvalidParameter');
    assert.equal(await codeOf(c.getLogs('flowproj', 'flowstore', new Date(0), new Date(),
      { query: '* | update log set bytes = 0' }, opts)), 'InvalidQueryString');
    const s = slsClient(srv, TEST_AKID, 'wrong');
    await assert.rejects(s.getProject('flowproj'), (e) => e.code === 'SignatureNotMatch' && e.data.statusCode === 401);
  });

  test('error codes only raw HTTP can produce', async () => {
    const put = (headers, body = Buffer.from('x'), extra = {}) => rawRequest(srv, { project: 'flowproj',
      path: '/logstores/flowstore/shards/lb', body, akid: TEST_AKID, secret: TEST_SECRET, headers, ...extra });
    const cases = [
      [await put({ 'x-log-compresstype': 'snappy', 'x-log-bodyrawsize': '1' }), 400, 'InvalidCompressType'],
      [await put({ 'x-log-compresstype': 'lz4' }), 400, 'MissingBodyRawSize'],
      [await put({ 'x-log-compresstype': 'lz4', 'x-log-bodyrawsize': 'ten' }), 400, 'InvalidBodyRawSize'],
      [await put({ 'x-log-compresstype': 'lz4', 'x-log-bodyrawsize': String(11 << 20) }), 413, 'PostBodyTooLarge'],
      [await put({ 'x-log-compresstype': 'deflate', 'x-log-bodyrawsize': '10' }), 400, 'PostBodyUncompressError'],
      [await put({}, Buffer.from([0x0a, 0xff])), 400, 'PostBodyInvalid'],
      [await put({}, Buffer.from('x'), { date: new Date(Date.now() - 3600e3).toUTCString() }), 400, 'RequestTimeExpired'],
      [await put({}, Buffer.from('x'), { date: null }), 400, 'MissingDate'],
      [await put({}, Buffer.from('x'), { date: 'yesterday' }), 400, 'InvalidDateFormat'],
      [await put({}, Buffer.from('x'), { sign: false }), 401, 'Unauthorized'],
    ];
    for (const [r, status, code] of cases) {
      assert.equal(r.json?.errorCode, code, r.body);
      assert.equal(r.status, status, code);
      assert.equal(r.headers['content-type'], 'application/json');
      assert.match(r.headers['x-log-requestid'], /^[0-9A-F]{24}$/);
    }
    // A body beyond 10 MB as sent is refused before it is read.
    const big = await put({}, Buffer.alloc(0), { declaredLength: (10 << 20) + 1 });
    assert.equal(big.status, 413);
    assert.equal(big.json?.errorCode, 'PostBodyTooLarge');
    // RPC requests on the same listener still get the RPC API.
    const rpc = await fetch(`${srv.url}/?Action=DescribeRegions`);
    assert.match(await rpc.text(), /IncompleteSignature|MissingParameter/);
  });

  test('DeleteLogStore and DeleteProject', async () => {
    await c.createLogStore('flowproj', 'tmpstore', {}, opts);
    await c.postLogStoreLogs('flowproj', 'tmpstore', { logs: [{ timestamp: t0, content: { a: '1' } }] }, opts);
    await c.deleteLogStore('flowproj', 'tmpstore', opts);
    assert.equal(await codeOf(c.getLogs('flowproj', 'tmpstore', new Date(0), new Date(), {}, opts)), 'LogStoreNotExist');
    await c.createLogStore('flowproj', 'tmpstore', {}, opts);
    const fresh = await c.getLogs('flowproj', 'tmpstore', new Date(0), new Date(), {}, opts);
    assert.deepEqual(fresh, []);
    await c.createProject('gone-soon', {}, opts);
    await c.deleteProject('gone-soon', opts);
    assert.equal(await codeOf(c.getProject('gone-soon', opts)), 'ProjectNotExist');
  });
});

describe('Log Service: reads racing the first write', () => {
  // The first PutLogs of a logstore creates its day file. GetLogs (SQL and
  // not) and GetHistograms that list the directory meanwhile must see nothing
  // or the whole group, never 500: before, a read could open the file before
  // its tables existed (docs/logstore.md, "Layout").
  const STORES = 12;
  let srv, c;
  before(async () => {
    srv = await startServer();
    c = logClient(srv, TEST_AKID, TEST_SECRET);
    await c.createProject('raceproj', {}, opts);
  });
  after(() => stopClean(srv));

  test('GetLogs and GetHistograms during the first PutLogs of new logstores answer 0 or all, never 5xx', async () => {
    const t = NOW();
    const from = new Date((t - 60) * 1000), to = new Date((t + 60) * 1000);
    const logs = Array.from({ length: 50 }, (_, i) => ({ timestamp: t, content: sagRecord(i) }));
    const seen = [];
    const read = async (ls) => {
      const [sql] = await c.getLogs('raceproj', ls, from, to, { query: '* | select count(*) as n' }, opts);
      const rows = await c.getLogs('raceproj', ls, from, to, { line: 100 }, opts);
      const h = await c.getHistograms('raceproj', ls, from, to, { query: '*' }, opts);
      const total = h.reduce((a, b) => a + Number(b.count), 0);
      return [Number(sql.n), rows.length, total];
    };
    for (let k = 0; k < STORES; k++) {
      const ls = `race${k}`;
      await c.createLogStore('raceproj', ls, {}, opts);
      let done = false;
      const readers = Promise.all(Array.from({ length: 3 }, async () => {
        try {
          while (!done) seen.push(...await read(ls));
        } finally {
          done = true; // the first failure stops the others
        }
      }));
      readers.catch(() => {}); // awaited below; handled now, so an early 5xx is not "unhandled"
      await new Promise((r) => setTimeout(r, 5));
      await c.postLogStoreLogs('raceproj', ls, { logs }, opts);
      done = true;
      await readers; // a 5xx rejects here
      assert.deepEqual(await read(ls), [50, 50, 50], `${ls}: the acknowledged group is read whole`);
    }
    assert.ok(seen.length > 0);
    for (const n of seen) assert.ok(n === 0 || n === 50, `a read saw ${n} of 50 logs`);
  });
});

describe('Log Service durability', () => {
  test('kill -9 under concurrent PutLogs loses no acknowledged LogGroup', async () => {
    let srv = await startServer({ keepDir: true });
    const c = logClient(srv, TEST_AKID, TEST_SECRET);
    await c.createProject('durable', {}, opts);
    await c.createLogStore('durable', 'store', {}, opts);
    const acked = new Set();
    const t = NOW();
    let stop = false;
    const writer = async (w) => {
      for (let i = 0; !stop; i++) {
        const id = `${w}-${i}`;
        const logs = Array.from({ length: 20 }, (_, k) => ({ timestamp: t, content: { group: id, k: String(k) } }));
        try {
          await c.postLogStoreLogs('durable', 'store', { logs }, opts);
          acked.add(id);
        } catch { return; }
      }
    };
    const writers = Array.from({ length: 8 }, (_, w) => writer(w));
    while (acked.size < 40) await new Promise((r) => setTimeout(r, 20));
    srv.proc.kill('SIGKILL');
    stop = true;
    await Promise.all(writers);
    await new Promise((r) => srv.proc.exitCode !== null || srv.proc.signalCode ? r() : srv.proc.once('exit', r));
    const dbPath = srv.dbPath;
    srv = await startServer({ dbPath });
    try {
      const c2 = logClient(srv, TEST_AKID, TEST_SECRET);
      const counts = new Map();
      for (const id of acked) {
        const rows = await c2.getLogs('durable', 'store', new Date(t * 1000), new Date((t + 1) * 1000),
          { query: `group:"${id}"` }, opts);
        counts.set(id, rows.length);
      }
      for (const [id, n] of counts) assert.equal(n, 20, `group ${id}: ${n} of 20 logs after kill -9`);
    } finally {
      await stopClean(srv);
    }
  });
});
