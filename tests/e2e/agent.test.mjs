// sagflow agent end to end (issue 5, docs/agent.md): the real `sagflow serve`
// provisioned with pop-core, the real `sagflow agent` as the gateway's device,
// a real nfcapd as the collector and nfdump's totals compared with the
// expectation computed independently by lib/pcapgen.mjs (or counted by the
// test's own UDP sender on loopback).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, rmSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { startServer } from './lib/server.mjs';
import { api } from './lib/sag.mjs';
import { device } from './lib/device.mjs';
import { freeUdpPort } from './lib/collector.mjs';
import { scenario, reference, totals, writePcap } from './lib/pcapgen.mjs';
import { agentRun, agentLive, nfcapdOn, collected, udpFlows, provision, gatewayStatus, freeTcpPort } from './lib/agent.mjs';

const NOTICE_MS = 5000; // the issue: a running agent notices a change within 5 s
let srv, a, dir, pcap, packets;
let phase = 0;

before(async () => {
  srv = await startServer();
  a = api(srv);
  dir = mkdtempSync(join(tmpdir(), 'sagflow-agent-'));
  packets = scenario();
  pcap = join(dir, 'gateway.pcap');
  writePcap(pcap, packets);
});

after(async () => {
  if (dir) rmSync(dir, { recursive: true, force: true });
  if (!srv) return;
  const r = await srv.stop();
  assert.equal(r.code, 0, r.stderr.slice(-4000));
});

// Replays the capture with --read into a fresh nfcapd on `port`; returns
// { run, got } with nfdump's totals.
async function replay(dev, port, extra = []) {
  const cdir = join(dir, `phase${++phase}`);
  mkdirSync(cdir);
  const nf = await nfcapdOn(cdir, port);
  let run;
  try {
    run = agentRun(srv.url, dev, ['--read', pcap, ...extra]);
    await sleep(300); // the last datagrams reach nfcapd
  } finally {
    await nf.stop();
  }
  assert.equal(run.status, 0, run.stderr);
  return { run, got: collected(cdir) };
}

function want(t) {
  return { Flows: t.records, Packets: t.packets, Bytes: t.bytes };
}

function stat(stderr, name) {
  const m = new RegExp(`^${name}: (\\d+)$`, 'm').exec(stderr);
  assert.ok(m, `statistic '${name}' missing in:\n${stderr}`);
  return Number(m[1]);
}

test('--help documents every option, http only, the exit codes; bad usage exits 2', () => {
  const h = agentRun('http://127.0.0.1:1', { serial: 'x', secret: 'y' }, ['--help']);
  assert.equal(h.status, 0);
  for (const o of ['--control-plane', '--serial', '--secret', '--interface', '--read', '--once',
    '--firmware-version', '--ha-state', '--state-dir', '--filter'])
    assert.match(h.stdout, new RegExp(o));
  assert.match(h.stdout, /no TLS/);
  assert.match(h.stdout, /3 refused/);
  const cases = [
    [[], /exactly one of --interface, --read and --once/],
    [['--once', '--read', pcap], /exactly one/],
    [['--once', '--ha-state', 'primary'], /--ha-state must be active or standby/],
    [['--once', '--firmware-version', 'v1'], /--firmware-version/],
  ];
  for (const [args, re] of cases) {
    const r = agentRun(srv.url, { serial: 'SN1', secret: 'k' }, args);
    assert.equal(r.status, 2, `${args}: ${r.stderr}`);
    assert.match(r.stderr, re);
  }
  const tls = agentRun(srv.url.replace('http:', 'https:'), { serial: 'SN1', secret: 'k' }, ['--once']);
  assert.equal(tls.status, 2);
  assert.match(tls.stderr, /https:\/\/ is not supported/);
});

test('a flow log follows its gateway: V10 300/15, modify to V5 60/10, deactivate, reactivate + disassociate', async () => {
  const port = await freeUdpPort();
  const fl = (await a.call('CreateFlowLog', { OutputType: 'netflow', NetflowServerIp: '127.0.0.1',
    NetflowServerPort: port, NetflowVersion: 'V10', ActiveAging: 300, InactiveAging: 15 })).FlowLogId;
  const g = await provision(a);
  assert.equal(await gatewayStatus(a, g.id), 'Init', 'no device has synced yet');

  // The agent registers once: the gateway learns its model and firmware.
  const once = agentRun(srv.url, g, ['--once']);
  assert.equal(once.status, 0, once.stderr);
  assert.equal(once.json.SmartAGId, g.id);
  assert.equal(once.json.Export, true);
  assert.equal(once.json.FlowLog, null);
  assert.equal(once.json.NetflowLeg, 'off');
  assert.doesNotMatch(once.stderr + once.stdout, new RegExp(g.secret), 'the secret is never printed');
  const attr = await a.call('DescribeSmartAccessGatewayAttribute', { SmartAGId: g.id });
  assert.equal(attr.Status, 'Active', 'the device is online');
  assert.equal(attr.SoftwareVersion, '1.7.0');
  assert.equal(attr.Devices.Device[0].Model ?? 'sag-1000', 'sag-1000');

  await a.call('AssociateFlowLog', { FlowLogId: fl, SmartAGId: g.id });
  let r = await replay(g, port);
  assert.deepEqual(r.got, want(totals(reference(packets, 300, 15))), 'V10 300/15: nfdump totals');
  assert.match(r.run.stderr, /NetFlow V10 to 127\.0\.0\.1:\d+, ActiveAging 300 s, InactiveAging 15 s/);
  assert.equal(stat(r.run.stderr, 'ipfix send errors'), 0);

  await a.call('ModifyFlowLogAttribute', { FlowLogId: fl, NetflowVersion: 'V5', ActiveAging: 60, InactiveAging: 10 });
  r = await replay(g, port);
  const ref = reference(packets, 60, 10);
  assert.deepEqual(r.got, want(totals(ref, (x) => x.af === 4)), 'V5 60/10: IPv4 records only');
  assert.equal(stat(r.run.stderr, 'netflow-v5 records not exportable'), totals(ref, (x) => x.af === 6).records);

  await a.call('DeactiveFlowLog', { FlowLogId: fl });
  r = await replay(g, port);
  assert.deepEqual(r.got, { Flows: 0, Packets: 0, Bytes: 0 }, 'Inactive: nothing exported');
  assert.match(r.run.stderr, /not exporting \(no flow log bound to sag-\w+, or it is Inactive\)/);

  await a.call('ActiveFlowLog', { FlowLogId: fl });
  await a.call('DisassociateFlowLog', { FlowLogId: fl, SmartAGId: g.id });
  r = await replay(g, port);
  assert.deepEqual(r.got, { Flows: 0, Packets: 0, Bytes: 0 }, 'disassociated: nothing exported');
});

test('a wrong secret or an unknown serial number is refused: exit 3, a clear error, no secret in the log', async () => {
  const g = await provision(a);
  const wrong = 'A'.repeat(32);
  for (const dev of [{ serial: g.serial, secret: wrong }, { serial: 'SNnobodyhasthis', secret: g.secret }]) {
    for (const mode of [['--once'], ['--read', pcap], ['--interface', 'lo']]) {
      const r = agentRun(srv.url, dev, mode);
      assert.equal(r.status, 3, `${mode}: ${r.stderr}`);
      assert.match(r.stderr, /refused device .*wrong SecretKey, or the serial number is not bound/);
      assert.match(r.stderr, /Device\.AuthFailed/);
      assert.ok(!r.stderr.includes(dev.secret) && !r.stdout.includes(dev.secret), 'secret not printed');
    }
  }
  assert.equal(await gatewayStatus(a, g.id), 'Init', 'a refused device never counts as online');
  const down = agentRun(`http://127.0.0.1:${await freeTcpPort()}`, g, ['--once']);
  assert.equal(down.status, 1, 'an unreachable control plane is exit 1');
  assert.match(down.stderr, /cannot connect/);
});
