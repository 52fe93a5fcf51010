/**
 * Promise-based socket reads for the local DSQL-like endpoint. The message encoders and decoders it
 * needs come from src/protocol; only this pull-style reader is its own (the proxy reads push-style).
 */
import type { Duplex } from 'node:stream';
import { MAX_STARTUP_PACKET_LENGTH } from '../protocol/constants.js';

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
    if (len < 8 || len > MAX_STARTUP_PACKET_LENGTH) throw new Error(`invalid startup packet length ${len}`);
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
