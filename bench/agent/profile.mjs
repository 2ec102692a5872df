// Instructions per record of the Log Service leg, both ends (NOTES.md "How to
// measure"): the capture of bench/agent/run.mjs replayed by `sagflow agent
// --read` under callgrind with OutputType netflow and all (the difference is
// the leg's cost in the agent), and, with SERVE_CG=FILE and SAGFLOW_BIN set to
// a wrapper that runs serve under callgrind, serve's cost while it takes the
// all run's PutLogs (callgrind_control -z before, -d after).
//   PACKETS, FLOWS, GENERATIONS, GAP_US as in run.mjs; AGENT_CG=0 skips the
//   agent's callgrind runs; REAL_BIN the sagflow binary itself; PERF_OUT=P
//   perf records (cpu-clock) serve and three all runs into P.*; TIMELINE=1
//   prints the agent's own timestamps of three all runs; SCHED_OUT=P
//   records the scheduler's switches of the whole machine (`perf sched
//   record -a`) over SCHED_RUNS (default 1) netflow and all runs, into
//   P.netflow.I and P.all.I, for `perf sched timehist -i P.all.0` (who ran,
//   who waited, when).
// Under callgrind serve takes ~10 s for 20,000 records and the agent gives a
// run 10 s to drain: measure serve on a smaller capture, e.g.
//   AGENT_CG=0 SAGFLOW_BIN=$PWD/bench/agent/serve-callgrind.sh REAL_BIN=$PWD/build/sagflow \
//     SERVE_CG=/tmp/serve.cg PACKETS=400000 FLOWS=20000 node bench/agent/profile.mjs
//   AGENT_OUT=/tmp node bench/agent/profile.mjs     # the agent, default capture
import { spawn, spawnSync, execFileSync } from 'node:child_process';
import { readFileSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { startServer, stopClean } from '../../tests/e2e/lib/server.mjs';
import { makeCapture, udpSink, twoFlowLogs } from './setup.mjs';
import { agentArgs, agentRun } from '../../tests/e2e/lib/agent.mjs';

const PACKETS = Number(process.env.PACKETS || 2000000);
const FLOWS = Number(process.env.FLOWS || 100000);
const GENERATIONS = Number(process.env.GENERATIONS || 1);
const GAP_US = Number(process.env.GAP_US || 10);
const REAL = process.env.REAL_BIN || new URL('../../build/sagflow', import.meta.url).pathname;
const { dir, pcap } = makeCapture('sagflow-prof-agent-', { PACKETS, FLOWS, GENERATIONS, GAP_US });
const { sink, port } = await udpSink();

// The total instructions (Ir) of a callgrind output file (all its threads).
function irOf(file) {
  const m = /^summary: (\d+)/m.exec(readFileSync(file, 'utf8')) || /^totals: (\d+)/m.exec(readFileSync(file, 'utf8'));
  return Number(m[1]);
}

function agentCg(args, out) {
  const r = spawnSync('valgrind', ['--tool=callgrind', `--callgrind-out-file=${out}`, REAL, ...args],
    { encoding: 'utf8', timeout: 600000 });
  if (r.status !== 0) throw new Error(r.stderr.slice(-2000));
  return { ir: irOf(out), err: r.stderr };
}

const srv = await startServer({ env: {} });
try {
  const { gNet, gAll } = await twoFlowLogs(srv, port);
  const delivered = (err) => {
    const d = /sls: (\d+) records delivered, (\d+) queued, (\d+) dropped/.exec(err);
    if (!d || d[2] !== '0' || d[3] !== '0') throw new Error(`not everything delivered: ${err.slice(-2000)}`);
    return Number(d[1]);
  };
  // serve: warm (one run), zero, one all run natively, dump.
  if (process.env.SERVE_CG) {
    const warm = agentRun(srv.url, gAll, ['--read', pcap]);
    delivered(warm.stderr);
    execFileSync('callgrind_control', ['-z', String(srv.proc.pid)], { stdio: 'ignore' });
    const r = agentRun(srv.url, gAll, ['--read', pcap]);
    const n = delivered(r.stderr);
    execFileSync('callgrind_control', ['-d', String(srv.proc.pid)], { stdio: 'ignore' });
    const base = process.env.SERVE_CG;
    const dumps = readdirSync(join(base, '..')).filter((f) => join(base, '..', f).startsWith(base + '.')).sort();
    const last = join(base, '..', dumps[dumps.length - 1]);
    const ir = irOf(last);
    console.log(`serve: ${n} records, ${ir} instructions, ${Math.round(ir / n)} per record (${last})`);
  }
  // perf (cpu-clock samples, so the kernel's share shows too) of serve and
  // of the agent over three all runs.
  if (process.env.PERF_OUT) {
    const perf = spawn('perf', ['record', '-e', 'cpu-clock', '-F', '4000', '-g', '-o', process.env.PERF_OUT + '.serve',
      '-p', String(srv.proc.pid)], { stdio: 'ignore' });
    await new Promise((r) => setTimeout(r, 1000));
    for (let i = 0; i < 3; i++) {
      const r = spawnSync('perf', ['record', '-e', 'cpu-clock', '-F', '4000', '-g', '-o', `${process.env.PERF_OUT}.agent${i}`,
        REAL, ...agentArgs(srv.url, gAll, ['--read', pcap])], { encoding: 'utf8' });
      delivered(r.stderr);
    }
    perf.kill('SIGINT');
    await new Promise((r) => perf.once('close', r));
  }
  // TIMELINE=1: the agent's own log lines of three native all runs (reading,
  // end of file, the sls summary at exit), for where the time after the
  // capture goes.
  if (process.env.TIMELINE) {
    for (let i = 0; i < 3; i++) {
      const r = agentRun(srv.url, gAll, ['--read', pcap]);
      delivered(r.stderr);
      console.log(r.stderr.split('\n').filter((l) => /reading|end of file|sls:/.test(l)).join('\n'));
    }
  }
  if (process.env.SCHED_OUT) {
    for (let i = 0; i < Number(process.env.SCHED_RUNS || 1); i++) for (const [leg, g] of [['netflow', gNet], ['all', gAll]]) {
      const r = spawnSync('perf', ['sched', 'record', '-a', '-o', `${process.env.SCHED_OUT}.${leg}.${i}`,
        REAL, ...agentArgs(srv.url, g, ['--read', pcap])], { encoding: 'utf8' });
      if (leg === 'all') delivered(r.stderr);
      console.log(`${leg}: serve is pid ${srv.proc.pid}; ` +
        r.stderr.split('\n').filter((l) => /reading|end of file|sls:/.test(l)).join('\n'));
    }
  }
  if (process.env.AGENT_CG !== '0') {
    const out = process.env.AGENT_OUT || dir;
    const n = agentCg(agentArgs(srv.url, gNet, ['--read', pcap]), join(out, 'agent-netflow.cg'));
    const l = agentCg(agentArgs(srv.url, gAll, ['--read', pcap]), join(out, 'agent-all.cg'));
    const recs = delivered(l.err);
    console.log(`agent: ${recs} records; netflow ${Math.round(n.ir / recs)} per record, all ${Math.round(l.ir / recs)}, ` +
      `the leg ${Math.round((l.ir - n.ir) / recs)} per record (${out})`);
  }
} finally {
  sink.close();
  await stopClean(srv);
  rmSync(dir, { recursive: true, force: true });
}
