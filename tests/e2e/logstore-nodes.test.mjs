// The log store beside N control-plane nodes (issue 13, docs/logstore.md
// "Beside N control-plane nodes"): one node holds it (--logs-dir), the others
// run with --log-store-at URL. A Log Service client sent to a node without it
// gets a clear error naming the holder (421 LogStoreNotHere, SLS error JSON,
// x-log-requestid); an agent whose control plane is such a node delivers its
// records to the holder. Runs on both backends: the nodes share one database
// (on SQLite, two serves on one file stand for it, as in agent-sls.test.mjs).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BIN, startServer, stopClean, TEST_AKID, TEST_SECRET } from './lib/server.mjs';
import { api } from './lib/sag.mjs';
import { agentRun, provision } from './lib/agent.mjs';
import { agent as pinned, logClient, rawRequest, slsClient } from './lib/sls.mjs';
import { scenario, reference, totals, writePcap, T0 } from './lib/pcapgen.mjs';

const opts = { agent: pinned };
const FROM = new Date((T0 / 1e6 - 60) * 1000), TO = new Date((T0 / 1e6 + 3600) * 1000);
let holder, other, dir, pcap, packets;

before(async () => {
  holder = await startServer();
  other = await startServer({ dbPath: holder.dbPath, args: ['--log-store-at', holder.url] });
  dir = mkdtempSync(join(tmpdir(), 'sagflow-ls-nodes-'));
  packets = scenario();
  pcap = join(dir, 'gateway.pcap');
  writePcap(pcap, packets);
});

after(async () => {
  if (dir) rmSync(dir, { recursive: true, force: true });
  await stopClean(other);
  await stopClean(holder);
});

async function codeOf(p) {
  try {
    await p;
    return 'no error';
  } catch (e) {
    return { code: e.code, status: e.status ?? e.statusCode ?? e.data?.statusCode, message: e.message };
  }
}

test('a Log Service request to a node without the log store: 421 LogStoreNotHere naming the holder', async () => {
  // The holder answers; the other node's RPC API is there too.
  await logClient(holder, TEST_AKID, TEST_SECRET).createProject('nodesproj', { description: 'x' }, opts);
  const regions = await api(other).call('DescribeRegions');
  assert.ok(regions.Regions.Region.length > 0);
  // @alicloud/log against the other node.
  const e = await codeOf(logClient(other, TEST_AKID, TEST_SECRET).getProject('nodesproj', opts));
  assert.equal(e.code, 'LogStoreNotHere', JSON.stringify(e));
  assert.ok(e.message.includes(holder.url), e.message);
  // @alicloud/sls20201230 too.
  await assert.rejects(slsClient(other, TEST_AKID, TEST_SECRET).getProject('nodesproj'),
    (x) => x.code === 'LogStoreNotHere' && x.data.statusCode === 421);
  // On the wire: status, the SLS error envelope, a request id; also for a
  // request that is not even signed, and on the /sls/<project>/ path.
  for (const r of [
    await rawRequest(other, { method: 'GET', project: 'nodesproj', path: '/', akid: TEST_AKID, secret: TEST_SECRET }),
    await rawRequest(other, { method: 'GET', project: 'nodesproj', path: '/logstores', sign: false }),
    await rawRequest(other, { method: 'GET', path: '/sls/nodesproj/logstores', target: '/sls/nodesproj/logstores',
      host: `127.0.0.1:${other.port}`, akid: TEST_AKID, secret: TEST_SECRET }),
  ]) {
    assert.equal(r.status, 421, r.body);
    assert.match(r.headers['x-log-requestid'] || '', /^[0-9A-F]{24}$/);
    assert.match(r.headers['content-type'], /application\/json/);
    assert.equal(r.json.errorCode, 'LogStoreNotHere');
    assert.equal(r.json.errorMessage, `This control-plane node holds no log store; the Log Service is at ${holder.url}.`);
  }
});

test('an agent whose control plane holds no log store delivers its records to the holder', async () => {
  const a = api(other);
  const project = 'nodesagent', logstore = 'flows';
  const fl = (await a.call('CreateFlowLog', { OutputType: 'sls', SlsRegionId: 'cn-shanghai', ProjectName: project,
    LogstoreName: logstore, ActiveAging: 300, InactiveAging: 15 })).FlowLogId;
  const g = await provision(a);
  assert.equal(agentRun(other.url, g, ['--once']).status, 0);
  await a.call('AssociateFlowLog', { FlowLogId: fl, SmartAGId: g.id });
  const once = agentRun(other.url, g, ['--once']);
  assert.equal(once.json.FlowLog.SlsEndpoint, holder.url, 'the device is told where the log store is');
  const run = agentRun(other.url, g, ['--read', pcap]);
  assert.equal(run.status, 0, run.stderr);
  const [r] = await logClient(holder, TEST_AKID, TEST_SECRET).getLogs(project, logstore, FROM, TO,
    { query: '* | select count(*) as records, sum(packets) as packets, sum(bytes) as bytes' }, opts);
  assert.deepEqual({ records: Number(r.records), packets: Number(r.packets), bytes: Number(r.bytes) },
    totals(reference(packets, 300, 15)), 'every record in the holder\'s log store');
});

test('serve: --logs-dir and --log-store-at exclude each other; a bad URL; PostgreSQL needs one of them', () => {
  const run = (...args) => spawnSync(BIN, ['serve', ...args], { encoding: 'utf8', timeout: 10000 });
  const both = run('--logs-dir', dir, '--log-store-at', 'http://127.0.0.1:1');
  assert.equal(both.status, 2);
  assert.match(both.stderr, /--logs-dir and --log-store-at exclude each other/);
  const bad = run('--log-store-at', 'ftp://x');
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /bad --log-store-at 'ftp:\/\/x'/);
  const pg = run('--db', 'postgresql:///nosuchdb?host=/nonexistent');
  assert.equal(pg.status, 2);
  assert.match(pg.stderr, /with a PostgreSQL --db, say where the log store is: --logs-dir DIR .* --log-store-at URL/);
  const help = run('--help');
  assert.match(help.stdout, /--log-store-at URL/);
  assert.match(help.stdout, /421 LogStoreNotHere/);
});
