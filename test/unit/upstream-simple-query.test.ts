/**
 * simpleQuery (src/upstream/simple-query.ts) against a scripted server on a loopback socket: rows, the
 * server's SQLSTATE kept on errors, a connection that stays usable after an ERROR, a FATAL followed by
 * a close, a close without an answer, a timeout, and bytes left over from the login.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, test } from 'node:test';
import { ProxyError } from '../../src/errors.js';
import { cstring, int32, typedMessage } from '../../src/protocol/message-writer.js';
import { errorResponse, noticeResponse, readyForQuery } from '../../src/protocol/to-client.js';
import { frontendQuery } from '../../src/protocol/to-server.js';
import { simpleQuery } from '../../src/upstream/simple-query.js';

function int16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeInt16BE(n);
  return b;
}

function rowDescription(names: string[]): Buffer {
  const fields = names.map((n) =>
    Buffer.concat([cstring(n), int32(0), int16(0), int32(23), int16(4), int32(-1), int16(0)]),
  );
  return typedMessage(0x54, int16(names.length), ...fields);
}

function dataRow(values: Array<string | null>): Buffer {
  const cols = values.map((v) => {
    if (v === null) return int32(-1);
    const bytes = Buffer.from(v);
    return Buffer.concat([int32(bytes.length), bytes]);
  });
  return typedMessage(0x44, int16(values.length), ...cols);
}

function commandComplete(tag: string): Buffer {
  return typedMessage(0x43, cstring(tag));
}

/** A loopback connection whose server side answers each received chunk with `onData`. */
interface Scripted {
  client: net.Socket;
  received: Buffer[];
  server: net.Socket;
}

let listener: net.Server;
let onServerSocket: ((s: net.Socket) => void) | undefined;

before(async () => {
  listener = net.createServer((s) => onServerSocket?.(s));
  await new Promise<void>((r) => listener.listen(0, '127.0.0.1', r));
});

after(async () => {
  await new Promise<void>((r) => listener.close(() => r()));
});

async function connect(onData: (chunk: Buffer, server: net.Socket) => void): Promise<Scripted> {
  const received: Buffer[] = [];
  const serverReady = new Promise<net.Socket>((resolve) => {
    onServerSocket = (s) => {
      s.on('error', () => {});
      s.on('data', (chunk: Buffer) => {
        received.push(chunk);
        onData(chunk, s);
      });
      resolve(s);
    };
  });
  const port = (listener.address() as net.AddressInfo).port;
  const client = net.connect(port, '127.0.0.1');
  client.on('error', () => {});
  await new Promise<void>((r) => client.once('connect', () => r()));
  const server = await serverReady;
  return { client, received, server };
}

test('sends a Query message and returns columns, rows (NULL as null) and the command tag', async () => {
  const s = await connect((_chunk, server) => {
    server.write(
      Buffer.concat([
        rowDescription(['a', 'b']),
        noticeResponse({ severity: 'NOTICE', sqlstate: '00000', message: 'just saying' }),
        dataRow(['1', null]),
        dataRow(['2', 'x']),
        commandComplete('SELECT 2'),
        readyForQuery('I'),
      ]),
    );
  });
  const r = await simpleQuery(s.client, 'SELECT 1', 2000);
  assert.deepEqual(r, {
    columns: ['a', 'b'],
    rows: [
      ['1', null],
      ['2', 'x'],
    ],
    command: 'SELECT 2',
  });
  assert.deepEqual(Buffer.concat(s.received), typedMessage(0x51, cstring('SELECT 1')));
  s.client.destroy();
});

test('takes a Query message encoded once, sends it as it is, and reads a tag-only answer', async () => {
  const s = await connect((_chunk, server) => {
    server.write(Buffer.concat([commandComplete('DISCARD ALL'), readyForQuery('I')]));
  });
  const message = frontendQuery('DISCARD ALL');
  for (let i = 0; i < 2; i++) {
    assert.deepEqual(await simpleQuery(s.client, message, 2000), {
      columns: [],
      rows: [],
      command: 'DISCARD ALL',
    });
  }
  assert.deepEqual(Buffer.concat(s.received), Buffer.concat([message, message]));
  assert.deepEqual(
    message,
    typedMessage(0x51, cstring('DISCARD ALL')),
    'the message is not changed by sending it',
  );
  s.client.destroy();
});

test('an ERROR keeps the SQLSTATE, is read through ReadyForQuery, and the connection stays usable', async () => {
  let n = 0;
  const s = await connect((_chunk, server) => {
    n++;
    if (n === 1) {
      server.write(
        Buffer.concat([
          errorResponse({
            severity: 'ERROR',
            sqlstate: '3F000',
            message: 'schema "sys" does not exist',
            hint: 'h',
          }),
          readyForQuery('I'),
        ]),
      );
    } else {
      server.write(
        Buffer.concat([
          rowDescription(['x']),
          dataRow(['ok']),
          commandComplete('SELECT 1'),
          readyForQuery('I'),
        ]),
      );
    }
  });
  const err = await simpleQuery(s.client, 'SELECT sys.iam_session_user()', 2000).then(
    () => undefined,
    (e: unknown) => e,
  );
  assert.ok(err instanceof ProxyError);
  assert.equal(err.sqlstate, '3F000');
  assert.equal(err.message, 'schema "sys" does not exist');
  assert.equal(err.hint, 'h');
  const r = await simpleQuery(s.client, 'SELECT 1', 2000);
  assert.deepEqual(r.rows, [['ok']]);
  s.client.destroy();
});

test('a FATAL followed by a close reports the server error, not the close', async () => {
  const s = await connect((_chunk, server) => {
    server.end(errorResponse({ severity: 'FATAL', sqlstate: '57P01', message: 'terminating connection' }));
  });
  await assert.rejects(simpleQuery(s.client, 'SELECT 1', 2000), (e: unknown) => {
    assert.ok(e instanceof ProxyError);
    assert.equal(e.sqlstate, '57P01');
    assert.equal(e.message, 'terminating connection');
    return true;
  });
  s.client.destroy();
});

test('a close without an answer is UPSTREAM_CLOSED', async () => {
  const s = await connect((_chunk, server) => server.destroy());
  await assert.rejects(simpleQuery(s.client, 'SELECT 1', 2000), (e: unknown) => {
    assert.ok(e instanceof ProxyError);
    assert.equal(e.code, 'UPSTREAM_CLOSED');
    assert.match(e.message, /closed the connection before answering/);
    return true;
  });
});

test('no answer within the timeout is UPSTREAM_TIMEOUT and the socket is closed', async () => {
  const s = await connect(() => {});
  const t0 = Date.now();
  await assert.rejects(simpleQuery(s.client, 'SELECT 1', 150), (e: unknown) => {
    assert.ok(e instanceof ProxyError);
    assert.equal(e.code, 'UPSTREAM_TIMEOUT');
    assert.match(e.message, /within 150 ms/);
    return true;
  });
  assert.ok(Date.now() - t0 < 1500);
  assert.ok(s.client.destroyed);
  s.server.destroy();
});

test('bytes left over from the login are read first', async () => {
  const answer = Buffer.concat([
    rowDescription(['one']),
    dataRow(['1']),
    commandComplete('SELECT 1'),
    readyForQuery('I'),
  ]);
  const cut = 7; // in the middle of RowDescription
  const s = await connect((_chunk, server) => server.write(answer.subarray(cut)));
  const r = await simpleQuery(s.client, 'SELECT 1', 2000, answer.subarray(0, cut));
  assert.deepEqual(r, { columns: ['one'], rows: [['1']], command: 'SELECT 1' });
  s.client.destroy();
});

test('an unexpected message type is a protocol error', async () => {
  const s = await connect((_chunk, server) =>
    server.write(typedMessage(0x47 /* G: CopyInResponse */, int16(0), int16(0))),
  );
  await assert.rejects(simpleQuery(s.client, 'COPY t FROM STDIN', 2000), (e: unknown) => {
    assert.ok(e instanceof ProxyError);
    assert.equal(e.code, 'UPSTREAM_PROTOCOL');
    return true;
  });
  s.client.destroy();
});

test('a row over 1 MiB fails the query and closes the connection: its tail never reaches anyone', async () => {
  // The snapshot of a moving session reads settings; a value this large (a hostile search_path)
  // stops the read in the middle of the answer. Handed back to the relay, the connection would
  // have given the client the rest of the proxy's own query.
  const s = await connect((_chunk, server) =>
    server.write(
      Buffer.concat([
        rowDescription(['search_path']),
        dataRow(['x'.repeat(1024 * 1024 + 1)]),
        commandComplete('SELECT 1'),
        readyForQuery('I'),
      ]),
    ),
  );
  let late = 0;
  try {
    await assert.rejects(simpleQuery(s.client, 'SELECT 1', 2000), (e: unknown) => {
      assert.ok(e instanceof ProxyError);
      assert.notEqual(e.code, 'UPSTREAM_REJECTED');
      return true;
    });
    assert.ok(s.client.destroyed, 'a connection stopped mid-answer is closed, not left for reuse');
    s.client.on('data', (chunk: Buffer) => {
      late += chunk.length;
    });
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(late, 0, 'no byte of the unread answer comes out of the socket');
  } finally {
    s.client.destroy();
    s.server.destroy();
  }
});

test('an unexpected message closes the connection too (the rest of the answer is unknown)', async () => {
  const s = await connect((_chunk, server) =>
    server.write(
      Buffer.concat([typedMessage(0x47 /* G: CopyInResponse */, int16(0), int16(0)), readyForQuery('I')]),
    ),
  );
  try {
    await assert.rejects(simpleQuery(s.client, 'COPY t FROM STDIN', 2000), ProxyError);
    assert.ok(s.client.destroyed);
  } finally {
    s.client.destroy();
    s.server.destroy();
  }
});
