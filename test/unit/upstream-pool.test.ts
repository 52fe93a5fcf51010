import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { describe, it } from 'node:test';
import { silentLogger } from '../../src/log.js';
import type { UpstreamConnection } from '../../src/upstream/connector.js';
import { poolKey, UpstreamPool } from '../../src/upstream/pool.js';

/** Just what the pool touches of a TLS socket: events, `destroyed`, `destroy()`. */
class FakeSocket extends EventEmitter {
  destroyed = false;
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.emit('close');
  }
}

const HOUR = 3_600_000;

function conn(connectedAt = 0): UpstreamConnection & { socket: FakeSocket } {
  return { socket: new FakeSocket(), connectedAt } as unknown as UpstreamConnection & { socket: FakeSocket };
}

function pool(
  opts: Partial<{
    maxIdlePerKey: number;
    maxIdleTotal: number;
    idleTimeoutMs: number;
    maxAgeMs: number;
  }> = {},
) {
  const sizes: number[] = [];
  const p = new UpstreamPool({
    maxIdlePerKey: opts.maxIdlePerKey ?? 4,
    maxIdleTotal: opts.maxIdleTotal ?? 1000,
    idleTimeoutMs: opts.idleTimeoutMs ?? 60_000,
    maxAgeMs: opts.maxAgeMs ?? HOUR,
    log: silentLogger(),
    onChange: (n) => sizes.push(n),
  });
  return { p, sizes };
}

describe('UpstreamPool', () => {
  it('hands out the most recently released connection of the same key, and only of that key', () => {
    const { p } = pool();
    const a = conn();
    const b = conn();
    assert.equal(p.put('k', a, 1), true);
    assert.equal(p.put('k', b, 2), true);
    assert.equal(p.take('other', 3), undefined);
    assert.equal(p.take('k', 3), b);
    assert.equal(p.take('k', 3), a);
    assert.equal(p.take('k', 3), undefined);
    assert.equal(p.size, 0);
    p.close();
  });

  it('refuses connections past maxIdlePerKey and connections close to their age limit', () => {
    const { p } = pool({ maxIdlePerKey: 1, maxAgeMs: HOUR });
    assert.equal(p.put('k', conn(), 0), true);
    assert.equal(p.put('k', conn(), 0), false, 'full');
    assert.equal(p.put('j', conn(0), HOUR - 1_000), false, 'one second of life left');
    p.close();
  });

  it('drops a connection that closes while idle, and a taken one that aged meanwhile is closed', () => {
    const { p, sizes } = pool({ maxAgeMs: HOUR });
    const a = conn(0);
    p.put('k', a, 0);
    a.socket.destroy();
    assert.equal(p.size, 0);
    assert.deepEqual(sizes, [1, 0]);
    const old = conn(0);
    p.put('k', old, 0);
    assert.equal(p.take('k', HOUR - 1), undefined);
    assert.equal(old.socket.destroyed, true);
    p.close();
  });

  it('leaves no listener behind: a connection reused 1,000 times carries none of the pool`s', () => {
    const { p } = pool();
    const c = conn();
    const base = { close: c.socket.listenerCount('close'), error: c.socket.listenerCount('error') };
    for (let i = 0; i < 1_000; i++) {
      assert.equal(p.put('k', c, i), true);
      assert.equal(p.take('k', i), c);
    }
    assert.equal(c.socket.listenerCount('close'), base.close);
    assert.equal(c.socket.listenerCount('error'), base.error);
    p.close();
  });

  it('keys from client input cannot grow it: total idle is bounded, the oldest goes first', () => {
    const { p } = pool({ maxIdlePerKey: 4, maxIdleTotal: 3 });
    const conns = Array.from({ length: 1000 }, () => conn());
    // A client that changes application_name at each connection: a new key every time.
    for (const [i, c] of conns.entries()) {
      assert.equal(p.put(poolKey('app', new Map([['application_name', `a${i}`]])), c, i), true);
      assert.ok(p.size <= 3, `size ${p.size} after ${i + 1}`);
      assert.ok(p.keys <= 3, `keys ${p.keys} after ${i + 1}`);
    }
    assert.equal(p.size, 3);
    // The ones pushed out were closed (DSQL counts idle connections), the three newest are kept.
    assert.equal(conns.filter((c) => c.socket.destroyed).length, 997);
    assert.deepEqual(
      conns.slice(-3).map((c) => c.socket.destroyed),
      [false, false, false],
    );
    // Eviction crosses keys: a busy key's release still finds room.
    assert.equal(p.put('busy', conn(), 2000), true);
    assert.equal(p.size, 3);
    assert.equal(conns[997]?.socket.destroyed, true, 'the oldest of all went');
    p.close();
  });

  it('deletes a key once its last idle connection is taken, closes, or times out', () => {
    const { p } = pool({ idleTimeoutMs: 1000 });
    const a = conn();
    p.put('taken', a, 0);
    assert.equal(p.keys, 1);
    assert.equal(p.take('taken', 1), a);
    assert.equal(p.keys, 0, 'taken');
    const b = conn();
    p.put('closed', b, 0);
    b.socket.destroy();
    assert.equal(p.keys, 0, 'closed while idle');
    // A miss does not create a key either.
    assert.equal(p.take('never', 1), undefined);
    assert.equal(p.keys, 0);
    p.put('old', conn(), 0);
    (p as unknown as { sweep(now: number): void }).sweep(5000);
    assert.equal(p.keys, 0, 'swept');
    assert.equal(p.size, 0);
    p.close();
  });

  it('close() destroys every idle connection', () => {
    const { p } = pool();
    const cs = [conn(), conn(), conn()];
    for (const c of cs) p.put('k', c, 0);
    p.close();
    assert.deepEqual(
      cs.map((c) => c.socket.destroyed),
      [true, true, true],
    );
    assert.equal(p.size, 0);
  });
});

describe('poolKey', () => {
  it('is the same for the same parameters in any order, different for another role or value', () => {
    const a = poolKey(
      'app',
      new Map([
        ['application_name', 'x'],
        ['TimeZone', 'UTC'],
      ]),
    );
    const b = poolKey(
      'app',
      new Map([
        ['TimeZone', 'UTC'],
        ['application_name', 'x'],
      ]),
    );
    assert.equal(a, b);
    assert.notEqual(
      a,
      poolKey(
        'admin',
        new Map([
          ['application_name', 'x'],
          ['TimeZone', 'UTC'],
        ]),
      ),
    );
    assert.notEqual(
      a,
      poolKey(
        'app',
        new Map([
          ['application_name', 'y'],
          ['TimeZone', 'UTC'],
        ]),
      ),
    );
  });
});
