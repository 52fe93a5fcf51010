import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ProxyError } from '../../src/errors.js';
import { MAX_AUTH_MESSAGE_LENGTH, MAX_STARTUP_PACKET_LENGTH } from '../../src/protocol/constants.js';
import { FrameReader } from '../../src/protocol/frame-reader.js';
import {
  decodePasswordMessage,
  decodeSASLInitialResponse,
  decodeSASLResponse,
  decodeStartupPacket,
  type StartupPacket,
} from '../../src/protocol/from-client.js';
import {
  cancelRequest,
  gssencRequest,
  passwordBody,
  passwordMessage,
  saslInitialBody,
  saslInitialResponse,
  saslResponse,
  splits,
  sslRequest,
  startupBody,
  startupMessage,
} from './frontend-builders.js';

const violation = (err: unknown) => err instanceof ProxyError && err.code === 'PROTOCOL_VIOLATION';

/** Feeds the packet at every split position and decodes what the reader returns. */
function decodeAtEverySplit(packet: Buffer): StartupPacket {
  let last: StartupPacket | undefined;
  for (const [a, b] of splits(packet)) {
    const r = new FrameReader();
    r.push(a);
    r.push(b);
    const body = r.nextUntyped(MAX_STARTUP_PACKET_LENGTH);
    assert.ok(body);
    const decoded = decodeStartupPacket(body);
    if (last !== undefined) assert.deepEqual(decoded, last);
    last = decoded;
  }
  return last!;
}

function typedBodyAtEverySplit<T>(msg: Buffer, decode: (body: Buffer) => T): T {
  let last: T | undefined;
  for (const [a, b] of splits(msg)) {
    const r = new FrameReader();
    r.push(a);
    r.push(b);
    const frame = r.nextTyped(MAX_AUTH_MESSAGE_LENGTH);
    assert.ok(frame);
    assert.equal(frame.type, 0x70);
    const decoded = decode(frame.body);
    if (last !== undefined) assert.deepEqual(decoded, last);
    last = decoded;
  }
  return last!;
}

describe('decodeStartupPacket', () => {
  it('decodes SSLRequest and GSSENCRequest', () => {
    assert.deepEqual(decodeAtEverySplit(sslRequest()), { kind: 'ssl' });
    assert.deepEqual(decodeAtEverySplit(gssencRequest()), { kind: 'gssenc' });
  });

  it('rejects SSLRequest/GSSENCRequest with extra bytes', () => {
    const ssl = Buffer.concat([sslRequest().subarray(4), Buffer.from([0])]);
    assert.throws(() => decodeStartupPacket(ssl), violation);
    const gss = Buffer.concat([gssencRequest().subarray(4), Buffer.from([0])]);
    assert.throws(() => decodeStartupPacket(gss), violation);
  });

  it('decodes a 3.0 CancelRequest (4-byte key) and 3.2 keys up to 256 bytes', () => {
    const key4 = Buffer.from([1, 2, 3, 4]);
    assert.deepEqual(decodeAtEverySplit(cancelRequest(4242, key4)), {
      kind: 'cancel',
      processId: 4242,
      secretKey: key4,
    });
    const key256 = Buffer.alloc(256, 7);
    const got = decodeStartupPacket(cancelRequest(-5, key256).subarray(4));
    assert.deepEqual(got, { kind: 'cancel', processId: -5, secretKey: key256 });
  });

  it('rejects cancel keys shorter than 4 or longer than 256 bytes', () => {
    for (const n of [0, 3, 257]) {
      assert.throws(
        () => decodeStartupPacket(cancelRequest(1, Buffer.alloc(n)).subarray(4)),
        violation,
        `${n}`,
      );
    }
  });

  it('decodes a StartupMessage with parameters in order', () => {
    const got = decodeAtEverySplit(
      startupMessage([
        ['user', 'alice'],
        ['database', 'shop'],
        ['client_encoding', 'LATIN1'],
        ['application_name', 'é ü'],
      ]),
    );
    assert.equal(got.kind, 'startup');
    if (got.kind !== 'startup') return;
    assert.equal(got.major, 3);
    assert.equal(got.minor, 0);
    assert.deepEqual(
      [...got.params],
      [
        ['user', 'alice'],
        ['database', 'shop'],
        ['client_encoding', 'LATIN1'],
        ['application_name', 'é ü'],
      ],
    );
    assert.deepEqual(got.unrecognizedOptions, []);
  });

  it('reports the minor version and sets _pq_ options apart (protocol 3.2)', () => {
    const got = decodeStartupPacket(
      startupBody(
        [
          ['user', 'bob'],
          ['_pq_.command_tag_v2', 'on'],
        ],
        (3 << 16) | 2,
      ),
    );
    assert.deepEqual(got, {
      kind: 'startup',
      major: 3,
      minor: 2,
      params: new Map([['user', 'bob']]),
      unrecognizedOptions: ['_pq_.command_tag_v2'],
    });
  });

  it('accepts a StartupMessage with no parameters (the caller checks for user)', () => {
    assert.deepEqual(decodeStartupPacket(startupBody([])), {
      kind: 'startup',
      major: 3,
      minor: 0,
      params: new Map(),
      unrecognizedOptions: [],
    });
  });

  it('returns unknown for other codes and major versions', () => {
    const v2 = startupBody([], 2 << 16);
    assert.deepEqual(decodeStartupPacket(v2), { kind: 'unknown', code: 2 << 16 });
    const odd = Buffer.alloc(4);
    odd.writeInt32BE((1234 << 16) | 5681);
    assert.deepEqual(decodeStartupPacket(odd), { kind: 'unknown', code: (1234 << 16) | 5681 });
  });

  it('rejects malformed parameter lists', () => {
    const code = startupBody([]).subarray(0, 4);
    const bad: [string, Buffer][] = [
      ['too short', Buffer.from([0, 3])],
      ['no terminator at all', code],
      ['missing final terminator', Buffer.concat([code, Buffer.from('user\0alice\0')])],
      ['unterminated value', Buffer.concat([code, Buffer.from('user\0alice')])],
      ['unterminated name', Buffer.concat([code, Buffer.from('user')])],
      ['data after terminator', Buffer.concat([code, Buffer.from('user\0alice\0\0x')])],
      [
        'duplicate',
        startupBody([
          ['user', 'a'],
          ['user', 'b'],
        ]),
      ],
      [
        'duplicate _pq_',
        startupBody([
          ['_pq_.x', 'a'],
          ['_pq_.x', 'b'],
        ]),
      ],
    ];
    for (const [name, body] of bad) assert.throws(() => decodeStartupPacket(body), violation, name);
  });

  it('rejects every truncation of a valid StartupMessage body', () => {
    const body = startupBody([['user', 'alice']]);
    for (let n = 0; n < body.length; n++) {
      assert.throws(() => decodeStartupPacket(body.subarray(0, n)), violation, `truncated to ${n}`);
    }
  });
});

describe('decodePasswordMessage', () => {
  it('decodes one string at every split', () => {
    assert.equal(typedBodyAtEverySplit(passwordMessage('s3cret ✓'), decodePasswordMessage), 's3cret ✓');
    assert.equal(decodePasswordMessage(passwordBody('')), '');
  });

  it('rejects a missing terminator and trailing bytes', () => {
    assert.throws(() => decodePasswordMessage(Buffer.from('abc')), violation);
    assert.throws(() => decodePasswordMessage(Buffer.alloc(0)), violation);
    assert.throws(() => decodePasswordMessage(Buffer.from('abc\0d')), violation);
    assert.throws(() => decodePasswordMessage(Buffer.from('abc\0\0')), violation);
  });
});

describe('decodeSASLInitialResponse', () => {
  it('decodes mechanism and data at every split', () => {
    const data = Buffer.from('n,,n=,r=abc');
    assert.deepEqual(
      typedBodyAtEverySplit(saslInitialResponse('SCRAM-SHA-256', data), decodeSASLInitialResponse),
      {
        mechanism: 'SCRAM-SHA-256',
        data,
      },
    );
  });

  it('decodes length -1 as null and 0 as empty', () => {
    assert.deepEqual(decodeSASLInitialResponse(saslInitialBody('SCRAM-SHA-256', null)), {
      mechanism: 'SCRAM-SHA-256',
      data: null,
    });
    assert.deepEqual(decodeSASLInitialResponse(saslInitialBody('X', Buffer.alloc(0))), {
      mechanism: 'X',
      data: Buffer.alloc(0),
    });
  });

  it('rejects wrong lengths, negative lengths and truncation', () => {
    const good = saslInitialBody('SCRAM-SHA-256', Buffer.from('abc'));
    for (let n = 0; n < good.length; n++) {
      assert.throws(() => decodeSASLInitialResponse(good.subarray(0, n)), violation, `truncated to ${n}`);
    }
    assert.throws(() => decodeSASLInitialResponse(Buffer.concat([good, Buffer.from('x')])), violation);
    const negative = Buffer.from(good);
    negative.writeInt32BE(-2, 'SCRAM-SHA-256\0'.length);
    assert.throws(() => decodeSASLInitialResponse(negative), violation);
    const huge = Buffer.from(good);
    huge.writeInt32BE(2 ** 31 - 1, 'SCRAM-SHA-256\0'.length);
    assert.throws(() => decodeSASLInitialResponse(huge), violation);
    const nullWithData = Buffer.concat([saslInitialBody('M', null), Buffer.from('x')]);
    assert.throws(() => decodeSASLInitialResponse(nullWithData), violation);
  });
});

describe('decodeSASLResponse', () => {
  it('returns the whole body, as a copy', () => {
    const data = Buffer.from('c=biws,r=abc,p=xyz');
    const got = typedBodyAtEverySplit(saslResponse(data), decodeSASLResponse);
    assert.deepEqual(got, data);
    const body = Buffer.from(data);
    const copy = decodeSASLResponse(body);
    body[0] = 0;
    assert.equal(copy[0], 'c'.charCodeAt(0));
  });
});
