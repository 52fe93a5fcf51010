import type { Duplex } from 'node:stream';
import { FrameReader, type TypedFrame } from '../protocol/frame-reader.js';

/**
 * Awaitable frames from a socket, for the short handshake phases (client startup and auth, upstream
 * login). The socket is read only while a frame is awaited, so a peer that floods bytes it was not
 * asked for is held back by TCP rather than buffered here. `detach()` ends the phase and returns
 * whatever was received past the last frame, to be forwarded by the relay.
 */
export class FrameStream {
  private readonly reader = new FrameReader();
  private waiter: { read: () => boolean; reject: (err: Error) => void } | undefined;
  private ended: Error | undefined;

  constructor(
    private readonly socket: Duplex,
    /** The error a pending read fails with when the peer goes away. */
    private readonly closedError: () => Error,
  ) {
    socket.on('data', this.onData);
    socket.on('end', this.onEnd);
    socket.on('close', this.onEnd);
    socket.on('error', this.onError);
    socket.pause();
  }

  nextUntyped(maxLength: number): Promise<Buffer> {
    return this.next(() => this.reader.nextUntyped(maxLength));
  }

  nextTyped(maxLength: number): Promise<TypedFrame> {
    return this.next(() => this.reader.nextTyped(maxLength));
  }

  /** Resolves with the next byte without consuming it (e.g. 0x16: a TLS ClientHello). */
  peekByte(): Promise<number> {
    return this.next(() => this.reader.peekByte() ?? null);
  }

  /** Bytes received and not yet returned as a frame. */
  buffered(): number {
    return this.reader.buffered();
  }

  /** Stops reading (the socket stays paused) and returns any bytes received past the last frame. */
  detach(): Buffer {
    this.socket.off('data', this.onData);
    this.socket.off('end', this.onEnd);
    this.socket.off('close', this.onEnd);
    this.socket.off('error', this.onError);
    this.socket.pause();
    return this.reader.takeRemaining();
  }

  private next<T>(read: () => T | null): Promise<T> {
    if (this.waiter) return Promise.reject(new Error('FrameStream: concurrent reads'));
    // A frame already buffered (the usual case after the first of a burst) is answered without a
    // waiter or a resume: only the promise the caller awaits.
    let frame: T | null;
    try {
      frame = read();
    } catch (err) {
      return Promise.reject(err);
    }
    if (frame !== null) return Promise.resolve(frame);
    if (this.ended) return Promise.reject(this.ended);
    return new Promise<T>((resolve, reject) => {
      const attempt = (): boolean => {
        const next = read();
        if (next === null) return false;
        resolve(next);
        return true;
      };
      this.waiter = { read: attempt, reject };
      this.socket.resume();
    });
  }

  private readonly onData = (chunk: Buffer): void => {
    this.reader.push(chunk);
    const waiter = this.waiter;
    if (!waiter) {
      this.socket.pause();
      return;
    }
    try {
      if (waiter.read()) {
        this.waiter = undefined;
        this.socket.pause();
      }
    } catch (err) {
      this.waiter = undefined;
      this.socket.pause();
      waiter.reject(err as Error);
    }
  };

  private readonly onEnd = (): void => {
    this.fail(this.closedError());
  };

  private readonly onError = (err: Error): void => {
    const closed = this.closedError();
    (closed as Error & { cause?: unknown }).cause = err;
    this.fail(closed);
  };

  private fail(err: Error): void {
    this.ended ??= err;
    const waiter = this.waiter;
    this.waiter = undefined;
    waiter?.reject(this.ended);
  }
}
