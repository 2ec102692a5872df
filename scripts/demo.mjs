#!/usr/bin/env node
// make run's demo (issue 12, docs/console.md): one flow log, one SAG-1000
// gateway, and its device — the real `sagflow agent` — metering a generated,
// looping traffic pattern (a slow ebb, bursts, three heavy talkers and a long
// tail) and delivering every record to the flow log's logstore (OutputType
// sls). Every TICK_S it writes the last tick's packets to a pcap, timestamps
// now, and replays it with `sagflow agent --read`: that needs no root and no
// interface, and each replay ends by exporting its flows, so records arrive
// seconds after their packets. Provisioning goes through pop-core, as a user's
// would; it reuses the demo's flow log and gateway when they exist.
//   SAGFLOW_BIN, SAGFLOW_ACCESS_KEY_ID/SECRET, and the endpoint as argv[2].
// Stops on SIGINT/SIGTERM, with the agent it is running.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { get } from 'node:http';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { rng, v4, writePcap } from '../tests/e2e/lib/pcapgen.mjs';

const require = createRequire(new URL('../tests/e2e/package.json', import.meta.url));
const RPCClient = require('@alicloud/pop-core');

export const DEMO = { flowLog: 'demo', gateway: 'demo-gateway', serial: 'DEMO-SAG-0001', region: 'cn-shanghai',
  project: 'sagflow-demo', logstore: 'flows' };
const TICK_S = 3;
const READY_TRIES = 300; // × 100 ms
const endpoint = process.argv[2] || 'http://127.0.0.1:8080';
const bin = process.env.SAGFLOW_BIN || new URL('../build/sagflow', import.meta.url).pathname;
const client = new RPCClient({ accessKeyId: process.env.SAGFLOW_ACCESS_KEY_ID,
  accessKeySecret: process.env.SAGFLOW_ACCESS_KEY_SECRET, endpoint, apiVersion: '2018-03-13' });
const call = (a, p = {}) => client.request(a, { RegionId: DEMO.region, ...p }, { method: 'POST' });
const dir = mkdtempSync(join(tmpdir(), 'sagflow-demo-'));
let stopping = false, child = null;

async function provision() {
  const fls = await call('DescribeFlowLogs', { FlowLogName: DEMO.flowLog });
  const fl = fls.FlowLogs.FlowLogSetType[0]?.FlowLogId ?? (await call('CreateFlowLog', { Name: DEMO.flowLog,
    Description: 'make run demo', OutputType: 'sls', SlsRegionId: DEMO.region, ProjectName: DEMO.project,
    LogstoreName: DEMO.logstore, ActiveAging: 60, InactiveAging: 10 })).FlowLogId;
  const gws = await call('DescribeSmartAccessGateways', { Name: DEMO.gateway });
  let sag = gws.SmartAccessGateways.SmartAccessGateway[0]?.SmartAGId;
  if (!sag) {
    sag = (await call('CreateSmartAccessGateway', { Name: DEMO.gateway, HardWareSpec: 'sag-1000', HaType: 'no_backup' })).SmartAGId;
    await call('BindSerialNumber', { SmartAGId: sag, SerialNumber: DEMO.serial });
  }
  const attr = await call('DescribeSmartAccessGatewayAttribute', { SmartAGId: sag });
  const secret = attr.Devices.Device.find((d) => d.SerialNumber === DEMO.serial).SecretKey;
  if (!(attr.FlowLogIds?.FlowLogId ?? []).includes(fl)) {
    await agent(['--once'], secret); // a device must have reported before it can be associated
    await call('AssociateFlowLog', { FlowLogId: fl, SmartAGId: sag });
  }
  return { fl, sag, secret };
}

function agent(mode, secret) {
  return new Promise((resolve) => {
    child = spawn(bin, ['agent', '--control-plane', endpoint, '--serial', DEMO.serial, ...mode],
      { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, SAGFLOW_DEVICE_SECRET: secret } });
    let err = '';
    child.stderr.on('data', (d) => { err += d; });
    child.on('close', (code) => {
      child = null;
      if (code && !stopping) process.stderr.write(`demo: agent exited ${code}: ${err.slice(-400)}`);
      resolve(code);
    });
  });
}

// The traffic of [t0, t0 + TICK_S) in µs: talkers with shares, a rate that
// ebbs over 3 minutes, a burst from one host for 8 s of every minute.
const HEAVY = [['10.1.0.10', 0.3, '203.0.113.10', 443], ['10.1.0.11', 0.2, '203.0.113.20', 443],
  ['10.1.0.12', 0.1, '198.51.100.5', 22]];
function packetsFor(t0us) {
  const rand = rng(t0us / 1e6);
  const s = t0us / 1e6;
  const rate = 160 * (0.65 + 0.35 * Math.sin((2 * Math.PI * s) / 180)); // packets a second
  const pk = [];
  const n = Math.round(rate * TICK_S);
  for (let i = 0; i < n; i++) {
    const ts = t0us + Math.floor(rand() * TICK_S * 1e6);
    const r = rand();
    let acc = 0, h = null;
    for (const x of HEAVY) if (h === null && r < (acc += x[1])) h = x;
    if (h) pk.push({ ts, af: 4, proto: 6, src: v4(h[0]), dst: v4(h[2]), sport: 50000, dport: h[3], ipLen: 1400 });
    else {
      const host = 20 + Math.floor(rand() * 40), kind = Math.floor(rand() * 3);
      const [proto, dport, len] = [[17, 53, 90], [6, 80, 600], [6, 443, 900]][kind];
      pk.push({ ts, af: 4, proto, src: v4(`10.1.1.${host}`), dst: v4(`192.0.2.${1 + kind}`), sport: 30000 + host, dport, ipLen: len });
    }
  }
  if (s % 60 < 8) // the burst: a backup job
    for (let i = 0; i < 120 * TICK_S; i++)
      pk.push({ ts: t0us + Math.floor(rand() * TICK_S * 1e6), af: 4, proto: 6, src: v4('10.1.0.99'),
        dst: v4('203.0.113.99'), sport: 51000, dport: 873, ipLen: 1500 });
  return pk.sort((a, b) => a.ts - b.ts);
}

async function loop(secret) {
  const pcap = join(dir, 'tick.pcap');
  let t0 = Math.floor(Date.now() / 1000) - TICK_S; // the first tick is the last few seconds: traffic at once
  while (!stopping) {
    writePcap(pcap, packetsFor(t0 * 1e6), { truncateEvery: 1, junkEvery: 0 });
    await agent(['--read', pcap], secret);
    t0 += TICK_S;
    const wait = (t0 + TICK_S) * 1000 - Date.now();
    if (wait > 0 && !stopping) await new Promise((r) => setTimeout(r, wait));
  }
}

function stop() {
  stopping = true;
  if (child) child.kill('SIGTERM');
  rmSync(dir, { recursive: true, force: true });
  process.exit(0);
}
process.on('SIGINT', stop);
process.on('SIGTERM', stop);

// serve is starting beside us: wait until it answers.
async function ready() {
  for (let i = 0; i < READY_TRIES && !stopping; i++) {
    // node:http, not fetch: Node 18 (Debian 12) warns that fetch is experimental.
    const ok = await new Promise((r) => get(`${endpoint}/healthz`, (res) => { res.resume(); r(res.statusCode === 200); })
      .on('error', () => r(false)));
    if (ok) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${endpoint}/healthz did not answer`);
}

try {
  await ready();
  const { fl, sag, secret } = await provision();
  console.log(`demo: flow log ${fl} (logstore ${DEMO.project}/${DEMO.logstore}), gateway ${sag}, device ${DEMO.serial}: traffic every ${TICK_S} s`);
  await loop(secret);
} catch (e) {
  console.error(`demo: ${e.code ?? ''} ${e.message}`);
  stop();
}
