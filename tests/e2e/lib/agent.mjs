// Helpers for the gateway agent's end-to-end tests: the real `sagflow agent`
// (SAGFLOW_BIN) in its three modes, nfcapd on a chosen port (so a collector can
// be replaced between phases without touching the flow log), UDP traffic on
// loopback with its own expected totals, and a gateway provisioned through
// pop-core whose device is the agent.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { createServer } from 'node:net';
import { readFileSync, readdirSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { BIN } from './server.mjs';
import { nfdumpStats } from './collector.mjs';
import { nextSerial } from './sag.mjs';

const READY_TIMEOUT_MS = 10000;
const RUN_TIMEOUT_MS = 120000;

// A free TCP port on 127.0.0.1 (for a control plane that must come back on the same port).
export function freeTcpPort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

function udpBound(port) {
  const hex = `0100007F:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  return readFileSync('/proc/net/udp', 'utf8').includes(hex);
}

// nfcapd writing to dir, listening on 127.0.0.1:port; stop() ends it (files complete).
export async function nfcapdOn(dir, port) {
  const proc = spawn('nfcapd', ['-b', '127.0.0.1', '-p', String(port), '-w', dir, '-B', '8000000'],
    { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  proc.stdout.on('data', (d) => { log += d; });
  proc.stderr.on('data', (d) => { log += d; });
  const exited = new Promise((r) => proc.once('exit', r));
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (!udpBound(port)) {
    if (proc.exitCode !== null || Date.now() > deadline) {
      proc.kill('SIGKILL');
      throw new Error(`nfcapd on ${port} did not start: ${log}`);
    }
    await sleep(50);
  }
  return {
    port,
    log: () => log,
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) {
        proc.kill('SIGTERM');
        await exited;
      }
    },
  };
}

// nfdump's totals of a collector directory; an empty directory is all zeros.
export function collected(dir) {
  if (!readdirSync(dir).some((f) => f.startsWith('nfcapd.'))) return { Flows: 0, Packets: 0, Bytes: 0 };
  const s = nfdumpStats(dir);
  return { Flows: s.Flows ?? 0, Packets: s.Packets ?? 0, Bytes: s.Bytes ?? 0 };
}

export function agentArgs(srvUrl, dev, extra = []) {
  // Without dev.firmware the agent reports its default: sagflow's own version.
  return ['agent', '--control-plane', srvUrl, '--serial', dev.serial, '--secret', dev.secret,
    ...(dev.firmware ? ['--firmware-version', dev.firmware] : []), ...extra];
}

// --once / --read: runs to the end. Returns { status, stdout, stderr, json (of --once) }.
export function agentRun(srvUrl, dev, extra) {
  const r = spawnSync(BIN, agentArgs(srvUrl, dev, extra), { encoding: 'utf8', timeout: RUN_TIMEOUT_MS });
  let json = null;
  try { json = JSON.parse(r.stdout.trim()); } catch { /* not --once, or it failed */ }
  return { status: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr, json };
}

// The same without blocking this process (for servers that live in the test itself).
export function agentRunAsync(srvUrl, dev, extra) {
  const proc = spawn(BIN, agentArgs(srvUrl, dev, extra), { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '', stderr = '';
  proc.stdout.setEncoding('utf8').on('data', (d) => { stdout += d; });
  proc.stderr.setEncoding('utf8').on('data', (d) => { stderr += d; });
  const t = setTimeout(() => proc.kill('SIGKILL'), RUN_TIMEOUT_MS);
  return new Promise((resolve) => proc.once('close', (status, signal) => {
    clearTimeout(t);
    let json = null;
    try { json = JSON.parse(stdout.trim()); } catch { /* not --once, or it failed */ }
    resolve({ status, signal, stdout, stderr, json });
  }));
}

// --interface: a running agent. waitLog(re, after) waits for a log line
// matching re that appears after offset `after` (default: anywhere).
export function agentLive(srvUrl, dev, extra) {
  const proc = spawn(BIN, agentArgs(srvUrl, dev, extra), { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  proc.stderr.setEncoding('utf8').on('data', (d) => { log += d; });
  const exited = new Promise((r) => proc.once('exit', (code, signal) => r({ code, signal })));
  return {
    proc,
    log: () => log,
    mark: () => log.length,
    async waitLog(re, { after = 0, timeoutMs = READY_TIMEOUT_MS } = {}) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const m = re.exec(log.slice(after));
        if (m) return m;
        if (proc.exitCode !== null) throw new Error(`agent exited (${proc.exitCode}) waiting for ${re}:\n${log}`);
        if (Date.now() > deadline) throw new Error(`agent log never matched ${re}:\n${log}`);
        await sleep(25);
      }
    },
    async stop(signal = 'SIGTERM') {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      const t = setTimeout(() => proc.kill('SIGKILL'), READY_TIMEOUT_MS);
      const r = await exited;
      clearTimeout(t);
      return { ...r, log };
    },
  };
}

// UDP traffic to 127.0.0.1:dport from `flows` sockets (one flow each); every
// call sends `perFlow` datagrams per flow with payload sizes from `size(i)`.
// totals() is what a meter must count: IPv4 packets of payload + 28 bytes.
export async function udpFlows(dport, flows) {
  const socks = [];
  for (let i = 0; i < flows; i++) {
    const s = createSocket('udp4');
    await new Promise((r) => s.bind(0, '127.0.0.1', r));
    socks.push(s);
  }
  const t = { packets: 0, bytes: 0 };
  return {
    async send(perFlow, size = (i) => 40 + ((i * 37) % 900)) {
      for (let k = 0; k < perFlow; k++) {
        for (const s of socks) {
          const len = size(t.packets);
          await new Promise((r) => s.send(Buffer.alloc(len, 0x61), dport, '127.0.0.1', r));
          t.packets += 1;
          t.bytes += len + 28;
        }
        await sleep(2);
      }
    },
    totals: () => ({ ...t }),
    close: () => socks.forEach((s) => s.close()),
  };
}

// A sag-1000 gateway created and bound with pop-core (api from lib/sag.mjs);
// returns { id, serial, secret } — the agent is its device.
export async function provision(a, { haType = 'no_backup', serials = 1 } = {}) {
  const g = await a.call('CreateSmartAccessGateway', { HardWareSpec: 'sag-1000', HaType: haType });
  const devs = [];
  for (let i = 0; i < serials; i++) {
    const serial = nextSerial();
    await a.call('BindSerialNumber', { SmartAGId: g.SmartAGId, SerialNumber: serial });
    const attr = await a.call('DescribeSmartAccessGatewayAttribute', { SmartAGId: g.SmartAGId });
    const d = attr.Devices.Device.find((x) => x.SerialNumber === serial);
    assert.ok(d && /^[A-Za-z0-9]{32}$/.test(d.SecretKey), 'BindSerialNumber created a SecretKey');
    devs.push({ serial, secret: d.SecretKey });
  }
  return { id: g.SmartAGId, ...devs[0], devices: devs };
}

export async function gatewayStatus(a, id) {
  const r = await a.call('DescribeSmartAccessGatewayAttribute', { SmartAGId: id });
  return r.Status;
}
