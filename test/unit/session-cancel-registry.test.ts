import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CancelRegistry } from '../../src/session/cancel-registry.js';

describe('CancelRegistry', () => {
  it('issues positive int32 process ids, unique among live sessions, with 4-byte secrets', () => {
    const registry = new CancelRegistry<number>();
    const pids = new Set<number>();
    for (let i = 0; i < 20_000; i++) {
      const key = registry.register(i);
      assert.ok(Number.isInteger(key.processId) && key.processId >= 1 && key.processId <= 0x7fffffff);
      assert.equal(key.secretKey.length, 4);
      pids.add(key.processId);
    }
    assert.equal(pids.size, 20_000);
    assert.equal(registry.size, 20_000);
  });

  it('finds the session only with the exact secret', () => {
    const registry = new CancelRegistry<string>();
    const a = registry.register('session-a');
    const b = registry.register('session-b');
    assert.equal(registry.lookup(a.processId, Buffer.from(a.secretKey)), 'session-a');
    assert.equal(registry.lookup(b.processId, Buffer.from(b.secretKey)), 'session-b');
    // Each bit of the secret matters.
    for (let bit = 0; bit < 32; bit++) {
      const wrong = Buffer.from(a.secretKey);
      wrong[bit >> 3]! ^= 1 << (bit & 7);
      assert.equal(registry.lookup(a.processId, wrong), undefined, `bit ${bit}`);
    }
    // Another session's secret does not open this one.
    if (!a.secretKey.equals(b.secretKey)) assert.equal(registry.lookup(a.processId, b.secretKey), undefined);
    // Unknown process id.
    let unknown = 1;
    while (unknown === a.processId || unknown === b.processId) unknown++;
    assert.equal(registry.lookup(unknown, a.secretKey), undefined);
  });

  it('refuses secrets of the wrong length without throwing', () => {
    const registry = new CancelRegistry<string>();
    const key = registry.register('s');
    for (const secret of [
      Buffer.alloc(0),
      key.secretKey.subarray(0, 3),
      Buffer.concat([key.secretKey, Buffer.from([0])]),
      Buffer.concat([key.secretKey, Buffer.alloc(28)]), // a 32-byte protocol 3.2 key with the right prefix
    ]) {
      assert.equal(registry.lookup(key.processId, secret), undefined, `length ${secret.length}`);
    }
  });

  it('unregister forgets the key; unknown ids are ignored', () => {
    const registry = new CancelRegistry<string>();
    const a = registry.register('a');
    const b = registry.register('b');
    registry.unregister(a.processId);
    assert.equal(registry.lookup(a.processId, a.secretKey), undefined);
    assert.equal(registry.lookup(b.processId, b.secretKey), 'b');
    assert.equal(registry.size, 1);
    registry.unregister(a.processId);
    registry.unregister(123);
    assert.equal(registry.size, 1);
    registry.unregister(b.processId);
    assert.equal(registry.size, 0);
  });

  it('secrets are random: 1000 keys do not repeat much', () => {
    const registry = new CancelRegistry<null>();
    const secrets = new Set<string>();
    for (let i = 0; i < 1000; i++) secrets.add(registry.register(null).secretKey.toString('hex'));
    // 1000 draws from 2^32: a collision is possible but very unlikely; more than 2 means no randomness.
    assert.ok(secrets.size >= 998);
  });
});
