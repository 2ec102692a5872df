// Run as a child process by tls.test.mjs: `node lib/tls-client.mjs https://127.0.0.1:PORT`.
// It trusts the test's CA only through NODE_EXTRA_CA_CERTS (which Node reads
// once, at start: hence a child), as a user of the unmodified clients would,
// and drives everything over HTTPS: pop-core (V1), openapi-client (V3), and a
// gateway's device on the device channel. Prints one JSON line; on failure
// {error, code} and exit 1.
import { api, gateway, netflowLog } from './sag.mjs';
import { openApi } from './clients.mjs';

const url = new URL(process.argv[2]);
const srv = { url: url.origin, endpoint: url.host, port: Number(url.port) };

async function main() {
  const a = api(srv);
  const regions = await a.get('DescribeRegions');
  const fl = await netflowLog(a, { NetflowServerIp: '127.0.0.1', NetflowServerPort: 2055 });
  const v3 = await openApi(srv).call('DescribeFlowLogs', { RegionId: 'cn-shanghai', FlowLogId: fl });
  // gateway() binds a device and has it report over the signed device channel.
  const g = await gateway(srv, a);
  await a.call('AssociateFlowLog', { FlowLogId: fl, SmartAGId: g.id });
  const sync = await g.devices[0].sync();
  return {
    regions: regions.Regions.Region.length,
    v3: { status: v3.statusCode, ids: v3.body.FlowLogs.FlowLogSetType.map((x) => x.FlowLogId) },
    flowLogId: fl,
    device: { status: sync.status, changed: sync.json.Changed, flowLogId: sync.json.FlowLog?.FlowLogId },
  };
}

main().then((r) => {
  process.stdout.write(JSON.stringify(r) + '\n');
}, (e) => {
  process.stdout.write(JSON.stringify({ error: e.message, code: e.code }) + '\n');
  process.exitCode = 1;
});
