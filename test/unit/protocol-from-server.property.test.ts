/**
 * Properties of src/protocol/from-server.ts: decodeBackendFrame over arbitrary frames throws only Error
 * instances and leaves the frame alone.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { decodeBackendFrame, encodeFrame } from '../../src/protocol/from-server.js';
import { oneTyped } from './frame-helpers.js';
import { bytes, onlyThrows, runs } from './property-helpers.js';

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
