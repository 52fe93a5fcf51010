import type tls from 'node:tls';
import { ProxyError } from '../errors.js';
import { FrameReader } from '../protocol/frame-reader.js';
import type { Frame, UpstreamLink } from './exchange.js';

/** PostgreSQL's own bound on a message (1 GB); DSQL's answers are far below it. */
const MAX_MESSAGE = 0x3fffffff;

/**
 * The upstream connection read message by message while the compatibility layer has it to itself (the
 * relay has stopped reading it: Relay.borrowUpstream). release() hands it back to the relay.
 */
export class SocketLink implements UpstreamLink {
  private readonly reader = new FrameReader();
  private waiter: { resolve: (f: Frame) => void; reject: (e: Error) => void } | undefined;
  private failure: Error | undefined;

  constructor(private readonly socket: tls.TLSSocket) {
    socket.on('data', this.onData);
    socket.once('close', this.onClose);
    socket.on('error', this.onError);
    socket.resume();
  }

  write(bytes: Buffer): void {
    this.socket.write(bytes);
  }

  next(): Promise<Frame> {
    try {
      const frame = this.reader.nextTyped(MAX_MESSAGE);
      if (frame) return Promise.resolve(frame);
    } catch (err) {
      return Promise.reject(err);
    }
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.waiter = { resolve, reject };
    });
  }

  /** Stops reading; what the server sent beyond the last message read stays unread (there is none). */
  release(): void {
    this.socket.off('data', this.onData);
    this.socket.off('close', this.onClose);
    this.socket.off('error', this.onError);
    this.socket.pause();
  }

  get closed(): boolean {
    return this.failure !== undefined;
  }

  private readonly onData = (chunk: Buffer): void => {
    this.reader.push(chunk);
    const waiter = this.waiter;
    if (!waiter) return;
    let frame: Frame | null;
    try {
      frame = this.reader.nextTyped(MAX_MESSAGE);
    } catch (err) {
      this.waiter = undefined;
      waiter.reject(err as Error);
      return;
    }
    if (frame) {
      this.waiter = undefined;
      waiter.resolve(frame);
    }
  };

  private readonly onError = (err: Error): void => {
    this.failure ??= new ProxyError('UPSTREAM_CLOSED', { message: 'the DSQL connection failed', cause: err });
  };

  private readonly onClose = (): void => {
    this.failure ??= new ProxyError('UPSTREAM_CLOSED', {
      message: 'the DSQL endpoint closed the connection',
    });
    const waiter = this.waiter;
    this.waiter = undefined;
    waiter?.reject(this.failure);
  };
}
