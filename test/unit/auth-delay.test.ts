import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AuthDelay, type AuthDelayOptions } from '../../src/auth/auth-delay.js';

/** An AuthDelay on a clock the test moves. */
function delay(opts: AuthDelayOptions = {}) {
  let now = 0;
  const d = new AuthDelay({
    ...opts,
    clock: { now: () => now, setTimeout: () => undefined, clearTimeout: () => {} },
  });
  return {
    d,
    at(ms: number, address: string, user: string): number {
      now = ms;
      return d.failure(address, user);
    },
    set now(ms: number) {
      now = ms;
    },
    keys: () => [...(d as unknown as { recent: Map<string, unknown> }).recent.keys()],
  };
}

describe('AuthDelay', () => {
  it('doubles with recent failures of the same address and user, up to the cap', () => {
    const t = delay({ baseMs: 100, maxMs: 1000, windowMs: 60_000 });
    assert.deepEqual(
      [1, 2, 3, 4, 5, 6].map((i) => t.at(i * 1000, '127.0.0.1', 'app')),
      [100, 200, 400, 800, 1000, 1000],
    );
  });

  it('keys on address and user together: other users and addresses start from scratch', () => {
    const t = delay({ baseMs: 100, maxMs: 1000 });
    t.at(0, '127.0.0.1', 'app');
    t.at(1, '127.0.0.1', 'app');
    assert.equal(t.at(2, '127.0.0.1', 'admin'), 100);
    assert.equal(t.at(3, '10.0.0.9', 'app'), 100);
    assert.equal(t.at(4, '127.0.0.1', 'app'), 400);
  });

  it('forgets failures after the window', () => {
    const t = delay({ baseMs: 100, maxMs: 1000, windowMs: 10_000 });
    t.at(0, 'a', 'u');
    t.at(5_000, 'a', 'u');
    assert.equal(t.at(30_000, 'a', 'u'), 100);
  });

  it('drops expired pairs from the table on the clock, not only when the same pair fails again', () => {
    const t = delay({ baseMs: 100, windowMs: 10_000 });
    for (let i = 0; i < 100; i++) t.at(i, 'a', `user-${i}`);
    assert.equal(t.d.size, 100);
    t.now = 10_050;
    assert.equal(t.d.size, 50, 'the pairs that failed more than a window ago are gone');
    t.at(20_000, 'b', 'other');
    assert.equal(t.d.size, 1);
  });

  it('remembers a bounded number of pairs, forgetting the least recent', () => {
    const t = delay({ baseMs: 100, maxKeys: 3 });
    for (const u of ['a', 'b', 'c', 'd']) t.at(0, 'x', u);
    assert.equal(t.d.size, 3);
    assert.equal(t.at(1, 'x', 'a'), 100, 'a was evicted');
    assert.equal(t.at(2, 'x', 'd'), 200, 'd was kept');
  });

  it('keeps a fixed-size key whatever the length of the user name', () => {
    const t = delay({ baseMs: 100 });
    const long = 'u'.repeat(10_000);
    t.at(0, '127.0.0.1', long);
    assert.equal(t.at(1, '127.0.0.1', long), 200, 'the same long name is the same pair');
    assert.equal(t.at(2, '127.0.0.1', `${long}x`), 100, 'another long name is another pair');
    for (const key of t.keys()) assert.ok(key.length <= 64, `key of ${key.length} characters`);
  });
});
