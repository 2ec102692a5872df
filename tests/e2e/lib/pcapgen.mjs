// Capture-file generator for the meter's end-to-end tests and benchmark.
// It writes classic pcap files from a deterministic scenario and computes the
// expected flow records with its own reference implementation of spec §2
// (a plain per-key simulation, independent of src/meter), so the tests
// compare the meter against numbers it did not produce.
import { writeFileSync, openSync, writeSync, closeSync } from 'node:fs';

export const LINK = { EN10MB: 1, RAW: 101, SLL: 113, SLL2: 276 };
const PCAP_SNAPLEN = 262144;

export function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function csum(buf) {
  let s = 0;
  for (let i = 0; i + 1 < buf.length; i += 2) s += buf.readUInt16BE(i);
  if (buf.length & 1) s += buf[buf.length - 1] << 8;
  while (s >> 16) s = (s & 0xffff) + (s >> 16);
  return ~s & 0xffff;
}

export function v4(s) { return Buffer.from(s.split('.').map(Number)); }
export function v6(i, j) {
  // 2001:db8:i::j
  const b = Buffer.alloc(16);
  b.writeUInt16BE(0x2001, 0); b.writeUInt16BE(0x0db8, 2); b.writeUInt16BE(i & 0xffff, 4);
  b.writeUInt32BE(j >>> 0, 12);
  return b;
}

// Transport header bytes for a key; payload fills the rest of the IP packet.
function l4(p) {
  if (p.proto === 6) {
    const h = Buffer.alloc(20);
    h.writeUInt16BE(p.sport, 0); h.writeUInt16BE(p.dport, 2);
    h[12] = 5 << 4; h[13] = p.flags ?? 0x10; h.writeUInt16BE(65535, 14);
    return h;
  }
  if (p.proto === 17) {
    const h = Buffer.alloc(8);
    h.writeUInt16BE(p.sport, 0); h.writeUInt16BE(p.dport, 2);
    return h;
  }
  if (p.proto === 1 || p.proto === 58) {
    const h = Buffer.alloc(8);
    h[0] = p.dport >> 8; h[1] = p.dport & 0xff;
    return h;
  }
  return Buffer.alloc(4, 0xab);
}

// An IP packet of exactly p.ipLen bytes.
export function ipPacket(p) {
  if (p.af === 4) {
    const opts = p.options ? Buffer.from([1, 1, 1, 0]) : Buffer.alloc(0);
    const hlen = 20 + opts.length;
    const tr = p.fragOffset ? Buffer.alloc(0) : l4(p);
    const total = p.ipLen;
    const h = Buffer.alloc(hlen);
    h[0] = 0x40 | (hlen / 4); h[1] = p.tos ?? 0; h.writeUInt16BE(total, 2);
    h.writeUInt16BE(p.id ?? 1, 4);
    h.writeUInt16BE((p.moreFrags ? 0x2000 : 0) | (p.fragOffset ?? 0), 6);
    h[8] = 64; h[9] = p.proto; p.src.copy(h, 12); p.dst.copy(h, 16); opts.copy(h, 20);
    h.writeUInt16BE(csum(h), 10);
    const body = Buffer.alloc(total - hlen);
    tr.copy(body, 0, 0, Math.min(tr.length, body.length));
    return Buffer.concat([h, body]);
  }
  const ext = [];
  let first = p.proto;
  if (p.fragOffset !== undefined) {
    const f = Buffer.alloc(8); f[0] = p.proto; f.writeUInt16BE((p.fragOffset << 3) | (p.moreFrags ? 1 : 0), 2);
    f.writeUInt32BE(p.id ?? 1, 4);
    ext.unshift(f); first = 44;
  }
  if (p.hopByHop) {
    const hbh = Buffer.from([first, 0, 1, 4, 0, 0, 0, 0]); // PadN option
    ext.unshift(hbh); first = 0;
  }
  const e = Buffer.concat(ext);
  const tr = p.fragOffset ? Buffer.alloc(0) : l4(p);
  const h = Buffer.alloc(40);
  const tc = p.tos ?? 0;
  h.writeUInt32BE(((6 << 28) | (tc << 20)) >>> 0, 0);
  h.writeUInt16BE(p.ipLen - 40, 4); h[6] = first; h[7] = 64;
  p.src.copy(h, 8); p.dst.copy(h, 24);
  const body = Buffer.alloc(p.ipLen - 40 - e.length);
  tr.copy(body, 0, 0, Math.min(tr.length, body.length));
  return Buffer.concat([h, e, body]);
}

const MAC = Buffer.from([2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2]);

export function frame(link, ip, af, vlans = []) {
  const et = af === 4 ? 0x0800 : 0x86dd;
  if (link === LINK.RAW) return ip;
  if (link === LINK.SLL) {
    const h = Buffer.alloc(16); h.writeUInt16BE(0, 0); h.writeUInt16BE(1, 2); h.writeUInt16BE(6, 4);
    MAC.copy(h, 6, 0, 6); h.writeUInt16BE(et, 14);
    return Buffer.concat([h, ip]);
  }
  if (link === LINK.SLL2) {
    const h = Buffer.alloc(20); h.writeUInt16BE(et, 0); h.writeUInt32BE(2, 4); h.writeUInt16BE(1, 8);
    h[11] = 6; MAC.copy(h, 12, 0, 6);
    return Buffer.concat([h, ip]);
  }
  const tags = [];
  vlans.forEach((id, i) => {
    const t = Buffer.alloc(4); t.writeUInt16BE(i === 0 && vlans.length > 1 ? 0x88a8 : 0x8100, 0);
    t.writeUInt16BE(id, 2); tags.push(t);
  });
  // Each tag is TPID + TCI; the TPID of tag n belongs before it, so rotate.
  const parts = [MAC];
  if (tags.length) {
    parts.push(tags[0].subarray(0, 2));
    for (let i = 0; i < tags.length; i++) {
      parts.push(tags[i].subarray(2, 4));
      parts.push(i + 1 < tags.length ? tags[i + 1].subarray(0, 2) : u16(et));
    }
  } else parts.push(u16(et));
  return Buffer.concat([...parts, ip]);
}

function u16(v) { const b = Buffer.alloc(2); b.writeUInt16BE(v, 0); return b; }

export function keyOf(p) {
  const frag = p.fragOffset ? true : false;
  return [p.af, p.src.toString('hex'), p.dst.toString('hex'), p.proto, frag ? 0 : p.sport, frag ? 0 : p.dport,
    p.tos ?? 0].join('|');
}

// The reference of spec §2: per key, rule 1 (idle), rule 2 (active), rule 3.
export function reference(packets, activeS, inactiveS) {
  const open = new Map();
  const records = [];
  const A = activeS * 1e6, I = inactiveS * 1e6;
  for (const p of packets) {
    const k = keyOf(p);
    let r = open.get(k);
    if (r && (p.ts - r.last > I || p.ts - r.first >= A)) {
      records.push(r); r = undefined;
    }
    if (!r) { r = { key: k, af: p.af, proto: p.proto, first: p.ts, last: p.ts, packets: 0, bytes: 0 }; open.set(k, r); }
    r.packets++; r.bytes += p.ipLen; r.last = p.ts;
  }
  records.push(...open.values());
  return records;
}

export function totals(records, filter = () => true) {
  const t = { records: 0, packets: 0, bytes: 0 };
  for (const r of records) if (filter(r)) { t.records++; t.packets += r.packets; t.bytes += r.bytes; }
  return t;
}

function pcapHeader(link) {
  const h = Buffer.alloc(24);
  h.writeUInt32LE(0xa1b2c3d4, 0); h.writeUInt16LE(2, 4); h.writeUInt16LE(4, 6);
  h.writeUInt32LE(PCAP_SNAPLEN, 16); h.writeUInt32LE(link, 20);
  return h;
}

function recHeader(ts, caplen, origlen) {
  const h = Buffer.alloc(16);
  h.writeUInt32LE(Math.floor(ts / 1e6), 0); h.writeUInt32LE(ts % 1e6, 4);
  h.writeUInt32LE(caplen, 8); h.writeUInt32LE(origlen, 12);
  return h;
}

export const T0 = 1700000000 * 1e6; // 2023-11-14, µs

// The e2e scenario: every kind of packet the meter decodes, conversations
// longer than ActiveAging, idle gaps longer than InactiveAging, VLAN/QinQ,
// truncated captures, plus junk the meter must skip. Returns packets sorted by time.
export function scenario({ seed = 7, flows = 120, activeS = 60, inactiveS = 10 } = {}) {
  const rand = rng(seed);
  const pk = [];
  const add = (ts, p) => pk.push({ ...p, ts: Math.round(ts) });
  const size = (min) => min + Math.floor(rand() * (1400 - min));
  // 1. A TCP conversation of 150 s, both directions, a packet every ~2 s: active splits.
  for (let t = 0; t < 150e6; t += 2e6) {
    add(T0 + t, { af: 4, proto: 6, src: v4('10.0.0.1'), dst: v4('10.0.1.1'), sport: 40000, dport: 443, ipLen: size(40), flags: 0x18 });
    add(T0 + t + 1000, { af: 4, proto: 6, src: v4('10.0.1.1'), dst: v4('10.0.0.1'), sport: 443, dport: 40000, ipLen: size(40), vlans: [10] });
  }
  // 2. UDP with idle gaps longer than InactiveAging, IPv4 and IPv6, QinQ.
  for (const start of [0, 30e6, 31e6, 80e6]) {
    for (let i = 0; i < 5; i++) {
      add(T0 + start + i * 500e3, { af: 4, proto: 17, src: v4('10.0.0.2'), dst: v4('10.0.2.2'), sport: 5353, dport: 53, ipLen: size(28), vlans: [100, 200] });
      add(T0 + start + i * 500e3 + 7, { af: 6, proto: 17, src: v6(1, 2), dst: v6(2, 2), sport: 5353, dport: 53, ipLen: size(48) });
    }
  }
  // 3. ICMP echo and ICMPv6 echo, request and reply.
  for (let i = 0; i < 8; i++) {
    add(T0 + 5e6 + i * 1e6, { af: 4, proto: 1, src: v4('10.0.0.3'), dst: v4('8.8.8.8'), sport: 0, dport: 8 << 8, ipLen: 84 });
    add(T0 + 5e6 + i * 1e6 + 300, { af: 4, proto: 1, src: v4('8.8.8.8'), dst: v4('10.0.0.3'), sport: 0, dport: 0, ipLen: 84 });
    add(T0 + 5e6 + i * 1e6 + 600, { af: 6, proto: 58, src: v6(3, 1), dst: v6(3, 2), sport: 0, dport: 128 << 8, ipLen: 104, hopByHop: true });
  }
  // 4. IPv4 options, fragments (the non-first fragment has no ports), ToS, other protocols.
  add(T0 + 9e6, { af: 4, proto: 17, src: v4('10.0.0.4'), dst: v4('10.0.4.4'), sport: 7000, dport: 7001, ipLen: 1500, moreFrags: true, id: 77, tos: 0x28, options: true });
  add(T0 + 9e6 + 50, { af: 4, proto: 17, src: v4('10.0.0.4'), dst: v4('10.0.4.4'), sport: 7000, dport: 7001, ipLen: 600, fragOffset: 185, id: 77, tos: 0x28 });
  add(T0 + 9e6 + 80, { af: 6, proto: 17, src: v6(4, 1), dst: v6(4, 2), sport: 9000, dport: 9001, ipLen: 1280, fragOffset: 0, moreFrags: true, id: 5 });
  add(T0 + 9e6 + 90, { af: 6, proto: 17, src: v6(4, 1), dst: v6(4, 2), sport: 9000, dport: 9001, ipLen: 300, fragOffset: 154, id: 5 });
  add(T0 + 9e6 + 99, { af: 4, proto: 47, src: v4('10.0.0.5'), dst: v4('10.0.5.5'), sport: 0, dport: 0, ipLen: 120 });
  // 5. Many short conversations at random times, random protocols and families.
  for (let f = 0; f < flows; f++) {
    const af = rand() < 0.3 ? 6 : 4;
    const proto = [6, 6, 17, 17, af === 4 ? 1 : 58][Math.floor(rand() * 5)];
    const src = af === 4 ? v4(`172.16.${f >> 8}.${f & 255}`) : v6(7, f);
    const dst = af === 4 ? v4('192.0.2.1') : v6(8, 1);
    const start = rand() * 140e6, n = 1 + Math.floor(rand() * 12);
    const vl = rand() < 0.2 ? [42] : rand() < 0.1 ? [5, 6] : [];
    for (let i = 0; i < n; i++) {
      const gap = rand() < 0.1 ? 15e6 : rand() * 3e6;
      add(start + T0 + i * gap, { af, proto, src, dst, sport: proto === 1 || proto === 58 ? 0 : 1024 + f, dport: proto === 1 ? 8 << 8 : proto === 58 ? 128 << 8 : 80, ipLen: size(af === 4 ? 40 : 60), vlans: vl });
    }
  }
  pk.sort((a, b) => a.ts - b.ts);
  return pk;
}

// Junk the meter must count and skip (not IP, truncated, hostile lengths).
function junk(link, ts) {
  if (link !== LINK.EN10MB) return [];
  const arp = Buffer.concat([MAC, u16(0x0806), Buffer.alloc(28)]);
  const trunc = Buffer.concat([MAC, u16(0x0800), Buffer.from([0x45, 0, 0, 40])]);
  const badlen = Buffer.concat([MAC, u16(0x0800), Buffer.from([0x45, 0, 0, 10]), Buffer.alloc(16)]);
  return [{ ts, buf: arp }, { ts, buf: trunc }, { ts, buf: badlen }];
}

// Writes the capture. Some packets are captured truncated (snaplen-style):
// the meter must count the IP total length, not the captured length.
export function writePcap(path, packets, { link = LINK.EN10MB, truncateEvery = 5, junkEvery = 100 } = {}) {
  const parts = [pcapHeader(link)];
  packets.forEach((p, i) => {
    const ip = ipPacket(p);
    const f = frame(link, ip, p.af, link === LINK.EN10MB ? p.vlans ?? [] : []);
    const cap = truncateEvery && i % truncateEvery === 0 ? Math.min(f.length, f.length - ip.length + 64) : f.length;
    parts.push(recHeader(p.ts, cap, f.length), f.subarray(0, cap));
    if (junkEvery && i % junkEvery === 0)
      for (const j of junk(link, p.ts)) parts.push(recHeader(j.ts, j.buf.length, j.buf.length), j.buf);
  });
  writeFileSync(path, Buffer.concat(parts));
  return packets.length;
}

// The benchmark capture: `flows` concurrent UDP/TCP flows over IPv4, round
// robin, `packets` packets, `gapUs` µs apart (10), headers only on disk.
// With generations > 1 the capture's time is cut into that many equal spans
// and each span has flows of its own (other source ports): flows end all
// through the capture, as they do in real traffic, and the meter closes them
// InactiveAging later, while the replay runs ("churn"; docs/benchmarks.md).
export function writeBenchPcap(path, { packets = 1200000, flows = 60000, seed = 3, generations = 1, gapUs = 10 } = {}) {
  const rand = rng(seed);
  const fd = openSync(path, 'w');
  writeSync(fd, pcapHeader(LINK.EN10MB));
  const CHUNK = 4096;
  let batch = [];
  let bytes = 0;
  const tmpl = [];
  for (let f = 0; f < flows; f++) {
    const p = { af: 4, proto: f & 1 ? 17 : 6, src: v4(`10.${(f >> 16) & 255}.${(f >> 8) & 255}.${f & 255}`), dst: v4('192.0.2.9'), sport: 1024 + (f % 60000), dport: f & 1 ? 53 : 443, ipLen: 64 + Math.floor(rand() * 1400) };
    const fr = frame(LINK.EN10MB, ipPacket(p), 4, []);
    tmpl.push({ fr, caplen: Math.min(fr.length, 14 + 20 + 20), len: fr.length, ipLen: p.ipLen });
  }
  const perGen = Math.ceil(packets / generations);
  for (let i = 0; i < packets; i++) {
    const t = tmpl[i % flows];
    const gen = Math.floor(i / perGen);
    const ts = T0 + i * gapUs;
    const fr = gen ? retag(t.fr, gen) : t.fr;
    batch.push(recHeader(ts, t.caplen, t.len), fr.subarray(0, t.caplen));
    bytes += t.ipLen;
    if (batch.length >= CHUNK) { writeSync(fd, Buffer.concat(batch)); batch = []; }
  }
  if (batch.length) writeSync(fd, Buffer.concat(batch));
  closeSync(fd);
  return { packets, flows, bytes };
}

// The frame of another generation's flow: the destination port is moved on
// by the generation (TCP and UDP keep it at the same offset), checksums
// stay as they were (the meter does not verify them).
function retag(fr, gen) {
  const c = Buffer.from(fr.subarray(0, 14 + 20 + 20)); // what is written of it (caplen)
  const at = 14 + 20 + 2;
  c.writeUInt16BE((c.readUInt16BE(at) + gen) & 0xffff, at);
  return c;
}

// CLI: node pcapgen.mjs bench OUT [packets] [flows] [generations] [gapUs]  |  node pcapgen.mjs e2e OUT
if (import.meta.url === `file://${process.argv[1]}`) {
  const [mode, out, a, b] = process.argv.slice(2);
  if (mode === 'bench') {
    const [g, gap] = process.argv.slice(6);
    console.log(JSON.stringify(writeBenchPcap(out, { packets: Number(a ?? 1200000), flows: Number(b ?? 60000),
      generations: Number(g ?? 1), gapUs: Number(gap ?? 10) })));
  } else if (mode === 'e2e') {
    const pk = scenario();
    writePcap(out, pk);
    const recs = reference(pk, 60, 10);
    console.log(JSON.stringify({ all: totals(recs), v4: totals(recs, (r) => r.af === 4) }));
  } else {
    console.error('usage: pcapgen.mjs bench OUT [packets] [flows] [generations] [gapUs] | e2e OUT');
    process.exit(2);
  }
}
