// Log Service helpers for the e2e tests: the two npm clients pointed at a
// running serve, a raw signed request for what no client sends (lz4 bodies,
// bad headers), and LogGroup encoding with the .proto @alicloud/log ships.
//
// @alicloud/log gets a per-call http.Agent whose lookup pins 127.0.0.1 (spec
// log-service.md §5.5), so "<project>.sls.localhost" needs no DNS entry.
// @alicloud/sls20201230 has no such hook: for it the test process resolves
// *.sls.localhost to 127.0.0.1 through dns.lookup (a harness-only shim; the
// client is unmodified). Users write a hosts/DNS entry instead (README).
import { createHash, createHmac } from 'node:crypto';
import dns from 'node:dns';
import http from 'node:http';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
export const LogClient = require('@alicloud/log');
export const Sls = require('@alicloud/sls20201230');
const { $OpenApiUtil } = require('@alicloud/openapi-core');
const protobuf = require('protobufjs');
const lz4 = require('lz4-napi');

export const DOMAIN = 'sls.localhost';

const pin = (h, o, cb) => (o && o.all ? cb(null, [{ address: '127.0.0.1', family: 4 }]) : cb(null, '127.0.0.1', 4));
export const agent = new http.Agent({ keepAlive: true, lookup: pin });

const realLookup = dns.lookup;
dns.lookup = (host, opts, cb) => {
  if (typeof opts === 'function') { cb = opts; opts = {}; }
  if (host === DOMAIN || host.endsWith(`.${DOMAIN}`)) return pin(host, opts, cb);
  return realLookup(host, opts, cb);
};

export function logClient(srv, akid, secret) {
  return new LogClient({ accessKeyId: akid, accessKeySecret: secret, endpoint: `http://${DOMAIN}:${srv.port}` });
}

export function slsClient(srv, akid, secret, extra = {}) {
  return new Sls.default(new $OpenApiUtil.Config({ accessKeyId: akid, accessKeySecret: secret,
    endpoint: `${DOMAIN}:${srv.port}`, protocol: 'http', ...extra }));
}

const root = protobuf.loadSync(require.resolve('@alicloud/log/lib/sls.proto'));
const LogGroup = root.lookupType('sls.LogGroup');

// {logs: [{time, content: {k: v}}], topic, source, tags: {k: v}} -> protobuf bytes
export function encodeGroup({ logs, topic, source, tags = {} }) {
  return Buffer.from(LogGroup.encode(LogGroup.create({
    Logs: logs.map((l) => ({ Time: l.time, Contents: Object.entries(l.content).map(([Key, Value]) => ({ Key, Value })) })),
    Topic: topic, Source: source,
    LogTags: Object.entries(tags).map(([Key, Value]) => ({ Key, Value })),
  })).finish());
}

// The raw LZ4 block SLS expects: lz4-napi prepends a 4-byte size (spec §1.4).
export function lz4Block(buf) {
  return lz4.compressSync(buf).subarray(4);
}

// A V1-signed request (hmac-sha1) with any headers and body; returns
// { status, headers, body (string), json }. target: the request line's target
// instead of path (an absolute-form 'http://host/path'); host: the Host header.
export function rawRequest(srv, { method = 'POST', project, path, query = '', headers = {}, body = Buffer.alloc(0),
  akid, secret, date = new Date().toUTCString(), sign = true, declaredLength, target, host }) {
  const h = { date, 'x-log-apiversion': '0.6.0', 'x-log-signaturemethod': 'hmac-sha1', ...headers };
  for (const k of Object.keys(h)) if (h[k] === undefined || h[k] === null) delete h[k];
  if (body.length && !('content-md5' in headers)) h['content-md5'] = createHash('md5').update(body).digest('hex').toUpperCase();
  const canon = Object.keys(h).filter((k) => k.startsWith('x-log-') || k.startsWith('x-acs-')).sort()
    .map((k) => `${k}:${String(h[k]).trim()}\n`).join('');
  const params = new URLSearchParams(query);
  const pairs = [...params].map(([k, v]) => `${k}=${v}`).sort();
  const resource = path + (pairs.length ? `?${pairs.join('&')}` : '');
  const sts = `${method}\n${h['content-md5'] || ''}\n${h['content-type'] || ''}\n${h.date || ''}\n${canon}${resource}`;
  if (sign) h.authorization = `LOG ${akid}:${createHmac('sha1', secret).update(sts).digest('base64')}`;
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: srv.port, method, path: (target || path) + (query ? `?${query}` : ''),
      headers: { ...h, host: host || `${project ? `${project}.` : ''}${DOMAIN}:${srv.port}`,
        'content-length': declaredLength ?? body.length } },
    (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        if (declaredLength !== undefined) req.destroy();
        const text = Buffer.concat(chunks).toString('utf8');
        let json = null;
        try { json = JSON.parse(text); } catch { /* not JSON */ }
        resolve({ status: res.statusCode, headers: res.headers, body: text, json });
      });
    });
    req.on('error', reject);
    // declaredLength: announce a body but send none; the answer must come from the headers alone.
    if (declaredLength !== undefined) req.flushHeaders(); else req.end(body);
  });
}
