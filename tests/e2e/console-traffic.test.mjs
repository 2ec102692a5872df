// The console's traffic pages (issue 12 parts 4 and 5, docs/console.md) in
// Debian's chromium: the bytes and packets charts, a gateway's own view, the
// raw-records explorer and its CSV, the custom range inputs, and "why is it
// empty?" with each stage of the pipeline broken alone — every broken state
// built through the real API, the real agent or a device-channel client
// (lib/device.mjs), never by faking an answer. Numbers are checked against the
// same queries through @alicloud/log and the captures' reference totals
// (lib/pcapgen.mjs). Screenshots, light and dark, go to build-test/console-shots/.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { setTimeout as sleep } from 'node:timers/promises';
import { startServer, stopClean, TEST_AKID, TEST_SECRET } from './lib/server.mjs';
import { api, nextSerial } from './lib/sag.mjs';
import { scenario, reference, totals, writePcap, T0 } from './lib/pcapgen.mjs';
import { agentRun, provision, gatewayStatus } from './lib/agent.mjs';
import { device, deviceRequest } from './lib/device.mjs';
import { agent as pinned, logClient } from './lib/sls.mjs';
import { openBrowser } from './lib/browser.mjs';

const SHOTS = process.env.CONSOLE_SHOTS || new URL('../../build-test/console-shots/', import.meta.url).pathname;
const BUDGET_GZIP = 60 * 1024; // JS + CSS sent to the browser, gzipped (issue 12)
const FROM = T0 / 1e6 - 60, TO = T0 / 1e6 + 3600;
const PROJECT = 'trafficp', LOGSTORE = 'flows';
const OFFLINE_AFTER_S = 3; // the second server's --device-offline-after (its minimum)
const STAGES = ['active', 'associated', 'reported', 'firmware', 'online', 'delivered', 'range', 'filter'];
let srv, srvB, a, c, b, page, dir, fl, g, g2, ref1, ref2, base;

async function slsLog(a1, name, project = PROJECT) {
  return (await a1.call('CreateFlowLog', { Name: name, OutputType: 'sls', SlsRegionId: 'cn-shanghai',
    ProjectName: project, LogstoreName: LOGSTORE, ActiveAging: 300, InactiveAging: 15 })).FlowLogId;
}

// A gateway whose agent reported once (firmware 1.7.0), associated with flowLog.
async function reportedGateway(s, a1, flowLog) {
  const gw = await provision(a1);
  assert.equal(agentRun(s.url, gw, ['--once']).status, 0);
  if (flowLog) await a1.call('AssociateFlowLog', { FlowLogId: flowLog, SmartAGId: gw.id });
  return gw;
}

function replay(gw, packets, name) {
  writePcap(join(dir, name), packets);
  const run = agentRun(srv.url, gw, ['--read', join(dir, name)]);
  assert.equal(run.status, 0, run.stderr);
  return totals(reference(packets, 300, 15));
}

before(async () => {
  // Devices stay online for an hour here, so only the "online" case (on srvB) is offline.
  srv = await startServer({ args: ['--device-offline-after', '3600'] });
  a = api(srv);
  c = logClient(srv, TEST_AKID, TEST_SECRET);
  dir = mkdtempSync(join(tmpdir(), 'sagflow-console-traffic-'));
  mkdirSync(SHOTS, { recursive: true });
  // Two gateways, two known captures, one flow log: the gateway views must tell them apart.
  fl = await slsLog(a, 'two-branches');
  g = await reportedGateway(srv, a, fl);
  g2 = await reportedGateway(srv, a, fl);
  ref1 = replay(g, scenario(), 'g1.pcap');
  ref2 = replay(g2, scenario({ seed: 9, flows: 30 }), 'g2.pcap');
  b = await openBrowser();
  page = b.page;
  await signIn(srv);
});

after(async () => {
  if (b) await b.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
  await stopClean(srv);
  if (srvB) await stopClean(srvB);
});

async function signIn(s) {
  base = s.url;
  await page.goto(`${s.url}/console/`);
  await page.fill('#akid', TEST_AKID);
  await page.fill('#secret', TEST_SECRET);
  await page.click('button[type=submit]');
  await page.waitForURL(/#\/flowlogs$/);
}

async function shoot(name) {
  for (const scheme of ['light', 'dark']) {
    await page.emulateMedia({ colorScheme: scheme });
    await page.waitForTimeout(50);
    await page.screenshot({ path: join(SHOTS, `${name}-${scheme}.png`), fullPage: true });
  }
  await page.emulateMedia({ colorScheme: 'light' });
}

// 200 % zoom is a viewport half as wide in CSS pixels: the page must not scroll sideways
// (the records table scrolls inside its own box).
async function zoom200(name) {
  await page.setViewportSize({ width: 640, height: 860 });
  assert.ok(await page.evaluate(() => document.documentElement.scrollWidth <= innerWidth), `${name}: no horizontal scrolling at 200 %`);
  await shoot(name);
  await page.setViewportSize({ width: 1280, height: 860 });
}

const text = (sel) => page.evaluate((s) => document.querySelector(s)?.textContent, sel);
const sum = (...ts) => ts.reduce((s, t) => ({ records: s.records + t.records, packets: s.packets + t.packets, bytes: s.bytes + t.bytes }),
  { records: 0, packets: 0, bytes: 0 });
const getLogs = (query, extra = {}, from = FROM, to = TO) =>
  c.getLogs(PROJECT, LOGSTORE, new Date(from * 1000), new Date(to * 1000), { query, ...extra }, { agent: pinned });

async function shownTotals() {
  return {
    records: Number(await text('#total-records')),
    packets: Number(await text('#total-packets')),
    bytes: Number(await page.getAttribute('#total-bytes', 'data-value')),
  };
}

test('bytes and packets over time: each chart\'s points add up to GetLogs and to the captures\' totals', async () => {
  await page.goto(`${srv.url}/console/#/flowlogs/${fl}/traffic?from=${FROM}&to=${TO}`);
  await page.locator('#chart-packets .chart canvas').waitFor();
  const ref = sum(ref1, ref2);
  assert.deepEqual(await shownTotals(), ref);
  assert.equal(Number(await page.getAttribute('#chart-packets', 'data-total')), ref.packets);
  assert.equal(Number(await page.getAttribute('#chart-bytes', 'data-total')), ref.bytes);
  // The query each chart shows, through @alicloud/log: its rows add up to the same.
  for (const [id, metric] of [['#q-series-packets', 'packets'], ['#q-series', 'bytes']]) {
    const rows = await getLogs(await text(id));
    assert.equal(rows.reduce((s, r) => s + Number(r[metric]), 0), ref[metric], metric);
  }
  // A 3,660 s range at ≤ 120 points: 1 point = 1 min, both charts say so.
  assert.match(await text('#resolution'), /^1 point = 1 min;/);
  assert.match(await text('#resolution-packets'), /^1 point = 1 min;/);
  // The chart's table, point by point, is the query's answer.
  const rows = await getLogs(await text('#q-series-packets'));
  const cells = await page.$$eval('#chart-packets table.points tbody td[data-value]', (tds) => tds.map((td) => Number(td.dataset.value)));
  assert.equal(cells.reduce((s, x) => s + x, 0), ref.packets);
  const points = new Set(rows.filter((x) => Number(x.packets) > 0).map((x) => x.t)).size;
  assert.ok(points > 1);
  assert.equal(await page.locator('#chart-packets table.points tbody tr').count(), points, 'one table row per non-empty point');
  await shoot('traffic-packets');
});

test('custom range inputs: from/to typed in datetime-local go to the URL and survive a reload', async () => {
  await page.goto(`${srv.url}/console/#/flowlogs/${fl}/traffic?range=1h`);
  await page.locator('#range-from').waitFor();
  // datetime-local is the browser's local time: build the strings the way the page reads them.
  const local = (s) => page.evaluate((t) => {
    const d = new Date(t * 1000), p = (n) => String(n).padStart(2, '0');
    return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
  }, s);
  await page.fill('#range-from', await local(FROM));
  await page.fill('#range-to', await local(TO));
  await page.getByRole('button', { name: 'Show range', exact: true }).click();
  await page.waitForURL(new RegExp(`from=${FROM}&to=${TO}`));
  await page.waitForFunction((n) => document.getElementById('total-records')?.textContent === String(n), ref1.records + ref2.records);
  assert.equal(await page.locator('[aria-label="Time range"] button[aria-pressed=true]').count(), 0, 'no preset is pressed for a custom range');
  await page.reload();
  await page.waitForFunction((n) => document.getElementById('total-records')?.textContent === String(n), ref1.records + ref2.records);
  assert.equal(await page.inputValue('#range-from'), await local(FROM));
  assert.equal(await page.inputValue('#range-to'), await local(TO));
  const iso = (t) => new Date(t * 1000).toISOString();
  assert.equal(await text('#range-utc'), `${iso(FROM)} – ${iso(TO)}`);
  // From after To is refused on the page; the URL keeps the last good range.
  await page.fill('#range-from', await local(TO));
  await page.fill('#range-to', await local(FROM));
  await page.getByRole('button', { name: 'Show range', exact: true }).click();
  assert.equal(await page.locator('#range-error').textContent(), 'From must be before To.');
  assert.match(page.url(), new RegExp(`from=${FROM}&to=${TO}$`));
  await shoot('traffic-custom-range');
});

test('a gateway\'s own traffic: its records only (Instance_id), stacked by a chosen dimension', async () => {
  await page.goto(`${srv.url}/console/#/gateways/${g.id}`);
  await page.getByRole('link', { name: 'Traffic', exact: true }).click();
  await page.waitForURL(new RegExp(`#/gateways/${g.id}/traffic`));
  await page.goto(`${srv.url}/console/#/gateways/${g.id}/traffic?from=${FROM}&to=${TO}&dim=dstport`);
  await page.waitForFunction((n) => document.getElementById('total-records')?.textContent === String(n), ref1.records);
  assert.deepEqual(await shownTotals(), ref1);
  const q = await text('#q-totals');
  assert.ok(q.startsWith(`Instance_id:"${g.id}" | select`), q);
  const [row] = await getLogs(q);
  assert.equal(Number(row.bytes), ref1.bytes);
  assert.match(await text('#h-bytes'), /by dstport$/);
  const top = await getLogs(await text('#q-top'));
  const shown = await page.$$eval('#top-table tbody tr td:first-child', (tds) => tds.map((td) => td.textContent));
  assert.deepEqual(shown.slice(0, top.length), top.map((r) => r.dstport));
  assert.equal(Number(await page.getAttribute('#chart-packets', 'data-total')), ref1.packets);
  // Each stacked band is its key's traffic: a column of the chart's table adds up to that row of the top table.
  const cols = await page.$$eval('#chart-packets table.points', ([t]) => {
    const keys = [...t.tHead.rows[0].cells].slice(1).map((th) => th.textContent);
    const sums = keys.map((_, j) => [...t.tBodies[0].rows].reduce((s, tr) => s + Number(tr.cells[j + 1].dataset.value), 0));
    return Object.fromEntries(keys.map((k, j) => [k, sums[j]]));
  });
  for (const r of top) assert.equal(cols[r.dstport], Number(r.packets), `dstport ${r.dstport}`);
  assert.equal(cols.Other, ref1.packets - top.reduce((s, r) => s + Number(r.packets), 0));
  await shoot('gateway-traffic');
  // The flow log's view stacked by gateway: one row per gateway, each its capture's bytes.
  await page.goto(`${srv.url}/console/#/flowlogs/${fl}/traffic?from=${FROM}&to=${TO}&dim=Instance_id`);
  await page.locator(`#top-table td:text-is("${g2.id}")`).waitFor();
  const byGw = Object.fromEntries(await page.$$eval('#top-table tbody tr', (trs) => trs.map((tr) =>
    [tr.cells[0].textContent, Number(tr.cells[1].dataset.value)])));
  assert.deepEqual(byGw, { [g.id]: ref1.bytes, [g2.id]: ref2.bytes });
  await shoot('traffic-by-gateway');
});

// A minimal RFC 4180 reader (quoted fields, doubled quotes, CRLF).
function parseCsv(s) {
  const rows = [];
  let row = [], cell = '', q = false;
  for (let i = 0; i < s.length; i++) {
    const ch = s[i];
    if (q) {
      if (ch === '"' && s[i + 1] === '"') { cell += '"'; i++; } else if (ch === '"') q = false; else cell += ch;
    } else if (ch === '"') q = true;
    else if (ch === ',') { row.push(cell); cell = ''; }
    else if (ch === '\n') { row.push(cell.replace(/\r$/, '')); rows.push(row); row = []; cell = ''; }
    else cell += ch;
  }
  return rows;
}

const FIELDS = ['Instance_id', 'snid', 'start', 'end', 'protocol', 'srcaddr', 'srcport', 'dstaddr', 'dstport', 'packets', 'bytes',
  'tcp-flags', 'tos', 'inport', 'outport'];

test('raw records: pages newest first equal GetLogs; the CSV of range and filter equals every record', async () => {
  const all = ref1.records + ref2.records;
  await page.goto(`${srv.url}/console/#/flowlogs/${fl}/traffic?from=${FROM}&to=${TO}`);
  await page.click('#raw-link');
  await page.waitForURL(/\/records\?/);
  await page.locator('#records tbody tr').first().waitFor();
  assert.match(await text('#records caption'), new RegExp(`^${all} records, newest first; page 1 of ${Math.ceil(all / 50)}`));
  const cellsOf = () => page.$$eval('#records tbody tr', (trs) => trs.map((tr) => [...tr.cells].map((td) => td.textContent)));
  const asShown = (r) => [new Date(Number(r.__time__) * 1000).toISOString().replace('.000Z', 'Z'), ...FIELDS.map((f) => r[f] ?? '')];
  const head = await page.$$eval('#records thead th', (ths) => ths.map((th) => th.textContent));
  assert.deepEqual(head, ['__time__', ...FIELDS]);
  const first = await getLogs('*', { line: 50, offset: 0, reverse: true });
  assert.deepEqual(await cellsOf(), first.map(asShown));
  await shoot('records');
  await zoom200('records-zoom200');
  await page.click('#next-page');
  await page.waitForURL(/page=2/);
  const second = await getLogs('*', { line: 50, offset: 50, reverse: true });
  await page.waitForFunction(() => /page 2 of/.test(document.querySelector('#records caption')?.textContent));
  assert.deepEqual(await cellsOf(), second.map(asShown));
  assert.ok(Number(second[0].__time__) <= Number(first.at(-1).__time__), 'newest first');

  // The view's filter applies: one gateway, UDP only.
  const f = `Instance_id:"${g.id}" and protocol:17`;
  await page.fill('#filter', f);
  await page.getByRole('button', { name: 'Apply', exact: true }).click();
  await page.waitForURL(/filter=/);
  const udp = totals(reference(scenario(), 300, 15), (r) => r.proto === 17).records;
  await page.waitForFunction((n) => new RegExp(`^${n} records`).test(document.querySelector('#records caption')?.textContent), udp);
  assert.equal(await text('#q-records'), f);

  // CSV of the range and filter: every record, as GetLogs pages them.
  const [dl] = await Promise.all([page.waitForEvent('download'), page.click('#csv')]);
  assert.match(dl.suggestedFilename(), new RegExp(`^${LOGSTORE}-${FROM}-${TO}\\.csv$`));
  assert.match(dl.url(), /^blob:http:\/\/127\.0\.0\.1:/);
  const csv = parseCsv(readFileSync(await dl.path(), 'utf8'));
  assert.deepEqual(csv[0], ['__time__', ...FIELDS]);
  const want = [];
  for (let off = 0; ; off += 100) {
    const p = await getLogs(f, { line: 100, offset: off, reverse: true });
    want.push(...p.map((r) => [r.__time__, ...FIELDS.map((k) => r[k] ?? '')]));
    if (p.length < 100) break;
  }
  assert.equal(want.length, udp);
  assert.deepEqual(csv.slice(1), want);
  await page.locator('#csv-done').waitFor();
  assert.equal(await text('#csv-done'), `${udp} records written`);
  // The whole flow log as CSV too (more records than one GetLogs page).
  await page.fill('#filter', '');
  await page.getByRole('button', { name: 'Apply', exact: true }).click();
  await page.waitForFunction((n) => new RegExp(`^${n} records`).test(document.querySelector('#records caption')?.textContent), all);
  const [dl2] = await Promise.all([page.waitForEvent('download'), page.click('#csv')]);
  const csv2 = parseCsv(readFileSync(await dl2.path(), 'utf8'));
  assert.equal(csv2.length - 1, all);
  assert.ok(all > 100);
  assert.equal(csv2.slice(1).reduce((s, r) => s + Number(r[FIELDS.indexOf('packets') + 1]), 0), ref1.packets + ref2.packets);
  await shoot('records-filtered');
});

// Opens the view and returns the stage "why is it empty?" names.
async function whyStage(path, expect) {
  const url = `${base}/console/#/${path}`;
  if (page.url() === url) await page.reload(); // the same hash: no navigation otherwise
  else await page.goto(url);
  await page.locator(`#why-empty[data-stage][data-view="${path.split('/')[1]}"]`).waitFor({ timeout: 15000 })
    .catch(async (e) => { throw new Error(`${e.message}\n${await text('main')}`); });
  const stage = await page.getAttribute('#why-empty', 'data-stage');
  assert.equal(stage, expect, `${path}: ${await text('#why-empty')}`);
  const passed = await page.$$eval('#why-empty li.pass', (li) => li.map((x) => x.dataset.stage));
  assert.deepEqual(passed, STAGES.slice(0, STAGES.indexOf(expect)), 'every stage before it passed');
  await shoot(`why-${stage}`);
  return { text: await text('#why-empty .why-text'), link: await page.getAttribute('#why-fix', 'href') };
}

test('why is it empty: each stage of the pipeline is named when it alone is broken', async () => {
  // active: associated and reported, then deactivated.
  const flA = await slsLog(a, 'stopped', 'emptya');
  await reportedGateway(srv, a, flA);
  await a.call('DeactiveFlowLog', { FlowLogId: flA });
  let w = await whyStage(`flowlogs/${flA}/traffic`, 'active');
  assert.match(w.text, /is Inactive/);
  assert.equal(w.link, `#/flowlogs/${flA}`);

  // associated: an Active flow log with no gateway.
  const flB = await slsLog(a, 'lonely', 'emptyb');
  w = await whyStage(`flowlogs/${flB}/traffic`, 'associated');
  assert.equal(w.link, `#/flowlogs/${flB}`);
  // …and a gateway's own view, of a gateway with no flow log.
  const loose = await reportedGateway(srv, a, null);
  w = await whyStage(`gateways/${loose.id}/traffic`, 'associated');
  assert.match(w.text, /associated with no flow log/);

  // reported: the reported device unbound, a new serial bound that never reported.
  const flC = await slsLog(a, 'newdevice', 'emptyc');
  const gC = await reportedGateway(srv, a, flC);
  await a.call('UnbindSerialNumber', { SmartAGId: gC.id, SerialNumber: gC.serial });
  const fresh = nextSerial();
  await a.call('BindSerialNumber', { SmartAGId: gC.id, SerialNumber: fresh });
  w = await whyStage(`flowlogs/${flC}/traffic`, 'reported');
  assert.match(w.text, new RegExp(`serial ${fresh}`));
  assert.equal(w.link, `#/gateways/${gC.id}`);

  // firmware: the device (device channel) reports a downgrade to 1.6.0 after association.
  const flD = await slsLog(a, 'oldfirmware', 'emptyd');
  const gD = await reportedGateway(srv, a, flD);
  const r = await device(srv, { serial: gD.serial, secret: gD.secret, version: '1.6.0' }).sync();
  assert.equal(r.status, 200);
  w = await whyStage(`flowlogs/${flD}/traffic`, 'firmware');
  assert.match(w.text, /reports firmware 1\.6\.0; flow logs need ≥ 1\.7\.0/);
  // Fixed (the device reports 1.7.0 again): "Check again" moves on to the next broken stage.
  assert.equal((await device(srv, { serial: gD.serial, secret: gD.secret, version: '1.7.0' }).sync()).status, 200);
  await page.getByRole('button', { name: 'Check again', exact: true }).click();
  await page.locator('#why-empty[data-stage="delivered"]').waitFor();

  // delivered: the agent reported (--once) and never delivered: SlsDelivery empty.
  const flF = await slsLog(a, 'nodelivery', 'emptyf');
  const gF = await reportedGateway(srv, a, flF);
  w = await whyStage(`flowlogs/${flF}/traffic`, 'delivered');
  assert.match(w.text, /SlsDelivery is empty/);
  // …and a device that reports it cannot deliver: its error is shown.
  const report = { Model: 'sag-1000', SoftwareVersion: '1.7.0', SlsDelivery: 'not-delivered',
    SlsStats: { Delivered: 0, Queued: 12, Dropped: 0, LastError: 'connect to sls.localhost:80 refused', LastErrorTime: Date.now() } };
  assert.equal((await deviceRequest(srv, { serial: gF.serial, secret: gF.secret, report })).status, 200);
  w = await whyStage(`flowlogs/${flF}/traffic`, 'delivered');
  assert.match(w.text, /SlsDelivery not-delivered: 0 delivered, 12 queued, 0 dropped; last error connect to sls\.localhost:80 refused/);
  await zoom200('why-delivered-zoom200');

  // range: the captures are from 2023; the default view is the last 15 minutes.
  w = await whyStage(`flowlogs/${fl}/traffic`, 'range');
  const newest = (await getLogs('* | select max(__time__) as t'))[0].t;
  assert.match(w.text, new RegExp(`^The newest record is at ${new Date(newest * 1000).toISOString().replace('.000Z', 'Z')} .*, before the range`));
  await page.click('#why-fix');
  await page.waitForURL(/from=/);
  await page.waitForFunction(() => Number(document.getElementById('total-records')?.textContent) > 0);

  // filter: records in the range, none matches.
  assert.equal((await getLogs('dstport:65534 | select count(*) as n'))[0].n, '0');
  w = await whyStage(`flowlogs/${fl}/traffic?from=${FROM}&to=${TO}&filter=dstport%3A65534`, 'filter');
  assert.match(w.text, new RegExp(`^${ref1.records + ref2.records} records fall in the range`));
  await page.click('#why-fix');
  await page.waitForFunction((n) => document.getElementById('total-records')?.textContent === String(n), ref1.records + ref2.records);
  assert.ok(!page.url().includes('filter='));
  // A gateway's own view: the range stage for that gateway.
  await whyStage(`gateways/${g.id}/traffic`, 'range');
});

test('why is it empty: online, on a server whose devices go Offline after 3 s', async () => {
  srvB = await startServer({ args: ['--device-offline-after', String(OFFLINE_AFTER_S)] });
  const aB = api(srvB);
  const flE = await slsLog(aB, 'silent', 'emptye');
  const gE = await reportedGateway(srvB, aB, flE);
  const deadline = Date.now() + 15000;
  while ((await gatewayStatus(aB, gE.id)) !== 'Offline') {
    assert.ok(Date.now() < deadline, 'the gateway went Offline');
    await sleep(250);
  }
  await signIn(srvB);
  const w = await whyStage(`flowlogs/${flE}/traffic`, 'online');
  assert.match(w.text, new RegExp(`Gateway ${gE.id} is Offline`));
  assert.equal(w.link, `#/gateways/${gE.id}`);
});

test('no request left for another origin (the CSV is a same-origin Blob); CSP on; JS+CSS within budget', async () => {
  const origins = new Set([new URL(srv.url).origin, new URL(srvB.url).origin]);
  assert.ok(b.requests.length > 20);
  for (const r of b.requests) {
    const u = new URL(r.url());
    if (u.protocol === 'data:') continue;
    assert.ok(origins.has(u.origin), r.url());
    assert.ok(!r.url().includes(TEST_SECRET), r.url());
  }
  const res = await page.goto(`${srv.url}/console/`);
  assert.match(res.headers()['content-security-policy'], /default-src 'self'; script-src 'self'/);
  let gz = 0;
  const seen = new Set();
  for (const { url, type, body } of await Promise.all(b.bodies)) {
    const file = new URL(url).pathname; // the same bundle from both servers counts once
    if (!/javascript|css/.test(type) || seen.has(file)) continue;
    seen.add(file);
    gz += gzipSync(body, { level: 9 }).length;
  }
  assert.ok(seen.size >= 2);
  assert.ok(gz <= BUDGET_GZIP, `${gz} bytes gzipped`);
});
