import assert from 'node:assert/strict';
import type net from 'node:net';
import { after, describe, it } from 'node:test';
import { ProxyError } from '../../src/errors.js';
import { type ClientHello, readClientHello } from '../../src/handshake/client-hello.js';
import { FrameStream } from '../../src/io/frame-stream.js';
import {
  cancelRequest,
  gssencRequest,
  sslRequest,
  startupBody,
  startupMessage,
  untyped,
} from './frontend-builders.js';
import { ByteReader, closeAll, socketPair } from './socket-pair.js';

after(closeAll);

interface Session {
  client: net.Socket;
  server: net.Socket;
  /** What the proxy wrote to the client. */
  fromProxy: ByteReader;
  hello: Promise<ClientHello>;
}

async function open(): Promise<Session> {
  const { client, server } = await socketPair();
  const frames = new FrameStream(server, () => new ProxyError('PROTOCOL_VIOLATION', { message: 'closed' }));
  const hello = readClientHello(server, frames);
  // Avoid an unhandled rejection before the test awaits it.
  hello.catch(() => {});
  return { client, server, fromProxy: new ByteReader(client), hello };
}

const isCode = (code: string) => (err: unknown) => err instanceof ProxyError && err.code === code;

describe('readClientHello', () => {
  it('answers SSLRequest with N, then returns the startup', async () => {
    const s = await open();
    s.client.write(sslRequest());
    assert.equal((await s.fromProxy.bytes(1)).toString(), 'N');
    s.client.write(
      startupMessage([
        ['user', 'alice'],
        ['database', 'shop'],
        ['application_name', 'psql'],
        ['client_encoding', 'LATIN1'],
      ]),
    );
    const hello = await s.hello;
    assert.equal(hello.kind, 'startup');
    const { kind, user, database, params, tls } = hello as Extract<typeof hello, { kind: 'startup' }>;
    assert.deepEqual(
      { kind, user, database, params, tls },
      {
        kind: 'startup',
        user: 'alice',
        database: 'shop',
        params: new Map([
          ['application_name', 'psql'],
          ['client_encoding', 'LATIN1'],
        ]),
        tls: undefined,
      },
    );
    assert.deepEqual(
      [...(hello.kind === 'startup' ? hello.params.keys() : [])],
      ['application_name', 'client_encoding'],
    );
    assert.equal(s.fromProxy.pending(), 0);
  });

  it('answers GSSENCRequest with N, then accepts an SSLRequest, then the startup', async () => {
    const s = await open();
    s.client.write(gssencRequest());
    assert.equal((await s.fromProxy.bytes(1)).toString(), 'N');
    s.client.write(sslRequest());
    assert.equal((await s.fromProxy.bytes(1)).toString(), 'N');
    s.client.write(startupMessage([['user', 'bob']]));
    const hello = await s.hello;
    assert.equal(hello.kind, 'startup');
  });

  it('refuses a second SSLRequest with PROTOCOL_VIOLATION', async () => {
    const s = await open();
    s.client.write(sslRequest());
    assert.equal((await s.fromProxy.bytes(1)).toString(), 'N');
    s.client.write(sslRequest());
    await assert.rejects(
      s.hello,
      (err: unknown) => isCode('PROTOCOL_VIOLATION')(err) && /duplicate/i.test(String(err)),
    );
  });

  it('refuses a second GSSENCRequest with PROTOCOL_VIOLATION', async () => {
    const s = await open();
    s.client.write(gssencRequest());
    assert.equal((await s.fromProxy.bytes(1)).toString(), 'N');
    s.client.write(gssencRequest());
    await assert.rejects(s.hello, isCode('PROTOCOL_VIOLATION'));
  });

  it('CVE-2021-23214: bytes sent together with SSLRequest are refused, and no N is sent', async () => {
    const s = await open();
    s.client.write(Buffer.concat([sslRequest(), startupMessage([['user', 'mallory']])]));
    await assert.rejects(
      s.hello,
      (err: unknown) => isCode('SSL_BYTES_AFTER_REQUEST')(err) && (err as ProxyError).sqlstate === '08P01',
    );
    assert.equal(s.fromProxy.pending(), 0);
  });

  it('the same holds for bytes sent together with GSSENCRequest', async () => {
    const s = await open();
    s.client.write(Buffer.concat([gssencRequest(), Buffer.from('x')]));
    await assert.rejects(s.hello, isCode('SSL_BYTES_AFTER_REQUEST'));
  });

  it('protocol 3.2: sends NegotiateProtocolVersion for 3.0 (full version code) and no options, then returns the startup', async () => {
    const s = await open();
    s.client.write(startupMessage([['user', 'alice']], (3 << 16) | 2));
    const v = await s.fromProxy.typed();
    assert.equal(v.type, 'v');
    // PostgreSQL sends major << 16 | minor here, and libpq 18 rejects a bare minor 0.
    assert.equal(v.body.readInt32BE(0), (3 << 16) | 0);
    assert.equal(v.body.readInt32BE(4), 0);
    assert.equal(v.body.length, 8);
    const hello = await s.hello;
    assert.equal(hello.kind, 'startup');
    assert.equal(hello.kind === 'startup' && hello.user, 'alice');
  });

  it('_pq_ options: NegotiateProtocolVersion lists them, and they are not startup parameters', async () => {
    const s = await open();
    s.client.write(
      startupMessage([
        ['user', 'alice'],
        ['_pq_.x', '1'],
        ['TimeZone', 'UTC'],
        ['_pq_.compression', 'on'],
      ]),
    );
    const v = await s.fromProxy.typed();
    assert.equal(v.type, 'v');
    assert.equal(v.body.readInt32BE(0), (3 << 16) | 0);
    assert.equal(v.body.readInt32BE(4), 2);
    assert.deepEqual(v.body.subarray(8), Buffer.from('_pq_.x\0_pq_.compression\0'));
    const hello = await s.hello;
    assert.ok(hello.kind === 'startup');
    assert.deepEqual([...hello.params], [['TimeZone', 'UTC']]);
  });

  it('protocol 3.0 without options gets no NegotiateProtocolVersion', async () => {
    const s = await open();
    s.client.write(startupMessage([['user', 'alice']]));
    await s.hello;
    // A marker written after the handshake must be the first byte the client sees.
    s.server.write('!');
    assert.equal((await s.fromProxy.bytes(1)).toString(), '!');
    assert.equal(s.fromProxy.pending(), 0);
  });

  it('protocol 2.0 is refused with UNSUPPORTED_PROTOCOL', async () => {
    const s = await open();
    s.client.write(startupMessage([['user', 'alice']], 2 << 16));
    await assert.rejects(
      s.hello,
      (err: unknown) => isCode('UNSUPPORTED_PROTOCOL')(err) && /2\.0/.test((err as Error).message),
    );
  });

  it('protocol 4.0 and unknown request codes are refused with UNSUPPORTED_PROTOCOL (08P01)', async () => {
    for (const code of [4 << 16, (1234 << 16) | 5681]) {
      const s = await open();
      s.client.write(startupMessage([['user', 'alice']], code));
      await assert.rejects(
        s.hello,
        (err: unknown) => isCode('UNSUPPORTED_PROTOCOL')(err) && (err as ProxyError).sqlstate === '08P01',
      );
    }
  });

  it('a startup without user (or with an empty one) is AUTH_INVALID', async () => {
    for (const params of [[['database', 'db']], [['user', '']]] as [string, string][][]) {
      const s = await open();
      s.client.write(startupMessage(params));
      await assert.rejects(
        s.hello,
        (err: unknown) => isCode('AUTH_INVALID')(err) && (err as ProxyError).sqlstate === '28000',
      );
    }
  });

  it('the database defaults to the user name (absent or empty)', async () => {
    for (const params of [
      [['user', 'carol']],
      [
        ['user', 'carol'],
        ['database', ''],
      ],
    ] as [string, string][][]) {
      const s = await open();
      s.client.write(startupMessage(params));
      const hello = await s.hello;
      assert.ok(hello.kind === 'startup');
      assert.equal(hello.database, 'carol');
      assert.equal(hello.params.size, 0);
    }
  });

  it('returns a CancelRequest with its raw key (4 and 32 bytes)', async () => {
    for (const key of [Buffer.from([1, 2, 3, 4]), Buffer.alloc(32, 0xab)]) {
      const s = await open();
      s.client.write(cancelRequest(0x12345678, key));
      assert.deepEqual(await s.hello, { kind: 'cancel', processId: 0x12345678, secretKey: key });
    }
  });

  it('a cancel after SSLRequest is still returned', async () => {
    const s = await open();
    s.client.write(sslRequest());
    assert.equal((await s.fromProxy.bytes(1)).toString(), 'N');
    s.client.write(cancelRequest(7, Buffer.from('abcd')));
    const hello = await s.hello;
    assert.equal(hello.kind, 'cancel');
  });

  it('a startup packet above 10,000 bytes is STARTUP_LENGTH_INVALID', async () => {
    const s = await open();
    s.client.write(
      startupMessage([
        ['user', 'u'],
        ['options', 'x'.repeat(10_000)],
      ]),
    );
    await assert.rejects(s.hello, isCode('STARTUP_LENGTH_INVALID'));
  });

  it('a Terminate before the StartupMessage is STARTUP_LENGTH_INVALID, and nothing is written', async () => {
    // node-postgres does this when end() follows connect() at once. PostgreSQL answers it with silence.
    for (const first of [[], [sslRequest()]]) {
      const s = await open();
      for (const packet of first) s.client.write(packet);
      if (first.length > 0) assert.equal((await s.fromProxy.bytes(1)).toString(), 'N');
      s.client.write(Buffer.from([0x58, 0, 0, 0, 4]));
      await assert.rejects(s.hello, isCode('STARTUP_LENGTH_INVALID'));
      assert.equal(s.fromProxy.pending(), 0);
    }
  });

  it('a malformed startup body is PROTOCOL_VIOLATION', async () => {
    const s = await open();
    const body = startupBody([['user', 'u']]);
    s.client.write(untyped(body.subarray(0, body.length - 1))); // no terminator
    await assert.rejects(s.hello, isCode('PROTOCOL_VIOLATION'));
  });
});
