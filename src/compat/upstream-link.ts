import type tls from 'node:tls';
import { ProxyError } from '../errors.js';
import { FrameStream } from '../io/frame-stream.js';
import type { Frame, UpstreamLink } from './exchange.js';

/** PostgreSQL's own bound on a message (1 GB); DSQL's answers are far below it. */
const MAX_MESSAGE = 0x3fffffff;

/**
 * The upstream connection read message by message (io/frame-stream.ts) while the compatibility layer
 * has it to itself (the relay has stopped reading it: Relay.borrowUpstream). release() hands it back.
 */
export class SocketLink implements UpstreamLink {
  private readonly frames: FrameStream;

  constructor(private readonly socket: tls.TLSSocket) {
    this.frames = new FrameStream(
      socket,
      () => new ProxyError('UPSTREAM_CLOSED', { message: 'the DSQL endpoint closed the connection' }),
    );
  }

  write(bytes: Buffer): void {
    this.socket.write(bytes);
  }

  next(): Promise<Frame> {
    return this.frames.nextTyped(MAX_MESSAGE);
  }

  /** Stops reading; bytes received past the last message go back to the socket, for the relay. */
  release(): void {
    const rest = this.frames.detach();
    if (rest.length > 0) this.socket.unshift(rest);
  }

  get closed(): boolean {
    return this.socket.destroyed;
  }
}
