import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ProxyError } from '../../src/errors.js';
import { ConnectRateLimiter } from '../../src/upstream/rate-limiter.js';
import { ManualClock } from './manual-clock.js';

function setup(rate: number, burst: number) {
  const clock = new ManualClock();
  const lengths: number[] = [];
  const limiter = new ConnectRateLimiter({
    ratePerSecond: rate,
    burst,
    clock,
    onQueueLength: (n) => lengths.push(n),
  });
  const granted: Array<{ id: number; at: number }> = [];
  const take = (id: number, timeoutMs = 60_000, extra: { onSlow?: () => void; signal?: AbortSignal } = {}) =>
    limiter.acquire({ timeoutMs, ...extra }).then(
      () => {
        granted.push({ id, at: clock.now() });
      },
      (err: unknown) => err,
    );
  return { clock, limiter, granted, take, lengths };
}

describe('ConnectRateLimiter', () => {
  it('lets a full burst through at once, then paces at the rate', async () => {
    const { clock, granted, take } = setup(10, 5);
    for (let i = 0; i < 15; i++) void take(i);
    await clock.advance(0);
    assert.equal(granted.length, 5, 'the burst goes at once');
    await clock.advance(100);
    assert.equal(granted.length, 6, 'one more per 100 ms at 10/s');
    await clock.advance(900);
    assert.equal(granted.length, 15);
    const at = granted.map((g) => g.at);
    assert.deepEqual(at.slice(5), [100, 200, 300, 400, 500, 600, 700, 800, 900, 1000]);
  });

  it('never exceeds rate·window + burst in any window', async () => {
    const { clock, granted, take } = setup(20, 5);
    for (let i = 0; i < 100; i++) void take(i);
    await clock.advance(10_000);
    assert.equal(granted.length, 100);
    for (const g of granted) {
      const inWindow = granted.filter((h) => h.at >= g.at && h.at < g.at + 1000).length;
      assert.ok(inWindow <= 25, `at most rate + burst in one second (${inWindow} from ${g.at})`);
    }
  });

  it('refills while idle up to the burst only', async () => {
    const { clock, granted, take } = setup(10, 3);
    for (let i = 0; i < 3; i++) void take(i);
    await clock.advance(60_000);
    for (let i = 3; i < 10; i++) void take(i);
    await clock.advance(0);
    assert.equal(granted.length, 6, 'an idle minute refills 3 tokens, not 600');
  });

  it('serves waiters strictly in arrival order, also against later arrivals', async () => {
    const { clock, granted, take } = setup(1, 1);
    void take(0);
    void take(1);
    void take(2);
    await clock.advance(0);
    await clock.advance(500);
    void take(3);
    await clock.advance(5_000);
    assert.deepEqual(
      granted.map((g) => g.id),
      [0, 1, 2, 3],
    );
    assert.deepEqual(
      granted.map((g) => g.at),
      [0, 1000, 2000, 3000],
    );
  });

  it('a waiter that times out gets CONNECT_QUEUE_TIMEOUT (53400) naming the rate; the next one moves up', async () => {
    const { clock, granted, take, limiter } = setup(1, 1);
    void take(0);
    await clock.advance(0);
    const late = take(1, 500);
    const next = take(2, 10_000);
    await clock.advance(600);
    const err = await late;
    assert.ok(err instanceof ProxyError);
    assert.equal(err.code, 'CONNECT_QUEUE_TIMEOUT');
    assert.equal(err.sqlstate, '53400');
    assert.equal(
      err.message,
      'timed out after 500ms waiting for a DSQL connection slot: the proxy limits new connections to 1 per second (--connect-rate)',
    );
    assert.match(err.hint ?? '', /--connect-rate/);
    assert.equal(limiter.queueLength, 1);
    await clock.advance(400);
    await next;
    assert.deepEqual(
      granted.map((g) => [g.id, g.at]),
      [
        [0, 0],
        [2, 1000],
      ],
    );
  });

  it('calls onSlow once after 1 s of waiting, and not for a short wait', async () => {
    const { clock, take } = setup(2, 1);
    let slow = 0;
    let quick = 0;
    void take(0);
    void take(1, 60_000, { onSlow: () => quick++ });
    void take(2);
    void take(3, 60_000, { onSlow: () => slow++ });
    await clock.advance(999);
    assert.equal(quick, 0, 'served at 500 ms: its timer was cleared');
    assert.equal(slow, 0);
    await clock.advance(1);
    assert.equal(slow, 1, 'still queued after 1 s');
    await clock.advance(5_000);
    assert.equal(slow, 1, 'once');
    assert.equal(quick, 0);
  });

  it('an aborted waiter leaves the queue and frees its place', async () => {
    const { clock, granted, take, limiter, lengths } = setup(1, 1);
    void take(0);
    const ac = new AbortController();
    const gone = take(1, 60_000, { signal: ac.signal });
    void take(2);
    assert.equal(limiter.queueLength, 2);
    ac.abort(new Error('client left'));
    assert.match(String(await gone), /client left/);
    await clock.advance(1000);
    assert.deepEqual(
      granted.map((g) => g.id),
      [0, 2],
    );
    assert.equal(lengths.at(-1), 0);
    assert.equal(clock.pending, 0, 'no timers left behind');
  });

  it('reports the queue length as it changes', async () => {
    const { clock, take, lengths } = setup(2, 1);
    for (let i = 0; i < 4; i++) void take(i);
    await clock.advance(2_000);
    assert.deepEqual(lengths, [1, 2, 3, 2, 1, 0]);
  });
});
