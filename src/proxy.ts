import type net from 'node:net';
import { AdminServer } from './admin/admin-server.js';
import { HealthState } from './admin/health.js';
import { AuthDelay } from './auth/auth-delay.js';
import type { AuthUsers } from './auth/types.js';
import {
  type ClusterConfig,
  diffRoleMap,
  type EndpointConfig,
  formatHostPort,
  type ProxyConfig,
  type RoleMapChanges,
  resolveRole,
} from './config/index.js';
import { Metrics } from './core/metrics.js';
import { ProxyError } from './errors.js';
import { createClientTls } from './frontend/client-tls.js';
import { Listener } from './listener/listener.js';
import type { Logger } from './log.js';
import { CancelRegistry } from './session/cancel-registry.js';
import type { CancelRoute, ClientSession, SessionCluster } from './session/session.js';
import { type AwsCredentialIdentityProvider, createCredentialProvider } from './token/credentials.js';
import { createTokenSigner, type TokenAction } from './token/signer.js';
import { TokenCache } from './token/token-cache.js';
import { type Connector, createConnector } from './upstream/connector.js';
import { DnsCache } from './upstream/dns-cache.js';
import { EndpointPool, type PoolEndpoint } from './upstream/endpoint-pool.js';
import { UpstreamPool } from './upstream/pool.js';
import { poolingConnector } from './upstream/pooled-connector.js';
import { ConnectRateLimiter } from './upstream/rate-limiter.js';
import { ConnectionResetter } from './upstream/reset.js';
import { createTarget } from './upstream/target.js';

/** One cluster at run time: its endpoints (token caches, limiters), connector, session pool and role map. */
export interface ClusterRuntime extends SessionCluster {
  config: ClusterConfig;
  pool: EndpointPool;
  sessionPool: UpstreamPool | undefined;
  /** Local user -> DSQL role for new sessions; replaced on SIGHUP (config.roleMap is the one at start). */
  roleMap: Record<string, string>;
}

export interface RunningProxy {
  /** The first listener's address (the shared `listen` when a cluster uses it). */
  address: net.AddressInfo;
  /** Every TCP listener with the clusters it serves, the shared one first. */
  addresses: Array<{ address: net.AddressInfo; clusters: string[] }>;
  adminAddress: net.AddressInfo | undefined;
  unixSocketPath: string | undefined;
  /** The first cluster's first endpoint's token cache. */
  tokens: TokenCache;
  /** The first cluster's endpoints. */
  endpoints: EndpointPool;
  clusters: ClusterRuntime[];
  /** The first listener. */
  listener: Listener;
  listeners: Listener[];
  metrics: Metrics;
  health: HealthState;
  /** The local users new logins are checked against. */
  users(): AuthUsers;
  /** Replaces the local users (SIGHUP reload) without touching open sessions. */
  setUsers(users: AuthUsers): void;
  /**
   * Replaces the role maps (cluster name -> local user -> DSQL role; SIGHUP reload) for new sessions;
   * open sessions keep their role. Returns what changed per cluster, names only.
   */
  setRoleMaps(maps: ReadonlyMap<string, Record<string, string>>): Array<{ cluster: string } & RoleMapChanges>;
  /**
   * The shutdown sequence (SIGTERM, /quitquitquit): readiness turns 503; new clients are still
   * accepted for min-shutdown-delay; then listeners close and sessions drain for up to
   * max-shutdown-delay; the rest are ended with 57P01. Calling it again returns the same promise.
   */
  shutdown(): Promise<void>;
}

export interface StartOptions {
  /** Overrides the default AWS credential chain (the demo, tests). */
  credentials?: AwsCredentialIdentityProvider;
  /** What POST /quitquitquit does; default: shutdown(). The CLI routes it through its signal handling. */
  onQuit?: () => void;
}

const ACTIONS: TokenAction[] = ['DbConnect', 'DbConnectAdmin'];

/** Wires the connection path together and starts listening. */
export async function startProxy(
  config: ProxyConfig,
  logger: Logger,
  opts: StartOptions = {},
): Promise<RunningProxy> {
  const metrics = new Metrics();
  const providers = new Map<string, AwsCredentialIdentityProvider>();
  const credentialsFor = (c: ClusterConfig): AwsCredentialIdentityProvider => {
    if (opts.credentials) return opts.credentials;
    const stsRegion = c.assumeRole === undefined ? undefined : c.endpoints[0]?.region;
    // Clusters with the same profile and role share one provider (and its cached credentials).
    const key = JSON.stringify([c.profile ?? null, c.assumeRole ?? null, stsRegion ?? null]);
    let provider = providers.get(key);
    if (!provider) {
      provider = createCredentialProvider({
        logger,
        ...(c.profile === undefined ? {} : { profile: c.profile }),
        ...(c.assumeRole === undefined ? {} : { assumeRole: c.assumeRole }),
        ...(stsRegion === undefined ? {} : { stsRegion }),
      });
      providers.set(key, provider);
    }
    return provider;
  };
  const dns = createDnsCache(config, metrics, logger);
  const several = config.clusters.length > 1;
  // The idle-connections gauge counts every cluster's session pool.
  const idle = new Map<string, number>();
  const onIdle = (name: string, n: number): void => {
    idle.set(name, n);
    metrics.poolIdle.set([...idle.values()].reduce((a, b) => a + b, 0));
  };
  const clusters = config.clusters.map((c) =>
    createCluster(
      config,
      c,
      credentialsFor(c),
      dns,
      metrics,
      several ? logger.child({ cluster: c.name }) : logger,
      (n) => onIdle(c.name, n),
    ),
  );
  const first = clusters[0] as ClusterRuntime;
  const tokens = (first.pool.endpoints[0] as PoolEndpoint).tokens;
  const health = new HealthState(clusters.map((c) => ({ name: c.name, pool: c.pool })));
  let users = config.users;
  const clientTls = await createClientTls(config.clientTls, { logger });

  // The shared listener serves the clusters without their own `listen` (by database name when there
  // are several); a cluster with its own `listen` gets a listener of its own.
  const groups: Array<{ at: { host: string; port: number }; clusters: ClusterRuntime[] }> = [];
  const shared = clusters.filter((c) => c.config.listen === undefined);
  if (shared.length > 0) groups.push({ at: config.listen, clusters: shared });
  for (const c of clusters) if (c.config.listen) groups.push({ at: c.config.listen, clusters: [c] });
  const cancels = new CancelRegistry<CancelRoute>();
  const admitted = new Set<ClientSession>();
  const authDelay = new AuthDelay();
  const listeners = groups.map(
    (g) =>
      new Listener({
        authMethod: config.authMethod,
        users: () => users,
        route: routeByDatabase(g.clusters),
        clientTls,
        authDelay,
        cancels,
        admitted,
        logger,
        loginTimeoutMs: config.loginTimeoutMs,
        connectTimeoutMs: config.connectTimeoutMs,
        metrics,
        maxConnections: config.maxConnections,
        maxUpstreamAgeMs: config.maxUpstreamAgeMs,
        startupParamsMode: config.startupParamsMode,
      }),
  );
  const allEndpoints = clusters.flatMap((c) => c.pool.endpoints);

  let shuttingDown: Promise<void> | undefined;
  const shutdown = (): Promise<void> => {
    shuttingDown ??= (async () => {
      health.markDraining();
      if (config.minShutdownDelayMs > 0) {
        logger.info({ event: 'shutdown_delay', min_delay_ms: config.minShutdownDelayMs });
        await new Promise((r) => setTimeout(r, config.minShutdownDelayMs));
      }
      await Promise.all(listeners.map((l) => l.shutdown(config.maxShutdownDelayMs)));
      for (const c of clusters) c.sessionPool?.close();
      for (const ep of allEndpoints) {
        ep.tokens.stop();
        ep.limiter?.close(new ProxyError('ADMIN_SHUTDOWN'));
      }
      await admin?.close();
      health.close();
      clientTls.close?.();
    })();
    return shuttingDown;
  };

  // The admin listener comes first, so /startup can say 503 while the rest starts.
  let admin: AdminServer | undefined;
  let adminAddress: net.AddressInfo | undefined;
  if (config.adminListen) {
    admin = new AdminServer({
      health,
      metrics,
      logger,
      beforeScrape: () => refreshGauges(clusters, metrics),
      quit: opts.onQuit ?? (() => void shutdown()),
      allowQuit: config.adminQuitquitquit,
    });
    adminAddress = await admin.listen(config.adminListen.host, config.adminListen.port);
    logger.info({
      event: 'admin_listening',
      address: adminAddress.address,
      port: adminAddress.port,
      quitquitquit: config.adminQuitquitquit,
    });
  }

  // Sign both kinds up front: signing is local and cheap, and a first client must not wait on it.
  // Failures are logged by the cache and retried in the background; clients are told why meanwhile.
  await Promise.all(allEndpoints.map((ep) => ep.tokens.start(ACTIONS)));
  const addresses: RunningProxy['addresses'] = [];
  for (const [i, g] of groups.entries()) {
    const address = await (listeners[i] as Listener).listen(g.at);
    addresses.push({ address, clusters: g.clusters.map((c) => c.name) });
  }
  const listener = listeners[0] as Listener;
  const address = (addresses[0] as RunningProxy['addresses'][number]).address;
  // The Unix socket belongs to the first listener (the shared one when a cluster uses it).
  const unixSocketPath = config.unixSocketDir
    ? await listener.listenUnix(config.unixSocketDir, address.port)
    : undefined;
  health.markListening();
  logger.info({
    event: 'listening',
    address: address.address,
    port: address.port,
    unix_socket: unixSocketPath,
    listeners: addresses.map((a) => ({
      address: a.address.address,
      port: a.address.port,
      clusters: a.clusters,
    })),
    clusters: config.clusters.map((c) => ({
      name: c.name,
      token_ttl_s: c.tokenTtlSeconds,
      ...(c.profile === undefined ? {} : { profile: c.profile }),
      ...(c.assumeRole === undefined ? {} : { assume_role: c.assumeRole }),
      ...(c.listen === undefined ? {} : { listen: formatHostPort(c.listen) }),
    })),
    endpoints: config.clusters.flatMap((c) =>
      c.endpoints.map((e) => ({
        ...(several ? { cluster: c.name } : {}),
        endpoint: e.hostname,
        region: e.region,
        connect_to: formatHostPort(e.connectTo),
        ssl_negotiation: config.upstreamSslNegotiation,
      })),
    ),
    connect_rate: config.connectRate,
    connect_burst: config.connectBurst,
    auth_method: config.authMethod,
    token_ttl_s: config.tokenTtlSeconds,
    max_connections: config.maxConnections,
    client_tls: config.clientTls.enabled ? (config.clientTls.required ? 'required' : 'on') : 'off',
    pool_mode: config.poolMode,
  });

  return {
    address,
    addresses,
    adminAddress,
    unixSocketPath,
    tokens,
    endpoints: first.pool,
    clusters,
    listener,
    listeners,
    metrics,
    health,
    users: () => users,
    setUsers(next) {
      users = next;
    },
    setRoleMaps(maps) {
      const changes: Array<{ cluster: string } & RoleMapChanges> = [];
      for (const c of clusters) {
        const next = maps.get(c.name);
        if (next === undefined) continue;
        const diff = diffRoleMap(c.roleMap, next);
        c.roleMap = next;
        if (diff.added.length + diff.removed.length + diff.changed.length > 0) {
          changes.push({ cluster: c.name, ...diff });
        }
      }
      return changes;
    },
    shutdown,
  };
}

/**
 * A listener's router from the client's database name to a cluster: a single cluster takes any name
 * (DSQL's database is always `postgres`); several are chosen by name, and an unknown name gets 3D000.
 */
export function routeByDatabase(
  clusters: readonly SessionCluster[],
): (database: string) => SessionCluster | ProxyError {
  const only = clusters.length === 1 ? clusters[0] : undefined;
  if (only) return () => only;
  const byName = new Map(clusters.map((c) => [c.name, c]));
  const names = clusters.map((c) => c.name);
  return (database) =>
    byName.get(database) ??
    new ProxyError('UNKNOWN_DATABASE', {
      message: `database "${database}" does not exist`,
      detail: `This dsql-proxy listener serves the clusters ${names.join(', ')}; the database name picks one.`,
      hint: `Connect with one of them as the database name, e.g. psql -d ${names[0]}.`,
    });
}

/** One cluster: its endpoint pool, connector (pooling with --pool-mode session) and role map. */
function createCluster(
  config: ProxyConfig,
  cluster: ClusterConfig,
  credentials: AwsCredentialIdentityProvider,
  dns: DnsCache | undefined,
  metrics: Metrics,
  logger: Logger,
  onIdle: (idle: number) => void,
): ClusterRuntime {
  const pool = new EndpointPool(
    cluster.endpoints.map((e) => createEndpoint(config, cluster, e, credentials, dns, metrics, logger)),
    {
      onStateChange: (ep, up, d) => {
        const endpoint = ep.target.hostname;
        if (up) logger.info({ event: 'endpoint_up', endpoint });
        else logger.warn({ event: 'endpoint_down', endpoint, error: d.error, retry_in_ms: d.retryInMs });
      },
    },
  );
  const baseConnector = createConnector({
    pool,
    connectTimeoutMs: config.connectTimeoutMs,
    queueTimeoutMs: config.connectQueueTimeoutMs,
    metrics,
  });
  const sessionPool =
    config.poolMode === 'session'
      ? new UpstreamPool({
          maxIdlePerKey: config.poolMaxIdle,
          maxIdleTotal: config.poolMaxIdleTotal,
          idleTimeoutMs: config.poolIdleTimeoutMs,
          maxAgeMs: config.maxUpstreamAgeMs,
          log: logger,
          onChange: onIdle,
        })
      : undefined;
  const connector: Connector = sessionPool
    ? poolingConnector({
        base: baseConnector,
        pool: sessionPool,
        resetter: new ConnectionResetter(config.connectTimeoutMs),
        metrics,
        log: logger,
      })
    : baseConnector;
  const runtime: ClusterRuntime = {
    name: cluster.name,
    config: cluster,
    pool,
    sessionPool,
    connector,
    roleMap: cluster.roleMap,
    // Read at each login, so a reloaded map applies to the next session.
    resolveRole: (user) => resolveRole(runtime, user),
  };
  return runtime;
}

/** One cache of endpoint addresses for every cluster; none with --dns-cache-ttl 0. */
function createDnsCache(config: ProxyConfig, metrics: Metrics, logger: Logger): DnsCache | undefined {
  if (config.dnsCacheTtlMs === 0) return undefined;
  return new DnsCache({
    ttlMs: config.dnsCacheTtlMs,
    onEvent: (ev) => {
      const host = ev.hostname;
      metrics.dnsLookups.inc({ host, result: ev.type });
      if (ev.type === 'resolved') {
        logger.debug({ event: 'dns_resolved', host, addresses: ev.addresses, duration_ms: ev.ms });
      } else if (ev.type === 'failed' && ev.stale) {
        // Without an earlier address the connection fails, and its own error line says why.
        logger.warn({ event: 'dns_lookup_failed', host, code: ev.code, using: 'the last address' });
      }
    },
  });
}

/** One endpoint: its own target (SNI, dial address), token cache (region) and rate limiter. */
function createEndpoint(
  config: ProxyConfig,
  cluster: ClusterConfig,
  e: EndpointConfig,
  credentials: AwsCredentialIdentityProvider,
  dns: DnsCache | undefined,
  metrics: Metrics,
  logger: Logger,
): PoolEndpoint {
  const endpoint = e.hostname;
  const target = createTarget({
    hostname: e.hostname,
    region: e.region,
    connectHost: e.connectTo.host,
    connectPort: e.connectTo.port,
    caPem: cluster.caPem,
    sslNegotiation: config.upstreamSslNegotiation,
    dns,
  });
  const tokens = new TokenCache({
    sign: createTokenSigner({
      hostname: e.hostname,
      region: e.region,
      credentials,
      ttlSeconds: cluster.tokenTtlSeconds,
    }),
    logger: cluster.endpoints.length > 1 ? logger.child({ endpoint }) : logger,
    onEvent: (ev) => {
      if (ev.type === 'signed') metrics.tokenSignings.inc({ endpoint, action: ev.action });
      else metrics.tokenFailures.inc({ endpoint, action: ev.action });
    },
    ...(cluster.profile === undefined ? {} : { profile: cluster.profile }),
  });
  const limiter =
    config.connectRate > 0
      ? new ConnectRateLimiter({
          ratePerSecond: config.connectRate,
          burst: config.connectBurst,
          onQueueLength: (n) => metrics.connectQueueLength.set({ endpoint }, n),
        })
      : undefined;
  metrics.connectQueueLength.set({ endpoint }, 0);
  return { target, tokens, limiter };
}

/** Gauges that are computed at scrape time rather than kept up to date. */
function refreshGauges(clusters: readonly ClusterRuntime[], metrics: Metrics): void {
  const now = Date.now();
  let credentialsExpiration: number | undefined;
  for (const ep of clusters.flatMap((c) => c.pool.endpoints)) {
    const endpoint = ep.target.hostname;
    for (const action of ACTIONS) {
      const t = ep.tokens.peek(action);
      if (!t) continue;
      metrics.tokenExpiry.set({ endpoint, action }, (t.expiresAt - now) / 1000);
      if (t.credentialsExpiration !== undefined) {
        credentialsExpiration = Math.min(
          credentialsExpiration ?? Number.POSITIVE_INFINITY,
          t.credentialsExpiration,
        );
      }
    }
  }
  for (const c of clusters) {
    for (const e of c.pool.status()) {
      metrics.endpointUp.set({ cluster: c.name, endpoint: e.hostname, region: e.region }, e.up ? 1 : 0);
    }
  }
  if (credentialsExpiration === undefined) metrics.credentialsExpiry.reset();
  else metrics.credentialsExpiry.set((credentialsExpiration - now) / 1000);
}
