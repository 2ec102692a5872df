// bench/pg/cost-report.js WORK NAME NODES: one run of bench/pg/cost.sh as
// costs per create (its snapshots are files WORK/NAME-*).
'use strict';
const fs = require('fs');
const [work, name, nodes] = process.argv.slice(2);
const rd = (f) => (fs.existsSync(`${work}/${name}-${f}`) ? fs.readFileSync(`${work}/${name}-${f}`, 'utf8') : '');
const pairs = (t) => Object.fromEntries(t.trim().split('\n').filter(Boolean).map((l) => {
  const i = l.lastIndexOf(' ');
  return [l.slice(0, i), Number(l.slice(i + 1))];
}));
const lgs = ['a', 'b'].slice(0, Number(nodes)).map((s) => JSON.parse(rd(`${s}.json`)));
const creates = lgs.reduce((n, o) => n + o.requests - (o.non2xx || 0) - (o.errors || 0), 0);
const bad = lgs.reduce((n, o) => n + (o.non2xx || 0) + (o.errors || 0), 0);
const us = (s) => (s * 1e6 / creates).toFixed(1);

// PostgreSQL CPU by role (pids that came or went count as 'other').
const p0 = pairs(rd('pg0')), p1 = pairs(rd('pg1'));
const roleOf = {};
for (const l of rd('roles').trim().split('\n')) { const [pid, r] = l.split(' '); roleOf[pid] = r; }
const byRole = {};
let pgTotal = 0;
for (const pid of Object.keys(p1)) {
  const d = p1[pid] - (p0[pid] || 0);
  const r = roleOf[pid] || (p0[pid] === undefined ? 'new' : 'postmaster/other');
  if (r === 'sampler') continue;
  byRole[r] = (byRole[r] || 0) + d;
  pgTotal += d;
}
// serve CPU by thread name, both nodes together.
let serveTotal = 0;
const byThread = {};
for (const s of ['a', 'b']) {
  const t0 = pairs(rd(`s${s}0`)), t1 = pairs(rd(`s${s}1`));
  for (const k of Object.keys(t1)) {
    const d = t1[k] - (t0[k] || 0);
    byThread[k] = (byThread[k] || 0) + d;
    serveTotal += d;
  }
}
// Writers' metrics, both nodes.
const m = (f) => {
  const o = {};
  for (const l of rd(f).trim().split('\n').filter(Boolean)) {
    const [k, v] = l.split(/\s+/);
    const key = k.replace(/\{.*\}/, '');
    o[key] = (o[key] || 0) + Number(v);
  }
  return o;
};
const dm = {};
for (const s of ['a', 'b']) {
  const a = m(`m${s}0`), b = m(`m${s}1`);
  for (const k of Object.keys(b)) dm[k] = (dm[k] || 0) + b[k] - (a[k] || 0);
}
const batches = dm.sagflow_store_commit_batch_size_count || 0;
const jobs = dm.sagflow_store_commit_batch_size_sum || 0;
const wal = rd('wal').trim().split('|').map(Number);
const fmt = (o) => Object.entries(o).sort((x, y) => y[1] - x[1]).map(([k, v]) => `${k} ${us(v)}`).join(', ');
console.log(`== ${name}: ${nodes} node(s), ${creates} creates (${lgs.map((o) => o.rps).join(' + ')} req/s, p99 ${lgs.map((o) => o.p99_ms).join('/')} ms, ${bad} bad)`);
console.log(`CPU us/create: PostgreSQL ${us(pgTotal)} (${fmt(byRole)}); serve ${us(serveTotal)} (${fmt(byThread)})`);
console.log(`writer batches ${batches}: ${(jobs / batches).toFixed(1)} jobs each, ${((dm.sagflow_store_round_trips_total || 0) / batches).toFixed(2)} round trips each, run ${(1e3 * (dm.sagflow_store_batch_run_seconds_sum || 0) / batches).toFixed(2)} ms, commit ${(1e3 * (dm.sagflow_store_fsync_seconds_sum || 0) / (dm.sagflow_store_fsync_seconds_count || 1)).toFixed(2)} ms; per batch: PG writer CPU ${((byRole.writer || 0) * 1e6 / batches).toFixed(0)} us`);
console.log(`WAL per create: ${(wal[0] / creates).toFixed(2)} records, ${(wal[2] / creates).toFixed(0)} bytes, fpi ${(wal[1] / creates).toFixed(3)}; writes ${wal[3]}, syncs ${wal[4]} (${(wal[4] / creates * 1000).toFixed(1)} per 1000 creates)`);
console.log('statements (calls | exec ms | rows | wal rec | wal bytes | blks hit | query), per create us of exec:');
for (const l of rd('stmts').trim().split('\n').filter(Boolean)) {
  const c = l.split('|');
  console.log(`  ${(Number(c[1]) * 1e3 / creates).toFixed(1).padStart(6)} us  calls ${c[0]} (${(creates / Number(c[0])).toFixed(1)} creates each) rows ${c[2]} wal ${c[3]}/${c[4]} hit ${c[5]}  ${c[6]}`);
}
console.log('wait samples (role | event | n):');
console.log(rd('waits').trim().split('\n').map((l) => '  ' + l).join('\n'));
