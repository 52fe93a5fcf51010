import { ProxyError } from '../errors.js';

/**
 * Tiny helpers shared by the encoders: protocol strings are NUL-terminated, so a string that
 * contains NUL cannot be encoded without corrupting the framing; refuse it instead.
 */

/** Encodes a NUL-terminated UTF-8 string. */
export function cstring(value: string): Buffer {
  if (value.includes('\0')) {
    throw new ProxyError('INTERNAL', { message: 'cannot encode a protocol string that contains NUL' });
  }
  return Buffer.from(`${value}\0`, 'utf8');
}

export function int16(value: number): Buffer {
  const buf = Buffer.allocUnsafe(2);
  buf.writeInt16BE(value, 0);
  return buf;
}

export function int32(value: number): Buffer {
  const buf = Buffer.allocUnsafe(4);
  buf.writeInt32BE(value, 0);
  return buf;
}

/** `type` byte + int32 length (counting itself) + body. */
export function typedMessage(type: number, ...parts: Buffer[]): Buffer {
  const bodyLength = parts.reduce((sum, p) => sum + p.length, 0);
  const header = Buffer.allocUnsafe(5);
  header[0] = type;
  header.writeInt32BE(bodyLength + 4, 1);
  return Buffer.concat([header, ...parts], bodyLength + 5);
}

/** int32 length (counting itself) + body: the startup-phase framing. */
export function untypedMessage(...parts: Buffer[]): Buffer {
  const bodyLength = parts.reduce((sum, p) => sum + p.length, 0);
  return Buffer.concat([int32(bodyLength + 4), ...parts], bodyLength + 4);
}
