import type net from 'node:net';
import { Duplex } from 'node:stream';

/**
 * A Duplex over a socket that first yields `prefix`: bytes already read from the socket in JS that a
 * consumer (here, the TLS layer for a direct-TLS client) must still see. A net.Socket handed to
 * tls.TLSSocket directly would be read at the handle level, past anything already buffered in JS.
 */
export function replayDuplex(socket: net.Socket, prefix: Buffer): Duplex {
  const duplex = new Duplex({
    read() {
      socket.resume();
    },
    write(chunk: Buffer, _enc, callback) {
      socket.write(chunk, callback);
    },
    final(callback) {
      socket.end();
      callback();
    },
    destroy(err, callback) {
      socket.destroy(err ?? undefined);
      callback(err);
    },
  });
  if (prefix.length > 0) duplex.push(prefix);
  socket.on('data', (chunk: Buffer) => {
    if (!duplex.push(chunk)) socket.pause();
  });
  socket.on('end', () => duplex.push(null));
  socket.on('error', (err) => duplex.destroy(err));
  socket.on('close', () => duplex.destroy());
  return duplex;
}
