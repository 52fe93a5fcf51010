import type net from 'node:net';
import type tls from 'node:tls';
import type { SessionCompat } from '../compat/index.js';
import { systemClock } from '../core/clock.js';
import { formatDuration } from '../core/duration.js';
import type { Metrics } from '../core/metrics.js';
import { DSQL_MAX_CONNECTION_MS, isDsqlSessionParam } from '../dsql/limits.js';
import { ProxyError, toProxyError } from '../errors.js';
import type { Logger } from '../log.js';
import { BackendMessage } from '../protocol/constants.js';
import { decodeBackendFrame } from '../protocol/from-server.js';
import { errorFromProxyError } from '../protocol/to-client.js';
import { frontendTerminate } from '../protocol/to-server.js';
import { Relay, type RelayResult } from '../relay/relay.js';
import { ConflictRetry, type RetrySettings } from '../retry/controller.js';
import type { Connector, UpstreamConnection } from '../upstream/connector.js';
import type { ResetPlan } from '../upstream/reset.js';
import type { UpstreamTarget } from '../upstream/target.js';
import type { CancelKey } from './cancel-registry.js';
import type { CancelRoute } from './cancel-route.js';
import type { Lifecycle } from './lifecycle.js';
import { restoreSnapshot, takeSnapshot, trackedSnapshot } from './restore.js';
import { ServerSideState } from './server-side-state.js';
import { answersTo, statementEvents } from './statement-tracker.js';

export interface MovableRelayOptions {
  client: net.Socket;
  first: UpstreamConnection;
  role: string;
  /** The startup parameters sent upstream, for new connections. */
  params: ReadonlyMap<string, string>;
  connector: Connector;
  /** The connection's phase, owned by its ClientSession; the relay moves it while it relays. */
  lifecycle: Lifecycle;
  log: Logger;
  metrics: Metrics;
  maxUpstreamAgeMs: number;
  connectTimeoutMs: number;
  /**
   * Session pooling: given when the upstream connection may outlive the client. Called with the
   * current connection when the client leaves cleanly while idle, and what the session may have
   * changed on it (undefined: something it cannot name, and the connection must not be reused).
   */
  release?: (conn: UpstreamConnection, plan: ResetPlan | undefined) => void;
  /** The compatibility layer (--compat on): statements DSQL refuses, answered or carried out. */
  compat?: SessionCompat;
  /** Conflict retry (--conflict-retry). */
  retry?: RetrySettings;
}

/**
 * The relay of a logged-in client session whose upstream end can move: it relays bytes (see Relay),
 * and keeps the session alive across DSQL's 60-minute connection limit.
 *
 * - Past max-upstream-age, at the first idle moment (see Relay.isIdle), the client is moved to a fresh
 *   upstream connection, opened ahead of time: the old session's settings and prepared statements are
 *   read from it and re-created on the new one, then the two are swapped. The client sees nothing.
 * - If the upstream closes anyway (the cap, a network cut), an idle session whose state the proxy can
 *   rebuild is reconnected transparently; otherwise the client gets a FATAL ErrorResponse saying what
 *   happened, never a bare close.
 *
 * Its phases (see Lifecycle): relaying → move_due (the age limit passed) → moving (at the first idle
 * moment) → relaying; relaying → moving (reconnect after a loss while idle) → relaying; any of them →
 * closing when the session ends.
 */
export class MovableRelay {
  readonly relay: Relay;
  private readonly state = new ServerSideState();
  private connectedAt: number;
  private upstream: UpstreamConnection;
  private spare: { conn: UpstreamConnection; at: number } | undefined;
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly lifecycle: Lifecycle;
  /** Changed only here (swapTo); others get the read-only view `cancelRoute`. */
  private readonly route: {
    target: UpstreamTarget;
    upstreamKey: CancelKey | undefined;
    clientCancelled: () => void;
  };
  /** Conflict retry, when on. */
  private readonly pacer: ConflictRetry | undefined;

  constructor(private readonly opts: MovableRelayOptions) {
    this.upstream = opts.first;
    this.lifecycle = opts.lifecycle;
    this.route = {
      target: opts.first.target,
      upstreamKey: opts.first.login.backendKey,
      clientCancelled: () => this.pacer?.cancel(),
    };
    this.connectedAt = opts.first.connectedAt;
    const { state } = this;
    const { metrics, compat } = opts;
    const tracking = statementEvents(state.statements, () => this.relay.fromClient.requests);
    this.relay = new Relay(opts.client, opts.first.socket, {
      counters: { toServer: opts.metrics.bytesToServer, toClient: opts.metrics.bytesToClient },
      frontend: compat
        ? compatEvents(tracking, state, compat)
        : { ...tracking, onStatementText: (sql) => state.noteStatement(sql) },
      onIdle: () => {
        if (this.lifecycle.is('move_due')) void this.move();
      },
      onUpstreamLost: (err) => void this.upstreamLost(err),
      ...(opts.release
        ? { keepUpstream: () => !this.lifecycle.is('moving') && !this.upstream.socket.destroyed }
        : {}),
      ...(compat ? { gate: compat.engine, onClientRequest: () => compat.watch.noteRequest() } : {}),
    });
    const scanner = this.relay.fromServer;
    scanner.onParameterStatus = (body) => state.noteParameterStatus(body);
    answersTo(state.statements, scanner);
    if (opts.retry) {
      const relay = this.relay;
      this.pacer = new ConflictRetry(
        {
          writeUpstream: (bytes) => relay.writeUpstream(bytes),
          deliver: (bytes) => relay.deliver(bytes),
          status: () => scanner.status,
          pauseClient: () => relay.pauseClient(),
          resumeClient: () => relay.resumeClient(),
          statementTimeoutMs: () => compat?.session.params.statementTimeoutMs ?? 0,
        },
        opts.retry,
        systemClock,
        metrics,
        opts.log,
      );
      relay.setPacer(this.pacer);
    }
    if (compat) {
      scanner.onError = (body) => {
        countConflict(body, metrics);
        compat.watch.noteError();
      };
      const trackerReady = scanner.onReady;
      scanner.onReady = () => {
        trackerReady?.();
        compat.watch.onReady(scanner.status, scanner.readyCount < this.relay.fromClient.requests);
      };
      compat.engine.onUpstreamText = (sql) => state.noteStatement(sql);
      compat.attach(this.relay);
    } else {
      scanner.onError = (body) => countConflict(body, metrics);
    }
    state.setBaseline(opts.first.login.parameters);
  }

  /** DEALLOCATE ALL ran on DSQL (the compatibility layer carried it out): no statement is left there. */
  forgetStatements(): void {
    this.state.statements.forgetAll();
  }

  /** Where a CancelRequest for this session goes now: a read-only view that follows its moves. */
  get cancelRoute(): CancelRoute {
    return this.route;
  }

  /** Relays until the session ends. */
  async run(toUpstream: Buffer): Promise<RelayResult> {
    this.relay.start(toUpstream, this.upstream.login.leftover);
    this.schedule();
    const result = await this.relay.done;
    if (!this.lifecycle.ending) this.lifecycle.to('closing');
    this.opts.compat?.stop();
    for (const t of this.timers) clearTimeout(t);
    this.spare?.conn.socket.destroy();
    const kept =
      result.reason === 'client_closed' && this.relay.goodbyeWhileIdle && !this.upstream.socket.destroyed;
    if (kept && this.opts.release) this.opts.release(this.upstream, this.resetPlan());
    return result;
  }

  /**
   * What the pooled connection's reset must undo: the session's tracked state, with the DSQL parameters
   * the compatibility layer saw set and its protocol-level statements (SQL PREPARE). The layer's own
   * state (parameters it answers for, timeouts) belongs to this client session and ends with it.
   */
  private resetPlan(): ResetPlan | undefined {
    const compat = this.opts.compat?.session;
    if (compat === undefined) return this.state.resetPlan();
    const touched = [...compat.dsqlTouched].filter((name) => isDsqlSessionParam(name));
    return this.state.resetPlan(touched, compat.prepared.entries().length > 0);
  }

  terminate(err: ProxyError): void {
    if (!this.lifecycle.ending) this.lifecycle.to('closing');
    this.relay.terminate(errorFromProxyError(err));
  }

  private get ageMs(): number {
    return Date.now() - this.connectedAt;
  }

  /** Opens the spare connection shortly before the age limit, then marks the move as due. */
  private schedule(): void {
    for (const t of this.timers.splice(0)) clearTimeout(t);
    const max = this.opts.maxUpstreamAgeMs;
    const lead = Math.min(60_000, max / 5);
    // Referenced timers on purpose, cleared when the session ends: Node drops the list it keeps per
    // timeout duration when its last timer is cleared only for referenced timers. These durations
    // differ per session, so unref'd ones left an empty list behind for every session until the
    // duration ran out (up to an hour): thousands of lists per minute under connection churn.
    // One timer at a time, the spare's and then the move's: a session that ends before the lead
    // time (nearly all of them) makes and clears one timer instead of two.
    this.timers.push(
      setTimeout(
        () => {
          void this.prepareSpare();
          if (!this.lifecycle.ending)
            this.timers.push(setTimeout(() => this.markDue(), Math.max(0, max - this.ageMs)));
        },
        Math.max(0, max - lead - this.ageMs),
      ),
    );
  }

  /** The age limit passed: move at the first idle moment (while moving already, the move resets it). */
  private markDue(): void {
    if (this.lifecycle.is('relaying')) this.lifecycle.to('move_due');
    this.opts.log.debug({
      event: 'upstream_move_due',
      idle: this.relay.isIdle(),
      status: this.relay.fromServer.status,
      ready: this.relay.fromServer.readyCount,
      requests: this.relay.fromClient.requests,
      batch_open: this.relay.fromClient.batchOpen,
    });
    if (this.lifecycle.is('move_due') && this.relay.isIdle()) void this.move();
  }

  private async prepareSpare(): Promise<void> {
    if (this.lifecycle.ending || this.spare) return;
    try {
      const conn = await this.connect();
      if (this.lifecycle.ending) conn.socket.destroy();
      else this.spare = { conn, at: Date.now() };
    } catch (err) {
      // Not fatal: the move opens its connection itself when it happens.
      this.opts.log.warn({ event: 'spare_connection_failed', err: toProxyError(err).message });
    }
  }

  private connect(): Promise<UpstreamConnection> {
    return this.opts.connector.connect({
      role: this.opts.role,
      params: this.opts.params,
      log: this.opts.log,
    });
  }

  /** A spare that has aged too is not worth more than a fresh connection. */
  private takeSpare(): UpstreamConnection | undefined {
    const spare = this.spare;
    this.spare = undefined;
    if (spare && Date.now() - spare.at < this.opts.maxUpstreamAgeMs / 2 && !spare.conn.socket.destroyed) {
      return spare.conn;
    }
    spare?.conn.socket.destroy();
    return undefined;
  }

  /** The planned move: snapshot from the old connection, restore on the new one, swap. */
  private async move(): Promise<void> {
    if (!this.lifecycle.is('move_due')) return;
    this.lifecycle.to('moving');
    const { relay, opts } = this;
    relay.hold();
    const old = relay.detachUpstream();
    const oldAge = this.ageMs;
    let next: UpstreamConnection | undefined;
    let lost: Error | undefined;
    try {
      const snapshot = await takeSnapshot(old, this.state, opts.connectTimeoutMs);
      snapshot.parses.push(...(opts.compat?.parseBodies() ?? []));
      next = this.takeSpare() ?? (await this.connect());
      await restoreSnapshot(next.socket, snapshot, opts.connectTimeoutMs);
      if (this.lifecycle.ending) {
        // The client left while the move was under way: nothing to move to.
        next.socket.destroy();
        old.destroy();
        return;
      }
      this.swapTo(next);
      this.state.markKnown();
      retire(old);
      opts.metrics.upstreamMoves.inc({ reason: 'max_age' });
      opts.log.info({
        event: 'upstream_moved',
        reason: 'max_age',
        old_age_ms: oldAge,
        prepared_statements: snapshot.parses.length,
        settings: snapshot.settings.length,
        endpoint: next.target.hostname,
      });
    } catch (err) {
      next?.socket.destroy();
      if (err instanceof ProxyError && err.code === 'SESSION_NOT_MOVABLE') {
        // Retrying cannot help, and waiting for the cap would end the session anyway, perhaps in the
        // middle of a transaction: end it now, between two requests, with the reason.
        this.endNotMovable(err, oldAge);
        return;
      }
      // simpleQuery closes a connection it leaves in the middle of an answer, so one still open here
      // is between two messages: the client may have it back.
      if (old.destroyed) {
        lost = err as Error;
        return;
      }
      // The old connection still works: keep it and try again at a later idle moment.
      relay.replaceUpstream(old);
      const retryIn = Math.min(30_000, opts.maxUpstreamAgeMs / 10);
      this.timers.push(setTimeout(() => this.markDue(), retryIn));
      opts.log.warn({ event: 'upstream_move_failed', err: toProxyError(err).message, retry_in_ms: retryIn });
    } finally {
      // Back to relaying; after a loss, the move stays due while upstreamLost takes over.
      if (this.lifecycle.is('moving')) this.lifecycle.to(lost ? 'move_due' : 'relaying');
      if (!this.lifecycle.ending) relay.release();
      // The old connection died under the move: handled like any other loss, after the cleanup.
      if (lost) void this.upstreamLost(lost);
    }
  }

  /**
   * Ends a session the move found holding state it cannot re-create (see takeSnapshot): a FATAL
   * ErrorResponse saying what and why, sent while the session is idle, and a log line.
   */
  private endNotMovable(err: ProxyError, age: number): void {
    this.lifecycle.to('closing');
    this.opts.log.warn({
      event: 'upstream_move_refused',
      old_age_ms: age,
      message: err.message,
      detail: err.detail,
    });
    this.relay.terminate(errorFromProxyError(err));
  }

  private swapTo(next: UpstreamConnection): void {
    this.relay.replaceUpstream(next.socket);
    this.upstream = next;
    this.connectedAt = next.connectedAt;
    this.route.target = next.target;
    this.route.upstreamKey = next.login.backendKey;
    this.schedule();
  }

  /** The upstream closed under the session (not by the proxy). */
  private async upstreamLost(err: Error | undefined): Promise<void> {
    if (this.lifecycle.ending) return;
    const { relay, opts } = this;
    const age = this.ageMs;
    const idle = relay.isIdle() && !this.lifecycle.is('moving');
    if (idle && this.state.rebuildable) {
      this.lifecycle.to('moving');
      relay.hold();
      try {
        const next = this.takeSpare() ?? (await this.connect());
        const snapshot = trackedSnapshot(this.state);
        snapshot.parses.push(...(opts.compat?.parseBodies() ?? []));
        await restoreSnapshot(next.socket, snapshot, opts.connectTimeoutMs);
        if (this.lifecycle.ending) {
          next.socket.destroy();
          return;
        }
        this.swapTo(next);
        opts.metrics.upstreamMoves.inc({ reason: 'reconnect' });
        opts.metrics.upstreamLost.inc({ outcome: 'reconnected' });
        opts.log.info({ event: 'upstream_reconnected', old_age_ms: age, endpoint: next.target.hostname });
        return;
      } catch (reconnectErr) {
        this.endWithError(age, err, 'and reconnecting failed', reconnectErr);
        return;
      } finally {
        if (this.lifecycle.is('moving')) this.lifecycle.to('relaying');
        if (!this.lifecycle.ending) relay.release();
      }
    }
    const why = relay.fromServer.status === 'I' ? 'between transactions' : 'inside a transaction';
    this.endWithError(age, err, why);
  }

  private endWithError(age: number, cause: Error | undefined, context: string, reconnectErr?: unknown): void {
    if (!this.lifecycle.ending) this.lifecycle.to('closing');
    const atLimit = age >= DSQL_MAX_CONNECTION_MS - 60_000;
    const message = atLimit
      ? `DSQL closed the session at its 60-minute connection limit (${context})`
      : `the DSQL endpoint closed the connection after ${formatDuration(age)} (${context})`;
    const err = new ProxyError('UPSTREAM_CLOSED', {
      message,
      detail: reconnectErr ? toProxyError(reconnectErr).message : cause?.message,
      hint: atLimit
        ? 'dsql-proxy moves idle sessions to a fresh connection before the limit (--max-upstream-age); a session that stays inside one transaction or query that long cannot be moved. Keep transactions short and reconnect.'
        : 'Reconnect. A transaction in progress was rolled back.',
    });
    this.opts.metrics.upstreamLost.inc({ outcome: 'ended' });
    this.opts.log.warn({ event: 'upstream_lost', age_ms: age, context, message, err: cause?.message });
    this.relay.endAfterUpstreamLoss(errorFromProxyError(err), cause);
  }
}

/**
 * The client's statements as the relay's scanner reports them, for the session's state and the
 * compatibility layer: a relayed Parse of a name replaces the layer's own statement of that name.
 */
function compatEvents(
  tracking: ReturnType<typeof statementEvents>,
  state: ServerSideState,
  compat: SessionCompat,
) {
  return {
    ...tracking,
    onNamedParse: (name: string, body: Buffer) => {
      tracking.onNamedParse?.(name, body);
      compat.engine.forgetStatement(name);
    },
    onUnnamedParse: () => {
      tracking.onUnnamedParse?.();
      compat.engine.forgetStatement('');
    },
    onStatementText: (sql: string | null) => {
      state.noteStatement(sql);
      compat.watch.noteStatement(sql);
    },
  };
}

/** Ends an upstream connection the proxy no longer needs, politely. */
function retire(socket: tls.TLSSocket): void {
  // Errors from here on are swallowed by the listener dialUpstream() leaves on every socket.
  socket.end(frontendTerminate());
  setTimeout(() => socket.destroy(), 1000).unref();
}

/** DSQL reports optimistic-concurrency conflicts as 40001 with (OC000) data or (OC001) schema. */
function countConflict(body: Buffer, metrics: Metrics): void {
  let code: string | undefined;
  let message = '';
  try {
    const err = decodeBackendFrame({ type: BackendMessage.ErrorResponse, body }) as {
      code?: string;
      message?: string;
    };
    code = err.code;
    message = err.message ?? '';
  } catch {
    return;
  }
  if (code !== '40001') return;
  const dsqlCode = /\((OC00[01])\)/.exec(message)?.[1];
  metrics.serializationConflicts.inc({ code: dsqlCode ?? '40001' });
}
