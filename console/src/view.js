// What the traffic pages share: the source of a view (a flow log, or one
// gateway inside its flow log's logstore), its time range (presets or custom,
// in the URL) and the filter that scopes every query to it.
import { html } from 'htm/preact';
import { useEffect, useState } from 'preact/hooks';
import { getLogs, rpc } from './api.js';
import { go } from './ui.js';

// Presets: seconds back from now, and the chart's resolution (seconds a point).
export const PRESETS = { '5m': [300, 5], '15m': [900, 15], '1h': [3600, 60], '6h': [21600, 300], '24h': [86400, 900] };
export const RANGE_MAX_POINTS = 120; // a custom range's resolution gives at most this many points
// Presets end this far after now: records carry their flow's end time, which may be "now".
const PRESET_AHEAD_S = 60;
// A logstore that does not exist yet is empty: the log store creates it at a device's first write.
const NOT_YET = new Set(['ProjectNotExist', 'LogStoreNotExist']);

const STEPS = [1, 5, 10, 15, 30, 60, 300, 900, 1800, 3600, 21600, 86400];
const niceStep = (span) => STEPS.find((s) => span / s <= RANGE_MAX_POINTS) ?? 86400;

export function range(q, now = Math.floor(Date.now() / 1000)) {
  const from = Number(q.from), to = Number(q.to);
  if (q.from && q.to && to > from) return { from, to, step: niceStep(to - from), live: false };
  const [back, step] = PRESETS[q.range] ?? PRESETS['15m'];
  return { from: now - back, to: now + PRESET_AHEAD_S, step, live: true };
}

export const fmtStep = (s) => (s >= 3600 ? `${s / 3600} h` : s >= 60 ? `${s / 60} min` : `${s} s`);

// The user's filter within the view's scope: "Instance_id:"sag-1" and (F)".
export function scoped(base, filter) {
  const f = (filter || '').trim();
  if (base && f) return `${base} and (${f})`;
  return base || f || '*';
}

// GetLogs over the view's logstore; a logstore not created yet answers no rows.
export async function logs(src, p) {
  try {
    return await getLogs({ project: src.fl.ProjectName, logstore: src.fl.LogstoreName, region: src.fl.SlsRegionId, ...p });
  } catch (err) {
    if (NOT_YET.has(err.code)) return { rows: [], count: 0, missing: err.code };
    throw err;
  }
}

// The view's source: { fl, gatewayId, base, title } for #/flowlogs/ID/… or #/gateways/ID/….
export function useSource(kind, id) {
  const [st, setSt] = useState({});
  useEffect(() => {
    let live = true;
    setSt({}); // another view: nothing of the last one stays on the page
    (async () => {
      if (kind !== 'gateways') {
        const d = await rpc('DescribeFlowLogs', { FlowLogId: id });
        const fl = d.FlowLogs?.FlowLogSetType?.[0] ?? {};
        return { fl, gatewayId: null, base: '', name: fl.Name || id };
      }
      const g = await rpc('DescribeSmartAccessGatewayAttribute', { SmartAGId: id });
      const flId = g.FlowLogIds?.FlowLogId?.[0];
      const d = flId ? await rpc('DescribeFlowLogs', { FlowLogId: flId }) : null;
      // A flow log's records carry the gateway as Instance_id (docs/agent.md).
      return { fl: d?.FlowLogs?.FlowLogSetType?.[0] ?? {}, gatewayId: id, base: `Instance_id:"${id}"`, name: g.Name || id };
    })().then((s) => live && setSt({ src: s }), (err) => live && setSt({ err }));
    return () => { live = false; };
  }, [kind, id]);
  return st;
}

// datetime-local values are the browser's local time.
const pad = (n) => String(n).padStart(2, '0');
function localInput(s) {
  const d = new Date(s * 1000);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

// The presets and the custom from/to inputs; the URL holds the choice. The inputs are
// uncontrolled (a live range moves every render and would overwrite what is being typed);
// the form is made anew when the URL's range changes.
export function RangeControls({ parts, q, r }) {
  const [bad, setBad] = useState(false);
  const set = (patch) => go(parts, { ...q, page: undefined, ...patch });
  function custom(e) {
    e.preventDefault();
    const f = new FormData(e.target);
    const from = Math.floor(new Date(f.get('from')).getTime() / 1000), to = Math.floor(new Date(f.get('to')).getTime() / 1000);
    setBad(!(from < to));
    if (from < to) set({ range: undefined, from, to });
  }
  return html`<div class="presets" role="group" aria-label="Time range">
      ${Object.keys(PRESETS).map((p) => html`<button type="button" aria-pressed=${r.live && (q.range || '15m') === p}
        onClick=${() => set({ range: p, from: undefined, to: undefined })}>Last ${p}</button>`)}
    </div>
    <form class="filters" onSubmit=${custom} aria-label="Custom time range" key=${[q.range, q.from, q.to].join()}>
      <div class="field"><label for="range-from">From (local time)</label>
        <input id="range-from" name="from" type="datetime-local" step="1" required defaultValue=${localInput(r.from)} /></div>
      <div class="field"><label for="range-to">To</label>
        <input id="range-to" name="to" type="datetime-local" step="1" required defaultValue=${localInput(r.to)} /></div>
      <button type="submit">Show range</button>
      ${bad ? html`<span class="bad" role="alert" id="range-error">From must be before To.</span>` : ''}
      <span class="muted" id="range-utc">${new Date(r.from * 1000).toISOString()} – ${new Date(r.to * 1000).toISOString()}${r.live ? ' (live)' : ''}</span>
    </form>`;
}

export function ShowQuery({ query, id }) {
  return html`<details class="query"><summary>show query</summary><pre id=${id}>${query}</pre></details>`;
}
