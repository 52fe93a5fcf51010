/**
 * The error catalogue: every failure the proxy reports to a client is one of these codes, and this is
 * the only place that decides the SQLSTATE, severity and default message a client sees.
 *
 * SQLSTATEs follow PostgreSQL's errcodes (https://www.postgresql.org/docs/current/errcodes-appendix.html).
 */

export type Severity = 'ERROR' | 'FATAL' | 'PANIC' | 'WARNING' | 'NOTICE';

interface CatalogueEntry {
  sqlstate: string;
  severity: Severity;
  message: string;
  hint?: string;
}

export const CATALOGUE = {
  // frontend protocol (client -> proxy)
  PROTOCOL_VIOLATION: { sqlstate: '08P01', severity: 'FATAL', message: 'invalid frontend message' },
  UNSUPPORTED_PROTOCOL: {
    sqlstate: '08P01',
    severity: 'FATAL',
    message: 'unsupported frontend protocol',
    hint: 'dsql-proxy speaks protocol 3.0 (PostgreSQL 7.4 and later clients).',
  },
  // Never sent: PostgreSQL answers a startup packet whose length is out of range with nothing at all
  // (COMMERROR: logged, not sent) and closes. node-postgres writes a Terminate before its
  // StartupMessage when end() follows connect() at once, and `X` + length reads as a huge length.
  STARTUP_LENGTH_INVALID: {
    sqlstate: '08P01',
    severity: 'FATAL',
    message: 'invalid length of startup packet',
  },
  MESSAGE_TOO_LARGE: {
    sqlstate: '08P01',
    severity: 'FATAL',
    message: 'message too large before authentication',
  },
  SSL_BYTES_AFTER_REQUEST: {
    sqlstate: '08P01',
    severity: 'FATAL',
    message: 'received unencrypted data after SSL request',
    hint: 'This could be either a client-software bug or evidence of an attempted man-in-the-middle attack.',
  },
  TLS_NOT_ENABLED: {
    sqlstate: '08P01',
    severity: 'FATAL',
    message: 'the client started TLS but local TLS is off',
    hint: 'Start dsql-proxy with --client-tls on, or connect with sslmode=disable or prefer.',
  },
  TLS_REQUIRED: {
    sqlstate: '28000',
    severity: 'FATAL',
    message: 'dsql-proxy accepts only TLS connections (--client-tls-required)',
    hint: 'Connect with sslmode=require, or sslmode=verify-full with the CA from --client-ca-out.',
  },
  CLIENT_TLS_FAILED: {
    sqlstate: '08P01',
    severity: 'FATAL',
    message: 'TLS handshake with the client failed',
  },
  LOGIN_TIMEOUT: { sqlstate: '08006', severity: 'FATAL', message: 'canceling authentication due to timeout' },
  // startup parameters (--startup-params reject)
  STARTUP_PARAM_UNSUPPORTED: {
    sqlstate: '0A000',
    severity: 'FATAL',
    message: 'startup parameters not supported by Aurora DSQL',
    hint: 'Remove them from the client settings, or run dsql-proxy with --startup-params drop.',
  },
  // local authentication
  AUTH_FAILED: { sqlstate: '28P01', severity: 'FATAL', message: 'password authentication failed' },
  AUTH_INVALID: { sqlstate: '28000', severity: 'FATAL', message: 'invalid authorization specification' },
  // routing (several clusters on one listener)
  UNKNOWN_DATABASE: { sqlstate: '3D000', severity: 'FATAL', message: 'database does not exist' },
  // tokens and credentials
  TOKEN_UNAVAILABLE: {
    sqlstate: '08001',
    severity: 'FATAL',
    message: 'no valid IAM authentication token is available',
  },
  // upstream (proxy -> DSQL)
  UPSTREAM_UNREACHABLE: {
    sqlstate: '08001',
    severity: 'FATAL',
    message: 'could not connect to the DSQL endpoint',
  },
  UPSTREAM_TIMEOUT: {
    sqlstate: '08001',
    severity: 'FATAL',
    message: 'timed out connecting to the DSQL endpoint',
  },
  UPSTREAM_TLS: {
    sqlstate: '08001',
    severity: 'FATAL',
    message: 'TLS handshake with the DSQL endpoint failed',
  },
  UPSTREAM_PROTOCOL: {
    sqlstate: '08P01',
    severity: 'FATAL',
    message: 'the DSQL endpoint sent an unexpected message during login',
  },
  UPSTREAM_AUTH_UNSUPPORTED: {
    sqlstate: '08P01',
    severity: 'FATAL',
    message: 'the DSQL endpoint asked for an authentication method other than a cleartext IAM token',
  },
  UPSTREAM_REJECTED: { sqlstate: '08001', severity: 'FATAL', message: 'the DSQL endpoint refused the login' },
  UPSTREAM_CLOSED: {
    sqlstate: '08006',
    severity: 'FATAL',
    message: 'the DSQL endpoint closed the connection',
  },
  SESSION_NOT_MOVABLE: {
    sqlstate: '08006',
    severity: 'FATAL',
    message: 'dsql-proxy cannot move this session to a fresh DSQL connection',
    hint: 'DSQL closes every connection after 60 minutes, and this session holds state dsql-proxy cannot re-create on a new one. Reconnect.',
  },
  // lifecycle
  ADMIN_SHUTDOWN: {
    sqlstate: '57P01',
    severity: 'FATAL',
    message: 'terminating connection because dsql-proxy is shutting down',
  },
  CONNECT_QUEUE_TIMEOUT: {
    sqlstate: '53400',
    severity: 'FATAL',
    message: 'timed out waiting for a DSQL connection slot',
    hint: 'Many clients connected at once and dsql-proxy paces new DSQL connections (DSQL allows 100 new connections per second per cluster). Retry shortly, start clients more gradually or keep connections in a pool, or raise --connect-rate or --connect-queue-timeout.',
  },
  TOO_MANY_CONNECTIONS: {
    sqlstate: '53300',
    severity: 'FATAL',
    message: 'too many connections to dsql-proxy',
  },
  // compatibility layer (src/compat): statements the proxy answers for DSQL
  /** A statement the proxy cannot carry out on DSQL without lying about it (message per case). */
  COMPAT_REFUSED: { sqlstate: '0A000', severity: 'ERROR', message: 'not supported on DSQL' },
  /** PostgreSQL's own error for a statement the proxy answers (SQLSTATE and message per case). */
  COMPAT_STATEMENT_ERROR: { sqlstate: 'XX000', severity: 'ERROR', message: 'statement failed' },
  /** A startup parameter the compatibility layer takes, with a value it refuses (as PostgreSQL would). */
  STARTUP_PARAM_INVALID: {
    sqlstate: '22023',
    severity: 'FATAL',
    message: 'invalid value for a startup parameter',
  },
  STATEMENT_TIMEOUT: {
    sqlstate: '57014',
    severity: 'ERROR',
    message: 'canceling statement due to statement timeout',
  },
  STATEMENT_TIMEOUT_UNANSWERED: {
    sqlstate: '08006',
    severity: 'FATAL',
    message: 'terminating connection: the statement outlived statement_timeout and DSQL did not stop it',
    hint: 'dsql-proxy sent DSQL a cancel request when statement_timeout passed and closed the DSQL connection when the statement still ran after --statement-timeout-grace. Reconnect; a transaction in progress was rolled back.',
  },
  IDLE_IN_TRANSACTION_TIMEOUT: {
    sqlstate: '25P03',
    severity: 'FATAL',
    message: 'terminating connection due to idle-in-transaction timeout',
  },
  IDLE_SESSION_TIMEOUT: {
    sqlstate: '57P05',
    severity: 'FATAL',
    message: 'terminating connection due to idle-session timeout',
  },
  TRANSACTION_TIMEOUT: {
    sqlstate: '25P04',
    severity: 'FATAL',
    message: 'terminating connection due to transaction timeout',
  },
  INTERNAL: { sqlstate: 'XX000', severity: 'FATAL', message: 'internal error in dsql-proxy' },
} as const satisfies Record<string, CatalogueEntry>;

export type ErrorCode = keyof typeof CATALOGUE;

export interface ProxyErrorOptions {
  message?: string;
  detail?: string;
  hint?: string;
  /** Overrides the catalogue SQLSTATE, e.g. to keep the upstream's own code. */
  sqlstate?: string;
  cause?: unknown;
}

/** An error with a stable code, the SQLSTATE the client sees, and text a person can act on. */
export class ProxyError extends Error {
  readonly code: ErrorCode;
  readonly sqlstate: string;
  readonly severity: Severity;
  readonly detail: string | undefined;
  readonly hint: string | undefined;

  constructor(code: ErrorCode, opts: ProxyErrorOptions = {}) {
    const entry: CatalogueEntry = CATALOGUE[code];
    super(opts.message ?? entry.message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'ProxyError';
    this.code = code;
    this.sqlstate = opts.sqlstate ?? entry.sqlstate;
    this.severity = entry.severity;
    this.detail = opts.detail;
    this.hint = opts.hint ?? entry.hint;
  }
}

/** Normalises anything thrown into a ProxyError without losing the original as `cause`. */
export function toProxyError(err: unknown, fallback: ErrorCode = 'INTERNAL'): ProxyError {
  if (err instanceof ProxyError) return err;
  return new ProxyError(fallback, { cause: err });
}
