// bench/fleet helper: provisions a fleet through the real API (pop-core), and
// makes the changes the fleet must follow. Used by bench/fleet/run.sh.
//
//   node fleet.mjs provision URL AKID SECRET N DIR   → DIR/devices.txt ("serial secret"), DIR/meta.json
//   node fleet.mjs associate URL AKID SECRET DIR     → binds every gateway to the flow log
//   node fleet.mjs modify URL AKID SECRET DIR PORT   → prints the realtime (ms) just before the call
import { createRequire } from 'node:module';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const require = createRequire(new URL('../../tests/e2e/package.json', import.meta.url));
const RPCClient = require('@alicloud/pop-core');
const INFLIGHT = 64;
const R = { RegionId: 'cn-shanghai' };

const [cmd, url, akid, secret, ...rest] = process.argv.slice(2);
const c = new RPCClient({ accessKeyId: akid, accessKeySecret: secret, endpoint: url, apiVersion: '2018-03-13' });
const call = (a, p) => c.request(a, { ...R, ...p }, { method: 'POST', timeout: 60000 });

async function pool(n, fn) {
  let next = 0;
  await Promise.all(Array.from({ length: INFLIGHT }, async () => {
    while (next < n) await fn(next++);
  }));
}

if (cmd === 'provision') {
  const [n, dir] = [Number(rest[0]), rest[1]];
  const fl = (await call('CreateFlowLog', { OutputType: 'netflow', NetflowServerIp: '127.0.0.1',
    NetflowServerPort: 2055, NetflowVersion: 'V9' })).FlowLogId;
  const devs = new Array(n), sags = new Array(n);
  await pool(n, async (i) => {
    const g = await call('CreateSmartAccessGateway', { HardWareSpec: 'sag-1000', HaType: 'no_backup' });
    const sn = `FLEET${String(i).padStart(6, '0')}`;
    await call('BindSerialNumber', { SmartAGId: g.SmartAGId, SerialNumber: sn });
    const attr = await call('DescribeSmartAccessGatewayAttribute', { SmartAGId: g.SmartAGId });
    devs[i] = `${sn} ${attr.Devices.Device[0].SecretKey}`;
    sags[i] = g.SmartAGId;
  });
  writeFileSync(join(dir, 'devices.txt'), devs.join('\n') + '\n');
  writeFileSync(join(dir, 'meta.json'), JSON.stringify({ flowLogId: fl, sags }));
} else if (cmd === 'associate') {
  const meta = JSON.parse(readFileSync(join(rest[0], 'meta.json'), 'utf8'));
  await pool(meta.sags.length, (i) => call('AssociateFlowLog', { FlowLogId: meta.flowLogId, SmartAGId: meta.sags[i] }));
} else if (cmd === 'modify') {
  const meta = JSON.parse(readFileSync(join(rest[0], 'meta.json'), 'utf8'));
  await call('DescribeRegions', {}); // warm the connection and the key cache
  const t0 = Date.now();
  await call('ModifyFlowLogAttribute', { FlowLogId: meta.flowLogId, NetflowServerPort: Number(rest[1]) });
  console.log(JSON.stringify({ modify_rt_ms: t0, answered_ms: Date.now() - t0 }));
} else {
  console.error('usage: fleet.mjs provision|associate|modify URL AKID SECRET ...');
  process.exit(2);
}
