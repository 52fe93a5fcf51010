import assert from 'node:assert/strict';
import net from 'node:net';
import { after, test } from 'node:test';
import { CLIENT_WRITE_HIGH_WATER_MARK } from '../../src/io/client-socket.js';
import { createClientServer } from '../../src/listener/listener.js';
import { closeAll, track } from './socket-pair.js';

after(closeAll);

test('client sockets take 64 KB unsent before write() asks the relay to stop reading the server', async () => {
  assert.equal(CLIENT_WRITE_HIGH_WATER_MARK, 64 * 1024);
  const server = createClientServer(() => {});
  const accepted = new Promise<net.Socket>((resolve) => server.once('connection', (s) => resolve(track(s))));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    // A client that never reads: whatever the server writes stays in the socket.
    const client = track(
      net.connect({ port: (server.address() as net.AddressInfo).port, host: '127.0.0.1' }),
    );
    client.pause();
    const socket = await accepted;
    assert.equal(socket.writableHighWaterMark, CLIENT_WRITE_HIGH_WATER_MARK);
    // Node's default threshold (16 KB) would say "stop" after the first 16 KB TLS record; this one
    // keeps accepting a whole 64 KB read of the server's answer, and asks to stop past it.
    socket.cork();
    for (let i = 0; i < 3; i++) assert.equal(socket.write(Buffer.alloc(16 * 1024)), true, `record ${i + 1}`);
    assert.equal(socket.write(Buffer.alloc(16 * 1024)), false, '64 KB queued: stop reading');
    socket.uncork();
  } finally {
    server.close();
  }
});
