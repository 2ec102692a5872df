// The device channel (docs/device-protocol.md) end to end: devices written from
// the document (lib/device.mjs) against the real binary — configuration and
// ConfigVersion polling, what the API shows of their reports, and every way a
// request is refused.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { startServer, stopClean } from './lib/server.mjs';
import { isoNow, raw } from './lib/clients.mjs';
import { SYNC_PATH, device, deviceRequest, nextSequence } from './lib/device.mjs';
import { api, gateway, netflowLog } from './lib/sag.mjs';

let srv;
let a;
before(async () => {
  // These tests send dozens of syncs of one device back to back, far past the
  // default budget of 2 a second (fairness.test.mjs tests the budget itself).
  srv = await startServer({ args: ['--rate-limit', 'device=1000'] });
  a = api(srv);
});
after(async () => {
  await stopClean(srv);
});

const REPORT = { Model: 'sag-1000', SoftwareVersion: '1.7.0' };

function assertDevErr(r, status, code) {
  assert.equal(r.status, status, r.text);
  assert.equal(r.json.Code, code, r.text);
  assert.equal(typeof r.json.Message, 'string');
}

test('a device learns its configuration and polls it by ConfigVersion', async () => {
  const g = await gateway(srv, a, { devices: [{ silent: true }] });
  const d = g.devices[0];
  let r = await d.sync();
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.SmartAGId, g.id);
  assert.equal(r.json.SerialNumber, d.state.serial);
  assert.equal(r.json.Changed, true);
  assert.equal(r.json.FlowLog, null);
  assert.equal(r.json.Export, true);
  assert.equal(r.json.PollIntervalSeconds, 5);
  assert.match(r.json.ConfigVersion, /^[0-9a-f]{16}$/);
  const none = r.json.ConfigVersion;
  r = await d.sync();
  assert.equal(r.json.Changed, false);
  assert.equal(r.json.ConfigVersion, none);

  const fl = await netflowLog(a, { NetflowServerIp: '10.9.8.7', NetflowServerPort: 2055, NetflowVersion: 'V10',
    ActiveAging: 120, InactiveAging: 30 });
  await a.call('AssociateFlowLog', { FlowLogId: fl, SmartAGId: g.id });
  r = await d.sync();
  assert.equal(r.json.Changed, true);
  assert.notEqual(r.json.ConfigVersion, none);
  assert.deepEqual(r.json.FlowLog, { FlowLogId: fl, OutputType: 'netflow', NetflowServerIp: '10.9.8.7',
    NetflowServerPort: 2055, NetflowVersion: 'V10', ActiveAging: 120, InactiveAging: 30, SlsRegionId: '',
    ProjectName: '', LogstoreName: '' });
  const bound = r.json.ConfigVersion;
  assert.equal((await d.sync()).json.Changed, false);
  // Every change of the flow log reaches the device on its next poll.
  await a.call('ModifyFlowLogAttribute', { FlowLogId: fl, NetflowServerPort: 9996 });
  r = await d.sync();
  assert.equal(r.json.Changed, true);
  assert.equal(r.json.FlowLog.NetflowServerPort, 9996);
  await a.call('DeactiveFlowLog', { FlowLogId: fl });
  r = await d.sync();
  assert.equal(r.json.Changed, true);
  assert.equal(r.json.FlowLog, null, 'a stopped flow log exports nothing');
  assert.equal(r.json.ConfigVersion, none);
  await a.call('ActiveFlowLog', { FlowLogId: fl });
  r = await d.sync();
  assert.equal(r.json.FlowLog.FlowLogId, fl);
  await a.call('DisassociateFlowLog', { FlowLogId: fl, SmartAGId: g.id });
  r = await d.sync();
  assert.equal(r.json.FlowLog, null);
  assert.notEqual(r.json.ConfigVersion, bound);
});

test('what devices report is what the gateway API shows', async () => {
  const g = await gateway(srv, a, { devices: [{ version: '2.1.0', ha: 'active' }, { version: '1.9.3', ha: 'standby' }] });
  let attr = await a.call('DescribeSmartAccessGatewayAttribute', { SmartAGId: g.id });
  assert.equal(attr.Status, 'Active');
  assert.equal(attr.SoftwareVersion, '2.1.0');
  assert.equal(attr.BackupSoftwareVersion, '1.9.3');
  const devs = attr.Devices.Device;
  assert.equal(devs.length, 2);
  assert.deepEqual(devs.map((x) => [x.SerialNumber, x.SoftwareVersion, x.HaState]),
    [[g.devices[0].state.serial, '2.1.0', 'active'], [g.devices[1].state.serial, '1.9.3', 'standby']]);
  assert.equal(attr.SerialNumber, `${g.devices[0].state.serial},${g.devices[1].state.serial}`);
  // Only the active device of the pair exports; a failover moves it.
  assert.equal((await g.devices[0].sync()).json.Export, true);
  assert.equal((await g.devices[1].sync()).json.Export, false);
  await g.devices[0].sync({ ha: 'standby' });
  const r = await g.devices[1].sync({ ha: 'active', version: '2.2.0' });
  assert.equal(r.json.Export, true);
  assert.equal(r.json.Changed, true);
  attr = await a.call('DescribeSmartAccessGatewayAttribute', { SmartAGId: g.id });
  assert.equal(attr.SoftwareVersion, '2.2.0');
  assert.equal(attr.BackupSoftwareVersion, '2.1.0');
  const list = await a.call('DescribeSmartAccessGateways', { SmartAGId: g.id });
  assert.equal(list.SmartAccessGateways.SmartAccessGateway[0].SoftwareVersion, '2.2.0');
  // A gateway whose device never reported is Init with no version.
  const s = await gateway(srv, a, { devices: [{ silent: true }] });
  attr = await a.call('DescribeSmartAccessGatewayAttribute', { SmartAGId: s.id });
  assert.equal(attr.Status, 'Init');
  assert.equal(attr.SoftwareVersion, '');
});

test('authentication: wrong key, unknown or unbound serial, tampering, other path', async () => {
  const g = await gateway(srv, a, { devices: [{}] });
  const { serial, secret } = g.devices[0].state;
  assertDevErr(await deviceRequest(srv, { serial, secret: 'x'.repeat(32), report: REPORT }), 401, 'Device.AuthFailed');
  assertDevErr(await deviceRequest(srv, { serial: 'NOSUCHSERIAL', secret, report: REPORT }), 401, 'Device.AuthFailed');
  // The body changed after signing, hash header left as signed.
  assertDevErr(await deviceRequest(srv, { serial, secret, report: REPORT,
    mutate: (h) => { h['x-sag-content-sha256'] = 'a'.repeat(64); } }), 400, 'Device.ContentHashMismatch');
  // Every signed field matters: serial, date, sequence.
  for (const k of ['x-sag-sequence', 'x-sag-date']) {
    const r = await deviceRequest(srv, { serial, secret, report: REPORT, mutate: (h) => {
      h[k] = k === 'x-sag-date' ? isoNow(-60) : String(Number(h[k]) + 1);
    } });
    assertDevErr(r, 401, 'Device.AuthFailed');
  }
  // A signature made for another path does not verify here.
  const body = JSON.stringify(REPORT);
  const { signedHeaders } = await import('./lib/device.mjs');
  const h = signedHeaders({ serial, secret, body, path: '/device/v1/other' });
  assertDevErr(await raw(srv, { method: 'POST', path: SYNC_PATH, body, headers: h }), 401, 'Device.AuthFailed');
  // Unbinding revokes the device.
  assert.equal((await deviceRequest(srv, { serial, secret, report: REPORT })).status, 200);
  await a.call('UnbindSerialNumber', { SmartAGId: g.id, SerialNumber: serial });
  assertDevErr(await deviceRequest(srv, { serial, secret, report: REPORT }), 401, 'Device.AuthFailed');
});

test('clock window; a replayed sync and an older one are refused', async () => {
  const g = await gateway(srv, a, { devices: [{}] });
  const { serial, secret } = g.devices[0].state;
  assertDevErr(await deviceRequest(srv, { serial, secret, report: REPORT, date: isoNow(-16 * 60) }), 401, 'Device.TimestampExpired');
  assertDevErr(await deviceRequest(srv, { serial, secret, report: REPORT, date: isoNow(16 * 60) }), 401, 'Device.TimestampExpired');
  assert.equal((await deviceRequest(srv, { serial, secret, report: REPORT, date: isoNow(-14 * 60) })).status, 200);
  // The exact same request twice: the second is a replay.
  const sequence = nextSequence();
  const date = isoNow();
  assert.equal((await deviceRequest(srv, { serial, secret, report: REPORT, sequence, date })).status, 200);
  let r = await deviceRequest(srv, { serial, secret, report: REPORT, sequence, date });
  assertDevErr(r, 409, 'Device.SequenceStale');
  assert.equal(r.json.LastSequence, sequence);
  // An older sequence, freshly signed, is refused too; the answer names the mark.
  r = await deviceRequest(srv, { serial, secret, report: REPORT, sequence: sequence - 1000 });
  assertDevErr(r, 409, 'Device.SequenceStale');
  assert.equal(r.json.LastSequence, sequence);
  // A request that fails verification does not move the mark.
  const s2 = nextSequence() + 5000;
  assertDevErr(await deviceRequest(srv, { serial, secret: 'wrong', report: REPORT, sequence: s2 }), 401, 'Device.AuthFailed');
  assert.equal((await deviceRequest(srv, { serial, secret, report: REPORT, sequence: s2 - 1 })).status, 200);
  // The same request sent 10 times at once is accepted exactly once.
  const s3 = s2 + 1;
  const many = await Promise.all(Array.from({ length: 10 }, () =>
    deviceRequest(srv, { serial, secret, report: REPORT, sequence: s3, date })));
  assert.deepEqual(many.map((x) => x.status).sort(), [200, ...Array(9).fill(409)]);
});

test('a protocol-1.0 device (X-Sag-Nonce, no X-Sag-Sequence) is refused with a clear code', async () => {
  const g = await gateway(srv, a, { devices: [{ silent: true }] });
  const { serial, secret } = g.devices[0].state;
  const r = await deviceRequest(srv, { serial, secret, report: REPORT, mutate: (h) => {
    h['x-sag-nonce'] = h['x-sag-sequence'].padStart(32, '0');
    delete h['x-sag-sequence'];
  } });
  assertDevErr(r, 400, 'Device.SequenceRequired');
  assert.match(r.json.Message, /X-Sag-Sequence/);
  for (const bad of ['0', '-1', 'abc', '1.5', '+5', '99999999999999999999']) {
    assertDevErr(await deviceRequest(srv, { serial, secret, report: REPORT, mutate: (h) => {
      h['x-sag-sequence'] = bad;
    } }), 400, 'Device.MalformedRequest');
  }
});

test('a restart of serve does not reopen the window: the mark is persisted', async () => {
  const s = await startServer({ keepDir: true, args: ['--rate-limit', 'device=1000'] });
  const sa = api(s);
  const g = await gateway(s, sa, { devices: [{ silent: true }] });
  const { serial, secret } = g.devices[0].state;
  const sequence = nextSequence();
  const date = isoNow();
  assert.equal((await deviceRequest(s, { serial, secret, report: REPORT, sequence, date })).status, 200);
  const st = await s.stop();
  assert.equal(st.code, 0, st.stderr.slice(-2000));
  const s2 = await startServer({ dbPath: s.dbPath, args: ['--rate-limit', 'device=1000'] });
  try {
    const r = await deviceRequest(s2, { serial, secret, report: REPORT, sequence, date });
    assertDevErr(r, 409, 'Device.SequenceStale');
    assert.equal((await deviceRequest(s2, { serial, secret, report: REPORT })).status, 200);
    const seq2 = nextSequence();
    assert.equal((await deviceRequest(s2, { serial, secret, report: REPORT, sequence: seq2, date })).status, 200);
    // Killed, not stopped: the mark was committed before the answer, not at exit.
    s2.proc.kill('SIGKILL');
    await new Promise((res) => s2.proc.on('exit', res));
    const s3 = await startServer({ dbPath: s.dbPath });
    try {
      assertDevErr(await deviceRequest(s3, { serial, secret, report: REPORT, sequence: seq2, date }), 409, 'Device.SequenceStale');
    } finally {
      await s3.stop();
    }
  } finally {
    await s2.stop();
    rmSync(s.dir, { recursive: true, force: true });
  }
});

test('malformed requests and reports get a clear 4xx, and the server keeps working', async () => {
  const g = await gateway(srv, a, { devices: [{}] });
  const { serial, secret } = g.devices[0].state;
  const ok = () => deviceRequest(srv, { serial, secret, report: REPORT });
  const cases = [
    [{ mutate: (h) => { delete h.authorization; } }, 400, 'Device.MalformedRequest'],
    [{ mutate: (h) => { h.authorization = 'SAG-HMAC-SHA256 Signature=XYZ'; } }, 400, 'Device.MalformedRequest'],
    [{ mutate: (h) => { delete h['x-sag-serial-number']; } }, 400, 'Device.MalformedRequest'],
    [{ mutate: (h) => { h['x-sag-serial-number'] = 'bad serial!'; } }, 400, 'Device.MalformedRequest'],
    [{ mutate: (h) => { h['x-sag-date'] = '2026-13-01T00:00:00Z'; } }, 400, 'Device.MalformedRequest'],
    [{ mutate: (h) => { h['x-sag-sequence'] = 'x'; } }, 400, 'Device.MalformedRequest'],
    [{ body: 'not json' }, 400, 'Device.InvalidReport'],
    [{ body: '[]' }, 400, 'Device.InvalidReport'],
    [{ report: { Model: 'sag-1000' } }, 400, 'Device.InvalidReport'],
    [{ report: { ...REPORT, SoftwareVersion: 'latest' } }, 400, 'Device.InvalidReport'],
    [{ report: { ...REPORT, Model: 'SAG 1000' } }, 400, 'Device.InvalidReport'],
    [{ report: { ...REPORT, HaState: 'primary' } }, 400, 'Device.InvalidReport'],
    [{ report: { ...REPORT, ConfigVersion: 'zz' } }, 400, 'Device.InvalidReport'],
    [{ body: '{"Model":"sag-1000","Model":"x","SoftwareVersion":"1.7.0"}' }, 400, 'Device.InvalidReport'],
    [{ body: JSON.stringify({ ...REPORT, pad: 'x'.repeat(5000) }) }, 413, 'Device.RequestTooLarge'],
  ];
  for (const [opts, status, code] of cases) {
    assertDevErr(await deviceRequest(srv, { serial, secret, report: REPORT, ...opts }), status, code);
    assert.equal((await ok()).status, 200);
  }
  assertDevErr(await raw(srv, { method: 'GET', path: SYNC_PATH }), 405, 'Device.MethodNotAllowed');
  assertDevErr(await raw(srv, { method: 'POST', path: '/device/v2/sync', body: '{}' }), 404, 'Device.NotFound');
  assertDevErr(await raw(srv, { method: 'POST', path: SYNC_PATH, body: Buffer.from([0, 1, 2, 255]) }), 400, 'Device.MalformedRequest');
  // The RPC API on / is untouched by all this.
  assert.ok((await a.call('DescribeFlowLogs', {})).FlowLogs);
});

test('a device of another model or old firmware reports fine; the rules use it', async () => {
  const g = await gateway(srv, a, { devices: [{ silent: true }] });
  const d = device(srv, g.devices[0].state);
  const fl = await netflowLog(a);
  assert.equal((await d.sync({ version: '1.2.3' })).status, 200);
  await a.fails('AssociateFlowLog', { FlowLogId: fl, SmartAGId: g.id }, 'FeatureNotSupport');
  assert.equal((await d.sync({ version: '1.7.0.1', model: 'sag-100wm' })).status, 200);
  await a.fails('AssociateFlowLog', { FlowLogId: fl, SmartAGId: g.id }, 'OperationUnsupported.AssociateFlowLog');
  assert.equal((await d.sync({ model: 'sag-1000' })).status, 200);
  await a.call('AssociateFlowLog', { FlowLogId: fl, SmartAGId: g.id });
});

test('the server log names refused devices but never a SecretKey or a signature', async () => {
  const g = await gateway(srv, a, { devices: [{}] });
  const { serial, secret } = g.devices[0].state;
  let sig = '';
  await deviceRequest(srv, { serial, secret: 'wrongwrongwrong', report: REPORT,
    mutate: (h) => { sig = h.authorization.split('=')[1]; } });
  const line = new RegExp(`device: Device.AuthFailed 401 remote=127\\.0\\.0\\.1:\\d+ serial=${serial}`);
  for (let i = 0; i < 50 && !line.test(srv.stderr()); i++) await new Promise((r) => setTimeout(r, 50));
  const log = srv.stderr();
  assert.match(log, line);
  assert.ok(!log.includes(secret), 'no SecretKey in the log');
  assert.ok(!log.includes(sig), 'no signature in the log');
});
