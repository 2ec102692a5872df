// Traffic of a flow log, or of one gateway inside its flow log's logstore,
// through GetLogs (SQL after '|'). Every number on the page comes from a query
// shown beside it.
import { html } from 'htm/preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import uPlot from 'uplot';
import { ErrorBox, Field, fmtBytes, go, href } from './ui.js';
import { RangeControls, ShowQuery, fmtStep, logs, range, scoped, useSource } from './view.js';
import { WhyEmpty } from './why.js';

const DIMS = ['srcaddr', 'dstaddr', 'dstport', 'protocol', 'Instance_id'];
const TOP_N = 5;
const REFRESH_MS = 5000;
const SERIES_LIMIT = 10000;
const COLORS = ['#2f6fde', '#d9822b', '#2e9e5b', '#b94ac2', '#c23b3b', '#8a8f98'];
// The two charts: what each sums, and how its values read.
const METRICS = [['bytes', fmtBytes], ['packets', (n) => String(num(n))]];

// SQL sums over no rows are null: shown as 0.
const num = (v) => Number(v) || 0;
const sqlStr = (s) => `'${String(s).replace(/'/g, "''")}'`;

export function queries(filter, dim, step, top = []) {
  const base = filter.trim() || '*';
  const bucket = `__time__ - __time__ % ${step}`;
  // Ports and protocol are integers in the log store's SQL (and may be longs in an SLS index):
  // compared as text, the top values match whatever the column's type.
  const k = top.length ? `case when cast(${dim} as varchar) in (${top.map(sqlStr).join(', ')}) then ${dim} else 'Other' end` : `'Other'`;
  return {
    totals: `${base} | select count(*) as records, sum(packets) as packets, sum(bytes) as bytes`,
    top: `${base} | select ${dim}, sum(bytes) as bytes, sum(packets) as packets, count(*) as records group by ${dim} order by bytes desc limit ${TOP_N}`,
    series: `${base} | select ${bucket} as t, ${k} as k, sum(bytes) as bytes, sum(packets) as packets group by t, k order by t limit ${SERIES_LIMIT}`,
  };
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

// The series rows as one array per key over every bucket of [from, to).
function buckets(rows, keys, from, to, step, metric) {
  const xs = [];
  for (let t = from - (from % step); t < to; t += step) xs.push(t);
  const idx = new Map(xs.map((t, i) => [t, i]));
  const own = keys.map(() => xs.map(() => 0));
  for (const r of rows) {
    const i = idx.get(Number(r.t)), j = keys.indexOf(r.k);
    if (i !== undefined && j >= 0) own[j][i] += Number(r[metric]) || 0;
  }
  return { xs, own };
}

function Chart({ b, keys, metric, fmt }) {
  const el = useRef(null);
  const dark = useDark();
  useEffect(() => {
    const { xs, own } = b;
    // Stacked: series j is the sum of keys j..n-1, drawn first to last with
    // opaque fills, so each lower band paints over the ones above it.
    const stacked = own.map((_, j) => xs.map((__, i) => own.slice(j).reduce((s, a) => s + a[i], 0)));
    const axis = { stroke: dark ? '#c9d1d9' : '#333', grid: { stroke: dark ? '#30363d' : '#e5e7eb' } };
    const opts = {
      width: Math.max(280, el.current.clientWidth), height: 260,
      series: [{}, ...keys.map((k, j) => ({
        label: k, stroke: COLORS[j % COLORS.length], fill: COLORS[j % COLORS.length], width: 1, points: { show: false },
        value: (u, v, si, i) => (i == null ? '—' : fmt(own[j][i])),
      }))],
      axes: [axis, { ...axis, values: (u, vals) => vals.map(fmt), size: 70 }],
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
  }, [b, keys, dark]);
  return html`<div ref=${el} class="chart" role="img" aria-label=${`${metric} over time, stacked; the same numbers are in the table below`}></div>`;
}

// A chart with its resolution, its query and its numbers as a table (for
// screen readers, and for checking: data-total is the sum of every point).
function MetricChart({ t, metric, fmt }) {
  const b = buckets(t.series, t.keys, t.r.from, t.r.to, t.r.step, metric);
  const sum = b.own.reduce((s, a) => s + a.reduce((x, y) => x + y, 0), 0);
  const used = b.xs.map((x, i) => i).filter((i) => b.own.some((a) => a[i]));
  return html`<section aria-labelledby=${'h-' + metric} class="metric" id=${'chart-' + metric} data-total=${sum}>
    <h2 id=${'h-' + metric}>${metric[0].toUpperCase() + metric.slice(1)} over time by ${t.dim}</h2>
    <p class="muted resolution" id=${metric === 'bytes' ? 'resolution' : 'resolution-' + metric}>1 point = ${fmtStep(t.r.step)}; top ${TOP_N} ${t.dim} (by bytes) and Other, stacked</p>
    <${Chart} b=${b} keys=${t.keys} metric=${metric} fmt=${fmt} />
    <${ShowQuery} id=${metric === 'bytes' ? 'q-series' : 'q-series-' + metric} query=${t.qs.series} />
    <details class="query"><summary>show as table</summary><table class="points"><caption>${metric} per ${fmtStep(t.r.step)}, ${used.length} non-empty points</caption>
      <thead><tr><th scope="col">time (UTC)</th>${t.keys.map((k) => html`<th scope="col">${k}</th>`)}</tr></thead>
      <tbody>${used.map((i) => html`<tr><td>${new Date(b.xs[i] * 1000).toISOString()}</td>${b.own.map((a) => html`<td data-value=${a[i]}>${a[i]}</td>`)}</tr>`)}</tbody></table></details>
  </section>`;
}

function useTraffic(src, q) {
  const [st, setSt] = useState({ loading: true });
  const [tick, setTick] = useState(0);
  const r = range(q);
  const dim = DIMS.includes(q.dim) ? q.dim : 'srcaddr';
  const filter = q.filter ?? '';
  const query = src ? scoped(src.base, filter) : '';
  useEffect(() => {
    if (!src || !src.fl.ProjectName) return;
    let live = true;
    const where = { from: r.from, to: r.to };
    (async () => {
      const q0 = queries(query, dim, r.step);
      const [tot, top] = await Promise.all([logs(src, { ...where, query: q0.totals }), logs(src, { ...where, query: q0.top })]);
      const keys = top.rows.map((x) => String(x[dim]));
      const qs = queries(query, dim, r.step, keys);
      const ser = await logs(src, { ...where, query: qs.series });
      const totals = tot.rows[0] ?? {};
      const other = Number(totals.bytes || 0) - top.rows.reduce((s, x) => s + Number(x.bytes || 0), 0);
      return { src, qs, q0, totals, top: top.rows, keys: [...keys, 'Other'], series: ser.rows, other, missing: tot.missing };
    })().then((d) => live && setSt(d), (err) => live && setSt({ src, err }));
    return () => { live = false; };
  }, [src, r.from - (r.live ? r.from % REFRESH_MS : 0), dim, query, tick, q.range, q.from, q.to]);
  useEffect(() => {
    if (!r.live || q.refresh === '0') return;
    const t = setInterval(() => setTick((x) => x + 1), REFRESH_MS);
    return () => clearInterval(t);
  }, [r.live, q.refresh]);
  // Numbers of another view (the last flow log) are never shown with this one.
  return { ...(st.src === src ? st : { loading: true }), r, dim, filter };
}

// kind: 'flowlogs' (a flow log's view) or 'gateways' (one gateway's records).
export function Traffic({ kind = 'flowlogs', id, q }) {
  const { src, err } = useSource(kind, id);
  const t = useTraffic(src, q);
  const parts = [kind, id, 'traffic'];
  const fl = src?.fl;
  function submit(e) {
    e.preventDefault();
    const f = new FormData(e.target);
    go(parts, { ...q, filter: f.get('filter'), dim: f.get('dim') });
  }
  const total = num(t.totals?.bytes);
  const { range: rg, from, to, filter } = q;
  return html`<main id="main"><h1>Traffic of ${kind === 'gateways' ? 'gateway ' : ''}<a href=${href([kind, id])}>${src?.name || id}</a></h1>
    <${ErrorBox} err=${err} />
    ${src?.gatewayId && fl?.FlowLogId ? html`<p class="muted" id="scope">The records of this gateway in the logstore of flow log${' '}<a href=${href(['flowlogs', fl.FlowLogId, 'traffic'], { range: rg, from, to })}>${fl.Name || fl.FlowLogId}</a>: every query starts with <code>${src.base}</code>.</p>` : ''}
    ${src && !fl.FlowLogId ? html`<${WhyEmpty} v=${{ src, from: t.r.from, to: t.r.to, filter: t.filter, parts, q }} />` : ''}
    ${fl?.FlowLogId && !fl.ProjectName ? html`<p>This flow log writes no logstore (OutputType ${fl.OutputType}): no traffic to show.</p>` : ''}
    <${RangeControls} parts=${parts} q=${q} r=${t.r} />
    <form class="filters" onSubmit=${submit} aria-label="Traffic filter">
      <${Field} label="Filter (Log Service search syntax)" id="filter"><input id="filter" name="filter" value=${t.filter} placeholder="e.g. protocol:6 and not dstport:53" /><//>
      <${Field} label="Stack by" id="dim"><select id="dim" name="dim" value=${t.dim}>${DIMS.map((d) => html`<option>${d}</option>`)}</select><//>
      <button type="submit">Apply</button>
      <a class="button" id="raw-link" href=${href([kind, id, 'records'], { range: rg, from, to, filter })}>Raw records</a>
    </form>
    <${ErrorBox} err=${t.err} />
    ${t.qs ? html`
      <section aria-labelledby="h-tot"><h2 id="h-tot">Totals</h2>
        <p class="totals"><span>bytes <strong id="total-bytes" data-value=${total}>${fmtBytes(total)}</strong></span>
          <span>packets <strong id="total-packets">${num(t.totals.packets)}</strong></span>
          <span>records <strong id="total-records">${num(t.totals.records)}</strong></span></p>
        ${t.missing ? html`<p class="muted">The logstore ${fl.ProjectName}/${fl.LogstoreName} does not exist yet (${t.missing}): the log store creates it at a device's first write.</p>` : ''}
        ${num(t.totals.records) === 0 ? html`<${WhyEmpty} v=${{ src, from: t.r.from, to: t.r.to, filter: t.filter, parts, q }} />` : ''}
        <${ShowQuery} id="q-totals" query=${t.qs.totals} /></section>
      ${num(t.totals.records) === 0 ? '' : html`${METRICS.map(([m, fmt]) => html`<${MetricChart} t=${t} metric=${m} fmt=${fmt} />`)}
      <section aria-labelledby="h-top"><h2 id="h-top">Top ${TOP_N} ${t.dim}</h2>
        <table id="top-table"><thead><tr><th scope="col">${t.dim}</th><th scope="col">bytes</th><th scope="col">packets</th><th scope="col">records</th><th scope="col">share</th></tr></thead>
          <tbody>${t.top.map((x) => html`<tr><td>${x[t.dim]}</td><td data-value=${x.bytes}>${fmtBytes(x.bytes)}</td><td>${x.packets}</td><td>${x.records}</td>
            <td>${total ? ((100 * Number(x.bytes)) / total).toFixed(1) : 0} %</td></tr>`)}
            ${t.other > 0 ? html`<tr><td>Other</td><td data-value=${t.other}>${fmtBytes(t.other)}</td><td></td><td></td><td>${((100 * t.other) / total).toFixed(1)} %</td></tr>` : ''}</tbody></table>
        <${ShowQuery} id="q-top" query=${t.q0.top} /></section>`}`
      : !t.err && fl?.ProjectName ? html`<p>Loading…</p>` : ''}
  </main>`;
}
