// Gateways: list, create, detail with their devices, bind and unbind serial
// numbers. Every field shown is the API's (docs/api.md, "Gateways").
//
// The device SecretKey: BindSerialNumber creates it, and the console shows it
// once, in a dialog right after the bind, read from the answer of the
// DescribeSmartAccessGatewayAttribute that follows. It lives only in that
// dialog's component state: never in sessionStorage, localStorage, the URL or
// a snippet, and it is gone when the dialog closes or the page reloads.
import { html } from 'htm/preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { rpc } from './api.js';
import { CallBox, ErrorBox, Field, go, href, useCall } from './ui.js';

const SPECS = ['sag-1000', 'sag-100wm', 'sag-vcpe'];
const HA_TYPES = ['no_backup', 'cold_backup', 'warm_backup'];
const PAGE_SIZE = 50; // the API's maximum (docs/api.md)

export function GatewayRoute({ id }) {
  if (id === 'new') return html`<${NewGateway} />`;
  return id ? html`<${GatewayDetail} id=${id} />` : html`<${Gateways} />`;
}

function Gateways() {
  const [data, err] = useCall('DescribeSmartAccessGateways', { PageSize: PAGE_SIZE }, []);
  const list = data?.SmartAccessGateways?.SmartAccessGateway ?? [];
  return html`<main id="main"><h1>Gateways</h1>
    <p><a class="button" href=${href(['gateways', 'new'])}>Create gateway</a></p>
    <${ErrorBox} err=${err} />
    <table class="stack"><caption>${data?.TotalCount ?? list.length} gateways</caption>
      <thead><tr>${['Id', 'Name', 'Model', 'Status', 'HA', 'Serial numbers'].map((c) => html`<th scope="col">${c}</th>`)}</tr></thead>
      <tbody>${list.map((g) => html`<tr><td data-label="Id"><a href=${href(['gateways', g.SmartAGId])}>${g.SmartAGId}</a></td>
        <td data-label="Name">${g.Name}</td><td data-label="Model">${g.HardwareVersion}</td>
        <td data-label="Status"><span class=${'status ' + g.Status}>${g.Status}</span></td>
        <td data-label="HA">${g.HaType ?? ''}</td><td data-label="Serial numbers">${g.SerialNumber ?? ''}</td></tr>`)}</tbody></table></main>`;
}

const select = (id, name, opts) => html`<select id=${id} name=${name}>${opts.map((o) => html`<option>${o}</option>`)}</select>`;

function NewGateway() {
  const [err, setErr] = useState(null);
  async function submit(e) {
    e.preventDefault();
    const p = {};
    for (const [k, v] of new FormData(e.target)) if (String(v) !== '') p[k] = String(v);
    try {
      const r = await rpc('CreateSmartAccessGateway', p);
      go(['gateways', r.SmartAGId]);
    } catch (x) { setErr(x); }
  }
  return html`<main id="main"><h1>Create gateway</h1>
    <form class="grid" onSubmit=${submit} aria-label="Create gateway">
      <${Field} label="Name" id="g-Name"><input id="g-Name" name="Name" /><//>
      <${Field} label="Description" id="g-Description"><input id="g-Description" name="Description" /><//>
      <${Field} label="HardWareSpec" id="g-HardWareSpec">${select('g-HardWareSpec', 'HardWareSpec', SPECS)}<//>
      <${Field} label="HaType" id="g-HaType">${select('g-HaType', 'HaType', HA_TYPES)}<//>
      <${Field} label="MaxBandWidth" id="g-MaxBandWidth" hint="Mbit/s, 1–10000"><input id="g-MaxBandWidth" name="MaxBandWidth" type="number" /><//>
      <div class="actions"><button type="submit">Create gateway</button></div>
      <${ErrorBox} err=${err} />
    </form></main>`;
}

// The devices table. The model and the online state are the gateway's (the
// API has them there, not per device); "Reported" is HcState "Normal". The
// API returns no last-report time, so none is shown. Never the SecretKey.
const DEV_COLS = [['Serial number', (d) => d.SerialNumber], ['Model', (d, g) => g.HardwareVersion],
  ['Firmware', (d) => d.SoftwareVersion || '—'], ['HA state', (d) => d.HaState || '—'],
  ['Online', (d, g) => online(g.Status)], ['Last report', (d) => d.LastReportTime || 'never'],
  ['SlsDelivery', (d) => slsDelivery(d.SlsDelivery)]];
// Gateway Status (docs/api.md): Init until a device reported, Active within the offline window, else Offline.
const online = (s) => ({ Active: 'online (Active)', Offline: 'offline (Offline)', Init: 'never reported (Init)' })[s] ?? s;
// SlsDelivery is {Status, Delivered, Queued, Dropped, LastError, LastErrorTime} (docs/api.md).
function slsDelivery(s) {
  if (!s || !s.Status) return '—';
  const counts = `${s.Status}: ${s.Delivered ?? 0} delivered, ${s.Queued ?? 0} queued, ${s.Dropped ?? 0} dropped`;
  return s.LastError ? `${counts}; last error ${s.LastError} (${s.LastErrorTime})` : counts;
}
const fmtProp = (k, v) => (/Time$/.test(k) && Number(v) > 1e11 ? new Date(Number(v)).toISOString() : String(v));

function GatewayDetail({ id }) {
  const [g, err, reload] = useCall('DescribeSmartAccessGatewayAttribute', { SmartAGId: id }, [id]);
  const [last, setLast] = useState(null); // {call, err} of the last action here
  const [key, setKey] = useState(null); // {serial, secret}: the new device's SecretKey, shown once
  const [confirm, setConfirm] = useState('');
  async function act(action, serial) {
    setConfirm('');
    try {
      const r = await rpc(action, { SmartAGId: id, SerialNumber: serial });
      setLast({ call: r.$call, err: null });
      if (action === 'BindSerialNumber') {
        const a = await rpc('DescribeSmartAccessGatewayAttribute', { SmartAGId: id });
        const d = (a.Devices?.Device ?? []).find((x) => x.SerialNumber === serial);
        if (d?.SecretKey) setKey({ serial, secret: d.SecretKey });
      }
      reload();
    } catch (x) { setLast({ call: x.call, err: x }); }
  }
  if (err) return html`<main id="main"><h1>Gateway ${id}</h1><${ErrorBox} err=${err} /></main>`;
  if (!g) return html`<main id="main"><h1>Gateway ${id}</h1><p>Loading…</p></main>`;
  const devs = g.Devices?.Device ?? [];
  const props = Object.entries(g).filter(([k, v]) => k !== 'Devices' && k !== 'RequestId' && typeof v !== 'object');
  const fls = g.FlowLogIds?.FlowLogId ?? [];
  return html`<main id="main"><h1>Gateway ${g.Name || id}</h1>
    <div class="actions"><a class="button" href=${href(['gateways', id, 'traffic'])}>Traffic</a></div>
    <dl class="props">${props.map(([k, v]) => html`<dt>${k}</dt><dd>${fmtProp(k, v)}</dd>`)}
      <dt>Flow logs</dt><dd>${fls.length ? fls.map((f) => html`<a href=${href(['flowlogs', f])}>${f}</a> `) : '—'}</dd></dl>
    <h2>Devices</h2>
    <table class="wide"><caption>${devs.length} device${devs.length === 1 ? '' : 's'}</caption>
      <thead><tr>${DEV_COLS.map(([c]) => html`<th scope="col">${c}</th>`)}<th scope="col"><span class="sr">Action</span></th></tr></thead>
      <tbody>${devs.map((d) => html`<tr>${DEV_COLS.map(([c, f]) => html`<td data-label=${c}>${f(d, g)}</td>`)}
        <td class="act">${confirm === d.SerialNumber
          ? html`<button class="danger" onClick=${() => act('UnbindSerialNumber', d.SerialNumber)}>Confirm unbind ${d.SerialNumber}</button>
            <button onClick=${() => setConfirm('')}>Keep it</button>`
          : html`<button onClick=${() => setConfirm(d.SerialNumber)} aria-label=${`Unbind ${d.SerialNumber}`}>Unbind</button>`}</td></tr>`)}</tbody></table>
    <form class="filters" aria-label="Bind a serial number" onSubmit=${(e) => { e.preventDefault(); act('BindSerialNumber', new FormData(e.target).get('sn').trim()); }}>
      <${Field} label="Serial number to bind" id="bind-sn"><input id="bind-sn" name="sn" required /><//>
      <button type="submit">Bind</button>
    </form>
    <${ErrorBox} err=${last?.err} />
    ${last?.call ? html`<h2>Call made</h2><${CallBox} call=${last.call} open />` : ''}
    ${key ? html`<${SecretDialog} k=${key} onClose=${() => setKey(null)} />` : ''}</main>`;
}

// A modal <dialog>: focus moves into it, Escape closes it (the browser's own
// handling), and closing drops the key from memory.
function SecretDialog({ k, onClose }) {
  const ref = useRef(null);
  const [copied, setCopied] = useState(false);
  useEffect(() => {
    const d = ref.current;
    d.showModal();
    d.addEventListener('close', onClose);
    return () => d.removeEventListener('close', onClose);
  }, []);
  return html`<dialog ref=${ref} aria-labelledby="secret-title" aria-describedby="secret-note">
    <h2 id="secret-title">SecretKey of device ${k.serial}</h2>
    <p id="secret-note">Shown once: copy it now. The console keeps it nowhere and will not show it again;
      the device reads it from <code>SAGFLOW_DEVICE_SECRET</code> (<code>sagflow agent --serial ${k.serial}</code>).</p>
    <p><output id="device-secret" class="secret" aria-label="SecretKey">${k.secret}</output></p>
    <div class="actions">
      <button type="button" onClick=${() => navigator.clipboard?.writeText(k.secret).then(() => setCopied(true))}>Copy SecretKey</button>
      <button type="button" autofocus onClick=${() => ref.current.close()}>Close</button>
      <span role="status" class="muted">${copied ? 'copied' : ''}</span>
    </div></dialog>`;
}
