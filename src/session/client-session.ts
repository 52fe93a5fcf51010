import type net from 'node:net';
import type tls from 'node:tls';
import { authContext } from '../auth/auth-context.js';
import type { AuthDelay } from '../auth/auth-delay.js';
import { createAuthenticator } from '../auth/authenticator.js';
import type { AuthMethod, AuthUsers } from '../auth/types.js';
import { type CompatSettings, SessionCompat, takesStartupParam } from '../compat/index.js';
import { isLoopbackHost } from '../config/host-port.js';
import { systemClock } from '../core/clock.js';
import type { Metrics } from '../core/metrics.js';
import type { StartupParamsMode } from '../dsql/limits.js';
import { ProxyError, toProxyError } from '../errors.js';
import { type ClientHello, readClientHello } from '../handshake/client-hello.js';
import type { ClientTls } from '../handshake/client-tls.js';
import { FrameStream } from '../io/frame-stream.js';
import type { Logger } from '../log.js';
import { FrontendMessage, MAX_AUTH_MESSAGE_LENGTH } from '../protocol/constants.js';
import { loginAnswer, noticeResponse } from '../protocol/to-client.js';
import type { RetrySettings } from '../retry/controller.js';
import { forwardCancel } from '../upstream/cancel.js';
import type { Connector, UpstreamConnection } from '../upstream/connector.js';
import type { PoolingConnector } from '../upstream/pooled-connector.js';
import type { ResetPlan } from '../upstream/reset.js';
import type { CancelKey, CancelRegistry } from './cancel-registry.js';
import type { CancelRoute } from './cancel-route.js';
import { ClientConnectRequest } from './connect-request.js';
import { Lifecycle, type Phase, STRICT_PHASES } from './lifecycle.js';
import { MovableRelay } from './movable-relay.js';
import { refuse, tooManyConnections } from './refusal.js';
import { droppedNotice, filterStartupParams } from './startup-params.js';

export type { CancelRoute };

/**
 * Where a client's database name leads: the cluster, how its users map to DSQL roles, and how to
 * connect to it.
 */
export interface ClusterRoute {
  name: string;
  resolveRole: (user: string) => string;
  connector: Connector;
}

export interface SessionDeps {
  authMethod: AuthMethod;
  users: () => AuthUsers;
  /** The cluster for the client's database name, or the error to answer (3D000 for an unknown one). */
  route: (database: string) => ClusterRoute | ProxyError;
  cancels: CancelRegistry<CancelRoute>;
  logger: Logger;
  loginTimeoutMs: number;
  connectTimeoutMs: number;
  metrics: Metrics;
  /** Admission control (--max-connections): false refuses the client with 53300. */
  admit: (session: ClientSession) => boolean;
  /** The configured limit, for the refusal message. */
  maxConnections: number;
  /** Local TLS towards clients (--client-tls); off when absent. */
  clientTls?: ClientTls;
  /** Delays the answer to failed logins (auth_delay); absent: answer at once. */
  authDelay?: AuthDelay;
  /** Past this age an upstream connection is replaced at the session's next idle moment (--max-upstream-age). */
  maxUpstreamAgeMs: number;
  /** What to do with startup parameters DSQL does not accept (--startup-params). */
  startupParamsMode: StartupParamsMode;
  /** The compatibility layer's settings (--compat on), or undefined with --compat off. */
  compat?: CompatSettings;
  /** Conflict retry (--conflict-retry), or undefined when off. */
  conflictRetry?: RetrySettings;
}

/** The client went away during the handshake: nothing to answer, nobody to tell. */
class ClientGone extends Error {}

let nextId = 1;

type Startup = Extract<ClientHello, { kind: 'startup' }>;

/**
 * One client connection, from the first byte to close:
 * handshake → local auth → token → upstream dial → upstream login → relay → close.
 * Its phase (see Lifecycle) is owned here; MovableRelay moves it while the session relays. Every
 * failure before the relay is answered by refuse() (see refusal.ts).
 */
export class ClientSession {
  readonly id = nextId++;
  private readonly log: Logger;
  private readonly lifecycle: Lifecycle;
  private live: MovableRelay | undefined;
  private upstream: tls.TLSSocket | undefined;
  private cancelKey: CancelKey | undefined;
  /** While a failed login's answer is delayed (AuthDelay): sends it at once (shutdown). */
  private answerNow: (() => void) | undefined;
  private readonly startedAt = Date.now();
  /** The client's address as seen on the raw socket (TLS sockets over a wrapper do not know it). */
  private readonly clientAddress: string;
  private user: string | undefined;
  private role: string | undefined;
  /** The compatibility layer of this session (--compat on), made once the startup parameters are read. */
  private compat: SessionCompat | undefined;

  constructor(
    /** The client connection; replaced by its TLS socket once the client negotiates TLS. */
    private socket: net.Socket,
    private readonly deps: SessionDeps,
  ) {
    this.log = deps.logger.child({ conn: this.id });
    this.clientAddress = socket.remoteAddress ?? 'unix';
    this.lifecycle = new Lifecycle({
      log: this.log,
      strict: STRICT_PHASES,
      onImpossible: (err) => this.terminate(err),
    });
  }

  get phase(): Phase {
    return this.lifecycle.phase;
  }

  async run(): Promise<void> {
    const frames = this.accept();
    const loginTimer = setTimeout(
      () => void this.fail(new ProxyError('LOGIN_TIMEOUT')),
      this.deps.loginTimeoutMs,
    );
    try {
      const hello = await readClientHello(this.socket, frames, {
        tls: this.deps.clientTls,
        closedError: () => new ClientGone(),
      });
      if (hello.kind === 'cancel') {
        clearTimeout(loginTimer);
        frames.detach();
        this.socket.destroy();
        await this.cancel(hello.processId, hello.secretKey);
        return;
      }
      this.admit(hello);
      await this.authenticate(hello.frames, hello.user);
      clearTimeout(loginTimer);
      const { cluster, forward } = this.prepareUpstream(hello);
      const { conn, request } = await this.connectUpstream(cluster, forward);
      const live = this.goLive(conn, cluster.connector, request, forward);
      await this.relay(live, hello.frames);
    } catch (err) {
      clearTimeout(loginTimer);
      await this.refused(err);
    } finally {
      if (!this.lifecycle.is('closed')) this.lifecycle.to('closed');
      if (this.cancelKey) this.deps.cancels.unregister(this.cancelKey.processId);
      // The ended session's relay state is not needed any more; holding it let it outlive young GCs
      // (see Relay.letGo).
      this.live = undefined;
    }
  }

  /** Ends the session from the proxy's side with `err` (e.g. 57P01 at shutdown). */
  terminate(err: ProxyError): void {
    if (this.answerNow) this.answerNow();
    if (this.lifecycle.ending) return;
    if (this.live) this.live.terminate(err);
    else void this.fail(err);
  }

  /** Socket options and the first log line; returns the reader of the handshake. */
  private accept(): FrameStream {
    const { socket } = this;
    socket.setNoDelay(true);
    // Keepalive finds peers that vanished across a network; a loopback peer cannot vanish without its
    // kernel closing the socket, so local clients are spared the four setsockopt calls.
    if (!isLoopbackHost(this.clientAddress)) socket.setKeepAlive(true, 60_000);
    this.log.info({ event: 'accepted', client: `${this.clientAddress}:${socket.remotePort ?? ''}` });
    return new FrameStream(socket, () => new ClientGone());
  }

  /** Admission control, checked after the startup packet so cancel requests still get through at the limit. */
  private admit(hello: Startup): void {
    this.user = hello.user;
    this.socket = hello.socket;
    if (!this.deps.admit(this)) throw tooManyConnections(this.deps.maxConnections);
    this.lifecycle.to('authenticating');
  }

  /** The cluster and role for the client, and the startup parameters to send upstream. */
  private prepareUpstream(hello: Startup): { cluster: ClusterRoute; forward: ReadonlyMap<string, string> } {
    const { deps, socket } = this;
    this.lifecycle.to('connecting');
    const cluster = deps.route(hello.database);
    if (cluster instanceof ProxyError) throw cluster;
    this.role = cluster.resolveRole(hello.user);
    this.log.info({
      event: 'authenticated',
      user: hello.user,
      role: this.role,
      database: hello.database,
      cluster: cluster.name,
      method: deps.authMethod,
      tls: hello.tls ? (hello.tls.direct ? `${hello.tls.protocol} direct` : hello.tls.protocol) : false,
    });
    // Startup parameters DSQL does not accept (--startup-params). AuthenticationOk is already sent,
    // so a NOTICE is legal here; a reject error is answered as an ErrorResponse.
    const taken = new Map<string, string>();
    const keep = deps.compat
      ? (name: string, value: string) => takesStartupParam(name) && taken.set(name, value) !== undefined
      : undefined;
    const startup = filterStartupParams(hello.params, deps.startupParamsMode, keep);
    if (startup.error) throw startup.error;
    if (deps.compat) this.compat = this.makeCompat(deps.compat, taken);
    if (startup.dropped.length > 0) {
      this.log.info({ event: 'startup_params_dropped', dropped: startup.dropped });
      socket.write(
        noticeResponse({ severity: 'NOTICE', sqlstate: '00000', message: droppedNotice(startup.dropped) }),
      );
    }
    return { cluster, forward: startup.forward };
  }

  /** The session's compatibility layer; a startup parameter it cannot accept refuses the login (22023 as PostgreSQL). */
  private makeCompat(settings: CompatSettings, startup: ReadonlyMap<string, string>): SessionCompat {
    const compat = new SessionCompat({
      startup,
      settings,
      metrics: this.deps.metrics,
      log: this.log,
      clock: systemClock,
      cancel: () => void this.cancelForTimeout(),
      onDeallocateAll: () => this.live?.forgetStatements(),
    });
    const bad = compat.startupError;
    if (bad) {
      throw new ProxyError('STARTUP_PARAM_INVALID', {
        sqlstate: bad.sqlstate,
        message: bad.message,
        hint: bad.hint,
      });
    }
    return compat;
  }

  /** statement_timeout passed (SessionWatch): DSQL is asked to cancel the statement. */
  private async cancelForTimeout(): Promise<void> {
    const live = this.live;
    if (!live) return;
    try {
      await forwardCancel(() => live.cancelRoute, this.deps.connectTimeoutMs);
    } catch (err) {
      this.log.warn({ event: 'timeout_cancel_failed', err: toProxyError(err).message });
    }
  }

  /** The upstream connection (token, dial, login), given up if the client leaves while it waits. */
  private async connectUpstream(
    cluster: ClusterRoute,
    forward: ReadonlyMap<string, string>,
  ): Promise<{ conn: UpstreamConnection; request: ClientConnectRequest }> {
    const { socket } = this;
    const role = this.role ?? '';
    // A client that leaves while waiting (queued for a connection slot, or between retries) gives
    // its place up instead of spending one of DSQL's new-connection slots.
    const request = new ClientConnectRequest(role, forward, this.log, (message) => {
      // A wait worth a notice is long: let AuthenticationOk and the notice out now.
      socket.uncork();
      socket.write(noticeResponse({ severity: 'NOTICE', sqlstate: '00000', message }));
    });
    const onGone = (): void => request.clientLeft(new ClientGone());
    socket.once('close', onGone);
    const conn = await cluster.connector.connect(request).finally(() => socket.off('close', onGone));
    this.upstream = conn.socket;
    if (this.lifecycle.ending) throw new ClientGone();
    this.log.info({
      event: 'upstream_connected',
      user: this.user,
      role,
      action: conn.action,
      endpoint: conn.target.hostname,
      connect_ms: Math.round(conn.connectMs),
      upstream_cancel_key: conn.login.backendKey !== undefined,
    });
    return { conn, request };
  }

  /** The session's movable relay, its cancel key, and the rest of the client's login answer. */
  private goLive(
    conn: UpstreamConnection,
    connector: Connector,
    request: ClientConnectRequest,
    forward: ReadonlyMap<string, string>,
  ): MovableRelay {
    const { deps, socket } = this;
    const live = new MovableRelay({
      client: socket,
      first: conn,
      role: this.role ?? '',
      params: forward,
      connector,
      lifecycle: this.lifecycle,
      log: this.log,
      metrics: deps.metrics,
      maxUpstreamAgeMs: deps.maxUpstreamAgeMs,
      connectTimeoutMs: deps.connectTimeoutMs,
      ...(this.compat ? { compat: this.compat } : {}),
      ...(deps.conflictRetry ? { retry: deps.conflictRetry } : {}),
      ...(isPooling(connector)
        ? {
            release: (c: UpstreamConnection, plan: ResetPlan | undefined) =>
              connector.release(request, c, plan),
          }
        : {}),
    });
    this.live = live;
    this.cancelKey = deps.cancels.register(live.cancelRoute);
    const up = conn.login;
    const status = up.transactionStatus === 'T' || up.transactionStatus === 'E' ? up.transactionStatus : 'I';
    const { processId, secretKey } = this.cancelKey;
    const serverMessages =
      up.noticeMessages.length > 0 ? [...up.parameterMessages, ...up.noticeMessages] : up.parameterMessages;
    socket.write(loginAnswer(serverMessages, processId, secretKey, status));
    socket.uncork();
    deps.metrics.connectionsTotal.inc({ outcome: 'established' });
    return live;
  }

  private async relay(live: MovableRelay, frames: FrameStream): Promise<void> {
    const relayStarted = Date.now();
    this.lifecycle.to('relaying');
    const result = await live.run(frames.detach());
    this.deps.metrics.sessionSeconds.observe((Date.now() - relayStarted) / 1000);
    this.closeLog(result.reason, result.error);
  }

  /** A failure before the relay: answered, unless already answered or the client is gone. */
  private async refused(err: unknown): Promise<void> {
    this.upstream?.destroy();
    if (this.lifecycle.ending) {
      // Already answered (login timeout, shutdown): nothing more to say.
    } else if (err instanceof ClientGone) {
      this.deps.metrics.connectionsTotal.inc({ outcome: 'client_left' });
      this.log.info({ event: 'closed', reason: 'client_left_during_login', user: this.user });
      this.socket.destroy();
    } else {
      // A delayed answer keeps the session, and so its --max-connections slot, until it is sent.
      const { user } = this;
      await this.fail(toProxyError(err), user, user !== undefined && !this.deps.users().has(user));
    }
  }

  private async authenticate(frames: FrameStream, user: string): Promise<void> {
    const { deps, socket } = this;
    const auth = createAuthenticator({ method: deps.authMethod, user, context: authContext(deps.users()) });
    let step = auth.begin();
    for (;;) {
      // AuthenticationOk waits in the socket (corked) for the upstream login, and leaves in one write
      // with the ParameterStatus/BackendKeyData/ReadyForQuery that follow it. uncork() after that is a
      // no-op when a wait notice already uncorked it.
      if (step.done?.ok) socket.cork();
      if (step.send.length > 0)
        socket.write(step.send.length === 1 ? step.send[0]! : Buffer.concat(step.send));
      if (step.done) {
        if (step.done.ok) return;
        throw step.done.error;
      }
      const frame = await frames.nextTyped(MAX_AUTH_MESSAGE_LENGTH);
      if (frame.type === FrontendMessage.Terminate) throw new ClientGone();
      step = await auth.receive(frame.type, frame.body);
      // Answered meanwhile (login timeout, shutdown) while a derivation ran.
      if (this.lifecycle.ending) throw new ClientGone();
    }
  }

  private async cancel(processId: number, secretKey: Buffer): Promise<void> {
    // Unknown keys are dropped quietly, as PostgreSQL does: the sender learns nothing. The key is looked
    // up again right before the request is sent (see forwardCancel): a session that ended or moved
    // meanwhile is not cancelled, nor is the next client of its pooled connection.
    // A retry waiting for its backoff gives up at once (the cancel then reaches DSQL as usual).
    this.deps.cancels.lookup(processId, secretKey)?.clientCancelled?.();
    const outcome = async (): Promise<string> => {
      try {
        return await forwardCancel(
          () => this.deps.cancels.lookup(processId, secretKey),
          this.deps.connectTimeoutMs,
        );
      } catch (err) {
        this.log.warn({ event: 'cancel_request', outcome: 'failed', err: toProxyError(err).message });
        return 'failed';
      }
    };
    const result = await outcome();
    this.deps.metrics.connectionsTotal.inc({ outcome: 'cancel_request' });
    this.deps.metrics.cancels.inc({ outcome: result });
    if (result !== 'failed') this.log.info({ event: 'cancel_request', outcome: result });
  }

  /**
   * Answers a failure before the relay (see refuse): the session enters its closing phase, and the
   * promise resolves once the answer is sent, after the failed-login delay if there is one.
   */
  private fail(err: ProxyError, user?: string, unknownUser = false): Promise<void> {
    if (this.lifecycle.ending) return Promise.resolve();
    this.lifecycle.to('closing');
    this.upstream?.destroy();
    const refusal = refuse(
      {
        socket: this.socket,
        log: this.log,
        metrics: this.deps.metrics,
        authDelay: this.deps.authDelay,
        clientAddress: this.clientAddress,
      },
      err,
      user,
      unknownUser,
    );
    this.answerNow = refusal.now;
    return refusal.sent;
  }

  private closeLog(reason: string, error?: Error): void {
    this.log.info({
      event: 'closed',
      reason,
      user: this.user,
      role: this.role,
      bytes_from_client: this.socket.bytesRead,
      bytes_to_client: this.socket.bytesWritten,
      duration_ms: Date.now() - this.startedAt,
      ...(error ? { error: error.message } : {}),
    });
  }
}

function isPooling(c: Connector): c is PoolingConnector {
  return typeof (c as Partial<PoolingConnector>).release === 'function';
}
