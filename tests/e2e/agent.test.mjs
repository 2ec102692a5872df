// sagflow agent end to end (issue 5, docs/agent.md): the real `sagflow serve`
// provisioned with pop-core, the real `sagflow agent` as the gateway's device,
// a real nfcapd as the collector and nfdump's totals compared with the
// expectation computed independently by lib/pcapgen.mjs (or counted by the
// test's own UDP sender on loopback).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, rmSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { spawnSync } from 'node:child_process';
import { createServer, connect } from 'node:net';
import { startServer, stopClean } from './lib/server.mjs';
import { api } from './lib/sag.mjs';
import { device, deviceRequest } from './lib/device.mjs';
import { freeUdpPort, nfdumpStats } from './lib/collector.mjs';
import { scenario, reference, totals, writePcap } from './lib/pcapgen.mjs';
import { agentRun, agentRunAsync, agentLive, nfcapdOn, collected, udpFlows, provision, gatewayStatus, freeTcpPort } from './lib/agent.mjs';

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
  await stopClean(srv);
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

test('--help documents every option, https and --ca-file, the exit codes; bad usage exits 2', () => {
  const h = agentRun('http://127.0.0.1:1', { serial: 'x', secret: 'y' }, ['--help']);
  assert.equal(h.status, 0);
  for (const o of ['--control-plane', '--serial', '--secret', '--interface', '--read', '--once',
    '--firmware-version', '--ha-state', '--state-dir', '--filter', '--ca-file'])
    assert.match(h.stdout, new RegExp(o));
  assert.match(h.stdout, /https:\/\/HOST/);
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
  const ftp = agentRun(srv.url.replace('http:', 'ftp:'), { serial: 'SN1', secret: 'k' }, ['--once']);
  assert.equal(ftp.status, 2);
  assert.match(ftp.stderr, /must start with http:\/\/ or https:\/\//);
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
  assert.equal(attr.Devices.Device[0].SlsDelivery.Status, '', 'no sls leg, nothing to report');

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

test('the default firmware is sagflow\'s own version, which supports flow logs; an older one is refused', async () => {
  const fl = (await a.call('CreateFlowLog', { OutputType: 'netflow', NetflowServerIp: '127.0.0.1' })).FlowLogId;
  const g = await provision(a);
  const old = agentRun(srv.url, { ...g, firmware: '1.6.9' }, ['--once']);
  assert.equal(old.status, 0, old.stderr);
  await a.fails('AssociateFlowLog', { FlowLogId: fl, SmartAGId: g.id }, 'FeatureNotSupport');
  const v = spawnSync(process.env.SAGFLOW_BIN, ['version'], { encoding: 'utf8' }).stdout.trim().split(' ')[1];
  const cur = agentRun(srv.url, g, ['--once']);
  assert.equal(cur.status, 0, cur.stderr);
  const attr = await a.call('DescribeSmartAccessGatewayAttribute', { SmartAGId: g.id });
  assert.equal(attr.SoftwareVersion, v, 'the agent reports sagflow\'s version by default');
  await a.call('AssociateFlowLog', { FlowLogId: fl, SmartAGId: g.id });
  await a.call('DisassociateFlowLog', { FlowLogId: fl, SmartAGId: g.id });
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
  const badFilter = agentRun(srv.url, g, ['--interface', 'lo', '--filter', 'udp and (']);
  assert.equal(badFilter.status, 1, badFilter.stderr);
  assert.match(badFilter.stderr, /bad --filter/);
  const badIface = agentRun(srv.url, g, ['--interface', 'nosuchif0']);
  assert.equal(badIface.status, 1, badIface.stderr);
  assert.match(badIface.stderr, /cannot capture on nosuchif0/);
  const down = agentRun(`http://127.0.0.1:${await freeTcpPort()}`, g, ['--once']);
  assert.equal(down.status, 1, 'an unreachable control plane is exit 1');
  assert.match(down.stderr, /cannot reach 127\.0\.0\.1:\d+: Failed to connect/);
});

test('a live agent on loopback follows a Modify within 5 s; no record lost or doubled across the change', async () => {
  const cport = await freeUdpPort(), tport = await freeUdpPort();
  const cdir = join(dir, 'live-modify');
  mkdirSync(cdir);
  const fl = (await a.call('CreateFlowLog', { OutputType: 'netflow', NetflowServerIp: '127.0.0.1',
    NetflowServerPort: cport, NetflowVersion: 'V9', ActiveAging: 300, InactiveAging: 60 })).FlowLogId;
  const g = await provision(a);
  assert.equal(agentRun(srv.url, g, ['--once']).status, 0);
  await a.call('AssociateFlowLog', { FlowLogId: fl, SmartAGId: g.id });
  const nf = await nfcapdOn(cdir, cport);
  const traffic = await udpFlows(tport, 8);
  const agent = agentLive(srv.url, g, ['--interface', 'lo', '--filter', `udp and dst host 127.0.0.1 and dst port ${tport}`]);
  try {
    await agent.waitLog(/capturing on lo/);
    await agent.waitLog(/NetFlow V9 to 127\.0\.0\.1:\d+, ActiveAging 300 s, InactiveAging 60 s/);
    assert.equal(await gatewayStatus(a, g.id), 'Active', 'a running agent keeps its gateway online');
    const cmdline = readFileSync(`/proc/${agent.proc.pid}/cmdline`, 'utf8');
    assert.ok(cmdline.includes('--secret') && !cmdline.includes(g.secret), 'the secret is blanked in argv');
    await traffic.send(25);
    await sleep(300);
    const before = agent.mark();
    agent.proc.kill('SIGUSR1');
    await agent.waitLog(/status: config [0-9a-f]{16}, NetFlow leg exporting, sls leg off, 0 failed syncs/, { after: before });
    await agent.waitLog(/packets decoded: 200\n/, { after: before });
    const mark = agent.mark();
    const t0 = Date.now();
    await a.call('ModifyFlowLogAttribute', { FlowLogId: fl, NetflowVersion: 'V10', ActiveAging: 120, InactiveAging: 30 });
    await agent.waitLog(/NetFlow V10 to 127\.0\.0\.1:\d+, ActiveAging 120 s, InactiveAging 30 s/, { after: mark, timeoutMs: NOTICE_MS });
    const noticed = Date.now() - t0;
    assert.ok(noticed <= NOTICE_MS, `noticed after ${noticed} ms`);
    await traffic.send(25);
    await sleep(300);
    // Only the agings change: the same collector, the same IPFIX stream.
    const mark2 = agent.mark();
    await a.call('ModifyFlowLogAttribute', { FlowLogId: fl, ActiveAging: 240 });
    await agent.waitLog(/NetFlow V10 to 127\.0\.0\.1:\d+, ActiveAging 240 s, InactiveAging 30 s/, { after: mark2, timeoutMs: NOTICE_MS });
    await traffic.send(25);
    await sleep(300);
    const r = await agent.stop();
    assert.equal(r.code, 0, r.log);
    assert.match(r.log, /stopped, every record flushed/);
  } finally {
    await agent.stop('SIGKILL');
    traffic.close();
    await sleep(300);
    await nf.stop();
  }
  const t = traffic.totals();
  // Each flow: one record closed at each change (V9, then IPFIX), one flushed at SIGTERM (IPFIX).
  assert.deepEqual(collected(cdir), { Flows: 3 * 8, Packets: t.packets, Bytes: t.bytes });
  assert.equal(nfdumpStats(cdir)['Sequence failures'], 0, 'a reconfigured exporter continues its stream');
});

test('a live agent whose serial number is unbound stops exporting and forgets its saved configuration', async () => {
  const cport = await freeUdpPort(), tport = await freeUdpPort();
  const cdir = join(dir, 'live-unbind'), state = join(dir, 'state-unbind');
  mkdirSync(cdir);
  const fl = (await a.call('CreateFlowLog', { OutputType: 'netflow', NetflowServerIp: '127.0.0.1',
    NetflowServerPort: cport, NetflowVersion: 'V5', ActiveAging: 300, InactiveAging: 60 })).FlowLogId;
  const g = await provision(a);
  assert.equal(agentRun(srv.url, g, ['--once']).status, 0);
  await a.call('AssociateFlowLog', { FlowLogId: fl, SmartAGId: g.id });
  const nf = await nfcapdOn(cdir, cport);
  const traffic = await udpFlows(tport, 4);
  const agent = agentLive(srv.url, g, ['--interface', 'lo', '--filter', `udp and dst port ${tport}`, '--state-dir', state]);
  let before;
  try {
    await agent.waitLog(/NetFlow V5 to/);
    await agent.waitLog(/capturing on lo/);
    await traffic.send(10);
    await sleep(300);
    before = traffic.totals();
    const mark = agent.mark();
    await a.call('UnbindSerialNumber', { SmartAGId: g.id, SerialNumber: g.serial });
    await agent.waitLog(/refused device .*\n.*not exporting any more/, { after: mark, timeoutMs: NOTICE_MS });
    assert.throws(() => readFileSync(join(state, 'state.json')), /ENOENT/);
    await traffic.send(10); // counted by nobody
    await sleep(300);
    const r = await agent.stop();
    assert.equal(r.code, 0, r.log);
  } finally {
    await agent.stop('SIGKILL');
    traffic.close();
    await sleep(300);
    await nf.stop();
  }
  assert.deepEqual(collected(cdir), { Flows: 4, Packets: before.packets, Bytes: before.bytes });
});

test('control plane restart, and an agent restart while it is away, lose no records', async () => {
  const home = mkdtempSync(join(tmpdir(), 'sagflow-agent-cp-'));
  const db = join(home, 'cp.db'), state = join(home, 'state'), cdir = join(home, 'nfcapd');
  mkdirSync(cdir);
  const cpPort = await freeTcpPort();
  const start = () => startServer({ dbPath: db, args: ['--listen', `127.0.0.1:${cpPort}`] });
  let cp = await start();
  const url = `http://127.0.0.1:${cpPort}`;
  const ca = api(cp);
  const cport = await freeUdpPort(), tport = await freeUdpPort();
  const fl = (await ca.call('CreateFlowLog', { OutputType: 'netflow', NetflowServerIp: '127.0.0.1',
    NetflowServerPort: cport, NetflowVersion: 'V9', ActiveAging: 300, InactiveAging: 60 })).FlowLogId;
  const g = await provision(ca);
  assert.equal(agentRun(url, g, ['--once']).status, 0);
  await ca.call('AssociateFlowLog', { FlowLogId: fl, SmartAGId: g.id });
  const nf = await nfcapdOn(cdir, cport);
  const traffic = await udpFlows(tport, 6);
  const live = ['--interface', 'lo', '--filter', `udp and dst host 127.0.0.1 and dst port ${tport}`, '--state-dir', state];
  let agent = agentLive(url, g, live);
  try {
    await agent.waitLog(/capturing on lo/);
    await agent.waitLog(/NetFlow V9 to/);
    const saved = JSON.parse(readFileSync(join(state, 'state.json'), 'utf8'));
    assert.equal(saved.FlowLog.FlowLogId, fl);
    assert.ok(!JSON.stringify(saved).includes(g.secret), 'the state file holds no secret');
    await traffic.send(10);

    // The control plane goes away: the agent keeps exporting and says so.
    let mark = agent.mark();
    assert.equal((await cp.stop()).code, 0);
    await agent.waitLog(/sync failed \(1 in a row\): cannot reach .*keeping config [0-9a-f]{16} \(exporting\); retrying in 1000 ms/, { after: mark });
    await agent.waitLog(/sync failed \(2 in a row\).*retrying in 2000 ms/, { after: mark });
    await traffic.send(10);
    await sleep(300);

    // The agent restarts while it is still away: it resumes the saved configuration.
    let r = await agent.stop();
    assert.equal(r.code, 0, r.log);
    agent = agentLive(url, g, live);
    await agent.waitLog(/control plane unreachable at start: resuming config [0-9a-f]{16}/);
    await agent.waitLog(/capturing on lo/);
    await traffic.send(10);

    // The control plane comes back on the same address and database.
    mark = agent.mark();
    cp = await start();
    await agent.waitLog(/the control plane answers again after \d+ failed syncs/, { after: mark, timeoutMs: 20000 });
    assert.equal(await gatewayStatus(api(cp), g.id), 'Active');
    await traffic.send(10);
    await sleep(300);
    r = await agent.stop();
    assert.equal(r.code, 0, r.log);
    assert.doesNotMatch(r.log.slice(mark), /config [0-9a-f]{16}:/, 'same configuration: no reconfigure');
  } finally {
    await agent.stop('SIGKILL');
    traffic.close();
    await sleep(300);
    await nf.stop();
    await cp.stop();
  }
  const t = traffic.totals();
  // One record per flow and agent run: nothing lost while away, nothing doubled.
  assert.deepEqual(collected(cdir), { Flows: 2 * 6, Packets: t.packets, Bytes: t.bytes });
  rmSync(home, { recursive: true, force: true });
});

test('--read with the control plane away replays under the saved configuration; a bad state file is ignored', async () => {
  const home = mkdtempSync(join(tmpdir(), 'sagflow-agent-read-'));
  const state = join(home, 'state'), cdir = join(home, 'nfcapd');
  mkdirSync(cdir);
  const cp = await startServer({ dbPath: join(home, 'cp.db') });
  const ca = api(cp);
  const port = await freeUdpPort();
  const fl = (await ca.call('CreateFlowLog', { OutputType: 'netflow', NetflowServerIp: '127.0.0.1',
    NetflowServerPort: port, NetflowVersion: 'V9', ActiveAging: 120, InactiveAging: 20 })).FlowLogId;
  const g = await provision(ca);
  assert.equal(agentRun(cp.url, g, ['--once', '--state-dir', state]).status, 0);
  await ca.call('AssociateFlowLog', { FlowLogId: fl, SmartAGId: g.id });
  const once = agentRun(cp.url, g, ['--once', '--state-dir', state]);
  assert.equal(once.json.FlowLog.FlowLogId, fl);
  await cp.stop();
  try {
    const away = agentRun(cp.url, g, ['--once', '--state-dir', state]);
    assert.equal(away.status, 1, '--once needs the control plane');
    const nf = await nfcapdOn(cdir, port);
    let r;
    try {
      r = agentRun(cp.url, g, ['--read', pcap, '--state-dir', state]);
      await sleep(300);
    } finally {
      await nf.stop();
    }
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /control plane unreachable at start: resuming config/);
    assert.deepEqual(collected(cdir), want(totals(reference(packets, 120, 20))));
    for (const junk of ['{"SerialNumber":', 'x'.repeat(20000), JSON.stringify({ ...once.json, SerialNumber: 'other' })]) {
      writeFileSync(join(state, 'state.json'), junk);
      r = agentRun(cp.url, g, ['--read', pcap, '--state-dir', state]);
      assert.equal(r.status, 1, r.stderr);
      assert.match(r.stderr, /ignoring .*state\.json: not a valid state of device/);
    }
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
});

// A TCP proxy in front of the control plane that can stop answering (it
// accepts and holds connections) to stand for a hung control plane. The
// agent keeps its connection alive, so hanging also stops forwarding on the
// connections already open.
async function switchableProxy(target) {
  let hang = false;
  const held = new Set(), live = new Set();
  const hold = (c) => { held.add(c); c.on('data', () => {}); };
  const server = createServer((c) => {
    c.on('error', () => {});
    if (hang) { hold(c); return; }
    const u = connect(target.port, '127.0.0.1');
    const pair = { c, u };
    live.add(pair);
    u.on('error', () => c.destroy());
    u.on('close', () => live.delete(pair));
    c.pipe(u).pipe(c);
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    hang(v) {
      hang = v;
      if (v) {
        for (const p of live) { p.c.unpipe(p.u); p.u.unpipe(p.c); p.u.destroy(); hold(p.c); }
        live.clear();
      } else {
        for (const c of held) c.destroy();
        held.clear();
      }
    },
    close: () => new Promise((r) => { for (const c of held) c.destroy(); server.close(r); }),
  };
}

test('a hung control plane (accepts, never answers): metering goes on, syncs time out and recover, nothing lost', async () => {
  const cport = await freeUdpPort(), tport = await freeUdpPort();
  const cdir = join(dir, 'live-hang');
  mkdirSync(cdir);
  const fl = (await a.call('CreateFlowLog', { OutputType: 'netflow', NetflowServerIp: '127.0.0.1',
    NetflowServerPort: cport, NetflowVersion: 'V9', ActiveAging: 300, InactiveAging: 60 })).FlowLogId;
  const g = await provision(a);
  assert.equal(agentRun(srv.url, g, ['--once']).status, 0);
  await a.call('AssociateFlowLog', { FlowLogId: fl, SmartAGId: g.id });
  const proxy = await switchableProxy(srv);
  const nf = await nfcapdOn(cdir, cport);
  const traffic = await udpFlows(tport, 5);
  // Plain polling: a long-polling agent cannot tell a hung control plane from
  // a held sync until the hold ends (Wait + 3 s, docs/agent.md).
  const agent = agentLive(proxy.url, g, ['--interface', 'lo', '--filter', `udp and dst port ${tport}`,
    '--no-long-poll']);
  try {
    await agent.waitLog(/NetFlow V9 to/);
    await agent.waitLog(/capturing on lo/);
    const mark = agent.mark();
    proxy.hang(true);
    // Traffic keeps flowing while two syncs hang for their full timeout.
    const until = Date.now() + 7000;
    while (Date.now() < until) await traffic.send(1);
    await agent.waitLog(/sync failed \(1 in a row\): cannot reach .*: no answer within 5000 ms.*keeping config [0-9a-f]{16} \(exporting\)/, { after: mark });
    proxy.hang(false);
    await agent.waitLog(/the control plane answers again/, { after: mark, timeoutMs: 20000 });
    await traffic.send(5);
    await sleep(300);
    const t0 = Date.now();
    const r = await agent.stop();
    assert.equal(r.code, 0, r.log);
    assert.ok(Date.now() - t0 < 5000, 'SIGTERM is prompt');
    assert.doesNotMatch(r.log, /kernel dropped/);
  } finally {
    await agent.stop('SIGKILL');
    traffic.close();
    await proxy.close();
    await sleep(300);
    await nf.stop();
  }
  const t = traffic.totals();
  assert.ok(t.packets > 100, `sent ${t.packets} packets during the hang`);
  assert.deepEqual(collected(cdir), { Flows: 5, Packets: t.packets, Bytes: t.bytes });
});

test('HA pair: the standby device exports only when it reports itself active', async () => {
  const port = await freeUdpPort();
  const fl = (await a.call('CreateFlowLog', { OutputType: 'netflow', NetflowServerIp: '127.0.0.1',
    NetflowServerPort: port, NetflowVersion: 'V9', ActiveAging: 60, InactiveAging: 10 })).FlowLogId;
  const g = await provision(a, { haType: 'warm_backup', serials: 2 });
  const peer = device(srv, { serial: g.devices[0].serial, secret: g.devices[0].secret, version: '1.7.0', ha: 'active' });
  assert.equal((await peer.sync()).status, 200);
  const me = g.devices[1];
  assert.equal(agentRun(srv.url, me, ['--once', '--ha-state', 'standby']).status, 0);
  await a.call('AssociateFlowLog', { FlowLogId: fl, SmartAGId: g.id });

  let once = agentRun(srv.url, me, ['--once', '--ha-state', 'standby']);
  assert.equal(once.status, 0, once.stderr);
  assert.equal(once.json.Export, false);
  assert.equal(once.json.NetflowLeg, 'off');
  let r = await replay(me, port, ['--ha-state', 'standby']);
  assert.deepEqual(r.got, { Flows: 0, Packets: 0, Bytes: 0 }, 'standby: nothing exported');
  assert.match(r.run.stderr, /not exporting \(this device is not the gateway's exporting device/);

  assert.equal((await peer.sync({ ha: 'standby' })).status, 200); // failover
  once = agentRun(srv.url, me, ['--once', '--ha-state', 'active']);
  assert.equal(once.json.Export, true);
  assert.equal(once.json.NetflowLeg, 'exporting');
  r = await replay(me, port, ['--ha-state', 'active']);
  assert.deepEqual(r.got, want(totals(reference(packets, 60, 10))), 'active: everything exported');
});

test('OutputType all: the NetFlow leg exports and the sls leg is delivered (tests/e2e/agent-sls.test.mjs counts it)', async () => {
  const port = await freeUdpPort();
  const fl = (await a.call('CreateFlowLog', { OutputType: 'all', NetflowServerIp: '127.0.0.1', NetflowServerPort: port,
    NetflowVersion: 'V9', ActiveAging: 60, InactiveAging: 10, SlsRegionId: 'cn-shanghai', ProjectName: 'proj1',
    LogstoreName: 'store1' })).FlowLogId;
  const g = await provision(a);
  assert.equal(agentRun(srv.url, g, ['--once']).status, 0);
  await a.call('AssociateFlowLog', { FlowLogId: fl, SmartAGId: g.id });
  const once = agentRun(srv.url, g, ['--once']);
  assert.equal(once.status, 0, once.stderr);
  assert.equal(once.json.NetflowLeg, 'exporting');
  assert.equal(once.json.SlsLeg, 'delivering');
  assert.equal(once.json.FlowLog.SlsEndpoint, '', 'the control plane\'s own log store');
  assert.equal(once.json.FlowLog.SlsDomain, 'sls.localhost');
  assert.match(once.json.FlowLog.AliUid, /^\d+$/);
  const bad = await deviceRequest(srv, { serial: g.serial, secret: g.secret,
    report: { Model: 'sag-1000', SoftwareVersion: '1.7.0', SlsDelivery: 'maybe' } });
  assert.equal(bad.status, 400, bad.text);
  assert.equal(bad.json.Code, 'Device.InvalidReport');
  const r = await replay(g, port);
  assert.deepEqual(r.got, want(totals(reference(packets, 60, 10))));
  assert.match(r.run.stderr, /Log Service leg to project 'proj1' logstore 'store1'/);
  assert.doesNotMatch(r.run.stderr, /NOT delivered/);
  const attr = await a.call('DescribeSmartAccessGatewayAttribute', { SmartAGId: g.id });
  assert.equal(attr.Devices.Device[0].SlsDelivery.Status, 'delivered', 'the device status says so');
});

// A control plane that misbehaves at the TCP level, answering every
// connection with answer(socket) after reading the request.
async function hostile(answer) {
  const server = createServer((sock) => {
    sock.on('error', () => {});
    sock.once('data', () => answer(sock));
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${server.address().port}`, close: () => new Promise((r) => { server.closeAllConnections?.(); server.close(r); }) };
}

test('the HTTP client bounds time and size: silent, huge, garbage and failing control planes are clear errors', async () => {
  const g = { serial: 'SNhostile1', secret: 'B'.repeat(32) };
  const body = '{"SmartAGId":"sag-x","ConfigVersion":"0123456789abcdef","Changed":true,"Export":true,"FlowLog":null}';
  const cases = [
    [() => {}, /no answer within 5000 ms/],
    [(s) => s.end(`HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n${'a'.repeat(100000)}`), /the answer exceeds 65536 bytes/],
    [(s) => s.end(`HTTP/1.1 200 OK\r\nX-Pad: ${'a'.repeat(200000)}\r\n\r\n`), /cannot reach .*headers are malformed or too large/],
    [(s) => s.end('hello there\r\n\r\n'), /cannot reach .*HTTP/],
    [(s) => s.end('HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nnot json'), /the answer is not a JSON object/],
    [(s) => s.end('HTTP/1.1 200 OK\r\nContent-Length: 500\r\n\r\n{}'), /cannot reach .*transfer closed/],
    [(s) => s.end('HTTP/1.1 503 Busy\r\nContent-Length: 2\r\n\r\n{}'), /answered 503/],
    [(s) => s.end(`HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n\r\n${body}`), null],
    // Chunked answers are libcurl's business now: decoded, not refused.
    [(s) => s.end(`HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n${body.length.toString(16)}\r\n${body}\r\n0\r\n\r\n`), null],
  ];
  for (const [answer, re] of cases) {
    const h = await hostile(answer);
    try {
      const t0 = Date.now();
      const r = await agentRunAsync(h.url, g, ['--once']);
      if (re) {
        assert.equal(r.status, 1, r.stderr);
        assert.match(r.stderr, re);
        assert.ok(Date.now() - t0 < 10000, 'bounded in time');
      } else {
        assert.equal(r.status, 0, r.stderr);
        assert.equal(r.json.SmartAGId, 'sag-x');
      }
    } finally {
      await h.close();
    }
  }
});
