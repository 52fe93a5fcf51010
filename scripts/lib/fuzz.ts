/**
 * The connection fuzzer's core, shared by `scripts/fuzz.ts` (long runs) and
 * test/integration/fuzz.test.ts (a short run in `npm test`).
 *
 * It starts the test stack and the real proxy process (SCRAM user, --login-timeout 2s), then opens
 * many concurrent connections and sends each a random or mutated byte stream: valid prefixes
 * (SSLRequest, GSSENCRequest, StartupMessage, SASL messages, PasswordMessage, CancelRequest, queries
 * after a real SCRAM login) with corruptions (bit flips, truncation, duplicated and removed bytes,
 * hostile lengths up to 2^31-1), split at random points with random delays; truncated TLS ClientHellos;
 * garbage. Throughout and after, it checks that the proxy process is alive and logs no crash, that a
 * normal node-postgres client keeps working, and that the proxy's RSS returns near its baseline.
 *
 * The streams are a function of the seed; timings (and so some answers) are not.
 */
import net from 'node:net';
import pg from 'pg';
import { createScramVerifier } from '../../src/auth/scram.js';
import {
  countFailures,
  GC_NODE_ARGS,
  HEAP_SLACK_MB,
  liveObjects,
  type Memory,
  memoryAfterGc,
  memoryFailures,
  rssBytes,
  settledMemory,
} from '../../test/support/proxy-memory.js';
import { type ProxyProcess, startProxyProcess, writeAuthFile } from '../../test/support/proxy-process.js';
import { clientFinalMessage, clientFirstMessage } from '../../test/support/scram-client.js';
import { startTestStack, type TestStack } from '../../test/support/stack.js';

export interface FuzzOptions {
  count: number;
  seed: number;
  /** Connections in flight at once. */
  concurrency?: number;
  /** Of those, at most this many logged in (each holds an upstream connection). */
  loginConcurrency?: number;
  /** A normal client logs in and runs a query this often. */
  probeIntervalMs?: number;
  /** Streams (from another seed) run before the RSS baseline is taken; default min(2000, count). */
  warmup?: number;
  /** Wait after the run before the last RSS reading. */
  settleMs?: number;
  /** Allowed RSS growth over the baseline, after settling. */
  rssSlackBytes?: number;
  /** Progress lines. */
  log?: (line: string) => void;
}

export interface FuzzReport {
  seed: number;
  streams: number;
  byCategory: Record<string, number>;
  /** What the proxy answered, by the last thing it said: `E:<SQLSTATE>`, `ready` (a session), `closed`... */
  answers: Record<string, number>;
  answersByCategory: Record<string, Record<string, number>>;
  probes: { ok: number; failed: number };
  /** start: after a few normal logins; baseline: after the warm-up streams. */
  rss: { start: number; baseline: number; peak: number; after: number };
  /** After a full GC in the proxy: at the baseline and after the run (MB). */
  gc: { baseline: Memory; after: Memory };
  /** Live per-connection objects by class at the end (heap snapshot). */
  liveObjects: Record<string, number>;
  durationMs: number;
  /** Log lines at error level and above, by event. */
  errorLogs: Record<string, number>;
  /**
   * Who got in, over the whole run (warm-up included). `allowed`: logins made with the password sent
   * unchanged (normal-client probes, `session` streams, `sasl-response` streams left intact);
   * `hostileAuthenticated`: streams without the password that saw AuthenticationOk or ReadyForQuery;
   * `proxyAuthenticated`: the proxy's `authenticated` log lines; `upstreamLogins`: successful logins
   * at the endpoint.
   */
  logins: {
    allowed: number;
    hostileAuthenticated: number;
    proxyAuthenticated: number;
    upstreamLogins: number;
  };
  /** Every failed check; empty means the run passed. */
  failures: string[];
}

// ------------------------------------------------------------------------------------------------
// Deterministic randomness (mulberry32): the same seed gives the same streams.

class Rng {
  private state: number;
  constructor(seed: number) {
    this.state = seed >>> 0;
  }
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(maxExclusive: number): number {
    return Math.floor(this.next() * maxExclusive);
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }
  bytes(n: number): Buffer {
    const out = Buffer.allocUnsafe(n);
    for (let i = 0; i < n; i++) out[i] = this.int(256);
    return out;
  }
  text(maxLength: number, alphabet = 'abcdefghijklmnopqrstuvwxyz_0123456789'): string {
    let s = '';
    const n = this.int(maxLength + 1);
    for (let i = 0; i < n; i++) s += alphabet[this.int(alphabet.length)];
    return s;
  }
}

// ------------------------------------------------------------------------------------------------
// Messages, laid out here by hand so the fuzzer does not share code with what it tests.

const int32 = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n | 0, 0);
  return b;
};
const cstr = (s: string): Buffer => Buffer.from(`${s}\0`, 'utf8');
const untyped = (...parts: Buffer[]): Buffer => {
  const body = Buffer.concat(parts);
  return Buffer.concat([int32(body.length + 4), body]);
};
const typed = (type: string, ...parts: Buffer[]): Buffer => {
  const body = Buffer.concat(parts);
  return Buffer.concat([Buffer.from(type, 'latin1'), int32(body.length + 4), body]);
};

const SSL_REQUEST = untyped(int32(80877103));
const GSSENC_REQUEST = untyped(int32(80877104));

function startup(params: Array<[string, string]>, version = 196608): Buffer {
  return untyped(
    int32(version),
    ...params.map(([k, v]) => Buffer.concat([cstr(k), cstr(v)])),
    Buffer.from([0]),
  );
}

function saslInitial(mechanism: string, data: Buffer): Buffer {
  return typed('p', cstr(mechanism), int32(data.length), data);
}

const HOSTILE_LENGTHS = [-(2 ** 31), -1, 0, 1, 3, 4, 5, 9999, 10000, 10001, 65535, 65536, 2 ** 31 - 1];

/** One random corruption of a copy of `buf`. */
function corrupt(rng: Rng, buf: Buffer): Buffer {
  if (buf.length === 0) return rng.bytes(rng.int(8));
  const at = rng.int(buf.length);
  switch (rng.int(6)) {
    case 0: {
      const out = Buffer.from(buf);
      out[at] = out[at]! ^ (1 << rng.int(8));
      return out;
    }
    case 1:
      return buf.subarray(0, at);
    case 2:
      return Buffer.concat([buf.subarray(0, at + 1), buf.subarray(at)]);
    case 3:
      return Buffer.concat([buf.subarray(0, at), buf.subarray(at + 1)]);
    case 4:
      return Buffer.concat([buf.subarray(0, at), rng.bytes(1 + rng.int(8)), buf.subarray(at)]);
    default: {
      // A hostile length written over any 4 bytes (a length field or not).
      const out = Buffer.concat([buf, Buffer.alloc(4)]);
      const pos = Math.min(at, buf.length);
      out.writeInt32BE(rng.chance(0.7) ? rng.pick(HOSTILE_LENGTHS) : rng.int(2 ** 31), pos);
      return out.subarray(0, Math.max(buf.length, pos + 4));
    }
  }
}

function corruptN(rng: Rng, buf: Buffer, max = 3): Buffer {
  let out = buf;
  const n = 1 + rng.int(max);
  for (let i = 0; i < n; i++) out = corrupt(rng, out);
  return out;
}

const PARAM_NAMES = [
  'user',
  'database',
  'application_name',
  'client_encoding',
  'options',
  'statement_timeout',
  'replication',
  '_pq_.protocol_managed_params',
  'TimeZone',
  'search_path',
  '',
];

function randomParams(rng: Rng, user: string | undefined): Array<[string, string]> {
  const params: Array<[string, string]> = [];
  if (user !== undefined) params.push(['user', user]);
  const n = rng.int(5);
  for (let i = 0; i < n; i++) {
    const name = rng.chance(0.7) ? rng.pick(PARAM_NAMES) : rng.text(12);
    const value =
      name === 'options'
        ? rng.pick(['-c search_path=x', '-c statement_timeout=5', '--x=', '\\ '])
        : rng.text(20);
    params.push([name, value]);
  }
  return params;
}

function randomStartup(rng: Rng, user = rng.pick(['admin', 'nobody', '', rng.text(8)])): Buffer {
  const version = rng.chance(0.85)
    ? 196608
    : rng.pick([196610, 131072, 0x30000 | 0xffff, 0x40000, rng.int(2 ** 31)]);
  return startup(randomParams(rng, rng.chance(0.9) ? user : undefined), version);
}

function clientHello(rng: Rng): Buffer {
  // TLS record header (handshake, TLS 1.0 record version), a ClientHello header, then noise; cut short.
  const body = Buffer.concat([
    Buffer.from([0x01, 0x00, 0x01, 0xfc, 0x03, 0x03]),
    rng.bytes(32 + rng.int(200)),
  ]);
  const record = Buffer.concat([
    Buffer.from([0x16, 0x03, 0x01]),
    Buffer.from([body.length >> 8, body.length & 0xff]),
    body,
  ]);
  return record.subarray(0, 1 + rng.int(record.length));
}

const QUERIES = [
  'SELECT 1',
  'SELECT $1::int',
  'BEGIN',
  'COMMIT',
  'ROLLBACK',
  'SET search_path TO public',
  "SELECT repeat('x', 1000)",
  'SELECT now()',
  '',
];

/**
 * What the compatibility layer (src/compat) takes over, alone and among DSQL's statements, so its
 * request runners see split, mutated and pipelined requests (the gate asks about the first message
 * of each; PREPARE/EXECUTE and extended-protocol SETs make virtual statements).
 */
const COMPAT_QUERIES = [
  ...QUERIES,
  'SET statement_timeout = 1000',
  "SET statement_timeout = 'abc'",
  'SET LOCAL client_min_messages = warning',
  'SHOW statement_timeout',
  'RESET ALL',
  'BEGIN; SET statement_timeout = 5; ROLLBACK',
  'SELECT 1; SET idle_in_transaction_session_timeout = 0; SELECT 2',
  "SELECT set_config('statement_timeout', '7', false)",
  'BEGIN ISOLATION LEVEL SERIALIZABLE',
  'SET TRANSACTION READ ONLY',
  'PREPARE p1 AS SELECT $1::int',
  'EXECUTE p1(1)',
  'DEALLOCATE ALL',
  'DISCARD ALL',
  'LOCK TABLE t IN ACCESS SHARE MODE',
];

function queryTraffic(rng: Rng, pool: readonly string[] = QUERIES): Buffer {
  const parts: Buffer[] = [];
  const n = 1 + rng.int(4);
  for (let i = 0; i < n; i++) {
    const sql = rng.pick(pool);
    if (rng.chance(0.5)) {
      parts.push(typed('Q', cstr(sql)));
    } else {
      const name = rng.chance(0.5) ? '' : `s${rng.int(5)}`;
      parts.push(
        typed('P', cstr(name), cstr(sql), Buffer.from([0, 0])),
        typed(
          'B',
          cstr(''),
          cstr(name),
          Buffer.from([0, 0]),
          sql.includes('$1')
            ? Buffer.concat([Buffer.from([0, 1]), int32(1), Buffer.from('7')])
            : Buffer.from([0, 0]),
          Buffer.from([0, 0]),
        ),
        typed('D', Buffer.from('P'), cstr('')),
        typed('E', cstr(''), int32(0)),
        typed('S'),
      );
      if (name && rng.chance(0.5)) parts.push(typed('C', Buffer.from('S'), cstr(name)), typed('S'));
    }
  }
  if (rng.chance(0.3)) parts.push(typed('X'));
  return Buffer.concat(parts);
}

// ------------------------------------------------------------------------------------------------
// Streams

/** What to send: a static stream, or (for categories that need the server's answers) a script. */
type Plan =
  | { category: string; kind: 'static'; data: Buffer; lingerMs: number }
  | { category: string; kind: 'sasl-response'; mutate: (final: Buffer) => Buffer }
  | { category: string; kind: 'session'; traffic: Buffer };

const CATEGORIES = [
  'garbage',
  'tls-hello',
  'ssl',
  'gssenc',
  'startup',
  'startup-oversized',
  'sasl-initial',
  'password',
  'cancel',
  'sasl-response',
  'session',
  'compat-session',
] as const;

/** Streams that need a real login (and an upstream connection) are rarer: they are slower. */
const NEEDS_LOGIN = new Set<string>(['sasl-response', 'session', 'compat-session']);
const WEIGHTED = CATEGORIES.flatMap((c) => Array<string>(NEEDS_LOGIN.has(c) ? 1 : 5).fill(c));

/** The generator of stream `index`: each stream has its own, so it is the same whatever the timing. */
function streamRng(seed: number, index: number): Rng {
  return new Rng((seed ^ Math.imul(index + 1, 0x9e3779b1)) >>> 0);
}

function plan(rng: Rng, user: string): Plan {
  const category = rng.pick(WEIGHTED);
  // A few streams stay silent past --login-timeout, to see the proxy's own timeout.
  const lingerMs = rng.chance(0.005) ? 3000 : 0;
  const s = (data: Buffer): Plan => ({ category, kind: 'static', data, lingerMs });
  const maybe = (buf: Buffer, p = 0.7): Buffer => (rng.chance(p) ? corruptN(rng, buf) : buf);
  switch (category) {
    case 'garbage':
      return s(rng.bytes(1 + rng.int(rng.chance(0.1) ? 20000 : 300)));
    case 'tls-hello':
      return s(clientHello(rng));
    case 'ssl':
      return s(
        maybe(Buffer.concat([SSL_REQUEST, rng.chance(0.7) ? randomStartup(rng) : Buffer.alloc(0)]), 0.5),
      );
    case 'gssenc':
      return s(
        maybe(
          Buffer.concat([
            GSSENC_REQUEST,
            rng.chance(0.5) ? SSL_REQUEST : Buffer.alloc(0),
            rng.chance(0.7) ? randomStartup(rng) : Buffer.alloc(0),
          ]),
          0.5,
        ),
      );
    case 'startup':
      return s(maybe(randomStartup(rng), 0.6));
    case 'startup-oversized': {
      const typedAfter = rng.chance(0.5);
      const header = typedAfter
        ? Buffer.concat([Buffer.from('p'), int32(rng.pick(HOSTILE_LENGTHS))])
        : int32(rng.pick(HOSTILE_LENGTHS));
      const prefix = typedAfter ? randomStartup(rng, user) : Buffer.alloc(0);
      return s(Buffer.concat([prefix, header, rng.bytes(rng.int(rng.chance(0.2) ? 70000 : 100))]));
    }
    case 'sasl-initial': {
      const first = clientFirstMessage(
        rng.text(24, 'abcdefghijklmnopqrstuvwxyzABCDEF0123456789+/'),
        rng.pick(['n,,', 'y,,', 'p=tls-server-end-point,,', 'n,a=x,']),
      );
      const mech = rng.chance(0.9) ? 'SCRAM-SHA-256' : rng.pick(['SCRAM-SHA-256-PLUS', 'PLAIN', '']);
      return s(Buffer.concat([randomStartup(rng, user), maybe(saslInitial(mech, Buffer.from(first)), 0.8)]));
    }
    case 'password':
      return s(Buffer.concat([randomStartup(rng, user), maybe(typed('p', cstr(rng.text(30))), 0.5)]));
    case 'cancel': {
      const keyLength = rng.chance(0.7) ? 4 : rng.int(300);
      return s(maybe(untyped(int32(80877102), int32(rng.int(2 ** 31)), rng.bytes(keyLength)), 0.4));
    }
    case 'sasl-response':
      return {
        category,
        kind: 'sasl-response',
        mutate: (final) => (rng.chance(0.9) ? corruptN(rng, final) : final),
      };
    case 'compat-session':
      return { category, kind: 'session', traffic: maybe(queryTraffic(rng, COMPAT_QUERIES), 0.5) };
    default:
      return { category, kind: 'session', traffic: maybe(queryTraffic(rng), 0.7) };
  }
}

/** Splits data at random points (at most 6 pieces), with a random delay before each piece. */
function pieces(rng: Rng, data: Buffer): Array<{ delay: number; data: Buffer }> {
  if (data.length === 0) return [];
  const cuts = Array.from({ length: rng.int(6) }, () => rng.int(data.length + 1)).sort((a, b) => a - b);
  const out: Array<{ delay: number; data: Buffer }> = [];
  let prev = 0;
  for (const cut of [...cuts, data.length]) {
    if (cut > prev) out.push({ delay: rng.chance(0.6) ? 0 : rng.int(15), data: data.subarray(prev, cut) });
    prev = Math.max(prev, cut);
  }
  return out;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** ReadyForQuery's type and length. */
const READY_HEADER = Buffer.from([0x5a, 0, 0, 0, 5]);
/** AuthenticationOk, whole. */
const AUTH_OK = Buffer.from([0x52, 0, 0, 0, 8, 0, 0, 0, 0]);

/** A client connection that collects what the server says and reads typed messages off it. */
class Conn {
  readonly socket: net.Socket;
  /** Everything received (the proxy says little to a hostile client; capped all the same). */
  private received = Buffer.alloc(0);
  /** Read position of nextMessage(), for the scripted logins (which send no SSLRequest). */
  private offset = 0;
  closed = false;
  private wake: (() => void) | undefined;
  readonly connected: Promise<boolean>;

  constructor(host: string, port: number) {
    this.socket = net.connect({ host, port });
    this.socket.setNoDelay(true);
    this.connected = new Promise((resolve) => {
      this.socket.once('connect', () => resolve(true));
      this.socket.once('error', () => resolve(false));
    });
    this.socket.on('data', (chunk: Buffer) => {
      if (this.received.length < 1 << 18) this.received = Buffer.concat([this.received, chunk]);
      this.wake?.();
    });
    this.socket.on('error', () => {});
    this.socket.on('close', () => {
      this.closed = true;
      this.wake?.();
    });
  }

  /** Waits until `pred` holds, the connection closes, or `ms` pass. Returns pred(). */
  async waitFor(pred: () => boolean, ms: number): Promise<boolean> {
    const deadline = Date.now() + ms;
    while (!pred() && !this.closed) {
      const left = deadline - Date.now();
      if (left <= 0) break;
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
      this.wake = undefined;
    }
    return pred();
  }

  private nextMessage(): { type: string; body: Buffer } | undefined {
    if (this.received.length - this.offset < 5) return undefined;
    const length = this.received.readInt32BE(this.offset + 1);
    if (length < 4 || this.received.length - this.offset < 1 + length) return undefined;
    const type = String.fromCharCode(this.received[this.offset]!);
    const body = this.received.subarray(this.offset + 5, this.offset + 1 + length);
    this.offset += 1 + length;
    return { type, body };
  }

  /** Waits for a message of `type`; gives up on an ErrorResponse, a close, or after `ms`. */
  async waitMessage(type: string, ms: number): Promise<{ type: string; body: Buffer } | undefined> {
    let found: { type: string; body: Buffer } | undefined;
    let failed = false;
    await this.waitFor(() => {
      for (let m = this.nextMessage(); m; m = this.nextMessage()) {
        if (m.type === type) {
          found = m;
          return true;
        }
        if (m.type === 'E') failed = true;
      }
      return failed;
    }, ms);
    return found;
  }

  /**
   * The last thing the server said that matters, from the raw bytes: an ErrorResponse's SQLSTATE (the
   * proxy and PostgreSQL both start with S, V, C), else whether a session became ready.
   */
  answer(): string | undefined {
    const text = this.received.toString('latin1').replaceAll('\0', '|');
    const codes = [...text.matchAll(/S(?:FATAL|ERROR|PANIC)\|V(?:FATAL|ERROR|PANIC)\|C([0-9A-Z]{5})\|/g)];
    if (codes.length > 0) return `E:${codes.at(-1)![1]}`;
    if (this.received.includes(READY_HEADER)) return 'ready';
    if (text.startsWith('N') && text.length <= 2) return 'ssl-N';
    return undefined;
  }

  /** Whether the server ever said AuthenticationOk or ReadyForQuery: the client got in. */
  authenticated(): boolean {
    return this.received.includes(AUTH_OK) || this.received.includes(READY_HEADER);
  }

  async send(rng: Rng, data: Buffer): Promise<void> {
    for (const piece of pieces(rng, data)) {
      if (this.closed) return;
      if (piece.delay > 0) await sleep(piece.delay);
      if (this.closed) return;
      this.socket.write(piece.data);
    }
  }

  destroy(): void {
    this.socket.destroy();
  }
}

interface StreamResult {
  category: string;
  answer: string;
  /** The stream logged in with the password, sent unchanged: it may get in. */
  allowed: boolean;
  /** The server said AuthenticationOk or ReadyForQuery. */
  authenticated: boolean;
}

/** A client-final-message with its proof decoded and encoded again (base64 has spare bits). */
function canonicalFinal(m: Buffer): string {
  return m
    .toString('latin1')
    .replace(/,p=([A-Za-z0-9+/=]*)$/, (_, p: string) => `,p=${Buffer.from(p, 'base64').toString('base64')}`);
}

/** How long a stream waits for the proxy to answer or close after its last byte. */
const QUIET_MS = 250;

async function runStream(
  rng: Rng,
  p: Plan,
  host: string,
  port: number,
  password: string,
): Promise<StreamResult> {
  const conn = new Conn(host, port);
  let allowed = false;
  const finish = (forced: string | undefined): StreamResult => {
    const answer = conn.answer() ?? forced ?? (conn.closed ? 'closed' : 'left-open');
    return { category: p.category, answer, allowed, authenticated: conn.authenticated() };
  };
  try {
    if (!(await conn.connected)) return finish('connect-failed');
    if (p.kind === 'static') {
      await conn.send(rng, p.data);
      await conn.waitFor(() => false, QUIET_MS + p.lingerMs);
    } else {
      const user = 'admin';
      conn.socket.write(
        startup([
          ['user', user],
          ['database', 'postgres'],
        ]),
      );
      if (!(await conn.waitMessage('R', 5000))) return finish('login-failed');
      const nonce = rng.text(24, 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJ0123456789') || 'n';
      const first = clientFirstMessage(nonce);
      conn.socket.write(saslInitial('SCRAM-SHA-256', Buffer.from(first)));
      const cont = await conn.waitMessage('R', 5000);
      if (cont?.body.readInt32BE(0) !== 11) return finish('login-failed');
      const serverFirst = cont.body.subarray(4).toString('utf8');
      const final = Buffer.from(clientFinalMessage(password, first, serverFirst).message);
      if (p.kind === 'sasl-response') {
        const sent = p.mutate(final);
        allowed = canonicalFinal(sent) === canonicalFinal(final);
        await conn.send(rng, typed('p', sent));
        await conn.waitFor(() => false, QUIET_MS);
      } else {
        allowed = true;
        conn.socket.write(typed('p', final));
        // Login goes upstream (TLS, token, PostgreSQL): allow for a queue under load.
        if (!(await conn.waitMessage('Z', 15_000))) return finish('login-failed');
        await conn.send(rng, p.traffic);
        await conn.waitFor(() => false, QUIET_MS * 2);
      }
    }
    return finish(undefined);
  } finally {
    conn.destroy();
  }
}

// ------------------------------------------------------------------------------------------------
// The run

function rssOf(pid: number): number {
  return rssBytes(pid) || 0;
}

const inc = (rec: Record<string, number>, key: string, n = 1): void => {
  rec[key] = (rec[key] ?? 0) + n;
};

/** Logins made with the right password (probes and intact streams), counted as they start. */
let allowedLogins = 0;

async function probe(proxy: ProxyProcess, password: string): Promise<void> {
  allowedLogins++;
  const client = new pg.Client({
    host: proxy.host,
    port: proxy.port,
    user: 'admin',
    password,
    database: 'postgres',
    connectionTimeoutMillis: 20_000,
  });
  client.on('error', () => {});
  try {
    await client.connect();
    const r = await client.query('SELECT 41 + 1 AS answer');
    if (r.rows[0]?.answer !== 42) throw new Error(`unexpected result ${JSON.stringify(r.rows)}`);
  } finally {
    await client.end().catch(() => {});
  }
}

/** With a few normal sessions open, the leak check's counts must see them (see countFailures). */
async function openSessionsCounted(proxy: ProxyProcess, password: string): Promise<string[]> {
  const clients = Array.from(
    { length: 3 },
    () =>
      new pg.Client({ host: proxy.host, port: proxy.port, user: 'admin', password, database: 'postgres' }),
  );
  try {
    for (const c of clients) {
      c.on('error', () => {});
      allowedLogins++;
      await c.connect();
    }
    return countFailures(await liveObjects(proxy), clients.length);
  } finally {
    await Promise.all(clients.map((c) => c.end().catch(() => {})));
  }
}

/** Scans the proxy's log lines from `from` on for crashes; returns failure texts. */
function scanLogs(proxy: ProxyProcess, from: number, errorLogs: Record<string, number>): string[] {
  const failures: string[] = [];
  for (const line of proxy.logs.slice(from)) {
    if (line.json === undefined) {
      failures.push(`non-JSON output from the proxy (a crash trace?): ${line.raw.slice(0, 300)}`);
      continue;
    }
    const level = Number(line.json.level);
    const event = String(line.json.event ?? line.json.msg ?? '?');
    if (level >= 50) inc(errorLogs, event);
    if (event === 'session_crashed' || level >= 60 || /uncaught|unhandled/i.test(line.raw)) {
      failures.push(`proxy logged ${event}: ${line.raw.slice(0, 500)}`);
    }
  }
  return failures;
}

export async function runFuzz(opts: FuzzOptions): Promise<FuzzReport> {
  const log = opts.log ?? (() => {});
  const concurrency = opts.concurrency ?? 50;
  const loginConcurrency = opts.loginConcurrency ?? 15;
  const probeIntervalMs = opts.probeIntervalMs ?? 2000;
  const settleMs = opts.settleMs ?? 10_000;
  const rssSlack = opts.rssSlackBytes ?? 30 * 1024 * 1024;
  const failures: string[] = [];
  const report: FuzzReport = {
    seed: opts.seed,
    streams: 0,
    byCategory: {},
    answers: {},
    answersByCategory: {},
    probes: { ok: 0, failed: 0 },
    rss: { start: 0, baseline: 0, peak: 0, after: 0 },
    gc: { baseline: { rss: 0, heap: 0 }, after: { rss: 0, heap: 0 } },
    liveObjects: {},
    durationMs: 0,
    errorLogs: {},
    logins: { allowed: 0, hostileAuthenticated: 0, proxyAuthenticated: 0, upstreamLogins: 0 },
    failures,
  };
  allowedLogins = 0;

  const password = 'fuzz-admin-password';
  let stack: TestStack | undefined;
  let proxy: ProxyProcess | undefined;
  try {
    stack = await startTestStack();
    const authFile = writeAuthFile([['admin', createScramVerifier(password)]]);
    proxy = await startProxyProcess(stack, {
      args: ['--auth-file', authFile, '--login-timeout', '2s'],
      nodeArgs: GC_NODE_ARGS,
    });
    const pid = proxy.child.pid!;
    const p = proxy;

    let started = Date.now();
    let logFrom = 0;
    let record = false;
    /** Runs `count` streams of `seed`; `record` says whether they count in the report. */
    const batch = async (seed: number, count: number): Promise<void> => {
      // Two pools, so that streams waiting for a login slot never hold up the others.
      const queues: [number[], number[]] = [[], []];
      for (let index = 0; index < count; index++) {
        queues[NEEDS_LOGIN.has(streamRng(seed, index).pick(WEIGHTED)) ? 1 : 0].push(index);
      }
      const worker = async (queue: number[]): Promise<void> => {
        for (let index = queue.shift(); index !== undefined; index = queue.shift()) {
          if (p.child.exitCode !== null) return;
          const rng = streamRng(seed, index);
          const r = await runStream(rng, plan(rng, 'admin'), p.host, p.port, password);
          if (r.allowed) allowedLogins++;
          else if (r.authenticated) {
            report.logins.hostileAuthenticated++;
            failures.push(
              `a ${r.category} stream without the password (seed ${seed}, stream ${index}) got in`,
            );
          }
          if (!record) continue;
          report.streams++;
          inc(report.byCategory, r.category);
          inc(report.answers, r.answer);
          report.answersByCategory[r.category] ??= {};
          inc(report.answersByCategory[r.category]!, r.answer);
          if (report.streams % 5000 === 0) {
            log(
              `${report.streams} streams, ${((Date.now() - started) / 1000).toFixed(0)} s, RSS ${mb(rssOf(pid))}, probes ${report.probes.ok} ok / ${report.probes.failed} failed`,
            );
            failures.push(...scanLogs(p, logFrom, report.errorLogs));
            logFrom = p.logs.length;
          }
        }
      };
      await Promise.all([
        ...Array.from({ length: concurrency }, () => worker(queues[0])),
        ...Array.from({ length: loginConcurrency }, () => worker(queues[1])),
      ]);
    };

    // Warm up before the baseline: a normal client, then a batch of streams from another seed. Node
    // grows its heap to a working size on the first thousands of connections and keeps it; the check
    // is that memory does not keep growing with the number of streams, not that V8 hands pages back.
    for (let i = 0; i < 5; i++) await probe(p, password);
    report.rss.start = rssOf(pid);
    const warmup = opts.warmup ?? Math.min(2000, opts.count);
    await batch((opts.seed ^ 0x5a5a5a5a) >>> 0, warmup);
    await sleep(2000);
    report.rss.baseline = rssOf(pid);
    report.rss.peak = report.rss.baseline;
    const gcBaseline = await memoryAfterGc(p);
    report.gc.baseline = gcBaseline;
    log(
      `proxy pid ${pid} on ${p.host}:${p.port}, RSS ${mb(report.rss.start)} at start, ${mb(report.rss.baseline)} after ${warmup} warm-up streams (baseline)`,
    );

    let stop = false;
    const rssTimer = setInterval(() => {
      if (p.child.exitCode === null) report.rss.peak = Math.max(report.rss.peak, rssOf(pid));
    }, 250);
    const prober = (async () => {
      while (!stop) {
        await sleep(probeIntervalMs);
        if (stop) break;
        try {
          await probe(p, password);
          report.probes.ok++;
        } catch (err) {
          report.probes.failed++;
          failures.push(`normal client failed during the run: ${(err as Error).message}`);
        }
      }
    })();
    started = Date.now();
    record = true;
    await batch(opts.seed, opts.count);
    report.durationMs = Date.now() - started;
    stop = true;
    await prober;
    clearInterval(rssTimer);

    if (p.child.exitCode !== null || p.child.signalCode !== null) {
      failures.push(`the proxy process exited (code ${p.child.exitCode}, signal ${p.child.signalCode})`);
    } else {
      try {
        await probe(p, password);
        report.probes.ok++;
      } catch (err) {
        report.probes.failed++;
        failures.push(`normal client failed after the run: ${(err as Error).message}`);
      }
      log(
        `run done in ${(report.durationMs / 1000).toFixed(1)} s; settling ${settleMs / 1000} s for the RSS reading`,
      );
      await sleep(settleMs);
      report.rss.after = rssOf(pid);
      if (report.rss.after > report.rss.baseline + rssSlack) {
        failures.push(
          `proxy RSS did not return near its baseline: ${mb(report.rss.after)} after vs ${mb(report.rss.baseline)} baseline (allowed +${mb(rssSlack)})`,
        );
      }
      // The leak checks (see proxy-memory.ts): live heap after a GC, then live session objects.
      const settled = await settledMemory(p, gcBaseline);
      report.gc.after = { rss: settled.rss, heap: settled.heap };
      report.liveObjects = await liveObjects(p);
      failures.push(...memoryFailures('after the run', gcBaseline, report.gc.after, report.liveObjects));
      failures.push(...(await openSessionsCounted(p, password)));
    }
    failures.push(...scanLogs(p, logFrom, report.errorLogs));
    if (report.streams < opts.count) failures.push(`only ${report.streams} of ${opts.count} streams ran`);
    // No hostile stream got past local authentication, so none cost an upstream login: the proxy
    // authenticated at most the logins made with the password, and logged in upstream at most once
    // for each of those.
    report.logins.allowed = allowedLogins;
    report.logins.proxyAuthenticated = p.logs.filter((l) => l.json?.event === 'authenticated').length;
    report.logins.upstreamLogins = stack.endpoint.logins.filter((l) => l.ok).length;
    if (report.logins.proxyAuthenticated > report.logins.allowed) {
      failures.push(
        `the proxy authenticated ${report.logins.proxyAuthenticated} sessions but only ${report.logins.allowed} logins had the password`,
      );
    }
    if (report.logins.upstreamLogins > report.logins.proxyAuthenticated) {
      failures.push(
        `${report.logins.upstreamLogins} upstream logins for ${report.logins.proxyAuthenticated} authenticated sessions`,
      );
    }
  } catch (err) {
    failures.push(`fuzz run aborted: ${(err as Error).stack ?? String(err)}`);
  } finally {
    await proxy?.stop().catch(() => {});
    await stack?.stop().catch(() => {});
  }
  return report;
}

export function mb(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

/** The report as lines a person reads. */
export function formatReport(r: FuzzReport): string {
  const lines = [
    `seed ${r.seed}: ${r.streams} streams in ${(r.durationMs / 1000).toFixed(1)} s (${(r.streams / Math.max(1, r.durationMs / 1000)).toFixed(0)}/s)`,
    `RSS at start ${mb(r.rss.start)}, baseline after warm-up ${mb(r.rss.baseline)}, peak ${mb(r.rss.peak)}, after ${mb(r.rss.after)}`,
    `after a full GC: live heap ${r.gc.baseline.heap.toFixed(1)} MB at the baseline, ${r.gc.after.heap.toFixed(1)} MB after (slack +${HEAP_SLACK_MB} MB); live objects at the end ${JSON.stringify(r.liveObjects)}`,
    `normal client probes: ${r.probes.ok} ok, ${r.probes.failed} failed`,
    `logins: ${r.logins.allowed} with the password, ${r.logins.proxyAuthenticated} authenticated by the proxy, ${r.logins.upstreamLogins} upstream, ${r.logins.hostileAuthenticated} hostile streams got in`,
    'streams by category (answers):',
  ];
  for (const [cat, n] of Object.entries(r.byCategory).sort()) {
    const answers = Object.entries(r.answersByCategory[cat] ?? {})
      .sort((a, b) => b[1] - a[1])
      .map(([a, k]) => `${a} ${k}`)
      .join(', ');
    lines.push(`  ${cat.padEnd(18)} ${String(n).padStart(7)}  ${answers}`);
  }
  lines.push(
    `answers overall: ${Object.entries(r.answers)
      .sort((a, b) => b[1] - a[1])
      .map(([a, k]) => `${a} ${k}`)
      .join(', ')}`,
  );
  const errs = Object.entries(r.errorLogs);
  lines.push(
    `proxy error-level log lines: ${errs.length === 0 ? 'none' : errs.map(([e, n]) => `${e} ${n}`).join(', ')}`,
  );
  lines.push(
    r.failures.length === 0
      ? 'PASS'
      : `FAIL (${r.failures.length}):\n  ${r.failures.slice(0, 20).join('\n  ')}`,
  );
  return lines.join('\n');
}
