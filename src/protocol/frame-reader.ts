import { ProxyError } from '../errors.js';

/** A typed protocol message: one type byte, then an int32 length that counts itself, then the body. */
export interface TypedFrame {
  type: number;
  body: Buffer;
}

/**
 * Reassembles PostgreSQL frames from socket chunks.
 *
 * Chunks are kept in a list and consumed by `consume(n)`, in the manner of ws's receiver: the reader
 * never writes into a Buffer it was given (pg-protocol's parser does, which corrupts a Buffer the
 * caller still holds). A returned body may share memory with a pushed chunk; neither side writes to it.
 *
 * Two read modes, because the protocol has two framings
 * (https://www.postgresql.org/docs/current/protocol-overview.html#PROTOCOL-MESSAGE-CONCEPTS):
 * - untyped: the startup-phase packets (StartupMessage, SSLRequest, GSSENCRequest, CancelRequest),
 *   `int32 length` + body;
 * - typed: every later message, `byte type` + `int32 length` + body.
 *
 * In both, `maxLength` bounds the length field (which counts its own 4 bytes). The check happens as
 * soon as the header is complete, before any of the body is buffered, so an unauthenticated peer
 * cannot make us hold more than one header's worth of a hostile message.
 */
export class FrameReader {
  private chunks: Buffer[] = [];
  private total = 0;

  /** Appends a chunk. The chunk is retained, never modified. */
  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.total += chunk.length;
  }

  /** Number of bytes received and not yet consumed. */
  buffered(): number {
    return this.total;
  }

  /**
   * Reads one untyped startup-phase packet and returns its body (the bytes after the length),
   * or null if the packet is not complete yet.
   * @throws ProxyError STARTUP_LENGTH_INVALID if the length is < 4 or > maxLength: a code of its own,
   *   because PostgreSQL answers it with silence (the peer may not speak PostgreSQL at all).
   */
  nextUntyped(maxLength: number): Buffer | null {
    if (this.total < 4) return null;
    const length = this.peek(4).readInt32BE(0);
    if (length < 4 || length > maxLength) {
      throw new ProxyError('STARTUP_LENGTH_INVALID', {
        message: `invalid length of startup packet (${length}; allowed 4 to ${maxLength})`,
      });
    }
    if (this.total < length) return null;
    this.consume(4);
    return this.consume(length - 4);
  }

  /**
   * Reads one typed message, or returns null if it is not complete yet.
   * @throws ProxyError PROTOCOL_VIOLATION if the length is < 4, MESSAGE_TOO_LARGE if > maxLength.
   */
  nextTyped(maxLength: number): TypedFrame | null {
    if (this.total < 5) return null;
    const header = this.peek(5);
    const length = header.readInt32BE(1);
    checkLength(length, maxLength);
    if (this.total < length + 1) return null;
    const type = header[0]!;
    this.consume(5);
    return { type, body: this.consume(length - 4) };
  }

  /**
   * Removes and returns every buffered byte. Used to hand pipelined bytes to the relay once the
   * handshake is over, and to detect bytes a client sent after SSLRequest before the TLS handshake
   * (CVE-2021-23214: such bytes were not protected by TLS and must be refused, not processed).
   */
  takeRemaining(): Buffer {
    const out = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks, this.total);
    this.chunks = [];
    this.total = 0;
    return out;
  }

  /** The next byte without consuming it, or undefined when nothing is buffered. */
  peekByte(): number | undefined {
    return this.chunks[0]?.[0];
  }

  /** Returns the first n buffered bytes without consuming them (copies only if they span chunks). */
  private peek(n: number): Buffer {
    const first = this.chunks[0]!;
    if (first.length >= n) return first.subarray(0, n);
    const out = Buffer.allocUnsafe(n);
    let offset = 0;
    for (const chunk of this.chunks) {
      const take = Math.min(chunk.length, n - offset);
      chunk.copy(out, offset, 0, take);
      offset += take;
      if (offset === n) break;
    }
    return out;
  }

  /** Removes and returns the first n buffered bytes; the caller has checked n <= total. */
  private consume(n: number): Buffer {
    this.total -= n;
    const first = this.chunks[0];
    if (n === 0 || first === undefined) return Buffer.alloc(0);
    if (first.length === n) {
      this.chunks.shift();
      return first;
    }
    if (first.length > n) {
      this.chunks[0] = first.subarray(n);
      return first.subarray(0, n);
    }
    const out = Buffer.allocUnsafe(n);
    let offset = 0;
    while (offset < n) {
      const chunk = this.chunks[0]!;
      const take = Math.min(chunk.length, n - offset);
      chunk.copy(out, offset, 0, take);
      offset += take;
      if (take === chunk.length) this.chunks.shift();
      else this.chunks[0] = chunk.subarray(take);
    }
    return out;
  }
}

function checkLength(length: number, maxLength: number): void {
  if (length < 4) {
    throw new ProxyError('PROTOCOL_VIOLATION', { message: `invalid message length ${length}` });
  }
  if (length > maxLength) {
    throw new ProxyError('MESSAGE_TOO_LARGE', {
      detail: `message length ${length} exceeds the limit of ${maxLength} bytes`,
    });
  }
}
