/**
 * Properties of FrameReader over arbitrary bytes and arbitrary chunkings: it fails only with
 * ProxyError (PROTOCOL_VIOLATION, MESSAGE_TOO_LARGE or STARTUP_LENGTH_INVALID), never holds more than one header plus
 * maxLength while waiting, never writes into a pushed chunk, and returns exactly the frames of a valid
 * stream however it is split.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { ProxyError } from '../../src/errors.js';
import { FrameReader, type TypedFrame } from '../../src/protocol/frame-reader.js';
import { bytes, cuts, hostileInt32, mutateAll, mutation, runs, split } from './property-helpers.js';

const FRAME_ERRORS = new Set(['PROTOCOL_VIOLATION', 'MESSAGE_TOO_LARGE', 'STARTUP_LENGTH_INVALID']);

function typedFrame(type: number, body: Buffer): Buffer {
  const header = Buffer.alloc(5);
  header[0] = type;
  header.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([header, body]);
}

function untypedFrame(body: Buffer): Buffer {
  const header = Buffer.alloc(4);
  header.writeInt32BE(body.length + 4, 0);
  return Buffer.concat([header, body]);
}

type Read = { typed: true; frame: TypedFrame } | { typed: false; body: Buffer };

/**
 * Pushes each chunk and drains after it, in the given modes (untyped first, as a connection does).
 * Checks the bound after every null. Stops at the first (allowed) error.
 */
function drive(
  chunks: Buffer[],
  maxLength: number,
  untypedFirst: number,
): { reads: Read[]; error: ProxyError | undefined; reader: FrameReader } {
  const reader = new FrameReader();
  const reads: Read[] = [];
  for (const chunk of chunks) {
    reader.push(chunk);
    for (;;) {
      const typed = reads.length >= untypedFirst;
      let got: Read | null;
      try {
        if (typed) {
          const frame = reader.nextTyped(maxLength);
          got = frame === null ? null : { typed: true, frame };
        } else {
          const body = reader.nextUntyped(maxLength);
          got = body === null ? null : { typed: false, body };
        }
      } catch (err) {
        assert.ok(err instanceof ProxyError, `unexpected ${String(err)}`);
        assert.ok(FRAME_ERRORS.has(err.code), err.code);
        return { reads, error: err, reader };
      }
      if (got === null) {
        // Waiting for more: never for more than one header and maxLength (the length counts itself).
        const limit = typed ? Math.max(5, maxLength + 1) : Math.max(4, maxLength);
        assert.ok(reader.buffered() < limit, `buffered ${reader.buffered()} with maxLength ${maxLength}`);
        break;
      }
      reads.push(got);
    }
  }
  return { reads, error: undefined, reader };
}

const frameSpec = fc.record({ type: fc.integer({ min: 0, max: 255 }), body: bytes(40) });

describe('FrameReader properties', () => {
  it('arbitrary bytes and chunkings: only ProxyError, bounded while waiting, input never modified', () => {
    fc.assert(
      fc.property(
        bytes(200),
        cuts,
        fc.integer({ min: 0, max: 300 }),
        fc.nat({ max: 3 }),
        (data, points, maxLength, untypedFirst) => {
          const chunks = split(data, points);
          const copies = chunks.map((c) => Buffer.from(c));
          const { reads, reader, error } = drive(chunks, maxLength, untypedFirst);
          for (const [i, c] of chunks.entries()) assert.deepEqual(c, copies[i]);
          // Every byte is accounted for: frames returned plus what is still buffered.
          const consumed = reads.reduce(
            (n, r) => n + (r.typed ? r.frame.body.length + 5 : r.body.length + 4),
            0,
          );
          if (error === undefined) assert.equal(consumed + reader.buffered(), data.length);
        },
      ),
      runs(600),
    );
  });

  it('a hostile length is refused as soon as the header is complete, before any body arrives', () => {
    fc.assert(
      fc.property(hostileInt32, fc.integer({ min: 4, max: 70000 }), fc.boolean(), (length, max, typed) => {
        const header = typed ? Buffer.alloc(5) : Buffer.alloc(4);
        header.writeInt32BE(length, typed ? 1 : 0);
        const reader = new FrameReader();
        reader.push(header);
        let threw: unknown;
        let result: unknown;
        try {
          result = typed ? reader.nextTyped(max) : reader.nextUntyped(max);
        } catch (err) {
          threw = err;
        }
        if (!typed && (length < 4 || length > max)) {
          assert.ok(threw instanceof ProxyError && threw.code === 'STARTUP_LENGTH_INVALID');
        } else if (length < 4) {
          assert.ok(threw instanceof ProxyError && threw.code === 'PROTOCOL_VIOLATION');
        } else if (length > max) {
          assert.ok(threw instanceof ProxyError && threw.code === 'MESSAGE_TOO_LARGE');
        } else if (length === 4) {
          assert.equal(threw, undefined);
          assert.notEqual(result, null);
        } else {
          assert.equal(threw, undefined);
          assert.equal(result, null);
        }
      }),
      runs(1000),
    );
  });

  it('valid streams split anywhere give back exactly the frames sent (reference model)', () => {
    fc.assert(
      fc.property(
        fc.array(bytes(40), { maxLength: 3 }),
        fc.array(frameSpec, { maxLength: 12 }),
        cuts,
        fc.array(fc.nat({ max: 3 }), { maxLength: 6 }),
        (untypedBodies, typedFrames, points, extraSplits) => {
          const wire = Buffer.concat([
            ...untypedBodies.map(untypedFrame),
            ...typedFrames.map((f) => typedFrame(f.type, f.body)),
          ]);
          // Also split into runs of 1..4 bytes somewhere, the worst case for header reassembly.
          const chunks = split(wire, points).flatMap((c, i) =>
            extraSplits[i]
              ? split(
                  c,
                  Array.from({ length: c.length }, (_, k) => k * extraSplits[i]!),
                )
              : [c],
          );
          const max = 45;
          const { reads, error, reader } = drive(chunks, max, untypedBodies.length);
          assert.equal(error, undefined);
          assert.equal(reader.buffered(), 0);
          assert.equal(reads.length, untypedBodies.length + typedFrames.length);
          for (const [i, b] of untypedBodies.entries()) assert.deepEqual(reads[i], { typed: false, body: b });
          for (const [i, f] of typedFrames.entries()) {
            const frame = { type: f.type, body: f.body };
            assert.deepEqual(reads[untypedBodies.length + i], { typed: true, frame });
          }
          assert.equal(reader.takeRemaining().length, 0);
        },
      ),
      runs(500),
    );
  });

  it('mutated valid streams: only ProxyError, and takeRemaining returns exactly the unread bytes', () => {
    fc.assert(
      fc.property(
        fc.array(frameSpec, { minLength: 1, maxLength: 6 }),
        fc.array(mutation, { minLength: 1, maxLength: 4 }),
        cuts,
        (frames, ms, points) => {
          const wire = mutateAll(Buffer.concat(frames.map((f) => typedFrame(f.type, f.body))), ms);
          const { reads, error, reader } = drive(split(wire, points), 60, 0);
          if (error !== undefined) return;
          const consumed = reads.reduce((n, r) => n + (r.typed ? r.frame.body.length + 5 : 0), 0);
          assert.deepEqual(reader.takeRemaining(), wire.subarray(consumed));
        },
      ),
      runs(500),
    );
  });
});
