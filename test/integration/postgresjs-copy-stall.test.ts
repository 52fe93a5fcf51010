/**
 * A canary for the README's note on postgres.js and COPY TO (porsager/postgres#499), without the proxy:
 * a scripted server that answers one `COPY ... TO STDOUT` and then `select 1`. It shows that the stall
 * depends only on how the server's bytes are split into reads, so it is the driver's, and it fails
 * once a postgres.js upgrade fixes the driver: then the README's workaround note can go.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { afterEach, test } from 'node:test';
import postgres from 'postgres';
import { cstring, int32, typedMessage } from '../../src/protocol/message-writer.js';
import {
  authenticationOk,
  backendKeyData,
  parameterStatus,
  readyForQuery,
} from '../../src/protocol/to-client.js';

const msg = (type: string, ...parts: Buffer[]): Buffer => typedMessage(type.charCodeAt(0), ...parts);
const int16 = (n: number): Buffer => Buffer.from([n >> 8, n & 0xff]);

/**
 * About 38 KB of CopyData (one text row each): more than a Readable's 16 KB high-water mark, and
 * less than the 64 KB a socket read takes, so that one read can hold all of it and the CopyDone.
 */
function copyRows(): Buffer[] {
  return Array.from({ length: 180 }, (_, i) => msg('d', Buffer.from(`${i}\t${'x'.repeat(200)}\n`)));
}

const COPY_END = Buffer.concat([msg('c'), msg('C', cstring('COPY 180')), readyForQuery('I')]);

/** The answer to Parse/Describe/Bind/Execute/Sync of `select 1 as x`. */
const SELECT_ONE = Buffer.concat([
  msg('1'),
  msg('t', int16(0)),
  msg('T', int16(1), cstring('x'), int32(0), int16(0), int32(23), int16(4), int32(-1), int16(0)),
  msg('2'),
  msg('D', int16(1), int32(1), Buffer.from('1')),
  msg('C', cstring('SELECT 1')),
  readyForQuery('I'),
]);

/**
 * Serves one client: login, one COPY TO (its last bytes either in the same write as the rows, or
 * 100 ms later in a write of their own), then answers every Sync with SELECT_ONE.
 */
function scriptedServer(copyDoneApart: boolean): Promise<net.Server> {
  const server = net.createServer((socket) => {
    let buffered = Buffer.alloc(0);
    let started = false;
    socket.on('error', () => {});
    socket.on('data', (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      if (!started) {
        if (buffered.length < 4 || buffered.length < buffered.readInt32BE(0)) return;
        buffered = buffered.subarray(buffered.readInt32BE(0));
        started = true;
        socket.write(
          Buffer.concat([
            authenticationOk(),
            parameterStatus('client_encoding', 'UTF8'),
            parameterStatus('server_version', '16.0'),
            backendKeyData(1, Buffer.alloc(4, 1)),
            readyForQuery('I'),
          ]),
        );
      }
      while (buffered.length >= 5 && buffered.length >= 1 + buffered.readInt32BE(1)) {
        const type = String.fromCharCode(buffered[0] ?? 0);
        buffered = buffered.subarray(1 + buffered.readInt32BE(1));
        if (type === 'Q') {
          const rows = Buffer.concat([
            msg('H', Buffer.from([0]), int16(2), int16(0), int16(0)),
            ...copyRows(),
          ]);
          if (copyDoneApart) {
            socket.write(rows);
            setTimeout(() => socket.write(COPY_END), 100);
          } else {
            socket.write(Buffer.concat([rows, COPY_END]));
          }
        } else if (type === 'S') {
          socket.write(SELECT_ONE);
        } else if (type === 'X') {
          socket.end();
        }
      }
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

/** COPY TO through `.readable()`, then `select 1`: its answer, or 'stalled' after 2 s. */
async function copyThenSelect(copyDoneApart: boolean): Promise<{ rows: number; next: string }> {
  const server = await scriptedServer(copyDoneApart);
  const { port } = server.address() as net.AddressInfo;
  // The driver's own socket, so that cleanup can destroy it: a stalled connection ends with
  // socket.end(), and a paused socket never reads the FIN that would close it.
  // (`socket` is a postgres.js option that its type definitions leave out: hence the variable.)
  const sockets: net.Socket[] = [];
  const options = {
    host: '127.0.0.1',
    port,
    user: 'u',
    database: 'd',
    max: 1,
    fetch_types: false,
    socket: () =>
      new Promise<net.Socket>((resolve) => {
        const s = net.connect(port, '127.0.0.1', () => resolve(s));
        sockets.push(s);
      }),
  };
  const sql = postgres(options);
  cleanups.push(async () => {
    await sql.end({ timeout: 0 });
    for (const s of sockets) s.destroy();
    await new Promise((r) => server.close(r));
    server.unref();
  });
  let rows = 0;
  const readable = await sql`copy t to stdout`.readable();
  for await (const chunk of readable as AsyncIterable<Buffer>)
    rows += chunk.toString().split('\n').length - 1;
  const next = await Promise.race([
    sql<{ x: number }[]>`select 1 as x`.then((r) => String(r[0]?.x)),
    new Promise<string>((resolve) => setTimeout(() => resolve('stalled'), 2000).unref()),
  ]);
  return { rows, next };
}

test('postgres.js answers the next query when CopyDone comes in a read of its own', async () => {
  assert.deepEqual(await copyThenSelect(true), { rows: 180, next: '1' });
});

test('postgres.js (3.4.9) stalls when 38 KB of CopyData and the CopyDone come in one read: the README workaround stays', async () => {
  const r = await copyThenSelect(false);
  assert.equal(r.rows, 180, 'every row was delivered');
  assert.equal(
    r.next,
    'stalled',
    'postgres.js no longer stalls after COPY TO: drop the workaround note from the README (Client compatibility) and the comment in clients-node.test.ts',
  );
});
