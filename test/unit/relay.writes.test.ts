import assert from 'node:assert/strict';
import type net from 'node:net';
import { after, describe, it } from 'node:test';
import type tls from 'node:tls';
import { readyForQuery } from '../../src/protocol/to-client.js';
import { Relay } from '../../src/relay/relay.js';
import { query, typed } from './frontend-builders.js';
import { ByteReader, closeAll, socketPair } from './socket-pair.js';

after(closeAll);

const commandComplete = (tag: string): Buffer => typed('C', Buffer.from(`${tag}\0`));
const dataRow = (value: string): Buffer => {
  const body = Buffer.alloc(2 + 4 + value.length);
  body.writeInt16BE(1, 0);
  body.writeInt32BE(value.length, 2);
  body.write(value, 6, 'latin1');
  return typed('D', body);
};

/**
 * app ⇄ [client socket | Relay | upstream socket] ⇄ server, over two real TCP pairs. `corkedAfter`
 * reads the client socket's cork count just after the relay handled each server chunk (a 'data'
 * listener added after the relay's runs right after it, in the same callback).
 */
async function relayed(): Promise<{
  app: net.Socket;
  server: net.Socket;
  appReader: ByteReader;
  corkedAfter: number[];
}> {
  const front = await socketPair();
  const back = await socketPair();
  const relay = new Relay(front.server, back.client as tls.TLSSocket);
  relay.start(Buffer.alloc(0), Buffer.alloc(0));
  const corkedAfter: number[] = [];
  back.client.on('data', () => corkedAfter.push(front.server.writableCorked));
  return { app: front.client, server: back.server, appReader: new ByteReader(front.client), corkedAfter };
}

describe('Relay: writes to the client', () => {
  it('sends a complete answer at once, without waiting for the next turn of the event loop', async () => {
    const { app, server, appReader, corkedAfter } = await relayed();
    const serverReader = new ByteReader(server);
    const q = query('select 1');
    app.write(q);
    assert.deepEqual(await serverReader.bytes(q.length), q);
    const answer = Buffer.concat([dataRow('1'), commandComplete('SELECT 1'), readyForQuery('I')]);
    server.write(answer);
    assert.deepEqual(await appReader.bytes(answer.length), answer);
    assert.deepEqual(corkedAfter, [0]);
  });

  it('holds an unfinished answer corked until the check phase, then sends it', async () => {
    const { app, server, appReader, corkedAfter } = await relayed();
    const serverReader = new ByteReader(server);
    const q = query('select x from t');
    app.write(q);
    await serverReader.bytes(q.length);
    const rows = Buffer.concat([dataRow('a'), dataRow('b')]);
    server.write(rows);
    assert.deepEqual(await appReader.bytes(rows.length), rows);
    assert.deepEqual(corkedAfter, [1], 'more is coming: corked while the read callback ran');
    const end = Buffer.concat([commandComplete('SELECT 2'), readyForQuery('I')]);
    server.write(end);
    assert.deepEqual(await appReader.bytes(end.length), end);
    assert.deepEqual(corkedAfter, [1, 0]);
  });

  it('sends an answer whose last chunk completes it together with what was corked before it', async () => {
    const { app, server, appReader } = await relayed();
    const serverReader = new ByteReader(server);
    app.write(query('select 1'));
    await serverReader.bytes(query('select 1').length);
    const answer = Buffer.concat([dataRow('1'), commandComplete('SELECT 1'), readyForQuery('I')]);
    // Both halves in one TCP write: the relay may see them as one chunk or two; either way the
    // client gets every byte, in order.
    server.write(answer.subarray(0, 7));
    server.write(answer.subarray(7));
    assert.deepEqual(await appReader.bytes(answer.length), answer);
  });
});
