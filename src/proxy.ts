import type net from 'node:net';
import { AdminServer } from './admin/admin-server.js';
import { HealthState } from './admin/health.js';
import { AuthDelay } from './auth/auth-delay.js';
import type { AuthUsers } from './auth/types.js';
import {
  type ClusterConfig,
  diffRoleMap,
  formatHostPort,
  type HostPort,
  type ProxyConfig,
  type RoleMapChanges,
  resolveRole,
} from './config/index.js';
import { Metrics } from './core/metrics.js';
import { ProxyError } from './errors.js';
import { createClientTls } from './handshake/client-tls.js';
import { Listener } from './listener/listener.js';
import type { Logger } from './log.js';
import { CancelRegistry } from './session/cancel-registry.js';
import type { CancelRoute, ClientSession, ClusterRoute } from './session/client-session.js';
import type { AwsCredentialIdentityProvider } from './token/credentials.js';
import type { TokenAction } from './token/signer.js';
import { type Connector, createConnector } from './upstream/connector.js';
import { DnsCache } from './upstream/dns-cache.js';
import { FailoverList } from './upstream/failover-list.js';
import { UpstreamPool } from './upstream/pool.js';
import { poolingConnector } from './upstream/pooled-connector.js';
import { ConnectionResetter } from './upstream/reset.js';
import { type ClusterContext, createEndpoint, sharedCredentials } from './wiring/endpoint.js';

/**
 * One cluster at run time: its failover list of endpoints (token caches, limiters), connector, pool of
 * idle upstream connections (--pool-mode session) and role map.
 */
export interface ClusterRuntime extends ClusterRoute {
  config: ClusterConfig;
  failover: FailoverList;
  upstreamPool: UpstreamPool | undefined;
  /** Local user -> DSQL role for new sessions; replaced on SIGHUP (config.roleMap is the one at start). */
  roleMap: Record<string, string>;
}

export interface RunningProxy {
  /** The first listener's address (the shared `listen` when a cluster uses it). */
  address: net.AddressInfo;
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

/** The clusters one listener serves, and where it listens. */
interface ListenerGroup {
  at: HostPort;
  clusters: ClusterRuntime[];
}

/** Wires the connection path together and starts listening. */
export async function startProxy(
  config: ProxyConfig,
  logger: Logger,
  opts: StartOptions = {},
): Promise<RunningProxy> {
  const metrics = new Metrics();
  const clusters = createClusters(config, metrics, logger, opts.credentials);
  const health = new HealthState(clusters.map((c) => ({ name: c.name, failover: c.failover })));
  let users = config.users;
  const clientTls = await createClientTls(config.clientTls, { logger });
  const groups = listenerGroups(config, clusters);
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
        ...(config.compat ? { compat: config.compat } : {}),
        ...(config.conflictRetry ? { conflictRetry: config.conflictRetry } : {}),
      }),
  );
  const allEndpoints = clusters.flatMap((c) => c.failover.endpoints);

  let admin: AdminServer | undefined;
  let shuttingDown: Promise<void> | undefined;
  const shutdown = (): Promise<void> => {
    shuttingDown ??= (async () => {
      health.markDraining();
      if (config.minShutdownDelayMs > 0) {
        logger.info({ event: 'shutdown_delay', min_delay_ms: config.minShutdownDelayMs });
        await new Promise((r) => setTimeout(r, config.minShutdownDelayMs));
      }
      await Promise.all(listeners.map((l) => l.shutdown(config.maxShutdownDelayMs)));
      for (const c of clusters) c.upstreamPool?.close();
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
  if (config.adminListen) {
    admin = await startAdmin(config, config.adminListen, { health, metrics, logger, clusters }, () =>
      opts.onQuit ? opts.onQuit() : void shutdown(),
    );
  }
  // Sign both kinds up front: signing is local and cheap, and a first client must not wait on it.
  // Failures are logged by the cache and retried in the background; clients are told why meanwhile.
  await Promise.all(allEndpoints.map((ep) => ep.tokens.start(ACTIONS)));
  const address = await listenAll(config, groups, listeners, logger);
  health.markListening();

  return {
    address,
    users: () => users,
    setUsers(next) {
      users = next;
    },
    setRoleMaps: (maps) => setRoleMaps(clusters, maps),
    shutdown,
  };
}

/** Every cluster's runtime, with credentials shared between clusters that use the same ones. */
function createClusters(
  config: ProxyConfig,
  metrics: Metrics,
  logger: Logger,
  override: AwsCredentialIdentityProvider | undefined,
): ClusterRuntime[] {
  const credentialsFor = sharedCredentials(logger, override);
  const dns = createDnsCache(config, metrics, logger);
  const several = config.clusters.length > 1;
  // The idle-connections gauge counts every cluster's pool of upstream connections.
  const idle = new Map<string, number>();
  return config.clusters.map((cluster) =>
    createCluster({
      config,
      cluster,
      credentials: credentialsFor(cluster),
      dns,
      metrics,
      logger: several ? logger.child({ cluster: cluster.name }) : logger,
      onIdle: (n) => {
        idle.set(cluster.name, n);
        metrics.poolIdle.set([...idle.values()].reduce((a, b) => a + b, 0));
      },
    }),
  );
}

/**
 * The shared listener serves the clusters without their own `listen` (by database name when there
 * are several), first; a cluster with its own `listen` gets a listener of its own.
 */
function listenerGroups(config: ProxyConfig, clusters: ClusterRuntime[]): ListenerGroup[] {
  const groups: ListenerGroup[] = [];
  const shared = clusters.filter((c) => c.config.listen === undefined);
  if (shared.length > 0) groups.push({ at: config.listen, clusters: shared });
  for (const c of clusters) if (c.config.listen) groups.push({ at: c.config.listen, clusters: [c] });
  return groups;
}

/** Starts the admin HTTP server (health, metrics, /quitquitquit). */
async function startAdmin(
  config: ProxyConfig,
  at: HostPort,
  deps: { health: HealthState; metrics: Metrics; logger: Logger; clusters: readonly ClusterRuntime[] },
  quit: () => void,
): Promise<AdminServer> {
  const { metrics, logger, clusters } = deps;
  const admin = new AdminServer({
    health: deps.health,
    metrics,
    logger,
    beforeScrape: () => refreshGauges(clusters, metrics),
    quit,
    allowQuit: config.adminQuitquitquit,
  });
  const address = await admin.listen(at.host, at.port);
  logger.info({
    event: 'admin_listening',
    address: address.address,
    port: address.port,
    quitquitquit: config.adminQuitquitquit,
  });
  return admin;
}

/**
 * Opens every listener, then the Unix socket (it belongs to the first listener, the shared one when a
 * cluster uses it), logs where; returns the first listener's address.
 */
async function listenAll(
  config: ProxyConfig,
  groups: readonly ListenerGroup[],
  listeners: readonly Listener[],
  logger: Logger,
): Promise<net.AddressInfo> {
  const addresses: Array<{ address: net.AddressInfo; clusters: string[] }> = [];
  for (const [i, g] of groups.entries()) {
    const address = await (listeners[i] as Listener).listen(g.at);
    addresses.push({ address, clusters: g.clusters.map((c) => c.name) });
  }
  const address = (addresses[0] as (typeof addresses)[number]).address;
  const unixSocketPath = config.unixSocketDir
    ? await (listeners[0] as Listener).listenUnix(config.unixSocketDir, address.port)
    : undefined;
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
    ...describeClusters(config),
    connect_rate: config.connectRate,
    connect_burst: config.connectBurst,
    auth_method: config.authMethod,
    max_connections: config.maxConnections,
    client_tls: config.clientTls.enabled ? (config.clientTls.required ? 'required' : 'on') : 'off',
    pool_mode: config.poolMode,
  });
  return address;
}

/** The clusters and endpoints for the `listening` log line (no secrets: names, regions, addresses). */
function describeClusters(config: ProxyConfig): {
  clusters: object[];
  endpoints: object[];
  token_ttl_s: number;
} {
  const several = config.clusters.length > 1;
  return {
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
    // The first cluster's, as before there were several.
    token_ttl_s: (config.clusters[0] as ClusterConfig).tokenTtlSeconds,
  };
}

/** Applies reloaded role maps to new sessions; returns what changed per cluster, names only. */
function setRoleMaps(
  clusters: readonly ClusterRuntime[],
  maps: ReadonlyMap<string, Record<string, string>>,
): Array<{ cluster: string } & RoleMapChanges> {
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
}

/**
 * A listener's router from the client's database name to a cluster: a single cluster takes any name
 * (DSQL's database is always `postgres`); several are chosen by name, and an unknown name gets 3D000.
 */
export function routeByDatabase(
  clusters: readonly ClusterRoute[],
): (database: string) => ClusterRoute | ProxyError {
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

/** One cluster: its failover list, connector (pooling with --pool-mode session) and role map. */
function createCluster(ctx: ClusterContext & { onIdle: (idle: number) => void }): ClusterRuntime {
  const { config, cluster, metrics, logger } = ctx;
  const failover = new FailoverList(
    cluster.endpoints.map((e) => createEndpoint(ctx, e)),
    {
      onStateChange: (ep, up, d) => {
        const endpoint = ep.target.hostname;
        if (up) logger.info({ event: 'endpoint_up', endpoint });
        else logger.warn({ event: 'endpoint_down', endpoint, error: d.error, retry_in_ms: d.retryInMs });
      },
    },
  );
  const baseConnector = createConnector({
    failover,
    connectTimeoutMs: config.connectTimeoutMs,
    queueTimeoutMs: config.connectQueueTimeoutMs,
    metrics,
  });
  const upstreamPool =
    config.poolMode === 'session'
      ? new UpstreamPool({
          maxIdlePerKey: config.poolMaxIdle,
          maxIdleTotal: config.poolMaxIdleTotal,
          idleTimeoutMs: config.poolIdleTimeoutMs,
          maxAgeMs: config.maxUpstreamAgeMs,
          log: logger,
          onChange: ctx.onIdle,
        })
      : undefined;
  const connector: Connector = upstreamPool
    ? poolingConnector({
        base: baseConnector,
        pool: upstreamPool,
        resetter: new ConnectionResetter(config.connectTimeoutMs),
        metrics,
        log: logger,
      })
    : baseConnector;
  const runtime: ClusterRuntime = {
    name: cluster.name,
    config: cluster,
    failover,
    upstreamPool,
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

/** Gauges that are computed at scrape time rather than kept up to date. */
function refreshGauges(clusters: readonly ClusterRuntime[], metrics: Metrics): void {
  const now = Date.now();
  let credentialsExpiration: number | undefined;
  for (const ep of clusters.flatMap((c) => c.failover.endpoints)) {
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
    for (const e of c.failover.status()) {
      metrics.endpointUp.set({ cluster: c.name, endpoint: e.hostname, region: e.region }, e.up ? 1 : 0);
    }
  }
  if (credentialsExpiration === undefined) metrics.credentialsExpiry.reset();
  else metrics.credentialsExpiry.set((credentialsExpiration - now) / 1000);
}
