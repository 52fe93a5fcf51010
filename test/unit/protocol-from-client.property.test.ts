/**
 * Properties of the frontend decoders (src/protocol/from-client.ts): they fail only with
 * ProxyError('PROTOCOL_VIOLATION'), on arbitrary bodies and on mutations of valid ones, and never
 * modify their input. The encoders' round trips are in protocol-to-server.property.test.ts and
 * protocol-to-client.property.test.ts; decodeBackendFrame's in protocol-from-server.property.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { ProxyError } from '../../src/errors.js';
import {
  decodePasswordMessage,
  decodeSASLInitialResponse,
  decodeSASLResponse,
  decodeStartupPacket,
} from '../../src/protocol/from-client.js';
import { frontendCancelRequest, frontendStartup } from '../../src/protocol/to-server.js';
import { int32, oneUntyped, startupParams } from './frame-helpers.js';
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

/** The startup-phase codes and versions worth hitting, plus any int32. */
const startupCode = fc.oneof(
  fc.constantFrom(80877103, 80877104, 80877102, 196608, 196610, 131072, 0x30000 | 0xffff),
  fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }),
);

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
