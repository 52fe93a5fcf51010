/**
 * Shared pieces of the property-based tests (test/unit/*.property.test.ts): run parameters, byte
 * mutations, chunkings, and an assertion that a parser fails only with its documented error type.
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';

/**
 * Fixed by default so CI is deterministic; FC_SEED=<n> explores other inputs
 * (`FC_SEED=$RANDOM npm run test:unit`). fast-check prints the seed and path of any failure.
 */
const SEED = process.env.FC_SEED === undefined ? 0x5eed_d5 : Number(process.env.FC_SEED);

/** fc.assert parameters: a fixed seed and a run count sized for the 2-core CI budget. */
export function runs(numRuns: number): fc.Parameters<unknown> {
  return { seed: SEED, numRuns };
}

/** Bytes of any value, short enough that thousands of runs stay fast. */
export function bytes(maxLength = 64): fc.Arbitrary<Buffer> {
  return fc.uint8Array({ maxLength }).map((a) => Buffer.from(a));
}

/** Lengths a hostile peer would write in an int32 length field. */
export const hostileInt32: fc.Arbitrary<number> = fc.oneof(
  fc.constantFrom(-(2 ** 31), -1, 0, 1, 3, 4, 5, 8, 9999, 10000, 10001, 65535, 65536, 2 ** 31 - 1),
  fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }),
);

export type Mutation =
  | { kind: 'flip'; at: number; bit: number }
  | { kind: 'truncate'; at: number }
  | { kind: 'duplicate'; at: number }
  | { kind: 'remove'; at: number }
  | { kind: 'insert'; at: number; data: Buffer }
  | { kind: 'int32'; at: number; value: number };

export const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bit: fc.nat({ max: 7 }) }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('duplicate' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('remove' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), data: bytes(8) }),
  fc.record({ kind: fc.constant('int32' as const), at: fc.nat(), value: hostileInt32 }),
);

/** Applies one mutation to a copy of `buf` (positions wrap around its length). */
export function mutate(buf: Buffer, m: Mutation): Buffer {
  if (buf.length === 0) return m.kind === 'insert' ? Buffer.from(m.data) : Buffer.alloc(0);
  const at = m.at % buf.length;
  switch (m.kind) {
    case 'flip': {
      const out = Buffer.from(buf);
      out[at] = out[at]! ^ (1 << m.bit);
      return out;
    }
    case 'truncate':
      return Buffer.from(buf.subarray(0, at));
    case 'duplicate':
      return Buffer.concat([buf.subarray(0, at + 1), buf.subarray(at)]);
    case 'remove':
      return Buffer.concat([buf.subarray(0, at), buf.subarray(at + 1)]);
    case 'insert':
      return Buffer.concat([buf.subarray(0, at), m.data, buf.subarray(at)]);
    case 'int32': {
      const out = Buffer.concat([buf, Buffer.alloc(4)]);
      out.writeInt32BE(m.value, Math.min(at, buf.length));
      return out.subarray(0, Math.max(buf.length, Math.min(at, buf.length) + 4));
    }
  }
}

export function mutateAll(buf: Buffer, ms: readonly Mutation[]): Buffer {
  return ms.reduce((b, m) => mutate(b, m), buf);
}

/** Cut points for splitting a byte stream into chunks; see `split`. */
export const cuts: fc.Arbitrary<number[]> = fc.array(fc.nat(), { maxLength: 12 });

/** Splits `buf` at the given points (taken modulo its length), keeping every byte in order. */
export function split(buf: Buffer, points: readonly number[]): Buffer[] {
  if (buf.length === 0) return [];
  const at = [...new Set(points.map((p) => p % (buf.length + 1)))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let prev = 0;
  for (const p of [...at, buf.length]) {
    if (p > prev) out.push(buf.subarray(prev, p));
    prev = Math.max(prev, p);
  }
  return out;
}

/**
 * Runs `fn`; if it throws, the error must be an instance of `type` (and pass `check`). Returns the
 * result, or undefined after an allowed error.
 */
export function onlyThrows<T, E extends Error>(
  fn: () => T,
  type: abstract new (...args: never[]) => E,
  check?: (err: E) => void,
): T | undefined {
  try {
    return fn();
  } catch (err) {
    assert.ok(err instanceof type, `expected only ${type.name}, got ${String((err as Error)?.stack ?? err)}`);
    check?.(err);
    return undefined;
  }
}

/** Strings that survive a UTF-8 round trip and a NUL-terminated protocol string: no NUL, no lone surrogate. */
export function cstringText(opts: { minLength?: number; maxLength?: number } = {}): fc.Arbitrary<string> {
  return fc.string({ unit: 'binary', maxLength: 16, ...opts }).filter((s) => !s.includes('\0'));
}
