import type tls from 'node:tls';
import { type Clock, systemClock } from '../core/clock.js';
import type { Metrics } from '../core/metrics.js';
import { ProxyError, toProxyError } from '../errors.js';
import type { Logger } from '../log.js';
import { actionForRole, type TokenAction } from '../token/signer.js';
import { dialUpstream } from './dial.js';
import type { Endpoint, FailoverList } from './failover-list.js';
import { loginUpstream, type UpstreamLogin } from './login.js';
import type { ConnectRateLimiter } from './rate-limiter.js';
import type { UpstreamTarget } from './target.js';

export interface ConnectRequest {
  /** The DSQL role to log in as. */
  role: string;
  /** Startup parameters to send along (already filtered for what DSQL accepts). */
  params: ReadonlyMap<string, string>;
  log: Logger;
  /** Sends a NoticeResponse to the waiting client (e.g. "waiting for a connection slot"). */
  notice?: (message: string) => void;
  /** Aborts a queued or backing-off connect (the client went away). */
  signal?: AbortSignal;
  /** Session pooling: the pool key of role and params, kept by the pooling connector once made. */
  poolKey?: string;
}

/** A logged-in upstream connection. */
export interface UpstreamConnection {
  socket: tls.TLSSocket;
  /** What the login answered (settings, cancel key, notices). */
  login: UpstreamLogin;
  /** The endpoint it is connected to (cancel requests go there too). */
  target: UpstreamTarget;
  action: TokenAction;
  /** Token, dial and login of the attempt that succeeded. */
  connectMs: number;
  /** Time spent in the connect-rate queue and backing off, over all attempts. */
  waitMs: number;
  /** Epoch ms when the login finished: the connection's age counts from here (DSQL's 60-minute cap). */
  connectedAt: number;
}

/**
 * Opens logged-in upstream connections: token, TLS dial, login. Sessions use it for their first
 * connection and for moving to a fresh one; it is the one place that decides how a connection to
 * DSQL is made.
 */
export interface Connector {
  connect(req: ConnectRequest): Promise<UpstreamConnection>;
}

export interface ConnectorOptions {
  failover: FailoverList;
  /** Budget for TCP + TLS + login of one attempt, and for the 53300/53400 retries together. */
  connectTimeoutMs: number;
  /** Longest wait in an endpoint's connect-rate queue. */
  queueTimeoutMs: number;
  metrics: Metrics;
  clock?: Clock;
  random?: () => number;
  /** Backoff between retries after 53300/53400: full jitter in [0, min(max, initial·2^(n-1))]. */
  retry?: { initialMs?: number; maxMs?: number };
}

/** Errors that say "this endpoint, not these credentials": move on to the next endpoint. */
const ENDPOINT_FAULTS = new Set([
  'UPSTREAM_UNREACHABLE',
  'UPSTREAM_TIMEOUT',
  'UPSTREAM_TLS',
  'UPSTREAM_CLOSED',
]);

/** A retry is not worth starting with less time than this left in the connect budget. */
const MIN_ATTEMPT_MS = 100;

function isCapacity(err: ProxyError): boolean {
  return err.code === 'UPSTREAM_REJECTED' && (err.sqlstate === '53300' || err.sqlstate === '53400');
}

function failsOver(err: ProxyError): boolean {
  return ENDPOINT_FAULTS.has(err.code) || (err.code === 'UPSTREAM_REJECTED' && err.sqlstate.startsWith('53'));
}

/**
 * The connect algorithm:
 * 1. Take the endpoints in the failover list's order. Per endpoint: wait for its connect-rate token (the
 *    client gets a NOTICE after 1 s; past --connect-queue-timeout, 53400), then token, dial, login.
 * 2. An endpoint fault (unreachable, timeout, TLS, closed) or a 53xxx refusal marks the endpoint
 *    down and moves to the next one. Any other failure (28000 access denied, no token...) is the
 *    same everywhere: it goes to the client at once.
 * 3. When every endpoint has been tried and the last refusal was 53300/53400 (DSQL's connection
 *    quotas), wait with exponential backoff and full jitter and go round again, for as long as
 *    --connect-timeout (counted from the first dial) allows; each retry takes a rate token too.
 * 4. Otherwise, or when the budget is spent, the client gets the upstream's error (the last quota
 *    refusal if there was one); with several endpoints the detail lists what each one said.
 */
export function createConnector(opts: ConnectorOptions): Connector {
  const settings: ConnectSettings = {
    failover: opts.failover,
    metrics: opts.metrics,
    connectTimeoutMs: opts.connectTimeoutMs,
    queueTimeoutMs: opts.queueTimeoutMs,
    clock: opts.clock ?? systemClock,
    random: opts.random ?? Math.random,
    retryInitialMs: opts.retry?.initialMs ?? 100,
    retryMaxMs: opts.retry?.maxMs ?? 2_000,
  };
  return { connect: (req) => new ConnectRun(settings, req).run() };
}

/** ConnectorOptions with the defaults applied. */
interface ConnectSettings {
  failover: FailoverList;
  metrics: Metrics;
  connectTimeoutMs: number;
  queueTimeoutMs: number;
  clock: Clock;
  random: () => number;
  retryInitialMs: number;
  retryMaxMs: number;
}

/** One client's connect, through the rounds over the endpoints (the algorithm above). */
class ConnectRun {
  private readonly action: TokenAction;
  private readonly started: number;
  private noticed = false;
  /** Counted from the first dial; until then, remaining() is the whole budget. */
  private deadline: number | undefined;
  /** Endpoint -> what it said, for the detail of the final error with several endpoints. */
  private readonly failures = new Map<string, string>();
  private lastErr: ProxyError | undefined;
  private lastCapacity: ProxyError | undefined;
  private first: Endpoint | undefined;

  constructor(
    private readonly s: ConnectSettings,
    private readonly req: ConnectRequest,
  ) {
    this.action = actionForRole(req.role);
    this.started = s.clock.now();
  }

  async run(): Promise<UpstreamConnection> {
    const { failover } = this.s;
    for (let round = 0; ; round++) {
      const tried = new Set<Endpoint>();
      for (let ep = failover.pick(tried); ep !== undefined; ep = failover.pick(tried)) {
        tried.add(ep);
        this.first ??= ep;
        if (ep.limiter) await this.waitForSlot(ep, ep.limiter, round);
        const connection = await this.tryEndpoint(ep, round);
        if (connection) return connection;
      }
      await this.backOff(round);
    }
  }

  private remaining(): number {
    return this.deadline === undefined ? this.s.connectTimeoutMs : this.deadline - this.s.clock.now();
  }

  /** The client hears once that it waits for a slot (after 1 s in the queue). */
  private readonly onSlow = (): void => {
    if (this.noticed) return;
    this.noticed = true;
    this.req.notice?.(slowNotice(this.s.failover));
  };

  /** The error the client gets: with several endpoints, the detail lists what each one said. */
  private final(err: ProxyError): ProxyError {
    if (this.s.failover.endpoints.length <= 1) return err;
    const tried = [...this.failures].map(([host, why]) => `${host}: ${why}`).join('; ');
    return new ProxyError(err.code, {
      message: err.message,
      sqlstate: err.sqlstate,
      ...(err.hint === undefined ? {} : { hint: err.hint }),
      detail: `every endpoint failed: ${tried}`,
      cause: err,
    });
  }

  /** Waits for the endpoint's connect-rate token, within the queue timeout and the budget. */
  private async waitForSlot(ep: Endpoint, limiter: ConnectRateLimiter, round: number): Promise<void> {
    const { req, s } = this;
    const host = ep.target.hostname;
    const timeoutMs =
      this.deadline === undefined ? s.queueTimeoutMs : Math.min(s.queueTimeoutMs, this.remaining());
    try {
      const waited = await limiter.acquire({
        timeoutMs: Math.max(1, timeoutMs),
        ...(req.notice ? { onSlow: this.onSlow } : {}),
        ...(req.signal ? { signal: req.signal } : {}),
      });
      s.metrics.connectQueueWaitSeconds.observe(waited / 1000);
    } catch (err) {
      s.failover.released(ep);
      if (err instanceof ProxyError && err.code === 'CONNECT_QUEUE_TIMEOUT') {
        s.metrics.connectQueueTimeouts.inc({ endpoint: host });
        // A retry that cannot get a slot within the budget ends with what the upstream said.
        const upstream = this.lastCapacity ?? this.lastErr;
        if (round > 0 && upstream) throw this.final(upstream);
        req.log.warn({ event: 'connect_queue_timeout', endpoint: host, wait_ms: timeoutMs });
      }
      throw err;
    }
  }

  /** Token, dial and login on one endpoint; undefined when it failed in a way that fails over. */
  private async tryEndpoint(ep: Endpoint, round: number): Promise<UpstreamConnection | undefined> {
    const { s, req } = this;
    const host = ep.target.hostname;
    this.deadline ??= s.clock.now() + s.connectTimeoutMs;
    const attemptTimeout = round === 0 ? s.connectTimeoutMs : Math.max(1, this.remaining());
    const t0 = performance.now();
    try {
      const { socket, login } = await attempt(ep, req, this.action, attemptTimeout);
      const connectMs = performance.now() - t0;
      s.failover.succeeded(ep);
      s.metrics.upstreamConnectSeconds.observe(connectMs / 1000);
      const first = this.first as Endpoint;
      if (ep !== first) s.metrics.endpointFailovers.inc({ from: first.target.hostname, to: host });
      const waitMs = s.clock.now() - this.started - connectMs;
      return {
        socket,
        login,
        target: ep.target,
        action: this.action,
        connectMs,
        waitMs,
        connectedAt: Date.now(),
      };
    } catch (e) {
      const err = toProxyError(e);
      if (!failsOver(err)) {
        // The endpoint answered (28000...) or we never reached it (no token): not its fault.
        if (err.code === 'TOKEN_UNAVAILABLE') s.failover.released(ep);
        else s.failover.succeeded(ep);
        throw err;
      }
      s.failover.failed(ep, err.message);
      this.failures.set(host, `${err.sqlstate} ${err.message}`);
      this.lastErr = err;
      if (isCapacity(err)) this.lastCapacity = err;
      req.log.warn({
        event: 'upstream_attempt_failed',
        endpoint: host,
        sqlstate: err.sqlstate,
        error: err.message,
        attempt: round + 1,
      });
      return undefined;
    }
  }

  /** After a round: back off and go again on a quota refusal while the budget allows, else fail. */
  private async backOff(round: number): Promise<void> {
    const { s, req } = this;
    const err = this.lastErr as ProxyError;
    if (!isCapacity(err)) throw this.final(err);
    // Full jitter, shortened so that one more attempt still fits in the budget.
    const jittered = Math.round(
      s.random() * Math.min(s.retryMaxMs, s.retryInitialMs * 2 ** Math.min(20, round)),
    );
    const delay = Math.min(jittered, this.remaining() - MIN_ATTEMPT_MS);
    if (delay < 0) throw this.final(this.lastCapacity ?? err);
    s.metrics.upstreamLoginRetries.inc({ sqlstate: err.sqlstate });
    req.log.info({
      event: 'upstream_login_retry',
      sqlstate: err.sqlstate,
      delay_ms: delay,
      retry: round + 1,
    });
    await sleep(s.clock, delay, req.signal);
  }
}

async function attempt(
  ep: Endpoint,
  req: ConnectRequest,
  action: TokenAction,
  timeoutMs: number,
): Promise<{ socket: tls.TLSSocket; login: UpstreamLogin }> {
  const token = await ep.tokens.get(action);
  const socket = await dialUpstream(ep.target, timeoutMs);
  try {
    const login = await loginUpstream(socket, { user: req.role, params: req.params, token }, timeoutMs);
    return { socket, login };
  } catch (err) {
    socket.destroy();
    throw err;
  }
}

function slowNotice(failover: FailoverList): string {
  const limiter = failover.endpoints.find((ep) => ep.limiter)?.limiter;
  const rate = limiter ? `${limiter.ratePerSecond} per second` : 'a limited rate';
  return `waiting for a DSQL connection slot: dsql-proxy opens new connections at ${rate} (--connect-rate) and other clients are ahead of this one`;
}

function sleep(clock: Clock, ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = (): void => {
      clock.clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = clock.setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
