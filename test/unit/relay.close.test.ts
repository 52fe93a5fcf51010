import assert from 'node:assert/strict';
import { once } from 'node:events';
import { after, describe, it } from 'node:test';
import type tls from 'node:tls';
import { Relay } from '../../src/relay/relay.js';
import { terminate } from './frontend-builders.js';
import { ByteReader, closeAll, socketPair } from './socket-pair.js';

after(closeAll);

/** app ⇄ [client socket | Relay | upstream socket] ⇄ server, without session pooling. */
async function relayed() {
  const front = await socketPair();
  const back = await socketPair({ serverAllowHalfOpen: true });
  const relay = new Relay(front.server, back.client as tls.TLSSocket);
  relay.start(Buffer.alloc(0), Buffer.alloc(0));
  return { app: front.client, client: front.server, upstream: back.client, server: back.server, relay };
}

describe('Relay: the end of a session without pooling', () => {
  it("passes the client's Terminate on, and closes an upstream that does not close within a second", async () => {
    const { app, upstream, server, relay } = await relayed();
    const serverReader = new ByteReader(server);
    const started = Date.now();
    app.end(terminate());
    assert.deepEqual(await serverReader.bytes(5), terminate());
    assert.equal((await relay.done).reason, 'client_closed');
    // The server never closes its side: the proxy does, after its grace second.
    if (!upstream.closed) await once(upstream, 'close');
    const waited = Date.now() - started;
    assert.ok(waited >= 900, `closed after ${waited} ms, before the grace second`);
    assert.ok(waited < 5000, `closed after ${waited} ms`);
  });

  it('ends at once when the server closes after the Terminate, as PostgreSQL does', async () => {
    const { app, upstream, server, relay } = await relayed();
    const started = Date.now();
    server.on('data', () => server.end());
    app.end(terminate());
    assert.equal((await relay.done).reason, 'client_closed');
    if (!upstream.closed) await once(upstream, 'close');
    const waited = Date.now() - started;
    assert.ok(waited < 900, `closed after ${waited} ms: waited for the grace timer`);
  });

  it('lets go of the session when it ends: no relay listener stays on the client socket', async () => {
    const { app, client, server, relay } = await relayed();
    server.on('data', () => server.end());
    app.end(terminate());
    await relay.done;
    assert.equal(client.listenerCount('data'), 0);
    assert.equal(client.listenerCount('drain'), 0);
  });

  it('a client socket error after the relay ended is absorbed, not thrown', async () => {
    const { client, relay } = await relayed();
    relay.terminate(Buffer.alloc(0));
    await relay.done;
    assert.equal(client.listenerCount('data'), 0);
    assert.ok(client.listenerCount('error') >= 1, 'an error listener remains while the socket is open');
    client.emit('error', new Error('late reset'));
  });
});
