// The real clients, configured for a test server, plus a hand-built V1 signer
// for the request shape pop-core and openapi-client cannot produce (tea-rpc /
// Terraform: common params in the query, API params in a form body, '+' spaces).
import { createHash, createHmac, randomUUID } from 'node:crypto';
import { createRequire } from 'node:module';
import http from 'node:http';
import https from 'node:https';
import { TEST_AKID, TEST_SECRET } from './server.mjs';

const require = createRequire(import.meta.url);
const RPCClient = require('@alicloud/pop-core');
const OpenApi = require('@alicloud/openapi-client');
const Util = require('@alicloud/tea-util');

export const API_VERSION = '2018-03-13';
const TIMEOUT_MS = 10000;

// pop-core 1.8.0 (V1 HMAC-SHA1). call(action, params, {method:'POST'}) → body.
export function popCore(srv, { akid = TEST_AKID, secret = TEST_SECRET } = {}) {
  const c = new RPCClient({ accessKeyId: akid, accessKeySecret: secret, endpoint: srv.url,
    apiVersion: API_VERSION });
  return {
    client: c,
    call: (action, params = {}, opts = {}) => c.request(action, params, { timeout: TIMEOUT_MS, ...opts }),
  };
}

// openapi-client 0.4.15: V3 (ACS3-HMAC-SHA256) by default, { v2: true } for
// signatureAlgorithm 'v2' (V1 HMAC-SHA1 in the query). call → {statusCode, body, headers}.
export function openApi(srv, { akid = TEST_AKID, secret = TEST_SECRET, v2 = false } = {}) {
  const protocol = srv.url.startsWith('https:') ? 'https' : 'http';
  const cfg = { accessKeyId: akid, accessKeySecret: secret, endpoint: srv.endpoint,
    protocol, regionId: 'cn-shanghai' };
  if (v2) cfg.signatureAlgorithm = 'v2';
  const c = new OpenApi.default(new OpenApi.Config(cfg));
  return {
    client: c,
    call(action, query = {}, { body, method = 'POST', version = API_VERSION } = {}) {
      const params = new OpenApi.Params({ action, version, protocol: protocol.toUpperCase(), pathname: '/',
        method, authType: 'AK', style: 'RPC', reqBodyType: 'formData', bodyType: 'json' });
      const req = new OpenApi.OpenApiRequest(body ? { query, body } : { query });
      return c.callApi(params, req, new Util.RuntimeOptions({ readTimeout: TIMEOUT_MS,
        connectTimeout: TIMEOUT_MS }));
    },
  };
}

// A secret that differs from `secret`: its first character replaced by
// another one. ('x' + secret.slice(1) is the secret itself whenever it begins
// with 'x', 1 in 62 generated secrets: that was issue 9's "deleted key accepted".)
export function wrongSecret(secret) {
  return (secret[0] === 'x' ? 'y' : 'x') + secret.slice(1);
}

// §5.3 percent-encoding.
export function percentEncode(s) {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase());
}

// Go's url.Values.Encode: sorted, spaces as '+'.
export function goFormEncode(obj) {
  return Object.keys(obj).sort().map((k) => `${goEscape(k)}=${goEscape(obj[k])}`).join('&');
}
function goEscape(s) {
  return encodeURIComponent(String(s)).replace(/[!'()*]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase())
    .replace(/%20/g, '+');
}

export function isoNow(offsetSec = 0) {
  return new Date(Date.now() + offsetSec * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

// The V1 signature over merged params (everything but Signature).
export function signV1(method, params, secret = TEST_SECRET) {
  const cq = Object.keys(params).filter((k) => k !== 'Signature').sort()
    .map((k) => `${percentEncode(k)}=${percentEncode(params[k])}`).join('&');
  const sts = `${method}&%2F&${percentEncode(cq)}`;
  return createHmac('sha1', secret + '&').update(sts).digest('base64');
}

// The common V1 parameters tea-rpc puts in the query (§6.4).
export function commonParams(action, { akid = TEST_AKID, timestamp = isoNow(), nonce = randomUUID(),
  version = API_VERSION, format = 'json' } = {}) {
  return { Action: action, Format: format, Timestamp: timestamp, Version: version, SignatureNonce: nonce,
    SignatureMethod: 'HMAC-SHA1', SignatureVersion: '1.0', AccessKeyId: akid };
}

// A tea-rpc/Terraform-shaped POST: common params (+Signature) in the query, API
// params form-encoded Go-style in the body. Returns {status, headers, text, json}.
export async function teaRpc(srv, action, apiParams = {}, { secret = TEST_SECRET, common = {} } = {}) {
  const q = commonParams(action, common);
  q.Signature = signV1('POST', { ...q, ...apiParams }, secret);
  const query = Object.keys(q).map((k) => `${percentEncode(k)}=${percentEncode(q[k])}`).join('&');
  return raw(srv, { method: 'POST', path: `/?${query}`, body: goFormEncode(apiParams),
    headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-acs-action': action,
      'x-acs-version': API_VERSION } });
}

// A plain HTTP request over node:http (full control of headers; tolerates the
// server answering and closing before the whole body was sent, as with 413).
// body may be a string or Buffer. Resolves {status, headers, text, json}.
// An https srv.url goes over node:https, trusting srv.ca when given (and
// otherwise Node's roots plus NODE_EXTRA_CA_CERTS); agent may be given to
// test keep-alive, and the answer then carries the socket's local port.
export function raw(srv, { method = 'GET', path = '/', body, headers = {}, agent = false, timeout = TIMEOUT_MS } = {}) {
  const secure = srv.url.startsWith('https:');
  const opts = { host: '127.0.0.1', port: srv.port, method, path, headers, agent, timeout };
  if (secure && srv.ca) opts.ca = srv.ca;
  return new Promise((resolve, reject) => {
    const req = (secure ? https : http).request(opts, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json = null;
        try { json = JSON.parse(text); } catch { /* XML or plain text */ }
        resolve({ status: res.statusCode, headers: res.headers, text, json, localPort: res.socket?.localPort });
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('request timed out')));
    // An early answer may reset the rest of our upload; the response still counts.
    req.on('error', (e) => { if (!req.res) reject(e); });
    if (body !== undefined) req.write(body);
    req.end();
  });
}

// A hand-built V3 (ACS3-HMAC-SHA256) request (§5.4), independent of openapi-util.
// opts.mutate(headers) may alter headers after signing (to test tampering);
// opts.signed narrows SignedHeaders.
export function v3Raw(srv, action, query = {}, { body = '', secret = TEST_SECRET, akid = TEST_AKID,
  date = isoNow(), nonce = randomUUID().replace(/-/g, ''), version = API_VERSION, signed, mutate,
  method = 'POST' } = {}) {
  const headers = { host: srv.endpoint, 'x-acs-action': action, 'x-acs-version': version,
    'x-acs-date': date, 'x-acs-signature-nonce': nonce, 'x-acs-content-sha256': sha256Hex(body) };
  if (body) headers['content-type'] = 'application/x-www-form-urlencoded';
  const names = (signed || Object.keys(headers)).slice().sort();
  const cq = Object.keys(query).sort().map((k) => `${percentEncode(k)}=${percentEncode(query[k])}`).join('&');
  const ch = names.map((n) => `${n}:${String(headers[n]).trim()}\n`).join('');
  const creq = [method, '/', cq, ch, names.join(';'), headers['x-acs-content-sha256']].join('\n');
  const sts = `ACS3-HMAC-SHA256\n${sha256Hex(creq)}`;
  const sig = createHmac('sha256', secret).update(sts).digest('hex');
  headers.authorization = `ACS3-HMAC-SHA256 Credential=${akid},SignedHeaders=${names.join(';')},Signature=${sig}`;
  if (mutate) mutate(headers);
  const qs = Object.keys(query).map((k) => `${percentEncode(k)}=${percentEncode(query[k])}`).join('&');
  return raw(srv, { method, path: qs ? `/?${qs}` : '/', body: body || undefined, headers });
}

export function sha256Hex(data) {
  return createHash('sha256').update(data).digest('hex');
}
