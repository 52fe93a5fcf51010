/**
 * Properties of the message decoders and encoders:
 * - the frontend decoders (src/protocol/frontend.ts) fail only with ProxyError('PROTOCOL_VIOLATION'),
 *   on arbitrary bodies and on mutations of valid ones, and never modify their input;
 * - what the encoders write (frontend-encoders.ts, backend.ts) decodes back to what was encoded:
 *   frontend messages with our decoders, backend messages with pg-protocol's parser as the upstream
 *   path uses it (src/upstream/decode.ts);
 * - decodeBackendFrame over arbitrary frames throws only Error instances and leaves the frame alone.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import type { DatabaseError } from 'pg-protocol';
import type {
  AuthenticationMD5Password,
  BackendKeyDataMessage,
  NoticeMessage,
  ParameterStatusMessage,
  ReadyForQueryMessage,
} from 'pg-protocol/dist/messages.js';
import { ProxyError, type Severity } from '../../src/errors.js';
import {
  authenticationCleartextPassword,
  authenticationMD5Password,
  authenticationOk,
  authenticationSASL,
  authenticationSASLContinue,
  authenticationSASLFinal,
  backendKeyData,
  errorResponse,
  negotiateProtocolVersion,
  noticeResponse,
  parameterStatus,
  readyForQuery,
} from '../../src/protocol/backend.js';
import { FrameReader, type TypedFrame } from '../../src/protocol/frame-reader.js';
import {
  decodePasswordMessage,
  decodeSASLInitialResponse,
  decodeSASLResponse,
  decodeStartupPacket,
} from '../../src/protocol/frontend.js';
import {
  frontendCancelRequest,
  frontendPassword,
  frontendSSLRequest,
  frontendStartup,
  frontendTerminate,
} from '../../src/protocol/frontend-encoders.js';
import { decodeBackendFrame, encodeFrame } from '../../src/upstream/decode.js';
import {
  bytes,
  cstringText,
  hostileInt32,
  mutateAll,
  mutation,
  onlyThrows,
  runs,
} from './property-helpers.js';

const violation = (err: ProxyError): void => assert.equal(err.code, 'PROTOCOL_VIOLATION');

/** Runs a decoder on a copy check: only PROTOCOL_VIOLATION, input untouched. */
function decodeSafely<T>(decode: (b: Buffer) => T, body: Buffer): T | undefined {
  const copy = Buffer.from(body);
  const out = onlyThrows(() => decode(body), ProxyError, violation);
  assert.deepEqual(body, copy);
  return out;
}

function oneTyped(raw: Buffer): TypedFrame {
  const reader = new FrameReader();
  reader.push(raw);
  const frame = reader.nextTyped(1 << 20);
  assert.ok(frame);
  assert.equal(reader.buffered(), 0);
  return frame;
}

function oneUntyped(raw: Buffer): Buffer {
  const reader = new FrameReader();
  reader.push(raw);
  const body = reader.nextUntyped(1 << 20);
  assert.ok(body);
  assert.equal(reader.buffered(), 0);
  return body;
}

function int32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n, 0);
  return b;
}

/** The startup-phase codes and versions worth hitting, plus any int32. */
const startupCode = fc.oneof(
  fc.constantFrom(80877103, 80877104, 80877102, 196608, 196610, 131072, 0x30000 | 0xffff),
  fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }),
);

/** Startup parameters as the encoder accepts them: names without NUL, unique, not the empty string. */
const startupParams = fc.uniqueArray(fc.tuple(cstringText({ minLength: 1 }), cstringText()), {
  selector: ([k]) => k,
  maxLength: 8,
});

describe('frontend decoders: arbitrary input', () => {
  it('decodeStartupPacket: a known code, or only PROTOCOL_VIOLATION', () => {
    fc.assert(
      fc.property(startupCode, bytes(80), (code, rest) => {
        const body = Buffer.concat([int32(code), rest]);
        const packet = decodeSafely(decodeStartupPacket, body);
        if (packet?.kind === 'cancel') {
          assert.ok(packet.secretKey.length >= 4 && packet.secretKey.length <= 256);
        }
        if (packet?.kind === 'startup') assert.equal(packet.major, 3);
        // Arbitrary bytes with no code in front as well (shorter than 4 bytes included).
        decodeSafely(decodeStartupPacket, rest);
      }),
      runs(1000),
    );
  });

  it('decodeStartupPacket: mutated valid packets give only PROTOCOL_VIOLATION', () => {
    fc.assert(
      fc.property(startupParams, fc.array(mutation, { minLength: 1, maxLength: 4 }), (params, ms) => {
        const body = oneUntyped(frontendStartup(Object.fromEntries(params)));
        decodeSafely(decodeStartupPacket, mutateAll(body, ms));
      }),
      runs(800),
    );
  });

  it('decodePasswordMessage, decodeSASLInitialResponse, decodeSASLResponse: only PROTOCOL_VIOLATION', () => {
    fc.assert(
      fc.property(bytes(80), (body) => {
        const pw = decodeSafely(decodePasswordMessage, body);
        if (pw !== undefined) assert.equal(body.indexOf(0), body.length - 1);
        const sasl = decodeSafely(decodeSASLInitialResponse, body);
        if (sasl?.data) assert.ok(sasl.data.length <= body.length);
        const resp = decodeSafely(decodeSASLResponse, body);
        assert.deepEqual(resp, body);
      }),
      runs(1000),
    );
  });

  it('decodeSASLInitialResponse: hostile data lengths and mutations give only PROTOCOL_VIOLATION', () => {
    fc.assert(
      fc.property(
        cstringText(),
        hostileInt32,
        bytes(40),
        fc.array(mutation, { maxLength: 3 }),
        (mech, length, data, ms) => {
          const body = Buffer.concat([Buffer.from(`${mech}\0`), int32(length), data]);
          const r = decodeSafely(decodeSASLInitialResponse, mutateAll(body, ms));
          if (r && ms.length === 0) {
            assert.equal(r.mechanism, mech);
            assert.ok(length === -1 ? r.data === null : r.data?.length === length);
          }
        },
      ),
      runs(1000),
    );
  });

  it('a decoded secret key or SASL data is a copy, not a view of the input', () => {
    fc.assert(
      fc.property(fc.integer(), fc.uint8Array({ minLength: 4, maxLength: 256 }), (pid, key) => {
        const body = oneUntyped(frontendCancelRequest(pid, Buffer.from(key)));
        const packet = decodeStartupPacket(body);
        assert.equal(packet.kind, 'cancel');
        body.fill(0xee);
        if (packet.kind === 'cancel') assert.deepEqual(packet.secretKey, Buffer.from(key));
      }),
      runs(200),
    );
  });
});

describe('frontend encoders round-trip through FrameReader and the decoders', () => {
  it('StartupMessage: parameters come back in order; _pq_ options apart', () => {
    fc.assert(
      fc.property(startupParams, (params) => {
        const packet = decodeStartupPacket(oneUntyped(frontendStartup(Object.fromEntries(params))));
        assert.equal(packet.kind, 'startup');
        if (packet.kind !== 'startup') return;
        assert.equal(packet.major, 3);
        assert.equal(packet.minor, 0);
        // Object.fromEntries orders integer-like keys first, as the encoder sees them.
        const sent = Object.entries(Object.fromEntries(params));
        assert.deepEqual(
          [...packet.params],
          sent.filter(([k]) => !k.startsWith('_pq_.')),
        );
        assert.deepEqual(
          packet.unrecognizedOptions,
          sent.map(([k]) => k).filter((k) => k.startsWith('_pq_.')),
        );
      }),
      runs(500),
    );
  });

  it('PasswordMessage, SSLRequest, CancelRequest, Terminate', () => {
    fc.assert(
      fc.property(
        cstringText({ maxLength: 64 }),
        fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }),
        fc.uint8Array({ minLength: 4, maxLength: 256 }),
        (password, pid, key) => {
          const pw = oneTyped(frontendPassword(password));
          assert.equal(pw.type, 0x70);
          assert.equal(decodePasswordMessage(pw.body), password);
          assert.deepEqual(decodeStartupPacket(oneUntyped(frontendSSLRequest())), { kind: 'ssl' });
          assert.deepEqual(decodeStartupPacket(oneUntyped(frontendCancelRequest(pid, Buffer.from(key)))), {
            kind: 'cancel',
            processId: pid,
            secretKey: Buffer.from(key),
          });
          assert.deepEqual(oneTyped(frontendTerminate()), { type: 0x58, body: Buffer.alloc(0) });
        },
      ),
      runs(300),
    );
  });

  it('a string with NUL is refused by the encoder (ProxyError), never written', () => {
    fc.assert(
      fc.property(fc.string(), fc.string(), (a, b) => {
        const s = `${a}\0${b}`;
        assert.throws(() => frontendPassword(s), ProxyError);
        assert.throws(() => frontendStartup({ user: s }), ProxyError);
        assert.throws(() => frontendStartup({ [s]: 'x' }), ProxyError);
      }),
      runs(100),
    );
  });
});

const severity = fc.constantFrom<Severity>('ERROR', 'FATAL', 'PANIC', 'WARNING', 'NOTICE');
const sqlstate = fc.stringMatching(/^[0-9A-Z]{5}$/);

describe('backend encoders round-trip through pg-protocol (decodeBackendFrame)', () => {
  it('ErrorResponse and NoticeResponse keep every field', () => {
    fc.assert(
      fc.property(
        severity,
        sqlstate,
        cstringText({ maxLength: 40 }),
        fc.option(cstringText(), { nil: undefined }),
        fc.option(cstringText(), { nil: undefined }),
        (sev, code, message, detail, hint) => {
          const fields = { severity: sev, sqlstate: code, message, detail, hint };
          const err = decodeBackendFrame(oneTyped(errorResponse(fields))) as DatabaseError;
          const notice = decodeBackendFrame(oneTyped(noticeResponse(fields))) as NoticeMessage;
          for (const m of [err, notice]) {
            assert.equal(m.severity, sev);
            assert.equal(m.code, code);
            assert.equal(m.message, message);
            assert.equal(m.detail, detail);
            assert.equal(m.hint, hint);
          }
          assert.equal(err.name, 'error');
          assert.equal(notice.name, 'notice');
        },
      ),
      runs(300),
    );
  });

  it('Authentication requests, ParameterStatus, BackendKeyData, ReadyForQuery', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 4, maxLength: 4 }),
        fc.array(cstringText({ minLength: 1 }), { maxLength: 4 }),
        fc.stringMatching(/^[\x20-\x7e]{0,40}$/),
        cstringText(),
        cstringText(),
        fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }),
        fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }),
        fc.constantFrom('I' as const, 'T' as const, 'E' as const),
        (salt, mechanisms, saslData, name, value, pid, key, status) => {
          const decode = (raw: Buffer) =>
            decodeBackendFrame(oneTyped(raw)) as unknown as Record<string, unknown>;
          assert.equal(decode(authenticationOk()).name, 'authenticationOk');
          assert.equal(decode(authenticationCleartextPassword()).name, 'authenticationCleartextPassword');
          const md5 = decode(
            authenticationMD5Password(Buffer.from(salt)),
          ) as unknown as AuthenticationMD5Password;
          assert.deepEqual(Buffer.from(md5.salt), Buffer.from(salt));
          assert.deepEqual(decode(authenticationSASL(mechanisms)).mechanisms, mechanisms);
          assert.equal(decode(authenticationSASLContinue(Buffer.from(saslData))).data, saslData);
          assert.equal(decode(authenticationSASLFinal(Buffer.from(saslData))).data, saslData);
          const ps = decode(parameterStatus(name, value)) as unknown as ParameterStatusMessage;
          assert.deepEqual([ps.parameterName, ps.parameterValue], [name, value]);
          const kd = decode(backendKeyData(pid, int32(key))) as unknown as BackendKeyDataMessage;
          assert.deepEqual([kd.processID, kd.secretKey], [pid, key]);
          const rfq = decode(readyForQuery(status)) as unknown as ReadyForQueryMessage;
          assert.equal(rfq.status, status);
        },
      ),
      runs(300),
    );
  });

  it('NegotiateProtocolVersion (pg-protocol has no parser for it): version and option list as laid out', () => {
    fc.assert(
      fc.property(fc.nat({ max: 0xffff }), fc.array(cstringText(), { maxLength: 5 }), (minor, opts) => {
        const version = (3 << 16) | minor;
        const frame = oneTyped(negotiateProtocolVersion(version, opts));
        assert.equal(frame.type, 0x76);
        assert.equal(frame.body.readInt32BE(0), version);
        assert.equal(frame.body.readInt32BE(4), opts.length);
        const names = frame.body.subarray(8).toString('utf8').split('\0');
        assert.deepEqual(names.slice(0, -1), opts);
      }),
      runs(200),
    );
  });
});

describe('upstream decode', () => {
  it('decodeBackendFrame on arbitrary frames: returns or throws an Error, never touches the body', () => {
    const types = fc.oneof(
      fc.constantFrom(0x52, 0x45, 0x4e, 0x53, 0x4b, 0x5a, 0x54, 0x44, 0x43, 0x47, 0x48, 0x64, 0x41, 0x74),
      fc.integer({ min: 0, max: 255 }),
    );
    fc.assert(
      fc.property(types, bytes(48), (type, body) => {
        const copy = Buffer.from(body);
        onlyThrows(() => decodeBackendFrame({ type, body }), Error);
        assert.deepEqual(body, copy);
        // encodeFrame re-frames it exactly, whatever the body.
        assert.deepEqual(oneTyped(encodeFrame({ type, body })), { type, body: copy });
      }),
      runs(1500),
    );
  });
});
