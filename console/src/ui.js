// Small shared pieces: hash routing (the URL holds the view's state), errors,
// the "call it made" panel.
import { html } from 'htm/preact';
import { useEffect, useState } from 'preact/hooks';
import { calls, onCall, popCoreSnippet } from './api.js';

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

// The calls this tab made, newest first; each can be copied as a snippet.
export function CallPanel() {
  const [, setN] = useState(0);
  useEffect(() => onCall(() => setN((n) => n + 1)), []);
  if (!calls.length) return null;
  return html`<aside class="calls" aria-label="Calls made">
    <h2>Calls made</h2>
    <ol>${calls.slice(0, 6).map((c) => html`<li>
      <details><summary><span class=${c.status >= 400 ? 'bad' : 'ok'}>${c.status}</span> <code>${callLine(c)}</code></summary>
      <pre>${popCoreSnippet(c)}</pre>
      <button type="button" onClick=${() => navigator.clipboard?.writeText(popCoreSnippet(c))}>Copy as snippet</button>
      </details></li>`)}</ol></aside>`;
}

export function fmtBytes(n) {
  n = Number(n) || 0;
  const u = ['B', 'KB', 'MB', 'GB', 'TB'];
  let i = 0;
  while (n >= 1000 && i < u.length - 1) { n /= 1000; i++; }
  return `${i ? n.toFixed(1) : n} ${u[i]}`;
}
