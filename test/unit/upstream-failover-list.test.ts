import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { TokenCache } from '../../src/token/token-cache.js';
import { type Endpoint, FailoverList } from '../../src/upstream/failover-list.js';
import type { UpstreamTarget } from '../../src/upstream/target.js';

function endpoint(hostname: string): Endpoint {
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
  const list = new FailoverList([a, b], {
    clock,
    random: () => 1, // the top of the jitter range: delays are exactly the ceiling
    onStateChange: (ep, up) => changes.push(`${ep.target.hostname} ${up ? 'up' : 'down'}`),
  });
  return { list, a, b, changes, at: (t: number) => (now = t) };
}

describe('FailoverList', () => {
  it('prefers endpoints in order; a failed one is skipped during its backoff', () => {
    const { list, a, b, changes, at } = setup();
    assert.equal(list.pick(new Set()), a);
    assert.equal(list.pick(new Set([a])), b);
    list.failed(a, 'ECONNREFUSED');
    assert.equal(list.pick(new Set()), b);
    assert.deepEqual(changes, ['a down']);
    at(999);
    assert.equal(list.pick(new Set()), b, 'first backoff is 1 s');
    at(1000);
    assert.equal(list.pick(new Set()), a, 'due: one probe');
    assert.equal(list.pick(new Set()), b, 'while the probe runs, others use b');
    list.succeeded(a);
    assert.equal(list.pick(new Set()), a);
    assert.deepEqual(changes, ['a down', 'a up']);
  });

  it('backoff doubles up to 30 s and resets on success', () => {
    const { list, a, at } = setup();
    const delays: number[] = [];
    let t = 0;
    for (let i = 0; i < 7; i++) {
      list.failed(a, 'timeout');
      const s = list.status()[0];
      delays.push(s?.retryInMs ?? -1);
      t += 100_000;
      at(t);
    }
    assert.deepEqual(delays, [1000, 2000, 4000, 8000, 16000, 30000, 30000]);
    list.succeeded(a);
    assert.equal(list.status()[0]?.consecutiveFailures, 0);
  });

  it('with everything down, still hands out every endpoint in order as a last resort', () => {
    const { list, a, b } = setup();
    list.failed(a, 'x');
    list.failed(b, 'y');
    assert.equal(list.pick(new Set()), a);
    assert.equal(list.pick(new Set([a])), b);
    assert.equal(list.pick(new Set([a, b])), undefined);
  });

  it('status reports each endpoint', () => {
    const { list, a } = setup();
    list.failed(a, 'ECONNREFUSED');
    const [sa, sb] = list.status();
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
