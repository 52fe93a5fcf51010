import { randomBytes } from 'node:crypto';
import type net from 'node:net';
import { AdminServer } from './admin/admin-server.js';
import { HealthState } from './admin/health.js';
import { Metrics } from './admin/metrics.js';
import { AuthDelay } from './auth/auth-delay.js';
import type { AuthUsers } from './auth/types.js';
import { type EndpointConfig, formatHostPort, type ProxyConfig, resolveRole } from './config/index.js';
import { ProxyError } from './errors.js';
import { createClientTls } from './frontend/client-tls.js';
import { Listener } from './listener/listener.js';
import type { Logger } from './log.js';
import { CancelRegistry } from './session/cancel-registry.js';
import type { CancelRoute } from './session/session.js';
import { type AwsCredentialIdentityProvider, createCredentialProvider } from './token/credentials.js';
import { createTokenSigner, type TokenAction } from './token/signer.js';
import { TokenCache } from './token/token-cache.js';
import { createConnector } from './upstream/connector.js';
import { EndpointPool, type PoolEndpoint } from './upstream/endpoint-pool.js';
import { UpstreamPool } from './upstream/pool.js';
import { poolingConnector } from './upstream/pooled-connector.js';
import { ConnectRateLimiter } from './upstream/rate-limiter.js';
import { ConnectionResetter } from './upstream/reset.js';
import { createTarget } from './upstream/target.js';

export interface RunningProxy {
  address: net.AddressInfo;
  adminAddress: net.AddressInfo | undefined;
  unixSocketPath: string | undefined;
  /** The first endpoint's token cache. */
  tokens: TokenCache;
  endpoints: EndpointPool;
  listener: Listener;
  metrics: Metrics;
  health: HealthState;
  /** Replaces the local users (SIGHUP reload) without touching open sessions. */
  setUsers(users: AuthUsers): void;
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
  const credentials =
    opts.credentials ??
    createCredentialProvider({
      logger,
      ...(config.profile === undefined ? {} : { profile: config.profile }),
    });
  const metrics = new Metrics();
  const pool = new EndpointPool(
    config.endpoints.map((e) => createEndpoint(config, e, credentials, metrics, logger)),
    {
      onStateChange: (ep, up, d) => {
        const endpoint = ep.target.hostname;
        if (up) logger.info({ event: 'endpoint_up', endpoint });
        else logger.warn({ event: 'endpoint_down', endpoint, error: d.error, retry_in_ms: d.retryInMs });
      },
    },
  );
  const tokens = (pool.endpoints[0] as PoolEndpoint).tokens;
  const health = new HealthState(pool);
  let users = config.users;
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
          idleTimeoutMs: config.poolIdleTimeoutMs,
          maxAgeMs: config.maxUpstreamAgeMs,
          log: logger,
          onChange: (idle) => metrics.poolIdle.set(idle),
        })
      : undefined;
  const clientTls = await createClientTls(config.clientTls);
  const listener = new Listener({
    authMethod: config.authMethod,
    users: () => users,
    resolveRole: (user) => resolveRole(config, user),
    connector: sessionPool
      ? poolingConnector({
          base: baseConnector,
          pool: sessionPool,
          resetter: new ConnectionResetter(config.connectTimeoutMs),
          metrics,
          log: logger,
        })
      : baseConnector,
    clientTls,
    authDelay: new AuthDelay(),
    cancels: new CancelRegistry<CancelRoute>(),
    logger,
    mockSecret: randomBytes(32),
    loginTimeoutMs: config.loginTimeoutMs,
    connectTimeoutMs: config.connectTimeoutMs,
    metrics,
    maxConnections: config.maxConnections,
    maxUpstreamAgeMs: config.maxUpstreamAgeMs,
    startupParamsMode: config.startupParamsMode,
  });

  let shuttingDown: Promise<void> | undefined;
  const shutdown = (): Promise<void> => {
    shuttingDown ??= (async () => {
      health.markDraining();
      if (config.minShutdownDelayMs > 0) {
        logger.info({ event: 'shutdown_delay', min_delay_ms: config.minShutdownDelayMs });
        await new Promise((r) => setTimeout(r, config.minShutdownDelayMs));
      }
      await listener.shutdown(config.maxShutdownDelayMs);
      sessionPool?.close();
      for (const ep of pool.endpoints) {
        ep.tokens.stop();
        ep.limiter?.close(new ProxyError('ADMIN_SHUTDOWN'));
      }
      await admin?.close();
      health.close();
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
      beforeScrape: () => refreshGauges(pool, metrics),
      quit: opts.onQuit ?? (() => void shutdown()),
    });
    adminAddress = await admin.listen(config.adminListen.host, config.adminListen.port);
    logger.info({ event: 'admin_listening', address: adminAddress.address, port: adminAddress.port });
  }

  // Sign both kinds up front: signing is local and cheap, and a first client must not wait on it.
  // Failures are logged by the cache and retried in the background; clients are told why meanwhile.
  await Promise.all(pool.endpoints.map((ep) => ep.tokens.start(ACTIONS)));
  const address = await listener.listen(config.listen);
  const unixSocketPath = config.unixSocketDir
    ? await listener.listenUnix(config.unixSocketDir, address.port)
    : undefined;
  health.markListening();
  logger.info({
    event: 'listening',
    address: address.address,
    port: address.port,
    unix_socket: unixSocketPath,
    endpoints: config.endpoints.map((e) => ({
      endpoint: e.hostname,
      region: e.region,
      connect_to: formatHostPort(e.connectTo),
    })),
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
    adminAddress,
    unixSocketPath,
    tokens,
    endpoints: pool,
    listener,
    metrics,
    health,
    setUsers(next) {
      users = next;
    },
    shutdown,
  };
}

/** One endpoint: its own target (SNI, dial address), token cache (region) and rate limiter. */
function createEndpoint(
  config: ProxyConfig,
  e: EndpointConfig,
  credentials: AwsCredentialIdentityProvider,
  metrics: Metrics,
  logger: Logger,
): PoolEndpoint {
  const endpoint = e.hostname;
  const target = createTarget({
    hostname: e.hostname,
    region: e.region,
    connectHost: e.connectTo.host,
    connectPort: e.connectTo.port,
    caPem: config.caPem,
  });
  const tokens = new TokenCache({
    sign: createTokenSigner({
      hostname: e.hostname,
      region: e.region,
      credentials,
      ttlSeconds: config.tokenTtlSeconds,
    }),
    logger: config.endpoints.length > 1 ? logger.child({ endpoint }) : logger,
    onEvent: (ev) => {
      if (ev.type === 'signed') metrics.tokenSignings.inc({ endpoint, action: ev.action });
      else metrics.tokenFailures.inc({ endpoint, action: ev.action });
    },
    ...(config.profile === undefined ? {} : { profile: config.profile }),
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
function refreshGauges(pool: EndpointPool, metrics: Metrics): void {
  const now = Date.now();
  let credentialsExpiration: number | undefined;
  for (const ep of pool.endpoints) {
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
  for (const e of pool.status()) {
    metrics.endpointUp.set({ endpoint: e.hostname, region: e.region }, e.up ? 1 : 0);
  }
  if (credentialsExpiration === undefined) metrics.credentialsExpiry.reset();
  else metrics.credentialsExpiry.set((credentialsExpiration - now) / 1000);
}
