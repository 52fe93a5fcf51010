/**
 * Properties of the frontend encoders (src/protocol/to-server.ts): what they write decodes back
 * to what was encoded, through FrameReader and our frontend decoders.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { ProxyError } from '../../src/errors.js';
import { decodePasswordMessage, decodeStartupPacket } from '../../src/protocol/from-client.js';
import {
  frontendCancelRequest,
  frontendPassword,
  frontendSSLRequest,
  frontendStartup,
  frontendTerminate,
} from '../../src/protocol/to-server.js';
import { oneTyped, oneUntyped, startupParams } from './frame-helpers.js';
import { cstringText, runs } from './property-helpers.js';

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
