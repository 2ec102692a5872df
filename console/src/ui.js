// Small shared pieces: hash routing (the URL holds the view's state), errors,
// the "call it made" panel.
import { html } from 'htm/preact';
import { useEffect, useState } from 'preact/hooks';
import { calls, onCall, rpc } from './api.js';
import { callTerraform, hasTerraform, popCoreSnippet } from './snippets.js';

// "#/flowlogs/fl-1/traffic?range=1h" → { parts: ['flowlogs','fl-1','traffic'], q: {range:'1h'} }
export function parseHash(h = location.hash) {
  const s = h.replace(/^#\/?/, '');
  const i = s.indexOf('?');
  const path = i < 0 ? s : s.slice(0, i);
  const q = Object.fromEntries(new URLSearchParams(i < 0 ? '' : s.slice(i + 1)));
  return { parts: path.split('/').filter(Boolean).map(decodeURIComponent), q };
}

export function href(parts, q = {}) {
  const qs = new URLSearchParams(Object.entries(q).filter(([, v]) => v !== undefined && v !== '')).toString();
  return '#/' + parts.map(encodeURIComponent).join('/') + (qs ? '?' + qs : '');
}

export function go(parts, q) { location.hash = href(parts, q); }

export function useRoute() {
  const [r, setR] = useState(parseHash());
  useEffect(() => {
    const f = () => setR(parseHash());
    addEventListener('hashchange', f);
    return () => removeEventListener('hashchange', f);
  }, []);
  return r;
}

export function ErrorBox({ err }) {
  if (!err) return null;
  return html`<div class="error" role="alert">
    <strong class="code">${err.code || 'Error'}</strong>${err.status ? html` <span class="muted">(HTTP ${err.status})</span>` : ''}
    <div class="msg">${err.msg ?? err.message}</div></div>`;
}

export function Field({ label, id, children, hint }) {
  return html`<div class="field"><label for=${id}>${label}</label>${children}${hint ? html`<small class="muted">${hint}</small>` : ''}</div>`;
}

function callLine(c) {
  if (c.kind === 'sls') return `GetLogs /sls/${c.project}/logstores/${c.logstore} query=${c.params.query ?? ''}`;
  const p = Object.entries(c.params).filter(([k]) => k !== 'RegionId').map(([k, v]) => `${k}=${v}`).join(' ');
  return `${c.action} ${p}`;
}

// A snippet with its copy button ("Copy as NAME"); says when it was copied.
export function Snippet({ name, text, label }) {
  const [copied, setCopied] = useState(false);
  const copy = () => navigator.clipboard?.writeText(text).then(() => setCopied(true), () => setCopied(false));
  return html`<pre aria-label=${label} data-snippet=${name}>${text}</pre>
    <button type="button" onClick=${copy}>Copy as ${name}</button> <span class="muted" role="status">${copied ? 'copied' : ''}</span>`;
}

// One call: what was sent, and the same call as code to copy (pop-core or
// @alicloud/log; Terraform for the flow-log calls its resource covers).
export function CallBox({ call: c, open }) {
  if (!c) return null;
  const line = callLine(c);
  const first = c.kind === 'sls' ? '@alicloud/log' : 'pop-core';
  return html`<details class="call" open=${open}><summary><span class=${c.status >= 400 ? 'bad' : 'ok'}>${c.status}</span> <code>${line}</code></summary>
    <${Snippet} name=${first} text=${popCoreSnippet(c)} label=${`${c.action} as ${first}`} />
    ${hasTerraform(c) ? html`<${Snippet} name="Terraform" text=${callTerraform(c)} label=${`${c.action} as Terraform`} />` : ''}</details>`;
}

// Keys keep an opened call open while newer calls push it down the list.
const callKeys = new WeakMap();
let callSeq = 0;
const callKey = (c) => callKeys.get(c) ?? (callKeys.set(c, ++callSeq), callSeq);

// The calls this tab made, newest first; each can be copied as a snippet.
export function CallPanel() {
  const [, setN] = useState(0);
  useEffect(() => onCall(() => setN((n) => n + 1)), []);
  if (!calls.length) return null;
  return html`<aside class="calls" aria-label="Calls made">
    <h2>Calls made</h2>
    <ol>${calls.slice(0, 6).map((c) => html`<li key=${callKey(c)}><${CallBox} call=${c} /></li>`)}</ol></aside>`;
}

// A call's answer as component state: [data, error, reload].
export function useCall(action, params, deps) {
  const [st, setSt] = useState({ data: null, err: null });
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let live = true;
    rpc(action, params).then((data) => live && setSt({ data, err: null }), (err) => live && setSt({ data: null, err }));
    return () => { live = false; };
  }, [...deps, tick]);
  return [st.data, st.err, () => setTick((t) => t + 1)];
}

export function fmtBytes(n) {
  n = Number(n) || 0;
  const u = ['B', 'KB', 'MB', 'GB', 'TB'];
  let i = 0;
  while (n >= 1000 && i < u.length - 1) { n /= 1000; i++; }
  return `${i ? n.toFixed(1) : n} ${u[i]}`;
}
