/**
 * Local TLS in the client handshake: SSLRequest answered 'S' then TLS, direct TLS (PostgreSQL 17+,
 * ALPN `postgresql`), refusals when TLS is off or required. Real sockets on port 0.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import tls from 'node:tls';
import { ProxyError } from '../../src/errors.js';
import { type ClientHello, readClientHello } from '../../src/handshake/client-hello.js';
import { type ClientTls, createClientTls } from '../../src/handshake/client-tls.js';
import { CLIENT_WRITE_HIGH_WATER_MARK } from '../../src/io/client-socket.js';
import { FrameStream } from '../../src/io/frame-stream.js';
import { tempDir } from '../support/temp-dirs.js';
import { sslRequest, startupMessage } from './frontend-builders.js';
import { ByteReader, closeAll, socketPair } from './socket-pair.js';

after(closeAll);

let clientTls: ClientTls;
let caPem: string;

before(async () => {
  const caOut = join(tempDir('client-ca'), 'ca.pem');
  clientTls = await createClientTls({ enabled: true, required: false, caOut });
  caPem = readFileSync(caOut, 'utf8');
});

const closed = () => new ProxyError('PROTOCOL_VIOLATION', { message: 'closed' });
const isCode = (code: string) => (err: unknown) => err instanceof ProxyError && err.code === code;

async function open(ctx: ClientTls) {
  const { client, server } = await socketPair();
  const frames = new FrameStream(server, closed);
  const hello: Promise<ClientHello> = readClientHello(server, frames, { tls: ctx, closedError: closed });
  hello.catch(() => {});
  return { client, server, hello };
}

function verifyFull(socket: import('node:net').Socket, alpn?: string[]): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const secure = tls.connect({
      socket,
      servername: 'localhost',
      ca: caPem,
      ...(alpn ? { ALPNProtocols: alpn } : {}),
    });
    secure.once('secureConnect', () => resolve(secure));
    secure.once('error', reject);
  });
}

describe('local TLS in the handshake', () => {
  it('SSLRequest is answered S; the startup then arrives over verified TLS', async () => {
    const s = await open(clientTls);
    s.client.write(sslRequest());
    assert.equal((await new ByteReader(s.client).bytes(1)).toString(), 'S');
    const secure = await verifyFull(s.client);
    assert.equal(
      secure.authorized,
      true,
      'the generated certificate verifies for localhost with the written CA',
    );
    secure.write(startupMessage([['user', 'alice']]));
    const hello = await s.hello;
    assert.equal(hello.kind, 'startup');
    if (hello.kind !== 'startup') return;
    assert.equal(hello.user, 'alice');
    assert.equal(hello.tls?.direct, false);
    assert.match(String(hello.tls?.protocol), /^TLSv1\.[23]$/);
    // The relay's backpressure threshold on the socket it will write to.
    assert.equal(hello.socket.writableHighWaterMark, CLIENT_WRITE_HIGH_WATER_MARK);
    // What the session writes next goes through TLS.
    const got = new Promise<Buffer>((resolve) => secure.once('data', resolve));
    hello.socket.write('hello');
    assert.equal((await got).toString(), 'hello');
  });

  it('direct TLS with ALPN postgresql is accepted', async () => {
    const s = await open(clientTls);
    const secure = await verifyFull(s.client, ['postgresql']);
    assert.equal(secure.alpnProtocol, 'postgresql');
    secure.write(startupMessage([['user', 'bob']]));
    const hello = await s.hello;
    assert.ok(hello.kind === 'startup' && hello.tls?.direct === true && hello.user === 'bob');
  });

  it('direct TLS without ALPN is refused (PostgreSQL 17 rule)', async () => {
    const s = await open(clientTls);
    await verifyFull(s.client).catch(() => undefined);
    await assert.rejects(s.hello, isCode('CLIENT_TLS_FAILED'));
  });

  it('direct TLS while local TLS is off is refused without a word on the wire', async () => {
    const s = await open({ enabled: false, required: false, secureContext: undefined });
    const attempt = verifyFull(s.client, ['postgresql']).catch((e: Error) => e);
    await assert.rejects(s.hello, isCode('TLS_NOT_ENABLED'));
    s.server.destroy();
    assert.ok((await attempt) instanceof Error);
  });

  it('--client-tls-required: a plaintext startup gets 28000', async () => {
    const s = await open({ ...clientTls, required: true });
    s.client.write(startupMessage([['user', 'carol']]));
    await assert.rejects(
      s.hello,
      (err: unknown) => err instanceof ProxyError && err.code === 'TLS_REQUIRED' && err.sqlstate === '28000',
    );
  });

  it('--client-tls-required: TLS clients pass', async () => {
    const s = await open({ ...clientTls, required: true });
    s.client.write(sslRequest());
    assert.equal((await new ByteReader(s.client).bytes(1)).toString(), 'S');
    const secure = await verifyFull(s.client);
    secure.write(startupMessage([['user', 'dave']]));
    const hello = await s.hello;
    assert.ok(hello.kind === 'startup' && hello.user === 'dave');
  });
});
