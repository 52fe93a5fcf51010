/**
 * Builders for frontend messages as a client would send them, written independently of
 * src/protocol so the decoders are tested against hand-laid bytes (one factory per message).
 */

function int32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n, 0);
  return b;
}

/** int32 length (counting itself) + body. */
export function untyped(body: Buffer): Buffer {
  return Buffer.concat([int32(body.length + 4), body]);
}

/** type byte + int32 length (counting itself) + body. */
export function typed(type: string, body: Buffer): Buffer {
  return Buffer.concat([Buffer.from(type, 'latin1'), int32(body.length + 4), body]);
}

export function startupBody(params: [string, string][], code = 196608): Buffer {
  const parts: Buffer[] = [int32(code)];
  for (const [k, v] of params) parts.push(Buffer.from(`${k}\0${v}\0`, 'utf8'));
  parts.push(Buffer.from([0]));
  return Buffer.concat(parts);
}

export function startupMessage(params: [string, string][], code = 196608): Buffer {
  return untyped(startupBody(params, code));
}

export function sslRequest(): Buffer {
  return untyped(int32(80877103));
}

export function gssencRequest(): Buffer {
  return untyped(int32(80877104));
}

export function cancelRequest(pid: number, key: Buffer): Buffer {
  return untyped(Buffer.concat([int32(80877102), int32(pid), key]));
}

export function passwordBody(password: string): Buffer {
  return Buffer.from(`${password}\0`, 'utf8');
}

export function passwordMessage(password: string): Buffer {
  return typed('p', passwordBody(password));
}

export function saslInitialBody(mechanism: string, data: Buffer | null): Buffer {
  return Buffer.concat([
    Buffer.from(`${mechanism}\0`, 'utf8'),
    int32(data === null ? -1 : data.length),
    data ?? Buffer.alloc(0),
  ]);
}

export function saslInitialResponse(mechanism: string, data: Buffer | null): Buffer {
  return typed('p', saslInitialBody(mechanism, data));
}

export function saslResponse(data: Buffer): Buffer {
  return typed('p', data);
}

export function query(sql: string): Buffer {
  return typed('Q', Buffer.from(`${sql}\0`, 'utf8'));
}

export function terminate(): Buffer {
  return typed('X', Buffer.alloc(0));
}

/** A hostile header: type byte (optional) and an arbitrary int32 length, no body. */
export function rawHeader(length: number, type?: string): Buffer {
  return type === undefined ? int32(length) : Buffer.concat([Buffer.from(type, 'latin1'), int32(length)]);
}

/** Every way to cut `buf` into two chunks (including the empty first/last chunk). */
export function* splits(buf: Buffer): Generator<[Buffer, Buffer]> {
  for (let i = 0; i <= buf.length; i++) yield [buf.subarray(0, i), buf.subarray(i)];
}
