import type net from 'node:net';
import type { AuthDelay } from '../auth/auth-delay.js';
import type { Metrics } from '../core/metrics.js';
import { ProxyError } from '../errors.js';
import type { Logger } from '../log.js';
import { errorFromProxyError } from '../protocol/to-client.js';

/**
 * Refused connections: every failure before the relay (too many connections, shutdown, a failed
 * login, an unknown database, an upstream that would not connect...) is answered here with one
 * ErrorResponse, one log line with the reason, and the metrics that count it.
 */

/** The 53300 answer when --max-connections is reached. */
export function tooManyConnections(maxConnections: number): ProxyError {
  return new ProxyError('TOO_MANY_CONNECTIONS', {
    message: `sorry, too many clients already: dsql-proxy allows ${maxConnections} connections (--max-connections)`,
    hint: 'Close idle connections or raise --max-connections.',
  });
}

export interface RefusalContext {
  /** The client connection (its TLS socket once negotiated). */
  socket: net.Socket;
  log: Logger;
  metrics: Metrics;
  /** Delays the answer to failed logins; absent: answer at once. */
  authDelay?: AuthDelay | undefined;
  /** The client's address, the key of the failed-login delay. */
  clientAddress: string;
}

export interface Refusal {
  /** Resolves once the answer is sent (after the failed-login delay, if any). */
  sent: Promise<void>;
  /** Sends a delayed answer at once (shutdown); does nothing once it is sent. */
  now: () => void;
}

/**
 * Counts, logs and answers `err`. Wrong passwords are answered late, later with each recent failure
 * (see AuthDelay): the caller keeps the session, and so its admission slot, until `sent` resolves, as
 * PostgreSQL's auth_delay keeps a backend busy.
 */
export function refuse(ctx: RefusalContext, err: ProxyError, user?: string, unknownUser = false): Refusal {
  countRefusal(ctx.metrics, err, unknownUser);
  const delayMs =
    err.code === 'AUTH_FAILED' && ctx.authDelay ? ctx.authDelay.failure(ctx.clientAddress, user ?? '') : 0;
  if (delayMs > 0) ctx.metrics.authDelaySeconds.observe(delayMs / 1000);
  // A startup packet of impossible length is logged, not answered (see STARTUP_LENGTH_INVALID).
  const silent = err.code === 'STARTUP_LENGTH_INVALID';
  const level = err.code === 'INTERNAL' ? 'error' : silent ? 'info' : 'warn';
  ctx.log[level]({
    event: 'refused',
    reason: err.code,
    sqlstate: err.sqlstate,
    message: err.message,
    user,
    ...(delayMs > 0 ? { delay_ms: delayMs } : {}),
    ...(err.code === 'INTERNAL' ? { err: err.cause } : {}),
  });
  const { socket } = ctx;
  let answered = false;
  const answer = (): void => {
    if (answered) return;
    answered = true;
    // Inside a failed or refused TLS handshake there is no PostgreSQL channel to answer on.
    const speechless = silent || err.code === 'TLS_NOT_ENABLED' || err.code === 'CLIENT_TLS_FAILED';
    if (speechless) socket.destroy();
    else if (!socket.destroyed) socket.end(errorFromProxyError(err));
    setTimeout(() => socket.destroy(), 1000).unref();
  };
  if (delayMs <= 0) {
    answer();
    return { sent: Promise.resolve(), now: () => {} };
  }
  let now: () => void = () => {};
  const sent = new Promise<void>((resolve) => {
    const timer = setTimeout(() => now(), delayMs);
    now = () => {
      clearTimeout(timer);
      answer();
      resolve();
    };
  });
  return { sent, now: () => now() };
}

/** The metrics of one refused connection. */
export function countRefusal(metrics: Metrics, err: ProxyError, unknownUser: boolean): void {
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
