/**
 * forwardCancel with a scripted dial: the test decides when the cancel's TLS connection is "up", and
 * changes the session in between, as a pooled handover or a session move would. The far end of the
 * dialled socket is a real TCP socket that records every byte the cancel sends.
 */
import assert from 'node:assert/strict';
import type net from 'node:net';
import { after, describe, it } from 'node:test';
import { CancelRegistry } from '../../src/session/cancel-registry.js';
import { type CancelDestination, forwardCancel } from '../../src/upstream/cancel.js';
import type { UpstreamTarget } from '../../src/upstream/target.js';
import { ByteReader, closeAll, socketPair } from './socket-pair.js';

after(() => closeAll());

const TARGET = { hostname: 'a.dsql.us-east-1.on.aws' } as unknown as UpstreamTarget;
const CANCEL_REQUEST_CODE = 80877102;

function upstreamKey(processId: number): { processId: number; secretKey: Buffer } {
  const secretKey = Buffer.alloc(4);
  secretKey.writeUInt32BE(0xdeadbeef);
  return { processId, secretKey };
}

/** A dial that waits until the test calls `connect()`, then hands over one end of a socket pair. */
function scriptedDial() {
  let release: () => void = () => {};
  const gate = new Promise<void>((resolve) => {
    release = resolve;
  });
  const calls: UpstreamTarget[] = [];
  let far: ByteReader | undefined;
  return {
    calls,
    connect: () => release(),
    far: () => far,
    dial: async (target: UpstreamTarget): Promise<net.Socket> => {
      calls.push(target);
      await gate;
      const pair = await socketPair();
      far = new ByteReader(pair.server);
      return pair.client;
    },
  };
}

/** Everything the far end received before the cancel's socket closed. */
async function received(reader: ByteReader | undefined): Promise<number> {
  assert.ok(reader, 'the dial completed');
  await reader.closed();
  return reader.pending();
}

describe('forwardCancel', () => {
  it('sends the upstream key when the session is unchanged at send time', async () => {
    const registry = new CancelRegistry<CancelDestination>();
    const route: CancelDestination = { target: TARGET, upstreamKey: upstreamKey(4242) };
    const key = registry.register(route);
    const d = scriptedDial();
    const outcome = forwardCancel(() => registry.lookup(key.processId, key.secretKey), 2000, d.dial);
    d.connect();
    assert.equal(await outcome, 'forwarded');
    const reader = d.far();
    assert.ok(reader);
    const packet = await reader.bytes(16);
    assert.equal(packet.readInt32BE(0), 16);
    assert.equal(packet.readInt32BE(4), CANCEL_REQUEST_CODE);
    assert.equal(packet.readInt32BE(8), 4242);
    assert.equal(packet.readUInt32BE(12), 0xdeadbeef);
  });

  it('a pooled handover during the dial: the next client of the same upstream is not cancelled', async () => {
    const registry = new CancelRegistry<CancelDestination>();
    // Client A's session, on an upstream whose backend key is 4242.
    const shared = upstreamKey(4242);
    const a = registry.register({ target: TARGET, upstreamKey: shared });
    const d = scriptedDial();
    const outcome = forwardCancel(() => registry.lookup(a.processId, a.secretKey), 2000, d.dial);
    assert.equal(d.calls.length, 1, 'the dial is under way');
    // Meanwhile A leaves, its connection is reset and handed to client B: same upstream, same key.
    registry.unregister(a.processId);
    registry.register({ target: TARGET, upstreamKey: shared });
    d.connect();
    assert.equal(await outcome, 'session_changed');
    assert.equal(await received(d.far()), 0, 'no byte reached the upstream');
  });

  it('a session move during the dial: the retired connection gets nothing', async () => {
    const registry = new CancelRegistry<CancelDestination>();
    const route: CancelDestination = { target: TARGET, upstreamKey: upstreamKey(1) };
    const key = registry.register(route);
    const d = scriptedDial();
    const outcome = forwardCancel(() => registry.lookup(key.processId, key.secretKey), 2000, d.dial);
    // As MovableRelay.swapTo does: the route now points at the fresh connection's key.
    route.upstreamKey = upstreamKey(2);
    d.connect();
    assert.equal(await outcome, 'session_changed');
    assert.equal(await received(d.far()), 0);
  });

  it('no upstream key, or an unknown client key: nothing is dialled', async () => {
    const registry = new CancelRegistry<CancelDestination>();
    const key = registry.register({ target: TARGET, upstreamKey: undefined });
    const d = scriptedDial();
    d.connect();
    assert.equal(
      await forwardCancel(() => registry.lookup(key.processId, key.secretKey), 2000, d.dial),
      'no_upstream_key',
    );
    assert.equal(await forwardCancel(() => undefined, 2000, d.dial), 'unknown_key');
    assert.equal(d.calls.length, 0);
  });
});
