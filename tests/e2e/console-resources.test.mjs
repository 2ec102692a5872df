// The console's resources (issue 12 parts 3 and 7, docs/console.md) in
// chromium against the real `sagflow serve`: gateways created, bound and
// unbound in the UI and checked with pop-core and the real agent; the new
// device's SecretKey shown once and kept nowhere; every action's call as a
// pop-core program that runs, and flow logs as Terraform; a keyboard-only
// walk; accessible names and Tab reachability of every control on every page;
// 200 % zoom (a 640 px viewport) without horizontal scrolling. Screenshots,
// light and dark, go to build-test/console-shots/ (CONSOLE_SHOTS to change),
// the SecretKey masked.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { startServer, stopClean, TEST_AKID, TEST_SECRET } from './lib/server.mjs';
import { api } from './lib/sag.mjs';
import { agentRun, provision } from './lib/agent.mjs';
import { openBrowser } from './lib/browser.mjs';

const SHOTS = process.env.CONSOLE_SHOTS || new URL('../../build-test/console-shots/', import.meta.url).pathname;
const E2E_DIR = new URL('.', import.meta.url).pathname; // where node finds the pinned pop-core
const ZOOM_200_WIDTH = 640; // CSS pixels of a 1280 px window at 200 %
const MAX_TABS = 120; // Tab presses allowed to reach one control
// alicloud_smartag_flow_log's arguments (terraform-provider-alicloud,
// alicloud/resource_alicloud_smartag_flow_log.go): the snippet may use no other.
const TF_SCHEMA = ['active_aging', 'description', 'flow_log_name', 'inactive_aging', 'logstore_name', 'netflow_server_ip',
  'netflow_server_port', 'netflow_version', 'output_type', 'project_name', 'sls_region_id', 'status'];
let srv, a, b, page;

before(async () => {
  srv = await startServer();
  a = api(srv);
  mkdirSync(SHOTS, { recursive: true });
  b = await openBrowser();
  page = b.page;
  await page.goto(`${srv.url}/console/`);
  await page.fill('#akid', TEST_AKID);
  await page.fill('#secret', TEST_SECRET);
  await page.click('button[type=submit]');
  await page.waitForURL(/#\/flowlogs$/);
});

after(async () => {
  if (b) await b.close();
  await stopClean(srv);
});

// omit: elements whose text must not be in a picture (the SecretKey). Their
// text is swapped out for the shot and put back: playwright's `mask` draws
// below a modal <dialog> (the top layer), so it would not hide it.
async function shoot(name, omit = []) {
  const kept = await Promise.all(omit.map((s) => page.$eval(s, (e) => {
    const t = e.textContent;
    e.textContent = '(omitted from screenshots)';
    return t;
  })));
  for (const scheme of ['light', 'dark']) {
    await page.emulateMedia({ colorScheme: scheme });
    await page.waitForTimeout(50);
    await page.screenshot({ path: join(SHOTS, `${name}-${scheme}.png`), fullPage: true });
  }
  await page.emulateMedia({ colorScheme: 'light' });
  await Promise.all(omit.map((s, i) => page.$eval(s, (e, t) => { e.textContent = t; }, kept[i])));
}

const snippets = () => page.$$eval('pre[data-snippet]', (ps) => ps.map((p) => ({ name: p.dataset.snippet, text: p.textContent })));

// A snippet is a whole Node program: run it as a user would, the key in the environment.
function runSnippet(text) {
  const r = spawnSync(process.execPath, ['-e', text], { cwd: E2E_DIR, encoding: 'utf8', timeout: 20000,
    env: { ...process.env, ALIBABA_CLOUD_ACCESS_KEY_ID: TEST_AKID, ALIBABA_CLOUD_ACCESS_KEY_SECRET: TEST_SECRET } });
  assert.equal(r.status, 0, `${text}\n${r.stderr}`);
  return JSON.parse(r.stdout);
}

// Everything the tab keeps and every URL it asked for: a secret must be in none.
async function assertKeptNowhere(secret) {
  const stores = await page.evaluate(() => JSON.stringify([{ ...sessionStorage }, { ...localStorage }, document.cookie, location.href]));
  assert.ok(!stores.includes(secret), 'the SecretKey is not in sessionStorage, localStorage, a cookie or the URL');
  for (const r of b.requests) assert.ok(!r.url().includes(secret), `the SecretKey is in a request URL: ${r.url()}`);
  for (const s of await snippets()) assert.ok(!s.text.includes(secret) && !s.text.includes(TEST_SECRET), s.text);
}

test('gateways: create in the UI, bind a serial (its SecretKey once, kept nowhere), the agent uses it, unbind revokes it', async () => {
  await page.goto(`${srv.url}/console/#/gateways`);
  await page.getByRole('link', { name: 'Create gateway' }).click();
  await page.fill('#g-Name', 'branch-gw');
  await page.selectOption('#g-HardWareSpec', 'sag-1000');
  await page.selectOption('#g-HaType', 'no_backup');
  // A value the API refuses: the console shows the API's own code and message.
  await page.fill('#g-MaxBandWidth', '0');
  await page.getByRole('button', { name: 'Create gateway', exact: true }).click();
  const refused = await a.call('CreateSmartAccessGateway', { HardWareSpec: 'sag-1000', HaType: 'no_backup', MaxBandWidth: '0' })
    .then(() => null, (e) => e);
  assert.ok(refused, 'the API refuses MaxBandWidth 0');
  await page.waitForFunction((code) => document.querySelector('[role=alert]')?.textContent.includes(code), refused.code);
  assert.ok((await page.textContent('[role=alert]')).includes(refused.data.Message));
  await page.fill('#g-MaxBandWidth', '50');
  await shoot('gateway-new');
  await page.getByRole('button', { name: 'Create gateway', exact: true }).click();
  await page.waitForURL(/#\/gateways\/sag-/);
  const id = decodeURIComponent(page.url().split('/').pop());
  const listed = (await a.call('DescribeSmartAccessGateways', { SmartAGId: id })).SmartAccessGateways.SmartAccessGateway[0];
  assert.equal(listed.Name, 'branch-gw');
  assert.equal(listed.HardwareVersion, 'sag-1000');
  assert.equal(listed.MaxBandwidth, '50');
  // The call it made, as a pop-core program: run it, and it creates a second gateway.
  await page.locator('.calls details', { hasText: 'CreateSmartAccessGateway' }).first().locator('summary').click();
  const create = (await snippets()).find((s) => /CreateSmartAccessGateway/.test(s.text));
  assert.match(create.text, /process\.env\.ALIBABA_CLOUD_ACCESS_KEY_SECRET/);
  const again = runSnippet(create.text);
  assert.match(again.SmartAGId, /^sag-/);
  assert.notEqual(again.SmartAGId, id);

  await page.fill('#bind-sn', 'UI-SN-0001');
  await page.getByRole('button', { name: 'Bind', exact: true }).click();
  const dialog = page.getByRole('dialog', { name: 'SecretKey of device UI-SN-0001' });
  await dialog.waitFor();
  const shown = await page.textContent('#device-secret');
  const dev = (await a.call('DescribeSmartAccessGatewayAttribute', { SmartAGId: id })).Devices.Device[0];
  assert.equal(dev.SerialNumber, 'UI-SN-0001');
  assert.equal(shown, dev.SecretKey, 'the dialog shows the API\'s SecretKey');
  assert.match(await page.locator('details.call', { hasText: 'BindSerialNumber' }).first().textContent(), /BindSerialNumber SmartAGId=/);
  await shoot('gateway-secret', ['#device-secret']);
  await assertKeptNowhere(shown);
  await page.keyboard.press('Escape');
  await dialog.waitFor({ state: 'detached' });
  // A closed <dialog> leaves the accessibility tree (the role locator) at
  // once, and the DOM at Preact's next render, when the key state is dropped.
  await page.locator('#device-secret').waitFor({ state: 'detached' });
  assert.ok(!(await page.content()).includes(shown), 'closed: the SecretKey is gone from the page');
  await page.reload();
  await page.locator('table caption:has-text("1 device")').waitFor();
  assert.ok(!(await page.content()).includes(shown), 'a reload does not show it again');
  await assertKeptNowhere(shown);

  assert.equal((await a.call('DescribeSmartAccessGatewayAttribute', { SmartAGId: id })).Devices.Device[0].LastReportTime, '',
    'never reported: no time');
  await page.locator('table.wide tbody tr', { hasText: 'UI-SN-0001' }).locator('td[data-label="Last report"]', { hasText: 'never' }).waitFor();
  // The key works for the real agent; the device table then shows what it reported.
  const g = { id, serial: 'UI-SN-0001', secret: shown };
  assert.equal(agentRun(srv.url, g, ['--once']).status, 0);
  await page.reload();
  const row = page.locator('table.wide tbody tr', { hasText: 'UI-SN-0001' });
  await row.locator('td', { hasText: '1.7.0' }).waitFor();
  const cells = await row.locator('td').allTextContents();
  const seen = (await a.call('DescribeSmartAccessGatewayAttribute', { SmartAGId: id })).Devices.Device[0];
  assert.match(seen.LastReportTime, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  assert.ok(Math.abs(Date.parse(seen.LastReportTime) - Date.now()) < 60000, seen.LastReportTime);
  assert.deepEqual(cells.slice(0, 6), ['UI-SN-0001', 'sag-1000', '1.7.0', seen.HaState || '—', 'online (Active)', seen.LastReportTime]);
  await shoot('gateway-detail-bound');

  // A serial number bound elsewhere: the API's own error.
  const other = await provision(a);
  await page.fill('#bind-sn', other.serial);
  await page.getByRole('button', { name: 'Bind', exact: true }).click();
  await page.waitForFunction(() => /InvalidParameter/.test(document.querySelector('[role=alert]')?.textContent));
  assert.match(await page.textContent('[role=alert]'), /SerialNumber/);

  await page.getByRole('button', { name: 'Unbind UI-SN-0001' }).click();
  await page.getByRole('button', { name: 'Confirm unbind UI-SN-0001' }).click();
  await page.locator('table caption:has-text("0 devices")').waitFor();
  assert.deepEqual((await a.call('DescribeSmartAccessGatewayAttribute', { SmartAGId: id })).Devices.Device, []);
  assert.notEqual(agentRun(srv.url, g, ['--once']).status, 0, 'the unbound device\'s key is revoked');
  assert.match(await page.locator('details.call[open]').textContent(), /UnbindSerialNumber SmartAGId=\S+ SerialNumber=UI-SN-0001/);
});

test('flow logs: a netflow-only log sends no SLS fields; Terraform uses the provider\'s arguments; a call\'s snippet runs', async () => {
  await page.goto(`${srv.url}/console/#/flowlogs/new`);
  await page.fill('#f-Name', 'nf-only');
  await page.selectOption('#f-OutputType', 'netflow');
  assert.equal(await page.locator('#f-SlsRegionId').count(), 0, 'no SLS fields for netflow');
  await page.fill('#f-NetflowServerIp', '192.0.2.9');
  await page.fill('#f-NetflowServerPort', '9995');
  await page.getByRole('button', { name: 'Create flow log', exact: true }).click();
  await page.waitForURL(/#\/flowlogs\/fl-/);
  const id = decodeURIComponent(page.url().split('/').pop());
  const sent = b.requests.filter((r) => /[?&]OutputType=netflow/.test(r.url())).pop();
  assert.ok(sent, 'the CreateFlowLog request');
  assert.doesNotMatch(sent.url(), /SlsRegionId|ProjectName|LogstoreName/);
  const fl = (await a.call('DescribeFlowLogs', { FlowLogId: id })).FlowLogs.FlowLogSetType[0];
  assert.equal(fl.SlsRegionId, '');

  // This flow log as Terraform: only the provider's arguments, each with the API's value.
  await page.locator('summary', { hasText: 'as Terraform' }).click();
  const tf = (await snippets()).find((s) => s.name === 'Terraform' && /resource "alicloud_smartag_flow_log"/.test(s.text)).text;
  const block = tf.slice(tf.indexOf('resource "alicloud_smartag_flow_log"'));
  const args = Object.fromEntries([...block.matchAll(/^ {2}(\w+)\s+= (.+)$/gm)].map((m) => [m[1], JSON.parse(m[2])]));
  for (const k of Object.keys(args)) assert.ok(TF_SCHEMA.includes(k), `${k} is an argument of alicloud_smartag_flow_log`);
  const want = { flow_log_name: 'nf-only', output_type: 'netflow', netflow_server_ip: '192.0.2.9', netflow_server_port: 9995,
    netflow_version: fl.NetflowVersion, active_aging: fl.ActiveAging, inactive_aging: fl.InactiveAging, status: 'Active' };
  if (fl.Description) want.description = fl.Description;
  assert.deepEqual(args, want);
  assert.match(tf, new RegExp(`endpoints \\{ smartag = "127\\.0\\.0\\.1:${srv.port}" \\}`));
  assert.match(tf, new RegExp(`terraform import alicloud_smartag_flow_log\\.nf_only ${id}`));
  await shoot('flowlog-terraform');

  // Deactivate in the UI; the box shows that call, as pop-core and as Terraform (status).
  await page.getByRole('button', { name: 'Deactivate', exact: true }).click();
  await page.getByRole('button', { name: 'Activate', exact: true }).waitFor();
  const box = page.locator('details.call[open]', { hasText: 'DeactiveFlowLog' });
  assert.match(await box.locator('pre[data-snippet=Terraform]').textContent(), /status\s+= "Inactive"/);
  await page.getByRole('button', { name: 'Activate', exact: true }).click();
  await page.locator('details.call[open]', { hasText: /\bActiveFlowLog FlowLogId/ }).waitFor();
  const activate = await page.locator('details.call[open] pre[data-snippet=pop-core]').textContent();
  await a.call('DeactiveFlowLog', { FlowLogId: id });
  assert.match(runSnippet(activate).RequestId, /./);
  assert.equal((await a.call('DescribeFlowLogs', { FlowLogId: id })).FlowLogs.FlowLogSetType[0].Status, 'Active',
    'the copied ActiveFlowLog snippet activated it');
  for (const s of await snippets()) assert.ok(!s.text.includes(TEST_SECRET), 'no secret in a snippet');
});

// Press Tab until the focused element matches sel; returns how many presses.
async function tabTo(sel) {
  // The target may come with data the page is still loading (a list, a
  // gateway's detail): Tab can reach only what is there, so wait for it first.
  await page.locator(sel).first().waitFor();
  for (let i = 1; i <= MAX_TABS; i++) {
    await page.keyboard.press('Tab');
    if (await page.evaluate((s) => document.activeElement?.matches(s), sel)) return i;
  }
  throw new Error(`Tab never reached ${sel} on ${page.url()}`);
}

test('keyboard only (Tab, Enter, Escape and typing): sign in, create a flow log, open a gateway, bind, open traffic', async () => {
  const g = await provision(a);
  assert.equal(agentRun(srv.url, g, ['--once']).status, 0);
  await page.evaluate(() => sessionStorage.clear());
  await page.goto(`${srv.url}/console/#/signin`);
  await page.reload();
  await tabTo('#akid');
  await page.keyboard.type(TEST_AKID);
  await tabTo('#secret');
  await page.keyboard.type(TEST_SECRET);
  await page.keyboard.press('Enter');
  await page.waitForURL(/#\/flowlogs$/);
  await tabTo('a[href="#/flowlogs/new"]');
  await page.keyboard.press('Enter');
  await page.waitForURL(/#\/flowlogs\/new$/);
  await tabTo('#f-Name');
  await page.keyboard.type('kbd-log');
  await tabTo('#f-ProjectName');
  await page.keyboard.type('kbdproj');
  await tabTo('#f-LogstoreName');
  await page.keyboard.type('flows');
  await page.keyboard.press('Enter'); // submits the form
  await page.waitForURL(/#\/flowlogs\/fl-/);
  const fl = decodeURIComponent(page.url().split('/').pop());
  assert.equal((await a.call('DescribeFlowLogs', { FlowLogId: fl })).FlowLogs.FlowLogSetType[0].Name, 'kbd-log');
  await tabTo('header a[href="#/gateways"]');
  await page.keyboard.press('Enter');
  await page.waitForURL(/#\/gateways$/);
  await tabTo(`a[href="#/gateways/${g.id}"]`);
  await page.keyboard.press('Enter');
  await page.waitForURL(new RegExp(`#/gateways/${g.id}$`));
  await tabTo('#bind-sn');
  await page.keyboard.type('KBD-SN-2');
  await page.keyboard.press('Enter');
  // no_backup holds one device: the API refuses a second, and says so.
  await page.waitForFunction(() => /InvalidParameter/.test(document.querySelector('[role=alert]')?.textContent));
  await tabTo('header a[href="#/flowlogs"]');
  await page.keyboard.press('Enter');
  await page.waitForURL(/#\/flowlogs$/);
  await tabTo(`a[href="#/flowlogs/${fl}"]`);
  await page.keyboard.press('Enter');
  await page.waitForURL(new RegExp(`#/flowlogs/${fl}$`));
  await tabTo(`a[href="#/flowlogs/${fl}/traffic"]`);
  await page.keyboard.press('Enter');
  await page.waitForURL(/\/traffic$/);
  await page.locator('#filter').waitFor(); // no records yet: the project is made at the first delivery

  // Escape closes the SecretKey dialog, and focus is back on the page.
  const g2 = await a.call('CreateSmartAccessGateway', { HardWareSpec: 'sag-1000', HaType: 'no_backup' });
  await page.goto(`${srv.url}/console/#/gateways/${g2.SmartAGId}`);
  await tabTo('#bind-sn');
  await page.keyboard.type('KBD-SN-3');
  await page.keyboard.press('Enter');
  await page.getByRole('dialog').waitFor();
  assert.equal(await page.evaluate(() => document.activeElement.closest('dialog') !== null), true, 'focus is in the dialog');
  await page.keyboard.press('Escape');
  await page.getByRole('dialog').waitFor({ state: 'detached' });
});

// Every visible control has an accessible name and is reached by Tab.
async function audit(name) {
  const snap = await page.locator('body').ariaSnapshot();
  const unnamed = snap.split('\n').filter((l) => /^\s*- (button|link|textbox|combobox|checkbox|spinbutton|radio|searchbox)( \[[^\]]*\])?:?$/.test(l));
  assert.deepEqual(unnamed, [], `${name}: controls without an accessible name:\n${snap}`);
  const total = await page.evaluate(() => {
    const els = [...document.querySelectorAll('a[href], button:not([disabled]), input:not([disabled]), select:not([disabled]), textarea, summary')]
      .filter((e) => e.checkVisibility());
    els.forEach((e, i) => { e.dataset.auditIdx = String(i); });
    window.__reached = new Set();
    document.addEventListener('focusin', (ev) => { if (ev.target.dataset?.auditIdx) window.__reached.add(ev.target.dataset.auditIdx); });
    document.activeElement?.blur();
    return els.length;
  });
  // Chromium starts Tab where focus last was, and the calls panel grows as a
  // live page refreshes: go round up to three times, stopping once every
  // control has been reached.
  for (let i = 0; i < 3 * (total + 5); i++) {
    await page.keyboard.press('Tab');
    if (i % 10 === 9 && await page.evaluate((n) => window.__reached.size >= n, total)) break;
  }
  const missed = await page.evaluate(() => [...document.querySelectorAll('[data-audit-idx]')]
    .filter((e) => !window.__reached.has(e.dataset.auditIdx)).map((e) => e.outerHTML.slice(0, 120)));
  assert.deepEqual(missed, [], `${name}: not reachable with Tab: ${missed.join(" | ")}`);
  return total;
}

async function noHorizontalScroll(name) {
  await page.setViewportSize({ width: ZOOM_200_WIDTH, height: 860 });
  await page.waitForTimeout(100);
  const [sw, w] = await page.evaluate(() => [document.documentElement.scrollWidth, innerWidth]);
  assert.ok(sw <= w, `${name} at 200 %: scrollWidth ${sw} > ${w}`);
  await page.screenshot({ path: join(SHOTS, `${name}-zoom200-light.png`), fullPage: true });
  await page.setViewportSize({ width: 1280, height: 860 });
}

test('every page: controls labelled and reachable by Tab; no horizontal scrolling at 200 % zoom', async () => {
  const fl = (await a.call('CreateFlowLog', { Name: 'audit', OutputType: 'sls', SlsRegionId: 'cn-shanghai',
    ProjectName: 'auditp', LogstoreName: 'flows' })).FlowLogId;
  const g = await provision(a);
  const pages = [['flowlogs', '#/flowlogs', 'table caption'], ['flowlog-new', '#/flowlogs/new', '#f-Name'],
    ['flowlog-detail', `#/flowlogs/${fl}`, 'dl.props'], ['flowlog-edit', `#/flowlogs/${fl}?edit=1`, '#f-Name'],
    ['gateways', '#/gateways', `a[href="#/gateways/${g.id}"]`], ['gateway-new', '#/gateways/new', '#g-Name'],
    ['gateway-detail', `#/gateways/${g.id}`, '#bind-sn'], ['traffic', `#/flowlogs/${fl}/traffic`, '#filter'],
    ['signin', '#/signin', '#akid']];
  for (const [name, hash, ready] of pages) {
    await page.goto(`${srv.url}/console/${hash}`);
    await page.locator(ready).first().waitFor();
    const n = await audit(name);
    assert.ok(n >= 3, `${name}: ${n} controls`);
    await noHorizontalScroll(name);
  }
  await page.goto(`${srv.url}/console/#/gateways`);
  await page.locator(`a[href="#/gateways/${g.id}"]`).waitFor();
  await shoot('gateways-list');
});
