// Gateways (spec §4): CreateSmartAccessGateway with its order details,
// DescribeSmartAccessGateways filters and paging, the attribute view, serial
// number binding (one device, or two for an HA pair) and deletion rules.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, stopClean } from './lib/server.mjs';
import { api, createKey, gateway, netflowLog, nextSerial, same } from './lib/sag.mjs';

let srv;
let a;
before(async () => {
  srv = await startServer();
  a = api(srv);
});
after(async () => {
  await stopClean(srv);
});

const ORDER = { ChargeType: 'PREPAY', Period: 12, AutoPay: true, BuyerMessage: 'leave at the door',
  ReceiverAddress: '969 West Wen Yi Road', ReceiverCity: 'Hangzhou', ReceiverCountry: 'China',
  ReceiverDistrict: 'Yuhang', ReceiverEmail: 'ops@example.com', ReceiverMobile: '13900000000',
  ReceiverName: '张三', ReceiverPhone: '0571-0000000', ReceiverState: 'Zhejiang', ReceiverTown: 'Wuchang',
  ReceiverZip: '311121', AlreadyHaveSag: false };

test('CreateSmartAccessGateway accepts the real parameters; the views show it', async () => {
  const c = await a.call('CreateSmartAccessGateway', { ...ORDER, HardWareSpec: 'sag-1000', HaType: 'warm_backup',
    Name: 'branch-01', Description: 'Hangzhou branch', MaxBandWidth: 50 });
  assert.match(c.SmartAGId, /^sag-[a-z0-9]{18}$/);
  assert.match(c.OrderId, /^[1-9][0-9]{14}$/);
  assert.equal(c.Name, 'branch-01');
  assert.equal(c.Description, 'Hangzhou branch');
  assert.match(c.ResourceGroupId, /^rg-/);
  const attr = await a.call('DescribeSmartAccessGatewayAttribute', { SmartAGId: c.SmartAGId });
  assert.equal(attr.SmartAGId, c.SmartAGId);
  assert.equal(attr.HardwareVersion, 'sag-1000');
  assert.equal(attr.InstanceType, 'sag-1000');
  assert.equal(attr.HaType, 'warm_backup');
  assert.equal(attr.MaxBandwidth, '50');
  assert.equal(attr.Status, 'Init');
  assert.ok(attr.EndTime > attr.CreateTime);
  same(attr.FlowLogIds, { FlowLogId: [] });
  same(attr.Devices, { Device: [] });
  same(attr.AclIds, { AclId: [] });
  same(attr.Links, { Link: [] });
  const list = await a.call('DescribeSmartAccessGateways', { SmartAGId: c.SmartAGId });
  assert.equal(list.TotalCount, 1);
  const item = list.SmartAccessGateways.SmartAccessGateway[0];
  assert.equal(item.Name, 'branch-01');
  assert.equal(item.HardwareVersion, 'sag-1000');
  assert.equal(item.AclIds, '');
  // Only the required parameters (order details are optional here).
  for (const spec of ['sag-100wm', 'sag-vcpe'])
    for (const ha of ['no_backup', 'cold_backup'])
      assert.match((await a.call('CreateSmartAccessGateway', { HardWareSpec: spec, HaType: ha })).SmartAGId, /^sag-/);
});

test('CreateSmartAccessGateway refuses bad parameters with the parameter named', async () => {
  const base = { HardWareSpec: 'sag-1000', HaType: 'no_backup' };
  await a.fails('CreateSmartAccessGateway', { HaType: 'no_backup' }, 'MissingParameter', { detail: /"HardWareSpec"/ });
  await a.fails('CreateSmartAccessGateway', { HardWareSpec: 'sag-1000' }, 'MissingParameter', { detail: /"HaType"/ });
  await a.fails('CreateSmartAccessGateway', { ...base, HardWareSpec: 'sag-10wm' }, 'InvalidParameter', { detail: /"HardWareSpec"/ });
  await a.fails('CreateSmartAccessGateway', { ...base, HaType: 'hot_backup' }, 'InvalidParameter', { detail: /"HaType"/ });
  await a.fails('CreateSmartAccessGateway', { ...base, Period: 10 }, 'InvalidParameter', { detail: /"Period"/ });
  await a.fails('CreateSmartAccessGateway', { ...base, MaxBandWidth: -1 }, 'InvalidParameter', { detail: /"MaxBandWidth"/ });
  await a.fails('CreateSmartAccessGateway', { ...base, Name: 'x' }, 'InvalidParameter', { detail: /"Name"/ });
  await a.fails('CreateSmartAccessGateway', { ...base, BuyerMessage: 'm'.repeat(300) }, 'InvalidParameter', { detail: /"BuyerMessage"/ });
  await a.fails('CreateSmartAccessGateway', { ...base, RegionId: 'cn-atlantis' }, 'IllegalParam.RegionId');
});

test('DescribeSmartAccessGateways: filters and paging that terminates', async () => {
  const region = { RegionId: 'ap-northeast-1' };
  const ids = [];
  for (let i = 0; i < 12; i++) {
    const spec = i % 3 === 0 ? 'sag-100wm' : 'sag-1000';
    ids.push((await a.call('CreateSmartAccessGateway', { ...region, HardWareSpec: spec, HaType: 'no_backup',
      Name: `gw-${i}` })).SmartAGId);
  }
  const seen = [];
  for (let page = 1; page < 50; page++) {
    const r = await a.call('DescribeSmartAccessGateways', { ...region, PageNumber: page, PageSize: 5 });
    assert.equal(r.TotalCount, 12);
    seen.push(...r.SmartAccessGateways.SmartAccessGateway.map((g) => g.SmartAGId));
    if (r.SmartAccessGateways.SmartAccessGateway.length < 5) break;
  }
  same(seen, ids);
  let r = await a.call('DescribeSmartAccessGateways', { ...region, HardwareType: 'sag-100wm' });
  assert.equal(r.TotalCount, 4);
  r = await a.call('DescribeSmartAccessGateways', { ...region, Name: 'gw-7' });
  same(r.SmartAccessGateways.SmartAccessGateway.map((g) => g.SmartAGId), [ids[7]]);
  const sn = nextSerial();
  await a.call('BindSerialNumber', { ...region, SmartAGId: ids[5], SerialNumber: sn });
  r = await a.call('DescribeSmartAccessGateways', { ...region, SerialNumber: sn });
  same(r.SmartAccessGateways.SmartAccessGateway.map((g) => g.SmartAGId), [ids[5]]);
  r = await a.call('DescribeSmartAccessGateways', { ...region, SmartAGId: 'sag-none' });
  same(r.SmartAccessGateways, { SmartAccessGateway: [] });
  await a.fails('DescribeSmartAccessGateways', { ...region, PageSize: 51 }, 'InvalidParameter', { detail: /PageSize/ });
  await a.fails('DescribeSmartAccessGateways', { ...region, HardwareType: 'router' }, 'InvalidParameter', { detail: /HardwareType/ });
  // Another account sees none of them.
  const b = api(srv, createKey(srv.dbPath, `gw${process.pid}`));
  assert.equal((await b.call('DescribeSmartAccessGateways', region)).TotalCount, 0);
});

test('BindSerialNumber: one device for no_backup, two for an HA pair, each with its own SecretKey', async () => {
  const single = await a.call('CreateSmartAccessGateway', { HardWareSpec: 'sag-1000', HaType: 'no_backup' });
  const pair = await a.call('CreateSmartAccessGateway', { HardWareSpec: 'sag-1000', HaType: 'cold_backup' });
  const [s1, s2, s3, s4] = [nextSerial(), nextSerial(), nextSerial(), nextSerial()];
  await a.call('BindSerialNumber', { SmartAGId: single.SmartAGId, SerialNumber: s1 });
  await a.call('BindSerialNumber', { SmartAGId: single.SmartAGId, SerialNumber: s1 }); // idempotent
  await a.fails('BindSerialNumber', { SmartAGId: single.SmartAGId, SerialNumber: s2 }, 'InvalidParameter', { detail: /SerialNumber/ });
  await a.call('BindSerialNumber', { SmartAGId: pair.SmartAGId, SerialNumber: s2 });
  await a.call('BindSerialNumber', { SmartAGId: pair.SmartAGId, SerialNumber: s3 });
  await a.fails('BindSerialNumber', { SmartAGId: pair.SmartAGId, SerialNumber: s4 }, 'InvalidParameter');
  // A serial number belongs to one gateway.
  await a.fails('BindSerialNumber', { SmartAGId: pair.SmartAGId, SerialNumber: s1 }, 'InvalidParameter');
  const attr = await a.call('DescribeSmartAccessGatewayAttribute', { SmartAGId: pair.SmartAGId });
  const keys = attr.Devices.Device.map((d) => d.SecretKey);
  assert.equal(keys.length, 2);
  for (const k of keys) assert.match(k, /^[A-Za-z0-9]{32}$/);
  assert.notEqual(keys[0], keys[1]);
  await a.fails('BindSerialNumber', { SmartAGId: pair.SmartAGId }, 'MissingParameter', { detail: /SerialNumber/ });
  await a.fails('BindSerialNumber', { SerialNumber: s4 }, 'MissingParameter', { detail: /SmartAGId/ });
  await a.fails('BindSerialNumber', { SmartAGId: pair.SmartAGId, SerialNumber: 'has space' }, 'InvalidParameter');
  await a.fails('BindSerialNumber', { SmartAGId: 'sag-nosuchgateway0000', SerialNumber: s4 }, 'InvalidSmartAGId.NotFound');
  // Unbind frees the slot and the serial number.
  await a.call('UnbindSerialNumber', { SmartAGId: pair.SmartAGId, SerialNumber: s3 });
  await a.fails('UnbindSerialNumber', { SmartAGId: pair.SmartAGId, SerialNumber: s3 }, 'InvalidParameter');
  await a.call('BindSerialNumber', { SmartAGId: pair.SmartAGId, SerialNumber: s4 });
  const after1 = await a.call('DescribeSmartAccessGatewayAttribute', { SmartAGId: pair.SmartAGId });
  same(after1.Devices.Device.map((d) => d.SerialNumber), [s2, s4]);
});

test('DeleteSmartAccessGateway takes InstanceId; refused while a flow log is bound', async () => {
  const g = await gateway(srv, a, { devices: [{ version: '1.8.0' }] });
  const fl = await netflowLog(a);
  await a.call('AssociateFlowLog', { FlowLogId: fl, SmartAGId: g.id });
  await a.fails('DeleteSmartAccessGateway', { SmartAGId: g.id }, 'MissingParameter', { detail: /InstanceId/ });
  await a.fails('DeleteSmartAccessGateway', { InstanceId: g.id }, 'DependencyViolation.FlowLog');
  await a.call('DisassociateFlowLog', { FlowLogId: fl, SmartAGId: g.id });
  await a.call('DeleteSmartAccessGateway', { InstanceId: g.id });
  await a.fails('DeleteSmartAccessGateway', { InstanceId: g.id }, 'InvalidSmartAGId.NotFound');
  await a.fails('DescribeSmartAccessGatewayAttribute', { SmartAGId: g.id }, 'InvalidSmartAGId.NotFound');
  await a.fails('DescribeSmartAccessGatewayAttribute', {}, 'MissingParameter', { detail: /SmartAGId/ });
  // Its device is gone with it: the serial number can be bound elsewhere.
  const other = await a.call('CreateSmartAccessGateway', { HardWareSpec: 'sag-1000', HaType: 'no_backup' });
  await a.call('BindSerialNumber', { SmartAGId: other.SmartAGId, SerialNumber: g.devices[0].state.serial });
  const r = await g.devices[0].sync();
  assert.equal(r.status, 401, 'the old SecretKey no longer works');
});

test('DescribeSmartAccessGateways Status filter follows the device reports', async () => {
  const region = 'eu-central-1';
  const live = await gateway(srv, a, { devices: [{ version: '1.7.0' }], region });
  const quiet = await gateway(srv, a, { devices: [{ silent: true }], region });
  const ids = async (Status) => (await a.call('DescribeSmartAccessGateways', { RegionId: region, Status }))
    .SmartAccessGateways.SmartAccessGateway.map((g) => [g.SmartAGId, g.Status]);
  same(await ids('Active'), [[live.id, 'Active']]);
  same(await ids('Init'), [[quiet.id, 'Init']]);
  same(await ids('Offline'), []);
  same(await ids('Ordered'), []);
  await a.fails('DescribeSmartAccessGateways', { RegionId: region, Status: 'Sleeping' }, 'InvalidParameter',
    { detail: /"Status"/ });
  // The silent device speaks up: the gateway moves to Active.
  assert.equal((await quiet.devices[0].sync()).status, 200);
  assert.equal((await ids('Active')).length, 2);
});

test('DescribeSmartAccessGateways SmartAGIds.N selects a set of gateways', async () => {
  const region = { RegionId: 'ap-southeast-3' };
  const ids = [];
  for (let i = 0; i < 4; i++)
    ids.push((await a.call('CreateSmartAccessGateway', { ...region, HardWareSpec: 'sag-1000', HaType: 'no_backup' })).SmartAGId);
  const r = await a.call('DescribeSmartAccessGateways', { ...region, 'SmartAGIds.1': ids[3], 'SmartAGIds.2': ids[1],
    'SmartAGIds.3': 'sag-notmine000000000' });
  assert.equal(r.TotalCount, 2);
  same(r.SmartAccessGateways.SmartAccessGateway.map((g) => g.SmartAGId), [ids[1], ids[3]]);
  const many = {};
  for (let i = 1; i <= 51; i++) many[`SmartAGIds.${i}`] = ids[0];
  await a.fails('DescribeSmartAccessGateways', { ...region, ...many }, 'InvalidParameter', { detail: /"SmartAGIds"/ });
  // Another account's ids select nothing.
  const b = api(srv, createKey(srv.dbPath, `ids${process.pid}`));
  assert.equal((await b.call('DescribeSmartAccessGateways', { ...region, 'SmartAGIds.1': ids[0] })).TotalCount, 0);
});

// A gateway whose devices stop reporting turns Offline after
// `--device-offline-after` seconds (90 by default: too slow for the suite, so a
// serve of its own runs with the minimum, 3 s), in Describe, DescribeAttribute
// and the Status filter, and back to Active on the next report; a device that
// keeps polling as told (PollIntervalSeconds) never looks Offline.
test('serve --device-offline-after: Status turns Offline when reports stop, Active when they resume', async () => {
  const quick = await startServer({ args: ['--device-offline-after', '3'] });
  try {
    const q = api(quick);
    const region = 'cn-shanghai';
    const g = await gateway(quick, q, { devices: [{ version: '1.7.0' }], region });
    const status = async (Status) => (await q.call('DescribeSmartAccessGateways', { RegionId: region, Status }))
      .SmartAccessGateways.SmartAccessGateway.map((x) => [x.SmartAGId, x.Status]);
    same(await status('Active'), [[g.id, 'Active']]);
    // Polling as asked keeps it Active past the window.
    const first = await g.devices[0].sync();
    assert.equal(first.json.PollIntervalSeconds, 1);
    for (let i = 0; i < 4; i++) {
      await new Promise((r) => setTimeout(r, 1000));
      assert.equal((await g.devices[0].sync()).status, 200);
      same(await status('Active'), [[g.id, 'Active']]);
    }
    await new Promise((r) => setTimeout(r, 3600));
    same(await status('Offline'), [[g.id, 'Offline']]);
    same(await status('Active'), []);
    same(await status(undefined), [[g.id, 'Offline']]);
    assert.equal((await q.call('DescribeSmartAccessGatewayAttribute', { SmartAGId: g.id })).Status, 'Offline');
    assert.equal((await g.devices[0].sync()).status, 200);
    same(await status('Active'), [[g.id, 'Active']]);
    assert.equal((await q.call('DescribeSmartAccessGatewayAttribute', { SmartAGId: g.id })).Status, 'Active');
  } finally {
    await stopClean(quick);
  }
  // Bad values are refused at start.
  for (const bad of ['0', '2', '86401', 'x'])
    await assert.rejects(startServer({ args: ['--device-offline-after', bad] }), /device-offline-after/);
});
