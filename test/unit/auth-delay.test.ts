import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AuthDelay } from '../../src/auth/auth-delay.js';

describe('AuthDelay', () => {
  it('doubles with recent failures of the same address and user, up to the cap', () => {
    const d = new AuthDelay({ baseMs: 100, maxMs: 1000, windowMs: 60_000 });
    assert.deepEqual(
      [1, 2, 3, 4, 5, 6].map((i) => d.failure('127.0.0.1', 'app', i * 1000)),
      [100, 200, 400, 800, 1000, 1000],
    );
  });

  it('keys on address and user together: other users and addresses start from scratch', () => {
    const d = new AuthDelay({ baseMs: 100, maxMs: 1000 });
    d.failure('127.0.0.1', 'app', 0);
    d.failure('127.0.0.1', 'app', 1);
    assert.equal(d.failure('127.0.0.1', 'admin', 2), 100);
    assert.equal(d.failure('10.0.0.9', 'app', 3), 100);
    assert.equal(d.failure('127.0.0.1', 'app', 4), 400);
  });

  it('forgets failures after the window', () => {
    const d = new AuthDelay({ baseMs: 100, maxMs: 1000, windowMs: 10_000 });
    d.failure('a', 'u', 0);
    d.failure('a', 'u', 5_000);
    assert.equal(d.failure('a', 'u', 30_000), 100);
  });

  it('remembers a bounded number of pairs, forgetting the least recent', () => {
    const d = new AuthDelay({ baseMs: 100, maxKeys: 3 });
    for (const u of ['a', 'b', 'c', 'd']) d.failure('x', u, 0);
    assert.equal(d.size, 3);
    assert.equal(d.failure('x', 'a', 1), 100, 'a was evicted');
    assert.equal(d.failure('x', 'd', 2), 200, 'd was kept');
  });
});
