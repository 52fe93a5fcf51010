import type net from 'node:net';
import type tls from 'node:tls';
import { BackendScanner } from './backend-scanner.js';

export type CloseReason =
  | 'client_closed'
  | 'upstream_closed'
  | 'client_error'
  | 'upstream_error'
  | 'terminated';

/** Byte counters fed per chunk (Prometheus children bound to their labels). */
export interface RelayCounters {
  toServer: { inc(n: number): void };
  toClient: { inc(n: number): void };
}

const NO_COUNTERS: RelayCounters = { toServer: { inc() {} }, toClient: { inc() {} } };

export interface RelayResult {
  reason: CloseReason;
  error?: Error;
}

/**
 * The steady state of a session: bytes flow both ways untouched, with backpressure in both directions.
 * Upstream → client also feeds each chunk to a header-only scanner so the proxy knows where message
 * boundaries are and the transaction status. Closing or failing either side ends both.
 */
export class Relay {
  readonly scanner = new BackendScanner();
  private finished = false;
  private resolveDone!: (r: RelayResult) => void;
  readonly done: Promise<RelayResult> = new Promise((resolve) => {
    this.resolveDone = resolve;
  });

  constructor(
    private readonly client: net.Socket,
    private readonly upstream: tls.TLSSocket,
    private readonly counters: RelayCounters = NO_COUNTERS,
  ) {}

  /** Starts relaying; `toUpstream`/`toClient` are bytes already read during the handshakes. */
  start(toUpstream: Buffer, toClient: Buffer): void {
    const { client, upstream } = this;
    if (toClient.length > 0) {
      this.scanner.scan(toClient);
      client.write(toClient);
    }
    if (toUpstream.length > 0) upstream.write(toUpstream);

    client.on('data', this.onClientData);
    upstream.on('drain', this.onUpstreamDrain);
    upstream.on('data', this.onUpstreamData);
    client.on('drain', this.onClientDrain);

    client.once('close', () => this.finish('client_closed'));
    upstream.once('close', () => this.finish('upstream_closed'));
    client.on('error', (err) => this.finish('client_error', err));
    upstream.on('error', (err) => this.finish('upstream_error', err));
    upstream.once('end', () => {
      // The upstream finished sending: let the client read what is buffered, then close.
      client.end();
    });
    client.resume();
    upstream.resume();
  }

  /**
   * Ends the session from the proxy's side. `lastWords` (an ErrorResponse) is sent only if the client
   * stream is between two messages, so the client never sees a message cut in half.
   */
  terminate(lastWords: Buffer): void {
    if (this.finished) return;
    this.upstream.off('data', this.onUpstreamData);
    this.client.off('data', this.onClientData);
    if (this.scanner.atBoundary()) this.client.end(lastWords);
    else this.client.destroy();
    this.upstream.destroy();
    this.finish('terminated');
  }

  private readonly onClientData = (chunk: Buffer): void => {
    this.counters.toServer.inc(chunk.length);
    if (!this.upstream.write(chunk)) this.client.pause();
  };

  private readonly onUpstreamDrain = (): void => {
    this.client.resume();
  };

  private readonly onUpstreamData = (chunk: Buffer): void => {
    this.counters.toClient.inc(chunk.length);
    this.scanner.scan(chunk);
    if (!this.client.write(chunk)) this.upstream.pause();
  };

  private readonly onClientDrain = (): void => {
    this.upstream.resume();
  };

  private finish(reason: CloseReason, error?: Error): void {
    if (this.finished) return;
    this.finished = true;
    // Whichever side ended first, the other goes too: no half-open sessions.
    if (reason === 'client_closed') {
      // Let the client's Terminate reach the server, then close; never wait long for it.
      this.upstream.end();
      setTimeout(() => this.upstream.destroy(), 1000).unref();
    } else if (reason !== 'terminated') {
      this.upstream.destroy();
      if (reason === 'upstream_closed' || reason === 'upstream_error') this.client.end();
      else this.client.destroy();
    }
    this.resolveDone(error ? { reason, error } : { reason });
  }
}
