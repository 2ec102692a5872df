// Agent delivery benchmark (issue 11, part 8; docs/benchmarks.md "Agent
// delivery"): one generated capture replayed with `sagflow agent --read` under
// a flow log with OutputType netflow and under one with OutputType all (NetFlow
// plus Log Service PutLogs to the local serve's log store), interleaved rounds,
// and `sagflow meter --read` on the same capture for the meter's own rate.
// A --read run ends after the sls queue drained (or AGENT_SLS_DRAIN_MS), so
// its time includes encoding, lz4, signing and delivery of every record.
//   SAGFLOW_BIN  the release build (default build/sagflow)
//   PACKETS, FLOWS, REPEAT  (defaults 1000000, 20000, 5)
//   GENERATIONS, GAP_US     (defaults 1, 10): with GENERATIONS > 1, FLOWS
//     concurrent flows per span of the capture, so flows end all through it
//     and records close while the replay runs (pcapgen.mjs, "churn")
import { spawn } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { startServer, stopClean, BIN } from '../../tests/e2e/lib/server.mjs';
import { makeCapture, udpSink, twoFlowLogs } from './setup.mjs';
import { agentArgs, agentRun } from '../../tests/e2e/lib/agent.mjs';

const PACKETS = Number(process.env.PACKETS || 1000000);
const FLOWS = Number(process.env.FLOWS || 20000);
const REPEAT = Number(process.env.REPEAT || 5);
const GENERATIONS = Number(process.env.GENERATIONS || 1);
const GAP_US = Number(process.env.GAP_US || 10);
const { dir, pcap } = makeCapture('sagflow-bench-agent-', { PACKETS, FLOWS, GENERATIONS, GAP_US });

// A UDP sink for the NetFlow leg, so datagrams are received, not refused.
let datagrams = 0;
const { sink, port } = await udpSink(() => { datagrams++; });

// CPU seconds (user + system) a process has used so far, from /proc.
function cpuOf(pid) {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(f[11]) + Number(f[12])) / 100; // utime, stime in clock ticks (USER_HZ 100)
}

// One run: its wall time, and the CPU it and serve used (GNU time reports the
// child's; the machine is shared, so CPU says more than wall time under load).
function timed(args) {
  const t0 = process.hrtime.bigint();
  const serve0 = cpuOf(srv.proc.pid);
  const p = spawn('/usr/bin/time', ['-f', 'CPU %U %S', BIN, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  p.stderr.setEncoding('utf8').on('data', (d) => { err += d; });
  return new Promise((resolve) => p.once('close', (code) => {
    const m = /CPU ([\d.]+) ([\d.]+)\s*$/.exec(err);
    resolve({ code, s: Number(process.hrtime.bigint() - t0) / 1e9, err,
      cpu: m ? Number(m[1]) + Number(m[2]) : NaN, serveCpu: cpuOf(srv.proc.pid) - serve0 });
  }));
}

const srv = await startServer({ env: {} });
try {
  const { gNet, gAll } = await twoFlowLogs(srv, port);
  const best = { meter: Infinity, netflow: Infinity, all: Infinity };
  const cpu = { netflow: [], all: [], serveNetflow: [], serveAll: [] };
  let records = 0, delivered = 0;
  for (let i = 0; i < REPEAT; i++) {
    const m = await timed(['meter', '--collector', `127.0.0.1:${port}`, '--netflow-version', 'V10', '--read', pcap]);
    const n = await timed(agentArgs(srv.url, gNet, ['--read', pcap]));
    const l = await timed(agentArgs(srv.url, gAll, ['--read', pcap]));
    for (const r of [m, n, l]) if (r.code !== 0) throw new Error(`a run failed: ${r.err}`);
    records = Number(/records closed: (\d+)|records exported: (\d+)|records opened: (\d+)/.exec(l.err)?.slice(1).find(Boolean) ?? 0);
    const d = /sls: (\d+) records delivered, (\d+) queued, (\d+) dropped/.exec(l.err);
    if (!d || d[2] !== '0' || d[3] !== '0') throw new Error(`the sls leg did not deliver everything: ${l.err}`);
    delivered = Number(d[1]);
    best.meter = Math.min(best.meter, m.s); best.netflow = Math.min(best.netflow, n.s); best.all = Math.min(best.all, l.s);
    cpu.netflow.push(n.cpu); cpu.all.push(l.cpu); cpu.serveNetflow.push(n.serveCpu); cpu.serveAll.push(l.serveCpu);
    console.log(`round ${i + 1}: meter ${m.s.toFixed(2)} s, agent netflow ${n.s.toFixed(2)} s (CPU ${n.cpu.toFixed(2)} s, serve ${n.serveCpu.toFixed(2)} s), ` +
      `agent all ${l.s.toFixed(2)} s (CPU ${l.cpu.toFixed(2)} s, serve ${l.serveCpu.toFixed(2)} s)`);
  }
  console.log(`capture: ${PACKETS} packets ${GAP_US} µs apart, ${FLOWS} concurrent flows in each of ${GENERATIONS} spans; ${delivered} records per run delivered to the log store (agent stderr: ${records} records)`);
  console.log(`best of ${REPEAT}: meter ${best.meter.toFixed(2)} s (${Math.round(delivered / best.meter)} records/s), ` +
    `agent netflow ${best.netflow.toFixed(2)} s (${Math.round(delivered / best.netflow)} records/s), ` +
    `agent all ${best.all.toFixed(2)} s (${Math.round(delivered / best.all)} records/s delivered to both legs)`);
  console.log(`all / netflow: ${(best.all / best.netflow).toFixed(2)}x (goal <= 1.30x)`);
  const med = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
  const work = med(cpu.all) + med(cpu.serveAll) - med(cpu.serveNetflow);
  console.log(`median CPU: agent netflow ${med(cpu.netflow).toFixed(2)} s, agent all ${med(cpu.all).toFixed(2)} s, ` +
    `serve during all ${med(cpu.serveAll).toFixed(2)} s (during netflow ${med(cpu.serveNetflow).toFixed(2)} s); ` +
    `on ${availableParallelism()} cores an all run cannot take less than ${(work / availableParallelism()).toFixed(2)} s, ` +
    `${(work / availableParallelism() / med(cpu.netflow)).toFixed(2)}x a netflow run's CPU time (which one core sets)`);
} finally {
  sink.close();
  await stopClean(srv);
  rmSync(dir, { recursive: true, force: true });
}
