// make run's demo (issue 12): scripts/run.sh with the test build's binary on a
// free port. Within 10 s of start, GetLogs (@alicloud/log) over the demo's
// logstore returns records, the console is served, and SIGINT to the process
// group (Ctrl-C) stops serve, the demo and its agent. SAGFLOW_DEMO=0 starts
// the bare control plane: no flow log.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
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

async function makeRun(env) {
  const dir = mkdtempSync(join(tmpdir(), 'sagflow-demo-test-'));
  const port = await freeTcpPort();
  const proc = spawn('scripts/run.sh', [], {
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

test('make run: the demo\'s logstore has records within 10 s, and the console shows them; Ctrl-C stops everything', async () => {
  mkdirSync(SHOTS, { recursive: true });
  const run = await makeRun({});
  try {
    const c = logClient({ port: run.port }, 'devkey', SECRET);
    let rows = [];
    while (Date.now() - run.started < DEMO_DEADLINE_MS) {
      const now = Math.floor(Date.now() / 1000);
      try {
        rows = await c.getLogs('sagflow-demo', 'flows', new Date((now - 600) * 1000), new Date((now + 60) * 1000),
          { query: '* | select count(*) as records, sum(bytes) as bytes' }, { agent: pinned });
      } catch { /* not up yet, or no project before the first delivery */ }
      if (Number(rows[0]?.records) > 0) break;
      await sleep(250);
    }
    assert.ok(Number(rows[0]?.records) > 0, `no demo records within 10 s:\n${run.log()}`);
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
