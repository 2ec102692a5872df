// The demo (issue 12): `make run` (scripts/run.sh, which execs `sagflow demo`)
// and `sagflow demo` alone, with the test build's binary on a free port.
// Within 10 s of start, GetLogs (@alicloud/log) over the demo's logstore
// returns records, the console is served, and SIGINT to the process group
// (Ctrl-C) stops serve, the demo and its agent and exits 0. SAGFLOW_DEMO=0
// starts the bare control plane: no flow log.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { BIN } from './lib/server.mjs';
import { freeTcpPort } from './lib/agent.mjs';
import { agent as pinned, logClient } from './lib/sls.mjs';
import { popCore } from './lib/clients.mjs';
import { openBrowser } from './lib/browser.mjs';

const SHOTS = process.env.CONSOLE_SHOTS || new URL('../../build-test/console-shots/', import.meta.url).pathname;

const ROOT = new URL('../../', import.meta.url).pathname;
const DEMO_DEADLINE_MS = 10000;
const SECRET = 'demo-test-secret';

// cmd(port, dir) → [file, args]: make run's script, or the binary itself.
const RUN_SH = () => ['scripts/run.sh', []];
async function makeRun(env, cmd = RUN_SH) {
  const dir = mkdtempSync(join(tmpdir(), 'sagflow-demo-test-'));
  const port = await freeTcpPort();
  const [file, args] = cmd(port, dir);
  const proc = spawn(file, args, {
    cwd: ROOT, detached: true, stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, SAGFLOW_BIN: BIN, SAGFLOW_LISTEN: `127.0.0.1:${port}`, SAGFLOW_DB: join(dir, 'db'),
      SAGFLOW_ACCESS_KEY_ID: 'devkey', SAGFLOW_ACCESS_KEY_SECRET: SECRET, ...env },
  });
  let out = '';
  proc.stdout.on('data', (d) => { out += d; });
  proc.stderr.on('data', (d) => { out += d; });
  const exited = new Promise((r) => proc.once('exit', (code, signal) => r({ code, signal })));
  return {
    port, proc, started: Date.now(), log: () => out,
    async stop() {
      process.kill(-proc.pid, 'SIGINT'); // what Ctrl-C sends: the whole group
      const t = setTimeout(() => process.kill(-proc.pid, 'SIGKILL'), 20000);
      const r = await exited;
      clearTimeout(t);
      for (let i = 0; i < 50; i++) { // the group's other members (serve, node, agent) are gone too
        try { process.kill(-proc.pid, 0); } catch { break; }
        await sleep(100);
      }
      assert.throws(() => process.kill(-proc.pid, 0), /ESRCH/, 'a process of make run outlived Ctrl-C');
      rmSync(dir, { recursive: true, force: true });
      return r;
    },
  };
}

// GetLogs over the demo's logstore until it has records or 10 s since start have passed.
async function demoRecords(run, secret = SECRET) {
  const c = logClient({ port: run.port }, 'devkey', secret);
  let rows = [];
  while (Date.now() - run.started < DEMO_DEADLINE_MS) {
    const now = Math.floor(Date.now() / 1000);
    try {
      rows = await c.getLogs('sagflow-demo', 'flows', new Date((now - 600) * 1000), new Date((now + 60) * 1000),
        { query: '* | select count(*) as records, sum(bytes) as bytes, count(distinct srcaddr) as hosts' }, { agent: pinned });
    } catch { /* not up yet, or no project before the first delivery */ }
    if (Number(rows[0]?.records) > 0) break;
    await sleep(250);
  }
  assert.ok(Number(rows[0]?.records) > 0, `no demo records within 10 s:\n${run.log()}`);
  return rows[0];
}

test('make run: the demo\'s logstore has records within 10 s, and the console shows them; Ctrl-C stops everything', async () => {
  mkdirSync(SHOTS, { recursive: true });
  const run = await makeRun({});
  try {
    await demoRecords(run);
    assert.match(run.log(), new RegExp(`console: http://127\\.0\\.0\\.1:${run.port}/console/`));
    const page = await fetch(`http://127.0.0.1:${run.port}/console/`);
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-security-policy'), /default-src 'self'/);
    // What a newcomer does: open the URL, sign in, open the demo's traffic.
    const b = await openBrowser();
    try {
      const p = b.page;
      await p.goto(`http://127.0.0.1:${run.port}/console/`);
      await p.fill('#akid', 'devkey');
      await p.fill('#secret', SECRET);
      await p.getByRole('button', { name: 'Sign in', exact: true }).click();
      await p.getByRole('link', { name: 'traffic' }).click();
      await p.waitForFunction(() => Number(document.getElementById('total-records')?.textContent) > 0, null,
        { timeout: DEMO_DEADLINE_MS });
      await sleep(6000); // a few refreshes: the chart moves
      await p.screenshot({ path: join(SHOTS, 'demo-traffic-light.png'), fullPage: true });
      await p.emulateMedia({ colorScheme: 'dark' });
      await sleep(200);
      await p.screenshot({ path: join(SHOTS, 'demo-traffic-dark.png'), fullPage: true });
    } finally {
      await b.close();
    }
  } finally {
    const r = await run.stop();
    assert.equal(r.code, 0, run.log());
  }
});

test('SAGFLOW_DEMO=0 make run: the bare control plane, no demo flow log', async () => {
  const run = await makeRun({ SAGFLOW_DEMO: '0' });
  try {
    const pc = popCore({ url: `http://127.0.0.1:${run.port}` }, { akid: 'devkey', secret: SECRET });
    let r;
    for (let i = 0; i < 100 && !r; i++) {
      r = await pc.call('DescribeFlowLogs', { RegionId: 'cn-shanghai' }, { method: 'POST' }).catch(() => null);
      if (!r) await sleep(100);
    }
    await sleep(1500); // time for a demo to have provisioned, were one running
    r = await pc.call('DescribeFlowLogs', { RegionId: 'cn-shanghai' }, { method: 'POST' });
    assert.equal(r.TotalCount, 0);
    assert.doesNotMatch(run.log(), /demo: starting/);
  } finally {
    await run.stop();
  }
});

test('sagflow demo alone: records within 10 s, its own development key when none is given, --help; Ctrl-C stops everything', async () => {
  const run = await makeRun({ SAGFLOW_ACCESS_KEY_ID: '', SAGFLOW_ACCESS_KEY_SECRET: '' },
    (port, dir) => [BIN, ['demo', '--listen', `127.0.0.1:${port}`, '--db', join(dir, 'store', 'deeper', 'sagflow.db')]]);
  try {
    let secret;
    for (let i = 0; i < 100 && !secret; i++) {
      secret = /AccessKeySecret: (\S+)/.exec(run.log())?.[1];
      if (!secret) await sleep(50);
    }
    assert.match(secret ?? '', /^[A-Za-z0-9]{24}$/, run.log());
    assert.match(run.log(), /AccessKeyId: {5}devkey/);
    const row = await demoRecords(run, secret);
    // The pattern: three heavy talkers and a tail of hosts.
    assert.ok(Number(row.hosts) >= 4, JSON.stringify(row));
    assert.match(run.log(), new RegExp(`console: http://127\\.0\\.0\\.1:${run.port}/console/`));
    assert.match(run.log(), /demo: flow log fl-\S+ \(logstore sagflow-demo\/flows\), gateway sag-\S+, device DEMO-SAG-0001/);
    const pc = popCore({ url: `http://127.0.0.1:${run.port}` }, { akid: 'devkey', secret });
    const fl = (await pc.call('DescribeFlowLogs', { RegionId: 'cn-shanghai', FlowLogName: 'demo' }, { method: 'POST' })).FlowLogs.FlowLogSetType[0];
    assert.deepEqual([fl.OutputType, fl.ProjectName, fl.LogstoreName, fl.Status, fl.TotalSagNum], ['sls', 'sagflow-demo', 'flows', 'Active', 1]);
    const g = (await pc.call('DescribeSmartAccessGateways', { RegionId: 'cn-shanghai', Name: 'demo-gateway' }, { method: 'POST' }))
      .SmartAccessGateways.SmartAccessGateway[0];
    assert.equal(g.HardwareVersion, 'sag-1000');
    assert.equal(g.SerialNumber, 'DEMO-SAG-0001');
  } finally {
    const r = await run.stop();
    assert.equal(r.code, 0, run.log());
  }
  const help = spawnSync(BIN, ['demo', '--help'], { encoding: 'utf8' });
  assert.equal(help.status, 0);
  for (const s of ['--listen HOST:PORT', '--db PATH', 'SIGINT', 'sagflow agent --read', 'SAGFLOW_DEVICE_SECRET'])
    assert.ok(help.stdout.includes(s), s);
  const bad = spawnSync(BIN, ['demo', '--listen', '127.0.0.1:0'], { encoding: 'utf8' });
  assert.equal(bad.status, 2, bad.stderr);
});
