import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ProxyError } from '../../src/errors.js';
import { MAX_AUTH_MESSAGE_LENGTH, MAX_STARTUP_PACKET_LENGTH } from '../../src/protocol/constants.js';
import { FrameReader } from '../../src/protocol/frame-reader.js';
import {
  passwordMessage,
  query,
  rawHeader,
  splits,
  sslRequest,
  startupBody,
  startupMessage,
  terminate,
  typed,
} from './frontend-builders.js';

const isCode = (code: string) => (err: unknown) => err instanceof ProxyError && err.code === code;

describe('FrameReader untyped (startup phase)', () => {
  const packet = startupMessage([
    ['user', 'alice'],
    ['database', 'db'],
  ]);

  it('returns the body at every split position and nothing before it is complete', () => {
    for (const [a, b] of splits(packet)) {
      const r = new FrameReader();
      r.push(a);
      if (a.length < packet.length) assert.equal(r.nextUntyped(MAX_STARTUP_PACKET_LENGTH), null);
      r.push(b);
      const body = r.nextUntyped(MAX_STARTUP_PACKET_LENGTH);
      assert.deepEqual(body, packet.subarray(4));
      assert.equal(r.buffered(), 0);
    }
  });

  it('reads one byte at a time', () => {
    const r = new FrameReader();
    const out: Buffer[] = [];
    for (const byte of packet) {
      r.push(Buffer.from([byte]));
      const body = r.nextUntyped(MAX_STARTUP_PACKET_LENGTH);
      if (body !== null) out.push(body);
    }
    assert.deepEqual(out, [packet.subarray(4)]);
  });

  it('keeps bytes pipelined after the packet', () => {
    const extra = query('select 1');
    const r = new FrameReader();
    r.push(Buffer.concat([sslRequest(), extra]));
    assert.deepEqual(r.nextUntyped(MAX_STARTUP_PACKET_LENGTH), Buffer.from([0x04, 0xd2, 0x16, 0x2f]));
    assert.equal(r.buffered(), extra.length);
    // CVE-2021-23214: bytes sent after SSLRequest before TLS must be seen, not silently dropped.
    assert.deepEqual(r.takeRemaining(), extra);
    assert.equal(r.buffered(), 0);
    assert.deepEqual(r.takeRemaining(), Buffer.alloc(0));
  });

  it('rejects hostile lengths from the header alone, as STARTUP_LENGTH_INVALID', () => {
    // Below 4 and above the limit alike: PostgreSQL answers both with silence, and so does the session.
    for (const len of [-1, -2147483648, 0, 1, 2, 3, MAX_STARTUP_PACKET_LENGTH + 1, 2 ** 31 - 1]) {
      const r = new FrameReader();
      r.push(rawHeader(len)); // no body at all: must throw before waiting for it
      assert.throws(
        () => r.nextUntyped(MAX_STARTUP_PACKET_LENGTH),
        isCode('STARTUP_LENGTH_INVALID'),
        `len ${len}`,
      );
    }
  });

  it('a Terminate before the StartupMessage is STARTUP_LENGTH_INVALID at every split', () => {
    // node-postgres writes `X` + int32 4 when end() follows connect() at once; read untyped, the
    // length is 0x58000000. Four bytes decide it; with fewer the reader waits.
    const terminate = Buffer.from([0x58, 0, 0, 0, 4]);
    for (let cut = 0; cut <= terminate.length; cut++) {
      const r = new FrameReader();
      r.push(terminate.subarray(0, cut));
      if (cut < 4) {
        assert.equal(r.nextUntyped(MAX_STARTUP_PACKET_LENGTH), null, `cut ${cut}`);
        r.push(terminate.subarray(cut));
      }
      assert.throws(
        () => r.nextUntyped(MAX_STARTUP_PACKET_LENGTH),
        isCode('STARTUP_LENGTH_INVALID'),
        `cut ${cut}`,
      );
    }
  });

  it('accepts exactly the maximum and a bare 4-byte length', () => {
    const r = new FrameReader();
    r.push(rawHeader(4));
    assert.deepEqual(r.nextUntyped(8), Buffer.alloc(0));
    const big = Buffer.concat([
      rawHeader(MAX_STARTUP_PACKET_LENGTH),
      Buffer.alloc(MAX_STARTUP_PACKET_LENGTH - 4),
    ]);
    r.push(big);
    assert.equal(r.nextUntyped(MAX_STARTUP_PACKET_LENGTH)?.length, MAX_STARTUP_PACKET_LENGTH - 4);
  });

  it('waits on a truncated body', () => {
    const r = new FrameReader();
    r.push(packet.subarray(0, packet.length - 1));
    assert.equal(r.nextUntyped(MAX_STARTUP_PACKET_LENGTH), null);
    assert.equal(r.buffered(), packet.length - 1);
  });
});

describe('FrameReader typed', () => {
  const stream = Buffer.concat([passwordMessage('secret'), query('select 1'), terminate()]);
  const expected = [
    { type: 0x70, body: Buffer.from('secret\0') },
    { type: 0x51, body: Buffer.from('select 1\0') },
    { type: 0x58, body: Buffer.alloc(0) },
  ];

  const drain = (r: FrameReader) => {
    const out: { type: number; body: Buffer }[] = [];
    for (let m = r.nextTyped(MAX_AUTH_MESSAGE_LENGTH); m !== null; m = r.nextTyped(MAX_AUTH_MESSAGE_LENGTH)) {
      out.push(m);
    }
    return out;
  };

  it('reassembles three messages at every two-way split', () => {
    for (const [a, b] of splits(stream)) {
      const r = new FrameReader();
      r.push(a);
      const got = drain(r);
      r.push(b);
      got.push(...drain(r));
      assert.deepEqual(got, expected, `split at ${a.length}`);
      assert.equal(r.buffered(), 0);
    }
  });

  it('reassembles at every three-way split', () => {
    for (let i = 0; i <= stream.length; i++) {
      for (let j = i; j <= stream.length; j++) {
        const r = new FrameReader();
        const got: { type: number; body: Buffer }[] = [];
        for (const part of [stream.subarray(0, i), stream.subarray(i, j), stream.subarray(j)]) {
          r.push(part);
          got.push(...drain(r));
        }
        assert.deepEqual(got, expected, `split at ${i},${j}`);
      }
    }
  });

  it('never writes into the buffers it was given', () => {
    const chunks = [stream.subarray(0, 3), stream.subarray(3, 9), stream.subarray(9)].map((c) =>
      Buffer.from(c),
    );
    const copies = chunks.map((c) => Buffer.from(c));
    const r = new FrameReader();
    for (const c of chunks) r.push(c);
    assert.deepEqual(drain(r), expected);
    assert.deepEqual(chunks, copies);
  });

  it('rejects hostile lengths from the 5-byte header alone', () => {
    for (const len of [-1, -2147483648, 0, 1, 2, 3]) {
      const r = new FrameReader();
      r.push(rawHeader(len, 'p'));
      assert.throws(() => r.nextTyped(MAX_AUTH_MESSAGE_LENGTH), isCode('PROTOCOL_VIOLATION'), `len ${len}`);
    }
    for (const len of [MAX_AUTH_MESSAGE_LENGTH + 1, 2 ** 31 - 1]) {
      const r = new FrameReader();
      r.push(rawHeader(len, 'p'));
      assert.throws(() => r.nextTyped(MAX_AUTH_MESSAGE_LENGTH), isCode('MESSAGE_TOO_LARGE'), `len ${len}`);
    }
  });

  it('returns null for a header split before the length is complete', () => {
    const r = new FrameReader();
    r.push(rawHeader(2 ** 31 - 1, 'p').subarray(0, 4));
    assert.equal(r.nextTyped(MAX_AUTH_MESSAGE_LENGTH), null);
  });

  it('waits on a truncated body and hands back the remainder', () => {
    const msg = typed('p', Buffer.from(startupBody([['a', 'b']])));
    const r = new FrameReader();
    r.push(msg.subarray(0, 7));
    r.push(msg.subarray(7, msg.length - 1));
    assert.equal(r.nextTyped(MAX_AUTH_MESSAGE_LENGTH), null);
    assert.deepEqual(r.takeRemaining(), msg.subarray(0, msg.length - 1));
  });
});
