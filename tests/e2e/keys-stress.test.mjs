// Issue 9: a key deleted by `sagflow keys delete` is refused by every request
// sent after the command returned, and a key made by `sagflow keys create` is
// accepted by the very next request, on one busy serve. LANES lanes run CYCLES
// create/use/delete cycles between them with the real CLI, while BACKGROUND
// clients keep signing requests with keys of their own, and in every cycle a
// hammer keeps using the key that is being deleted, so cache fills race the
// invalidation. A request counts as "after the delete" when it was started
// after the CLI's exit was seen; one started earlier may go either way.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { startServer, stopClean, BIN } from './lib/server.mjs';
import { popCore } from './lib/clients.mjs';

const run = promisify(execFile);
const CYCLES = 1000;
const LANES = 4;      // cycles run in this many concurrent lanes
const BACKGROUND = 3; // other clients, each with its own key, never deleted
const LATE_TRIES = 2; // hammer requests started after the delete, per cycle
const PACE_MS = 5;    // a background client's pause between requests (CPU for the cycles)
const NOT_FOUND = 'InvalidAccessKeyId.NotFound';

// execFile, not spawnSync: the event loop, and with it every other client,
// keeps running while the CLI does.
async function keys(...args) {
  return (await run(BIN, ['keys', ...args], { encoding: 'utf8', timeout: 30000 })).stdout;
}

async function createKey(db, account) {
  return JSON.parse(await keys('create', '--db', db, '--account', account));
}

function client(srv, k) {
  return popCore(srv, { akid: k.AccessKeyId, secret: k.AccessKeySecret });
}

// Signs requests with its own key until stopped, every one of which must
// succeed; a short pause between them leaves the CPU to the cycles' CLIs.
function background(srv, k) {
  const c = client(srv, k);
  let running = true, answered = 0;
  const loop = (async () => {
    while (running) {
      assert.ok((await c.call('DescribeRegions', {})).RequestId);
      answered++;
      await new Promise((resolve) => setTimeout(resolve, PACE_MS));
    }
  })();
  return async () => { running = false; await loop; return answered; };
}

const seen = { hammer: 0, hammerAccepted: 0, late: 0 };

// Uses k back to back while the lane deletes it, until LATE_TRIES requests
// started after state.deleted was set have been refused.
async function hammer(srv, k, state, where) {
  const c = client(srv, k);
  for (let late = 0; late < LATE_TRIES;) {
    const after = state.deleted;
    let accepted = false;
    try {
      await c.call('DescribeRegions', {});
      accepted = true;
    } catch (e) {
      if (e.code !== NOT_FOUND) throw e;
    }
    assert.ok(!(accepted && after), `${where}: deleted key ${k.AccessKeyId} accepted by a ` +
      'request sent after `keys delete` returned');
    seen.hammer++;
    if (accepted) seen.hammerAccepted++;
    if (after) late++, seen.late++;
  }
}

async function cycle(srv, lane, i) {
  const where = `lane ${lane} cycle ${i}`;
  const k = await createKey(srv.dbPath, `lane${lane}`);
  const c = client(srv, k);
  assert.ok((await c.call('DescribeRegions', {})).RequestId, `${where}: a new key is accepted`);
  const state = { deleted: false };
  const h = hammer(srv, k, state, where);
  await keys('delete', '--db', srv.dbPath, '--access-key-id', k.AccessKeyId);
  state.deleted = true;
  await assert.rejects(c.call('DescribeRegions', {}), (e) => e.code === NOT_FOUND,
    `${where}: the next request with the deleted key is refused`);
  await h;
}

test(`${CYCLES} create/use/delete cycles on one busy serve: no deleted key is accepted`,
  { timeout: 300000 }, async (t) => {
    // The hammering clients share one key far past its default budget (100/s);
    // this test is about the key cache, fairness.test.mjs about budgets.
    const srv = await startServer({ args: ['--rate-limit', 'key=1000000'] });
    t.after(() => stopClean(srv));
    const stops = [];
    for (let i = 0; i < BACKGROUND; i++)
      stops.push(background(srv, await createKey(srv.dbPath, `other${i}`)));
    const started = Date.now();
    try {
      await Promise.all(Array.from({ length: LANES }, async (_, lane) => {
        for (let i = lane; i < CYCLES; i += LANES)
          await cycle(srv, lane, i);
      }));
    } finally {
      const answered = await Promise.all(stops.map((stop) => stop()));
      t.diagnostic(`${CYCLES} cycles in ${((Date.now() - started) / 1000).toFixed(1)} s; ` +
        `background requests answered: ${answered.join(', ')}; hammer requests: ${seen.hammer} ` +
        `(${seen.hammerAccepted} accepted before the delete returned, ${seen.late} refused ` +
        'after)');
    }
  });
