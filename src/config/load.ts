import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { AuthMethod, AuthUsers } from '../auth/types.js';
import type { CompatSettings } from '../compat/index.js';
import { formatDuration } from '../core/duration.js';
import {
  DEFAULT_SSL_NEGOTIATION,
  DSQL_MAX_CONNECTION_MS,
  type SslNegotiation,
  type StartupParamsMode,
} from '../dsql/limits.js';
import type { RetrySettings } from '../retry/controller.js';
import { ConfigError } from './config-error.js';
import { type EndpointConfig, resolveEndpoints } from './endpoints.js';
import { readAuthUsers, readCaPem, readText } from './files.js';
import { formatHostPort, type HostPort, isLoopbackHost } from './host-port.js';
import { ENV_PREFIX, FLAG_KEYS, OPTION_DOCS } from './options.js';
import {
  CLUSTER_NAME,
  type ClusterFileValues,
  issueProblem,
  VALUE_SCHEMAS,
  type ValueKey,
  type ValueOf,
} from './schema.js';
import { didYouMean } from './suggest.js';
import { type ConfigFile, loadConfigFile, show } from './yaml-file.js';

export { ConfigError } from './config-error.js';
export type { EndpointConfig } from './endpoints.js';
export { type HostPort, parseHostPort } from './host-port.js';
export { helpText, OPTION_DOCS } from './options.js';

/** One DSQL cluster the proxy serves: its endpoints, credentials, token lifetime, role map and listener. */
export interface ClusterConfig {
  /** The database name that selects it on a shared listener; `default` without `clusters` in the file. */
  name: string;
  /** The endpoints in order of preference (one per Region of a multi-Region cluster); never empty. */
  endpoints: EndpointConfig[];
  caPem?: string;
  caFile?: string;
  tokenTtlSeconds: number;
  profile?: string;
  /** IAM role assumed (with the profile's or the default chain's credentials) to sign its tokens. */
  assumeRole?: string;
  roleMap: Record<string, string>;
  /** Its own listener, serving only this cluster under any database name; absent: the shared `listen`. */
  listen?: HostPort;
}

/** The name of the one cluster of a configuration without `clusters`. */
export const DEFAULT_CLUSTER = 'default';

export interface ProxyConfig {
  /**
   * Every cluster, in file order; never empty. Without `clusters` in the file, one cluster named
   * `default` built from the top-level options (endpoint, region, CA, token TTL, profile, role map).
   */
  clusters: ClusterConfig[];
  listen: HostPort;
  authFile?: string;
  authMethod: AuthMethod;
  users: AuthUsers;
  logLevel: string;
  connectTimeoutMs: number;
  /** How long an endpoint's looked-up address is reused; 0: a lookup per connection. */
  dnsCacheTtlMs: number;
  loginTimeoutMs: number;
  maxShutdownDelayMs: number;
  minShutdownDelayMs: number;
  /** 0: no limit. */
  maxConnections: number;
  /** New upstream connections per second per endpoint; 0: no limit. */
  connectRate: number;
  connectBurst: number;
  connectQueueTimeoutMs: number;
  /** Past this age a session moves to a fresh upstream connection. */
  maxUpstreamAgeMs: number;
  startupParamsMode: StartupParamsMode;
  /** Conflict retry (--conflict-retry); undefined when off. */
  conflictRetry: RetrySettings | undefined;
  /** The compatibility layer's settings; undefined with --compat off. */
  compat: CompatSettings | undefined;
  /** How TLS to every endpoint starts. */
  upstreamSslNegotiation: SslNegotiation;
  adminListen?: HostPort;
  /** POST /quitquitquit on the admin port starts the shutdown; off by default. */
  adminQuitquitquit: boolean;
  clientTls: ClientTlsConfig;
  poolMode: 'none' | 'session';
  poolMaxIdle: number;
  /** Idle pooled connections kept over all keys. */
  poolMaxIdleTotal: number;
  poolIdleTimeoutMs: number;
  /** Directory for the Unix-domain socket `.s.PGSQL.<port>`. */
  unixSocketDir?: string;
  /** The YAML file given by --config (resolved), re-read for role maps on SIGHUP. */
  configFile?: string;
  /** Things the operator should know (trust authentication, ignored variables...), for the caller to log. */
  warnings: string[];
}

/** Local TLS towards clients: certificate and key as PEM text, read at start. */
export interface ClientTlsConfig {
  enabled: boolean;
  required: boolean;
  certPem?: string;
  keyPem?: string;
  /** Where the generated CA is written (only without certPem/keyPem). */
  caOut?: string;
}

/** A resolved option value and where it came from. */
interface Picked<T> {
  value: T;
  /** `--token-ttl`, `DSQL_PROXY_TOKEN_TTL` or `token-ttl in /etc/dsql-proxy.yaml:4`. */
  label: string;
  /** Directory relative paths are resolved against. */
  base: string;
}

type Raw = Partial<Record<ValueKey, string | string[] | boolean>>;

/** Options that may be given more than once on the command line. */
const REPEATABLE = new Set<string>(['endpoint', 'connect-to']);
/** Switches given as a bare flag (`--client-tls-required`); true/false in the environment or file. */
const BOOLEAN_FLAGS = new Set<string>(['client-tls-required', 'admin-quitquitquit']);

const ENV_OF = new Map(OPTION_DOCS.filter((o) => o.env !== '').map((o) => [o.key, o.env]));

/** True when argv asks for `--help`/`-h`; callers check this before loadConfig. */
export function wantsHelp(argv: readonly string[]): boolean {
  const end = argv.indexOf('--');
  return (end < 0 ? argv : argv.slice(0, end)).some((a) => a === '--help' || a === '-h');
}

function readFlags(argv: string[]): Raw {
  const options: Record<string, { type: 'string' | 'boolean'; multiple?: boolean; short?: string }> = {};
  for (const k of FLAG_KEYS) {
    options[k] = BOOLEAN_FLAGS.has(k) ? { type: 'boolean' } : { type: 'string', multiple: REPEATABLE.has(k) };
  }
  try {
    const { values } = parseArgs({
      args: argv,
      options: { ...options, help: { type: 'boolean', short: 'h' } },
      strict: true,
      allowPositionals: false,
    });
    const { help: _help, ...rest } = values as Record<string, string | string[] | boolean | undefined>;
    return rest as Raw;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const msg = err instanceof Error ? err.message : String(err);
    const flag = /'(-[^' ]*)/.exec(msg)?.[1] ?? '';
    if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
      const name = flag.replace(/^-+/, '');
      const hint = didYouMean(name, FLAG_KEYS, '');
      throw new ConfigError(`unknown flag ${flag}${hint.replace('mean ', 'mean --')}; see --help`, {
        key: name,
      });
    }
    if (code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') {
      const key = flag.replace(/^-+/, '');
      throw new ConfigError(`${flag} needs a value; for a value that starts with "-" write ${flag}=VALUE`, {
        key,
      });
    }
    if (code === 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL') {
      const arg = /'([^']*)'/.exec(msg)?.[1] ?? '';
      throw new ConfigError(`unexpected argument "${arg}": options are given as --key value; see --help`);
    }
    throw new ConfigError(msg, { cause: err });
  }
}

function readEnv(env: NodeJS.ProcessEnv, warnings: string[]): Raw {
  const raw: Raw = {};
  const known = new Set<string>();
  for (const [key, name] of ENV_OF) {
    known.add(name);
    const v = env[name];
    if (v !== undefined && v !== '') raw[key as ValueKey] = v;
  }
  const candidates = [...known].filter((n) => n.startsWith(ENV_PREFIX));
  for (const name of Object.keys(env)) {
    if (!name.startsWith(ENV_PREFIX) || known.has(name)) continue;
    const key = name.slice(ENV_PREFIX.length).toLowerCase().replace(/_/g, '-');
    let hint = didYouMean(name, candidates, '');
    if (key === 'profile') hint = ' (the AWS profile is read from AWS_PROFILE)';
    if (key === 'role-map') hint = ' (role-map can only be set in the config file)';
    warnings.push(`ignoring unknown environment variable ${name}${hint}`);
  }
  return raw;
}

function parseValue<K extends ValueKey>(key: K, raw: string | string[], label: string): ValueOf<K> {
  const r = VALUE_SCHEMAS[key].safeParse(raw, { reportInput: true });
  if (!r.success) {
    const issue = r.error.issues[0];
    const problem = issue ? issueProblem(issue) : 'invalid value';
    const shown = Array.isArray(raw) && raw.length === 1 ? raw[0] : raw;
    throw new ConfigError(
      `invalid ${label} ${show(Array.isArray(shown) ? shown.join(',') : shown)}: ${problem}`,
      {
        key,
      },
    );
  }
  return r.data as ValueOf<K>;
}

type Parsed = Partial<Record<ValueKey, Picked<unknown>>>;

/** Parses every value a layer gives, used or not: a bad value is a mistake even when a higher layer hides it. */
function parseLayer(raw: Raw, label: (key: ValueKey) => string): Parsed {
  const out: Parsed = {};
  const cwd = process.cwd();
  for (const [key, value] of Object.entries(raw) as Array<[ValueKey, string | string[]]>) {
    out[key] = { value: parseValue(key, value, label(key)), label: label(key), base: cwd };
  }
  return out;
}

class Sources {
  private readonly flags: Parsed;
  private readonly env: Parsed;
  private file: ConfigFile | undefined;

  constructor(flags: Raw, env: Raw) {
    this.flags = parseLayer(flags, (k) => `--${k}`);
    this.env = parseLayer(env, (k) => ENV_OF.get(k) as string);
  }

  setFile(file: ConfigFile): void {
    this.file = file;
  }

  /** The value of `key` by precedence flag > environment > file, or undefined for the default. */
  get<K extends ValueKey>(key: K): Picked<ValueOf<K>> | undefined {
    const picked = this.flags[key] ?? this.env[key];
    if (picked) return picked as Picked<ValueOf<K>>;
    if (this.file && key !== 'config') {
      const v = (this.file.values as Record<string, unknown>)[key];
      if (v !== undefined) {
        return { value: v as ValueOf<K>, label: `${key} in ${this.file.where(key)}`, base: this.file.dir };
      }
    }
    return undefined;
  }

  get configFile(): ConfigFile | undefined {
    return this.file;
  }

  /** role-map comes from the file only. */
  roleMap(): Record<string, string> {
    return Object.fromEntries(Object.entries(this.file?.values['role-map'] ?? {}));
  }
}

function resolveAuthMethod(
  picked: Picked<string> | undefined,
  authFile: string | undefined,
  listen: HostPort,
  listenLabel: string | undefined,
  warnings: string[],
): AuthMethod {
  const method = (picked?.value ?? (authFile ? 'scram-sha-256' : 'trust')) as AuthMethod;
  const addr = formatHostPort(listen) + (listenLabel ? ` (${listenLabel})` : '');
  if (method === 'trust') {
    if (!isLoopbackHost(listen.host)) {
      const why = picked
        ? `trust was chosen by ${picked.label}, so any client that can reach ${addr} could log in as any user`
        : 'no auth file is configured, so any client that can reach it could log in as any user';
      throw new ConfigError(
        `refusing to run with trust authentication on ${addr}: ${why}; give --auth-file with local users (and --auth-method scram-sha-256), or listen on a loopback address such as 127.0.0.1:5432`,
        { key: 'auth-method' },
      );
    }
    warnings.push(
      `trust authentication: any local process can connect as any user${authFile ? '; the auth file is not used for logins' : ''}`,
    );
    return method;
  }
  if (!authFile) {
    throw new ConfigError(
      `auth-method ${method} (${picked?.label}) needs an auth file: give --auth-file with the local users, or use --auth-method trust on a loopback address`,
      { key: 'auth-file' },
    );
  }
  if (method === 'password' && !isLoopbackHost(listen.host)) {
    warnings.push(
      `auth-method password on ${addr}: clients send their password in clear text over the network`,
    );
  }
  return method;
}

function checkUsers(users: AuthUsers, authFile: string, method: AuthMethod, warnings: string[]): void {
  if (method === 'trust') return;
  if (users.size === 0) warnings.push(`auth file ${authFile} lists no users: every login will fail`);
  if (method === 'scram-sha-256') {
    const md5 = [...users].filter(([, s]) => s.kind === 'md5').map(([u]) => u);
    if (md5.length > 0) {
      warnings.push(
        `auth file ${authFile}: users with md5 secrets cannot log in with scram-sha-256 (${md5.join(', ')}); give them SCRAM verifiers, or use auth-method md5 (SCRAM secrets still use SCRAM)`,
      );
    }
  }
  const plain = [...users].filter(([, s]) => s.kind === 'plain').map(([u]) => u);
  if (plain.length > 0) {
    warnings.push(
      `auth file ${authFile} has plain-text passwords (${plain.join(', ')}): use SCRAM verifiers outside development`,
    );
  }
}

/**
 * Resolves the configuration from flags (argv without node, script and subcommand), environment and
 * the YAML file named by --config / DSQL_PROXY_CONFIG. Precedence: flag > env > file > default.
 * Reads the CA file and the auth file. Throws ConfigError with one message naming the key or file:line.
 */
export function loadConfig(argv: string[], env: NodeJS.ProcessEnv): ProxyConfig {
  const warnings: string[] = [];
  const src = new Sources(readFlags(argv), readEnv(env, warnings));

  const configPick = src.get('config');
  const configFile = configPick ? resolve(configPick.value) : undefined;
  if (configPick && configFile) src.setFile(loadConfigFile(configFile, configPick.label));

  const listenPick = src.get('listen');
  const listen = listenPick?.value ?? { host: '127.0.0.1', port: 5432 };

  const file = src.configFile;
  const clusters = file?.values.clusters
    ? resolveClusters(src, file, listen, listenPick?.label)
    : [resolveSingleCluster(src)];
  warnAboutAwsRegion(clusters, env, warnings);
  const maxUpstreamAgePick = src.get('max-upstream-age');
  if (maxUpstreamAgePick && maxUpstreamAgePick.value >= DSQL_MAX_CONNECTION_MS) {
    warnings.push(
      `max-upstream-age (${maxUpstreamAgePick.label}) is ${formatDuration(maxUpstreamAgePick.value)}: DSQL closes connections at 60 minutes without an error, so sessions will see that first; use 50m or less`,
    );
  }
  const connectRate = src.get('connect-rate')?.value ?? 100;

  const { authFile, users, authMethod } = resolveAuth(src, clusters, listen, listenPick?.label, warnings);

  const config: ProxyConfig = {
    clusters,
    listen,
    authMethod,
    users,
    logLevel: src.get('log-level')?.value ?? 'info',
    connectTimeoutMs: src.get('connect-timeout')?.value ?? 10_000,
    dnsCacheTtlMs: src.get('dns-cache-ttl')?.value ?? 15_000,
    loginTimeoutMs: src.get('login-timeout')?.value ?? 60_000,
    maxShutdownDelayMs: src.get('max-shutdown-delay')?.value ?? 30_000,
    minShutdownDelayMs: src.get('min-shutdown-delay')?.value ?? 0,
    maxConnections: src.get('max-connections')?.value ?? 0,
    connectRate,
    // One second's worth of the rate: DSQL's own burst (1,000 per cluster) is shared by every proxy
    // and client of the cluster, so one proxy should not take it all.
    connectBurst: src.get('connect-burst')?.value ?? Math.max(1, Math.ceil(connectRate)),
    connectQueueTimeoutMs: src.get('connect-queue-timeout')?.value ?? 10_000,
    maxUpstreamAgeMs: maxUpstreamAgePick?.value ?? 50 * 60_000,
    startupParamsMode: src.get('startup-params')?.value ?? 'drop',
    conflictRetry: conflictRetry(src),
    compat:
      src.get('compat')?.value === 'off'
        ? undefined
        : {
            statementTimeoutMs: src.get('statement-timeout')?.value ?? 0,
            graceMs: src.get('statement-timeout-grace')?.value ?? 2000,
            idleInTransactionTimeoutMs: src.get('idle-in-transaction-timeout')?.value ?? 0,
            clientIdleMs: src.get('client-idle-timeout')?.value ?? 0,
          },
    upstreamSslNegotiation: src.get('upstream-ssl-negotiation')?.value ?? DEFAULT_SSL_NEGOTIATION,
    adminQuitquitquit: src.get('admin-quitquitquit')?.value === true,
    clientTls: resolveClientTls(src),
    poolMode: src.get('pool-mode')?.value ?? 'none',
    poolMaxIdle: src.get('pool-max-idle')?.value ?? 100,
    poolMaxIdleTotal: src.get('pool-max-idle-total')?.value ?? 100,
    poolIdleTimeoutMs: src.get('pool-idle-timeout')?.value ?? 10 * 60_000,
    warnings,
  };
  if (authFile !== undefined) config.authFile = authFile;
  if (configFile !== undefined) config.configFile = configFile;
  const adminListen = src.get('admin-listen')?.value;
  if (adminListen !== undefined) config.adminListen = adminListen;
  if (config.adminQuitquitquit) warnAboutQuit(adminListen, warnings);
  const unixPick = src.get('unix-socket');
  if (unixPick !== undefined) config.unixSocketDir = resolve(unixPick.base, unixPick.value);
  return config;
}

/** Tokens are signed for the endpoints' Regions: an AWS_REGION that is none of them is likely a mistake. */
function warnAboutAwsRegion(
  clusters: readonly ClusterConfig[],
  env: NodeJS.ProcessEnv,
  warnings: string[],
): void {
  const allEndpoints = clusters.flatMap((c) => c.endpoints);
  const awsRegion = env.AWS_REGION?.toLowerCase();
  if (awsRegion && !allEndpoints.some((e) => e.region === awsRegion)) {
    const regions = [...new Set(allEndpoints.map((e) => e.region))].join(', ');
    const many = allEndpoints.length > 1;
    warnings.push(
      `AWS_REGION is ${env.AWS_REGION} but tokens are signed for ${regions}, the endpoint${many ? 's' : ''}' region${many ? 's' : ''}`,
    );
  }
}

/** The auth file, its users and the auth method, checked against the listeners the clusters use. */
function resolveAuth(
  src: Sources,
  clusters: readonly ClusterConfig[],
  listen: HostPort,
  listenLabel: string | undefined,
  warnings: string[],
): { authFile: string | undefined; users: AuthUsers; authMethod: AuthMethod } {
  const authPick = src.get('auth-file');
  const authFile = authPick ? resolve(authPick.base, authPick.value) : undefined;
  const users: AuthUsers = authFile && authPick ? readAuthUsers(authFile, authPick.label) : new Map();
  // Trust authentication is refused if any listener the clusters use is reachable from elsewhere.
  const used: Array<{ at: HostPort; label: string | undefined }> = [];
  if (clusters.some((c) => c.listen === undefined)) used.push({ at: listen, label: listenLabel });
  for (const c of clusters) {
    if (c.listen) used.push({ at: c.listen, label: `clusters.${c.name}.listen` });
  }
  const exposed = used.find((u) => !isLoopbackHost(u.at.host)) ?? used[0] ?? { at: listen, label: undefined };
  const authMethod = resolveAuthMethod(src.get('auth-method'), authFile, exposed.at, exposed.label, warnings);
  if (authFile) checkUsers(users, authFile, authMethod, warnings);
  return { authFile, users, authMethod };
}

/** admin-quitquitquit is on: say when it does nothing, or when others can reach it. */
function warnAboutQuit(adminListen: HostPort | undefined, warnings: string[]): void {
  if (adminListen === undefined) {
    warnings.push('admin-quitquitquit has no effect without admin-listen');
  } else if (!isLoopbackHost(adminListen.host)) {
    warnings.push(
      `admin-quitquitquit on ${formatHostPort(adminListen)}: anyone who can reach the admin port can stop the proxy; keep it closed to others (a NetworkPolicy in Kubernetes)`,
    );
  }
}

/** The one cluster of a configuration without `clusters`: the top-level options, exactly as before. */
function resolveSingleCluster(src: Sources): ClusterConfig {
  const endpointPick = src.get('endpoint');
  if (!endpointPick) {
    throw new ConfigError(
      'endpoint is required: pass --endpoint <cluster-id>.dsql.<region>.on.aws (or set DSQL_PROXY_ENDPOINT, or endpoint in the config file, or several clusters under clusters: in the config file)',
      { key: 'endpoint' },
    );
  }
  const cluster: ClusterConfig = {
    name: DEFAULT_CLUSTER,
    endpoints: resolveEndpoints(endpointPick, src.get('region'), src.get('connect-to')),
    tokenTtlSeconds: src.get('token-ttl')?.value ?? 900,
    roleMap: src.roleMap(),
  };
  const profile = src.get('profile')?.value;
  if (profile !== undefined) cluster.profile = profile;
  setCa(cluster, src.get('ca-file'));
  return cluster;
}

function setCa(cluster: ClusterConfig, pick: Picked<string> | undefined): void {
  if (!pick) return;
  cluster.caFile = resolve(pick.base, pick.value);
  cluster.caPem = readCaPem(cluster.caFile, pick.label);
}

/**
 * `clusters:` in the file. Each cluster has its own endpoint(s), connect-to and region; profile,
 * token-ttl, ca-file and role-map default to the top-level (proxy-wide) values. A top-level
 * endpoint, region or connect-to alongside `clusters` is an error: it would be unclear which
 * cluster it is for.
 */
function resolveClusters(
  src: Sources,
  file: ConfigFile,
  sharedListen: HostPort,
  sharedLabel: string | undefined,
): ClusterConfig[] {
  const entries = Object.entries(file.values.clusters ?? {}) as Array<[string, ClusterFileValues]>;
  const at = (...path: string[]): string => file.where(['clusters', ...path]);
  const fail = (where: string, message: string, key = 'clusters'): never => {
    const line = /:(\d+)$/.exec(where)?.[1];
    throw new ConfigError(`${where}: ${message}`, {
      key,
      file: file.path,
      ...(line === undefined ? {} : { line: Number(line) }),
    });
  };
  if (entries.length === 0) {
    fail(at(), 'clusters lists no cluster: give at least one, e.g. clusters: { prod: { endpoint: ... } }');
  }
  for (const key of ['endpoint', 'region', 'connect-to'] as const) {
    const pick = src.get(key);
    if (pick) {
      fail(
        at(),
        `${key} (${pick.label}) cannot be used together with clusters: give each cluster its own ${key} under clusters.<name>`,
        key,
      );
    }
  }
  const clusters: ClusterConfig[] = [];
  for (const [name, v] of entries) {
    if (!CLUSTER_NAME.test(name)) {
      fail(
        at(name),
        `invalid cluster name ${show(name)}: clients select a cluster by database name, so it must start with a letter or _ and contain only letters, digits, _ and - (at most 63 characters)`,
      );
    }
    const label = (key: string): string => `clusters.${name}.${key} in ${at(name, key)}`;
    if (v.endpoint === undefined) {
      fail(
        at(name),
        `clusters.${name}.endpoint is required: the cluster's <cluster-id>.dsql.<region>.on.aws`,
      );
    }
    const given = <T>(value: T | undefined, key: string) =>
      value === undefined ? undefined : { value, label: label(key) };
    const cluster: ClusterConfig = {
      name,
      endpoints: resolveEndpoints(
        { value: v.endpoint as string[], label: label('endpoint') },
        given(v.region, 'region'),
        given(v['connect-to'], 'connect-to'),
      ),
      tokenTtlSeconds: v['token-ttl'] ?? src.get('token-ttl')?.value ?? 900,
      roleMap: v['role-map'] ? Object.fromEntries(Object.entries(v['role-map'])) : src.roleMap(),
    };
    const profile = v.profile ?? src.get('profile')?.value;
    if (profile !== undefined) cluster.profile = profile;
    if (v['assume-role'] !== undefined) cluster.assumeRole = v['assume-role'];
    if (v.listen !== undefined) cluster.listen = v.listen;
    setCa(
      cluster,
      v['ca-file'] === undefined
        ? src.get('ca-file')
        : { value: v['ca-file'], label: label('ca-file'), base: file.dir },
    );
    clusters.push(cluster);
  }
  // Two listeners cannot share an address (port 0 picks a free port each time).
  const taken = new Map<string, string>();
  if (clusters.some((c) => c.listen === undefined)) {
    taken.set(formatHostPort(sharedListen), `the shared listen${sharedLabel ? ` (${sharedLabel})` : ''}`);
  }
  for (const c of clusters) {
    if (!c.listen || c.listen.port === 0) continue;
    const addr = formatHostPort(c.listen);
    const other = taken.get(addr);
    if (other) {
      fail(
        at(c.name, 'listen'),
        `clusters.${c.name}.listen ${addr} is already used by ${other}: give it another address, or remove it to reach the cluster by database name on the shared listener`,
        'listen',
      );
    }
    taken.set(addr, `clusters.${c.name}.listen`);
  }
  return clusters;
}

/** --client-tls and its companions; the certificate and key are read now so errors name the key. */
function resolveClientTls(src: Sources): ClientTlsConfig {
  const enabled = src.get('client-tls')?.value === 'on';
  const required = src.get('client-tls-required')?.value === true;
  const certPick = src.get('client-cert');
  const keyPick = src.get('client-key');
  const caOutPick = src.get('client-ca-out');
  if (required && !enabled) {
    throw new ConfigError('--client-tls-required needs --client-tls on', { key: 'client-tls-required' });
  }
  if (!enabled) return { enabled, required };
  if (Boolean(certPick) !== Boolean(keyPick)) {
    throw new ConfigError(
      '--client-cert and --client-key go together: give both, or neither for a generated certificate',
      {
        key: certPick ? 'client-key' : 'client-cert',
      },
    );
  }
  const out: ClientTlsConfig = { enabled, required };
  if (certPick && keyPick) {
    out.certPem = readText(
      resolve(certPick.base, certPick.value),
      'client certificate',
      certPick.label,
      'client-cert',
    );
    out.keyPem = readText(resolve(keyPick.base, keyPick.value), 'client key', keyPick.label, 'client-key');
  } else if (caOutPick) {
    out.caOut = resolve(caOutPick.base, caOutPick.value);
  }
  return out;
}

/** The DSQL role a local user logs in as: role-map entry, else the same name. */
export function resolveRole(config: Pick<ClusterConfig, 'roleMap'>, user: string): string {
  return Object.hasOwn(config.roleMap, user) ? (config.roleMap[user] as string) : user;
}

/**
 * Re-reads the role maps from the config file (SIGHUP): cluster name -> local user -> DSQL role, by
 * the same rules as at start (a cluster's own role-map, else the top-level one). Only role maps
 * change without a restart, so a file whose clusters no longer match the running ones is refused.
 * Throws ConfigError naming the file and line; without a config file every map is empty.
 */
export function reloadRoleMaps(config: ProxyConfig): Map<string, Record<string, string>> {
  const out = new Map<string, Record<string, string>>();
  if (config.configFile === undefined) {
    for (const c of config.clusters) out.set(c.name, {});
    return out;
  }
  const file = loadConfigFile(config.configFile, 'config');
  const topLevel = { ...(file.values['role-map'] ?? {}) };
  const inFile = file.values.clusters;
  const running = config.clusters.map((c) => c.name);
  const restart = (what: string): never => {
    throw new ConfigError(
      `${config.configFile}: ${what}; SIGHUP reloads only the auth file and role-map, so restart dsql-proxy to change clusters`,
      { key: 'clusters', file: config.configFile },
    );
  };
  if (inFile === undefined) {
    if (running.length !== 1 || running[0] !== DEFAULT_CLUSTER) restart('clusters was removed');
    out.set(DEFAULT_CLUSTER, topLevel);
    return out;
  }
  if (running.length === 1 && running[0] === DEFAULT_CLUSTER && !Object.hasOwn(inFile, DEFAULT_CLUSTER)) {
    restart('clusters was added');
  }
  for (const name of running) {
    const entry = Object.hasOwn(inFile, name) ? inFile[name] : undefined;
    if (entry === undefined) restart(`cluster ${name} is no longer in clusters`);
    out.set(name, entry?.['role-map'] ? { ...entry['role-map'] } : topLevel);
  }
  return out;
}

/** What a role-map reload changed, by user and role name only (for the log). */
export interface RoleMapChanges {
  added: Array<{ user: string; role: string }>;
  removed: Array<{ user: string; role: string }>;
  changed: Array<{ user: string; from: string; to: string }>;
}

export function diffRoleMap(before: Record<string, string>, after: Record<string, string>): RoleMapChanges {
  const changes: RoleMapChanges = { added: [], removed: [], changed: [] };
  for (const [user, role] of Object.entries(after)) {
    if (!Object.hasOwn(before, user)) changes.added.push({ user, role });
    else if (before[user] !== role) changes.changed.push({ user, from: before[user] as string, to: role });
  }
  for (const [user, role] of Object.entries(before)) {
    if (!Object.hasOwn(after, user)) changes.removed.push({ user, role });
  }
  return changes;
}

/** Re-reads the auth file (SIGHUP). No auth file (trust) gives no users. Throws ConfigError naming file and line. */
export function reloadUsers(config: ProxyConfig): AuthUsers {
  if (config.authFile === undefined) return new Map();
  return readAuthUsers(config.authFile, 'auth-file');
}

/** --conflict-retry and its bounds; undefined when off. */
function conflictRetry(src: Sources): RetrySettings | undefined {
  const mode = src.get('conflict-retry')?.value ?? 'transactions';
  if (mode === 'off') return undefined;
  return {
    mode,
    bufferBytes: src.get('conflict-retry-buffer')?.value ?? 1024 * 1024,
    attempts: src.get('conflict-retry-attempts')?.value ?? 3,
  };
}
