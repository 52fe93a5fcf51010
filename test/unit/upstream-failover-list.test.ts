import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { TokenCache } from '../../src/token/token-cache.js';
import { EndpointPool, type PoolEndpoint } from '../../src/upstream/failover-list.js';
import type { UpstreamTarget } from '../../src/upstream/target.js';

function endpoint(hostname: string): PoolEndpoint {
  const tokens = { status: () => ({ DbConnect: { hasUsable: true, consecutiveFailures: 0 } }) };
  return {
    target: { hostname, region: 'us-east-1' } as UpstreamTarget,
    tokens: tokens as unknown as TokenCache,
    limiter: undefined,
  };
}

function setup() {
  let now = 0;
  const clock = { now: () => now, setTimeout: () => 0, clearTimeout: () => {} };
  const a = endpoint('a');
  const b = endpoint('b');
  const changes: string[] = [];
  const pool = new EndpointPool([a, b], {
    clock,
    random: () => 1, // the top of the jitter range: delays are exactly the ceiling
    onStateChange: (ep, up) => changes.push(`${ep.target.hostname} ${up ? 'up' : 'down'}`),
  });
  return { pool, a, b, changes, at: (t: number) => (now = t) };
}

describe('EndpointPool', () => {
  it('prefers endpoints in order; a failed one is skipped during its backoff', () => {
    const { pool, a, b, changes, at } = setup();
    assert.equal(pool.pick(new Set()), a);
    assert.equal(pool.pick(new Set([a])), b);
    pool.failed(a, 'ECONNREFUSED');
    assert.equal(pool.pick(new Set()), b);
    assert.deepEqual(changes, ['a down']);
    at(999);
    assert.equal(pool.pick(new Set()), b, 'first backoff is 1 s');
    at(1000);
    assert.equal(pool.pick(new Set()), a, 'due: one probe');
    assert.equal(pool.pick(new Set()), b, 'while the probe runs, others use b');
    pool.succeeded(a);
    assert.equal(pool.pick(new Set()), a);
    assert.deepEqual(changes, ['a down', 'a up']);
  });

  it('backoff doubles up to 30 s and resets on success', () => {
    const { pool, a, at } = setup();
    const delays: number[] = [];
    let t = 0;
    for (let i = 0; i < 7; i++) {
      pool.failed(a, 'timeout');
      const s = pool.status()[0];
      delays.push(s?.retryInMs ?? -1);
      t += 100_000;
      at(t);
    }
    assert.deepEqual(delays, [1000, 2000, 4000, 8000, 16000, 30000, 30000]);
    pool.succeeded(a);
    assert.equal(pool.status()[0]?.consecutiveFailures, 0);
  });

  it('with everything down, still hands out every endpoint in order as a last resort', () => {
    const { pool, a, b } = setup();
    pool.failed(a, 'x');
    pool.failed(b, 'y');
    assert.equal(pool.pick(new Set()), a);
    assert.equal(pool.pick(new Set([a])), b);
    assert.equal(pool.pick(new Set([a, b])), undefined);
  });

  it('status reports each endpoint', () => {
    const { pool, a } = setup();
    pool.failed(a, 'ECONNREFUSED');
    const [sa, sb] = pool.status();
    assert.deepEqual(sa, {
      hostname: 'a',
      region: 'us-east-1',
      up: false,
      retryInMs: 1000,
      consecutiveFailures: 1,
      lastError: 'ECONNREFUSED',
      hasUsableToken: true,
    });
    assert.equal(sb?.up, true);
  });
});
