/**
 * Protocol messages laid by hand for unit tests, independent of src/protocol on purpose: a test that
 * built its input with the code under test could not catch that code's mistakes.
 */

/** A typed message: type byte, int32 length (itself included), body. */
export function msg(type: string, ...parts: Buffer[]): Buffer {
  const body = Buffer.concat(parts);
  const header = Buffer.alloc(5);
  header.write(type, 0, 'latin1');
  header.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([header, body]);
}

/** A NUL-terminated string. */
export const cstr = (s: string): Buffer => Buffer.from(`${s}\0`);

export const int16 = (n: number): Buffer => Buffer.from([n >> 8, n & 0xff]);

export function int32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n, 0);
  return b;
}
