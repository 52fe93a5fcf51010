import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { DatabaseError } from 'pg-protocol';
import type {
  BackendKeyDataMessage,
  ParameterStatusMessage,
  ReadyForQueryMessage,
} from 'pg-protocol/dist/messages.js';
import { ProxyError } from '../../src/errors.js';
import { FrameReader } from '../../src/protocol/frame-reader.js';
import { decodeBackendFrame, encodeFrame } from '../../src/protocol/from-server.js';
import {
  authenticationCleartextPassword,
  authenticationMD5Password,
  authenticationOk,
  authenticationSASL,
  backendKeyData,
  errorResponse,
  noticeResponse,
  parameterStatus,
  readyForQuery,
} from '../../src/protocol/to-client.js';
import { oneTyped } from './frame-helpers.js';

const samples: [string, Buffer][] = [
  ['authenticationOk', authenticationOk()],
  ['authenticationCleartextPassword', authenticationCleartextPassword()],
  ['authenticationMD5Password', authenticationMD5Password(Buffer.from('salt'))],
  ['authenticationSASL', authenticationSASL(['SCRAM-SHA-256'])],
  ['parameterStatus', parameterStatus('server_version', '16.9')],
  ['backendKeyData', backendKeyData(1234, Buffer.from([0, 0, 0, 5]))],
  ['readyForQuery', readyForQuery('E')],
  ['error', errorResponse({ severity: 'FATAL', sqlstate: '28000', message: 'access denied' })],
  ['notice', noticeResponse({ severity: 'NOTICE', sqlstate: '00000', message: 'hi' })],
];

describe('encodeFrame', () => {
  it('re-frames a typed frame byte for byte', () => {
    for (const [name, raw] of samples) assert.deepEqual(encodeFrame(oneTyped(raw)), raw, name);
  });

  it('an empty body gives a 5-byte message of length 4', () => {
    assert.deepEqual(encodeFrame({ type: 0x31, body: Buffer.alloc(0) }), Buffer.from([0x31, 0, 0, 0, 4]));
  });

  it('returns a copy: the frame body can change later without touching it', () => {
    const body = Buffer.from('TimeZone\0UTC\0');
    const raw = encodeFrame({ type: 0x53, body });
    body.fill(0);
    assert.deepEqual(raw, parameterStatus('TimeZone', 'UTC'));
  });
});

describe('decodeBackendFrame', () => {
  it('decodes each login message', () => {
    for (const [name, raw] of samples) assert.equal(decodeBackendFrame(oneTyped(raw)).name, name);
    const ps = decodeBackendFrame(
      oneTyped(parameterStatus('TimeZone', 'Europe/Paris')),
    ) as ParameterStatusMessage;
    assert.equal(ps.parameterName, 'TimeZone');
    assert.equal(ps.parameterValue, 'Europe/Paris');
    const z = decodeBackendFrame(oneTyped(readyForQuery('T'))) as ReadyForQueryMessage;
    assert.equal(z.status, 'T');
    const k = decodeBackendFrame(
      oneTyped(backendKeyData(77, Buffer.from([0, 0, 1, 0]))),
    ) as BackendKeyDataMessage;
    assert.equal(k.processID, 77);
    assert.equal(k.secretKey, 256);
    const e = decodeBackendFrame(
      oneTyped(
        errorResponse({ severity: 'FATAL', sqlstate: '08P01', message: 'bad', detail: 'd', hint: 'h' }),
      ),
    ) as DatabaseError;
    assert.equal(e.code, '08P01');
    assert.equal(e.message, 'bad');
    assert.equal(e.detail, 'd');
    assert.equal(e.hint, 'h');
    assert.equal(e.severity, 'FATAL');
  });

  it('never writes into the buffer the frame body lives in', () => {
    // Frames whose bodies are views into one larger buffer, as FrameReader returns them.
    const stream = Buffer.concat(samples.map(([, raw]) => raw));
    const snapshot = Buffer.from(stream);
    const reader = new FrameReader();
    for (let i = 0; i < stream.length; i += 7) reader.push(stream.subarray(i, i + 7));
    for (const [name] of samples) {
      const frame = reader.nextTyped(1 << 20);
      assert.ok(frame);
      assert.equal(decodeBackendFrame(frame).name, name);
    }
    assert.deepEqual(stream, snapshot);
  });

  it('decodes a frame whose body is a view at an odd offset of a shared buffer', () => {
    const raw = parameterStatus('application_name', 'psql');
    const shared = Buffer.concat([Buffer.from('xyz'), raw, Buffer.from('tail')]);
    const frame = { type: raw[0]!, body: shared.subarray(3 + 5, 3 + raw.length) };
    const msg = decodeBackendFrame(frame) as ParameterStatusMessage;
    assert.equal(msg.parameterName, 'application_name');
    assert.equal(msg.parameterValue, 'psql');
    assert.equal(shared.subarray(0, 3).toString(), 'xyz');
    assert.equal(shared.subarray(-4).toString(), 'tail');
  });

  it('decoding twice gives the same result (no state carried between frames)', () => {
    const frame = oneTyped(readyForQuery('I'));
    assert.deepEqual(decodeBackendFrame(frame), decodeBackendFrame(frame));
  });

  it('an unknown message type decodes to an error message rather than throwing', () => {
    const msg = decodeBackendFrame({ type: 0x79, body: Buffer.from('abc') });
    assert.equal(msg.name, 'error');
  });

  it('an unknown authentication request code throws', () => {
    assert.throws(() => decodeBackendFrame({ type: 0x52, body: Buffer.from([0, 0, 0, 7]) }));
  });

  // Regression (found by protocol-from-server.property.test.ts): pg-protocol's field loop never ended
  // on an ErrorResponse/NoticeResponse without its final NUL, freezing the whole process.
  it('an ErrorResponse or NoticeResponse whose fields are not terminated throws instead of hanging', () => {
    for (const type of [0x45, 0x4e]) {
      for (const body of ['', 'S', 'SERROR', 'SERROR\0', 'SERROR\0C40001\0', 'SERROR\0\0trailing']) {
        assert.throws(
          () => decodeBackendFrame({ type, body: Buffer.from(body) }),
          (err: unknown) => err instanceof ProxyError && err.code === 'UPSTREAM_PROTOCOL',
          JSON.stringify(body),
        );
      }
    }
    const ok = decodeBackendFrame({ type: 0x45, body: Buffer.from('SERROR\0C40001\0\0') });
    assert.equal((ok as DatabaseError).code, '40001');
  });
});
