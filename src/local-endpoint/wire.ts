/**
 * The handful of PostgreSQL wire-protocol pieces the fake DSQL endpoint needs. Kept local on
 * purpose: test infrastructure must not share (and so hide) bugs with the proxy's own codec.
 */
import type { Duplex } from 'node:stream';

export const PROTOCOL_3_0 = 196608; // 3 << 16
export const SSL_REQUEST_CODE = 80877103;
export const CANCEL_REQUEST_CODE = 80877102;
export const GSSENC_REQUEST_CODE = 80877104;

/** Guards against a garbage length making us buffer forever (PostgreSQL uses 10000 for startup). */
export const MAX_STARTUP_LENGTH = 10_000;

export interface ErrorFields {
  severity: 'FATAL' | 'ERROR';
  code: string;
  message: string;
  detail?: string;
}

export function errorResponse(f: ErrorFields): Buffer {
  const parts: Buffer[] = [];
  const field = (type: string, value: string): void => {
    parts.push(Buffer.from(type, 'ascii'), Buffer.from(`${value}\0`, 'utf8'));
  };
  field('S', f.severity);
  field('V', f.severity);
  field('C', f.code);
  field('M', f.message);
  if (f.detail !== undefined) field('D', f.detail);
  parts.push(Buffer.alloc(1));
  return typed('E', Buffer.concat(parts));
}

export function authenticationCleartextPassword(): Buffer {
  const body = Buffer.alloc(4);
  body.writeInt32BE(3);
  return typed('R', body);
}

/** A typed backend/frontend message: 1-byte type, int32 length (incl. itself), body. */
export function typed(type: string, body: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head.write(type, 0, 'ascii');
  head.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([head, body]);
}

export function startupMessage(params: Record<string, string>): Buffer {
  const kv = Object.entries(params).flatMap(([k, v]) => [Buffer.from(`${k}\0${v}\0`, 'utf8')]);
  const body = Buffer.concat([...kv, Buffer.alloc(1)]);
  const head = Buffer.alloc(8);
  head.writeInt32BE(body.length + 8, 0);
  head.writeInt32BE(PROTOCOL_3_0, 4);
  return Buffer.concat([head, body]);
}

export function cancelRequest(pid: number, key: number): Buffer {
  const b = Buffer.alloc(16);
  b.writeInt32BE(16, 0);
  b.writeInt32BE(CANCEL_REQUEST_CODE, 4);
  b.writeInt32BE(pid, 8);
  b.writeInt32BE(key, 12);
  return b;
}

export function sslRequest(): Buffer {
  const b = Buffer.alloc(8);
  b.writeInt32BE(8, 0);
  b.writeInt32BE(SSL_REQUEST_CODE, 4);
  return b;
}

/** Parses the key/value body of a StartupMessage (after length and protocol code). */
export function parseStartupParams(body: Buffer): Map<string, string> | null {
  const params = new Map<string, string>();
  let pos = 0;
  while (pos < body.length) {
    if (body[pos] === 0) return pos === body.length - 1 ? params : null;
    const kEnd = body.indexOf(0, pos);
    if (kEnd < 0) return null;
    const vEnd = body.indexOf(0, kEnd + 1);
    if (vEnd < 0) return null;
    params.set(body.toString('utf8', pos, kEnd), body.toString('utf8', kEnd + 1, vEnd));
    pos = vEnd + 1;
  }
  return null;
}

/**
 * Promise-based reads of exact byte counts from a socket. `detach()` hands back unread bytes and
 * leaves the socket paused, so the caller can wrap it in TLS or pipe it elsewhere without loss.
 */
export class SocketReader {
  private chunks: Buffer[] = [];
  private size = 0;
  private waiter: { n: number; resolve: (b: Buffer) => void; reject: (e: Error) => void } | undefined;
  private failure: Error | undefined;
  private readonly onData = (chunk: Buffer): void => {
    this.chunks.push(chunk);
    this.size += chunk.length;
    this.pump();
  };
  private readonly onEnd = (): void => this.fail(new Error('connection closed by peer'));
  private readonly onError = (err: Error): void => this.fail(err);

  constructor(private readonly socket: Duplex) {
    socket.on('data', this.onData);
    socket.on('end', this.onEnd);
    socket.on('close', this.onEnd);
    socket.on('error', this.onError);
  }

  get buffered(): number {
    return this.size;
  }

  read(n: number): Promise<Buffer> {
    if (this.waiter) return Promise.reject(new Error('concurrent read'));
    return new Promise((resolve, reject) => {
      this.waiter = { n, resolve, reject };
      this.pump();
    });
  }

  /** Reads an int32-length-prefixed untyped packet (startup family); returns the body after the length. */
  async readStartupPacket(): Promise<Buffer> {
    const len = (await this.read(4)).readInt32BE(0);
    if (len < 8 || len > MAX_STARTUP_LENGTH) throw new Error(`invalid startup packet length ${len}`);
    return this.read(len - 4);
  }

  /** Reads a typed message; returns its type and body. */
  async readMessage(maxLength = 1 << 20): Promise<{ type: string; body: Buffer }> {
    const head = await this.read(5);
    const len = head.readInt32BE(1);
    if (len < 4 || len > maxLength) throw new Error(`invalid message length ${len}`);
    return { type: String.fromCharCode(head[0] ?? 0), body: await this.read(len - 4) };
  }

  detach(): Buffer {
    this.socket.off('data', this.onData);
    this.socket.off('end', this.onEnd);
    this.socket.off('close', this.onEnd);
    this.socket.off('error', this.onError);
    this.socket.pause();
    const rest = Buffer.concat(this.chunks);
    this.chunks = [];
    this.size = 0;
    return rest;
  }

  private fail(err: Error): void {
    this.failure ??= err;
    this.pump();
  }

  private pump(): void {
    const w = this.waiter;
    if (!w) return;
    if (this.size >= w.n) {
      const all = this.chunks.length === 1 ? (this.chunks[0] as Buffer) : Buffer.concat(this.chunks);
      this.chunks = all.length > w.n ? [all.subarray(w.n)] : [];
      this.size = all.length - w.n;
      this.waiter = undefined;
      w.resolve(all.subarray(0, w.n));
    } else if (this.failure) {
      this.waiter = undefined;
      w.reject(this.failure);
    }
  }
}
