// The agent's Log Service leg end to end (issue 11, docs/agent.md): the real
// `sagflow agent` replays a generated capture under a flow log with OutputType
// sls or all, writes every record with PutLogs (lz4, signed as the device) to
// the real `sagflow serve`'s log store, and the real @alicloud/log client's
// getLogs with SQL sums them up; the expectation is lib/pcapgen.mjs's own
// reference of spec §2, and nfdump's totals for the NetFlow leg.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { startServer, stopClean, TEST_AKID, TEST_SECRET } from './lib/server.mjs';
import { api } from './lib/sag.mjs';
import { freeUdpPort } from './lib/collector.mjs';
import { scenario, reference, totals, writePcap, T0 } from './lib/pcapgen.mjs';
import { agentRun, agentLive, nfcapdOn, collected, provision, udpFlows } from './lib/agent.mjs';
import { agent as pinned, logClient } from './lib/sls.mjs';
import { makePki } from './lib/pki.mjs';

const opts = { agent: pinned };
const FROM = new Date((T0 / 1e6 - 60) * 1000), TO = new Date((T0 / 1e6 + 3600) * 1000);
let srv, a, c, dir, pcap, packets;
let n = 0;

before(async () => {
  srv = await startServer();
  a = api(srv);
  c = logClient(srv, TEST_AKID, TEST_SECRET);
  dir = mkdtempSync(join(tmpdir(), 'sagflow-agent-sls-'));
  packets = scenario();
  pcap = join(dir, 'gateway.pcap');
  writePcap(pcap, packets);
});

after(async () => {
  if (dir) rmSync(dir, { recursive: true, force: true });
  await stopClean(srv);
});

// A gateway bound to a new flow log; returns { g, fl, project, logstore }.
async function bound(params) {
  const project = `agentp${++n}`, logstore = `flows${n}`;
  const fl = (await a.call('CreateFlowLog', { SlsRegionId: 'cn-shanghai', ProjectName: project,
    LogstoreName: logstore, ...params })).FlowLogId;
  const g = await provision(a);
  assert.equal(agentRun(srv.url, g, ['--once']).status, 0);
  await a.call('AssociateFlowLog', { FlowLogId: fl, SmartAGId: g.id });
  return { g, fl, project, logstore };
}

async function sql(client, project, logstore, query) {
  return client.getLogs(project, logstore, FROM, TO, { query }, opts);
}

// The log store's totals, as the query computes them.
async function stored(client, project, logstore) {
  const [r] = await sql(client, project, logstore,
    '* | select count(*) as records, sum(packets) as packets, sum(bytes) as bytes');
  return { records: Number(r.records), packets: Number(r.packets ?? 0), bytes: Number(r.bytes ?? 0) };
}

function byProto(records) {
  const m = {};
  for (const r of records) {
    const k = String(r.proto);
    m[k] ??= { records: 0, packets: 0, bytes: 0 };
    m[k].records++; m[k].packets += r.packets; m[k].bytes += r.bytes;
  }
  return m;
}

async function storedByProto(client, project, logstore) {
  const rows = await sql(client, project, logstore,
    '* | select protocol, count(*) as records, sum(packets) as packets, sum(bytes) as bytes group by protocol');
  const m = {};
  for (const r of rows) m[r.protocol] = { records: Number(r.records), packets: Number(r.packets), bytes: Number(r.bytes) };
  return m;
}

test('sls 300/15: every record of a --read replay is in the logstore, exactly, per protocol too', async () => {
  const { g, fl, project, logstore } = await bound({ OutputType: 'sls', ActiveAging: 300, InactiveAging: 15 });
  const run = agentRun(srv.url, g, ['--read', pcap]);
  assert.equal(run.status, 0, run.stderr);
  assert.match(run.stderr, /Log Service leg to project 'agentp\d+' logstore 'flows\d+' at the control plane's log store/);
  const ref = reference(packets, 300, 15);
  assert.deepEqual(await stored(c, project, logstore), totals(ref));
  assert.deepEqual(await storedByProto(c, project, logstore), byProto(ref));
  assert.match(run.stderr, new RegExp(`sls: ${ref.length} records delivered, 0 queued, 0 dropped`));
  // The fields of spec §2.2, exactly as named, strings; __time__ is end; topic and source.
  const rows = await c.getLogs(project, logstore, FROM, TO, { line: 5 }, opts);
  assert.ok(rows.length > 0);
  for (const r of rows) {
    for (const k of ['Instance_id', 'snid', 'ali-uid', 'start', 'end', 'protocol', 'srcaddr', 'srcport',
      'dstaddr', 'dstport', 'packets', 'bytes', 'tcp-flags', 'tos', 'inport', 'outport'])
      assert.equal(typeof r[k], 'string', `field ${k} in ${JSON.stringify(r)}`);
    assert.equal(r.Instance_id, g.id);
    assert.equal(r.snid, g.serial);
    assert.equal(String(r.__time__), r.end);
    assert.ok(Number(r.start) <= Number(r.end));
    assert.equal(r.__topic__, fl);
    assert.equal(r.__source__, '127.0.0.1');
  }
  const attr = await a.call('DescribeSmartAccessGatewayAttribute', { SmartAGId: g.id });
  assert.deepEqual({ ...attr.Devices.Device[0].SlsDelivery }, { Status: 'delivered', Delivered: ref.length, Queued: 0,
    Dropped: 0, LastError: '', LastErrorTime: '' }, 'the final report: what the sender counted');
  assert.ok(!run.stderr.includes(g.secret), 'the secret is never logged');
});

test('all: nfdump and the log store both hold exactly the expected totals', async () => {
  const port = await freeUdpPort();
  const { g, project, logstore } = await bound({ OutputType: 'all', NetflowServerIp: '127.0.0.1',
    NetflowServerPort: port, NetflowVersion: 'V10', ActiveAging: 60, InactiveAging: 10 });
  const cdir = join(dir, 'all');
  mkdirSync(cdir);
  const nf = await nfcapdOn(cdir, port);
  let run;
  try {
    run = agentRun(srv.url, g, ['--read', pcap]);
    await sleep(300);
  } finally {
    await nf.stop();
  }
  assert.equal(run.status, 0, run.stderr);
  const t = totals(reference(packets, 60, 10));
  assert.deepEqual(collected(cdir), { Flows: t.records, Packets: t.packets, Bytes: t.bytes }, 'nfdump');
  assert.deepEqual(await stored(c, project, logstore), t, 'the log store');
});

test('serve --sls-endpoint points a region elsewhere: the agent connects there, Host <project>.<address>', async () => {
  // A second serve on the same database stands for another region's Log Service.
  const other = await startServer({ dbPath: srv.dbPath });
  const cp = await startServer({ dbPath: srv.dbPath, args: ['--sls-endpoint', `cn-hangzhou=${other.url}`] });
  try {
    const project = `agentp${++n}`, logstore = `flows${n}`;
    const fl = (await a.call('CreateFlowLog', { OutputType: 'sls', SlsRegionId: 'cn-hangzhou', ProjectName: project,
      LogstoreName: logstore, ActiveAging: 300, InactiveAging: 15 })).FlowLogId;
    const g = await provision(a);
    assert.equal(agentRun(cp.url, g, ['--once']).status, 0);
    await a.call('AssociateFlowLog', { FlowLogId: fl, SmartAGId: g.id });
    const once = agentRun(cp.url, g, ['--once']);
    assert.equal(once.json.FlowLog.SlsEndpoint, other.url);
    const run = agentRun(cp.url, g, ['--read', pcap]);
    assert.equal(run.status, 0, run.stderr);
    assert.match(run.stderr, new RegExp(`at ${other.url.replace(/[.]/g, '\\.')}`));
    assert.deepEqual(await stored(c, project, logstore), totals(reference(packets, 300, 15)));
    // serve's log is buffered (flushed on a timer): wait for the line.
    for (let i = 0; i < 100 && !other.stderr().includes(project); i++) await new Promise((r) => setTimeout(r, 50));
    assert.match(other.stderr(), new RegExp(`${project}`), 'the other endpoint took the writes');
  } finally {
    await stopClean(cp);
    await stopClean(other);
  }
  const bad = agentRun(srv.url, { serial: 'x', secret: 'y' }, ['--help']);
  assert.match(bad.stdout, /--sls-spool-max/);
});

test('the agent over https with the test CA delivers both channels; a wrong CA exits 1 with the reason', async () => {
  const pki = makePki(mkdtempSync(join(tmpdir(), 'sagflow-agent-pki-')));
  const wrong = makePki(mkdtempSync(join(tmpdir(), 'sagflow-agent-pki2-')));
  const tsrv = await startServer({ dbPath: srv.dbPath, tls: { cert: pki.chain, key: pki.key, ca: pki.root } });
  try {
    const project = `agentp${++n}`, logstore = `flows${n}`;
    const fl = (await a.call('CreateFlowLog', { OutputType: 'sls', SlsRegionId: 'cn-shanghai', ProjectName: project,
      LogstoreName: logstore, ActiveAging: 300, InactiveAging: 15 })).FlowLogId;
    const g = await provision(a);
    assert.equal(agentRun(tsrv.url, g, ['--once', '--ca-file', pki.root]).status, 0);
    await a.call('AssociateFlowLog', { FlowLogId: fl, SmartAGId: g.id });
    const run = agentRun(tsrv.url, g, ['--read', pcap, '--ca-file', pki.root]);
    assert.equal(run.status, 0, run.stderr);
    assert.deepEqual(await stored(c, project, logstore), totals(reference(packets, 300, 15)));
    for (const mode of [['--once'], ['--read', pcap], ['--interface', 'lo']]) {
      const r = agentRun(tsrv.url, g, [...mode, '--ca-file', wrong.root]);
      assert.equal(r.status, 1, `${mode}: ${r.stderr}`);
      assert.match(r.stderr, /the control plane 127\.0\.0\.1:\d+ is not trusted: .*certificate/);
      assert.match(r.stderr, /not starting: the control plane's TLS certificate is not trusted/);
    }
    const sys = agentRun(tsrv.url, g, ['--once']); // the system store does not know the test CA
    assert.equal(sys.status, 1, sys.stderr);
  } finally {
    await stopClean(tsrv);
    rmSync(pki.dir, { recursive: true, force: true });
    rmSync(wrong.dir, { recursive: true, force: true });
  }
});

test('sls -> netflow -> sls on a live agent: the records of each leg reach its own output, none lost or doubled', async () => {
  const port = await freeUdpPort(), tport = await freeUdpPort();
  const netflow = { NetflowServerIp: '127.0.0.1', NetflowServerPort: port, NetflowVersion: 'V9' };
  // InactiveAging 60: within a leg nothing closes; every record closes at a change (or the exit).
  const { g, fl, project, logstore } = await bound({ OutputType: 'sls', ...netflow, ActiveAging: 300, InactiveAging: 60 });
  const cdir = join(dir, 'modify');
  mkdirSync(cdir);
  const nf = await nfcapdOn(cdir, port);
  const legs = [await udpFlows(tport, 4), await udpFlows(tport, 5), await udpFlows(tport, 6)];
  const agent = agentLive(srv.url, g, ['--interface', 'lo', '--filter', `udp and dst host 127.0.0.1 and dst port ${tport}`]);
  const now = () => [new Date(Date.now() - 3600e3), new Date(Date.now() + 3600e3)];
  try {
    await agent.waitLog(/capturing on lo/);
    await agent.waitLog(/Log Service leg to project/);
    await legs[0].send(10);
    await sleep(300);
    let mark = agent.mark();
    await a.call('ModifyFlowLogAttribute', { FlowLogId: fl, OutputType: 'netflow' });
    await agent.waitLog(/has no Log Service leg|NetFlow V9 to 127\.0\.0\.1/, { after: mark, timeoutMs: 5000 });
    await legs[1].send(10);
    await sleep(300);
    mark = agent.mark();
    await a.call('ModifyFlowLogAttribute', { FlowLogId: fl, OutputType: 'sls' });
    await agent.waitLog(/Log Service leg to project/, { after: mark, timeoutMs: 5000 });
    await legs[2].send(10);
    await sleep(300);
    const r = await agent.stop();
    assert.equal(r.code, 0, r.log);
    assert.doesNotMatch(r.log, /refused for good/);
    assert.match(r.log, /sls: 10 records delivered, 0 queued, 0 dropped/);
  } finally {
    await agent.stop('SIGKILL');
    legs.forEach((l) => l.close());
    await sleep(300);
    await nf.stop();
  }
  const t = legs.map((l) => l.totals());
  const [r] = await c.getLogs(project, logstore, ...now(),
    { query: '* | select count(*) as records, sum(packets) as packets, sum(bytes) as bytes' }, opts);
  assert.deepEqual({ records: Number(r.records), packets: Number(r.packets), bytes: Number(r.bytes) },
    { records: 4 + 6, packets: t[0].packets + t[2].packets, bytes: t[0].bytes + t[2].bytes }, 'the sls legs');
  assert.deepEqual(collected(cdir), { Flows: 5, Packets: t[1].packets, Bytes: t[1].bytes }, 'the netflow leg');
});

test('the grace for the previous target is bounded: another project, and a flow log that never had it, are refused', async () => {
  const { g, fl, project } = await bound({ OutputType: 'sls', ActiveAging: 300, InactiveAging: 15 });
  await a.call('ModifyFlowLogAttribute', { FlowLogId: fl, OutputType: 'netflow', NetflowServerIp: '127.0.0.1',
    NetflowServerPort: 9995, NetflowVersion: 'V9' });
  const dev = logClient(srv, `device.${g.serial}`, g.secret);
  const put = (p, ls) => dev.postLogStoreLogs(p, ls, { logs: [{ timestamp: Math.floor(Date.now() / 1000), content: { k: 'v' } }] }, opts);
  await put(project, `flows${n}`); // the previous target, inside the grace: stored
  await assert.rejects(put(project, 'elsewhere'), (e) => e.code === 'FlowLogForbidden');
  const other = await bound({ OutputType: 'netflow', NetflowServerIp: '127.0.0.1', NetflowServerPort: 9995, NetflowVersion: 'V9' });
  const dev2 = logClient(srv, `device.${other.g.serial}`, other.g.secret);
  await assert.rejects(dev2.postLogStoreLogs(project, `flows${n - 1}`, { logs: [{ timestamp: 1, content: { k: 'v' } }] }, opts),
    (e) => e.code === 'FlowLogForbidden');
});
