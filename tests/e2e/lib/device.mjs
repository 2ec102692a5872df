// A device speaking the documented device channel (docs/device-protocol.md),
// written from the document alone: any serial number, SecretKey, model,
// firmware and HA state, so the firmware rules are exercised for real.
//
//   const d = device(srv, { serial: 'SN1', secret, model: 'sag-1000', version: '1.7.0', ha: 'active' });
//   const r = await d.sync();          // {status, json}; remembers ConfigVersion
//   await d.sync({ version: '1.6.0' }) // report a change
import { createHash, createHmac } from 'node:crypto';
import { raw, isoNow } from './clients.mjs';

export const SYNC_PATH = '/device/v1/sync';

export function sha256Hex(data) {
  return createHash('sha256').update(data).digest('hex');
}

// §3 of the document: the string to sign, and its HMAC-SHA256 in lowercase hex.
export function stringToSign({ method, path, serial, date, sequence, contentSha256 }) {
  return ['SAG-HMAC-SHA256', method, path, serial, date, String(sequence), contentSha256].join('\n');
}

// X-Sag-Sequence: strictly increasing (§2): milliseconds, or one more than the last.
let lastSeq = 0;
export function nextSequence() {
  lastSeq = Math.max(Date.now(), lastSeq + 1);
  return lastSeq;
}

export function signedHeaders({ serial, secret, body, method = 'POST', path = SYNC_PATH,
  date = isoNow(), sequence = nextSequence() }) {
  const contentSha256 = sha256Hex(body);
  const sig = createHmac('sha256', secret)
    .update(stringToSign({ method, path, serial, date, sequence, contentSha256 })).digest('hex');
  return {
    'content-type': 'application/json',
    'x-sag-serial-number': serial,
    'x-sag-date': date,
    'x-sag-sequence': String(sequence),
    'x-sag-content-sha256': contentSha256,
    authorization: `SAG-HMAC-SHA256 Signature=${sig}`,
  };
}

// One signed request; opts.mutate(headers) may tamper after signing.
export function deviceRequest(srv, { serial, secret, report, body, method = 'POST', path = SYNC_PATH,
  date, sequence, mutate } = {}) {
  const text = body !== undefined ? body : JSON.stringify(report);
  const headers = signedHeaders({ serial, secret, body: text, method, path, date, sequence });
  if (mutate) mutate(headers);
  // A long-poll sync may be held up to its Wait: the socket timeout covers it.
  const timeout = 10000 + 1000 * ((report && report.Wait) || 0);
  return raw(srv, { method, path, body: text, headers, timeout });
}

export function device(srv, { serial, secret, model = 'sag-1000', version = '1.7.0', ha } = {}) {
  const state = { serial, secret, model, version, ha, configVersion: '' };
  return {
    state,
    async sync(change = {}) {
      Object.assign(state, change);
      const report = { Model: state.model, SoftwareVersion: state.version };
      if (state.ha) report.HaState = state.ha;
      if (state.configVersion) report.ConfigVersion = state.configVersion;
      if (state.wait) report.Wait = state.wait; // long-poll (§5)
      const r = await deviceRequest(srv, { serial: state.serial, secret: state.secret, report });
      if (r.status === 200 && r.json) state.configVersion = r.json.ConfigVersion;
      return r;
    },
  };
}
