// Stress reproducer for the "many concurrent clients" flake (NOTES.md, issue 9):
// rounds of N concurrent pop-core calls on a fresh client (a fresh keep-alive
// agent, so N new connections), exactly like tests/e2e/protocol.test.mjs, while
// optional noise runs against the same serve. Every call that fails is
// reported with its socket's local port, bytes written/read, the server's
// access-log line for that port (if any) and `ss` for that port.
//
//   node tests/stress/lost_request.mjs [--seconds 60] [--conc 200] [--noise]
//        [--reuse] [--cpu N] [--threads N] [--timeout-ms 10000]
//   SAGFLOW_BIN=build-test/sagflow ...   (default build/sagflow)
//
// Exit 0 when every call was answered, 1 otherwise.
import http from 'node:http';
import net from 'node:net';
import { spawn, spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { startServer, TEST_AKID, TEST_SECRET } from '../e2e/lib/server.mjs';

const require = createRequire(new URL('../e2e/', import.meta.url));
const RPCClient = require('@alicloud/pop-core');

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(`--${name}`);
  if (i < 0) return dflt;
  return typeof dflt === 'boolean' ? true : Number(args[i + 1]);
};
const SECONDS = opt('seconds', 60);
const CONC = opt('conc', 200);
const NOISE = opt('noise', false);
const REUSE = opt('reuse', false);
const CPU = opt('cpu', 0);
const THREADS = opt('threads', 0);
const TIMEOUT_MS = opt('timeout-ms', 10000);

// The agent pop-core builds for itself, but one whose sockets we can see.
function recordingAgent() {
  const agent = new http.Agent({ keepAlive: true, keepAliveMsecs: 3000 });
  agent.seen = [];
  const orig = agent.createConnection.bind(agent);
  agent.createConnection = (o, cb) => {
    const s = orig(o, cb);
    s.createdAt = Date.now();
    s.on('connect', () => { s.port = s.localPort; });
    agent.seen.push(s);
    return s;
  };
  return agent;
}

function client(srv, agent) {
  const c = new RPCClient({ accessKeyId: TEST_AKID, accessKeySecret: TEST_SECRET,
    endpoint: srv.url, apiVersion: '2018-03-13' });
  c.keepAliveAgent = agent;
  return c;
}

function describeSocket(srv, s) {
  const port = s.port;
  const logged = srv.stderr().split('\n').filter((l) => port && l.includes(`remote=127.0.0.1:${port} `));
  const ss = port ? spawnSync('ss', ['-tanoi', `( sport = :${port} or dport = :${port} )`],
    { encoding: 'utf8' }).stdout : '';
  return `  socket local port ${port} written ${s.bytesWritten} read ${s.bytesRead} ` +
    `destroyed ${s.destroyed} age ${Date.now() - s.createdAt} ms\n` +
    `  server log for it: ${logged.length ? logged.join(' | ') : '(none)'}\n  ss:\n${ss}`;
}

// What the server is doing while a round is stuck: each thread's current
// system call (/proc/PID/task/TID/syscall: number and arguments) and how many
// of its accepted sockets hold request bytes it has not read (Recv-Q).
function serverState(srv) {
  const pid = srv.proc.pid;
  const lines = [];
  for (const tid of spawnSync('ls', [`/proc/${pid}/task`], { encoding: 'utf8' }).stdout.split(/\s+/).filter(Boolean)) {
    const rd = (f) => spawnSync('cat', [`/proc/${pid}/task/${tid}/${f}`], { encoding: 'utf8' }).stdout.trim();
    lines.push(`  thread ${tid} ${rd('comm')}: syscall ${rd('syscall')}`);
  }
  const ss = spawnSync('ss', ['-tanH', 'state', 'established', `( sport = :${srv.port} )`], { encoding: 'utf8' }).stdout
    .split('\n').filter(Boolean).map((l) => l.trim().split(/\s+/));
  const unread = ss.filter((f) => Number(f[0]) > 0);
  lines.push(`  server sockets: ${ss.length} established, ${unread.length} with unread request bytes ` +
    `(Recv-Q ${unread.slice(0, 3).map((f) => f[0]).join(',')}...)`);
  return lines.join('\n');
}

async function round(srv, agent, n) {
  const c = client(srv, agent);
  const t0 = Date.now();
  const watch = setTimeout(() => console.log(`round stuck for 3 s:\n${serverState(srv)}`), 3000);
  const rs = await Promise.allSettled(Array.from({ length: n }, (_, i) =>
    c.request('DescribeRegions', { AcceptLanguage: i % 2 ? 'en-US' : 'zh-CN' },
      { method: i % 3 ? 'POST' : 'GET', timeout: TIMEOUT_MS })));
  clearTimeout(watch);
  const bad = rs.map((r, i) => ({ r, i })).filter((x) => x.r.status === 'rejected');
  return { ms: Date.now() - t0, bad };
}

// Noise: short connections (connect, one GET, close), slow clients that send
// half a request and hold it, and connections opened and dropped unused.
function startNoise(srv, stop) {
  const loops = [];
  const shortConn = async () => {
    while (!stop.v) {
      await new Promise((res) => {
        const req = http.get({ host: '127.0.0.1', port: srv.port, path: '/healthz', agent: false }, (r) => {
          r.resume(); r.on('end', res);
        });
        req.on('error', res);
      });
    }
  };
  const slow = async () => {
    while (!stop.v) {
      await new Promise((res) => {
        const s = net.connect(srv.port, '127.0.0.1', () => {
          s.write('POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nA=');
          setTimeout(() => { s.destroy(); res(); }, 2000 + Math.random() * 3000);
        });
        s.on('error', res);
      });
    }
  };
  const idle = async () => {
    while (!stop.v) {
      await new Promise((res) => {
        const s = net.connect(srv.port, '127.0.0.1', () => setTimeout(() => { s.destroy(); res(); }, 50));
        s.on('error', res);
      });
    }
  };
  for (let i = 0; i < 4; i++) loops.push(shortConn());
  for (let i = 0; i < 20; i++) loops.push(slow());
  for (let i = 0; i < 2; i++) loops.push(idle());
  return Promise.all(loops);
}

async function main() {
  // The key budget (issue 14) would answer most calls Throttling: this counts lost requests.
  const srv = await startServer({ args: ['--rate-limit', 'key=1000000', ...(THREADS ? ['--threads', String(THREADS)] : [])] });
  const hogs = Array.from({ length: CPU }, () =>
    spawn(process.execPath, ['-e', 'for(;;){}'], { stdio: 'ignore' }));
  const stop = { v: false };
  const noise = NOISE ? startNoise(srv, stop) : null;
  let rounds = 0, calls = 0, failed = 0, worst = 0;
  const end = Date.now() + SECONDS * 1000;
  const shared = recordingAgent();
  try {
    while (Date.now() < end) {
      const agent = REUSE ? shared : recordingAgent();
      const { ms, bad } = await round(srv, agent, CONC);
      rounds++; calls += CONC; worst = Math.max(worst, ms);
      if (bad.length) {
        failed += bad.length;
        console.log(`round ${rounds}: ${bad.length} of ${CONC} failed after ${ms} ms`);
        for (const { r, i } of bad.slice(0, 5))
          console.log(`  call ${i} (${i % 3 ? 'POST' : 'GET'}): ${r.reason.name}: ${r.reason.message}`);
        const silent = agent.seen.filter((s) => s.bytesRead === 0);
        console.log(` ${silent.length} socket(s) never read a byte:`);
        for (const s of silent.slice(0, 5)) console.log(describeSocket(srv, s));
      }
      if (!REUSE) agent.destroy();
    }
  } finally {
    stop.v = true;
    for (const h of hogs) h.kill('SIGKILL');
    await noise;
    shared.destroy();
    const st = await srv.stop();
    console.log(`${rounds} rounds, ${calls} calls, ${failed} failed, slowest round ${worst} ms, ` +
      `serve exit ${st.code ?? st.signal}`);
    process.exitCode = failed || st.code !== 0 ? 1 : 0;
  }
}

main();
