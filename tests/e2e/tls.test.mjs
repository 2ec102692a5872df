// serve --tls-cert/--tls-key: HTTPS on --listen for the RPC API and the device
// channel, checked with clients that verify the server against a CA the test
// makes with openssl (lib/pki.mjs): pop-core and openapi-client trusting it
// through NODE_EXTRA_CA_CERTS, curl --cacert, openssl s_client. Also what is
// refused at start (a key readable by others, a mismatched key, ...) and that
// bad connections to the TLS port (plain HTTP, garbage, a stalled handshake)
// harm no other connection.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BIN, startServer, stopClean } from './lib/server.mjs';
import { raw } from './lib/clients.mjs';
import { makePki } from './lib/pki.mjs';

const CONN_TIMEOUT_S = 30; // HTTP_CONN_TIMEOUT_S in src/http/http.h
const CLIENT = new URL('./lib/tls-client.mjs', import.meta.url).pathname;

let pki;
let srv;
let stalled; // a connection that began a TLS record and then said nothing
before(async () => {
  pki = makePki(mkdtempSync(join(tmpdir(), 'sagflow-tls-')));
  srv = await startServer({ tls: { cert: pki.chain, key: pki.key, ca: pki.root } });
  stalled = stallHandshake(srv.port);
});
after(async () => {
  stalled?.socket.destroy();
  await stopClean(srv);
  rmSync(pki.dir, { recursive: true, force: true });
});

// Opens a TCP connection and sends the first bytes of a TLS record header, no
// more: the server is left waiting inside the handshake.
function stallHandshake(port) {
  const socket = net.connect(port, '127.0.0.1');
  const opened = Date.now();
  socket.on('connect', () => socket.write(Buffer.from([0x16, 0x03, 0x01, 0x00, 0x80])));
  socket.on('error', () => {});
  socket.resume(); // read (the server's alert), or the server's close is never seen
  const closed = new Promise((resolve) => socket.on('close', () => resolve(Date.now() - opened)));
  return { socket, closed };
}

// Sends bytes on a raw TCP connection; resolves with what came back once the
// server closes it (or rejects after ms).
function rawExchange(port, bytes, ms = 10000) {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => socket.write(bytes));
    const got = [];
    const timer = setTimeout(() => { socket.destroy(); reject(new Error('the server kept the connection open')); }, ms);
    socket.on('data', (d) => got.push(d));
    socket.on('error', () => {}); // a reset counts as closed
    socket.on('close', () => { clearTimeout(timer); resolve(Buffer.concat(got)); });
  });
}

function run(cmd, args, { env, input } = {}) {
  return new Promise((resolve) => {
    const p = execFile(cmd, args, { env, encoding: 'utf8', timeout: 60000 }, (err, stdout, stderr) =>
      resolve({ code: err ? (err.code ?? 1) : 0, stdout, stderr }));
    // A child that exits before reading (s_client refusing TLS 1.0 at once, on
    // a loaded machine) closes the pipe: EPIPE here is not the test's failure.
    p.stdin.on('error', () => {});
    if (input !== undefined) p.stdin.end(input);
  });
}

function childEnv(extraCa) {
  const env = { ...process.env };
  delete env.NODE_EXTRA_CA_CERTS;
  if (extraCa) env.NODE_EXTRA_CA_CERTS = extraCa;
  return env;
}

test('pop-core (V1), openapi-client (V3) and a device work over HTTPS, trusting the CA through NODE_EXTRA_CA_CERTS', async () => {
  const r = await run(process.execPath, [CLIENT, srv.url], { env: childEnv(pki.root) });
  assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
  const out = JSON.parse(r.stdout);
  assert.ok(out.regions > 0);
  assert.equal(out.v3.status, 200);
  assert.deepEqual(out.v3.ids, [out.flowLogId]);
  assert.deepEqual(out.device, { status: 200, changed: true, flowLogId: out.flowLogId });
  // The same client without the CA refuses the server: the trust is what made it work.
  const untrusted = await run(process.execPath, [CLIENT, srv.url], { env: childEnv(null) });
  assert.equal(untrusted.code, 1, untrusted.stdout);
  const e = JSON.parse(untrusted.stdout);
  assert.match(`${e.code} ${e.error}`, /UNABLE_TO_GET_ISSUER_CERT_LOCALLY|unable to get local issuer certificate/, untrusted.stdout);
});

test('curl verifies the chain against the root CA (IP and DNS names) and refuses it without --cacert', async () => {
  for (const host of ['127.0.0.1', 'localhost']) {
    const r = await run('curl', ['-sS', '--cacert', pki.root, `https://${host}:${srv.port}/healthz`]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), 'ok');
  }
  const r = await run('curl', ['-sS', `https://127.0.0.1:${srv.port}/healthz`]);
  assert.equal(r.code, 60, 'curl exit 60: peer certificate cannot be authenticated');
  // The intermediate comes from the server: trusting the root alone is enough
  // only because the chain file holds it.
  const leafOnly = await run('openssl', ['verify', '-CAfile', pki.root, pki.chain]);
  assert.notEqual(leafOnly.code, 0, 'the server certificate alone does not verify against the root');
  const withInt = await run('openssl', ['verify', '-CAfile', pki.root, '-untrusted', pki.int, pki.chain]);
  assert.equal(withInt.code, 0, withInt.stdout + withInt.stderr);
});

test('keep-alive: consecutive requests share one TLS connection', async () => {
  const agent = new https.Agent({ keepAlive: true, maxSockets: 1 });
  try {
    const first = await raw(srv, { path: '/healthz', agent });
    const second = await raw(srv, { path: '/healthz', agent });
    assert.equal(first.status, 200);
    assert.equal(second.status, 200);
    assert.equal(first.localPort, second.localPort, 'the second request reused the connection');
  } finally {
    agent.destroy();
  }
});

test('plain HTTP and garbage on the TLS port get no answer and harm no other connection', async () => {
  const plain = rawExchange(srv.port, 'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
  const garbage = rawExchange(srv.port, Buffer.alloc(512, 0x41));
  const good = Promise.all(Array.from({ length: 20 }, () => raw(srv, { path: '/healthz' })));
  const [p, g, ok] = await Promise.all([plain, garbage, good]);
  assert.ok(!p.toString('latin1').includes('HTTP/'), `no HTTP answer in clear: ${p.toString('latin1')}`);
  assert.ok(!g.toString('latin1').includes('HTTP/'));
  for (const r of ok) assert.equal(r.status, 200);
  assert.equal((await raw(srv, { path: '/healthz' })).text.trim(), 'ok');
});

// s_client at security level 0, so that OpenSSL itself would offer TLS 1.0/1.1.
async function sClient(version) {
  return run('openssl', ['s_client', '-connect', `127.0.0.1:${srv.port}`, `-${version}`, '-CAfile', pki.root,
    '-verify_return_error', '-cipher', 'DEFAULT@SECLEVEL=0'], { input: '' });
}

test('TLS 1.2 and 1.3 are accepted, 1.0 and 1.1 refused (openssl s_client)', async () => {
  for (const v of ['tls1_2', 'tls1_3']) {
    const r = await sClient(v);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /New, TLSv1\.[23], Cipher is /, v);
    assert.match(r.stdout, /Verify return code: 0 \(ok\)/);
  }
  for (const v of ['tls1', 'tls1_1']) {
    const r = await sClient(v);
    if (/unknown option|not supported/i.test(r.stderr)) continue; // an OpenSSL built without them
    assert.notEqual(r.code, 0, `${v} was accepted: ${r.stdout}`);
    assert.match(r.stdout, /Cipher is \(NONE\)/, v);
  }
});

// serve with these arguments, expected to exit at once: {status, stderr}, and
// whether it left a database behind (it must not).
function serveOnce(args) {
  const dir = mkdtempSync(join(tmpdir(), 'sagflow-tls-refuse-'));
  const db = join(dir, 'x.db');
  const r = spawnSync(BIN, ['serve', '--listen', '127.0.0.1:0', '--db', db, ...args], { encoding: 'utf8',
    timeout: 20000 });
  const dbCreated = existsSync(db);
  rmSync(dir, { recursive: true, force: true });
  return { status: r.status, stderr: r.stderr, dbCreated };
}

test('bad TLS files are refused at start with a clear message, naming the file, never the key', () => {
  const d = pki.dir;
  const loose = join(d, 'loose.key');
  copyFileSync(pki.key, loose);
  chmodSync(loose, 0o644);
  const groupOnly = join(d, 'group.key');
  copyFileSync(pki.key, groupOnly);
  chmodSync(groupOnly, 0o640);
  const unsorted = join(d, 'unsorted.pem');
  writeFileSync(unsorted, readFileSync(pki.int, 'utf8') + readFileSync(pki.server, 'utf8'));
  const big = join(d, 'big.pem');
  writeFileSync(big, readFileSync(pki.chain, 'utf8').repeat(60)); // > 64 KiB
  const enc = join(d, 'enc.key');
  spawnSync('openssl', ['pkey', '-in', pki.key, '-aes256', '-passout', 'pass:x', '-out', enc]);
  chmodSync(enc, 0o600);
  const empty = join(d, 'empty.key');
  writeFileSync(empty, '', { mode: 0o600 });
  const cases = [
    [['--tls-cert', pki.chain], 2, /--tls-cert and --tls-key go together/],
    [['--tls-key', pki.key], 2, /--tls-cert and --tls-key go together/],
    [['--tls-cert', pki.chain, '--tls-key', loose], 1,
      new RegExp(`key file '${loose}' is accessible by group or others \\(mode 0644\\).*chmod 600 '${loose}'`)],
    [['--tls-cert', pki.chain, '--tls-key', groupOnly], 1, /\(mode 0640\)/],
    [['--tls-cert', pki.chain, '--tls-key', pki.other], 1,
      new RegExp(`the key in '${pki.other}' does not belong to the first certificate in '${pki.chain}'`)],
    [['--tls-cert', join(d, 'missing.pem'), '--tls-key', pki.key], 1,
      /cannot open certificate file '.*missing\.pem': No such file or directory/],
    [['--tls-cert', pki.chain, '--tls-key', d], 1, /key file '.*' is not a regular file/],
    [['--tls-cert', pki.key, '--tls-key', pki.key], 1, /certificate file '.*' holds no usable PEM certificate/],
    [['--tls-cert', unsorted, '--tls-key', pki.key], 1, /out of order: the server's certificate must come first/],
    [['--tls-cert', big, '--tls-key', pki.key], 1, /is larger than 65536 bytes/],
    [['--tls-cert', pki.chain, '--tls-key', enc], 1, /key file '.*enc\.key' is encrypted/],
    [['--tls-cert', pki.chain, '--tls-key', empty], 1, /key file '.*' holds no usable PEM private key/],
  ];
  const keyLines = [pki.key, pki.other, enc].flatMap((f) => readFileSync(f, 'utf8').split('\n'))
    .filter((l) => l.length > 20 && !l.startsWith('-----'));
  for (const [args, status, re] of cases) {
    const r = serveOnce(args);
    assert.equal(r.status, status, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, re, args.join(' '));
    assert.equal(r.dbCreated, false, `${args.join(' ')} left a database behind`);
    for (const l of keyLines) assert.ok(!r.stderr.includes(l), 'key material in the log');
    assert.ok(!/PRIVATE KEY-----/.test(r.stderr));
  }
});

test('serve --help documents --tls-cert and --tls-key', () => {
  const r = spawnSync(BIN, ['serve', '--help'], { encoding: 'utf8' });
  assert.equal(r.status, 0);
  assert.match(r.stdout, /--tls-cert FILE/);
  assert.match(r.stdout, /--tls-key FILE/);
  assert.match(r.stdout, /chmod 600/);
});

// Last: by now the connection opened in before() has sat in its handshake
// while every test above was served.
test(`a stalled handshake is dropped after the connection timeout (${CONN_TIMEOUT_S} s)`, { timeout: (CONN_TIMEOUT_S + 20) * 1000 }, async () => {
  const limit = new Promise((_, reject) => setTimeout(() => reject(new Error('still open')), (CONN_TIMEOUT_S + 15) * 1000).unref());
  const ms = await Promise.race([stalled.closed, limit]);
  assert.ok(ms >= (CONN_TIMEOUT_S - 1) * 1000, `closed after ${ms} ms: before the timeout, so not by it`);
  assert.equal((await raw(srv, { path: '/healthz' })).text.trim(), 'ok');
});
