// Shared by bench/agent/run.mjs and profile.mjs: the generated capture, a UDP
// sink for the NetFlow leg (so datagrams are received, not refused), and the
// two flow logs, OutputType netflow and all, each with a gateway bound to it.
import { createSocket } from 'node:dgram';
import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { api } from '../../tests/e2e/lib/sag.mjs';
import { provision, agentRun } from '../../tests/e2e/lib/agent.mjs';

// pcapgen.mjs's bench capture of { PACKETS, FLOWS, GENERATIONS, GAP_US } in a
// fresh folder: { dir, pcap }.
export function makeCapture(prefix, c) {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const pcap = join(dir, 'bench.pcap');
  execFileSync('node', [new URL('../../tests/e2e/lib/pcapgen.mjs', import.meta.url).pathname, 'bench', pcap,
    ...[c.PACKETS, c.FLOWS, c.GENERATIONS, c.GAP_US].map(String)], { stdio: ['ignore', 'ignore', 'inherit'] });
  return { dir, pcap };
}

export async function udpSink(onMessage = () => {}) {
  const sink = createSocket('udp4');
  sink.on('message', onMessage);
  await new Promise((r) => sink.bind(0, '127.0.0.1', r));
  return { sink, port: sink.address().port };
}

// The netflow and the all flow log on srv, exporting to port, and a gateway
// bound to each (its device known to the control plane): { gNet, gAll }.
export async function twoFlowLogs(srv, port) {
  const a = api(srv);
  const nf = { NetflowServerIp: '127.0.0.1', NetflowServerPort: port, NetflowVersion: 'V10', ActiveAging: 300, InactiveAging: 15 };
  const flNet = (await a.call('CreateFlowLog', { OutputType: 'netflow', ...nf })).FlowLogId;
  const flAll = (await a.call('CreateFlowLog', { OutputType: 'all', SlsRegionId: 'cn-shanghai', ProjectName: 'benchp',
    LogstoreName: 'benchls', ...nf })).FlowLogId;
  const gNet = await provision(a), gAll = await provision(a);
  for (const [g, fl] of [[gNet, flNet], [gAll, flAll]]) {
    if (agentRun(srv.url, g, ['--once']).status !== 0) throw new Error('agent --once failed');
    await a.call('AssociateFlowLog', { FlowLogId: fl, SmartAGId: g.id });
  }
  return { gNet, gAll };
}
