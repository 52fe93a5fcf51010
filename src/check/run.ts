/**
 * `dsql-proxy check`: a preflight that walks the path a client connection takes, one step at a time,
 * with the same configuration the proxy would use, and stops at the first step that fails with the
 * reason and what to do about it.
 *
 *   config → credentials → token → dns (host names only) → tls → login → query
 *
 * Secrets never reach the output: the secret key, session token and token are not printed, and the
 * access key id only as its first and last four characters.
 */
import dns from 'node:dns';
import { isIP } from 'node:net';
import type tls from 'node:tls';
import {
  type ClusterConfig,
  ConfigError,
  type EndpointConfig,
  loadConfig,
  type ProxyConfig,
  wantsHelp,
} from '../config/index.js';
import { regionFromEndpoint } from '../config/region.js';
import { formatDuration } from '../core/duration.js';
import { ProxyError } from '../errors.js';
import { createLogger } from '../log.js';
import { frontendTerminate } from '../protocol/to-server.js';
import {
  type AwsCredentialIdentity,
  type AwsCredentialIdentityProvider,
  describeCredentialError,
  scrubSecrets,
} from '../token/credentials.js';
import {
  actionForRole,
  createTokenSigner,
  type SignedToken,
  TokenSignError,
  type TokenSigner,
  type TokenSignerOptions,
} from '../token/signer.js';
import { dialUpstream } from '../upstream/dial.js';
import { DnsCache, type Resolve } from '../upstream/dns-cache.js';
import { loginUpstream, type UpstreamLogin } from '../upstream/login.js';
import { simpleQuery } from '../upstream/simple-query.js';
import { clusterCredentials, endpointTarget, signerOptions } from '../wiring/endpoint.js';
import {
  certName,
  describeCredentialSource,
  humanDuration,
  isoSeconds,
  maskAccessKeyId,
} from './describe.js';

export const CHECK_USAGE = `Usage: dsql-proxy check [--role NAME] [--cluster NAME] [options]

Checks, step by step, what the proxy would use: configuration, AWS credentials, token signing,
the endpoint's addresses (DNS), the TLS handshake with the endpoint, a login and SELECT 1. Stops
at the first failure (exit 1; exit 2 for a configuration error).

  --role NAME   DSQL role to log in as (default admin; admin needs dsql:DbConnectAdmin,
                every other role dsql:DbConnect)
  --cluster NAME  with clusters: in the config file, check only this one (default: every
                cluster, in file order)

Every option of the proxy is accepted (dsql-proxy --help), so
\`dsql-proxy check --config prod.yaml\` checks exactly what \`dsql-proxy --config prod.yaml\` uses.
`;

/** SQLSTATEs for "no such function" / "no such schema": a server without sys.iam_session_user(). */
const NO_IAM_FUNCTION = new Set(['42883', '3F000']);

/** Seams for unit tests; the CLI uses the defaults. */
export interface CheckDeps {
  /** Replaces the default AWS credential chain. */
  credentials?: AwsCredentialIdentityProvider;
  /** Replaces the production token signer factory. */
  createSigner?: (opts: TokenSignerOptions) => TokenSigner;
  /** Replaces the system resolver (getaddrinfo) of the dns step. */
  resolve?: Resolve;
  now?: () => number;
}

/** Thrown inside a step: the reason shown after `✗ step:` and an optional hint. */
class StepFailure extends Error {
  constructor(
    message: string,
    readonly hint?: string,
    readonly detail?: string,
  ) {
    super(message);
  }
}

class Report {
  constructor(private readonly out: NodeJS.WritableStream) {}
  ok(step: string, detail: string): void {
    this.out.write(`✓ ${step}: ${detail}\n`);
  }
  fail(step: string, failure: StepFailure): void {
    this.out.write(`✗ ${step}: ${failure.message}\n`);
    if (failure.detail) this.out.write(`  detail: ${failure.detail}\n`);
    if (failure.hint) this.out.write(`  hint: ${failure.hint}\n`);
  }
  line(text: string): void {
    this.out.write(`  ${text}\n`);
  }
}

/**
 * Runs the check. `argv` is what follows `check` on the command line; `env` is used for the
 * configuration (the AWS SDK itself reads process.env, as in the proxy). Returns the exit code:
 * 0 when every step passed, 1 at the first failed step, 2 for a configuration error.
 */
export async function runCheck(
  argv: string[],
  env: NodeJS.ProcessEnv,
  out: NodeJS.WritableStream,
  deps: CheckDeps = {},
): Promise<number> {
  const report = new Report(out);
  const now = deps.now ?? Date.now;
  if (wantsHelp(argv)) {
    out.write(CHECK_USAGE);
    return 0;
  }

  // 1. config
  let config: ProxyConfig;
  let role: string;
  let clusters: ClusterConfig[];
  try {
    const split = takeRole(argv);
    role = split.role;
    config = loadConfig(split.rest, env);
    clusters = config.clusters.filter((c) => split.cluster === undefined || c.name === split.cluster);
    if (clusters.length === 0) {
      const names = config.clusters.map((c) => c.name).join(', ');
      throw new ConfigError(`--cluster ${split.cluster} is not one of the clusters (${names})`, {
        key: 'cluster',
      });
    }
  } catch (err) {
    if (err instanceof ConfigError) {
      report.fail(
        'config',
        new StepFailure(err.message, 'See `dsql-proxy check --help` and `dsql-proxy --help`.'),
      );
      return 2;
    }
    throw err;
  }
  if (config.clusters.length === 1) {
    const cluster = config.clusters[0] as ClusterConfig;
    report.ok('config', describeConfig(config, cluster));
    for (const warning of config.warnings) report.line(`note: ${warning}`);
    return checkCluster({ config, cluster, endpoint: firstEndpoint(cluster), role, report, deps, now });
  }
  for (const warning of config.warnings) report.line(`note: ${warning}`);
  // Every cluster (or --cluster), each with its own credentials, token and endpoint; a failure in
  // one does not stop the others. Exit 1 if any failed.
  let code = 0;
  for (const cluster of clusters) {
    out.write(`cluster ${cluster.name}:\n`);
    report.ok('config', describeConfig(config, cluster));
    const ctx = { config, cluster, endpoint: firstEndpoint(cluster), role, report, deps, now };
    code = Math.max(code, await checkCluster(ctx));
  }
  return code;
}

/** Only the first endpoint is checked: the others share credentials and role. */
function firstEndpoint(cluster: ClusterConfig): EndpointConfig {
  return cluster.endpoints[0] as EndpointConfig;
}

/** One cluster's check: what it runs against, and where it reports. */
interface ClusterCheck {
  config: ProxyConfig;
  cluster: ClusterConfig;
  endpoint: EndpointConfig;
  role: string;
  report: Report;
  deps: CheckDeps;
  now: () => number;
}

/** Runs one step: reports ✓ with its detail, or ✗ with the reason and stops the check. */
type Step = <T>(name: string, run: () => Promise<T>, detail: (value: T) => string) => Promise<T>;

function stepper(report: Report): Step {
  return async (name, run, detail) => {
    let value: Awaited<ReturnType<typeof run>>;
    try {
      value = await run();
    } catch (err) {
      report.fail(name, asFailure(err));
      throw stop;
    }
    report.ok(name, detail(value));
    return value;
  };
}

/** Steps 2-7 for one cluster (its first endpoint): 0 when all passed, 1 at the first failure. */
async function checkCluster(ctx: ClusterCheck): Promise<number> {
  const { config, report } = ctx;
  const step = stepper(report);
  let socket: tls.TLSSocket | undefined;
  try {
    const token = await credentialsAndToken(ctx, step);
    const addresses = await dnsStep(ctx, step);
    socket = await tlsStep(ctx, step, addresses);
    const tlsSocket = socket;
    // Late errors (a reset after Terminate) must not crash the check; reads report their own errors.
    tlsSocket.on('error', () => {});
    await loginAndQuery(ctx, step, tlsSocket, token);
    report.line(`- iam identity: ${await iamIdentity(tlsSocket, config.connectTimeoutMs)}`);
    return 0;
  } catch (err) {
    if (err === stop) return 1;
    throw err;
  } finally {
    if (socket && !socket.destroyed) {
      // Say goodbye properly, then make sure nothing keeps the process alive.
      const s = socket;
      s.end(frontendTerminate());
      setTimeout(() => s.destroy(), 200).unref();
    }
  }
}

/** Steps 2 and 3: the cluster's AWS credentials, as the proxy builds them, then a signed token. */
async function credentialsAndToken(ctx: ClusterCheck, step: Step): Promise<string> {
  const { config, cluster, endpoint, role, deps, now } = ctx;
  const timeoutMs = config.connectTimeoutMs;
  const provider = deps.credentials ?? clusterCredentials(cluster, createLogger({ level: config.logLevel }));
  const profileCtx = cluster.profile === undefined ? {} : { profile: cluster.profile };
  const credentials = await step(
    'credentials',
    () => resolveCredentials(provider, timeoutMs, now, profileCtx),
    (c) => describeCredentials(c, cluster.profile, now()),
  );
  const action = actionForRole(role);
  const signed = await step(
    'token',
    async () => {
      try {
        const sign = (deps.createSigner ?? createTokenSigner)({
          ...signerOptions(endpoint, cluster, async () => credentials),
          now,
        });
        return await withTimeout(sign(action), timeoutMs, 'signing the token');
      } catch (err) {
        throw signFailure(err, profileCtx);
      }
    },
    (t) => describeToken(t, action, role, endpoint.region, now()),
  );
  return signed.token;
}

/**
 * Step 4: the dial host's addresses, looked up as the proxy does (no step for an IP address). The
 * tls step dials the addresses found here.
 */
async function dnsStep(ctx: ClusterCheck, step: Step): Promise<DnsCache> {
  const { deps, now } = ctx;
  const addresses = new DnsCache({
    ttlMs: DNS_STEP_TTL_MS,
    ...(deps.resolve ? { resolve: deps.resolve } : {}),
  });
  const dialHost = ctx.endpoint.connectTo.host;
  if (isIP(dialHost) === 0) {
    const dnsStart = now();
    await step(
      'dns',
      () => lookUpDialHost(addresses, dialHost, ctx.config.connectTimeoutMs),
      (found) => `${dialHost} → ${found.map((a) => a.address).join(', ')} (${now() - dnsStart} ms)`,
    );
  }
  return addresses;
}

/** Step 5: the TLS handshake with the endpoint's target, built as the proxy builds it. */
function tlsStep(ctx: ClusterCheck, step: Step, addresses: DnsCache): Promise<tls.TLSSocket> {
  const { config, endpoint, now } = ctx;
  const target = endpointTarget(endpoint, ctx.cluster, config.upstreamSslNegotiation, addresses);
  const tlsStart = now();
  return step(
    'tls',
    () => dialUpstream(target, config.connectTimeoutMs),
    (s) => describeTls(s, config, endpoint, now() - tlsStart),
  );
}

/** Steps 6 and 7: a login with the token, then SELECT 1. */
async function loginAndQuery(
  ctx: ClusterCheck,
  step: Step,
  socket: tls.TLSSocket,
  token: string,
): Promise<void> {
  const { role, now } = ctx;
  const timeoutMs = ctx.config.connectTimeoutMs;
  const loginStart = now();
  const login = await step(
    'login',
    () =>
      loginUpstream(
        socket,
        { user: role, params: new Map([['application_name', 'dsql-proxy check']]), token },
        timeoutMs,
      ),
    (s) => describeLogin(s, role, now() - loginStart),
  );
  const queryStart = now();
  await step(
    'query',
    async () => {
      const result = await simpleQuery(socket, 'SELECT 1', timeoutMs, login.leftover);
      if (result.rows.length !== 1 || result.rows[0]?.[0] !== '1') {
        throw new StepFailure(`SELECT 1 returned ${JSON.stringify(result.rows)} instead of one row with 1`);
      }
      return result;
    },
    () => `SELECT 1 returned 1 (${now() - queryStart} ms)`,
  );
}

/** Marks "a step already reported its failure". */
const stop = Symbol('check stopped');

/** Splits `--role NAME` / `--role=NAME` off the proxy's own flags (which loadConfig checks strictly). */
export function takeRole(argv: readonly string[]): { role: string; cluster?: string; rest: string[] } {
  const rest: string[] = [];
  let role = 'admin';
  let cluster: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === '--') {
      rest.push(...argv.slice(i));
      break;
    }
    if (arg === '--role' || arg.startsWith('--role=')) {
      const value = arg === '--role' ? argv[++i] : arg.slice('--role='.length);
      if (value === undefined || value === '' || (arg === '--role' && value.startsWith('-'))) {
        throw new ConfigError('--role needs a DSQL role name, e.g. --role admin', { key: 'role' });
      }
      role = value;
      continue;
    }
    if (arg === '--cluster' || arg.startsWith('--cluster=')) {
      const value = arg === '--cluster' ? argv[++i] : arg.slice('--cluster='.length);
      if (value === undefined || value === '' || (arg === '--cluster' && value.startsWith('-'))) {
        throw new ConfigError('--cluster needs the name of a cluster from the config file', {
          key: 'cluster',
        });
      }
      cluster = value;
      continue;
    }
    rest.push(arg);
  }
  return { role, rest, ...(cluster === undefined ? {} : { cluster }) };
}

function describeConfig(config: ProxyConfig, cluster: ClusterConfig): string {
  const e = firstEndpoint(cluster);
  const fromHost = regionFromEndpoint(e.hostname) === e.region;
  const dial = `${formatHost(e.connectTo.host)}:${e.connectTo.port}`;
  const parts = [
    `endpoint ${e.hostname}`,
    `region ${e.region} (${fromHost ? 'from the hostname' : 'given explicitly'})`,
    `dial ${dial}${e.connectTo.host === e.hostname ? '' : ' (connect-to)'}`,
    `token TTL ${formatDuration(cluster.tokenTtlSeconds * 1000)}`,
    `connect timeout ${formatDuration(config.connectTimeoutMs)}`,
  ];
  if (cluster.caFile) parts.push(`extra CAs from ${cluster.caFile}`);
  // Only the first endpoint is checked: the others share credentials and role, and `check
  // --endpoint <other> --connect-to …` checks one of them on its own.
  const others = cluster.endpoints.slice(1).map((x) => x.hostname);
  if (others.length > 0) parts.push(`checking the first endpoint only (not ${others.join(', ')})`);
  return parts.join(', ');
}

function formatHost(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}

async function resolveCredentials(
  provider: AwsCredentialIdentityProvider,
  timeoutMs: number,
  now: () => number,
  ctx: { profile?: string },
): Promise<AwsCredentialIdentity> {
  let resolved: AwsCredentialIdentity;
  try {
    resolved = await withTimeout(provider(), timeoutMs, 'resolving AWS credentials');
  } catch (err) {
    if (err instanceof StepFailure) throw err;
    const d = describeCredentialError(err, ctx);
    throw new StepFailure(d.message, d.hint);
  }
  if (!resolved?.accessKeyId || !resolved.secretAccessKey) {
    throw new StepFailure(
      'the AWS credential provider returned incomplete credentials (no access key id or secret key)',
      describeCredentialError(new Error('Could not load credentials from any providers'), ctx).hint,
    );
  }
  const expiresAt = resolved.expiration?.getTime();
  if (expiresAt !== undefined && !(expiresAt > now())) {
    const d = describeCredentialError(
      Object.assign(new Error('credentials expired'), { name: 'ExpiredToken' }),
      ctx,
    );
    throw new StepFailure(`the AWS credentials expired at ${isoSeconds(expiresAt)}`, d.hint);
  }
  return resolved;
}

function describeCredentials(c: AwsCredentialIdentity, profile: string | undefined, nowMs: number): string {
  const parts = [describeCredentialSource(c, profile), `access key ${maskAccessKeyId(c.accessKeyId)}`];
  const accountId = (c as { accountId?: unknown }).accountId;
  if (typeof accountId === 'string' && /^\d{12}$/.test(accountId)) parts.push(`account ${accountId}`);
  const expiresAt = c.expiration?.getTime();
  if (expiresAt !== undefined) {
    parts.push(`expire ${isoSeconds(expiresAt)} (in ${humanDuration(expiresAt - nowMs)})`);
  } else if (c.sessionToken) {
    parts.push('temporary (session token), expiry not given');
  } else {
    parts.push('no expiry (long-term keys)');
  }
  return parts.join(', ');
}

function signFailure(err: unknown, ctx: { profile?: string }): StepFailure {
  if (err instanceof StepFailure) return err;
  const d = describeCredentialError(err, ctx);
  const generic = d.message.startsWith('could not get AWS credentials or sign a token');
  if (generic && err instanceof Error) {
    // TokenSignError texts are already scrubbed; anything else is scrubbed here.
    const text = err instanceof TokenSignError ? err.message : scrubSecrets(err.message);
    return new StepFailure(text || d.message, d.hint);
  }
  return new StepFailure(d.message, d.hint);
}

function describeToken(t: SignedToken, action: string, role: string, region: string, nowMs: number): string {
  const capped = t.credentialsExpireAt === undefined ? '' : ", capped by the credentials' expiry";
  return (
    `${action} for role ${role}, signed for ${region}, valid until ${isoSeconds(t.expiresAt)} ` +
    `(lifetime ${humanDuration(t.expiresAt - t.signedAt)}${capped}, ${humanDuration(t.expiresAt - nowMs)} left)`
  );
}

function describeTls(socket: tls.TLSSocket, config: ProxyConfig, e: EndpointConfig, ms: number): string {
  const cert = socket.getPeerCertificate();
  const parts = [`${socket.getProtocol() ?? 'unknown protocol'} ${socket.getCipher()?.name ?? ''}`.trim()];
  parts.push(
    config.upstreamSslNegotiation === 'direct'
      ? `direct TLS (ALPN ${socket.alpnProtocol || 'none'})`
      : 'TLS after an SSLRequest',
  );
  parts.push(`certificate ${certName(cert.subject)}`);
  if (cert.subjectaltname) parts.push(`SAN ${cert.subjectaltname}`);
  parts.push(`issuer ${certName(cert.issuer)}`);
  if (cert.valid_to) parts.push(`valid to ${cert.valid_to}`);
  const via =
    e.connectTo.host === e.hostname ? '' : ` (TCP to ${formatHost(e.connectTo.host)}:${e.connectTo.port})`;
  parts.push(`SNI and certificate check used ${e.hostname}${via}`);
  parts.push(`${ms} ms`);
  return parts.join(', ');
}

function describeLogin(s: UpstreamLogin, role: string, ms: number): string {
  const parts = [`logged in as ${role}`];
  const version = s.parameters.get('server_version');
  parts.push(version === undefined ? 'no server_version reported' : `server_version ${version}`);
  for (const name of ['server_encoding', 'TimeZone']) {
    const v = s.parameters.get(name);
    if (v !== undefined) parts.push(`${name} ${v}`);
  }
  parts.push(s.backendKey ? 'cancel key received' : 'no cancel key');
  parts.push(`${ms} ms`);
  return parts.join(', ');
}

async function iamIdentity(socket: tls.TLSSocket, timeoutMs: number): Promise<string> {
  try {
    const r = await simpleQuery(socket, 'SELECT sys.iam_session_user()', timeoutMs);
    const value = r.rows[0]?.[0];
    return value === undefined || value === null ? '(empty)' : value;
  } catch (err) {
    if (err instanceof ProxyError && NO_IAM_FUNCTION.has(err.sqlstate)) return 'not available on this server';
    const e = asFailure(err);
    return `could not be read: ${e.message}`;
  }
}

function asFailure(err: unknown): StepFailure {
  if (err instanceof StepFailure) return err;
  if (err instanceof ProxyError) {
    const code = err.code === 'UPSTREAM_REJECTED' ? ` (SQLSTATE ${err.sqlstate})` : '';
    return new StepFailure(`${scrubSecrets(err.message)}${code}`, err.hint, err.detail);
  }
  const text = err instanceof Error ? err.message : String(err);
  return new StepFailure(scrubSecrets(text) || 'unknown error');
}

/** Long enough that the tls step dials what the dns step found. */
const DNS_STEP_TTL_MS = 10 * 60_000;

/** The dns step: the host's addresses, or a failure that names the host and the resolver's code. */
function lookUpDialHost(cache: DnsCache, host: string, timeoutMs: number): Promise<dns.LookupAddress[]> {
  const found = new Promise<dns.LookupAddress[]>((resolve, reject) => {
    // With the hints Node's net.connect passes (ADDRCONFIG): the addresses the proxy's dial would get.
    cache.lookup(host, { all: true, hints: dns.ADDRCONFIG }, (err, addresses) => {
      if (err) {
        reject(
          new StepFailure(
            `${host} does not resolve (${err.code ?? err.message})`,
            'Check --endpoint (and --connect-to), and the DNS settings of this host or pod.',
          ),
        );
      } else resolve(addresses as dns.LookupAddress[]);
    });
  });
  return withTimeout(
    found,
    timeoutMs,
    `looking up ${host}`,
    'The resolver did not answer: check the DNS settings of this host or pod (/etc/resolv.conf), or raise --connect-timeout.',
  );
}

function withTimeout<T>(
  promise: Promise<T>,
  ms: number,
  what: string,
  hint = 'Raise --connect-timeout, or check that the credential source (SSO, STS, instance metadata) is reachable.',
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => {
      reject(new StepFailure(`timed out after ${formatDuration(ms)} ${what}`, hint));
    }, ms);
    promise.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(timer);
        reject(e);
      },
    );
  });
}
