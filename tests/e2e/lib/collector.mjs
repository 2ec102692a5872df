// Real collectors for the meter's end-to-end tests: nfcapd on a free
// 127.0.0.1 UDP port, dumpcap on lo for tshark, and their readers. Every
// process started here is stopped by the returned stop().
import { spawn, execFileSync } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { readFileSync, existsSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

const READY_TIMEOUT_MS = 10000;

export function freeUdpPort() {
  return new Promise((resolve, reject) => {
    const s = createSocket('udp4');
    s.once('error', reject);
    s.bind(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

function udpBound(port) {
  const hex = `0100007F:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  return readFileSync('/proc/net/udp', 'utf8').includes(hex);
}

function stopper(proc) {
  return async () => {
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    const done = new Promise((r) => proc.once('exit', r));
    proc.kill('SIGTERM');
    const t = setTimeout(() => proc.kill('SIGKILL'), READY_TIMEOUT_MS);
    await done;
    clearTimeout(t);
  };
}

async function waitFor(cond, what, proc) {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (!cond()) {
    if (proc.exitCode !== null) throw new Error(`${what} exited early (${proc.exitCode})`);
    if (Date.now() > deadline) throw new Error(`${what} not ready`);
    await sleep(50);
  }
}

// nfcapd in the foreground (no -D), writing to dir; resolves once the port is bound.
export async function startNfcapd(dir) {
  const port = await freeUdpPort();
  const proc = spawn('nfcapd', ['-b', '127.0.0.1', '-p', String(port), '-w', dir, '-B', '8000000'],
    { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  proc.stdout.on('data', (d) => { log += d; });
  proc.stderr.on('data', (d) => { log += d; });
  const stop = stopper(proc);
  try {
    await waitFor(() => udpBound(port), 'nfcapd', proc);
  } catch (e) {
    await stop();
    throw new Error(`${e.message}: ${log}`);
  }
  return { port, proc, stop, log: () => log };
}

// `nfdump -R dir -I` as an object: { Flows: 12, Packets: ..., 'Sequence failures': 0, ... }.
export function nfdumpStats(dir) {
  const out = execFileSync('nfdump', ['-R', dir, '-I'], { encoding: 'utf8' });
  const s = {};
  for (const line of out.split('\n')) {
    const m = /^([A-Za-z_ ]+):\s+(\d+)$/.exec(line.trim());
    if (m) s[m[1]] = Number(m[2]);
  }
  return s;
}

// dumpcap on lo for one UDP port, writing file; resolves once capturing.
export async function startDumpcap(port, file) {
  const proc = spawn('dumpcap', ['-i', 'lo', '-f', `udp port ${port}`, '-w', file],
    { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  proc.stderr.on('data', (d) => { log += d; });
  const stop = stopper(proc);
  try {
    await waitFor(() => /Capturing on/.test(log) && existsSync(file), 'dumpcap', proc);
  } catch (e) {
    await stop();
    throw new Error(`${e.message}: ${log}`);
  }
  await sleep(200);
  return { proc, stop };
}

function tshark(args) {
  return execFileSync('tshark', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
}

// Decodes the capture as NetFlow/IPFIX: frames seen, versions, and every
// frame tshark marks malformed or with an expert warning or error.
export function tsharkCheck(file, port) {
  const dec = ['-r', file, '-d', `udp.port==${port},cflow`];
  const versions = tshark([...dec, '-T', 'fields', '-e', 'cflow.version']).trim().split('\n').filter(Boolean);
  const bad = tshark([...dec, '-Y', '_ws.malformed || _ws.expert.severity >= warning']).trim();
  const frames = Number(tshark(['-r', file, '-T', 'fields', '-e', 'frame.number']).trim().split('\n').filter(Boolean).length);
  return { frames, versions, bad };
}
