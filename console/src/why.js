// "Why is it empty?" (issue 12 part 5): when a traffic view has no records, walk
// the pipeline from the flow log to the time range and name the first stage that
// fails, with a link to where it is fixed. Public APIs only: DescribeFlowLogs
// (the caller has it), DescribeFlowLogSags, DescribeSmartAccessGatewayAttribute, GetLogs.
//
// A view may cover several gateways, so each stage keeps the gateways that pass
// it and fails only when none is left: the view is empty only if every gateway's
// pipeline is broken, and the stage named is the furthest any gateway got.
import { html } from 'htm/preact';
import { useEffect, useState } from 'preact/hooks';
import { rpc } from './api.js';
import { href } from './ui.js';
import { logs, scoped } from './view.js';

// Flow logs need device firmware >= 1.7.0 (NOTES.md, decisions): the server's
// DOMAIN_FLOWLOG_MIN_FIRMWARE (src/domain/domain.h), compared the same way, dotted numbers.
export const FLOWLOG_MIN_FIRMWARE = '1.7.0';
// The gateways of one flow log the checks read (DescribeFlowLogSags PageSize).
const WHY_MAX_GATEWAYS = 50;
// "All time" for the range stage: from the epoch's first second to a day ahead.
const WHY_AHEAD_S = 86400;

export const STAGES = [
  ['active', 'The flow log is Active'],
  ['associated', 'A gateway is associated'],
  ['reported', 'Its device has reported'],
  ['firmware', `Its firmware supports flow logs (≥ ${FLOWLOG_MIN_FIRMWARE})`],
  ['online', 'It is online'],
  ['delivered', 'Records were delivered to the logstore'],
  ['range', 'Records fall in the chosen time range'],
  ['filter', 'Records in the range match the filter'],
];

// "1.10.2" >= "1.7.0", numerically part by part; a version that is not
// dotted numbers (or none) does not support flow logs.
export function firmwareOk(v, min = FLOWLOG_MIN_FIRMWARE) {
  if (!/^\d+(\.\d+)*$/.test(v || '')) return false;
  const a = v.split('.').map(Number), b = min.split('.').map(Number);
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    if ((a[i] ?? 0) !== (b[i] ?? 0)) return (a[i] ?? 0) > (b[i] ?? 0);
  }
  return true;
}

const iso = (s) => new Date(s * 1000).toISOString().replace('.000Z', 'Z');
const gwLink = (g) => ({ href: href(['gateways', g.id]), label: `Open gateway ${g.id}` });
const devices = (g) => g.attr.Devices?.Device ?? [];
const reported = (g) => devices(g).filter((d) => d.HcState === 'Normal');
const capable = (g) => reported(g).filter((d) => firmwareOk(d.SoftwareVersion));
const fail = (stage, text, link) => ({ stage, text, link });

function delivery(d) {
  const s = d.SlsDelivery || {};
  if (!s.Status) return `${d.SerialNumber} reports no Log Service delivery (SlsDelivery is empty: its agent runs no sls leg)`;
  const err = s.LastError ? `; last error ${s.LastError} at ${s.LastErrorTime}` : '';
  return `${d.SerialNumber} reports SlsDelivery ${s.Status}: ${s.Delivered ?? 0} delivered, ${s.Queued ?? 0} queued, ${s.Dropped ?? 0} dropped${err}`;
}

// The gateway stages, on the gateways still in the running; each returns a
// failure or the gateways that pass.
const GATEWAY_STAGES = [
  ['reported', (gs) => gs.filter((g) => reported(g).length), (g) => (devices(g).length
    ? `No device of gateway ${g.id} has reported to the control plane (serial ${devices(g).map((d) => d.SerialNumber).join(', ')}): start its agent.`
    : `Gateway ${g.id} has no serial number bound: bind its device's serial number.`)],
  ['firmware', (gs) => gs.filter((g) => capable(g).length), (g) => `Gateway ${g.id}: ${reported(g)
    .map((d) => `${d.SerialNumber} reports firmware ${d.SoftwareVersion || '(none)'}`).join(', ')}; flow logs need ≥ ${FLOWLOG_MIN_FIRMWARE}.`],
  ['online', (gs) => gs.filter((g) => g.attr.Status === 'Active'), (g) =>
    `Gateway ${g.id} is ${g.attr.Status}: no device has reported within the control plane's online limit (serve --device-offline-after).`],
  // Delivered means in the logstore; SlsDelivery (the device's own account) says why not.
  ['delivered', (gs) => gs.filter((g) => g.stored), (g, fl) =>
    `Nothing of gateway ${g.id} is in the logstore ${fl.ProjectName}/${fl.LogstoreName}: ${capable(g).map(delivery).join('; ')}.`],
];

// The newest and oldest record of these gateways in the logstore, all time.
async function stored(src, gs) {
  const ids = gs.map((g) => `Instance_id:"${g.id}"`).join(' or ');
  const query = `${ids} | select Instance_id, count(*) as n, min(__time__) as oldest, max(__time__) as newest group by Instance_id`;
  const to = Math.floor(Date.now() / 1000) + WHY_AHEAD_S;
  const r = await logs(src, { from: 1, to, query });
  return new Map(r.rows.map((x) => [x.Instance_id, { n: Number(x.n), oldest: Number(x.oldest), newest: Number(x.newest) }]));
}

// The range and filter stages: where the records are, against [from, to).
async function rangeStage(gs, v) {
  const inRange = await logs(v.src, { from: v.from, to: v.to, query: `${scoped(v.src.base, '')} | select count(*) as n` });
  if (!Number(inRange.rows[0]?.n)) {
    const newest = Math.max(...gs.map((g) => g.stored.newest)), oldest = Math.min(...gs.map((g) => g.stored.oldest));
    const side = newest < v.from ? 'before' : oldest >= v.to ? 'after' : 'on both sides of';
    const q = { ...v.q, range: undefined, from: newest - 3600, to: newest + 60, page: undefined };
    return fail('range', `The newest record is at ${iso(newest)} (the oldest at ${iso(oldest)}), ${side} the range ${iso(v.from)} – ${iso(v.to)}.`,
      { href: href(v.parts, q), label: 'Show the hour up to the newest record' });
  }
  if (!(v.filter || '').trim()) {
    // Not empty any more: records arrived between the view's query and this one.
    return fail('filter', `${inRange.rows[0].n} records are in the range now: they arrived after the view was drawn (a preset redraws within 5 s; reload a custom range).`, null);
  }
  return fail('filter', `${inRange.rows[0].n} records fall in the range, but none matches the filter ${v.filter}.`,
    { href: href(v.parts, { ...v.q, filter: undefined, page: undefined }), label: 'Clear the filter' });
}

// v: { src (view.js: fl, gatewayId for a gateway's own view, base), from, to, filter, parts, q }.
export async function diagnose(v) {
  const { fl, gatewayId } = v.src;
  const flLink = (label) => ({ href: href(['flowlogs', fl.FlowLogId]), label });
  if (!fl.FlowLogId) {
    return fail('associated', `Gateway ${gatewayId} is associated with no flow log.`, { href: href(['flowlogs']), label: 'Associate it from a flow log' });
  }
  if (fl.Status !== 'Active') return fail('active', `The flow log ${fl.Name || fl.FlowLogId} is ${fl.Status}: its gateways export nothing.`, flLink('Activate it'));
  let ids = [gatewayId];
  if (!gatewayId) {
    const s = await rpc('DescribeFlowLogSags', { FlowLogId: fl.FlowLogId, PageSize: WHY_MAX_GATEWAYS });
    ids = (s.Sags?.Sag ?? []).map((x) => x.SmartAGId);
  }
  if (!ids.length) return fail('associated', `No gateway is associated with the flow log ${fl.Name || fl.FlowLogId}.`, flLink('Associate a gateway'));
  let gs = await Promise.all(ids.map(async (id) => ({ id, attr: await rpc('DescribeSmartAccessGatewayAttribute', { SmartAGId: id }) })));
  const found = await stored(v.src, gs);
  for (const g of gs) g.stored = found.get(g.id);
  for (const [stage, keep, why] of GATEWAY_STAGES) {
    const next = keep(gs);
    if (!next.length) return fail(stage, gs.map((g) => why(g, fl)).join(' '), gwLink(gs[0]));
    gs = next;
  }
  return rangeStage(gs, v);
}

// The checklist: stages before the failing one passed, it failed, later ones
// were not reached.
export function WhyEmpty({ v }) {
  const [st, setSt] = useState(null);
  const [again, setAgain] = useState(0);
  // A preset's range moves with the clock: its key is the preset, not the seconds.
  const when = v.q.from && v.q.to ? [v.from, v.to] : v.q.range || '15m';
  const key = JSON.stringify([v.src.fl.FlowLogId, v.src.fl.Status, v.src.gatewayId, when, v.filter, again]);
  useEffect(() => {
    let live = true;
    diagnose(v).then((r) => live && setSt({ ...r, key }), (err) => live && setSt({ key, stage: 'error', text: `${err.code}: ${err.msg ?? err.message}` }));
    return () => { live = false; };
  }, [key]);
  // An answer about another view (or range) is never shown: wait for this one's.
  if (!st || st.key !== key) return html`<p class="empty" id="why-empty">Why is it empty? Checking the pipeline…</p>`;
  const at = STAGES.findIndex(([s]) => s === st.stage);
  return html`<section class="empty" id="why-empty" data-stage=${st.stage} data-view=${v.src.gatewayId || v.src.fl.FlowLogId} aria-labelledby="h-why">
    <h2 id="h-why">Why is it empty?</h2>
    ${at < 0 ? html`<p>The checks could not run: ${st.text}</p>` : html`<ol class="why">${STAGES.map(([s, label], i) => html`
      <li class=${i < at ? 'pass' : i === at ? 'fail' : 'skip'} data-stage=${s}>
        <span aria-hidden="true">${i < at ? '✓' : i === at ? '✗' : '·'}</span> ${label}${i < at ? '' : i === at ? ': no' : ' (not checked)'}
        ${i === at ? html`<p class="why-text">${st.text}</p>${st.link ? html`<a class="button" id="why-fix" href=${st.link.href}>${st.link.label}</a>` : ''}
          <button type="button" onClick=${() => setAgain((n) => n + 1)}>Check again</button>` : ''}</li>`)}</ol>`}
  </section>`;
}
