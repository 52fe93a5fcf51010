import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import { CLIENT_WRITE_HIGH_WATER_MARK } from '../../src/io/client-socket.js';
import { createClientServer } from '../../src/listener/listener.js';

test('client sockets take 64 KB unsent before write() asks the relay to stop reading the server', async () => {
  assert.equal(CLIENT_WRITE_HIGH_WATER_MARK, 64 * 1024);
  const accepted = new Promise<net.Socket>((resolve) => {
    const server = createClientServer((socket) => {
      server.close();
      resolve(socket);
    });
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as net.AddressInfo).port;
      // A client that never reads: whatever the server writes stays in the socket.
      const client = net.connect({ port, host: '127.0.0.1' });
      client.pause();
      client.on('error', () => {});
      after.push(() => client.destroy());
    });
  });
  const after: Array<() => void> = [];
  const socket = await accepted;
  try {
    assert.equal(socket.writableHighWaterMark, CLIENT_WRITE_HIGH_WATER_MARK);
    // Node's default threshold (16 KB) would say "stop" after the first 16 KB TLS record; this one
    // keeps accepting a whole 64 KB read of the server's answer, and asks to stop past it.
    socket.cork();
    for (let i = 0; i < 3; i++) assert.equal(socket.write(Buffer.alloc(16 * 1024)), true, `record ${i + 1}`);
    assert.equal(socket.write(Buffer.alloc(16 * 1024)), false, '64 KB queued: stop reading');
    socket.uncork();
  } finally {
    socket.destroy();
    for (const f of after) f();
  }
});
