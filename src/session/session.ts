import type net from 'node:net';
import type tls from 'node:tls';
import { authContext } from '../auth/auth-context.js';
import type { AuthDelay } from '../auth/auth-delay.js';
import { createAuthenticator } from '../auth/authenticator.js';
import type { AuthMethod, AuthUsers } from '../auth/types.js';
import { isLoopbackHost } from '../config/host-port.js';
import type { Metrics } from '../core/metrics.js';
import type { StartupParamsMode } from '../dsql/limits.js';
import { ProxyError, toProxyError } from '../errors.js';
import type { ClientTls } from '../frontend/client-tls.js';
import { readClientHello } from '../frontend/handshake.js';
import { FrameStream } from '../io/frame-stream.js';
import type { Logger } from '../log.js';
import { errorFromProxyError, loginAnswer, noticeResponse } from '../protocol/backend.js';
import { FrontendMessage, MAX_AUTH_MESSAGE_LENGTH } from '../protocol/constants.js';
import { forwardCancel } from '../upstream/cancel.js';
import type { Connector, UpstreamConnection } from '../upstream/connector.js';
import type { PoolingConnector } from '../upstream/pooled-connector.js';
import type { UpstreamTarget } from '../upstream/target.js';
import type { CancelKey, CancelRegistry } from './cancel-registry.js';
import { ClientConnectRequest } from './connect-request.js';
import { LiveSession } from './live-session.js';
import { droppedNotice, filterStartupParams } from './startup-params.js';

/** What a live session registers so a CancelRequest can reach its upstream. */
export interface CancelRoute {
  target: UpstreamTarget;
  upstreamKey: CancelKey | undefined;
}

/** The cluster a client reaches: how its users map to DSQL roles, and how to connect to it. */
export interface SessionCluster {
  name: string;
  resolveRole: (user: string) => string;
  connector: Connector;
}

export interface SessionDeps {
  authMethod: AuthMethod;
  users: () => AuthUsers;
  /** The cluster for the client's database name, or the error to answer (3D000 for an unknown one). */
  route: (database: string) => SessionCluster | ProxyError;
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
}

/** The client went away during the handshake: nothing to answer, nobody to tell. */
class ClientGone extends Error {}

let nextId = 1;

/**
 * One client connection, from the first byte to close:
 * handshake → local auth → token → upstream dial → upstream login → relay → close.
 * Every failure before the relay is answered with an ErrorResponse and logged with its reason.
 */
export class ClientSession {
  readonly id = nextId++;
  private readonly log: Logger;
  private live: LiveSession | undefined;
  private upstream: tls.TLSSocket | undefined;
  private cancelKey: CancelKey | undefined;
  /** Mutable: a move to a fresh upstream connection updates where cancels go. */
  private cancelRoute: CancelRoute | undefined;
  private closed = false;
  /** While a failed login's answer is delayed (AuthDelay): sends it at once (shutdown). */
  private answerNow: (() => void) | undefined;
  private readonly startedAt = Date.now();
  /** The client's address as seen on the raw socket (TLS sockets over a wrapper do not know it). */
  private readonly clientAddress: string;

  constructor(
    /** The client connection; replaced by its TLS socket once the client negotiates TLS. */
    private socket: net.Socket,
    private readonly deps: SessionDeps,
  ) {
    this.log = deps.logger.child({ conn: this.id });
    this.clientAddress = socket.remoteAddress ?? 'unix';
  }

  async run(): Promise<void> {
    const { deps } = this;
    let socket = this.socket;
    socket.setNoDelay(true);
    // Keepalive finds peers that vanished across a network; a loopback peer cannot vanish without its
    // kernel closing the socket, so local clients are spared the four setsockopt calls.
    if (!isLoopbackHost(this.clientAddress)) socket.setKeepAlive(true, 60_000);
    this.log.info({
      event: 'accepted',
      client: `${this.clientAddress}:${socket.remotePort ?? ''}`,
    });

    let frames = new FrameStream(socket, () => new ClientGone());
    const loginTimer = setTimeout(() => void this.fail(new ProxyError('LOGIN_TIMEOUT')), deps.loginTimeoutMs);
    let user: string | undefined;
    let role: string | undefined;
    try {
      const hello = await readClientHello(socket, frames, {
        tls: deps.clientTls,
        closedError: () => new ClientGone(),
      });
      if (hello.kind === 'cancel') {
        clearTimeout(loginTimer);
        frames.detach();
        socket.destroy();
        await this.cancel(hello.processId, hello.secretKey);
        return;
      }
      user = hello.user;
      socket = hello.socket;
      frames = hello.frames;
      this.socket = socket;
      // Checked after the startup packet, so cancel requests still get through at the limit.
      if (!deps.admit(this)) {
        throw new ProxyError('TOO_MANY_CONNECTIONS', {
          message: `sorry, too many clients already: dsql-proxy allows ${deps.maxConnections} connections (--max-connections)`,
          hint: 'Close idle connections or raise --max-connections.',
        });
      }
      await this.authenticate(frames, hello.user);
      clearTimeout(loginTimer);
      const cluster = deps.route(hello.database);
      if (cluster instanceof ProxyError) throw cluster;
      const dsqlRole = cluster.resolveRole(hello.user);
      role = dsqlRole;
      this.log.info({
        event: 'authenticated',
        user,
        role,
        database: hello.database,
        cluster: cluster.name,
        method: deps.authMethod,
        tls: hello.tls ? (hello.tls.direct ? `${hello.tls.protocol} direct` : hello.tls.protocol) : false,
      });

      // Startup parameters DSQL does not accept (--startup-params). AuthenticationOk is already sent,
      // so a NOTICE is legal here; a reject error is answered as an ErrorResponse.
      const startup = filterStartupParams(hello.params, deps.startupParamsMode);
      if (startup.error) throw startup.error;
      if (startup.dropped.length > 0) {
        this.log.info({ event: 'startup_params_dropped', dropped: startup.dropped });
        socket.write(
          noticeResponse({ severity: 'NOTICE', sqlstate: '00000', message: droppedNotice(startup.dropped) }),
        );
      }
      // A client that leaves while waiting (queued for a connection slot, or between retries) gives
      // its place up instead of spending one of DSQL's new-connection slots.
      const request = new ClientConnectRequest(role, startup.forward, this.log, (message) => {
        // A wait worth a notice is long: let AuthenticationOk and the notice out now.
        socket.uncork();
        socket.write(noticeResponse({ severity: 'NOTICE', sqlstate: '00000', message }));
      });
      const onGone = (): void => request.clientLeft(new ClientGone());
      socket.once('close', onGone);
      const conn = await cluster.connector.connect(request).finally(() => socket.off('close', onGone));
      const upstream = conn.socket;
      this.upstream = upstream;
      if (this.closed) throw new ClientGone();
      const up = conn.session;
      this.log.info({
        event: 'upstream_connected',
        user,
        role,
        action: conn.action,
        endpoint: conn.target.hostname,
        connect_ms: Math.round(conn.connectMs),
        upstream_cancel_key: up.backendKey !== undefined,
      });

      this.cancelRoute = { target: conn.target, upstreamKey: up.backendKey };
      this.cancelKey = deps.cancels.register(this.cancelRoute);
      const status =
        up.transactionStatus === 'T' || up.transactionStatus === 'E' ? up.transactionStatus : 'I';
      const { processId, secretKey } = this.cancelKey;
      const serverMessages =
        up.noticeMessages.length > 0 ? [...up.parameterMessages, ...up.noticeMessages] : up.parameterMessages;
      socket.write(loginAnswer(serverMessages, processId, secretKey, status));
      socket.uncork();
      deps.metrics.connectionsTotal.inc({ outcome: 'established' });
      const relayStarted = Date.now();
      const { connector } = cluster;
      this.live = new LiveSession({
        client: socket,
        first: conn,
        role,
        params: startup.forward,
        connector,
        cancelRoute: this.cancelRoute,
        log: this.log,
        metrics: deps.metrics,
        maxUpstreamAgeMs: deps.maxUpstreamAgeMs,
        connectTimeoutMs: deps.connectTimeoutMs,
        ...(isPooling(connector)
          ? { release: (c: UpstreamConnection) => connector.release(request, c) }
          : {}),
      });
      const result = await this.live.run(frames.detach());
      deps.metrics.sessionSeconds.observe((Date.now() - relayStarted) / 1000);
      this.closeLog(result.reason, user, role, result.error);
    } catch (err) {
      clearTimeout(loginTimer);
      this.upstream?.destroy();
      if (this.closed) {
        // Already answered (login timeout, shutdown): nothing more to say.
      } else if (err instanceof ClientGone) {
        deps.metrics.connectionsTotal.inc({ outcome: 'client_left' });
        this.log.info({ event: 'closed', reason: 'client_left_during_login', user });
        socket.destroy();
      } else {
        // A delayed answer keeps the session, and so its --max-connections slot, until it is sent.
        await this.fail(toProxyError(err), user, user !== undefined && !deps.users().has(user));
      }
    } finally {
      this.closed = true;
      if (this.cancelKey) deps.cancels.unregister(this.cancelKey.processId);
      // The ended session's relay state is not needed any more; holding it let it outlive young GCs
      // (see Relay.letGo).
      this.live = undefined;
    }
  }

  /** Ends the session from the proxy's side with `err` (e.g. 57P01 at shutdown). */
  terminate(err: ProxyError): void {
    if (this.answerNow) this.answerNow();
    if (this.closed) return;
    if (this.live) this.live.terminate(err);
    else void this.fail(err);
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
      if (this.closed) throw new ClientGone();
    }
  }

  private async cancel(processId: number, secretKey: Buffer): Promise<void> {
    // Unknown keys are dropped quietly, as PostgreSQL does: the sender learns nothing. The key is looked
    // up again right before the request is sent (see forwardCancel): a session that ended or moved
    // meanwhile is not cancelled, nor is the next client of its pooled connection.
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
   * Answers a failure before the relay: ErrorResponse, close, one log line with the reason. Resolves
   * once the answer is sent: after the failed-login delay, during which the session keeps its
   * admission slot, as PostgreSQL's auth_delay keeps a backend busy.
   */
  private fail(err: ProxyError, user?: string, unknownUser = false): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.closed = true;
    this.countFailure(err, unknownUser);
    // Wrong passwords are answered late, later with each recent failure (see AuthDelay).
    const delayMs =
      err.code === 'AUTH_FAILED' && this.deps.authDelay
        ? this.deps.authDelay.failure(this.clientAddress, user ?? '')
        : 0;
    if (delayMs > 0) this.deps.metrics.authDelaySeconds.observe(delayMs / 1000);
    // A startup packet of impossible length is logged, not answered (see STARTUP_LENGTH_INVALID).
    const silent = err.code === 'STARTUP_LENGTH_INVALID';
    const level = err.code === 'INTERNAL' ? 'error' : silent ? 'info' : 'warn';
    this.log[level]({
      event: 'refused',
      reason: err.code,
      sqlstate: err.sqlstate,
      message: err.message,
      user,
      ...(delayMs > 0 ? { delay_ms: delayMs } : {}),
      ...(err.code === 'INTERNAL' ? { err: err.cause } : {}),
    });
    this.upstream?.destroy();
    const { socket } = this;
    const answer = (): void => {
      // Inside a failed or refused TLS handshake there is no PostgreSQL channel to answer on.
      const speechless = silent || err.code === 'TLS_NOT_ENABLED' || err.code === 'CLIENT_TLS_FAILED';
      if (speechless) socket.destroy();
      else if (!socket.destroyed) socket.end(errorFromProxyError(err));
      setTimeout(() => socket.destroy(), 1000).unref();
    };
    if (delayMs <= 0) {
      answer();
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const timer = setTimeout(() => this.answerNow?.(), delayMs);
      this.answerNow = () => {
        this.answerNow = undefined;
        clearTimeout(timer);
        answer();
        resolve();
      };
    });
  }

  private countFailure(err: ProxyError, unknownUser: boolean): void {
    const { metrics } = this.deps;
    metrics.connectionsTotal.inc({ outcome: `refused_${err.code.toLowerCase()}` });
    if (err.code === 'AUTH_FAILED') {
      metrics.authFailures.inc({ reason: unknownUser ? 'unknown_user' : 'wrong_password' });
    } else if (err.code === 'LOGIN_TIMEOUT') {
      metrics.authFailures.inc({ reason: 'timeout' });
    } else if (
      err.code === 'PROTOCOL_VIOLATION' ||
      err.code === 'MESSAGE_TOO_LARGE' ||
      err.code === 'STARTUP_LENGTH_INVALID' ||
      err.code === 'SSL_BYTES_AFTER_REQUEST'
    ) {
      metrics.authFailures.inc({ reason: 'protocol' });
    } else if (err.code.startsWith('UPSTREAM_') || err.code === 'TOKEN_UNAVAILABLE') {
      metrics.upstreamErrors.inc({ sqlstate: err.sqlstate });
    }
  }

  private closeLog(reason: string, user: string | undefined, role: string | undefined, error?: Error): void {
    this.log.info({
      event: 'closed',
      reason,
      user,
      role,
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
