// The console's only way out: signed calls to its own origin (RPC at "/", the
// Log Service at "/sls/<project>/..."). Every call is recorded for "the call
// it made" panels; the secret never leaves sessionStorage and this module.
import { canonicalQuery, signLogV4, signRpc } from './sign.js';

export const VERSION = '2018-03-13';
const KEY = 'sagflow.console.key';

export const session = {
  get() {
    try { return JSON.parse(sessionStorage.getItem(KEY)); } catch { return null; }
  },
  set(k) { sessionStorage.setItem(KEY, JSON.stringify(k)); },
  clear() { sessionStorage.removeItem(KEY); },
};

export class ApiError extends Error {
  constructor(status, code, message, call) {
    super(`${code}: ${message}`);
    Object.assign(this, { status, code, msg: message, call });
  }
}

const listeners = new Set();
export const calls = [];
export function onCall(fn) { listeners.add(fn); return () => listeners.delete(fn); }
function record(c) {
  calls.unshift(c);
  calls.length = Math.min(calls.length, 20);
  for (const fn of listeners) fn(c);
}

async function parse(res) {
  const text = await res.text();
  try { return JSON.parse(text); } catch { return { raw: text }; }
}

// One RPC action; resolves to the answer's JSON, rejects with ApiError.
export async function rpc(action, params = {}, key = session.get()) {
  if (!key) throw new ApiError(0, 'NotSignedIn', 'Sign in with an AccessKey first.', null);
  const p = { RegionId: key.region, ...params };
  for (const k of Object.keys(p)) if (p[k] === undefined || p[k] === null) delete p[k];
  const query = canonicalQuery(p);
  const headers = await signRpc({ akid: key.akid, secret: key.secret, host: location.host, action, version: VERSION, query });
  const call = { kind: 'rpc', action, params: p, at: new Date().toISOString() };
  const res = await fetch(`/?${query}`, { method: 'POST', headers: { ...headers, accept: 'application/json' }, credentials: 'omit' });
  const body = await parse(res);
  call.status = res.status;
  call.requestId = body.RequestId;
  record(call);
  if (!res.ok || body.Code) throw new ApiError(res.status, body.Code || `HTTP${res.status}`, body.Message || body.raw || '', call);
  return body;
}

// GetLogs over a flow log's logstore: rows (array of objects) and the x-log-* headers.
export async function getLogs({ project, logstore, region, from, to, query, line, offset, reverse }, key = session.get()) {
  const params = { type: 'log', from: String(from), to: String(to) };
  if (query !== undefined) params.query = query;
  if (line !== undefined) params.line = String(line);
  if (offset !== undefined) params.offset = String(offset);
  if (reverse !== undefined) params.reverse = String(reverse);
  const path = `/sls/${project}/logstores/${logstore}`;
  const q = canonicalQuery(params);
  const headers = await signLogV4({ akid: key.akid, secret: key.secret, host: location.host, region, path, query: q });
  const call = { kind: 'sls', action: 'GetLogs', project, logstore, region, params, at: new Date().toISOString() };
  const res = await fetch(`${path}?${q}`, { headers: { ...headers, accept: 'application/json' }, credentials: 'omit' });
  const body = await parse(res);
  call.status = res.status;
  call.requestId = res.headers.get('x-log-requestid');
  record(call);
  if (!res.ok) throw new ApiError(res.status, body.errorCode || `HTTP${res.status}`, body.errorMessage || body.raw || '', call);
  return { rows: Array.isArray(body) ? body : [], count: Number(res.headers.get('x-log-count') ?? 0),
    progress: res.headers.get('x-log-progress') };
}

// The call as a pop-core snippet (what a user can paste into Node).
export function popCoreSnippet(c) {
  if (c.kind === 'sls') {
    return `// @alicloud/log\nclient.getLogs(${JSON.stringify(c.project)}, ${JSON.stringify(c.logstore)}, ` +
      `new Date(${Number(c.params.from) * 1000}), new Date(${Number(c.params.to) * 1000}), ` +
      `${JSON.stringify({ query: c.params.query, line: c.params.line, offset: c.params.offset, reverse: c.params.reverse })})`;
  }
  return `// @alicloud/pop-core, apiVersion '${VERSION}'\n` +
    `client.request(${JSON.stringify(c.action)}, ${JSON.stringify(c.params, null, 2)}, { method: 'POST' })`;
}
