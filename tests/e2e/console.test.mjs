// The web console (issue 12, docs/console.md) in a real browser: Debian's
// chromium driven by playwright-core against the real `sagflow serve`. The
// console signs its own calls (V3 for RPC, LOG V4 for the log store) and we
// check what it shows against pop-core, @alicloud/log and the capture's own
// reference totals (lib/pcapgen.mjs). Screenshots of every page, light and
// dark, go to build-test/console-shots/ (CONSOLE_SHOTS to change).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { startServer, stopClean, TEST_AKID, TEST_SECRET } from './lib/server.mjs';
import { api } from './lib/sag.mjs';
import { scenario, reference, totals, writePcap, T0 } from './lib/pcapgen.mjs';
import { agentRun, provision } from './lib/agent.mjs';
import { agent as pinned, logClient, rawRequest } from './lib/sls.mjs';
import { openBrowser } from './lib/browser.mjs';

const SHOTS = process.env.CONSOLE_SHOTS || new URL('../../build-test/console-shots/', import.meta.url).pathname;
const BUDGET_GZIP = 60 * 1024; // JS + CSS sent to the browser, gzipped (issue 12)
const FROM = T0 / 1e6 - 60, TO = T0 / 1e6 + 3600;
let srv, a, c, b, page, dir, fl, g, packets;

before(async () => {
  srv = await startServer();
  a = api(srv);
  c = logClient(srv, TEST_AKID, TEST_SECRET);
  dir = mkdtempSync(join(tmpdir(), 'sagflow-console-'));
  mkdirSync(SHOTS, { recursive: true });
  // A known capture delivered through the real agent to a flow log's logstore.
  packets = scenario();
  writePcap(join(dir, 'gw.pcap'), packets);
  fl = (await a.call('CreateFlowLog', { Name: 'branch-office', OutputType: 'sls', SlsRegionId: 'cn-shanghai',
    ProjectName: 'consolep', LogstoreName: 'flows', ActiveAging: 300, InactiveAging: 15 })).FlowLogId;
  g = await provision(a);
  assert.equal(agentRun(srv.url, g, ['--once']).status, 0);
  await a.call('AssociateFlowLog', { FlowLogId: fl, SmartAGId: g.id });
  const run = agentRun(srv.url, g, ['--read', join(dir, 'gw.pcap')]);
  assert.equal(run.status, 0, run.stderr);
  b = await openBrowser();
  page = b.page;
});

after(async () => {
  if (b) await b.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
  await stopClean(srv);
});

async function shoot(name) {
  for (const scheme of ['light', 'dark']) {
    await page.emulateMedia({ colorScheme: scheme });
    await page.waitForTimeout(50);
    await page.screenshot({ path: join(SHOTS, `${name}-${scheme}.png`), fullPage: true });
  }
  await page.emulateMedia({ colorScheme: 'light' });
}

async function signIn(secret) {
  await page.fill('#akid', TEST_AKID);
  await page.fill('#secret', secret);
  await page.click('button[type=submit]');
}

test('the page carries a strict CSP; a wrong key shows the server\'s error; the right one signs in', async () => {
  const res = await page.goto(`${srv.url}/console/`);
  const csp = res.headers()['content-security-policy'];
  assert.match(csp, /default-src 'self'/);
  assert.doesNotMatch(csp, /unsafe-eval|unsafe-inline|https?:|\*/);
  await shoot('signin');
  await signIn('not-the-secret');
  const alert = page.locator('[role=alert]');
  await alert.waitFor();
  assert.match(await alert.textContent(), /SignatureDoesNotMatch/);
  assert.match(await alert.textContent(), /Specified signature is not matched with our calculation\./);
  await shoot('signin-error');
  await page.fill('#akid', 'nobody');
  await page.click('button[type=submit]');
  await page.waitForFunction(() => /InvalidAccessKeyId/.test(document.querySelector('[role=alert]')?.textContent));
  await signIn(TEST_SECRET);
  await page.locator(`table a:has-text("${fl}")`).waitFor();
  assert.match(await page.locator('table caption').textContent(), /^1 flow log$/);
  assert.equal(page.url(), `${srv.url}/console/#/flowlogs`);
  assert.equal(await page.evaluate(() => document.cookie), '');
  await shoot('flowlogs');
});

test('create a flow log in the UI, see it through pop-core, modify, associate, disassociate, delete', async () => {
  await page.goto(`${srv.url}/console/#/flowlogs/new`);
  await page.fill('#f-Name', 'ui-made');
  await page.selectOption('#f-OutputType', 'netflow');
  await page.fill('#f-NetflowServerIp', '192.0.2.7');
  await page.fill('#f-NetflowServerPort', '2055');
  await shoot('flowlog-new');
  await page.getByRole('button', { name: 'Create flow log', exact: true }).click();
  await page.waitForURL(/#\/flowlogs\/fl-/);
  const id = decodeURIComponent(page.url().split('/').pop());
  let got = (await a.call('DescribeFlowLogs', { FlowLogId: id })).FlowLogs.FlowLogSetType[0];
  assert.equal(got.Name, 'ui-made');
  assert.equal(got.OutputType, 'netflow');
  assert.equal(got.NetflowServerIp, '192.0.2.7');
  assert.equal(got.NetflowServerPort, 2055);
  await page.locator('dl.props').waitFor();
  await shoot('flowlog-detail');

  await page.click('a:has-text("Modify")');
  await page.fill('#f-Description', 'changed in the console');
  await page.fill('#f-ActiveAging', '120');
  await page.getByRole('button', { name: 'Save changes', exact: true }).click();
  await page.waitForFunction(() => /changed in the console/.test(document.querySelector('dl.props')?.textContent));
  got = (await a.call('DescribeFlowLogs', { FlowLogId: id })).FlowLogs.FlowLogSetType[0];
  assert.equal(got.Description, 'changed in the console');
  assert.equal(got.ActiveAging, 120);
  assert.equal(got.Name, 'ui-made', 'fields not changed are kept');

  await page.getByRole('button', { name: 'Deactivate', exact: true }).click();
  await page.getByRole('button', { name: 'Activate', exact: true }).waitFor();
  assert.equal((await a.call('DescribeFlowLogs', { FlowLogId: id })).FlowLogs.FlowLogSetType[0].Status, 'Inactive');
  await page.getByRole('button', { name: 'Activate', exact: true }).click();
  await page.getByRole('button', { name: 'Deactivate', exact: true }).waitFor();

  // A second gateway with no flow log: associate it here, see it through pop-core.
  const g2 = await provision(a);
  assert.equal(agentRun(srv.url, g2, ['--once']).status, 0);
  await page.reload();
  await page.locator(`#assoc option[value="${g2.id}"]`).waitFor({ state: 'attached' });
  await page.selectOption('#assoc', g2.id);
  await page.getByRole('button', { name: 'Associate', exact: true }).click();
  await page.locator(`td a:has-text("${g2.id}")`).waitFor();
  const sags = await a.call('DescribeFlowLogSags', { FlowLogId: id });
  assert.deepEqual(sags.Sags.Sag.map((s) => s.SmartAGId), [g2.id]);

  // Deleting a bound flow log is refused with the API's own error.
  await page.getByRole('button', { name: 'Delete', exact: true }).click();
  await page.getByRole('button', { name: 'Confirm delete', exact: true }).click();
  await page.waitForFunction(() => /DependencyViolation\.FlowLog/.test(document.querySelector('[role=alert]')?.textContent));
  await page.getByRole('button', { name: 'Disassociate', exact: true }).click();
  await page.locator(`td a:has-text("${g2.id}")`).waitFor({ state: 'detached' });
  await page.getByRole('button', { name: 'Delete', exact: true }).click();
  await page.getByRole('button', { name: 'Confirm delete', exact: true }).click();
  await page.waitForURL(/#\/flowlogs$/);
  const left = await a.call('DescribeFlowLogs', { PageSize: 100 });
  assert.ok(!left.FlowLogs.FlowLogSetType.some((f) => f.FlowLogId === id), 'deleted');
  assert.ok(!(await page.locator('table').textContent()).includes(id));
});

test('gateways: list and detail with the device (serial, firmware, online, SlsDelivery), never its key', async () => {
  await page.goto(`${srv.url}/console/#/gateways`);
  await page.locator(`a:has-text("${g.id}")`).waitFor();
  await shoot('gateways');
  await page.click(`a:has-text("${g.id}")`);
  await page.locator('table caption:has-text("device")').waitFor();
  const text = await page.locator('main').textContent();
  assert.match(text, new RegExp(g.serial));
  assert.match(text, /delivered/);
  assert.match(text, /1\.7\.0/);
  assert.ok(!text.includes(g.secret), 'the device SecretKey is not shown');
  await shoot('gateway-detail');
});

test('traffic: totals equal GetLogs and the capture\'s reference; every query is shown; chart has a resolution', async () => {
  await page.goto(`${srv.url}/console/#/flowlogs/${fl}/traffic?from=${FROM}&to=${TO}`);
  await page.locator('#total-bytes').waitFor();
  await page.locator('#top-table tbody tr').first().waitFor();
  const shown = {
    records: Number(await page.textContent('#total-records')),
    packets: Number(await page.textContent('#total-packets')),
    bytes: Number(await page.getAttribute('#total-bytes', 'data-value')),
  };
  const ref = totals(reference(packets, 300, 15));
  assert.deepEqual(shown, ref, 'the capture\'s own totals');
  const q = await page.locator('#q-totals').textContent({ timeout: 1000 }).catch(() => null) ??
    await page.evaluate(() => document.getElementById('q-totals').textContent);
  const [row] = await c.getLogs('consolep', 'flows', new Date(FROM * 1000), new Date(TO * 1000), { query: q }, { agent: pinned });
  assert.deepEqual({ records: Number(row.records), packets: Number(row.packets), bytes: Number(row.bytes) }, shown,
    'the same query through @alicloud/log');
  // The top-N table: its rows and Other add up to the total.
  const cells = await page.$$eval('#top-table tbody tr td:nth-child(2)', (tds) => tds.map((td) => Number(td.dataset.value)));
  assert.equal(cells.reduce((s, x) => s + x, 0), ref.bytes);
  const top = await page.evaluate(() => document.getElementById('q-top').textContent);
  const topRows = await c.getLogs('consolep', 'flows', new Date(FROM * 1000), new Date(TO * 1000), { query: top }, { agent: pinned });
  assert.equal(Number(topRows[0].bytes), cells[0]);
  assert.match(await page.textContent('#resolution'), /^1 point = \d+ (s|min);/);
  assert.ok(await page.locator('.chart canvas').count() > 0, 'uPlot drew a chart');
  await shoot('traffic');
  // 200 % zoom is a viewport half as wide in CSS pixels: everything must still fit.
  await page.setViewportSize({ width: 640, height: 860 });
  assert.ok(await page.evaluate(() => document.documentElement.scrollWidth <= innerWidth), 'no horizontal scrolling at 200 %');
  await shoot('traffic-zoom200');
  await page.setViewportSize({ width: 1280, height: 860 });
  // A filter in the search syntax narrows the totals exactly as the reference does.
  await page.fill('#filter', 'protocol:17');
  await page.getByRole('button', { name: 'Apply', exact: true }).click();
  await page.waitForURL(/filter=protocol/);
  const udp = totals(reference(packets, 300, 15), (r) => r.proto === 17);
  await page.waitForFunction((n) => document.getElementById('total-records')?.textContent === String(n), udp.records);
  assert.equal(Number(await page.getAttribute('#total-bytes', 'data-value')), udp.bytes);
  // The URL holds the view: a reload shows the same filter.
  await page.reload();
  await page.waitForFunction((n) => document.getElementById('total-records')?.textContent === String(n), udp.records);
  assert.equal(await page.inputValue('#filter'), 'protocol:17');
});

test('no request left for another origin; JS+CSS within the gzip budget; the secret in no URL or server log', async () => {
  const origin = new URL(srv.url).origin;
  assert.ok(b.requests.length > 10);
  for (const r of b.requests) {
    const u = new URL(r.url());
    if (u.protocol === 'data:') continue;
    assert.equal(u.origin, origin, r.url());
    assert.ok(!r.url().includes(TEST_SECRET), r.url());
  }
  let gz = 0;
  const seen = new Set();
  for (const { url, type, body } of await Promise.all(b.bodies)) {
    if (!/javascript|css/.test(type) || seen.has(url)) continue;
    seen.add(url);
    gz += gzipSync(body, { level: 9 }).length;
  }
  assert.ok(seen.size >= 2, 'the bundle and the stylesheet were loaded');
  assert.ok(gz <= BUDGET_GZIP, `${gz} bytes gzipped`);
  assert.ok(!srv.stderr().includes(TEST_SECRET));
});

test('/sls/<project>/ on any Host: V1 signed over the path as sent works, over the stripped path is refused; no CORS', async () => {
  const host = `127.0.0.1:${srv.port}`;
  const query = `type=log&from=${FROM}&to=${TO}&query=${encodeURIComponent('* | select count(*) as n')}`;
  const ok = await rawRequest(srv, { method: 'GET', path: '/sls/consolep/logstores/flows', query, host,
    akid: TEST_AKID, secret: TEST_SECRET, headers: { origin: 'http://evil.example' } });
  assert.equal(ok.status, 200, ok.body);
  assert.equal(Number(ok.json[0].n), totals(reference(packets, 300, 15)).records);
  assert.ok(!Object.keys(ok.headers).some((h) => h.startsWith('access-control-')), 'no CORS header');
  const stripped = await rawRequest(srv, { method: 'GET', path: '/logstores/flows', target: '/sls/consolep/logstores/flows',
    query, host, akid: TEST_AKID, secret: TEST_SECRET });
  assert.equal(stripped.status, 401, stripped.body);
  assert.equal(stripped.json.errorCode, 'SignatureNotMatch');
  const other = await rawRequest(srv, { method: 'GET', path: '/sls/nosuchproj/logstores/flows', query, host,
    akid: TEST_AKID, secret: TEST_SECRET });
  assert.equal(other.json.errorCode, 'ProjectNotExist');
});
