import type tls from 'node:tls';
import { type Clock, systemClock } from '../core/clock.js';
import type { Metrics } from '../core/metrics.js';
import { ProxyError, toProxyError } from '../errors.js';
import type { Logger } from '../log.js';
import { actionForRole, type TokenAction } from '../token/signer.js';
import { dialUpstream } from './dial.js';
import type { EndpointPool, PoolEndpoint } from './endpoint-pool.js';
import { loginUpstream, type UpstreamSession } from './login.js';
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
  session: UpstreamSession;
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
  pool: EndpointPool;
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
 * 1. Take the endpoints in the pool's order. Per endpoint: wait for its connect-rate token (the
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
  const clock = opts.clock ?? systemClock;
  const random = opts.random ?? Math.random;
  const retryInitialMs = opts.retry?.initialMs ?? 100;
  const retryMaxMs = opts.retry?.maxMs ?? 2_000;
  const { pool, metrics } = opts;
  const multi = pool.endpoints.length > 1;

  const final = (err: ProxyError, failures: Map<string, string>): ProxyError => {
    if (!multi) return err;
    const tried = [...failures].map(([host, why]) => `${host}: ${why}`).join('; ');
    return new ProxyError(err.code, {
      message: err.message,
      sqlstate: err.sqlstate,
      ...(err.hint === undefined ? {} : { hint: err.hint }),
      detail: `every endpoint failed: ${tried}`,
      cause: err,
    });
  };

  return {
    async connect(req) {
      const action = actionForRole(req.role);
      const started = clock.now();
      let noticed = false;
      const onSlow = req.notice
        ? () => {
            if (noticed) return;
            noticed = true;
            req.notice?.(slowNotice(pool));
          }
        : undefined;
      let deadline: number | undefined;
      const remaining = (): number =>
        deadline === undefined ? opts.connectTimeoutMs : deadline - clock.now();
      const failures = new Map<string, string>();
      let lastErr: ProxyError | undefined;
      let lastCapacity: ProxyError | undefined;
      let first: PoolEndpoint | undefined;

      for (let round = 0; ; round++) {
        const tried = new Set<PoolEndpoint>();
        for (let ep = pool.pick(tried); ep !== undefined; ep = pool.pick(tried)) {
          tried.add(ep);
          first ??= ep;
          const host = ep.target.hostname;
          if (ep.limiter) {
            const timeoutMs =
              deadline === undefined ? opts.queueTimeoutMs : Math.min(opts.queueTimeoutMs, remaining());
            try {
              const waited = await ep.limiter.acquire({
                timeoutMs: Math.max(1, timeoutMs),
                ...(onSlow ? { onSlow } : {}),
                ...(req.signal ? { signal: req.signal } : {}),
              });
              metrics.connectQueueWaitSeconds.observe(waited / 1000);
            } catch (err) {
              pool.released(ep);
              if (err instanceof ProxyError && err.code === 'CONNECT_QUEUE_TIMEOUT') {
                metrics.connectQueueTimeouts.inc({ endpoint: host });
                // A retry that cannot get a slot within the budget ends with what the upstream said.
                const upstream = lastCapacity ?? lastErr;
                if (round > 0 && upstream) throw final(upstream, failures);
                req.log.warn({ event: 'connect_queue_timeout', endpoint: host, wait_ms: timeoutMs });
              }
              throw err;
            }
          }
          deadline ??= clock.now() + opts.connectTimeoutMs;
          const attemptTimeout = round === 0 ? opts.connectTimeoutMs : Math.max(1, remaining());
          const t0 = performance.now();
          try {
            const { socket, session } = await attempt(ep, req, action, attemptTimeout);
            const connectMs = performance.now() - t0;
            pool.succeeded(ep);
            metrics.upstreamConnectSeconds.observe(connectMs / 1000);
            if (ep !== first) metrics.endpointFailovers.inc({ from: first.target.hostname, to: host });
            return {
              socket,
              session,
              target: ep.target,
              action,
              connectMs,
              waitMs: clock.now() - started - connectMs,
              connectedAt: Date.now(),
            };
          } catch (e) {
            const err = toProxyError(e);
            if (!failsOver(err)) {
              // The endpoint answered (28000...) or we never reached it (no token): not its fault.
              if (err.code === 'TOKEN_UNAVAILABLE') pool.released(ep);
              else pool.succeeded(ep);
              throw err;
            }
            pool.failed(ep, err.message);
            failures.set(host, `${err.sqlstate} ${err.message}`);
            lastErr = err;
            if (isCapacity(err)) lastCapacity = err;
            req.log.warn({
              event: 'upstream_attempt_failed',
              endpoint: host,
              sqlstate: err.sqlstate,
              error: err.message,
              attempt: round + 1,
            });
          }
        }
        const err = lastErr as ProxyError;
        if (!isCapacity(err)) throw final(err, failures);
        // Full jitter, shortened so that one more attempt still fits in the budget.
        const jittered = Math.round(
          random() * Math.min(retryMaxMs, retryInitialMs * 2 ** Math.min(20, round)),
        );
        const delay = Math.min(jittered, remaining() - MIN_ATTEMPT_MS);
        if (delay < 0) throw final(lastCapacity ?? err, failures);
        metrics.upstreamLoginRetries.inc({ sqlstate: err.sqlstate });
        req.log.info({
          event: 'upstream_login_retry',
          sqlstate: err.sqlstate,
          delay_ms: delay,
          retry: round + 1,
        });
        await sleep(clock, delay, req.signal);
      }
    },
  };
}

async function attempt(
  ep: PoolEndpoint,
  req: ConnectRequest,
  action: TokenAction,
  timeoutMs: number,
): Promise<{ socket: tls.TLSSocket; session: UpstreamSession }> {
  const token = await ep.tokens.get(action);
  const socket = await dialUpstream(ep.target, timeoutMs);
  try {
    const session = await loginUpstream(socket, { user: req.role, params: req.params, token }, timeoutMs);
    return { socket, session };
  } catch (err) {
    socket.destroy();
    throw err;
  }
}

function slowNotice(pool: EndpointPool): string {
  const limiter = pool.endpoints.find((ep) => ep.limiter)?.limiter;
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
