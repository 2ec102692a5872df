// The ten flow-log actions end to end (spec §3, §7, §10): the real binary, the
// real clients (pop-core, openapi-client V3, the tea-rpc/Terraform wire shape),
// devices speaking the device channel. Every error code of the catalogue is
// produced by the call that produces it.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, stopClean } from './lib/server.mjs';
import { openApi, teaRpc } from './lib/clients.mjs';
import { api, createKey, describeOne, gateway, netflowLog, same } from './lib/sag.mjs';

let srv;
let a;
before(async () => {
  // Concurrency tests here send bursts of hundreds of calls through one key,
  // past its default budget (fairness.test.mjs tests the budget itself).
  srv = await startServer({ args: ['--rate-limit', 'key=100000'] });
  a = api(srv);
});
// The server must exit 0: under ASan a leak or memory error fails the run.
after(async () => {
  await stopClean(srv);
});

const FIELDS = ['FlowLogId', 'Name', 'Description', 'Status', 'OutputType', 'SlsRegionId', 'ProjectName',
  'LogstoreName', 'NetflowServerIp', 'NetflowServerPort', 'NetflowVersion', 'ActiveAging', 'InactiveAging',
  'TotalSagNum', 'ResourceGroupId'];

test('CreateFlowLog: defaults, every field on Describe, numbers as numbers', async () => {
  const id = await netflowLog(a, { Name: 'tf-testAccNetflow', Description: 'd1' });
  const fl = await describeOne(a, id);
  same(Object.keys(fl), FIELDS);
  assert.equal(fl.Status, 'Active');
  assert.equal(fl.OutputType, 'netflow');
  assert.equal(fl.Name, 'tf-testAccNetflow');
  assert.equal(fl.NetflowServerPort, 9995);
  assert.equal(fl.NetflowVersion, 'V9');
  assert.equal(fl.ActiveAging, 300);
  assert.equal(fl.InactiveAging, 15);
  assert.equal(fl.TotalSagNum, 0);
  assert.match(fl.ResourceGroupId, /^rg-acfm[a-z0-9]+$/);

  const sls = await a.call('CreateFlowLog', { OutputType: 'sls', SlsRegionId: 'cn-shanghai', ProjectName: 'proj-1',
    LogstoreName: 'store_1' });
  const s = await describeOne(a, sls.FlowLogId);
  assert.equal(s.OutputType, 'sls');
  assert.equal(s.ProjectName, 'proj-1');
  assert.equal(typeof s.NetflowServerPort, 'number');

  const all = await a.call('CreateFlowLog', { OutputType: 'all', SlsRegionId: 'cn-hangzhou', ProjectName: 'proj2',
    LogstoreName: 'store2', NetflowServerIp: '2001:db8::7', NetflowServerPort: 2055, NetflowVersion: 'V10',
    ActiveAging: 6000, InactiveAging: 600 });
  const x = await describeOne(a, all.FlowLogId);
  assert.equal(x.NetflowServerIp, '2001:db8::7');
  assert.equal(x.NetflowServerPort, 2055);
  assert.equal(x.NetflowVersion, 'V10');
  assert.equal(x.ActiveAging, 6000);
  assert.equal(x.InactiveAging, 600);
});

test('openapi-client V3 (its default) creates and describes a flow log', async () => {
  const c = openApi(srv);
  const r = await c.call('CreateFlowLog', { RegionId: 'cn-shanghai', OutputType: 'netflow', NetflowServerIp: '10.1.1.1' });
  assert.equal(r.statusCode, 200);
  const d = await c.call('DescribeFlowLogs', { RegionId: 'cn-shanghai', FlowLogId: r.body.FlowLogId });
  assert.equal(d.body.FlowLogs.FlowLogSetType[0].NetflowServerIp, '10.1.1.1');
});

test('Terraform lifecycle over the tea-rpc wire shape', async () => {
  const c = await a.tf('CreateFlowLog', { OutputType: 'netflow', Name: 'tf-testAccSagFlowLog', NetflowServerIp: '192.168.0.2',
    NetflowServerPort: 9995, NetflowVersion: 'V9' });
  assert.equal(c.status, 200, c.text);
  assert.equal(c.json.Code, undefined);
  const id = c.json.FlowLogId;
  const read = async () => {
    const r = await a.tf('DescribeFlowLogs', { FlowLogId: id });
    assert.equal(r.status, 200, r.text);
    return r.json.FlowLogs.FlowLogSetType;
  };
  let [fl] = await read();
  assert.equal(fl.FlowLogId, id);
  assert.equal(fl.Status, 'Active');
  // Update: empty SLS strings always sent, changed attributes, ActiveAging when changed.
  const m = await a.tf('ModifyFlowLogAttribute', { FlowLogId: id, LogstoreName: '', ProjectName: '', SlsRegionId: '',
    Name: 'tf-testAccSagFlowLog_update', NetflowServerIp: '192.168.0.1', NetflowServerPort: 9999,
    NetflowVersion: 'V10', ActiveAging: 400, InactiveAging: 20, Description: 'with spaces + plus' });
  assert.equal(m.status, 200, m.text);
  [fl] = await read();
  assert.equal(fl.Name, 'tf-testAccSagFlowLog_update');
  assert.equal(fl.Description, 'with spaces + plus');
  assert.equal(fl.NetflowServerIp, '192.168.0.1');
  assert.equal(fl.NetflowServerPort, 9999);
  assert.equal(fl.NetflowVersion, 'V10');
  assert.equal(fl.ActiveAging, 400);
  assert.equal(fl.InactiveAging, 20);
  assert.equal(fl.OutputType, 'netflow');
  // Status changes are immediate: the next read shows the target.
  assert.equal((await a.tf('DeactiveFlowLog', { FlowLogId: id })).status, 200);
  assert.equal((await read())[0].Status, 'Inactive');
  assert.equal((await a.tf('DeactiveFlowLog', { FlowLogId: id })).status, 200, 'idempotent');
  assert.equal((await a.tf('ActiveFlowLog', { FlowLogId: id })).status, 200);
  assert.equal((await read())[0].Status, 'Active');
  assert.equal((await a.tf('ActiveFlowLog', { FlowLogId: id })).status, 200, 'idempotent');
  // Delete an Active, unassociated log, then the read finds nothing (wrapped, empty).
  assert.equal((await a.tf('DeleteFlowLog', { FlowLogId: id })).status, 200);
  const gone = await a.tf('DescribeFlowLogs', { FlowLogId: id });
  assert.equal(gone.status, 200);
  same(gone.json.FlowLogs, { FlowLogSetType: [] });
  assert.equal(gone.json.TotalCount, 0);
});

test('DescribeFlowLogs filters: Description, Status, OutputType, FlowLogName; wrong ones give zero', async () => {
  const id = await netflowLog(a, { Name: 'filterme', Description: 'unique-desc-42' });
  let r = await a.call('DescribeFlowLogs', { Description: 'unique-desc-42', Status: 'Active' });
  same(r.FlowLogs.FlowLogSetType.map((f) => f.FlowLogId), [id]);
  r = await a.call('DescribeFlowLogs', { Description: 'unique-desc-42', Status: 'Inactive' });
  same(r.FlowLogs.FlowLogSetType, []);
  r = await a.call('DescribeFlowLogs', { FlowLogName: 'filterme', OutputType: 'netflow' });
  same(r.FlowLogs.FlowLogSetType.map((f) => f.FlowLogId), [id]);
  r = await a.call('DescribeFlowLogs', { FlowLogName: 'filterme', OutputType: 'sls' });
  assert.equal(r.TotalCount, 0);
  r = await a.call('DescribeFlowLogs', { Description: 'no-such-description' });
  same(r.FlowLogs, { FlowLogSetType: [] });
  r = await a.get('DescribeFlowLogs', { FlowLogId: 'fl-doesnotexist000000' });
  same(r.FlowLogs, { FlowLogSetType: [] });
});

test('pagination terminates and visits every flow log once', async () => {
  const region = { RegionId: 'cn-hongkong' };
  const made = [];
  for (let i = 0; i < 23; i++) made.push(await netflowLog(a, { ...region, Name: `page${i}` }));
  for (const size of [10, 50]) {
    const seen = [];
    for (let page = 1; page < 100; page++) {
      const r = await a.call('DescribeFlowLogs', { ...region, PageNumber: page, PageSize: size });
      assert.equal(r.TotalCount, 23);
      assert.equal(r.PageNumber, page);
      assert.equal(r.PageSize, size);
      seen.push(...r.FlowLogs.FlowLogSetType.map((f) => f.FlowLogId));
      if (r.FlowLogs.FlowLogSetType.length < size) break;
    }
    same(seen, made);
  }
  const beyond = await a.call('DescribeFlowLogs', { ...region, PageNumber: 9, PageSize: 10 });
  same(beyond.FlowLogs.FlowLogSetType, []);
  await a.fails('DescribeFlowLogs', { ...region, PageSize: 0 }, 'InvalidParameter',
    { message: 'The specified parameter "PageSize" is not valid.' });
  await a.fails('DescribeFlowLogs', { ...region, PageNumber: 'x' }, 'InvalidParameter',
    { message: 'The specified parameter "PageNumber" is not valid.' });
});

test('CreateFlowLog validation errors, each through the call that produces it', async () => {
  const nf = { OutputType: 'netflow', NetflowServerIp: '10.0.0.1' };
  const sls = { OutputType: 'sls', SlsRegionId: 'cn-shanghai', ProjectName: 'proj', LogstoreName: 'store' };
  await a.fails('CreateFlowLog', { NetflowServerIp: '10.0.0.1' }, 'IllegalParam.OutputType');
  await a.fails('CreateFlowLog', { ...nf, OutputType: 'kafka' }, 'IllegalParam.OutputType');
  await a.fails('CreateFlowLog', { ...nf, ActiveAging: 59 }, 'IllegalParam.ActiveAging');
  await a.fails('CreateFlowLog', { ...nf, ActiveAging: 6001 }, 'IllegalParam.ActiveAging');
  await a.fails('CreateFlowLog', { ...nf, InactiveAging: 9 }, 'IllegalParam.InactiveAging');
  await a.fails('CreateFlowLog', { ...nf, InactiveAging: 601 }, 'IllegalParam.InactiveAging');
  await a.fails('CreateFlowLog', { ...nf, NetflowVersion: 'V8' }, 'IllegalParam.NetflowVersion');
  await a.fails('CreateFlowLog', { ...nf, NetflowServerPort: 65536 }, 'IllegalParam.NetflowServerPort');
  await a.fails('CreateFlowLog', { ...nf, NetflowServerPort: 'ninety' }, 'IllegalParam.NetflowServerPort');
  await a.fails('CreateFlowLog', { ...nf, NetflowServerIp: 'collector.example.com' }, 'IllegalParam.NetflowServerIp');
  await a.fails('CreateFlowLog', { ...nf, NetflowServerIp: '300.1.1.1' }, 'IllegalParam.NetflowServerIp');
  await a.fails('CreateFlowLog', { ...sls, SlsRegionId: 'Shanghai!' }, 'IllegalParam.SlsRegionId');
  // SlsRegionId must be a region of DescribeRegions; names follow Log Service naming.
  await a.fails('CreateFlowLog', { ...sls, SlsRegionId: 'cn-beijing' }, 'IllegalParam.SlsRegionId');
  for (const [param, value] of [['ProjectName', 'Proj'], ['ProjectName', 'pr'], ['ProjectName', '-proj'],
    ['ProjectName', 'proj-'], ['ProjectName', 'my_proj'], ['ProjectName', 'p'.repeat(64)],
    ['LogstoreName', 'Store'], ['LogstoreName', 'st'], ['LogstoreName', 'store-'], ['LogstoreName', 's.tore'],
    ['LogstoreName', 's'.repeat(64)]]) {
    await a.fails('CreateFlowLog', { ...sls, [param]: value }, 'InvalidParameter',
      { message: `The specified parameter "${param}" is not valid.` });
  }
  const okNames = await a.call('CreateFlowLog', { ...sls, ProjectName: 'p'.repeat(63), LogstoreName: '_s-1_' });
  await a.call('DeleteFlowLog', { FlowLogId: okNames.FlowLogId });
  await a.fails('CreateFlowLog', { ...nf, RegionId: 'mars-north-1' }, 'IllegalParam.RegionId');
  // MissingParam.* per OutputType.
  await a.fails('CreateFlowLog', { OutputType: 'netflow' }, 'MissingParam.NetflowServerIp');
  await a.fails('CreateFlowLog', { ...nf, NetflowServerPort: '' }, 'MissingParam.NetflowServerPort');
  await a.fails('CreateFlowLog', { ...nf, NetflowVersion: '' }, 'MissingParam.NetflowVersion');
  await a.fails('CreateFlowLog', { ...sls, SlsRegionId: undefined }, 'MissingParam.SlsRegionId');
  await a.fails('CreateFlowLog', { ...sls, ProjectName: '' }, 'MissingParam.ProjectName');
  await a.fails('CreateFlowLog', { ...sls, LogstoreName: undefined }, 'MissingParam.LogstoreName');
  await a.fails('CreateFlowLog', { ...sls, OutputType: 'all' }, 'MissingParam.NetflowServerIp');
  await a.fails('CreateFlowLog', { ...nf, Name: '9starts-with-digit' }, 'InvalidParameter',
    { message: 'The specified parameter "Name" is not valid.' });
  await a.fails('CreateFlowLog', { OutputType: 'netflow', NetflowServerIp: '10.0.0.1', RegionId: undefined },
    'MissingParameter', { detail: /RegionId/ });
});

test('ModifyFlowLogAttribute: partial update, errors, other checks', async () => {
  const id = await netflowLog(a, { Name: 'keepme' });
  await a.call('ModifyFlowLogAttribute', { FlowLogId: id, InactiveAging: 30 });
  const fl = await describeOne(a, id);
  assert.equal(fl.Name, 'keepme');
  assert.equal(fl.InactiveAging, 30);
  assert.equal(fl.NetflowServerIp, '192.168.0.2');
  await a.fails('ModifyFlowLogAttribute', {}, 'MissingParam.FlowLogId');
  await a.fails('ModifyFlowLogAttribute', { FlowLogId: 'fl-nosuchlog000000000' }, 'InvalidFlowLogId.NotFound');
  await a.fails('ModifyFlowLogAttribute', { FlowLogId: id, ActiveAging: 10 }, 'IllegalParam.ActiveAging');
  await a.fails('ModifyFlowLogAttribute', { FlowLogId: id, OutputType: 'sls' }, 'MissingParam.SlsRegionId');
  await a.fails('ModifyFlowLogAttribute', { FlowLogId: id, NetflowServerIp: '' }, 'MissingParam.NetflowServerIp');
  await a.fails('ModifyFlowLogAttribute', { FlowLogId: id, OutputType: 'all', SlsRegionId: 'us-west-1',
    ProjectName: 'proj', LogstoreName: 'store' }, 'IllegalParam.SlsRegionId');
  await a.fails('ModifyFlowLogAttribute', { FlowLogId: id, OutputType: 'all', SlsRegionId: 'cn-shanghai',
    ProjectName: 'proj', LogstoreName: 'Store' }, 'InvalidParameter',
  { message: 'The specified parameter "LogstoreName" is not valid.' });
  await a.call('ModifyFlowLogAttribute', { FlowLogId: id, OutputType: 'all', SlsRegionId: 'cn-shanghai',
    ProjectName: 'proj', LogstoreName: 'store' });
  assert.equal((await describeOne(a, id)).OutputType, 'all');
  // A failed Modify changed nothing.
  assert.equal((await describeOne(a, id)).ActiveAging, 300);
});

test('Active/Deactive/Delete errors', async () => {
  await a.fails('ActiveFlowLog', {}, 'MissingParam.FlowLogId');
  await a.fails('DeactiveFlowLog', { FlowLogId: 'fl-nosuchlog000000000' }, 'InvalidFlowLogId.NotFound');
  await a.fails('DeleteFlowLog', { FlowLogId: '' }, 'MissingParam.FlowLogId');
  await a.fails('DeleteFlowLog', { FlowLogId: 'fl-nosuchlog000000000' }, 'InvalidFlowLogId.NotFound');
  await a.fails('DescribeFlowLogs', { Status: 'Started' }, 'IllegalParam.Status');
  await a.fails('DescribeFlowLogs', { OutputType: 'kafka' }, 'IllegalParam.OutputType');
  await a.fails('DescribeFlowLogs', { RegionId: 'cn-nowhere' }, 'IllegalParam.RegionId');
});

test('AssociateFlowLog: every rule in the order of spec §3.7', async () => {
  const fl = await netflowLog(a);
  const other = await netflowLog(a);
  const good = await gateway(srv, a, { devices: [{ version: '1.7.0' }] });
  await a.fails('AssociateFlowLog', { SmartAGId: good.id }, 'MissingParam.FlowLogId');
  await a.fails('AssociateFlowLog', { FlowLogId: fl }, 'MissingParameter',
    { message: 'The input parameter "SmartAGId" that is mandatory for processing this request is not supplied.' });
  await a.fails('AssociateFlowLog', { FlowLogId: fl, SmartAGId: good.id, RegionId: 'xx-yy-1' }, 'IllegalParam.RegionId');
  await a.fails('AssociateFlowLog', { FlowLogId: 'fl-nosuchlog000000000', SmartAGId: 'sag-nosuch' }, 'InvalidFlowLogId.NotFound');
  await a.fails('AssociateFlowLog', { FlowLogId: fl, SmartAGId: 'sag-nosuchgateway0000' }, 'InvalidSmartAGId.NotFound');
  // Model: only SAG-1000 (not sag-100wm, not vCPE), even with new firmware.
  const wm = await gateway(srv, a, { spec: 'sag-100wm', devices: [{ version: '2.0.0' }] });
  await a.fails('AssociateFlowLog', { FlowLogId: fl, SmartAGId: wm.id }, 'OperationUnsupported.AssociateFlowLog');
  const vcpe = await gateway(srv, a, { spec: 'sag-vcpe', devices: [] });
  await a.fails('AssociateFlowLog', { FlowLogId: fl, SmartAGId: vcpe.id }, 'OperationUnsupported.AssociateFlowLog');
  // A SAG-1000 instance whose box reports another model.
  const liar = await gateway(srv, a, { devices: [{ model: 'sag-100wm', version: '2.0.0' }] });
  await a.fails('AssociateFlowLog', { FlowLogId: fl, SmartAGId: liar.id }, 'OperationUnsupported.AssociateFlowLog');
  // Firmware: too old, never reported, no device at all.
  const old = await gateway(srv, a, { devices: [{ version: '1.6.9' }] });
  await a.fails('AssociateFlowLog', { FlowLogId: fl, SmartAGId: old.id }, 'FeatureNotSupport');
  const silent = await gateway(srv, a, { devices: [{ silent: true }] });
  await a.fails('AssociateFlowLog', { FlowLogId: fl, SmartAGId: silent.id }, 'FeatureNotSupport');
  const empty = await gateway(srv, a, { devices: [] });
  await a.fails('AssociateFlowLog', { FlowLogId: fl, SmartAGId: empty.id }, 'FeatureNotSupport');
  // The old device upgrades and says so: now it may be bound.
  assert.equal((await old.devices[0].sync({ version: '1.7.1' })).status, 200);
  await a.call('AssociateFlowLog', { FlowLogId: fl, SmartAGId: old.id });
  // HA pairs: the active device is the one reporting "active".
  const haActiveOld = await gateway(srv, a, { devices: [{ version: '1.6.0', ha: 'active' }, { version: '2.0.0', ha: 'standby' }] });
  await a.fails('AssociateFlowLog', { FlowLogId: fl, SmartAGId: haActiveOld.id }, 'FeatureNotSupportForActiveSmartAG');
  const haStandbyOld = await gateway(srv, a, { devices: [{ version: '2.0.0', ha: 'standby' }, { version: '1.5.0', ha: 'active' }] });
  await a.fails('AssociateFlowLog', { FlowLogId: fl, SmartAGId: haStandbyOld.id }, 'FeatureNotSupportForActiveSmartAG');
  const haStandby = await gateway(srv, a, { devices: [{ version: '2.0.0', ha: 'active' }, { version: '1.5.0', ha: 'standby' }] });
  await a.fails('AssociateFlowLog', { FlowLogId: fl, SmartAGId: haStandby.id }, 'FeatureNotSupportForStandBySmartAG');
  // A failover reported by the devices flips which one is checked as active.
  await haStandby.devices[0].sync({ ha: 'standby' });
  await haStandby.devices[1].sync({ ha: 'active' });
  await a.fails('AssociateFlowLog', { FlowLogId: fl, SmartAGId: haStandby.id }, 'FeatureNotSupportForActiveSmartAG');
  const ha = await gateway(srv, a, { devices: [{ version: '1.7.0', ha: 'active' }, { version: '1.8.0', ha: 'standby' }] });
  await a.call('AssociateFlowLog', { FlowLogId: fl, SmartAGId: ha.id });
  // Bound elsewhere → OperationFailed; same log again → idempotent success.
  await a.call('AssociateFlowLog', { FlowLogId: fl, SmartAGId: good.id });
  await a.call('AssociateFlowLog', { FlowLogId: fl, SmartAGId: good.id });
  await a.fails('AssociateFlowLog', { FlowLogId: other, SmartAGId: good.id }, 'OperationFailed.AssociateFlowLog');
  // An Inactive log accepts no new gateway (spec §10).
  await a.call('DeactiveFlowLog', { FlowLogId: other });
  const fresh = await gateway(srv, a, { devices: [{ version: '1.7.0' }] });
  await a.fails('AssociateFlowLog', { FlowLogId: other, SmartAGId: fresh.id }, 'IncorrectStatus.FlowLog');
  // TotalSagNum, DescribeFlowLogSags, the gateway's FlowLogIds.
  const d = await describeOne(a, fl);
  assert.equal(d.TotalSagNum, 3);
  const sags = await a.call('DescribeFlowLogSags', { FlowLogId: fl, PageSize: 2 });
  assert.equal(sags.TotalCount, 3);
  assert.equal(sags.Sags.Sag.length, 2);
  const p2 = await a.call('DescribeFlowLogSags', { FlowLogId: fl, PageSize: 2, PageNumber: 2 });
  assert.equal(p2.Sags.Sag.length, 1);
  same([...sags.Sags.Sag, ...p2.Sags.Sag].map((s) => s.SmartAGId).sort(), [old.id, ha.id, good.id].sort());
  const attr = await a.call('DescribeSmartAccessGatewayAttribute', { SmartAGId: good.id });
  same(attr.FlowLogIds, { FlowLogId: [fl] });
  // Delete refused while bound; Disassociate (idempotent) then Delete works.
  await a.fails('DeleteFlowLog', { FlowLogId: fl }, 'DependencyViolation.FlowLog');
  for (const g of [old, ha, good]) await a.call('DisassociateFlowLog', { FlowLogId: fl, SmartAGId: g.id });
  await a.call('DisassociateFlowLog', { FlowLogId: fl, SmartAGId: good.id });
  await a.call('DisassociateFlowLog', { FlowLogId: other, SmartAGId: good.id });
  assert.equal((await describeOne(a, fl)).TotalSagNum, 0);
  const un = await a.call('DescribeUnbindFlowLogSags', {});
  assert.equal(un.Count, un.Sags.Sag.length);
  assert.ok(un.Sags.Sag.some((s) => s.SmartAGId === good.id));
  await a.call('DeleteFlowLog', { FlowLogId: fl });
});

test('Disassociate and the FlowLogSags listings check their parameters', async () => {
  const fl = await netflowLog(a);
  await a.fails('DisassociateFlowLog', { SmartAGId: 'sag-x' }, 'MissingParam.FlowLogId');
  await a.fails('DisassociateFlowLog', { FlowLogId: fl }, 'MissingParameter', { detail: /SmartAGId/ });
  await a.fails('DisassociateFlowLog', { FlowLogId: 'fl-nosuchlog000000000', SmartAGId: 'sag-x' }, 'InvalidFlowLogId.NotFound');
  await a.fails('DisassociateFlowLog', { FlowLogId: fl, SmartAGId: 'sag-nosuchgateway0000' }, 'InvalidSmartAGId.NotFound');
  await a.fails('DescribeFlowLogSags', {}, 'MissingParam.FlowLogId');
  await a.fails('DescribeFlowLogSags', { FlowLogId: 'fl-nosuchlog000000000' }, 'InvalidFlowLogId.NotFound');
  await a.fails('DescribeFlowLogSags', { FlowLogId: fl, PageSize: 51 }, 'InvalidParameter', { detail: /PageSize/ });
  const empty = await a.call('DescribeFlowLogSags', { FlowLogId: fl });
  same(empty.Sags, { Sag: [] });
  assert.equal(empty.TotalCount, 0);
  await a.fails('DescribeUnbindFlowLogSags', { RegionId: 'nowhere-1' }, 'IllegalParam.RegionId');
});

test('ActiveFlowLog re-checks bound gateways: a downgraded device blocks it (403)', async () => {
  const fl = await netflowLog(a);
  const g = await gateway(srv, a, { devices: [{ version: '1.7.0' }] });
  await a.call('AssociateFlowLog', { FlowLogId: fl, SmartAGId: g.id });
  await a.call('DeactiveFlowLog', { FlowLogId: fl });
  await g.devices[0].sync({ version: '1.6.0' });
  await a.fails('ActiveFlowLog', { FlowLogId: fl }, 'FeatureNotSupport');
  assert.equal((await describeOne(a, fl)).Status, 'Inactive');
  await g.devices[0].sync({ version: '1.7.2' });
  await a.call('ActiveFlowLog', { FlowLogId: fl });
  assert.equal((await describeOne(a, fl)).Status, 'Active');
});

test('50 concurrent AssociateFlowLog of different logs to one gateway: exactly one wins', async () => {
  const region = { RegionId: 'ap-southeast-1' };
  const logs = [];
  for (let i = 0; i < 50; i++) logs.push(await netflowLog(a, region));
  const g = await gateway(srv, a, { devices: [{ version: '2.0.0' }], region: region.RegionId });
  const results = await Promise.allSettled(logs.map((fl) =>
    a.call('AssociateFlowLog', { ...region, FlowLogId: fl, SmartAGId: g.id })));
  const ok = results.filter((r) => r.status === 'fulfilled');
  const failed = results.filter((r) => r.status === 'rejected');
  assert.equal(ok.length, 1);
  assert.equal(failed.length, 49);
  for (const f of failed) assert.equal(f.reason.code, 'OperationFailed.AssociateFlowLog');
  const all = await a.call('DescribeFlowLogs', { ...region, PageSize: 100 });
  const bound = all.FlowLogs.FlowLogSetType.filter((f) => f.TotalSagNum > 0);
  assert.equal(bound.length, 1);
  assert.equal(bound[0].TotalSagNum, 1);
  const attr = await a.call('DescribeSmartAccessGatewayAttribute', { ...region, SmartAGId: g.id });
  same(attr.FlowLogIds.FlowLogId, [bound[0].FlowLogId]);
});

test('QuotaExceeded.Flowlog per account and region (--flowlog-quota)', async () => {
  const s = await startServer({ args: ['--flowlog-quota', '3', '--rate-limit', 'key=100000'] });
  try {
    const q = api(s);
    for (let i = 0; i < 3; i++) await netflowLog(q);
    await q.fails('CreateFlowLog', { OutputType: 'netflow', NetflowServerIp: '10.0.0.1' }, 'QuotaExceeded.Flowlog');
    // Another region has its own quota; deleting frees a slot.
    await netflowLog(q, { RegionId: 'cn-hangzhou' });
    const list = await q.call('DescribeFlowLogs', {});
    await q.call('DeleteFlowLog', { FlowLogId: list.FlowLogs.FlowLogSetType[0].FlowLogId });
    await netflowLog(q);
    // Concurrent creates cannot overshoot: the count is inside the write.
    const burst = await Promise.allSettled([1, 2, 3, 4].map(() => netflowLog(q, { RegionId: 'eu-central-1' })));
    assert.equal(burst.filter((r) => r.status === 'fulfilled').length, 3);
  } finally {
    await stopClean(s);
  }
});

test('another account or region: resources behave as missing', async () => {
  const fl = await netflowLog(a, { Description: 'isolation' });
  const g = await gateway(srv, a, { devices: [{ version: '1.7.0' }] });
  const key = createKey(srv.dbPath, `other${process.pid}`);
  const b = api(srv, key);
  const r = await b.call('DescribeFlowLogs', { FlowLogId: fl });
  same(r.FlowLogs.FlowLogSetType, []);
  assert.equal((await b.call('DescribeFlowLogs', {})).TotalCount, 0);
  await b.fails('DeleteFlowLog', { FlowLogId: fl }, 'InvalidFlowLogId.NotFound');
  await b.fails('ModifyFlowLogAttribute', { FlowLogId: fl, Name: 'stolen' }, 'InvalidFlowLogId.NotFound');
  const mine = await netflowLog(b);
  await b.fails('AssociateFlowLog', { FlowLogId: mine, SmartAGId: g.id }, 'InvalidSmartAGId.NotFound');
  await b.fails('DescribeSmartAccessGatewayAttribute', { SmartAGId: g.id }, 'InvalidSmartAGId.NotFound');
  await a.fails('AssociateFlowLog', { FlowLogId: mine, SmartAGId: g.id }, 'InvalidFlowLogId.NotFound');
  // Another region of the same account.
  await a.fails('DeleteFlowLog', { FlowLogId: fl, RegionId: 'cn-hangzhou' }, 'InvalidFlowLogId.NotFound');
  const hz = await a.call('DescribeFlowLogs', { RegionId: 'cn-hangzhou', Description: 'isolation' });
  assert.equal(hz.TotalCount, 0);
  assert.equal((await describeOne(a, fl)).Name, '');
});

test('a restart keeps every flow log, gateway, device and binding', async () => {
  const s1 = await startServer({ keepDir: true });
  const q1 = api(s1);
  const fl = await netflowLog(q1, { Name: 'survivor', NetflowVersion: 'V5' });
  const g = await gateway(s1, q1, { devices: [{ version: '1.9.0', ha: 'active' }, { version: '1.8.0', ha: 'standby' }] });
  await q1.call('AssociateFlowLog', { FlowLogId: fl, SmartAGId: g.id });
  await q1.call('DeactiveFlowLog', { FlowLogId: fl });
  const before = await q1.call('DescribeSmartAccessGatewayAttribute', { SmartAGId: g.id });
  assert.equal((await s1.stop()).code, 0);
  const s2 = await startServer({ dbPath: s1.dbPath });
  try {
    const q2 = api(s2);
    const f = await describeOne(q2, fl);
    assert.equal(f.Name, 'survivor');
    assert.equal(f.NetflowVersion, 'V5');
    assert.equal(f.Status, 'Inactive');
    assert.equal(f.TotalSagNum, 1);
    const after = await q2.call('DescribeSmartAccessGatewayAttribute', { SmartAGId: g.id });
    same(after.Devices, JSON.parse(JSON.stringify(before.Devices)));
    same(after.FlowLogIds, { FlowLogId: [fl] });
    assert.equal(after.SoftwareVersion, '1.9.0');
    assert.equal(after.BackupSoftwareVersion, '1.8.0');
    // The devices still authenticate with their stored SecretKeys.
    const d0 = g.devices[0];
    d0.state.configVersion = '';
    const { json } = await (await import('./lib/device.mjs')).device(s2, d0.state).sync();
    assert.equal(json.SmartAGId, g.id);
  } finally {
    assert.equal((await s2.stop()).code, 0);
    (await import('node:fs')).rmSync(s1.dir, { recursive: true, force: true });
  }
});

test('Format=XML: flow-log lists repeat FlowLogSetType, names are escaped, errors are <Error>', async () => {
  const xml = { common: { format: 'XML' } };
  const c = await a.tf('CreateFlowLog', { OutputType: 'netflow', NetflowServerIp: '10.0.0.1', Name: 'x<y>&z',
    Description: 'xml-test' });
  assert.equal(c.status, 200);
  const { teaRpc } = await import('./lib/clients.mjs');
  const d = await teaRpc(srv, 'DescribeFlowLogs', { RegionId: 'cn-shanghai', Description: 'xml-test' }, xml);
  assert.equal(d.status, 200);
  assert.match(d.headers['content-type'], /^text\/xml/);
  assert.match(d.text, /<FlowLogs><FlowLogSetType><FlowLogId>fl-[a-z0-9]{18}<\/FlowLogId><Name>x&lt;y&gt;&amp;z<\/Name>/);
  assert.match(d.text, /<NetflowServerPort>9995<\/NetflowServerPort>/);
  const e = await teaRpc(srv, 'DeleteFlowLog', { RegionId: 'cn-shanghai', FlowLogId: 'fl-nosuchlog000000000' }, xml);
  assert.equal(e.status, 400);
  assert.match(e.text, /<Error>.*<Code>InvalidFlowLogId\.NotFound<\/Code><Message>The specified FlowLogId does not exist\.<\/Message>/);
});

// Reads are answered from a cache of rendered answers (src/rpc/cache.h): it
// must never show an answer older than an acknowledged write, never mix up
// accounts, formats or parameters, and give every answer its own RequestId.
test('cached reads: fresh after every write, per account, per format, own RequestId', async () => {
  const id = await netflowLog(a, { Name: 'cache-a', Description: 'cache' });
  const q = { Description: 'cache', PageSize: 50 };
  const r1 = await a.call('DescribeFlowLogs', q);
  const r2 = await a.call('DescribeFlowLogs', q);
  assert.notEqual(r1.RequestId, r2.RequestId);
  assert.match(r2.RequestId, /^[0-9A-F]{8}-[0-9A-F]{4}-4[0-9A-F]{3}-[89AB][0-9A-F]{3}-[0-9A-F]{12}$/);
  assert.equal(JSON.stringify(r1.FlowLogs), JSON.stringify(r2.FlowLogs));
  // Every kind of write is seen by the very next read.
  await a.call('ModifyFlowLogAttribute', { FlowLogId: id, Name: 'cache-b', ActiveAging: 120 });
  let fl = (await a.call('DescribeFlowLogs', q)).FlowLogs.FlowLogSetType[0];
  assert.equal(fl.Name, 'cache-b');
  assert.equal(fl.ActiveAging, 120);
  await a.call('DeactiveFlowLog', { FlowLogId: id });
  assert.equal((await a.call('DescribeFlowLogs', q)).FlowLogs.FlowLogSetType[0].Status, 'Inactive');
  await a.call('ActiveFlowLog', { FlowLogId: id });
  assert.equal((await a.call('DescribeFlowLogs', q)).FlowLogs.FlowLogSetType[0].Status, 'Active');
  const g = await gateway(srv, a);
  const sags = { FlowLogId: id };
  assert.equal((await a.call('DescribeFlowLogSags', sags)).TotalCount, 0);
  await a.call('AssociateFlowLog', { FlowLogId: id, SmartAGId: g.id });
  assert.equal((await a.call('DescribeFlowLogs', q)).FlowLogs.FlowLogSetType[0].TotalSagNum, 1);
  assert.equal((await a.call('DescribeFlowLogSags', sags)).Sags.Sag[0].SmartAGId, g.id);
  await a.call('DisassociateFlowLog', { FlowLogId: id, SmartAGId: g.id });
  assert.equal((await a.call('DescribeFlowLogs', q)).FlowLogs.FlowLogSetType[0].TotalSagNum, 0);
  const id2 = await netflowLog(a, { Description: 'cache' });
  assert.equal((await a.call('DescribeFlowLogs', q)).TotalCount, 2);
  await a.call('DeleteFlowLog', { FlowLogId: id2 });
  assert.equal((await a.call('DescribeFlowLogs', q)).TotalCount, 1);
  // Another account asking the very same question gets its own (empty) answer.
  const other = api(srv, createKey(srv.dbPath, 'cache-other'));
  assert.equal((await other.call('DescribeFlowLogs', q)).TotalCount, 0);
  assert.equal((await a.call('DescribeFlowLogs', q)).TotalCount, 1);
  // Same parameters in another format, and a different page, are other answers.
  const xq = { RegionId: 'cn-shanghai', ...q };
  const x1 = await teaRpc(srv, 'DescribeFlowLogs', xq, { common: { format: 'XML' } });
  const x2 = await teaRpc(srv, 'DescribeFlowLogs', xq, { common: { format: 'XML' } });
  for (const x of [x1, x2]) {
    assert.equal(x.status, 200, x.text);
    assert.equal(x.headers['content-type'], 'text/xml;charset=utf-8');
    assert.match(x.text, /<Name>cache-b<\/Name>/);
  }
  const rid = (x) => /<RequestId>([0-9A-F-]{36})<\/RequestId>/.exec(x.text)[1];
  assert.notEqual(rid(x1), rid(x2));
  assert.equal(x1.text.replace(rid(x1), ''), x2.text.replace(rid(x2), ''));
  const j = await teaRpc(srv, 'DescribeFlowLogs', xq, { common: { format: 'json' } });
  assert.equal(j.json.FlowLogs.FlowLogSetType[0].Name, 'cache-b', 'JSON after XML is JSON');
  const p2 = await a.call('DescribeFlowLogs', { ...q, PageNumber: 2 });
  assert.equal(p2.FlowLogs.FlowLogSetType.length, 0);
  assert.equal(p2.PageNumber, 2);
});

// The answer cache assumes one serve per database. `--no-answer-cache` lifts
// that: a serve started with it sees another process's writes at once, even
// for a question it has answered before.
test('serve --no-answer-cache: another process writing the same database is seen at once', async () => {
  const reader = await startServer({ args: ['--no-answer-cache'], dbPath: srv.dbPath });
  try {
    const r = api(reader);
    const q = { Description: 'two-serves', PageSize: 10 };
    assert.equal((await r.call('DescribeFlowLogs', q)).TotalCount, 0);
    assert.equal((await r.call('DescribeFlowLogs', q)).TotalCount, 0);
    const id = await netflowLog(a, { Name: 'two-a', Description: 'two-serves' });
    let got = await r.call('DescribeFlowLogs', q);
    assert.equal(got.TotalCount, 1);
    assert.equal(got.FlowLogs.FlowLogSetType[0].Name, 'two-a');
    await a.call('ModifyFlowLogAttribute', { FlowLogId: id, Name: 'two-b' });
    got = await r.call('DescribeFlowLogs', q);
    assert.equal(got.FlowLogs.FlowLogSetType[0].Name, 'two-b');
    await a.call('DeleteFlowLog', { FlowLogId: id });
    assert.equal((await r.call('DescribeFlowLogs', q)).TotalCount, 0);
  } finally {
    await stopClean(reader);
  }
});
