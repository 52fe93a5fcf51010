import assert from 'node:assert/strict';
import { type TestContext, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { HealthState } from '../../src/admin/health.js';

/** A HealthState with a 400 ms stall limit, closed when the test ends. */
function healthFor(t: TestContext): HealthState {
  const health = new HealthState([], { maxLoopDelayMs: 400 });
  t.after(() => health.close());
  return health;
}

/** Keeps the event loop busy, as a runaway synchronous task would. */
function blockFor(ms: number): void {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    // spin
  }
}

test('liveness: a stall longer than the limit fails the probe once, then it recovers', async (t) => {
  const health = healthFor(t);
  await sleep(50);
  assert.equal(health.liveness().ok, true);
  // Right after a probe, and the monitor's timer fires only once a second: measured all the same.
  blockFor(1500);
  await sleep(50);
  const stalled = health.liveness();
  assert.equal(stalled.ok, false);
  assert.match(stalled.detail, /^event loop stalled for \d+ ms$/);
  const ms = Number(/(\d+) ms/.exec(stalled.detail)?.[1]);
  assert.ok(ms > 400 && ms < 3000, `measured ${ms} ms`);
  // The probe reports the worst delay since the previous probe, so the next one is healthy again.
  await sleep(50);
  assert.equal(health.liveness().ok, true);
});

test('liveness: a stall still in progress when the probe runs counts', async (t) => {
  const health = healthFor(t);
  await sleep(1100);
  health.liveness();
  // The probe itself runs late (as an HTTP request queued behind the stall would), before the
  // monitor's own timer has had a chance to see the gap.
  blockFor(1500);
  assert.equal(health.liveness().ok, false);
});

test('liveness: short delays below the limit pass', async (t) => {
  const health = healthFor(t);
  blockFor(100);
  await sleep(1100);
  const check = health.liveness();
  assert.equal(check.ok, true);
  assert.match(check.detail, /^ok \(max event loop delay \d+\.\d ms\)$/);
});
