// The raw-records explorer: the view's records page by page, newest first
// (GetLogs with line/offset/reverse, no SQL), and a CSV of the range and
// filter generated in the browser (a Blob URL: same origin, nothing sent).
import { html } from 'htm/preact';
import { useEffect, useState } from 'preact/hooks';
import { ErrorBox, Field, go, href } from './ui.js';
import { RangeControls, ShowQuery, logs, range, scoped, useSource } from './view.js';

// The SAG flow-log fields (spec log-service.md §2.2, docs/agent.md), in order.
export const RECORD_FIELDS = ['__time__', 'Instance_id', 'snid', 'start', 'end', 'protocol', 'srcaddr', 'srcport',
  'dstaddr', 'dstport', 'packets', 'bytes', 'tcp-flags', 'tos', 'inport', 'outport'];
export const RECORDS_PAGE = 50; // rows a page (GetLogs line: at most 100)
const CSV_LINE = 100; // rows a GetLogs call while building the CSV (its maximum)
export const CSV_MAX_RECORDS = 10000; // the CSV holds at most this many records, newest first

const utc = (s) => new Date(Number(s) * 1000).toISOString().replace('.000Z', 'Z');
const csvCell = (v) => (/[",\r\n]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v);

// Every record of the range and filter, up to CSV_MAX_RECORDS, as RFC 4180 text.
async function csvText(src, p) {
  const lines = [RECORD_FIELDS.join(',')];
  for (let offset = 0; offset < CSV_MAX_RECORDS; offset += CSV_LINE) {
    const line = Math.min(CSV_LINE, CSV_MAX_RECORDS - offset);
    const page = await logs(src, { ...p, line, offset, reverse: true });
    for (const r of page.rows) lines.push(RECORD_FIELDS.map((f) => csvCell(String(r[f] ?? ''))).join(','));
    if (page.rows.length < line) break;
  }
  return { text: lines.join('\r\n') + '\r\n', n: lines.length - 1 };
}

function download(name, text) {
  const url = URL.createObjectURL(new Blob([text], { type: 'text/csv' }));
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

function Csv({ src, p, total }) {
  const [st, setSt] = useState(null);
  async function go1() {
    setSt({ busy: true });
    try {
      const { text, n } = await csvText(src, p);
      download(`${src.fl.LogstoreName}-${p.from}-${p.to}.csv`, text);
      setSt({ n });
    } catch (err) { setSt({ err }); }
  }
  return html`<p class="actions"><button type="button" id="csv" onClick=${go1} disabled=${st?.busy}>Download CSV</button>
    <span class="muted">all records of the range and filter, newest first, at most ${CSV_MAX_RECORDS.toLocaleString('en')}${total > CSV_MAX_RECORDS ? ` (of ${total})` : ''}; made in this tab</span>
    ${st?.n !== undefined ? html`<span id="csv-done">${st.n} records written</span>` : ''}<${ErrorBox} err=${st?.err} /></p>`;
}

export function Records({ kind = 'flowlogs', id, q }) {
  const { src, err } = useSource(kind, id);
  const [st, setSt] = useState({});
  const r = range(q);
  const page = Math.max(1, Number(q.page) || 1);
  const parts = [kind, id, 'records'];
  const query = src ? scoped(src.base, q.filter) : '';
  // Rows belong to the request that fetched them: a new page shows "Loading…", never the last page's rows.
  const key = JSON.stringify([kind, id, query, page, r.from, r.to]);
  useEffect(() => {
    if (!src?.fl.ProjectName) return;
    let live = true;
    const p = { from: r.from, to: r.to };
    Promise.all([logs(src, { ...p, query, line: RECORDS_PAGE, offset: (page - 1) * RECORDS_PAGE, reverse: true }),
      logs(src, { ...p, query: `${query} | select count(*) as n` })])
      .then(([rows, n]) => live && setSt({ key, rows: rows.rows, total: Number(n.rows[0]?.n || 0) }), (e) => live && setSt({ key, err: e }));
    return () => { live = false; };
  }, [src, key]);
  function submit(e) {
    e.preventDefault();
    go(parts, { ...q, page: undefined, filter: new FormData(e.target).get('filter') });
  }
  const pages = Math.max(1, Math.ceil((st.total || 0) / RECORDS_PAGE));
  const { range: rg, from, to, filter } = q;
  return html`<main id="main"><h1>Records of ${kind === 'gateways' ? 'gateway ' : ''}<a href=${href([kind, id])}>${src?.name || id}</a></h1>
    <${ErrorBox} err=${err || st.err} />
    <p><a href=${href([kind, id, 'traffic'], { range: rg, from, to, filter })}>← traffic</a></p>
    <${RangeControls} parts=${parts} q=${q} r=${r} />
    <form class="filters" onSubmit=${submit} aria-label="Records filter">
      <${Field} label="Filter (Log Service search syntax)" id="filter"><input id="filter" name="filter" value=${q.filter ?? ''} /><//>
      <button type="submit">Apply</button>
    </form>
    ${src?.fl.ProjectName && st.rows && st.key === key ? html`
      <${Csv} key=${key} src=${src} p=${{ from: r.from, to: r.to, query }} total=${st.total} />
      <div class="scroll" tabindex="0" role="region" aria-label="Records (scrolls sideways)"><table id="records"><caption>${st.total} records, newest first; page ${page} of ${pages} (${RECORDS_PAGE} a page)</caption>
        <thead><tr>${RECORD_FIELDS.map((f) => html`<th scope="col">${f}</th>`)}</tr></thead>
        <tbody>${st.rows.map((x) => html`<tr>${RECORD_FIELDS.map((f) => html`<td>${f === '__time__' ? utc(x[f]) : x[f] ?? ''}</td>`)}</tr>`)}</tbody></table></div>
      <nav class="pager" aria-label="Pages">
        ${page > 1 ? html`<a href=${href(parts, { ...q, page: page - 1 })}>← newer</a>` : ''}
        <span>page ${page} of ${pages}</span>
        ${page < pages ? html`<a id="next-page" href=${href(parts, { ...q, page: page + 1 })}>older →</a>` : ''}
      </nav>
      <${ShowQuery} id="q-records" query=${query} />
      <p class="muted">GetLogs with <code>line=${RECORDS_PAGE}</code>, <code>offset=${(page - 1) * RECORDS_PAGE}</code>, <code>reverse=true</code>; the count is <code>${query} | select count(*) as n</code>.</p>`
      : src && !src.fl.ProjectName ? html`<p>No logstore to read.</p>` : html`<p>Loading…</p>`}
  </main>`;
}
