// Queries of the log store (issue 10 part 5, docs/logstore.md "Query"): the
// search syntax and the SQL after '|' through GetLogs, GetLogsV2 and
// GetHistograms, with the unmodified @alicloud/log and @alicloud/sls20201230
// clients. Every expected answer is computed here from the records the test
// wrote (seeded random SAG flow records, spec §2.2), never hard-coded.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { TEST_AKID, TEST_SECRET, startServer, stopClean } from './lib/server.mjs';
import { agent, logClient, rawRequest, slsClient, Sls } from './lib/sls.mjs';

const opts = { agent };
const N = 600;           // records
const GROUP = 100;       // records per LogGroup
const SPAN = 600;        // seconds they spread over

// mulberry32: a small seeded PRNG, so a failure can be replayed.
function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const SRC = ['10.0.0.1', '10.0.0.12', '10.0.0.13', '10.0.0.2', '10.0.0.3', '10.0.0.4', '10.0.0.5', '10.0.0.6'];
const DST = ['192.168.1.10', '192.168.1.20', '192.168.1.30', '192.168.1.40', '192.168.1.50'];
const PORTS = [22, 53, 80, 443, 3389, 8080];
const PROTOS = [6, 17, 1];

function records(t0) {
  const r = rng(20261201);
  const pick = (a) => a[Math.floor(r() * a.length)];
  return Array.from({ length: N }, (_, i) => {
    const time = t0 + Math.floor(r() * SPAN);
    const start = time - Math.floor(r() * 50);
    return {
      time,
      f: {
        Instance_id: 'sag-e2e0001', snid: 'sag1000-sn-01', 'ali-uid': '1234567890', start, end: time,
        protocol: pick(PROTOS), srcaddr: pick(SRC), srcport: 1024 + Math.floor(r() * 60000),
        dstaddr: pick(DST), dstport: pick(PORTS), packets: 1 + Math.floor(r() * 200),
        bytes: 40 + Math.floor(r() * 20000), 'tcp-flags': Math.floor(r() * 64), tos: 0, inport: 1, outport: 2,
        seq: i,
      },
    };
  });
}

const str = (f) => Object.fromEntries(Object.entries(f).map(([k, v]) => [k, String(v)]));
const sum = (a) => a.reduce((x, y) => x + y, 0);
const groupSum = (rows, key, val) => {
  const m = new Map();
  for (const r of rows) m.set(r.f[key], (m.get(r.f[key]) || 0) + val(r));
  return m;
};
const pad = (n) => String(n).padStart(2, '0');

async function errOf(p) {
  try { await p; } catch (e) { return { code: e.code, message: e.message }; }
  return { code: 'no error' };
}

describe('Log Service queries: search syntax, SQL, GetLogsV2, GetHistograms', () => {
  let srv, c, s, t0, recs;
  const from = () => new Date(t0 * 1000);
  const to = () => new Date((t0 + SPAN) * 1000);
  const q = (query, extra = {}) => c.getLogs('flowproj', 'flowstore', from(), to(), { query, ...extra }, opts);
  const one = async (query) => (await q(query))[0];
  const count = async (search) => Number((await one(`${search} | select count(*) as c`)).c);
  const where = (pred) => recs.filter(pred).length;

  before(async () => {
    srv = await startServer();
    c = logClient(srv, TEST_AKID, TEST_SECRET);
    s = slsClient(srv, TEST_AKID, TEST_SECRET);
    t0 = Math.floor((Date.now() / 1000 - 7200) / 60) * 60;
    recs = records(t0);
    await c.createProject('flowproj', {}, opts);
    await c.createLogStore('flowproj', 'flowstore', {}, opts);
    for (let i = 0; i < N; i += GROUP) {
      await c.postLogStoreLogs('flowproj', 'flowstore', { topic: 'flowlog', source: '10.9.9.9',
        logs: recs.slice(i, i + GROUP).map((r) => ({ timestamp: r.time, content: str(r.f) })) }, opts);
    }
  });
  after(() => stopClean(srv));

  test('counts: *, key:value, full text, prefix, and/or/not/parentheses', async () => {
    assert.equal(await count('*'), N);
    assert.equal(await count('protocol:6'), where((r) => r.f.protocol === 6));
    assert.equal(await count('10.0.0.3'), where((r) => r.f.srcaddr === '10.0.0.3'));
    assert.equal(await count('srcaddr:10.0.0.1*'), where((r) => r.f.srcaddr.startsWith('10.0.0.1')));
    assert.equal(await count('(dstport:22 or dstport:3389) and protocol:6'),
      where((r) => (r.f.dstport === 22 || r.f.dstport === 3389) && r.f.protocol === 6));
    assert.equal(await count('not dstport:443'), where((r) => r.f.dstport !== 443));
    assert.equal(await count('protocol:17 not dstport:53'), where((r) => r.f.protocol === 17 && r.f.dstport !== 53));
    assert.equal(await count('__topic__:flowlog and "tcp-flags":0'), where((r) => r.f['tcp-flags'] === 0));
    // Search alone: GetLogs pages the matching logs; x-log-count is the page.
    const sr = await s.getLogs('flowproj', 'flowstore', new Sls.GetLogsRequest({ from: t0, to: t0 + SPAN,
      query: 'srcaddr:10.0.0.12 and dstport:80', line: 100 }));
    const want = recs.filter((r) => r.f.srcaddr === '10.0.0.12' && r.f.dstport === 80);
    assert.equal(sr.headers['x-log-count'], String(want.length));
    assert.equal(sr.headers['x-log-has-sql'], 'false');
    assert.deepEqual(sr.body.map((x) => Number(x.seq)).sort((a, b) => a - b), want.map((r) => r.f.seq));
  });

  test('numeric comparisons and ranges', async () => {
    assert.equal(await count('bytes > 10000'), where((r) => r.f.bytes > 10000));
    assert.equal(await count('bytes >= 1000 and bytes <= 5000'), where((r) => r.f.bytes >= 1000 && r.f.bytes <= 5000));
    assert.equal(await count('packets < 20 or packets = 100'), where((r) => r.f.packets < 20 || r.f.packets === 100));
    assert.equal(await count('dstport in [0 1024)'), where((r) => r.f.dstport >= 0 && r.f.dstport < 1024));
    assert.equal(await count('srcport in (2000 30000]'), where((r) => r.f.srcport > 2000 && r.f.srcport <= 30000));
  });

  test('sums by key, top-N, aggregates, quoted identifiers', async () => {
    const sums = groupSum(recs, 'srcaddr', (r) => r.f.bytes);
    const rows = await q('* | select srcaddr, sum(bytes) as b group by srcaddr order by b desc');
    assert.deepEqual(rows, [...sums].sort((a, b) => b[1] - a[1]).map(([k, v]) => ({ srcaddr: k, b: String(v) })));
    const top = await q('* | select srcaddr, sum(bytes) as b group by srcaddr order by b desc limit 3');
    assert.deepEqual(top.map((x) => x.srcaddr), [...sums].sort((a, b) => b[1] - a[1]).slice(0, 3).map(([k]) => k));
    const tcp = recs.filter((r) => r.f.protocol === 6);
    const byPort = groupSum(tcp, 'dstport', () => 1);
    const ports = await q('protocol:6 | select dstport, count(*) as c group by dstport having c > 1 order by dstport');
    assert.deepEqual(ports, [...byPort].filter(([, n]) => n > 1).sort((a, b) => a[0] - b[0])
      .map(([p, n]) => ({ dstport: String(p), c: String(n) })));
    const agg = await one('* | select min(bytes) as mn, max(bytes) as mx, avg(packets) as ap, '
      + 'count(distinct srcaddr) as d, approx_distinct(dstaddr) as ad, sum("end" - start) as dur, max(`tcp-flags`) as tf');
    const bytes = recs.map((r) => r.f.bytes);
    assert.equal(agg.mn, String(Math.min(...bytes)));
    assert.equal(agg.mx, String(Math.max(...bytes)));
    assert.ok(Math.abs(Number(agg.ap) - sum(recs.map((r) => r.f.packets)) / N) < 1e-9, agg.ap);
    assert.equal(agg.d, String(new Set(recs.map((r) => r.f.srcaddr)).size));
    assert.equal(agg.ad, String(new Set(recs.map((r) => r.f.dstaddr)).size));
    assert.equal(agg.dur, String(sum(recs.map((r) => r.f.end - r.f.start))));
    assert.equal(agg.tf, String(Math.max(...recs.map((r) => r.f['tcp-flags']))));
    // SQL's own WHERE, CASE, LIKE, IN, and FROM naming the logstore.
    const w = await one("* | select count(*) as c, sum(case when dstport in (80, 443) then 1 else 0 end) as web "
      + "from flowstore where srcaddr like '10.0.0.1%' and bytes between 100 and 15000");
    const sel = recs.filter((r) => r.f.srcaddr.startsWith('10.0.0.1') && r.f.bytes >= 100 && r.f.bytes <= 15000);
    assert.equal(w.c, String(sel.length));
    assert.equal(w.web, String(sel.filter((r) => r.f.dstport === 80 || r.f.dstport === 443).length));
  });

  test('LIMIT: 100 rows by default', async () => {
    const rows = await q('* | select seq, bytes order by cast(seq as bigint)');
    assert.equal(rows.length, 100);
    assert.deepEqual(rows.map((x) => x.seq), recs.slice(0, 100).map((r) => String(r.f.seq)));
    assert.equal((await q('* | select seq limit 250')).length, 250);
  });

  test('time buckets: __time__ - __time__ % 60, date_trunc, date_format', async () => {
    const m = new Map();
    for (const r of recs) m.set(r.time - (r.time % 60), (m.get(r.time - (r.time % 60)) || 0) + 1);
    const want = [...m].sort((a, b) => a[0] - b[0]).map(([t, n]) => ({ t: String(t), c: String(n) }));
    assert.deepEqual(await q('* | select __time__ - __time__ % 60 as t, count(*) as c group by t order by t'), want);
    assert.deepEqual(await q("* | select date_trunc('minute', __time__) as t, count(*) as c group by t order by t"), want);
    const fmt = (t) => { const d = new Date(t * 1000); return `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}`; };
    const f = await q("* | select date_format(date_trunc('minute', __time__), '%H:%i') as hm, count(*) as c "
      + 'group by hm order by hm');
    assert.deepEqual(f, want.map((x) => ({ hm: fmt(Number(x.t)), c: x.c })).sort((a, b) => (a.hm < b.hm ? -1 : 1)));
    const u = await one(`* | select from_unixtime(${t0}) as ts, to_unixtime(from_unixtime(${t0})) as back`);
    const d = new Date(t0 * 1000);
    assert.equal(u.ts, `${d.toISOString().slice(0, 10)} ${d.toISOString().slice(11, 19)}.000`);
    assert.equal(Number(u.back), t0);
  });

  test('a subquery in FROM', async () => {
    const sums = groupSum(recs, 'srcaddr', (r) => r.f.bytes);
    const limit = sum([...sums.values()]) / sums.size;
    const r = await one(`* | select count(1) as n from (select srcaddr, sum(bytes) as s group by srcaddr having s > ${limit})`);
    assert.equal(r.n, String([...sums.values()].filter((v) => v > limit).length));
    // The bandwidth form of spec §2.2: an inner SELECT without FROM, an outer GROUP BY over it.
    const rows = await q('protocol:17 | SELECT dstaddr, SUM(b) AS total FROM (SELECT dstaddr, bytes AS b, '
      + '(__time__ - (__time__ % 3600)) AS t limit 1000) GROUP BY dstaddr ORDER BY total DESC limit 1000');
    const udp = groupSum(recs.filter((x) => x.f.protocol === 17), 'dstaddr', (x) => x.f.bytes);
    assert.deepEqual(rows, [...udp].sort((a, b) => b[1] - a[1]).map(([k, v]) => ({ dstaddr: k, total: String(v) })));
  });

  test('SQL answers carry the x-log headers of spec §5.2 (sls20201230)', async () => {
    const r = await s.getLogs('flowproj', 'flowstore', new Sls.GetLogsRequest({ from: t0, to: t0 + SPAN,
      query: 'protocol:6 | select srcaddr, count(*) as c group by srcaddr order by c desc, srcaddr' }));
    const m = groupSum(recs.filter((x) => x.f.protocol === 6), 'srcaddr', () => 1);
    assert.equal(r.headers['x-log-progress'], 'Complete');
    assert.equal(r.headers['x-log-has-sql'], 'true');
    assert.equal(r.headers['x-log-count'], String(m.size));
    assert.equal(r.headers['x-log-where-query'], 'protocol:6');
    assert.match(r.headers['x-log-agg-query'], /^select srcaddr, count/);
    assert.equal(r.headers['x-log-processed-rows'], String(N));
    assert.deepEqual(JSON.parse(r.headers['x-log-query-info']).keys, ['srcaddr', 'c']);
    assert.match(r.headers['x-log-elapsed-millisecond'], /^\d+$/);
    assert.equal(r.body.length, m.size);
  });

  test('GetLogsV2 through sls20201230, with and without lz4', async () => {
    const query = 'dstport:443 | select srcaddr, sum(bytes) as b group by srcaddr order by b desc';
    const sums = groupSum(recs.filter((x) => x.f.dstport === 443), 'srcaddr', (x) => x.f.bytes);
    const want = [...sums].sort((a, b) => b[1] - a[1]).map(([k, v]) => ({ srcaddr: k, b: String(v) }));
    const req = new Sls.GetLogsV2Request({ from: t0, to: t0 + SPAN, query, line: 100 });
    // gateway-sls asks for lz4 unless told otherwise.
    const plain = await s.getLogsV2WithOptions('flowproj', 'flowstore', req,
      new Sls.GetLogsV2Headers({ acceptEncoding: 'identity' }), {});
    assert.equal(plain.headers['x-log-compresstype'], undefined);
    assert.equal(plain.headers['x-log-bodyrawsize'], undefined);
    assert.deepEqual(plain.body.data, want);
    assert.equal(plain.body.meta.progress, 'Complete');
    assert.equal(plain.body.meta.hasSQL, true);
    assert.equal(plain.body.meta.count, want.length);
    assert.deepEqual(plain.body.meta.keys, ['srcaddr', 'b']);
    const z = await s.getLogsV2('flowproj', 'flowstore', req);
    assert.equal(z.headers['x-log-compresstype'], 'lz4');
    assert.ok(Number(z.headers['x-log-bodyrawsize']) > 0);
    assert.deepEqual(z.body.data, want);
    // Search only, paged as GetLogs is.
    const page = await s.getLogsV2('flowproj', 'flowstore', new Sls.GetLogsV2Request({ from: t0, to: t0 + SPAN,
      query: 'srcaddr:10.0.0.2', line: 5, offset: 2 }));
    const all = recs.filter((x) => x.f.srcaddr === '10.0.0.2').sort((a, b) => a.time - b.time || a.f.seq - b.f.seq);
    assert.deepEqual(page.body.data.map((x) => x.seq), all.slice(2, 7).map((x) => String(x.f.seq)));
    assert.equal(page.body.meta.hasSQL, false);
  });

  test('GetHistograms through both clients and both paths', async () => {
    const width = 10; // 600 s in at most 100 buckets: 10 s
    const want = [];
    for (let b = t0; b < t0 + SPAN; b += width) {
      want.push({ from: b, to: b + width, count: where((r) => r.time >= b && r.time < b + width && r.f.bytes > 1000),
        progress: 'Complete' });
    }
    const viaLog = await c.getHistograms('flowproj', 'flowstore', from(), to(), { query: 'bytes > 1000' }, opts);
    assert.deepEqual(viaLog, want);
    const viaSls = await s.getHistograms('flowproj', 'flowstore', new Sls.GetHistogramsRequest({ from: t0,
      to: t0 + SPAN, query: 'bytes > 1000' }));
    assert.equal(viaSls.headers['x-log-progress'], 'Complete');
    assert.equal(viaSls.headers['x-log-count'], String(where((r) => r.f.bytes > 1000)));
    assert.deepEqual(viaSls.body.map((x) => ({ ...x })), want);
    // A day: 96 buckets of 15 minutes.
    const day = await c.getHistograms('flowproj', 'flowstore', new Date((t0 - 43200) * 1000), new Date((t0 + 43200) * 1000), {}, opts);
    assert.equal(day.length, 96 + ((t0 - 43200) % 900 ? 1 : 0));
    assert.equal(sum(day.map((x) => x.count)), N);
  });

  test('queries outside the subset are InvalidQueryString saying what was not understood', async () => {
    const cases = [
      ['* | selec count(*)', /only SELECT/],
      ['* | select nosuchfn(bytes)', /no such function: nosuchfn/],
      ["* | select time_series(__time__, '1m', '%H:%i:%s', '0')", /no such function: time_series/],
      ['* | select count(* from log', /syntax error|not closed/],
      ['(srcaddr:10.0.0.1', /'\)' expected/],
      ['srcaddr:*abc', /cannot start with/],
      ['bytes > many', /a number expected/],
      ["* | select date_trunc('fortnight', __time__)", /date_trunc: the unit/],
    ];
    for (const [query, re] of cases) {
      const e = await errOf(q(query));
      assert.equal(e.code, 'InvalidQueryString', query);
      assert.match(e.message, re, query);
    }
  });

  test('hostile queries are refused and the server keeps serving', async () => {
    const cases = [
      ["* | attach database '/tmp/x.db' as x", /only SELECT/],
      ['* | pragma table_info(log)', /only SELECT/],
      ["* | select load_extension('/tmp/evil.so')", /the function 'load_extension' is not allowed/],
      ['* | select * from sqlite_master', /another table than 'log': 'sqlite_master'/],
      ["* | select * from pragma_table_info('log')", /not allowed/],
      ['* | select * from projects', /no such table: projects/],
      ['* | select * from logstores', /no such table: logstores/],
      ['* | select count(*) from log; delete from log', /one statement only/],
      ['* | with recursive c(x) as (select 1 union all select x + 1 from c) select count(*) from c',
        /a recursive WITH is not allowed/],
      ["* | select randomblob(1000000000)", /the function 'randomblob' is not allowed/],
    ];
    for (const [query, re] of cases) {
      const e = await errOf(q(query));
      assert.equal(e.code, 'InvalidQueryString', query);
      assert.match(e.message, re, query);
    }
    // A query that would run for hours is cut by the time budget, with a clear error.
    // (@alicloud/log gives up after 3 s by default: this call waits longer.)
    const t = Date.now();
    const e = await errOf(c.getLogs('flowproj', 'flowstore', from(), to(),
      { query: '* | select count(*) as n from log a, log b, log c, log d' }, { agent, timeout: 30000 }));
    assert.equal(e.code, 'InvalidQueryString');
    assert.match(e.message, /time budget of 5000 ms/);
    assert.ok(Date.now() - t < 20000, `took ${Date.now() - t} ms`);
    // A 1 MB query: too long for a URL, and refused in a GetLogsV2 body.
    const big = `* | select count(*) as c where srcaddr = '${'x'.repeat(1 << 20)}'`;
    // libmicrohttpd refuses a URL that does not fit its connection memory itself (414).
    const viaGet = await rawRequest(srv, { method: 'GET', project: 'flowproj', path: '/logstores/flowstore',
      query: new URLSearchParams({ type: 'log', from: t0, to: t0 + SPAN, query: big }).toString(),
      akid: TEST_AKID, secret: TEST_SECRET });
    assert.equal(viaGet.status, 414);
    const body = Buffer.from(JSON.stringify({ from: t0, to: t0 + SPAN, query: big }));
    const viaPost = await rawRequest(srv, { project: 'flowproj', path: '/logstores/flowstore/logs', body, akid: TEST_AKID,
      secret: TEST_SECRET, headers: { 'content-type': 'application/json' } });
    assert.equal(viaPost.status, 400);
    assert.equal(viaPost.json.errorCode, 'InvalidQueryString');
    assert.match(viaPost.json.errorMessage, /longer than 16384 bytes/);
    // Still serving, and nothing was written.
    assert.equal(await count('*'), N);
    const ls = await c.listLogStore('flowproj', {}, opts);
    assert.deepEqual(ls.logstores, ['flowstore']);
  });

  test('a query reads only its own logstore', async () => {
    await c.createLogStore('flowproj', 'otherstore', {}, opts);
    await c.postLogStoreLogs('flowproj', 'otherstore', { logs: [{ timestamp: t0 + 1, content: { bytes: '7' } }] }, opts);
    const other = await c.getLogs('flowproj', 'otherstore', from(), to(), { query: '* | select count(*) as c, sum(bytes) as b' }, opts);
    assert.deepEqual(other, [{ c: '1', b: '7' }]);
    const e = await errOf(q('* | select count(*) from otherstore'));
    assert.equal(e.code, 'InvalidQueryString');
    assert.match(e.message, /no such table: otherstore/);
    assert.equal(await count('*'), N);
  });
});
