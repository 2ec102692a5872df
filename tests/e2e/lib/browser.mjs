// A real browser for the console tests: Debian's chromium (/usr/bin/chromium)
// driven by playwright-core (pinned in package-lock.json), headless, with a
// fresh profile that is removed on close. Every request and response the page
// makes is recorded, so tests can check origins and what was sent.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];

export async function openBrowser() {
  const profile = mkdtempSync(join(tmpdir(), 'sagflow-chromium-'));
  const ctx = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM, headless: true, args: ARGS, viewport: { width: 1280, height: 860 },
  });
  const requests = [];
  const bodies = []; // {url, type, body} of every script and stylesheet, read as they arrive
  ctx.on('request', (r) => requests.push(r));
  ctx.on('response', (r) => {
    const type = r.headers()['content-type'] || '';
    if (/javascript|css/.test(type)) bodies.push(r.body().then((body) => ({ url: r.url(), type, body })));
  });
  return {
    ctx, requests, bodies,
    page: ctx.pages()[0] ?? (await ctx.newPage()),
    async close() {
      await ctx.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}
