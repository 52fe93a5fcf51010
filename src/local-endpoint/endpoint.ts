/**
 * A local endpoint that behaves like Aurora DSQL's front door on the wire (mandatory TLS with SNI,
 * cleartext-password IAM token checked as a SigV4 presigned URL, `admin` vs `DbConnect`, database
 * `postgres` only) and relays authenticated sessions to a real PostgreSQL. With `rules: 'dsql'` (the
 * default) it behaves like DSQL behind the door too: what DSQL refuses is refused, with DSQL's errors,
 * and its transaction limits and conflicts apply (behind-door.ts). One implementation serves the
 * integration tests and `dsql-proxy demo`. Behaviour follows docs/dsql.md; where DSQL's behaviour is
 * unknown (SQLSTATEs, wrong-SNI text) the choice is noted inline.
 */
import { randomBytes } from 'node:crypto';
import { createServer, connect as netConnect, type Server, type Socket } from 'node:net';
import { createSecureContext, type SecureContext, TLSSocket } from 'node:tls';
import { createCa, issueCert, type LocalCert } from '../core/certs.js';
// The one list of parameters DSQL accepts; strict mode refuses the others with 0A000, as DSQL does.
import { isDsqlSettableParam } from '../dsql/limits.js';
import { socketDeadline } from '../io/deadline.js';
import { FrameStream } from '../io/frame-stream.js';
import {
  CANCEL_REQUEST_CODE,
  FrontendMessage,
  GSSENC_REQUEST_CODE,
  MAX_STARTUP_PACKET_LENGTH,
  SSL_REQUEST_CODE,
  TLS_HANDSHAKE_RECORD,
} from '../protocol/constants.js';
import { decodeStartupPacket } from '../protocol/from-client.js';
import { authenticationCleartextPassword, errorResponse } from '../protocol/to-client.js';
import { frontendStartup } from '../protocol/to-server.js';
import { BehindDoor, type DoorLimits, DSQL_LIMITS, relayBehindDoor } from './behind-door.js';
import type { Refusal } from './rules/classify.js';
import { identityArn, type SigningCredentials, verifyDsqlToken } from './sigv4-verify.js';

export const MSG_SSL_MANDATORY =
  'unable to accept connection, SSL is mandatory. AWS Authentication is required.';
export const MSG_NO_SNI = 'unable to accept connection, sni was not received';
/** DSQL's text for an SNI naming another cluster is not documented; this is our stand-in. */
export const MSG_SNI_MISMATCH = 'unable to accept connection, sni does not match the cluster endpoint';
export const MSG_ACCESS_DENIED = 'unable to accept connection, access denied';
/** CHAP_quotas: 53300 past 10,000 connections, 53400 past 100 new connections per second (burst 1,000). */
export const MSG_TOO_MANY_CONNECTIONS = 'Unable to accept connection, too many open connections.';
export const MSG_RATE_EXCEEDED = 'Unable to accept connection, rate exceeded.';
/** Auth-failure SQLSTATE is not confirmed for DSQL; 28000 (invalid_authorization_specification) is PG's. */
export const SQLSTATE_AUTH = '28000';

export interface DsqlEndpointOptions {
  hostname: string;
  region: string;
  /** Several entries model credential rotation: any of them may sign. */
  credentials: SigningCredentials | SigningCredentials[];
  postgres: { host: string; port: number };
  /** Server certificate; default: a fresh CA and a cert for `hostname`. */
  cert?: LocalCert;
  /** PEM of the CA that issued `cert` (returned as caPem). Required with `cert`. */
  caPem?: string;
  now?: () => number;
  /** Reject startup parameters DSQL does not support (statement_timeout, options, ...), as DSQL does. Default: on with `rules: 'dsql'`, off with `'postgres'`. */
  strictStartupParams?: boolean;
  /**
   * DSQL closes sessions after 60 min without an error message; tests can shorten it. Default: 60 min
   * with `rules: 'dsql'`, none with `'postgres'`.
   */
  maxConnectionMs?: number;
  /**
   * `'dsql'` (default): behave like DSQL behind the door (refusals, limits, conflicts, connection
   * quotas; docs/dsql.md). `'postgres'`: plain PostgreSQL behind the door, for the few tests that
   * need it (each says why).
   */
  rules?: 'dsql' | 'postgres';
  /** Per-transaction limits with `rules: 'dsql'` (default DSQL's: 3,000 rows, 10 MiB, 5 minutes). */
  limits?: Partial<DoorLimits>;
  /** Open connections before 53300 (default 10,000) with `rules: 'dsql'`. */
  maxConnections?: number;
  /** New connections per second and burst before 53400 (default 100 and 1,000) with `rules: 'dsql'`. */
  connectionRate?: { perSecond: number; burst: number };
  /** Told about each refusal or limit error behind the door (the demo logs them); also in `refusals`. */
  onRefusal?: (record: RefusalRecord) => void;
  /** Port on 127.0.0.1 (default 0: any free port); a test restarts an endpoint on its old port. */
  port?: number;
  /**
   * How many entries `logins`, `cancels` and `refusals` each keep: the most recent ones (default
   * 10,000), so a long-running `demo` does not grow without bound.
   */
  maxRecords?: number;
}

export interface LoginRecord {
  user: string;
  action: string | null;
  token: string;
  ok: boolean;
  reason?: string;
  at: number;
  /** TLS started with a ClientHello (direct TLS), not after an SSLRequest. */
  direct: boolean;
}

export interface CancelRecord {
  tls: boolean;
  forwarded: boolean;
}

/** A refusal or limit error the endpoint had PostgreSQL raise (no SQL text: it may hold secrets). */
export interface RefusalRecord extends Refusal {
  user: string;
  at: number;
}

export interface DsqlEndpoint {
  host: '127.0.0.1';
  port: number;
  hostname: string;
  caPem: string;
  /** The most recent logins, cancels and refusals, oldest first (at most `maxRecords` each). */
  logins: LoginRecord[];
  cancels: CancelRecord[];
  refusals: RefusalRecord[];
  /** TCP connections accepted so far. */
  readonly connections: number;
  /** Client sockets currently open. */
  readonly sockets: number;
  /** Fault injection: refuse every new session after its StartupMessage (null clears). */
  setRejectAll(fault: { sqlstate: string; message: string } | null): void;
  /** Drop every live session abruptly, like DSQL's 60-minute cap (no error message). */
  dropAll(): void;
  close(): Promise<void>;
}

const PRE_AUTH_TIMEOUT_MS = 10_000;
/** Entries kept in each of `logins`, `cancels` and `refusals` unless `maxRecords` says otherwise. */
export const DEFAULT_MAX_RECORDS = 10_000;

/** Appends `record` and drops the oldest entries beyond `max` (in place: callers hold the array). */
function keepLast<T>(list: T[], record: T, max: number): void {
  list.push(record);
  if (list.length > max) list.splice(0, list.length - max);
}

function sessionId(): string {
  return randomBytes(13).toString('hex').slice(0, 26);
}

export async function startDsqlEndpoint(opts: DsqlEndpointOptions): Promise<DsqlEndpoint> {
  const now = opts.now ?? Date.now;
  const { cert, caPem } = await endpointCert(opts);
  const secureContext = createSecureContext({ cert: cert.certPem, key: cert.keyPem, minVersion: 'TLSv1.2' });

  const live = new Set<Socket>();
  const upstreams = new Set<Socket>();
  let connections = 0;
  let rejectAll: { sqlstate: string; message: string } | null = null;
  const logins: LoginRecord[] = [];
  const cancels: CancelRecord[] = [];
  const refusals: RefusalRecord[] = [];
  const ctx: Ctx = {
    opts,
    now,
    secureContext,
    logins,
    cancels,
    refusals,
    maxRecords: opts.maxRecords ?? DEFAULT_MAX_RECORDS,
    upstreams,
    dsqlRules: (opts.rules ?? 'dsql') === 'dsql',
    getRejectAll: () => rejectAll,
    openSessions: () => live.size,
    takeConnectToken: connectTokenBucket(now, opts.connectionRate ?? { perSecond: 100, burst: 1000 }),
  };

  const server: Server = createServer((raw) => {
    connections++;
    live.add(raw);
    raw.on('close', () => live.delete(raw));
    raw.on('error', () => {});
    raw.setNoDelay(true);
    serve(ctx, raw).catch(() => raw.destroy());
  });
  const port = await listen(server, opts.port ?? 0);

  let closing: Promise<void> | undefined;
  const dropAll = (): void => {
    for (const s of live) s.destroy();
    for (const s of upstreams) s.destroy();
  };
  return {
    host: '127.0.0.1',
    port,
    hostname: opts.hostname,
    caPem,
    logins,
    cancels,
    refusals,
    get connections() {
      return connections;
    },
    get sockets() {
      return live.size;
    },
    setRejectAll(fault) {
      rejectAll = fault;
    },
    dropAll,
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        dropAll();
      });
      return closing;
    },
  };
}

/** The server certificate given, or a fresh CA and a certificate for the hostname. */
async function endpointCert(opts: DsqlEndpointOptions): Promise<{ cert: LocalCert; caPem: string }> {
  if (!opts.cert) {
    const ca = await createCa('dsql-proxy local endpoint CA');
    return { cert: await issueCert(ca, { hostnames: [opts.hostname] }), caPem: ca.certPem };
  }
  if (!opts.caPem) throw new Error('startDsqlEndpoint: caPem is required with cert');
  return { cert: opts.cert, caPem: opts.caPem };
}

/**
 * DSQL's token bucket for new connections: refills at perSecond, holds at most burst. A clock moved
 * backwards (tests move it) refills nothing and takes nothing away. Returns "take one token".
 */
function connectTokenBucket(now: () => number, rate: { perSecond: number; burst: number }): () => boolean {
  const bucket = { tokens: rate.burst, at: now() };
  return () => {
    const t = now();
    const elapsed = Math.max(0, t - bucket.at);
    bucket.tokens = Math.min(rate.burst, bucket.tokens + (elapsed / 1000) * rate.perSecond);
    bucket.at = t;
    if (bucket.tokens < 1) return false;
    bucket.tokens -= 1;
    return true;
  };
}

/** Listens on 127.0.0.1 and returns the port. */
async function listen(server: Server, port: number): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  const addr = server.address();
  return typeof addr === 'object' && addr ? addr.port : 0;
}

interface Ctx {
  opts: DsqlEndpointOptions;
  now: () => number;
  secureContext: SecureContext;
  logins: LoginRecord[];
  cancels: CancelRecord[];
  refusals: RefusalRecord[];
  maxRecords: number;
  upstreams: Set<Socket>;
  dsqlRules: boolean;
  getRejectAll(): { sqlstate: string; message: string } | null;
  openSessions(): number;
  takeConnectToken(): boolean;
}

/** Sends a FATAL ErrorResponse (with DSQL's `Session Id` detail) and closes. */
function fatal(sock: Socket, code: string, message: string): void {
  if (sock.destroyed) return;
  sock.end(
    errorResponse({ severity: 'FATAL', sqlstate: code, message, detail: `Session Id: ${sessionId()}` }),
  );
  setTimeout(() => sock.destroy(), 1000).unref();
}

const closedByPeer = (): Error => new Error('connection closed by peer');
const loginTimedOut = (): Error => new Error('login timed out');

/**
 * One client connection, step by step: TLS (after an SSLRequest or direct), the StartupMessage
 * (SNI, cancel, protocol version), admission (user, database, parameters, faults, quotas), the IAM
 * token, then the relay. Each step answers and closes a connection it refuses, and returns undefined.
 */
async function serve(ctx: Ctx, raw: Socket): Promise<void> {
  const deadline = socketDeadline(raw, PRE_AUTH_TIMEOUT_MS, loginTimedOut, { unref: true });
  const tls = await openTls(ctx, raw);
  if (!tls) return;
  const { tlsSock, direct } = tls;
  const tlsFrames = new FrameStream(tlsSock, closedByPeer);
  const params = await readStartup(ctx, tlsSock, tlsFrames);
  if (!params) return;
  const user = admit(ctx, tlsSock, params);
  if (user === undefined) return;
  const identity = await authenticate(ctx, tlsSock, tlsFrames, user, direct);
  if (!identity) return;

  const pending = tlsFrames.detach();
  deadline.clear();
  await relay(ctx, tlsSock, raw, params, pending, { user, arn: identity.arn });
}

/**
 * TLS on `raw`, started by a ClientHello (direct) or after an SSLRequest; what asks for anything
 * else (a plaintext StartupMessage, CancelRequest or GSSENCRequest) is answered and closed.
 */
async function openTls(ctx: Ctx, raw: Socket): Promise<{ tlsSock: TLSSocket; direct: boolean } | undefined> {
  const frames = new FrameStream(raw, closedByPeer);
  const first = await frames.peekByte();
  let tlsSock: TLSSocket;
  let direct = false;
  if (first === TLS_HANDSHAKE_RECORD) {
    // Direct TLS (PG17 `sslnegotiation=direct`, the AWS JDBC connector's default): a ClientHello.
    direct = true;
    raw.unshift(frames.detach());
    tlsSock = await startTls(ctx, raw);
  } else {
    // A bad length rejects here (the connection is then dropped, as for any failure in serve).
    const body = await frames.nextUntyped(10_000);
    if (body.length < 4) return void raw.destroy();
    const code = body.readInt32BE(0);
    if (code === SSL_REQUEST_CODE && body.length === 4) {
      // Bytes queued behind the SSLRequest would be read as if they came over TLS
      // (CVE-2021-23214/23222 class): PostgreSQL refuses them, and so do we.
      if (frames.detach().length > 0) return void raw.destroy();
      raw.write('S');
      tlsSock = await startTls(ctx, raw);
    } else if (code === CANCEL_REQUEST_CODE) {
      // DSQL requires TLS for everything; a plaintext cancel is dropped.
      keepLast(ctx.cancels, { tls: false, forwarded: false }, ctx.maxRecords);
      return void raw.destroy();
    } else {
      // Plaintext StartupMessage (or GSSENCRequest): TLS is mandatory.
      if (code === GSSENC_REQUEST_CODE) return void raw.end('N');
      return void fatal(raw, SQLSTATE_AUTH, MSG_SSL_MANDATORY);
    }
  }

  tlsSock.on('error', () => {});
  // PG17 direct TLS requires ALPN `postgresql`; over SSLRequest it is optional but must match if sent.
  const alpn = tlsSock.alpnProtocol;
  if ((direct && alpn !== 'postgresql') || (alpn && alpn !== 'postgresql')) return void tlsSock.destroy();
  return { tlsSock, direct };
}

/**
 * The first message over TLS: a CancelRequest is forwarded (with the right SNI) and the connection
 * closed; a StartupMessage of protocol 3.0 with the right SNI yields its parameters.
 */
async function readStartup(
  ctx: Ctx,
  tlsSock: TLSSocket,
  tlsFrames: FrameStream,
): Promise<Map<string, string> | undefined> {
  const body = await tlsFrames.nextUntyped(MAX_STARTUP_PACKET_LENGTH);
  let packet: ReturnType<typeof decodeStartupPacket>;
  try {
    packet = decodeStartupPacket(body);
  } catch {
    return void fatal(tlsSock, '08P01', 'invalid startup packet layout');
  }
  // SNI first, for a CancelRequest too: DSQL accepts nothing over TLS without the cluster's name.
  const servername = tlsSock.servername;
  const sniError = !servername
    ? MSG_NO_SNI
    : servername.toLowerCase() !== ctx.opts.hostname.toLowerCase()
      ? MSG_SNI_MISMATCH
      : undefined;
  if (packet.kind === 'cancel') {
    // A cancel gets no answer either way; without the right SNI it is not forwarded.
    if (sniError) keepLast(ctx.cancels, { tls: true, forwarded: false }, ctx.maxRecords);
    else await forwardCancel(ctx, Buffer.concat([lengthPrefix(body.length + 4), body]));
    return void tlsSock.destroy();
  }
  if (sniError) return void fatal(tlsSock, SQLSTATE_AUTH, sniError);
  if (packet.kind !== 'startup' || packet.minor !== 0) {
    const code = body.readInt32BE(0);
    return void fatal(tlsSock, '0A000', `unsupported frontend protocol ${code >> 16}.${code & 0xffff}`);
  }
  return packet.params;
}

/**
 * What DSQL checks before asking for the token: a user, database `postgres`, only parameters DSQL
 * accepts (strict mode), then the fault toggle and the connection quotas. Returns the user.
 */
function admit(ctx: Ctx, tlsSock: TLSSocket, params: Map<string, string>): string | undefined {
  const user = params.get('user');
  if (!user) return void fatal(tlsSock, SQLSTATE_AUTH, 'no PostgreSQL user name specified in startup packet');
  // Like libpq/PostgreSQL, an absent database defaults to the user name; DSQL only has `postgres`.
  const database = params.get('database') || user;
  if (database !== 'postgres') return void fatal(tlsSock, '3D000', `database "${database}" does not exist`);
  if (ctx.opts.strictStartupParams ?? (ctx.opts.rules ?? 'dsql') === 'dsql') {
    for (const key of params.keys()) {
      if (key !== 'user' && key !== 'database' && !isDsqlSettableParam(key)) {
        return void fatal(tlsSock, '0A000', `setting configuration parameter "${key}" not supported`);
      }
    }
  }
  const fault = ctx.getRejectAll();
  if (fault) return void fatal(tlsSock, fault.sqlstate, fault.message);
  if (ctx.dsqlRules) {
    // This connection is one of the open sockets already: more than the limit means one too many.
    if (ctx.openSessions() > (ctx.opts.maxConnections ?? 10_000)) {
      return void fatal(tlsSock, '53300', MSG_TOO_MANY_CONNECTIONS);
    }
    if (!ctx.takeConnectToken()) return void fatal(tlsSock, '53400', MSG_RATE_EXCEEDED);
  }
  return user;
}

/**
 * Asks for the IAM token (a cleartext password, inside TLS), verifies it and the role rule, and
 * records the login. Returns the ARN of the identity that signed it.
 */
async function authenticate(
  ctx: Ctx,
  tlsSock: TLSSocket,
  tlsFrames: FrameStream,
  user: string,
  direct: boolean,
): Promise<{ arn: string } | undefined> {
  tlsSock.write(authenticationCleartextPassword());
  const msg = await tlsFrames.nextTyped(64 * 1024);
  if (msg.type !== FrontendMessage.Password)
    return void fatal(tlsSock, '08P01', 'expected password response');
  const token = msg.body.toString('utf8').replace(/\0$/, '');
  const at = ctx.now();
  const result = verifyDsqlToken(token, {
    hostname: ctx.opts.hostname,
    region: ctx.opts.region,
    credentials: ctx.opts.credentials,
    nowMs: at,
  });
  let reason = result.ok ? undefined : result.reason;
  // Role rule: `admin` needs DbConnectAdmin, every other role DbConnect. An admin token for a
  // non-admin role: DSQL's behaviour is unknown, we reject (the proxy must pick the right action).
  if (result.ok) {
    const needed = user === 'admin' ? 'DbConnectAdmin' : 'DbConnect';
    if (result.action !== needed) reason = `role ${user} requires ${needed}, got ${result.action}`;
  }
  keepLast(
    ctx.logins,
    { user, action: result.action, token, ok: reason === undefined, reason, at, direct },
    ctx.maxRecords,
  );
  if (reason !== undefined) return void fatal(tlsSock, SQLSTATE_AUTH, MSG_ACCESS_DENIED);
  const signer = result.ok
    ? credentialsList(ctx.opts.credentials).find((c) => c.accessKeyId === result.accessKeyId)
    : undefined;
  return { arn: signer ? identityArn(signer) : '' };
}

function credentialsList(c: SigningCredentials | SigningCredentials[]): SigningCredentials[] {
  return Array.isArray(c) ? c : [c];
}

function lengthPrefix(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n);
  return b;
}

function startTls(ctx: Ctx, raw: Socket): Promise<TLSSocket> {
  const tlsSock = new TLSSocket(raw, {
    isServer: true,
    secureContext: ctx.secureContext,
    ALPNProtocols: ['postgresql'],
  });
  return new Promise((resolve, reject) => {
    tlsSock.once('secure', () => resolve(tlsSock));
    tlsSock.once('error', (err) => {
      raw.destroy();
      reject(err);
    });
    tlsSock.once('close', () => reject(new Error('closed during TLS handshake')));
  });
}

async function forwardCancel(ctx: Ctx, packet: Buffer): Promise<void> {
  const record: CancelRecord = { tls: true, forwarded: false };
  keepLast(ctx.cancels, record, ctx.maxRecords);
  await new Promise<void>((resolve) => {
    const up = netConnect(ctx.opts.postgres.port, ctx.opts.postgres.host);
    up.on('error', () => resolve());
    up.on('close', () => resolve());
    up.on('connect', () => {
      up.end(packet);
      record.forwarded = true;
    });
    // PostgreSQL closes the cancel connection without replying.
    up.setTimeout(5000, () => up.destroy());
  });
}

/**
 * Opens the backend session with the client's parameters, then relays: message by message through
 * BehindDoor with `rules: 'dsql'`, bytes as they come with `'postgres'`.
 */
async function relay(
  ctx: Ctx,
  client: TLSSocket,
  raw: Socket,
  params: Map<string, string>,
  pending: Buffer,
  session: { user: string; arn: string },
): Promise<void> {
  const up = netConnect(ctx.opts.postgres.port, ctx.opts.postgres.host);
  ctx.upstreams.add(up);
  up.setNoDelay(true);
  const connected = await new Promise<boolean>((resolve) => {
    up.once('connect', () => resolve(true));
    up.once('error', () => resolve(false));
  });
  up.on('error', () => {});
  up.on('close', () => ctx.upstreams.delete(up));
  if (!connected) return fatal(client, '08006', 'unable to accept connection, backend unavailable');

  const startup: Record<string, string> = { ...Object.fromEntries(params), database: 'postgres' };
  if (ctx.dsqlRules) {
    // DSQL's only isolation level is snapshot isolation, PostgreSQL's REPEATABLE READ: concurrent
    // writers of a row then fail with 40001. Set per session (not for the server), so an endpoint
    // with `rules: 'postgres'` on the same PostgreSQL stays plain.
    startup.default_transaction_isolation = 'repeatable read';
  }
  up.write(frontendStartup(startup));
  if (ctx.dsqlRules) {
    const door = new BehindDoor({
      limits: { ...DSQL_LIMITS, ...ctx.opts.limits },
      arn: session.arn,
      now: ctx.now,
      onRefusal: (r) => {
        const record: RefusalRecord = {
          sqlstate: r.sqlstate,
          message: r.message,
          user: session.user,
          at: ctx.now(),
        };
        keepLast(ctx.refusals, record, ctx.maxRecords);
        ctx.opts.onRefusal?.(record);
      },
    });
    relayBehindDoor(client, up, door, pending);
    client.on('end', () => up.end());
    up.on('end', () => client.end());
  } else {
    if (pending.length > 0) up.write(pending);
    client.pipe(up);
    up.pipe(client);
  }
  // An orderly end is propagated (pipe() or above); an abrupt close tears down the other side too.
  client.on('close', () => (client.readableEnded ? up.end() : up.destroy()));
  up.on('close', () => {
    if (!client.destroyed) client.end();
    setTimeout(() => raw.destroy(), 1000).unref();
  });
  const maxConnectionMs = ctx.opts.maxConnectionMs ?? (ctx.dsqlRules ? 60 * 60_000 : undefined);
  if (maxConnectionMs) {
    const t = setTimeout(() => {
      client.destroy();
      up.destroy();
    }, maxConnectionMs);
    t.unref();
    client.on('close', () => clearTimeout(t));
  }
}
