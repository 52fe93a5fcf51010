import type net from 'node:net';
import type tls from 'node:tls';
import { BackendScanner } from './backend-scanner.js';
import {
  EARLIER,
  type FrontendEvents,
  FrontendScanner,
  NOWHERE,
  type RequestGate,
} from './frontend-scanner.js';
import { filterStartState, ServerFilter, type ServerFilterOptions } from './server-filter.js';

export type CloseReason =
  | 'client_closed'
  | 'upstream_closed'
  | 'client_error'
  | 'upstream_error'
  | 'terminated';

export interface RelayResult {
  reason: CloseReason;
  error?: Error;
}

/** Byte counters fed per chunk (Prometheus children bound to their labels). */
export interface RelayCounters {
  toServer: { inc(n: number): void };
  toClient: { inc(n: number): void };
}

/**
 * Paces a session's requests (src/retry): client bytes go to it instead of DSQL, server bytes instead
 * of the client; it calls writeUpstream and deliver when they may move on.
 */
export interface RequestPacer {
  fromClient(chunk: Buffer): void;
  fromServer(chunk: Buffer): void;
  /** The compatibility layer answered the client itself. */
  foreignAnswer(): void;
  /** Nothing held or in flight. */
  readonly idle: boolean;
}

export interface RelayHooks {
  counters?: RelayCounters;
  frontend?: FrontendEvents;
  /** Called after each server chunk that leaves the session idle (see isIdle). */
  onIdle?: () => void;
  /**
   * Called when the upstream connection goes away while the client is still there. The session
   * decides: reconnect (replaceUpstream) or end with an error (terminate). Without it the client
   * is closed.
   */
  onUpstreamLost?: (error: Error | undefined) => void;
  /**
   * Session pooling: the client's Terminate is not passed on, and when the client then closes, the
   * upstream connection is left open for the session to reuse if this returns true.
   */
  keepUpstream?: () => boolean;
  /**
   * The compatibility layer (src/compat): the scanner asks `gate` about each request's first message,
   * and a request it wants is handed to `take` with every byte after it; the relay then stops relaying
   * the client's bytes (they go to `take`'s owner through `onClientBytes`) until giveBack().
   */
  /** Called after client bytes were relayed while a request awaits its answer (timeouts). */
  onClientRequest?: () => void;
  gate?: RequestGate & {
    take(bytes: Buffer): void;
    onClientBytes(chunk: Buffer): void;
  };
}

/**
 * The relay's own state, a part of the connection's 'relaying' phases (see session/lifecycle.ts):
 * - flowing: bytes flow both ways;
 * - held: the client is not read (the session is moving to another upstream connection);
 * - goodbye: the client sent Terminate; an upstream close from now on is the session's normal end;
 * - finished: done resolved; nothing more happens.
 */
export type RelayState = 'flowing' | 'held' | 'goodbye' | 'finished';

const NO_COUNTERS: RelayCounters = { toServer: { inc() {} }, toClient: { inc() {} } };
const NO_HOOKS: RelayHooks = {};
/** Takes over from the relay's error listener once it has finished: a late socket error is not news. */
const ignoreError = (): void => {};

/**
 * The steady state of a session: bytes flow both ways untouched, with backpressure each way.
 * Header-only scanners on both streams know where messages begin and end, the transaction status,
 * and how many requests await their ReadyForQuery, so the session can tell when it is idle, inject
 * its own ErrorResponse between messages, or move to another upstream connection.
 */
export class Relay {
  /** Reads the stream from DSQL to the client. */
  readonly fromServer = new BackendScanner();
  /** Reads the stream from the client to DSQL. */
  readonly fromClient: FrontendScanner;
  private upstream: tls.TLSSocket;
  private current: RelayState = 'flowing';
  /**
   * How the goodbye came: the client sent Terminate while the session was idle (set only when
   * keepUpstream is given). Still true once finished, for the session to keep the upstream.
   */
  goodbyeWhileIdle = false;
  /** Set while the client socket is corked until the next check phase (see onUpstreamData). */
  private uncorkTimer: NodeJS.Immediate | undefined;
  private readonly counters: RelayCounters;
  /** Client bytes held back while the gate cannot yet decide about the message they begin. */
  private withheld: Buffer[] | undefined;
  /** True while the compatibility layer handles a request: client bytes go to it, not upstream. */
  private gateOwned = false;
  /** Set while the compatibility layer filters what the server sends (see server-filter.ts). */
  private serverFilter: ServerFilter | undefined;
  /** The conflict-retry layer, when it is on (setPacer). */
  private pacer: RequestPacer | undefined;
  /** True while the server's chunk is scanned (see onUpstreamData). */
  private scanning = false;
  /** A filter change asked for during the scan, applied after the chunk. */
  private filterChange: { options: ServerFilterOptions | undefined } | undefined;
  /** Waiting for every request relayed so far to be answered (see whenAnswered). */
  private answeredWaiter: (() => void) | undefined;
  private resolveDone!: (r: RelayResult) => void;
  readonly done: Promise<RelayResult> = new Promise((resolve) => {
    this.resolveDone = resolve;
  });

  constructor(
    private readonly client: net.Socket,
    upstream: tls.TLSSocket,
    private hooks: RelayHooks = {},
  ) {
    this.upstream = upstream;
    this.counters = hooks.counters ?? NO_COUNTERS;
    this.fromClient = new FrontendScanner(hooks.frontend);
    this.fromClient.gate = hooks.gate;
  }

  /** Starts relaying; `toUpstream`/`toClient` are bytes already read during the handshakes. */
  start(toUpstream: Buffer, toClient: Buffer): void {
    const { client } = this;
    if (toClient.length > 0) {
      this.fromServer.scan(toClient);
      client.write(toClient);
    }
    if (toUpstream.length > 0) {
      this.fromClient.scan(toUpstream);
      this.upstream.write(toUpstream);
    }
    client.on('data', this.onClientData);
    client.on('drain', this.onClientDrain);
    client.once('close', () => this.finish('client_closed'));
    client.on('error', this.onClientError);
    this.attach(this.upstream);
    client.resume();
  }

  /**
   * True when nothing is in flight either way: the server is idle outside a transaction, every
   * request has had its ReadyForQuery, no extended-protocol batch is open, and both streams are
   * between messages.
   */
  isIdle(): boolean {
    return (
      !this.gateOwned &&
      (this.pacer?.idle ?? true) &&
      this.fromServer.status === 'I' &&
      this.fromServer.readyCount === this.fromClient.requests &&
      !this.fromClient.batchOpen &&
      this.fromServer.atBoundary() &&
      this.fromClient.atBoundary()
    );
  }

  get state(): RelayState {
    return this.current;
  }

  /** Stops reading the client; what it sends meanwhile waits in the socket. */
  hold(): void {
    if (this.current === 'flowing') this.current = 'held';
    this.client.pause();
  }

  release(): void {
    if (this.current === 'finished') return;
    if (this.current === 'held') this.current = 'flowing';
    this.client.resume();
  }

  /** Takes the upstream out of the relay (its events are no longer watched) and returns it. */
  detachUpstream(): tls.TLSSocket {
    const up = this.upstream;
    up.off('data', this.onUpstreamData);
    up.off('drain', this.onUpstreamDrain);
    up.off('close', this.onUpstreamClose);
    up.off('error', this.onUpstreamError);
    up.pause();
    return up;
  }

  /** Puts a (new) upstream connection in place; the client should be held while this happens. */
  replaceUpstream(next: tls.TLSSocket): void {
    if (this.upstream !== next) this.detachUpstream();
    this.upstream = next;
    this.attach(next);
  }

  /**
   * Ends the session from the proxy's side. `lastWords` (an ErrorResponse) is sent only if the client
   * stream is between two messages, so the client never sees a message cut in half.
   */
  terminate(lastWords: Buffer): void {
    if (this.current === 'finished') return;
    this.detachUpstream();
    this.client.off('data', this.onClientData);
    if (this.fromServer.atBoundary()) this.client.end(lastWords);
    else this.client.destroy();
    this.upstream.destroy();
    this.finish('terminated');
  }

  private attach(up: tls.TLSSocket): void {
    up.on('data', this.onUpstreamData);
    up.on('drain', this.onUpstreamDrain);
    up.once('close', this.onUpstreamClose);
    up.on('error', this.onUpstreamError);
    up.resume();
  }

  private readonly onClientData = (chunk: Buffer): void => {
    this.counters.toServer.inc(chunk.length);
    this.receive(chunk);
  };

  /** Client bytes, counted already: to the compatibility layer while it has the session, else relayed. */
  private receive(chunk: Buffer): void {
    if (this.gateOwned) {
      this.hooks.gate!.onClientBytes(chunk);
      return;
    }
    const scanner = this.fromClient;
    scanner.scan(chunk);
    if (scanner.interceptAt === NOWHERE && scanner.heldFrom === NOWHERE && this.withheld === undefined) {
      this.forward(chunk, scanner.terminateAt);
      return;
    }
    this.forwardAroundGate(chunk);
  }

  /**
   * The slow path of receive(): some bytes wait for the gate's decision (withheld), or the gate takes
   * a request. Bytes before that point are relayed; the rest is withheld or handed to the gate.
   */
  private forwardAroundGate(chunk: Buffer): void {
    const scanner = this.fromClient;
    const before = this.withheld ?? [];
    const heldLength = before.reduce((n, b) => n + b.length, 0);
    this.withheld = undefined;
    const cut = scanner.interceptAt;
    if (cut !== NOWHERE) {
      const pass = cut === EARLIER ? [] : [...before, chunk.subarray(0, cut)];
      const take = cut === EARLIER ? [...before, chunk] : [chunk.subarray(cut)];
      const out = Buffer.concat(pass);
      if (out.length > 0) this.sendUpstream(out);
      this.gateOwned = true;
      this.hooks.gate!.take(Buffer.concat(take));
      return;
    }
    const held = scanner.heldFrom;
    if (held === EARLIER) {
      this.withheld = [...before, chunk];
      return;
    }
    const end = held === NOWHERE ? chunk.length : held;
    if (held !== NOWHERE) this.withheld = [chunk.subarray(held)];
    const out =
      heldLength === 0 ? chunk.subarray(0, end) : Buffer.concat([...before, chunk.subarray(0, end)]);
    const terminateAt = scanner.terminateAt < 0 ? -1 : scanner.terminateAt + heldLength;
    if (out.length > 0 || terminateAt >= 0) this.forward(out, terminateAt);
  }

  /** Relays client bytes upstream; `terminateAt` is where a Terminate message starts in them, or -1. */
  private forward(chunk: Buffer, terminateAt: number): void {
    if (terminateAt < 0) {
      if (this.pacer) this.pacer.fromClient(chunk);
      else if (!this.upstream.write(chunk)) this.client.pause();
      if (this.hooks.onClientRequest && this.fromClient.requests !== this.fromServer.readyCount) {
        this.hooks.onClientRequest();
      }
      return;
    }
    this.current = 'goodbye';
    let out = chunk;
    if (this.hooks.keepUpstream) {
      // Session pooling: the server connection outlives this client, so its Terminate stays here.
      out = chunk.subarray(0, terminateAt);
      this.goodbyeWhileIdle = this.isIdle() && !this.fromClient.terminateSplit;
    }
    if (out.length > 0) this.sendUpstream(out);
    // After Terminate nothing more goes to the client, so close it now, as PostgreSQL does, rather
    // than wait for its FIN and answer with our own (one shutdown() less per connection).
    this.client.destroy();
  }

  /** Client bytes for DSQL, through the pacer when there is one. */
  private sendUpstream(bytes: Buffer): void {
    if (this.pacer) this.pacer.fromClient(bytes);
    else this.upstream.write(bytes);
  }

  /** The conflict-retry layer (src/retry): it sees both streams and decides when bytes move on. */
  setPacer(pacer: RequestPacer): void {
    this.pacer = pacer;
  }

  /** Bytes the pacer sends DSQL (the client's, again or for the first time, or its own). */
  writeUpstream(bytes: Buffer): void {
    if (this.current !== 'finished') this.upstream.write(bytes);
  }

  // --- The compatibility layer's side (src/compat/engine.ts) ---

  /**
   * The layer is done with the request it took: `rest` (client bytes it has not consumed) is relayed
   * as if just received. `skipFirst`: the first message in `rest` is relayed as it is, not offered to
   * the gate again (the layer read it and found nothing to do).
   */
  giveBack(rest: Buffer, skipFirst: boolean): void {
    if (this.current === 'finished') return;
    this.gateOwned = false;
    this.fromClient.skipGateOnce = skipFirst;
    if (rest.length > 0) this.receive(rest);
    else this.fromClient.skipGateOnce = false;
    if (this.hooks.onIdle && this.isIdle()) this.hooks.onIdle();
  }

  /** Bytes the layer answers the client with; the backend scanner counts them as the server's. */
  toClient(bytes: Buffer): void {
    if (this.current === 'finished') return;
    this.pacer?.foreignAnswer();
    this.fromServer.scan(bytes);
    this.client.write(bytes);
  }

  /**
   * Resolves once every request relayed so far has its ReadyForQuery and the server's stream is between
   * messages: the layer may then use the upstream connection for a request of its own.
   */
  whenAnswered(): Promise<void> {
    if (this.answered()) return Promise.resolve();
    return new Promise((resolve) => {
      this.answeredWaiter = resolve;
    });
  }

  private answered(): boolean {
    return this.fromServer.readyCount === this.fromClient.requests && this.fromServer.atBoundary();
  }

  /** The upstream socket, with the relay no longer reading it (give it back with returnUpstream). */
  borrowUpstream(): tls.TLSSocket {
    return this.detachUpstream();
  }

  returnUpstream(): void {
    if (this.current === 'finished') return;
    this.attach(this.upstream);
  }

  /** Stops or resumes reading the client (the layer's buffer is full, or has room again). */
  pauseClient(): void {
    this.client.pause();
  }

  resumeClient(): void {
    if (this.current === 'flowing' || this.current === 'goodbye') this.client.resume();
  }

  /** Filters the server's stream from now on (options), or stops filtering (undefined). */
  filterServer(options: ServerFilterOptions | undefined): void {
    if (this.scanning) {
      this.filterChange = { options };
      return;
    }
    if (options === undefined) {
      if (this.serverFilter?.empty !== false) this.serverFilter = undefined;
      else this.serverFilter.options = { minLevel: 'debug5', rewriteCancel: false };
      return;
    }
    if (this.serverFilter) {
      this.serverFilter.options = options;
      return;
    }
    const start = filterStartState(this.fromServer);
    this.serverFilter = new ServerFilter(options, start.rawRemaining, start.partialHeader);
  }

  private readonly onUpstreamDrain = (): void => {
    if (this.current !== 'held') this.client.resume();
  };

  private readonly onUpstreamData = (data: Buffer): void => {
    this.counters.toClient.inc(data.length);
    if (this.pacer) this.pacer.fromServer(data);
    else this.deliver(data);
  };

  /**
   * Server bytes for the client: scanned (counts, status, hooks), filtered when a filter is on, and
   * written. With a pacer (conflict retry) only what it lets through arrives here.
   */
  deliver(data: Buffer): void {
    if (this.current === 'finished') return;
    const filter = this.serverFilter;
    if (filter === undefined) {
      this.fromServer.scan(data);
    } else {
      // The scan's hooks may change the filter (a ReadyForQuery ends a cancel's rewrite): the chunk
      // is filtered as it was when it arrived, and the change applies from the next chunk.
      this.scanning = true;
      this.fromServer.scan(data);
      this.scanning = false;
    }
    const chunk = filter ? filter.process(data) : data;
    if (this.filterChange) {
      const change = this.filterChange;
      this.filterChange = undefined;
      this.filterServer(change.options);
    }
    if (this.answeredWaiter && this.answered()) {
      const waiter = this.answeredWaiter;
      this.answeredWaiter = undefined;
      queueMicrotask(waiter);
    }
    if (this.fromServer.atBoundary() && this.fromServer.readyCount === this.fromClient.requests) {
      // The answer is complete (every request has had its ReadyForQuery): nothing more is coming that
      // could share the write, so it leaves now, with anything corked before it. Waiting for the check
      // phase would cost a second turn of the event loop (another epoll_pwait) per answer.
      if (!this.client.write(chunk)) this.upstream.pause();
      this.uncorkClient();
    } else {
      // One socket read from the server can hold many TLS records, and Node emits one 'data' per
      // record, each in a callback of its own. Corking until the loop's check phase (setImmediate:
      // after this round of I/O callbacks, before it waits again) turns them into one writev to the
      // client instead of a write each (COPY TO and large results: PostgreSQL sends 8 KB at a time).
      if (!this.uncorkTimer) {
        this.client.cork();
        this.uncorkTimer = setImmediate(this.uncorkClient);
      }
      if (!this.client.write(chunk)) this.upstream.pause();
    }
    if (this.hooks.onIdle && this.isIdle()) this.hooks.onIdle();
  }

  /** Sends what the client socket holds corked, if anything. */
  private readonly uncorkClient = (): void => {
    if (!this.uncorkTimer) return;
    clearImmediate(this.uncorkTimer);
    this.uncorkTimer = undefined;
    this.client.uncork();
  };

  private readonly onClientDrain = (): void => {
    this.upstream.resume();
  };

  private readonly onClientError = (err: Error): void => {
    this.finish('client_error', err);
  };

  private lostError: Error | undefined;

  private readonly onUpstreamError = (err: Error): void => {
    this.lostError ??= err;
  };

  private readonly onUpstreamClose = (): void => {
    if (this.current === 'finished') return;
    const err = this.lostError;
    this.lostError = undefined;
    this.detachUpstream();
    // After the client's Terminate the server closing is expected: end quietly, never reconnect.
    if (this.current === 'goodbye') this.finish('client_closed');
    else if (this.hooks.onUpstreamLost) this.hooks.onUpstreamLost(err);
    else this.finish(err ? 'upstream_error' : 'upstream_closed', err);
  };

  /** Ends the relay after the upstream was lost and the session decided not to reconnect. */
  endAfterUpstreamLoss(lastWords: Buffer | undefined, error?: Error): void {
    if (this.current === 'finished') return;
    this.client.off('data', this.onClientData);
    if (lastWords && this.fromServer.atBoundary()) this.client.end(lastWords);
    else this.client.end();
    this.finish(error ? 'upstream_error' : 'upstream_closed', error);
  }

  private finish(reason: CloseReason, error?: Error): void {
    if (this.current === 'finished') return;
    this.current = 'finished';
    if (reason === 'client_closed' && this.goodbyeWhileIdle && this.hooks.keepUpstream?.()) {
      this.detachUpstream();
    } else if (reason === 'client_closed') {
      // Let the client's Terminate reach the server, then close; never wait long for it. The timer
      // holds only the socket, and goes when the socket closes: a closure over the relay would keep
      // the whole session reachable for that second.
      const up = this.upstream;
      up.end();
      const timer = setTimeout(() => up.destroy(), 1000).unref();
      up.once('close', () => clearTimeout(timer));
    } else if (reason !== 'terminated') {
      this.upstream.destroy();
      if (reason === 'upstream_closed' || reason === 'upstream_error') this.client.end();
      else this.client.destroy();
    }
    this.resolveDone(error ? { reason, error } : { reason });
    this.letGo();
  }

  /**
   * After the end, the relay lets go of the session: its listeners leave the client socket and its
   * hooks and scanner callbacks are dropped. Something that V8's young-generation GC treats as live
   * keeps finished client sockets (and relays) until the next full GC; without this, each finished
   * session's whole object graph survived the scavenges and was promoted (about 1.5 MB per
   * scavenge under pooled connection churn, see docs/benchmarks.md).
   */
  private letGo(): void {
    const { client } = this;
    client.off('data', this.onClientData);
    client.off('drain', this.onClientDrain);
    if (!client.closed) client.on('error', ignoreError);
    client.off('error', this.onClientError);
    this.hooks = NO_HOOKS;
    this.fromClient.forgetEvents();
    this.fromServer.onParameterStatus = undefined;
    this.fromServer.onError = undefined;
    this.fromServer.onParseComplete = undefined;
    this.fromServer.onCloseComplete = undefined;
    this.fromServer.onReady = undefined;
  }
}
