import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { ProxyError } from '../../src/errors.js';
import { FrameStream } from '../../src/io/frame-stream.js';
import { passwordMessage, query, rawHeader, startupMessage, typed } from './frontend-builders.js';
import { closeAll, socketPair, waitFor } from './socket-pair.js';

class PeerGone extends Error {}
const closedError = () => new PeerGone('peer went away');

after(closeAll);

/** Writes each part separately, waiting in between so they arrive as separate chunks. */
async function writeSlowly(socket: NodeJS.WritableStream, parts: Buffer[]): Promise<void> {
  for (const part of parts) {
    socket.write(part);
    await sleep(15);
  }
}

/** Resolves to 'pending' if the promise has not settled within ms. */
async function settledWithin<T>(promise: Promise<T>, ms: number): Promise<T | 'pending'> {
  return Promise.race([promise, sleep(ms).then(() => 'pending' as const)]);
}

describe('FrameStream over a real socket', () => {
  it('reassembles a typed frame split across writes, and not before it is complete', async () => {
    const { client, server } = await socketPair();
    const frames = new FrameStream(server, closedError);
    const msg = query('select 1');
    const read = frames.nextTyped(1000);
    client.write(msg.subarray(0, 3)); // inside the header
    assert.equal(await settledWithin(read, 30), 'pending');
    await writeSlowly(client, [msg.subarray(3, 7), msg.subarray(7, 10)]);
    assert.equal(await settledWithin(read, 30), 'pending');
    client.write(msg.subarray(10));
    const frame = await read;
    assert.equal(frame.type, 0x51);
    assert.deepEqual(frame.body, Buffer.from('select 1\0'));
    assert.equal(frames.buffered(), 0);
  });

  it('reads an untyped startup packet then typed messages, including two from one write', async () => {
    const { client, server } = await socketPair();
    const frames = new FrameStream(server, closedError);
    const startup = startupMessage([['user', 'alice']]);
    client.write(startup);
    assert.deepEqual(await frames.nextUntyped(10_000), startup.subarray(4));
    client.write(Buffer.concat([passwordMessage('secret'), query('select 2')]));
    const first = await frames.nextTyped(1000);
    assert.equal(String.fromCharCode(first.type), 'p');
    assert.deepEqual(first.body, Buffer.from('secret\0'));
    // Already buffered: resolves without more data from the peer.
    const second = await frames.nextTyped(1000);
    assert.equal(String.fromCharCode(second.type), 'Q');
    assert.deepEqual(second.body, Buffer.from('select 2\0'));
  });

  it('rejects the pending read with the closedError when the peer closes', async () => {
    const { client, server } = await socketPair();
    const frames = new FrameStream(server, closedError);
    const read = frames.nextTyped(1000);
    client.write(query('sel').subarray(0, 6)); // half a message, then gone
    client.end();
    await assert.rejects(read, PeerGone);
    // Later reads fail the same way instead of hanging.
    await assert.rejects(frames.nextTyped(1000), PeerGone);
  });

  it('a complete frame buffered before the close is still returned', async () => {
    const { client, server } = await socketPair();
    const frames = new FrameStream(server, closedError);
    client.end(Buffer.concat([query('a'), query('b')]));
    assert.deepEqual((await frames.nextTyped(1000)).body, Buffer.from('a\0'));
    await waitFor(() => server.readableEnded || server.destroyed);
    assert.deepEqual((await frames.nextTyped(1000)).body, Buffer.from('b\0'));
    await assert.rejects(frames.nextTyped(1000), PeerGone);
  });

  it('a connection reset rejects with the closedError, the socket error as its cause', async () => {
    const { client, server } = await socketPair();
    const frames = new FrameStream(server, closedError);
    const read = frames.nextTyped(1000);
    client.resetAndDestroy();
    const err = await read.then(
      () => assert.fail('read should fail'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof PeerGone);
    // A reset may surface as an ECONNRESET error or as a plain close; if it was an error, it is kept.
    const cause = (err as Error & { cause?: NodeJS.ErrnoException }).cause;
    if (cause !== undefined) assert.equal(cause.code, 'ECONNRESET');
  });

  it('rejects a length above the limit as soon as the header is in', async () => {
    const { client, server } = await socketPair();
    const frames = new FrameStream(server, closedError);
    const read = frames.nextTyped(1000);
    client.write(rawHeader(1001, 'p')); // no body follows: the header alone must decide
    await assert.rejects(
      read,
      (err: unknown) => err instanceof ProxyError && err.code === 'MESSAGE_TOO_LARGE',
    );

    const { client: c2, server: s2 } = await socketPair();
    const untyped = new FrameStream(s2, closedError);
    c2.write(rawHeader(0x7fffffff));
    await assert.rejects(
      untyped.nextUntyped(10_000),
      (err: unknown) => err instanceof ProxyError && err.code === 'STARTUP_LENGTH_INVALID',
    );
  });

  it('rejects a length below 4 with PROTOCOL_VIOLATION', async () => {
    const { client, server } = await socketPair();
    const frames = new FrameStream(server, closedError);
    client.write(rawHeader(3, 'Q'));
    await assert.rejects(
      frames.nextTyped(1000),
      (err: unknown) => err instanceof ProxyError && err.code === 'PROTOCOL_VIOLATION',
    );
  });

  it('refuses a second read while one is pending', async () => {
    const { client, server } = await socketPair();
    const frames = new FrameStream(server, closedError);
    const first = frames.nextTyped(1000);
    await assert.rejects(frames.nextTyped(1000), /concurrent reads/);
    client.write(query('x'));
    assert.deepEqual((await first).body, Buffer.from('x\0'));
  });

  it('detach() returns the bytes pipelined after the last frame, and later bytes reach the next reader', async () => {
    const { client, server } = await socketPair();
    const frames = new FrameStream(server, closedError);
    const pipelined = Buffer.concat([query('select 1'), typed('S', Buffer.alloc(0)), Buffer.from('partial')]);
    client.write(Buffer.concat([passwordMessage('pw'), pipelined]));
    const frame = await frames.nextTyped(1000);
    assert.deepEqual(frame.body, Buffer.from('pw\0'));
    const leftover = frames.detach();
    assert.deepEqual(leftover, pipelined);
    assert.equal(frames.buffered(), 0);
    assert.equal(server.isPaused(), true);

    // The relay takes over the socket: nothing is lost or read twice.
    const later: Buffer[] = [];
    server.on('data', (chunk: Buffer) => later.push(chunk));
    client.write('more');
    server.resume();
    await waitFor(() => Buffer.concat(later).length === 4);
    assert.equal(Buffer.concat(later).toString(), 'more');
  });

  it('detach() with nothing pipelined returns an empty buffer', async () => {
    const { client, server } = await socketPair();
    const frames = new FrameStream(server, closedError);
    client.write(query('q'));
    await frames.nextTyped(1000);
    assert.equal(frames.detach().length, 0);
  });

  it('keeps the socket paused while nobody reads, so a flooding peer is held back by TCP', async () => {
    const { client, server } = await socketPair();
    const frames = new FrameStream(server, closedError);
    assert.equal(server.isPaused(), true);
    client.write(query('early'));
    await sleep(30);
    // Not read: nothing reached the frame reader.
    assert.equal(frames.buffered(), 0);
    assert.equal(server.isPaused(), true);
    assert.deepEqual((await frames.nextTyped(1000)).body, Buffer.from('early\0'));
    assert.equal(server.isPaused(), true);

    // 16 MB the proxy never asked for: far less than that is read off the socket.
    const flood = Buffer.alloc(16 * 1024 * 1024, 0x41);
    client.write(flood);
    await sleep(100);
    assert.equal(server.isPaused(), true);
    assert.ok(frames.buffered() === 0, `buffered ${frames.buffered()}`);
    assert.ok(server.bytesRead < 4 * 1024 * 1024, `bytesRead ${server.bytesRead}`);
    assert.ok(client.writableLength > 0, 'the peer should still have unsent data');
  });
});
