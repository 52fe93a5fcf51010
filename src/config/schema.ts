import { z } from 'zod';
import { AUTH_METHODS } from '../auth/types.js';
import { parseDuration } from '../core/duration.js';
import { SSL_NEGOTIATIONS, STARTUP_PARAMS_MODES } from '../dsql/limits.js';
import { CONFLICT_RETRY_MODES } from '../retry/controller.js';
import { checkEndpointHost, type HostPort, hostPortProblem } from './host-port.js';
import { checkRegion } from './region.js';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/** Largest timer Node accepts (setTimeout clamps anything above to 1 ms). */
const MAX_TIMER_MS = 2 ** 31 - 1;
const MAX_TOKEN_TTL_S = 604_800;

/** A value from a flag, an environment variable or a YAML scalar (YAML may hand over numbers). */
const scalar = z
  .union([z.string(), z.number()])
  .transform((v) => String(v).trim())
  .pipe(z.string().min(1, 'must not be empty'));

/** An on/off switch: a bare flag (true), or true/false/on/off/1/0 from the environment or the file. */
const booleanFlag = z.union([z.boolean(), z.string(), z.number()]).transform((v, ctx): boolean => {
  if (typeof v === 'boolean') return v;
  const s = String(v).trim().toLowerCase();
  if (['true', 'on', '1', 'yes'].includes(s)) return true;
  if (['false', 'off', '0', 'no'].includes(s)) return false;
  ctx.addIssue({ code: 'custom', message: 'must be true or false' });
  return z.NEVER;
});

/** A scalar run through a parser that throws on bad input; the thrown message becomes the issue. */
function parsed<T>(fn: (s: string) => T) {
  return scalar.transform((s, ctx): T => {
    try {
      return fn(s);
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: err instanceof Error ? err.message : String(err) });
      return z.NEVER;
    }
  });
}

/**
 * A list option: a YAML list, or one string of comma-separated items; a repeated flag hands over an
 * array too. Each item goes through `fn`; a problem with one of several items names that item.
 */
function listOf<T>(fn: (s: string) => T) {
  const item = z.union([z.string(), z.number()]).transform((v) => String(v));
  return z.union([item, z.array(item)]).transform((v, ctx): T[] => {
    const items = (Array.isArray(v) ? v.flatMap((s) => s.split(',')) : v.split(',')).map((s) => s.trim());
    if (items.length === 0 || items.every((s) => s === '')) {
      ctx.addIssue({ code: 'custom', message: 'must not be empty' });
      return z.NEVER;
    }
    const out: T[] = [];
    for (const s of items) {
      try {
        if (s === '') throw new Error('has an empty item (two commas in a row?)');
        out.push(fn(s));
      } catch (err) {
        const msg = err instanceof Error ? err.message : String(err);
        ctx.addIssue({ code: 'custom', message: items.length > 1 ? `"${s}": ${msg}` : msg });
        return z.NEVER;
      }
    }
    return out;
  });
}

function hostPortOrThrow(s: string, allowPortZero: boolean): HostPort {
  const r = hostPortProblem(s, { allowPortZero });
  if (typeof r === 'string') throw new Error(r);
  return r;
}

/** One `connect-to` item: `HOST:PORT` (the only endpoint) or `ENDPOINT=HOST:PORT`. */
export interface ConnectToEntry {
  endpoint?: string;
  to: HostPort;
}

function connectToEntry(s: string): ConnectToEntry {
  const eq = s.indexOf('=');
  if (eq < 0) return { to: hostPortOrThrow(s, false) };
  let endpoint: string;
  try {
    endpoint = checkEndpointHost(s.slice(0, eq));
  } catch (err) {
    throw new Error(`the endpoint before "=" ${(err as Error).message}; expected ENDPOINT=HOST:PORT`);
  }
  return { endpoint, to: hostPortOrThrow(s.slice(eq + 1), false) };
}

function hostPort(allowPortZero: boolean) {
  return parsed((s) => {
    const r = hostPortProblem(s, { allowPortZero });
    if (typeof r === 'string') throw new Error(r);
    return r;
  });
}

function durationMs(minMs: number) {
  return parsed((s) => {
    const ms = parseDuration(s);
    if (ms < minMs) throw new Error(`must be at least ${minMs}ms`);
    if (ms > MAX_TIMER_MS) throw new Error('must be at most 596h (2^31-1 ms)');
    return ms;
  });
}

/** The admin HTTP listener: HOST:PORT, or a bare port meaning loopback (127.0.0.1:PORT). */
const adminListen = parsed((s) => {
  const r = hostPortProblem(/^\d+$/.test(s) ? `127.0.0.1:${s}` : s, { allowPortZero: true });
  if (typeof r === 'string') throw new Error(r);
  return r;
});

const tokenTtl = parsed((s) => {
  const ms = /^\d+$/.test(s) ? Number(s) * 1000 : parseDuration(s);
  if (ms % 1000 !== 0) throw new Error('must be whole seconds');
  const seconds = ms / 1000;
  if (seconds < 1 || seconds > MAX_TOKEN_TTL_S) {
    throw new Error(`must be between 1 and ${MAX_TOKEN_TTL_S} seconds (one week)`);
  }
  return seconds;
});

/** Local user -> DSQL role. */
export const ROLE_MAP_SCHEMA = z.record(
  z.string().min(1, 'user name must not be empty'),
  z.string().trim().min(1, 'role must not be empty'),
);

/** One schema per option that takes a value from flags, environment or file. Keys are the option keys. */
export const VALUE_SCHEMAS = {
  endpoint: listOf(checkEndpointHost),
  region: parsed(checkRegion),
  listen: hostPort(true),
  'connect-to': listOf(connectToEntry),
  'ca-file': scalar,
  'token-ttl': tokenTtl,
  'auth-file': scalar,
  'auth-method': scalar.pipe(z.enum(AUTH_METHODS as [string, ...string[]])),
  profile: scalar,
  'log-level': scalar.pipe(z.enum(LOG_LEVELS)),
  'connect-timeout': durationMs(1),
  'dns-cache-ttl': durationMs(0),
  'login-timeout': durationMs(1),
  'max-shutdown-delay': durationMs(0),
  'min-shutdown-delay': durationMs(0),
  'admin-listen': adminListen,
  'admin-quitquitquit': booleanFlag,
  'max-connections': parsed((s) => {
    if (!/^\d+$/.test(s)) throw new Error('must be a whole number (0 for no limit)');
    const n = Number(s);
    if (n > 1_000_000) throw new Error('must be at most 1000000');
    return n;
  }),
  'unix-socket': scalar,
  'connect-rate': parsed((s) => {
    if (!/^\d+(\.\d+)?$/.test(s))
      throw new Error('must be a number of connections per second (0 for no limit)');
    const n = Number(s);
    if (n > 1_000_000) throw new Error('must be at most 1000000');
    return n;
  }),
  'connect-burst': parsed((s) => {
    if (!/^\d+$/.test(s) || Number(s) < 1) throw new Error('must be a whole number of at least 1');
    const n = Number(s);
    if (n > 1_000_000) throw new Error('must be at most 1000000');
    return n;
  }),
  'connect-queue-timeout': durationMs(1),
  'max-upstream-age': durationMs(1000),
  'startup-params': scalar.pipe(z.enum(STARTUP_PARAMS_MODES)),
  compat: scalar.pipe(z.enum(['on', 'off'])),
  'conflict-retry': scalar.pipe(z.enum(CONFLICT_RETRY_MODES)),
  'conflict-retry-buffer': parsed((s) => {
    if (!/^\d+$/.test(s)) throw new Error('must be a whole number of bytes');
    const n = Number(s);
    if (n < 1024 || n > 1024 * 1024 * 1024) throw new Error('must be between 1024 and 1073741824');
    return n;
  }),
  'conflict-retry-attempts': parsed((s) => {
    if (!/^\d+$/.test(s) || Number(s) < 1 || Number(s) > 100)
      throw new Error('must be a whole number from 1 to 100');
    return Number(s);
  }),
  'statement-timeout': durationMs(0),
  'statement-timeout-grace': durationMs(1),
  'idle-in-transaction-timeout': durationMs(0),
  'client-idle-timeout': durationMs(0),
  'upstream-ssl-negotiation': scalar.pipe(z.enum(SSL_NEGOTIATIONS)),
  'client-tls': scalar.pipe(z.enum(['off', 'on'])),
  'client-cert': scalar,
  'client-key': scalar,
  'client-ca-out': scalar,
  'client-tls-required': booleanFlag,
  'pool-mode': scalar.pipe(z.enum(['none', 'session'])),
  'pool-max-idle': parsed((s) => {
    if (!/^\d+$/.test(s) || Number(s) < 1 || Number(s) > 100_000)
      throw new Error('must be a whole number from 1 to 100000');
    return Number(s);
  }),
  'pool-max-idle-total': parsed((s) => {
    if (!/^\d+$/.test(s) || Number(s) < 1 || Number(s) > 100_000)
      throw new Error('must be a whole number from 1 to 100000');
    return Number(s);
  }),
  'pool-idle-timeout': durationMs(1000),
  config: scalar,
};

export type ValueKey = keyof typeof VALUE_SCHEMAS;
export type ValueOf<K extends ValueKey> = z.output<(typeof VALUE_SCHEMAS)[K]>;

type FileShape = { [K in Exclude<ValueKey, 'config'>]: z.ZodOptional<(typeof VALUE_SCHEMAS)[K]> };

const fileShape = Object.fromEntries(
  Object.entries(VALUE_SCHEMAS)
    .filter(([k]) => k !== 'config')
    .map(([k, s]) => [k, s.optional()]),
) as FileShape;

/** A cluster name is the database name clients give on a shared listener (`psql -d prod`). */
export const CLUSTER_NAME = /^[A-Za-z_][A-Za-z0-9_-]{0,62}$/;

/** An IAM role ARN for `assume-role`. */
const roleArn = parsed((s) => {
  if (!/^arn:aws[a-z-]*:iam::\d{12}:role\/[\w+=,.@/-]+$/.test(s)) {
    throw new Error('must be an IAM role ARN, e.g. arn:aws:iam::123456789012:role/dsql-app');
  }
  return s;
});

/** One entry of `clusters:`; `endpoint` is required (checked by the loader, which can name the line). */
export const CLUSTER_SCHEMA = z.strictObject({
  endpoint: VALUE_SCHEMAS.endpoint.optional(),
  'connect-to': VALUE_SCHEMAS['connect-to'].optional(),
  region: VALUE_SCHEMAS.region.optional(),
  profile: VALUE_SCHEMAS.profile.optional(),
  'assume-role': roleArn.optional(),
  'token-ttl': VALUE_SCHEMAS['token-ttl'].optional(),
  'role-map': ROLE_MAP_SCHEMA.optional(),
  listen: VALUE_SCHEMAS.listen.optional(),
  'ca-file': VALUE_SCHEMAS['ca-file'].optional(),
});

export type ClusterFileValues = z.output<typeof CLUSTER_SCHEMA>;
export const CLUSTER_KEYS = Object.keys(CLUSTER_SCHEMA.shape);

/**
 * The YAML file: the same keys as the flags (but `config`), plus `role-map` and `clusters`; nothing
 * else. Cluster names are checked by the loader (to name the line).
 */
export const FILE_SCHEMA = z.strictObject({
  ...fileShape,
  'role-map': ROLE_MAP_SCHEMA.optional(),
  clusters: z.record(z.string(), CLUSTER_SCHEMA).optional(),
});

export type FileValues = z.output<typeof FILE_SCHEMA>;

function describeInput(input: unknown): string {
  if (input === null || input === undefined) return 'nothing';
  if (Array.isArray(input)) return 'a list';
  return typeof input === 'object' ? 'a mapping' : `${typeof input} ${JSON.stringify(input)}`;
}

/** The problem an issue describes, without saying where (the caller names the flag, variable or file:line). */
export function issueProblem(issue: z.core.$ZodIssue): string {
  if ((issue.code === 'invalid_type' || issue.code === 'invalid_union') && issue.input == null)
    return 'has no value';
  switch (issue.code) {
    case 'invalid_type':
      if (Array.isArray(issue.input)) {
        return 'expected a single value, got a list (in YAML quote values that start with "[", e.g. "[::1]:5432")';
      }
      return `expected ${issue.expected === 'record' ? 'a mapping' : `a ${issue.expected}`}, got ${describeInput(issue.input)}`;
    case 'invalid_union':
      return `expected a string or number, got ${describeInput(issue.input)}`;
    case 'invalid_value':
      return `must be one of ${issue.values.map(String).join(', ')}`;
    default:
      return issue.message;
  }
}
