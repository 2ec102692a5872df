// sagflow meter end to end: generated captures (with expected records
// computed by the generator's own reference of the aging rules) replayed by
// the real binary into real collectors: nfcapd/nfdump for totals and sequence
// numbers, dumpcap + tshark for the wire format, and the JSON-lines sink for
// record-by-record comparison.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, readFileSync, mkdirSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createSocket } from 'node:dgram';
import { setTimeout as sleep } from 'node:timers/promises';
import { scenario, reference, totals, writePcap, LINK, T0 } from './lib/pcapgen.mjs';
import { startNfcapd, nfdumpStats, startDumpcap, tsharkCheck, freeUdpPort } from './lib/collector.mjs';

const BIN = process.env.SAGFLOW_BIN ?? resolve('build-test/sagflow');
const ACTIVE = 60, INACTIVE = 10;
let dir, pcap, packets, expected;

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'sagflow-meter-'));
  packets = scenario();
  pcap = join(dir, 'scenario.pcap');
  writePcap(pcap, packets);
  expected = reference(packets, ACTIVE, INACTIVE);
});

after(() => rmSync(dir, { recursive: true, force: true }));

function run(args, opts = {}) {
  return spawnSync(BIN, ['meter', ...args], { encoding: 'utf8', timeout: 60000, ...opts });
}

function stat(stderr, name) {
  const m = new RegExp(`^${name}: (\\d+)$`, 'm').exec(stderr);
  assert.ok(m, `statistic '${name}' missing in:\n${stderr}`);
  return Number(m[1]);
}

// Only complete lines: a live meter may be in the middle of writing the last one.
function readJsonl(path) {
  const lines = readFileSync(path, 'utf8').split('\n');
  lines.pop(); // '' after the final newline, or a line still being written
  return lines.filter(Boolean).map((l) => JSON.parse(l));
}

// A record reduced to what both sides know exactly.
function sig(proto, src, sport, dst, dport, first, last, pk, by) {
  return `${proto} ${src}:${sport}>${dst}:${dport} ${first} ${last} ${pk} ${by}`;
}

function addrText(hex, af) {
  const b = Buffer.from(hex, 'hex');
  if (af === 4) return [...b].join('.');
  const groups = [];
  for (let i = 0; i < 16; i += 2) groups.push(b.readUInt16BE(i).toString(16));
  // Same compression inet_ntop uses for these addresses (2001:db8:N::M).
  return groups.join(':').replace(/(^|:)0(:0)+(:|$)/, '::');
}

function expectedSigs(recs) {
  return recs.map((r) => {
    const [af, src, dst, proto, sport, dport] = r.key.split('|');
    return sig(Number(proto), addrText(src, Number(af)), Number(sport), addrText(dst, Number(af)), Number(dport),
      Math.floor(r.first / 1e6), Math.floor(r.last / 1e6), r.packets, r.bytes);
  }).sort();
}

test('--help lists every option and the command is in the top-level table', () => {
  const r = run(['--help']);
  assert.equal(r.status, 0);
  for (const o of ['--read', '--interface', '--collector', '--netflow-version', '--active-aging', '--inactive-aging',
    '--max-flows', '--observation-domain', '--jsonl'])
    assert.match(r.stdout, new RegExp(o));
  const top = spawnSync(BIN, ['--help'], { encoding: 'utf8' });
  assert.match(top.stdout, /meter/);
});

test('bad arguments get a clear error and exit 2, never a crash', () => {
  const cases = [
    [['--read', pcap, '--jsonl', '-', '--active-aging', '59'], /active-aging must be an integer in 60-6000/],
    [['--read', pcap, '--jsonl', '-', '--inactive-aging', '601'], /inactive-aging/],
    [['--read', pcap, '--jsonl', '-', '--netflow-version', 'V7'], /V5, V9 or V10/],
    [['--read', pcap, '--jsonl', '-', '--max-flows', '1x'], /max-flows/],
    [['--read', pcap], /--collector/],
    [['--jsonl', '-'], /exactly one of --read and --interface/],
    [['--read', pcap, '--collector', '127.0.0.1:99999'], /HOST:PORT/],
    [['--read', pcap, '--collector', '::1:9995'], /HOST:PORT/],
  ];
  for (const [args, re] of cases) {
    const r = run(args);
    assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, re);
  }
  const noif = run(['--interface', 'nosuchif0', '--jsonl', '-']);
  assert.equal(noif.status, 1);
  assert.match(noif.stderr, /cannot capture on nosuchif0/);
  const missing = run(['--read', join(dir, 'nope.pcap'), '--jsonl', '-']);
  assert.equal(missing.status, 1);
  assert.match(missing.stderr, /cannot read/);
});

test('JSON lines: every record matches the reference, and records close on timers in time order', () => {
  const out = join(dir, 'records.jsonl');
  const r = run(['--read', pcap, '--jsonl', out, '--active-aging', String(ACTIVE), '--inactive-aging', String(INACTIVE)]);
  assert.equal(r.status, 0, r.stderr);
  const got = readJsonl(out);
  const gotSigs = got.map((j) => sig(j.protocol, j.srcaddr, j.srcport, j.dstaddr, j.dstport, j.start, j.end, j.packets, j.bytes)).sort();
  assert.deepEqual(gotSigs, expectedSigs(expected));
  assert.equal(stat(r.stderr, 'packets decoded'), packets.length);
  assert.ok(stat(r.stderr, 'packets skipped \\(not IP\\)') > 0);
  assert.ok(stat(r.stderr, 'packets skipped \\(truncated\\)') > 0);
  assert.ok(stat(r.stderr, 'records closed \\(idle\\)') > 0);
  assert.ok(stat(r.stderr, 'records closed \\(active\\)') > 0);
  // Records leave when their timer fires on the capture's clock, not at the
  // end of the file: the emission order follows the closing time.
  const closeAt = (j) => (j['end-reason'] === 'idle' ? j.end + INACTIVE : j['end-reason'] === 'active' ? j.start + ACTIVE : Infinity);
  const timed = got.filter((j) => j['end-reason'] !== 'forced (end of capture, shutdown)');
  assert.ok(timed.length > got.length / 2);
  for (let i = 1; i < got.length; i++)
    assert.ok(closeAt(got[i - 1]) <= closeAt(got[i]) + 1, `record ${i} emitted out of time order`);
});

test('other link types (SLL, SLL2, raw IP) meter to the same records', () => {
  for (const link of [LINK.SLL, LINK.SLL2, LINK.RAW]) {
    const f = join(dir, `link${link}.pcap`), out = join(dir, `link${link}.jsonl`);
    writePcap(f, packets, { link });
    const r = run(['--read', f, '--jsonl', out, '--active-aging', String(ACTIVE), '--inactive-aging', String(INACTIVE)]);
    assert.equal(r.status, 0, r.stderr);
    const t = readJsonl(out).reduce((a, j) => ({ records: a.records + 1, packets: a.packets + j.packets, bytes: a.bytes + j.bytes }),
      { records: 0, packets: 0, bytes: 0 });
    assert.deepEqual(t, totals(expected), `link type ${link}`);
  }
});

test('pcapng input meters to the same records', () => {
  const ng = join(dir, 'scenario.pcapng'), out = join(dir, 'ng.jsonl');
  const c = spawnSync('editcap', ['-F', 'pcapng', pcap, ng], { encoding: 'utf8' });
  assert.equal(c.status, 0, c.stderr);
  const r = run(['--read', ng, '--jsonl', out, '--active-aging', String(ACTIVE), '--inactive-aging', String(INACTIVE)]);
  assert.equal(r.status, 0, r.stderr);
  const got = readJsonl(out).map((j) => sig(j.protocol, j.srcaddr, j.srcport, j.dstaddr, j.dstport, j.start, j.end, j.packets, j.bytes)).sort();
  assert.deepEqual(got, expectedSigs(expected));
});

test('a full table evicts the least recently seen record and exports it: nothing is dropped', () => {
  const out = join(dir, 'evict.jsonl');
  const r = run(['--read', pcap, '--jsonl', out, '--max-flows', '16', '--active-aging', String(ACTIVE),
    '--inactive-aging', String(INACTIVE)]);
  assert.equal(r.status, 0, r.stderr);
  assert.ok(stat(r.stderr, 'records closed \\(lack of resources\\)') > 0);
  assert.equal(stat(r.stderr, 'peak table size'), 16);
  const got = readJsonl(out);
  const sum = (k) => got.reduce((a, j) => a + j[k], 0);
  const want = totals(expected);
  assert.equal(sum('packets'), want.packets);
  assert.equal(sum('bytes'), want.bytes);
  assert.ok(got.length > want.records);
  assert.ok(got.some((j) => j['end-reason'] === 'lack of resources'));
});

for (const version of ['V5', 'V9', 'V10']) {
  test(`${version} to a real nfcapd: exact totals, zero sequence failures, tshark decodes every datagram`, async () => {
    const cdir = join(dir, `nfcapd-${version}`);
    mkdirSync(cdir);
    const nf = await startNfcapd(cdir);
    const capFile = join(dir, `export-${version}.pcapng`);
    let cap;
    let r;
    try {
      cap = await startDumpcap(nf.port, capFile);
      r = run(['--read', pcap, '--collector', `127.0.0.1:${nf.port}`, '--netflow-version', version,
        '--active-aging', String(ACTIVE), '--inactive-aging', String(INACTIVE), '--observation-domain', '7']);
      await sleep(500);
    } finally {
      if (cap) await cap.stop();
      await nf.stop();
    }
    assert.equal(r.status, 0, r.stderr);
    const name = version === 'V5' ? 'netflow-v5' : version === 'V9' ? 'netflow-v9' : 'ipfix';
    const want = version === 'V5' ? totals(expected, (x) => x.af === 4) : totals(expected);
    if (version === 'V5')
      assert.equal(stat(r.stderr, `${name} records not exportable`), totals(expected, (x) => x.af === 6).records);
    assert.equal(stat(r.stderr, `${name} send errors`), 0);
    const s = nfdumpStats(cdir);
    assert.equal(s.Flows, want.records, nf.log());
    assert.equal(s.Packets, want.packets);
    assert.equal(s.Bytes, want.bytes);
    assert.equal(s['Sequence failures'], 0);
    const datagrams = stat(r.stderr, `${name} datagrams sent`);
    const t = tsharkCheck(capFile, nf.port);
    assert.equal(t.frames, datagrams, 'dumpcap saw every datagram');
    assert.equal(t.versions.length, datagrams, 'tshark decoded every datagram as NetFlow/IPFIX');
    assert.ok(t.versions.every((v) => v === String(version === 'V5' ? 5 : version === 'V9' ? 9 : 10)));
    assert.equal(t.bad, '', 'no malformed packet or expert warning');
  });
}

for (const signal of ['SIGTERM', 'SIGINT']) {
  test(`live capture: timers fire without packets, SIGUSR1 prints statistics, ${signal} flushes and exits 0`, async () => {
  const out = join(dir, 'live.jsonl');
  const port = await freeUdpPort();
  // Everything on loopback is metered: on a busy machine some TCP connection's
  // ephemeral port may equal our UDP port, so a record is ours by protocol too.
  const ours = (j) => j.protocol === 17 && j.dstport === port;
  const m = spawn(BIN, ['meter', '--interface', 'lo', '--jsonl', out, '--inactive-aging', '10'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  m.stderr.on('data', (d) => { err += d; });
  const exited = new Promise((r) => m.once('exit', (code, sig) => r({ code, sig })));
  try {
    const deadline = Date.now() + 10000;
    while (!/capturing on lo/.test(err) && Date.now() < deadline) await sleep(50);
    assert.match(err, /capturing on lo/);
    await sleep(300);
    const s = createSocket('udp4');
    for (let i = 0; i < 10; i++) await new Promise((r) => s.send(Buffer.alloc(100), port, '127.0.0.1', r));
    s.close();
    const sent = Date.now();
    // The flow goes idle: its record must appear after InactiveAging with no further packet.
    let idle = [];
    while (idle.length === 0 && Date.now() - sent < 30000) {
      await sleep(250);
      idle = existsSync(out) ? readJsonl(out).filter(ours) : [];
    }
    assert.equal(idle.length, 1, 'one idle record before shutdown');
    assert.ok(Date.now() - sent >= 10000, 'not before InactiveAging');
    assert.equal(idle[0]['end-reason'], 'idle');
    assert.equal(idle[0].packets, 10);
    assert.equal(idle[0].bytes, 10 * 128);
    m.kill('SIGUSR1');
    await sleep(500);
    assert.match(err, /packets seen: \d+/);
    const s2 = createSocket('udp4');
    await new Promise((r) => s2.send(Buffer.alloc(50), port, '127.0.0.1', r));
    s2.close();
    await sleep(500);
    m.kill(signal);
    const { code } = await exited;
    assert.equal(code, 0, err);
    const all = readJsonl(out).filter(ours);
    assert.equal(all.length, 2, `the open record was flushed at ${signal}`);
    assert.equal(all[1]['end-reason'], 'forced (end of capture, shutdown)');
  } finally {
    if (m.exitCode === null && m.signalCode === null) { m.kill('SIGKILL'); await exited; }
  }
});
}
