/**
 * The wire model shared by the scanners' property tests (relay-*-scanner.property.test.ts): messages
 * framed as PostgreSQL frames them, where their boundaries fall, generators of backend and frontend
 * messages, and streams with hostile lengths.
 */
import fc from 'fast-check';
import { bytes, hostileInt32 } from './property-helpers.js';

export interface Message {
  type: number;
  body: Buffer;
}

export function wire(messages: readonly Message[]): Buffer {
  return Buffer.concat(
    messages.flatMap(({ type, body }) => {
      const header = Buffer.alloc(5);
      header[0] = type;
      header.writeInt32BE(body.length + 4, 1);
      return [header, body];
    }),
  );
}

/** Offsets at which a message ends (0 included): where atBoundary() must be true. */
export function boundaries(messages: readonly Message[]): Set<number> {
  const out = new Set([0]);
  let at = 0;
  for (const m of messages) {
    at += 5 + m.body.length;
    out.add(at);
  }
  return out;
}

export const cstr = (s: string): Buffer => Buffer.from(`${s}\0`);
export const name = fc.stringMatching(/^[a-z0-9_]{0,8}$/);

/** Backend messages the scanner treats specially, and any other. */
export const backendMessage: fc.Arbitrary<Message> = fc.oneof(
  fc.constantFrom('I', 'T', 'E').map((s) => ({ type: 0x5a, body: Buffer.from(s) })),
  bytes(30).map((body) => ({ type: 0x45, body })),
  bytes(30).map((body) => ({ type: 0x53, body })),
  fc.record({ type: fc.integer({ min: 0, max: 255 }), body: bytes(30) }),
);

/** Frontend messages: simple and extended protocol, with named and unnamed statements. */
export const frontendMessage: fc.Arbitrary<Message> = fc.oneof(
  name.map((sql) => ({ type: 0x51, body: cstr(sql) })),
  fc
    .tuple(name, name)
    .map(([n, sql]) => ({ type: 0x50, body: Buffer.concat([cstr(n), cstr(sql), Buffer.alloc(2)]) })),
  fc.tuple(fc.constantFrom('S', 'P'), name).map(([k, n]) => ({ type: 0x43, body: cstr(k + n) })),
  fc
    .constantFrom(0x53, 0x48, 0x42, 0x44, 0x45, 0x46, 0x58, 0x64, 0x63)
    .map((type) => ({ type, body: Buffer.alloc(0) })),
  fc.record({ type: fc.integer({ min: 0, max: 255 }), body: bytes(20) }),
);

/** A stream of arbitrary bytes, or headers with hostile lengths among them. */
export const hostileStream = fc.oneof(
  bytes(300),
  fc
    .array(fc.tuple(fc.integer({ min: 0, max: 255 }), hostileInt32, bytes(10)), { maxLength: 10 })
    .map((parts) =>
      Buffer.concat(
        parts.map(([type, length, rest]) => {
          const h = Buffer.alloc(5);
          h[0] = type;
          h.writeInt32BE(length, 1);
          return Buffer.concat([h, rest]);
        }),
      ),
    ),
);
