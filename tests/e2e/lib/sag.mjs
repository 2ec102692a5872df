// Fixtures for the flow-log, gateway and device tests: calls through pop-core
// and the tea-rpc/Terraform wire shape, error assertions with HTTP status,
// Code and exact Message, and gateways whose devices report over the device
// channel (lib/device.mjs).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { BIN } from './server.mjs';
import { popCore, teaRpc } from './clients.mjs';
import { device } from './device.mjs';

export const REGION = 'cn-shanghai';
export const R = { RegionId: REGION };

// The catalogue (spec §3.1): code → [HTTP status, exact message].
export const ERRORS = {
  'DependencyViolation.FlowLog': [400, 'This FlowLog instance is bound to an SAG instance.'],
  'IncorrectStatus.FlowLog': [400, 'The current FlowLog instance status does not support this operation.'],
  'InvalidFlowLogId.NotFound': [400, 'The specified FlowLogId does not exist.'],
  'MissingParam.FlowLogId': [400, 'Specify the FlowLogId parameter.'],
  'OperationFailed.AssociateFlowLog': [400, 'The operation failed. The specified SAG instance has already been associated with another FlowLog instance.'],
  'OperationUnsupported.AssociateFlowLog': [400, 'You cannot bind the SAG device of the current version or model to a FlowLog instance.'],
  'QuotaExceeded.Flowlog': [400, 'The maximum number of FlowLog instances is exceeded.'],
  'MissingParam.LogstoreName': [400, 'Specify the LogstoreName parameter.'],
  'MissingParam.NetflowServerIp': [400, 'Specify the NetflowServerIp parameter.'],
  'MissingParam.NetflowServerPort': [400, 'Specify the NetflowServerPort parameter.'],
  'MissingParam.NetflowVersion': [400, 'Specify the NetflowVersion parameter.'],
  'MissingParam.ProjectName': [400, 'Specify the ProjectName parameter.'],
  'MissingParam.SlsRegionId': [400, 'Specify the SlsRegionId parameter.'],
  'IllegalParam.ActiveAging': [400, 'The specified ActiveAging is invalid.'],
  'IllegalParam.InactiveAging': [400, 'The specified InactiveAging is invalid.'],
  'IllegalParam.NetflowServerIp': [400, 'The specified NetflowServerIp is invalid.'],
  'IllegalParam.NetflowServerPort': [400, 'The specified NetflowServerPort is invalid.'],
  'IllegalParam.NetflowVersion': [400, 'The specified NetflowVersion is invalid.'],
  'IllegalParam.OutputType': [400, 'The specified OutputType is invalid.'],
  'IllegalParam.RegionId': [400, 'The specified RegionId is invalid.'],
  'IllegalParam.SlsRegionId': [400, 'The specified SlsRegionId is invalid.'],
  'IllegalParam.Status': [400, 'The specified Status parameter is invalid.'],
  'InvalidSmartAGId.NotFound': [400, 'The specified SmartAGId does not exist.'],
  FeatureNotSupport: [403, 'The current edition of the smart access gateway does not support this feature.'],
  FeatureNotSupportForActiveSmartAG: [403, 'The current edition of the active smart access gateway does not support this feature.'],
  FeatureNotSupportForStandBySmartAG: [403, 'The current edition of the standby smart access gateway does not support this feature.'],
};

// An API client bound to one server and key: pop-core for calls, tea-rpc for
// the Terraform wire shape.
// Parameters with undefined values are left out (so { RegionId: undefined }
// sends no RegionId at all).
function clean(p) {
  return Object.fromEntries(Object.entries(p).filter(([, v]) => v !== undefined));
}

export function api(srv, key = {}) {
  const pc = popCore(srv, key);
  return {
    call: (action, params = {}) => pc.call(action, clean({ ...R, ...params }), { method: 'POST' }),
    get: (action, params = {}) => pc.call(action, clean({ ...R, ...params }), { method: 'GET' }),
    tf: (action, params = {}) => teaRpc(srv, action, clean({ ...R, ...params }), key.secret ? { secret: key.secret, common: { akid: key.akid } } : {}),
    // The error through both clients: pop-core (Code, Message) and the
    // Terraform shape (HTTP status, Code, Message).
    async fails(action, params, code, { message, detail } = {}) {
      const [status, msg] = ERRORS[code] || [400, message];
      const want = message || msg;
      await assert.rejects(pc.call(action, clean({ ...R, ...params }), { method: 'POST' }), (e) => {
        assert.equal(e.code, code, `${action}: ${e.message}`);
        if (want) assert.equal(e.data.Message, want);
        if (detail) assert.match(e.data.Message, detail);
        return true;
      });
      const r = await teaRpc(srv, action, clean({ ...R, ...params }), key.secret ? { secret: key.secret, common: { akid: key.akid } } : {});
      assert.equal(r.status, status, `${action} ${code}: ${r.text}`);
      assert.equal(r.json.Code, code);
      if (want) assert.equal(r.json.Message, want);
    },
  };
}

// `sagflow keys create` for another account; returns { akid, secret, accountId }.
export function createKey(dbPath, account) {
  const k = spawnSync(BIN, ['keys', 'create', '--db', dbPath, '--account', account], { encoding: 'utf8' });
  assert.equal(k.status, 0, k.stderr);
  const j = JSON.parse(k.stdout.trim());
  return { akid: j.AccessKeyId, secret: j.AccessKeySecret, accountId: j.AccountId };
}

let serial = 0;
export function nextSerial() {
  serial += 1;
  return `SN${process.pid}x${serial}`;
}

// A gateway with devices that have reported: devices = [{model, version, ha}] or
// [{silent: true}] for one that never reports. Returns { id, devices: [device()] }.
export async function gateway(srv, a, { spec = 'sag-1000', haType, devices = [{}], region = REGION } = {}) {
  const RG = { RegionId: region };
  const ha = haType || (devices.length > 1 ? 'warm_backup' : 'no_backup');
  const g = await a.call('CreateSmartAccessGateway', { ...RG, HardWareSpec: spec, HaType: ha });
  const out = [];
  for (const d of devices) {
    const sn = nextSerial();
    await a.call('BindSerialNumber', { ...RG, SmartAGId: g.SmartAGId, SerialNumber: sn });
    const attr = await a.call('DescribeSmartAccessGatewayAttribute', { ...RG, SmartAGId: g.SmartAGId });
    const secret = attr.Devices.Device.find((x) => x.SerialNumber === sn).SecretKey;
    const dev = device(srv, { serial: sn, secret, model: d.model || spec, version: d.version || '1.7.0', ha: d.ha });
    if (!d.silent) {
      const r = await dev.sync();
      assert.equal(r.status, 200, r.text);
    }
    out.push(dev);
  }
  return { id: g.SmartAGId, devices: out };
}

export async function netflowLog(a, extra = {}) {
  const r = await a.call('CreateFlowLog', { OutputType: 'netflow', NetflowServerIp: '192.168.0.2', ...extra });
  assert.match(r.FlowLogId, /^fl-[a-z0-9]{18}$/);
  return r.FlowLogId;
}

export async function describeOne(a, id) {
  const r = await a.call('DescribeFlowLogs', { FlowLogId: id });
  assert.equal(r.FlowLogs.FlowLogSetType.length, 1);
  return r.FlowLogs.FlowLogSetType[0];
}

// deepEqual on plain copies: pop-core returns objects with a null prototype.
export function same(actual, expected, msg) {
  assert.deepEqual(JSON.parse(JSON.stringify(actual)), expected, msg);
}
