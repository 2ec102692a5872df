// Long-poll (docs/device-protocol.md §5): 500 devices held at once on one
// serve; a ModifyFlowLogAttribute reaches every one within 1 s and each applies
// it exactly once; held syncs end at their Wait and are answered at shutdown.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, stopClean } from './lib/server.mjs';
import { api, gateway, netflowLog } from './lib/sag.mjs';
import { agentLive, agentRun, provision } from './lib/agent.mjs';

const DEVICES = Number(process.env.LONGPOLL_DEVICES || 500);
const PROVISION_INFLIGHT = 16;
const REACH_MS = 1000; // a change reaches every held device within this

let srv;
let a;
before(async () => {
  // Provisioning sends ~4 API calls a device through one key, far past its
  // default budget; the devices' own budgets stay the default.
  srv = await startServer({ args: ['--rate-limit', 'key=100000', '--metrics-listen', '127.0.0.1:0'] });
  a = api(srv);
});
after(async () => {
  await stopClean(srv);
});

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function pool(n, inflight, fn) {
  const out = new Array(n);
  let next = 0;
  await Promise.all(Array.from({ length: inflight }, async () => {
    while (next < n) {
      const i = next++;
      out[i] = await fn(i);
    }
  }));
  return out;
}

async function held() {
  const text = await (await fetch(srv.metricsUrl)).text();
  const m = text.match(/^sagflow_held_syncs (\d+)$/m);
  return m ? Number(m[1]) : -1;
}

async function untilHeld(n, what) {
  const deadline = Date.now() + 30000;
  let h;
  while ((h = await held()) !== n) {
    if (Date.now() > deadline) assert.fail(`${what}: ${h} syncs held, want ${n}`);
    await sleep(50);
  }
}

test('a held sync ends at its Wait with Changed false and NextSyncSeconds 0', async () => {
  const g = await gateway(srv, a, { devices: [{}] });
  const d = g.devices[0];
  const t0 = Date.now();
  const r = await d.sync({ wait: 2 });
  const ms = Date.now() - t0;
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.Changed, false);
  assert.equal(r.json.NextSyncSeconds, 0);
  assert.ok(ms >= 1900 && ms < 4000, `held ${ms} ms`);
  // Without Wait nothing is held; NextSyncSeconds is the poll interval.
  const r2 = await d.sync({ wait: 0 });
  assert.equal(r2.json.NextSyncSeconds, r2.json.PollIntervalSeconds);
  // A Wait out of range is an invalid report.
  for (const w of [-1, 61, 1.5, '5']) {
    const bad = await d.sync({ wait: w });
    assert.equal(bad.status, 400, bad.text);
    assert.equal(bad.json.Code, 'Device.InvalidReport');
  }
  d.state.wait = 0;
});

test('sagflow agent long-polls by default: a Modify reaches it within a second', async () => {
  const fl = await netflowLog(a, { NetflowServerIp: '127.0.0.1', NetflowServerPort: 2055, NetflowVersion: 'V9' });
  const g = await provision(a);
  assert.equal(agentRun(srv.url, g, ['--once']).status, 0);
  await a.call('AssociateFlowLog', { FlowLogId: fl, SmartAGId: g.id });
  const agent = agentLive(srv.url, g, ['--interface', 'lo', '--filter', 'udp and dst port 9']);
  try {
    await agent.waitLog(/NetFlow V9 to 127\.0\.0\.1:2055/);
    await untilHeld(1, 'the agent waiting');
    const mark = agent.mark();
    const t0 = Date.now();
    await a.call('ModifyFlowLogAttribute', { FlowLogId: fl, NetflowServerPort: 2056 });
    await agent.waitLog(/NetFlow V9 to 127\.0\.0\.1:2056/, { after: mark, timeoutMs: 5000 });
    const ms = Date.now() - t0;
    assert.ok(ms < 1000, `the agent applied the change after ${ms} ms`);
    await untilHeld(1, 'the agent waiting again');
  } finally {
    // A held sync does not delay the agent's exit.
    const t = Date.now();
    const st = await agent.stop();
    assert.equal(st.code, 0, st.log);
    assert.ok(Date.now() - t < 3000, `the agent took ${Date.now() - t} ms to stop`);
  }
});

test(`${DEVICES} devices held at once: a Modify reaches all within 1 s, each applies it once`, async () => {
  const t0 = Date.now();
  const fl = await netflowLog(a, { NetflowServerIp: '10.1.2.3', NetflowServerPort: 2055, NetflowVersion: 'V9' });
  const gws = await pool(DEVICES, PROVISION_INFLIGHT, async () => {
    const g = await gateway(srv, a, { devices: [{}] });
    await a.call('AssociateFlowLog', { FlowLogId: fl, SmartAGId: g.id });
    return g;
  });
  const devs = gws.map((g) => g.devices[0]);
  // Each device learns the configuration once before it starts to wait.
  await pool(DEVICES, PROVISION_INFLIGHT, async (i) => {
    const r = await devs[i].sync();
    assert.equal(r.json.Changed, true, r.text);
    assert.equal(r.json.FlowLog.NetflowServerPort, 2055);
  });
  const provisioned = Date.now();

  // Every device long-polls, applying what it is told.
  const applied = devs.map(() => []);
  const errors = [];
  let stopping = false;
  const loops = devs.map(async (d, i) => {
    while (!stopping) {
      let r;
      try {
        r = await d.sync({ wait: 60 });
      } catch (e) {
        if (!stopping) errors.push(`${i}: ${e.message}`);
        return;
      }
      if (r.status !== 200) {
        if (!stopping) errors.push(`${i}: ${r.status} ${r.text}`);
        return;
      }
      if (r.json.Changed) applied[i].push({ at: Date.now(), port: r.json.FlowLog && r.json.FlowLog.NetflowServerPort });
      if (r.json.NextSyncSeconds > 0) await sleep(r.json.NextSyncSeconds * 1000);
    }
  });
  await untilHeld(DEVICES, 'all devices waiting');
  const allHeld = Date.now();

  const m0 = Date.now();
  await a.call('ModifyFlowLogAttribute', { FlowLogId: fl, NetflowServerPort: 9996 });
  // Each device applies the change and waits again.
  const deadline = Date.now() + 20000;
  while (applied.some((x) => !x.length) && Date.now() < deadline) await sleep(20);
  const last = Math.max(...applied.map((x) => (x.length ? x[0].at : Infinity)));
  const reach = last - m0;
  await untilHeld(DEVICES, 'all devices waiting again');
  await sleep(500); // nothing more arrives: exactly once
  for (let i = 0; i < DEVICES; i++) {
    assert.equal(applied[i].length, 1, `device ${i} applied ${applied[i].length} times`);
    assert.equal(applied[i][0].port, 9996);
  }
  assert.deepEqual(errors, []);
  console.log(`# ${DEVICES} devices: provisioned in ${provisioned - t0} ms, all held after ` +
    `${allHeld - provisioned} ms, Modify reached the last in ${reach} ms`);
  assert.ok(reach <= REACH_MS, `the Modify reached the last device after ${reach} ms`);

  // Shutdown answers every held sync at once; serve exits cleanly.
  stopping = true;
  const s0 = Date.now();
  const st = await srv.stop();
  assert.equal(st.code, 0, st.stderr.slice(-2000));
  await Promise.all(loops);
  assert.ok(Date.now() - s0 < 10000, `shutdown took ${Date.now() - s0} ms`);
  assert.deepEqual(errors, []);
});
