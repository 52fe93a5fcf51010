import assert from 'node:assert/strict';
import dns from 'node:dns';
import net from 'node:net';
import { describe, it } from 'node:test';
import { DnsCache, type DnsEvent, type Resolve } from '../../src/upstream/dns-cache.js';

const HOST = 'c1.dsql.us-east-1.on.aws';
const V4: dns.LookupAddress = { address: '192.0.2.10', family: 4 };
const V6: dns.LookupAddress = { address: '2001:db8::10', family: 6 };
const TTL = 15_000;

/** A resolver whose answers the test gives, one call at a time. */
class ScriptedResolver {
  calls: Array<{ hostname: string; family: number; hints: number }> = [];
  private waiting: Array<{ ok: (a: dns.LookupAddress[]) => void; fail: (e: Error) => void }> = [];

  readonly resolve: Resolve = (hostname, family, hints) => {
    this.calls.push({ hostname, family, hints });
    return new Promise((ok, fail) => this.waiting.push({ ok, fail }));
  };

  get pending(): number {
    return this.waiting.length;
  }

  answer(addresses: dns.LookupAddress[]): void {
    const w = this.waiting.shift();
    assert.ok(w, 'no lookup is waiting');
    w.ok(addresses);
  }

  fail(code: string): void {
    const w = this.waiting.shift();
    assert.ok(w, 'no lookup is waiting');
    w.fail(Object.assign(new Error(`getaddrinfo ${code} ${HOST}`), { code }));
  }
}

interface Setup {
  cache: DnsCache;
  resolver: ScriptedResolver;
  events: DnsEvent[];
  clock: { t: number };
}

function setup(ttlMs = TTL): Setup {
  const resolver = new ScriptedResolver();
  const events: DnsEvent[] = [];
  const clock = { t: 1_000_000 };
  const cache = new DnsCache({
    ttlMs,
    resolve: resolver.resolve,
    now: () => clock.t,
    onEvent: (ev) => events.push(ev),
  });
  return { cache, resolver, events, clock };
}

/** A cache that has looked HOST up once and holds [V4]. */
async function primed(): Promise<Setup> {
  const s = setup();
  const p = lookup(s.cache);
  s.resolver.answer([V4]);
  await p;
  return s;
}

type Outcome = { err: NodeJS.ErrnoException | null; address: string | dns.LookupAddress[]; family?: number };

/** Starts a lookup as net.connect does; the promise settles when its callback runs. */
function lookup(cache: DnsCache, opts: dns.LookupOptions = { all: true }, hostname = HOST): Promise<Outcome> {
  return new Promise((resolve) =>
    cache.lookup(hostname, opts, (err, address, family) =>
      resolve(family === undefined ? { err, address } : { err, address, family }),
    ),
  );
}

/** Whether a lookup's callback has run after the current microtasks and ticks. */
async function settledYet(p: Promise<unknown>): Promise<boolean> {
  let done = false;
  void p.then(() => {
    done = true;
  });
  await new Promise((r) => setImmediate(r));
  return done;
}

describe('DnsCache', () => {
  it('looks a name up once and answers from the cache within the TTL, without the resolver', async () => {
    const { cache, resolver, events, clock } = setup();
    const first = lookup(cache);
    assert.equal(resolver.calls.length, 1);
    resolver.answer([V4, V6]);
    assert.deepEqual((await first).address, [V4, V6]);
    clock.t += TTL / 2;
    const second = await lookup(cache);
    assert.equal(second.err, null);
    assert.deepEqual(second.address, [V6, V4], 'the same addresses, the next one first');
    assert.equal(resolver.calls.length, 1, 'no second lookup within the TTL');
    assert.deepEqual(
      events.map((e) => e.type),
      ['resolved', 'cached'],
    );
  });

  it('passes family and hints to the resolver and keeps families apart', async () => {
    const { cache, resolver } = setup();
    const v4 = lookup(cache, { family: 4, hints: dns.ADDRCONFIG, all: true });
    const any = lookup(cache, { all: true });
    assert.deepEqual(resolver.calls, [
      { hostname: HOST, family: 4, hints: dns.ADDRCONFIG },
      { hostname: HOST, family: 0, hints: 0 },
    ]);
    resolver.answer([V4]);
    resolver.answer([V6, V4]);
    assert.deepEqual((await v4).address, [V4]);
    assert.deepEqual((await any).address, [V6, V4]);
  });

  it('answers (address, family) without all, and a copy of the list with all', async () => {
    const { cache, resolver } = setup();
    const p = lookup(cache, {});
    resolver.answer([V6, V4]);
    const one = await p;
    assert.equal(one.address, V6.address);
    assert.equal(one.family, 6);
    const list = (await lookup(cache)).address as dns.LookupAddress[];
    assert.deepEqual(list, [V4, V6]);
    list.pop();
    list.pop();
    assert.deepEqual(
      (await lookup(cache)).address,
      [V6, V4],
      'a caller changing its list leaves the cache alone',
    );
    assert.equal(resolver.calls.length, 1);
  });

  it('uses several addresses in turn (round robin), each use starting one further', async () => {
    const { cache, resolver } = setup();
    const a = { address: '192.0.2.1', family: 4 };
    const b = { address: '192.0.2.2', family: 4 };
    const c = { address: '192.0.2.3', family: 4 };
    const p = lookup(cache);
    resolver.answer([a, b, c]);
    const orders = [(await p).address];
    for (let i = 0; i < 3; i++) orders.push((await lookup(cache)).address);
    assert.deepEqual(orders, [
      [a, b, c],
      [b, c, a],
      [c, a, b],
      [a, b, c],
    ]);
    const firsts: unknown[] = [];
    for (let i = 0; i < 3; i++) firsts.push((await lookup(cache, {})).address);
    assert.deepEqual(firsts, [b.address, c.address, a.address]);
  });

  it('answers a cache hit after the caller has returned, never inside its call', async () => {
    const { cache } = await primed();
    let called = false;
    cache.lookup(HOST, { all: true }, () => {
      called = true;
    });
    assert.equal(called, false);
    await new Promise((r) => process.nextTick(r));
    assert.equal(called, true);
  });

  it('shares one resolver call between lookups of the same name at the same time', async () => {
    const { cache, resolver } = setup();
    const all = [lookup(cache), lookup(cache), lookup(cache, {})];
    assert.equal(resolver.calls.length, 1);
    resolver.answer([V4]);
    const [a, b, c] = await Promise.all(all);
    assert.deepEqual(a?.address, [V4]);
    assert.deepEqual(b?.address, [V4]);
    assert.equal(c?.address, V4.address);
  });

  it('after the TTL a connection waits for a new lookup, and gets the new address', async () => {
    const { cache, resolver, clock } = await primed();
    clock.t += TTL;
    const next = lookup(cache);
    assert.equal(resolver.calls.length, 2);
    assert.equal(await settledYet(next), false, 'an expired answer is not used while the lookup runs');
    const moved = { address: '192.0.2.99', family: 4 };
    resolver.answer([moved]);
    assert.deepEqual((await next).address, [moved]);
  });

  it('refreshes in the background in the last quarter of the TTL: the connection does not wait', async () => {
    const { cache, resolver, clock, events } = await primed();
    clock.t += TTL * 0.75 - 1;
    await lookup(cache);
    assert.equal(resolver.calls.length, 1, 'no refresh before three quarters of the TTL');
    clock.t += 1;
    const during = await lookup(cache);
    assert.deepEqual(during.address, [V4], 'answered at once from the cache');
    assert.equal(resolver.calls.length, 2, 'one refresh started');
    await lookup(cache);
    assert.equal(resolver.calls.length, 2, 'a use during the refresh does not start another');
    const moved = { address: '192.0.2.99', family: 4 };
    resolver.answer([moved]);
    await new Promise((r) => setImmediate(r));
    // The refreshed answer counts from the refresh: one TTL after the first lookup it is still fresh.
    clock.t += TTL / 2;
    assert.deepEqual((await lookup(cache)).address, [moved]);
    assert.equal(resolver.calls.length, 2);
    assert.equal(events.filter((e) => e.type === 'resolved').length, 2);
  });

  it('keeps the answer when a background refresh fails, and tries again a second later, not on every use', async () => {
    const { cache, resolver, clock, events } = await primed();
    clock.t += TTL * 0.8;
    await lookup(cache);
    resolver.fail('EAI_AGAIN');
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(events.at(-1), { type: 'failed', hostname: HOST, code: 'EAI_AGAIN', stale: true });
    assert.deepEqual((await lookup(cache)).address, [V4]);
    assert.equal(resolver.calls.length, 2, 'no retry at once');
    clock.t += 999;
    await lookup(cache);
    assert.equal(resolver.calls.length, 2, 'no retry within the second');
    clock.t += 1;
    assert.deepEqual((await lookup(cache)).address, [V4], 'the retry runs in the background');
    assert.equal(resolver.calls.length, 3);
    resolver.fail('EAI_AGAIN');
    await new Promise((r) => setImmediate(r));
    assert.equal(events.filter((e) => e.type === 'failed').length, 2, 'each failed lookup reported once');
  });

  it('past the TTL a failing lookup gives the last answer; while lookups fail, later uses get it at once', async () => {
    const { cache, resolver, clock, events } = await primed();
    clock.t += TTL;
    const first = lookup(cache);
    assert.equal(await settledYet(first), false, 'the first use after the TTL waits for the lookup');
    resolver.fail('EAI_AGAIN');
    assert.deepEqual((await first).address, [V4]);
    assert.deepEqual(
      events.slice(-2).map((e) => e.type),
      ['failed', 'stale'],
    );
    // The resolver is still down: this use is answered without waiting, and starts no lookup yet.
    const second = lookup(cache);
    assert.equal(await settledYet(second), true);
    assert.deepEqual((await second).address, [V4]);
    assert.equal(events.at(-1)?.type, 'stale');
    assert.equal(resolver.calls.length, 2);
    // A second later a use starts a lookup in the background; when it succeeds, the new answer is used.
    clock.t += 1000;
    assert.deepEqual((await lookup(cache)).address, [V4]);
    assert.equal(resolver.calls.length, 3);
    const moved = { address: '192.0.2.99', family: 4 };
    resolver.answer([moved]);
    await new Promise((r) => setImmediate(r));
    assert.deepEqual((await lookup(cache)).address, [moved]);
    assert.equal(events.at(-1)?.type, 'cached');
  });

  it('an answer dropped after a failed connection is not used when the lookup fails too', async () => {
    const { cache, resolver, clock } = await primed();
    clock.t += TTL;
    const stale = lookup(cache);
    resolver.fail('EAI_AGAIN');
    await stale;
    cache.forget(HOST);
    const after = lookup(cache);
    assert.equal(resolver.calls.length, 3, 'a forgotten name is looked up at once');
    resolver.fail('EAI_AGAIN');
    assert.equal((await after).err?.code, 'EAI_AGAIN');
  });

  it('a failed lookup with no earlier answer fails the connection, and is not cached', async () => {
    const { cache, resolver, events } = setup();
    const p = lookup(cache);
    resolver.fail('ENOTFOUND');
    const out = await p;
    assert.equal(out.err?.code, 'ENOTFOUND');
    assert.deepEqual(events, [{ type: 'failed', hostname: HOST, code: 'ENOTFOUND', stale: false }]);
    const again = lookup(cache);
    assert.equal(resolver.calls.length, 2, 'the next connection asks again');
    resolver.answer([V4]);
    assert.deepEqual((await again).address, [V4]);
  });

  it('an empty answer is ENOTFOUND', async () => {
    const { cache, resolver } = setup();
    const p = lookup(cache);
    resolver.answer([]);
    assert.equal((await p).err?.code, 'ENOTFOUND');
  });

  it('forget drops every family of that name only; the next connection looks it up again', async () => {
    const { cache, resolver } = setup();
    const a = lookup(cache, { all: true });
    const b = lookup(cache, { family: 4, all: true });
    const other = lookup(cache, { all: true }, 'c2.dsql.us-east-1.on.aws');
    resolver.answer([V4]);
    resolver.answer([V4]);
    resolver.answer([V6]);
    await Promise.all([a, b, other]);
    cache.forget(HOST);
    const after = lookup(cache, { family: 4, all: true });
    lookup(cache, { all: true });
    await lookup(cache, { all: true }, 'c2.dsql.us-east-1.on.aws');
    assert.equal(resolver.calls.length, 5, 'both families of HOST again, c2 from the cache');
    resolver.answer([V4]);
    resolver.answer([V4]);
    assert.deepEqual((await after).address, [V4]);
  });
});

describe('DnsCache as net.connect’s lookup', () => {
  it('autoSelectFamily connections to a host name resolve it once', async () => {
    const server = net.createServer((s) => s.end());
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const { port } = server.address() as net.AddressInfo;
    const calls: string[] = [];
    const cache = new DnsCache({
      ttlMs: TTL,
      resolve: (hostname, family, hints) => {
        calls.push(hostname);
        return dns.promises.lookup(hostname, { family, hints, all: true });
      },
    });
    try {
      for (let i = 0; i < 3; i++) {
        const s = net.connect({ host: 'localhost', port, autoSelectFamily: true, lookup: cache.lookup });
        await new Promise<void>((resolve, reject) => {
          s.once('connect', resolve);
          s.once('error', reject);
        });
        assert.equal(s.remoteAddress, '127.0.0.1');
        s.destroy();
      }
      assert.deepEqual(calls, ['localhost']);
    } finally {
      server.close();
    }
  });
});
