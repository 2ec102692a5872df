// The systemd units of contrib/systemd (README "Running under systemd"):
// `systemd-analyze verify` finds nothing to say about them (and does find the
// faults we plant in copies), `systemd-analyze security` rates them,
// systemd-sysusers accepts the user they run as, and the
// agent unit's command line, run the way the unit runs it (as an unprivileged
// user, no new privileges, exactly the unit's capabilities), captures and
// exports to a real nfcapd. No systemd runs here: the units are checked
// offline, with ExecStart pointed at the built binary (verify requires it to exist).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { BIN, startServer, stopClean } from './lib/server.mjs';
import { api } from './lib/sag.mjs';
import { freeUdpPort } from './lib/collector.mjs';
import { nfcapdOn, udpFlows, provision } from './lib/agent.mjs';

const UNITS = new URL('../../contrib/systemd/', import.meta.url).pathname;
const INSTALLED_BIN = '/usr/local/bin/sagflow';
const MAX_EXPOSURE = 2.5; // systemd-analyze security: 0 (locked down) to 10; below 4 is "OK"
const UNPRIVILEGED = ['nobody', 'nogroup'];
let dir, bin;

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'sagflow-systemd-'));
  chmodSync(dir, 0o755);
  // A copy the unprivileged user can reach (the build tree may be under /root).
  bin = join(dir, 'sagflow');
  copyFileSync(BIN, bin);
  chmodSync(bin, 0o755);
});
after(() => { if (dir) rmSync(dir, { recursive: true, force: true }); });

const unitText = (name) => readFileSync(join(UNITS, name), 'utf8');

// The unit as installed, but running the binary under test; `edit` plants faults.
function unitCopy(name, as, edit = (s) => s) {
  const text = unitText(name);
  assert.ok(text.includes(`ExecStart=${INSTALLED_BIN} `), `${name} runs ${INSTALLED_BIN}`);
  const f = join(dir, as);
  writeFileSync(f, edit(text.replaceAll(INSTALLED_BIN, bin)));
  return f;
}

// systemd-analyze verify exits 0 on lines it ignores (unknown keys, bad
// values); it only says so on stderr. Both count as problems.
function verify(file) {
  const r = spawnSync('systemd-analyze', ['verify', '--man=no', file], { encoding: 'utf8' });
  assert.equal(r.error, undefined, 'systemd-analyze is installed (scripts/deps.sh test)');
  return { ok: r.status === 0 && r.stderr.trim() === '', said: `exit ${r.status}: ${r.stderr}` };
}

function exposure(file) {
  const r = spawnSync('systemd-analyze', ['security', '--offline=yes', file], { encoding: 'utf8' });
  const m = /Overall exposure level for \S+: (\d+\.\d)/.exec(r.stdout);
  assert.ok(m, r.stdout + r.stderr);
  return Number(m[1]);
}

const SERVE = ['sagflow-serve.service', 'sagflow-serve.service'];
const AGENT = ['sagflow-agent@.service', 'sagflow-agent@sn1.service'];

test('both units pass systemd-analyze verify with nothing to say', () => {
  for (const [name, as] of [SERVE, AGENT]) {
    const v = verify(unitCopy(name, as));
    assert.ok(v.ok, `${name}: ${v.said}`);
  }
});

test('sagflow.sysusers creates the system user both units run as', () => {
  const root = join(dir, 'sysusers-root');
  mkdirSync(join(root, 'etc'), { recursive: true });
  const r = spawnSync('systemd-sysusers', [`--root=${root}`, join(UNITS, 'sagflow.sysusers')], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const user = readFileSync(join(root, 'etc', 'passwd'), 'utf8').split('\n').find((l) => l.startsWith('sagflow:'));
  assert.ok(user, 'a sagflow user');
  const [, , uid, , , home, shell] = user.split(':');
  assert.ok(Number(uid) > 0 && Number(uid) < 1000, `a system uid (${uid})`);
  assert.equal(home, '/var/lib/sagflow');
  assert.equal(shell, '/usr/sbin/nologin');
  for (const [name] of [SERVE, AGENT]) {
    assert.match(unitText(name), /^User=sagflow$/m);
    assert.match(unitText(name), /^Group=sagflow$/m);
  }
});

test('the verify check catches a unit with a fault in it', () => {
  const faults = {
    'an unknown key': (s) => s.replace('ProtectHome=yes', 'ProtectHomee=yes'),
    'a bad value': (s) => s.replace('ProtectSystem=strict', 'ProtectSystem=stirct'),
    'a missing binary': (s) => s.replaceAll(bin, join(dir, 'no-such-sagflow')),
    'a misspelt section': (s) => s.replace('[Service]', '[Servce]'),
  };
  for (const [what, edit] of Object.entries(faults)) {
    const v = verify(unitCopy(SERVE[0], 'broken.service', edit));
    assert.ok(!v.ok, `${what} went unnoticed`);
  }
});

test(`systemd-analyze security rates both units at most ${MAX_EXPOSURE}, and the rating notices lost hardening`, () => {
  for (const [name, as] of [SERVE, AGENT]) {
    const e = exposure(unitCopy(name, as));
    assert.ok(e <= MAX_EXPOSURE, `${name}: exposure ${e}`);
  }
  const weak = unitCopy(AGENT[0], 'weak@sn1.service',
    (s) => s.replace(/^(NoNewPrivileges|ProtectSystem|ProtectHome|PrivateTmp|PrivateDevices|SystemCallFilter|RestrictAddressFamilies|CapabilityBoundingSet)=.*$/gm, ''));
  assert.ok(exposure(weak) > MAX_EXPOSURE + 2, 'the rating tells the hardened unit from a bare one');
});

// What systemd would run for this instance: %i and %S replaced, ${VAR} taken
// whole and $VAR split at whitespace, from the environment file (systemd.service(5)).
function execStart(unit, env, { instance, stateRoot }) {
  const line = /^ExecStart=(.*)$/m.exec(unit)[1].replaceAll('%i', instance).replaceAll('%S', stateRoot);
  return line.split(/\s+/).flatMap((w) => {
    const whole = /^\$\{(\w+)\}$/.exec(w), split = /^\$(\w+)$/.exec(w);
    if (whole) return [env[whole[1]] ?? ''];
    if (split) return (env[split[1]] ?? '').split(/\s+/).filter(Boolean);
    assert.ok(!w.includes('$') && !w.includes('%'), `unexpanded ${w}`);
    return [w];
  });
}

const envFile = (text) => Object.fromEntries(text.split('\n').filter((l) => /^\w+=/.test(l))
  .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));

function unitCaps(unit, key) {
  const v = new RegExp(`^${key}=(.*)$`, 'm').exec(unit);
  assert.ok(v, `the agent unit sets ${key}`);
  return v[1].trim().split(/\s+/).filter(Boolean).map((c) => c.replace(/^CAP_/, '').toLowerCase());
}

// setpriv (util-linux) as systemd's User=, NoNewPrivileges=yes,
// CapabilityBoundingSet= and AmbientCapabilities= do it.
function asUnit(argv, caps, bounding) {
  const ambient = caps.map((c) => `+${c}`).join(',');
  return ['setpriv', [`--reuid=${UNPRIVILEGED[0]}`, `--regid=${UNPRIVILEGED[1]}`, '--clear-groups',
    '--no-new-privs', `--bounding-set=-all${bounding.map((c) => `,+${c}`).join('')}`,
    ...(caps.length ? [`--inh-caps=${ambient}`, `--ambient-caps=${ambient}`] : []), ...argv]];
}

// nfdump's totals of the flows to one destination port (the agent's unit has
// no --filter, so it also meters whatever else crosses loopback meanwhile).
function collectedTo(cdir, port) {
  const out = execFileSync('nfdump', ['-R', cdir, '-q', '-N', '-o', 'fmt:%pkt %byt', `dst port ${port}`], { encoding: 'utf8' });
  const t = { Flows: 0, Packets: 0, Bytes: 0 };
  for (const l of out.trim().split('\n').filter(Boolean)) {
    const [p, b] = l.trim().split(/\s+/).map(Number);
    t.Flows += 1; t.Packets += p; t.Bytes += b;
  }
  return t;
}

// A directory as StateDirectory= makes it: owned by the service's user.
function stateDir(stateRoot, ...path) {
  const d = join(stateRoot, ...path);
  mkdirSync(d, { recursive: true });
  chownSync(d, Number(execFileSync('id', ['-u', UNPRIVILEGED[0]], { encoding: 'utf8' })), 0);
  return d;
}

test('the serve unit\'s command line serves as an unprivileged user with no capability', async () => {
  assert.equal(process.getuid(), 0, 'switching to an unprivileged user needs root');
  const unit = unitText(SERVE[0]);
  assert.match(unit, /^CapabilityBoundingSet=$/m);
  const stateRoot = join(dir, 'serve-state');
  const db = join(stateDir(stateRoot, 'sagflow'), 'sagflow.db');
  // serve.env's arguments, on a free port instead of 8080.
  const env = envFile(unitText('serve.env'));
  assert.match(env.SAGFLOW_SERVE_ARGS, /^--listen 127\.0\.0\.1:8080\b/);
  env.SAGFLOW_SERVE_ARGS = env.SAGFLOW_SERVE_ARGS.replace('127.0.0.1:8080', '127.0.0.1:0');
  const argv = [bin, ...execStart(unit, env, { instance: '', stateRoot }).slice(1)];
  assert.ok(argv.includes(db), `the database is in the state directory: ${argv.join(' ')}`);
  const [cmd, args] = asUnit(argv, [], []);
  const srv = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '', err = '';
  srv.stdout.setEncoding('utf8').on('data', (d) => { out += d; });
  srv.stderr.setEncoding('utf8').on('data', (d) => { err += d; });
  const exited = new Promise((r) => srv.once('exit', (code, signal) => r({ code, signal })));
  try {
    let m;
    for (let i = 0; !(m = /^listening on 127\.0\.0\.1:(\d+)$/m.exec(out)); i++) {
      assert.ok(i < 400 && srv.exitCode === null, `serve did not start:\n${err}`);
      await sleep(25);
    }
    const r = await fetch(`http://127.0.0.1:${m[1]}/healthz`);
    assert.equal(r.status, 200);
    srv.kill('SIGTERM');
    assert.equal((await exited).code, 0, err);
  } finally {
    if (srv.exitCode === null) srv.kill('SIGKILL');
  }
  const owner = execFileSync('stat', ['-c', '%U %a', db], { encoding: 'utf8' }).trim();
  assert.equal(owner, `${UNPRIVILEGED[0]} 600`, 'the database belongs to the service user, mode 0600');
});

test('the agent unit\'s command line captures and exports as an unprivileged user with exactly the unit\'s capabilities', async (t) => {
  assert.equal(process.getuid(), 0, 'switching to an unprivileged user needs root (as capture does)');
  const unit = unitText(AGENT[0]);
  const caps = unitCaps(unit, 'AmbientCapabilities');
  assert.deepEqual(caps, ['net_raw'], 'the agent gets CAP_NET_RAW and nothing more');
  const bounding = unitCaps(unit, 'CapabilityBoundingSet');
  assert.ok(/^NoNewPrivileges=yes$/m.test(unit));

  const srv = await startServer();
  t.after(() => stopClean(srv));
  const a = api(srv);
  const cport = await freeUdpPort(), tport = await freeUdpPort();
  const cdir = join(dir, 'nfcapd');
  mkdirSync(cdir);
  const fl = (await a.call('CreateFlowLog', { OutputType: 'netflow', NetflowServerIp: '127.0.0.1',
    NetflowServerPort: cport, NetflowVersion: 'V10', ActiveAging: 300, InactiveAging: 60 })).FlowLogId;
  const g = await provision(a);

  // The example environment file, filled in for this gateway.
  const env = { ...envFile(unitText('agent.env')), SAGFLOW_CONTROL_PLANE: srv.url, SAGFLOW_SERIAL: g.serial,
    SAGFLOW_DEVICE_SECRET: g.secret, SAGFLOW_INTERFACE: 'lo' };
  const stateRoot = join(dir, 'state');
  stateDir(stateRoot, 'sagflow-agent', 'sn1');
  const argv = [bin, ...execStart(unit, env, { instance: 'sn1', stateRoot }).slice(1)];
  assert.ok(!argv.includes(g.secret), 'the secret is not on the command line');
  const secretEnv = { ...process.env, SAGFLOW_DEVICE_SECRET: g.secret }; // systemd passes the file's variables

  // Without the capability: a clear refusal, exit 1.
  const [dcmd, dargs] = asUnit(argv, [], bounding);
  const denied = spawnSync(dcmd, dargs, { encoding: 'utf8', env: secretEnv, timeout: 30000 });
  assert.equal(denied.status, 1, denied.stderr);
  assert.match(denied.stderr, /cannot capture on lo: .*(not permitted|permission)/i);

  await a.call('AssociateFlowLog', { FlowLogId: fl, SmartAGId: g.id });
  const nf = await nfcapdOn(cdir, cport);
  const traffic = await udpFlows(tport, 4);
  const [cmd, args] = asUnit(argv, caps, bounding);
  const agent = spawn(cmd, args, { env: secretEnv, stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  agent.stderr.setEncoding('utf8').on('data', (d) => { log += d; });
  const exited = new Promise((r) => agent.once('exit', (code, signal) => r({ code, signal })));
  try {
    const exporting = () => /capturing on lo/.test(log) && /NetFlow V10 to 127\.0\.0\.1:\d+/.test(log);
    for (let i = 0; !exporting(); i++) {
      assert.ok(i < 400 && agent.exitCode === null, `the agent did not start exporting:\n${log}`);
      await sleep(25);
    }
    await traffic.send(10);
    await sleep(300);
    agent.kill('SIGTERM');
    const r = await exited;
    assert.equal(r.code, 0, log);
    assert.match(log, /stopped, every record flushed/);
  } finally {
    if (agent.exitCode === null) agent.kill('SIGKILL');
    traffic.close();
    await sleep(300);
    await nf.stop();
  }
  const sent = traffic.totals();
  assert.deepEqual(collectedTo(cdir, tport), { Flows: 4, Packets: sent.packets, Bytes: sent.bytes });
  const saved = readFileSync(join(stateRoot, 'sagflow-agent', 'sn1', 'state.json'), 'utf8');
  assert.ok(saved.length > 0 && !saved.includes(g.secret), 'the state directory holds the configuration, not the secret');
});
