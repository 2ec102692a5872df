// The sagflow console: sign-in, flow logs, gateways, traffic (docs/console.md).
import { html } from 'htm/preact';
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { rpc, session } from './api.js';
import { CallBox, CallPanel, ErrorBox, Field, Snippet, go, href, useCall, useRoute } from './ui.js';
import { terraformSnippet } from './snippets.js';
import { Traffic } from './traffic.js';
import { GatewayRoute } from './gateways.js';
import { Records } from './records.js';

function SignIn() {
  const [err, setErr] = useState(null);
  const [busy, setBusy] = useState(false);
  async function submit(e) {
    e.preventDefault();
    const f = new FormData(e.target);
    const key = { akid: f.get('akid').trim(), secret: f.get('secret'), region: f.get('region').trim() || 'cn-shanghai' };
    setBusy(true);
    try {
      await rpc('DescribeRegions', {}, key); // any signed call proves the key
      session.set(key);
      go(['flowlogs']);
    } catch (x) { setErr(x); } finally { setBusy(false); }
  }
  return html`<main class="signin" id="main">
    <h1>sagflow console</h1>
    <p>Sign in with an AccessKey. The secret stays in this tab (sessionStorage) and signs each request here.</p>
    <form onSubmit=${submit}>
      <${Field} label="AccessKey ID" id="akid"><input id="akid" name="akid" required autocomplete="username" /><//>
      <${Field} label="AccessKey secret" id="secret"><input id="secret" name="secret" type="password" required autocomplete="current-password" /><//>
      <${Field} label="Region" id="region"><input id="region" name="region" value="cn-shanghai" /><//>
      <button type="submit" disabled=${busy}>Sign in</button>
    </form>
    <${ErrorBox} err=${err} />
  </main>`;
}

// [parameter, input type or options, the output it belongs to]. A field is
// shown, and sent, only when the chosen OutputType uses it: a netflow-only
// flow log sends no SlsRegionId, ProjectName or LogstoreName. The inputs are
// uncontrolled (defaultValue, selected): choosing an OutputType re-renders the
// form, and that must not reset what was typed.
const FL_FIELDS = [
  ['Name', 'text'], ['Description', 'text'], ['OutputType', ['sls', 'netflow', 'all']], ['SlsRegionId', 'text', 'sls'],
  ['ProjectName', 'text', 'sls'], ['LogstoreName', 'text', 'sls'], ['NetflowServerIp', 'text', 'netflow'],
  ['NetflowServerPort', 'number', 'netflow'], ['NetflowVersion', ['V5', 'V9', 'V10'], 'netflow'],
  ['ActiveAging', 'number'], ['InactiveAging', 'number'],
];
const usedBy = (out) => ([, , g]) => !g || out === 'all' || out === g;

function FlowLogForm({ initial = {}, onDone, modify }) {
  const [err, setErr] = useState(null);
  const [out, setOut] = useState(initial.OutputType || 'sls');
  const fields = FL_FIELDS.filter(usedBy(out));
  async function submit(e) {
    e.preventDefault();
    const f = new FormData(e.target);
    const p = {};
    for (const [k] of fields) {
      const v = String(f.get(k) ?? '');
      // Create leaves empty fields out; Modify sends only what changed.
      if (modify ? v !== String(initial[k] ?? '') : v !== '') p[k] = v;
    }
    try {
      const r = modify ? await rpc('ModifyFlowLogAttribute', { FlowLogId: initial.FlowLogId, ...p })
        : await rpc('CreateFlowLog', p);
      onDone(modify ? initial.FlowLogId : r.FlowLogId);
    } catch (x) { setErr(x); }
  }
  return html`<form class="grid" onSubmit=${submit} aria-label=${modify ? 'Modify flow log' : 'Create flow log'}>
    ${fields.map(([k, t]) => html`<${Field} label=${k} id=${'f-' + k}>${Array.isArray(t)
      ? html`<select id=${'f-' + k} name=${k} onChange=${k === 'OutputType' ? (e) => setOut(e.target.value) : undefined}>
          ${k !== 'OutputType' && !initial[k] ? html`<option value="">${modify ? '—' : '(the API default)'}</option>` : ''}${t.map((o) => html`<option selected=${o === (k === 'OutputType' ? out : initial[k])}>${o}</option>`)}</select>`
      : html`<input id=${'f-' + k} name=${k} type=${t} defaultValue=${initial[k] ?? ''} />`}<//>`)}
    <div class="actions"><button type="submit">${modify ? 'Save changes' : 'Create flow log'}</button></div>
    <${ErrorBox} err=${err} />
  </form>`;
}

function FlowLogs({ q }) {
  const page = Number(q.page || 1);
  const params = { PageNumber: page, PageSize: 10, FlowLogName: q.name || undefined, Status: q.status || undefined,
    OutputType: q.output || undefined };
  const [data, err] = useCall('DescribeFlowLogs', params, [page, q.name, q.status, q.output]);
  const list = data?.FlowLogs?.FlowLogSetType ?? [];
  const total = data?.TotalCount ?? 0;
  function filter(e) {
    e.preventDefault();
    const f = new FormData(e.target);
    go(['flowlogs'], { name: f.get('name'), status: f.get('status'), output: f.get('output') });
  }
  return html`<main id="main"><h1>Flow logs</h1>
    <p><a class="button" href=${href(['flowlogs', 'new'])}>Create flow log</a></p>
    <form class="filters" onSubmit=${filter} aria-label="Filter flow logs">
      <${Field} label="Name" id="q-name"><input id="q-name" name="name" value=${q.name ?? ''} /><//>
      <${Field} label="Status" id="q-status"><select id="q-status" name="status" value=${q.status ?? ''}>
        <option value="">any</option><option>Active</option><option>Inactive</option></select><//>
      <${Field} label="Output" id="q-output"><select id="q-output" name="output" value=${q.output ?? ''}>
        <option value="">any</option><option>sls</option><option>netflow</option><option>all</option></select><//>
      <button type="submit">Filter</button>
    </form>
    <${ErrorBox} err=${err} />
    <table><caption>${total} flow log${total === 1 ? '' : 's'}</caption>
      <thead><tr><th scope="col">Id</th><th scope="col">Name</th><th scope="col">Status</th><th scope="col">Output</th>
        <th scope="col">Logstore</th><th scope="col">Gateways</th><th scope="col">Traffic</th></tr></thead>
      <tbody>${list.map((f) => html`<tr>
        <td><a href=${href(['flowlogs', f.FlowLogId])}>${f.FlowLogId}</a></td><td>${f.Name}</td>
        <td><span class=${'status ' + f.Status}>${f.Status}</span></td><td>${f.OutputType}</td>
        <td>${f.ProjectName ? `${f.ProjectName}/${f.LogstoreName}` : '—'}</td><td>${f.TotalSagNum}</td>
        <td>${f.ProjectName ? html`<a href=${href(['flowlogs', f.FlowLogId, 'traffic'])}>traffic</a>` : ''}</td></tr>`)}</tbody>
    </table>
    <nav class="pager" aria-label="Pages">
      ${page > 1 ? html`<a href=${href(['flowlogs'], { ...q, page: page - 1 })}>← previous</a>` : ''}
      <span>page ${page} of ${Math.max(1, Math.ceil(total / 10))}</span>
      ${page * 10 < total ? html`<a href=${href(['flowlogs'], { ...q, page: page + 1 })}>next →</a>` : ''}
    </nav></main>`;
}

function NewFlowLog() {
  return html`<main id="main"><h1>Create flow log</h1>
    <${FlowLogForm} initial=${{ SlsRegionId: session.get()?.region }} onDone=${(id) => go(['flowlogs', id])} /></main>`;
}

function FlowLogDetail({ id, q }) {
  const [data, err, reload] = useCall('DescribeFlowLogs', { FlowLogId: id }, [id]);
  const [sags, , reloadSags] = useCall('DescribeFlowLogSags', { FlowLogId: id }, [id]);
  const [free, , reloadFree] = useCall('DescribeUnbindFlowLogSags', {}, [id]);
  const [actErr, setActErr] = useState(null);
  const [last, setLast] = useState(null); // the call the last action made
  const [confirm, setConfirm] = useState(false);
  const fl = data?.FlowLogs?.FlowLogSetType?.[0];
  async function act(action, extra = {}) {
    setActErr(null);
    setConfirm(false);
    try {
      const r = await rpc(action, { FlowLogId: id, ...extra });
      if (action === 'DeleteFlowLog') return go(['flowlogs']);
      setLast(r.$call);
      reload(); reloadSags(); reloadFree();
    } catch (x) { setActErr(x); setLast(x.call); }
  }
  if (err) return html`<main id="main"><h1>Flow log ${id}</h1><${ErrorBox} err=${err} /></main>`;
  if (!data) return html`<main id="main"><h1>Flow log ${id}</h1><p>Loading…</p></main>`;
  if (!fl) return html`<main id="main"><h1>Flow log ${id}</h1><p>No such flow log.</p></main>`;
  const editing = q.edit === '1';
  const bound = sags?.Sags?.Sag ?? [];
  const unbound = free?.Sags?.Sag ?? [];
  return html`<main id="main"><h1>Flow log ${fl.Name || fl.FlowLogId}</h1>
    <div class="actions">
      ${fl.Status === 'Active' ? html`<button onClick=${() => act('DeactiveFlowLog')}>Deactivate</button>`
        : html`<button onClick=${() => act('ActiveFlowLog')}>Activate</button>`}
      <a class="button" href=${href(['flowlogs', id], editing ? {} : { edit: 1 })}>${editing ? 'Cancel edit' : 'Modify'}</a>
      ${fl.ProjectName ? html`<a class="button" href=${href(['flowlogs', id, 'traffic'])}>Traffic</a>` : ''}
      ${confirm ? html`<button class="danger" onClick=${() => act('DeleteFlowLog')}>Confirm delete</button>
        <button onClick=${() => setConfirm(false)}>Keep it</button>`
        : html`<button class="danger" onClick=${() => setConfirm(true)}>Delete</button>`}
    </div>
    <${ErrorBox} err=${actErr} />
    ${editing ? html`<${FlowLogForm} modify initial=${fl} onDone=${() => { go(['flowlogs', id]); reload(); }} />`
      : html`<dl class="props">${Object.entries(fl).map(([k, v]) => html`<dt>${k}</dt><dd>${String(v)}</dd>`)}</dl>`}
    ${last ? html`<h2>Call made</h2><${CallBox} call=${last} open />` : ''}
    <details class="call"><summary>This flow log as Terraform (<code>alicloud_smartag_flow_log</code>)</summary>
      <${Snippet} name="Terraform" text=${terraformSnippet(fl, location.origin, session.get()?.region)} label="This flow log as Terraform" /></details>
    <h2>Gateways</h2>
    <table><caption>${bound.length} associated</caption><thead><tr><th scope="col">Gateway</th><th scope="col">Name</th><th scope="col"><span class="sr">Action</span></th></tr></thead>
      <tbody>${bound.map((s) => html`<tr><td><a href=${href(['gateways', s.SmartAGId])}>${s.SmartAGId}</a></td><td>${s.Name ?? ''}</td>
        <td><button onClick=${() => act('DisassociateFlowLog', { SmartAGId: s.SmartAGId })}>Disassociate</button></td></tr>`)}</tbody></table>
    <form class="filters" aria-label="Associate a gateway" onSubmit=${(e) => { e.preventDefault(); act('AssociateFlowLog', { SmartAGId: new FormData(e.target).get('sag') }); }}>
      <${Field} label="Gateway without a flow log" id="assoc"><select id="assoc" name="sag">
        ${unbound.length ? unbound.map((s) => html`<option value=${s.SmartAGId}>${s.SmartAGId}${s.Name ? ` (${s.Name})` : ''}</option>`)
          : html`<option value="">none: every gateway has a flow log</option>`}</select><//>
      <button type="submit" disabled=${!unbound.length}>Associate</button>
    </form></main>`;
}

function Nav({ top }) {
  const key = session.get();
  const item = (name, label) => html`<li><a href=${href([name])} aria-current=${top === name ? 'page' : undefined}>${label}</a></li>`;
  return html`<header><a class="skip" href="#main">Skip to content</a><span class="brand">sagflow</span>
    <nav aria-label="Main"><ul>${item('flowlogs', 'Flow logs')}${item('gateways', 'Gateways')}</ul></nav>
    <span class="who">${key.akid} · ${key.region}</span>
    <button type="button" onClick=${() => { session.clear(); go(['signin']); }}>Sign out</button></header>`;
}

function App() {
  const { parts, q } = useRoute();
  if (!session.get() || parts[0] === 'signin') return html`<${SignIn} />`;
  const [top, id, sub] = parts;
  let view;
  const kind = top === 'gateways' ? top : 'flowlogs';
  if (id && sub === 'traffic') view = html`<${Traffic} kind=${kind} id=${id} q=${q} />`;
  else if (id && sub === 'records') view = html`<${Records} kind=${kind} id=${id} q=${q} />`;
  else if (top === 'gateways') view = html`<${GatewayRoute} id=${id} />`;
  else if (id === 'new') view = html`<${NewFlowLog} />`;
  else if (id) view = html`<${FlowLogDetail} id=${id} q=${q} />`;
  else view = html`<${FlowLogs} q=${q} />`;
  return html`<${Nav} top=${top || 'flowlogs'} /><div class="page">${view}<${CallPanel} /></div>`;
}

const root = document.getElementById('app');
root.textContent = ''; // the "Loading…" placeholder
render(html`<${App} />`, root);
