/**
 * Frame pieces shared by the codec property tests (protocol-*.property.test.ts,
 * protocol-from-server.property.test.ts): one whole frame read back with FrameReader, int32 fields, and
 * startup parameters as the encoder accepts them.
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { FrameReader, type TypedFrame } from '../../src/protocol/frame-reader.js';
import { cstringText } from './property-helpers.js';

export function oneTyped(raw: Buffer): TypedFrame {
  const reader = new FrameReader();
  reader.push(raw);
  const frame = reader.nextTyped(1 << 20);
  assert.ok(frame);
  assert.equal(reader.buffered(), 0);
  return frame;
}

export function oneUntyped(raw: Buffer): Buffer {
  const reader = new FrameReader();
  reader.push(raw);
  const body = reader.nextUntyped(1 << 20);
  assert.ok(body);
  assert.equal(reader.buffered(), 0);
  return body;
}

export { int32 } from './wire-pieces.js';

/** Startup parameters as the encoder accepts them: names without NUL, unique, not the empty string. */
export const startupParams = fc.uniqueArray(fc.tuple(cstringText({ minLength: 1 }), cstringText()), {
  selector: ([k]) => k,
  maxLength: 8,
});
