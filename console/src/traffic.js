// Traffic of a flow log, from its logstore through GetLogs (SQL after '|').
// Every number on the page comes from a query shown beside it.
import { html } from 'htm/preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import uPlot from 'uplot';
import { getLogs, rpc } from './api.js';
import { ErrorBox, Field, fmtBytes, go, href } from './ui.js';

// Presets: seconds back from now, and the chart's resolution (seconds a point).
const PRESETS = { '5m': [300, 5], '15m': [900, 15], '1h': [3600, 60], '6h': [21600, 300], '24h': [86400, 900] };
const DIMS = ['srcaddr', 'dstaddr', 'dstport', 'protocol', 'Instance_id'];
const TOP_N = 5;
const REFRESH_MS = 5000;
const SERIES_LIMIT = 10000;
const COLORS = ['#2f6fde', '#d9822b', '#2e9e5b', '#b94ac2', '#c23b3b', '#8a8f98'];

const sqlStr = (s) => `'${String(s).replace(/'/g, "''")}'`;
const niceStep = (span) => [1, 5, 10, 15, 30, 60, 300, 900, 1800, 3600, 21600, 86400].find((s) => span / s <= 120) ?? 86400;

export function range(q, now = Math.floor(Date.now() / 1000)) {
  if (q.from && q.to) {
    const from = Number(q.from), to = Number(q.to);
    return { from, to, step: niceStep(to - from), live: false };
  }
  const [back, step] = PRESETS[q.range] ?? PRESETS['15m'];
  // to is a little ahead: records carry their flow's end time, which may be "now".
  return { from: now - back, to: now + 60, step, live: true };
}

export function queries(filter, dim, step, top = []) {
  const base = filter.trim() || '*';
  const bucket = `__time__ - __time__ % ${step}`;
  const k = top.length ? `case when ${dim} in (${top.map(sqlStr).join(', ')}) then ${dim} else 'Other' end` : `'Other'`;
  return {
    totals: `${base} | select count(*) as records, sum(packets) as packets, sum(bytes) as bytes`,
    top: `${base} | select ${dim}, sum(bytes) as bytes, sum(packets) as packets, count(*) as records group by ${dim} order by bytes desc limit ${TOP_N}`,
    series: `${base} | select ${bucket} as t, ${k} as k, sum(bytes) as bytes group by t, k order by t limit ${SERIES_LIMIT}`,
  };
}

function ShowQuery({ query, id }) {
  return html`<details class="query"><summary>show query</summary><pre id=${id}>${query}</pre></details>`;
}

// Whether the page is in dark mode now; follows the system's changes.
function useDark() {
  const mq = matchMedia('(prefers-color-scheme: dark)');
  const [dark, setDark] = useState(mq.matches);
  useEffect(() => {
    const f = () => setDark(mq.matches);
    mq.addEventListener('change', f);
    return () => mq.removeEventListener('change', f);
  }, []);
  return dark;
}

function Chart({ rows, keys, from, to, step }) {
  const el = useRef(null);
  const dark = useDark();
  useEffect(() => {
    const xs = [];
    for (let t = from - (from % step); t < to; t += step) xs.push(t);
    const idx = new Map(xs.map((t, i) => [t, i]));
    const own = keys.map(() => xs.map(() => 0));
    for (const r of rows) {
      const i = idx.get(Number(r.t)), j = keys.indexOf(r.k);
      if (i !== undefined && j >= 0) own[j][i] += Number(r.bytes) || 0;
    }
    // Stacked: series j is the sum of keys j..n-1, drawn first to last with
    // opaque fills, so each lower band paints over the ones above it.
    const stacked = own.map((_, j) => xs.map((__, i) => own.slice(j).reduce((s, a) => s + a[i], 0)));
    const axis = { stroke: dark ? '#c9d1d9' : '#333', grid: { stroke: dark ? '#30363d' : '#e5e7eb' } };
    const opts = {
      width: Math.max(280, el.current.clientWidth), height: 260,
      series: [{}, ...keys.map((k, j) => ({
        label: k, stroke: COLORS[j % COLORS.length], fill: COLORS[j % COLORS.length], width: 1, points: { show: false },
        value: (u, v, si, i) => (i == null ? '—' : fmtBytes(own[j][i])),
      }))],
      axes: [axis, { ...axis, values: (u, vals) => vals.map(fmtBytes), size: 70 }],
      scales: { x: { time: true } },
    };
    const plot = new uPlot(opts, [xs, ...stacked], el.current);
    // Follow the container's width (window resize, zoom): uPlot draws at a fixed size.
    const ro = new ResizeObserver(() => {
      const w = Math.max(280, el.current.clientWidth);
      if (w !== plot.width) plot.setSize({ width: w, height: 260 });
    });
    ro.observe(el.current);
    return () => { ro.disconnect(); plot.destroy(); };
  }, [rows, keys, from, to, step, dark]);
  return html`<div ref=${el} class="chart" role="img" aria-label="Bytes over time, stacked"></div>`;
}

function useTraffic(fl, q) {
  const [st, setSt] = useState({ loading: true });
  const [tick, setTick] = useState(0);
  const r = range(q);
  const dim = DIMS.includes(q.dim) ? q.dim : 'srcaddr';
  const filter = q.filter ?? '';
  useEffect(() => {
    if (!fl || !fl.ProjectName) return;
    let live = true;
    const where = { project: fl.ProjectName, logstore: fl.LogstoreName, region: fl.SlsRegionId, from: r.from, to: r.to };
    (async () => {
      const q0 = queries(filter, dim, r.step);
      const [tot, top] = await Promise.all([getLogs({ ...where, query: q0.totals }), getLogs({ ...where, query: q0.top })]);
      const keys = top.rows.map((x) => String(x[dim]));
      const qs = queries(filter, dim, r.step, keys);
      const ser = await getLogs({ ...where, query: qs.series });
      const totals = tot.rows[0] ?? {};
      const other = Number(totals.bytes || 0) - top.rows.reduce((s, x) => s + Number(x.bytes || 0), 0);
      return { qs, totals, top: top.rows, keys: [...keys, 'Other'], series: ser.rows, other };
    })().then((d) => live && setSt(d), (err) => live && setSt({ err }));
    return () => { live = false; };
  }, [fl, r.from - (r.live ? r.from % REFRESH_MS : 0), dim, filter, tick, q.range, q.from, q.to]);
  useEffect(() => {
    if (!r.live || q.refresh === '0') return;
    const t = setInterval(() => setTick((x) => x + 1), REFRESH_MS);
    return () => clearInterval(t);
  }, [r.live, q.refresh]);
  return { ...st, r, dim, filter };
}

export function Traffic({ id, q }) {
  const [fl, setFl] = useState(null);
  const [err, setErr] = useState(null);
  useEffect(() => {
    rpc('DescribeFlowLogs', { FlowLogId: id }).then((d) => setFl(d.FlowLogs?.FlowLogSetType?.[0] ?? {}), setErr);
  }, [id]);
  const t = useTraffic(fl, q);
  const set = (patch) => go(['flowlogs', id, 'traffic'], { ...q, ...patch });
  function submit(e) {
    e.preventDefault();
    const f = new FormData(e.target);
    set({ filter: f.get('filter'), dim: f.get('dim') });
  }
  const total = Number(t.totals?.bytes || 0);
  return html`<main id="main"><h1>Traffic of <a href=${href(['flowlogs', id])}>${fl?.Name || id}</a></h1>
    <${ErrorBox} err=${err} />
    ${fl && !fl.ProjectName ? html`<p>This flow log writes no logstore (OutputType ${fl.OutputType}): no traffic to show.</p>` : ''}
    <div class="presets" role="group" aria-label="Time range">
      ${Object.keys(PRESETS).map((p) => html`<button type="button" aria-pressed=${!q.from && (q.range || '15m') === p}
        onClick=${() => set({ range: p, from: undefined, to: undefined })}>Last ${p}</button>`)}
      ${q.from ? html`<span class="muted">custom: ${new Date(t.r.from * 1000).toISOString()} – ${new Date(t.r.to * 1000).toISOString()}</span>` : ''}
    </div>
    <form class="filters" onSubmit=${submit} aria-label="Traffic filter">
      <${Field} label="Filter (Log Service search syntax)" id="filter"><input id="filter" name="filter" value=${t.filter} placeholder="e.g. protocol:6 and not dstport:53" /><//>
      <${Field} label="Stack by" id="dim"><select id="dim" name="dim" value=${t.dim}>${DIMS.map((d) => html`<option>${d}</option>`)}</select><//>
      <button type="submit">Apply</button>
    </form>
    <${ErrorBox} err=${t.err} />
    ${t.qs ? html`
      <section aria-labelledby="h-tot"><h2 id="h-tot">Totals</h2>
        <p class="totals"><span>bytes <strong id="total-bytes" data-value=${total}>${fmtBytes(total)}</strong></span>
          <span>packets <strong id="total-packets">${Number(t.totals.packets || 0)}</strong></span>
          <span>records <strong id="total-records">${Number(t.totals.records || 0)}</strong></span></p>
        ${total === 0 ? html`<p class="empty">No records in this range. The flow log must be Active, a gateway associated and its agent delivering to ${fl.ProjectName}/${fl.LogstoreName}.</p>` : ''}
        <${ShowQuery} id="q-totals" query=${t.qs.totals} /></section>
      <section aria-labelledby="h-chart"><h2 id="h-chart">Bytes over time by ${t.dim}</h2>
        <p class="muted" id="resolution">1 point = ${t.r.step >= 60 ? `${t.r.step / 60} min` : `${t.r.step} s`}; top ${TOP_N} ${t.dim} and Other, stacked</p>
        <${Chart} rows=${t.series} keys=${t.keys} from=${t.r.from} to=${t.r.to} step=${t.r.step} />
        <${ShowQuery} id="q-series" query=${t.qs.series} /></section>
      <section aria-labelledby="h-top"><h2 id="h-top">Top ${TOP_N} ${t.dim}</h2>
        <table id="top-table"><thead><tr><th scope="col">${t.dim}</th><th scope="col">bytes</th><th scope="col">packets</th><th scope="col">records</th><th scope="col">share</th></tr></thead>
          <tbody>${t.top.map((x) => html`<tr><td>${x[t.dim]}</td><td data-value=${x.bytes}>${fmtBytes(x.bytes)}</td><td>${x.packets}</td><td>${x.records}</td>
            <td>${total ? ((100 * Number(x.bytes)) / total).toFixed(1) : 0} %</td></tr>`)}
            ${t.other > 0 ? html`<tr><td>Other</td><td data-value=${t.other}>${fmtBytes(t.other)}</td><td></td><td></td><td>${((100 * t.other) / total).toFixed(1)} %</td></tr>` : ''}</tbody></table>
        <${ShowQuery} id="q-top" query=${queries(t.filter, t.dim, t.r.step).top} /></section>`
      : !t.err && fl?.ProjectName ? html`<p>Loading…</p>` : ''}
  </main>`;
}
