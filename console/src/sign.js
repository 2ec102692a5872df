// Request signing in the browser with WebCrypto (docs/console.md, "Signing").
// RPC: V3 ACS3-HMAC-SHA256 (spec smartag-api.md §5.4). Log Service: LOG V4
// SLS4-HMAC-SHA256 with x-log-date (spec log-service.md §1.2): a browser may set
// neither Host nor Date, and V4 needs neither to be chosen by the caller.
const enc = new TextEncoder();
export const EMPTY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

const hex = (buf) => Array.from(new Uint8Array(buf), (b) => b.toString(16).padStart(2, '0')).join('');
const bytes = (s) => (typeof s === 'string' ? enc.encode(s) : s);

export async function sha256hex(s) {
  return hex(await crypto.subtle.digest('SHA-256', bytes(s)));
}

async function hmac(key, msg) {
  const k = await crypto.subtle.importKey('raw', bytes(key), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
  return new Uint8Array(await crypto.subtle.sign('HMAC', k, bytes(msg)));
}

// RFC 3986 percent-encoding (unreserved kept): what both signatures canonicalise with.
export function pct(s) {
  return encodeURIComponent(String(s)).replace(/[!'()*]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase());
}

export function canonicalQuery(params) {
  return Object.keys(params).sort().map((k) => `${pct(k)}=${pct(params[k])}`).join('&');
}

function nonce() {
  return hex(crypto.getRandomValues(new Uint8Array(16)));
}

// Headers for an RPC call: POST /?<query>, empty body, every parameter in the query.
export async function signRpc({ akid, secret, host, action, version, query, date = new Date() }) {
  const h = {
    host,
    'x-acs-action': action,
    'x-acs-content-sha256': EMPTY_SHA256,
    'x-acs-date': date.toISOString().replace(/\.\d+Z$/, 'Z'),
    'x-acs-signature-nonce': nonce(),
    'x-acs-version': version,
  };
  const names = Object.keys(h).sort();
  const canon = ['POST', '/', query, names.map((n) => `${n}:${h[n]}\n`).join(''), names.join(';'), EMPTY_SHA256]
    .join('\n');
  const sts = `ACS3-HMAC-SHA256\n${await sha256hex(canon)}`;
  const sig = hex(await hmac(secret, sts));
  delete h.host; // the browser sends it itself
  h.authorization = `ACS3-HMAC-SHA256 Credential=${akid},SignedHeaders=${names.join(';')},Signature=${sig}`;
  return h;
}

// Headers for a Log Service GET of path?query (query already canonical).
export async function signLogV4({ akid, secret, host, region, method = 'GET', path, query, date = new Date() }) {
  const stamp = date.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z'); // YYYYMMDDTHHMMSSZ
  const day = stamp.slice(0, 8);
  const h = {
    host,
    'x-log-apiversion': '0.6.0',
    'x-log-bodyrawsize': '0',
    'x-log-content-sha256': EMPTY_SHA256,
    'x-log-date': stamp,
  };
  const names = Object.keys(h).sort();
  const canon = [method, path, query, names.map((n) => `${n}:${h[n]}\n`).join(''), names.join(';'), EMPTY_SHA256]
    .join('\n');
  const scope = `${day}/${region}/sls/aliyun_v4_request`;
  const sts = `SLS4-HMAC-SHA256\n${stamp}\n${scope}\n${await sha256hex(canon)}`;
  let key = await hmac('aliyun_v4' + secret, day);
  for (const part of [region, 'sls', 'aliyun_v4_request']) key = await hmac(key, part);
  const sig = hex(await hmac(key, sts));
  delete h.host;
  h.authorization = `SLS4-HMAC-SHA256 Credential=${akid}/${scope},Signature=${sig}`;
  return h;
}
