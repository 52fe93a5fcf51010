import { randomBytes } from 'node:crypto';
import type net from 'node:net';
import { AdminServer } from './admin/admin-server.js';
import { HealthState } from './admin/health.js';
import { Metrics } from './admin/metrics.js';
import type { AuthUsers } from './auth/types.js';
import { type ProxyConfig, resolveRole } from './config/index.js';
import { Listener } from './listener/listener.js';
import type { Logger } from './log.js';
import { CancelRegistry } from './session/cancel-registry.js';
import type { CancelRoute } from './session/session.js';
import { type AwsCredentialIdentityProvider, createCredentialProvider } from './token/credentials.js';
import { createTokenSigner, type TokenAction } from './token/signer.js';
import { TokenCache } from './token/token-cache.js';
import { singleEndpointConnector } from './upstream/connector.js';
import { createTarget } from './upstream/target.js';

export interface RunningProxy {
  address: net.AddressInfo;
  adminAddress: net.AddressInfo | undefined;
  unixSocketPath: string | undefined;
  tokens: TokenCache;
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
  const target = createTarget({
    hostname: config.endpoint,
    region: config.region,
    connectHost: config.connectTo.host,
    connectPort: config.connectTo.port,
    caPem: config.caPem,
  });
  const metrics = new Metrics();
  const tokens = new TokenCache({
    sign: createTokenSigner({
      hostname: config.endpoint,
      region: config.region,
      credentials,
      ttlSeconds: config.tokenTtlSeconds,
    }),
    logger,
    onEvent: (e) => {
      if (e.type === 'signed') metrics.tokenSignings.inc({ action: e.action });
      else metrics.tokenFailures.inc({ action: e.action });
    },
    ...(config.profile === undefined ? {} : { profile: config.profile }),
  });
  const health = new HealthState(tokens);
  let users = config.users;
  const listener = new Listener({
    authMethod: config.authMethod,
    users: () => users,
    resolveRole: (user) => resolveRole(config, user),
    connector: singleEndpointConnector({
      target,
      tokens,
      connectTimeoutMs: config.connectTimeoutMs,
      metrics,
    }),
    cancels: new CancelRegistry<CancelRoute>(),
    logger,
    mockSecret: randomBytes(32),
    loginTimeoutMs: config.loginTimeoutMs,
    connectTimeoutMs: config.connectTimeoutMs,
    metrics,
    maxConnections: config.maxConnections,
    maxUpstreamAgeMs: 50 * 60_000,
    startupParamsMode: 'drop',
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
      tokens.stop();
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
      beforeScrape: () => refreshGauges(tokens, metrics),
      quit: opts.onQuit ?? (() => void shutdown()),
    });
    adminAddress = await admin.listen(config.adminListen.host, config.adminListen.port);
    logger.info({ event: 'admin_listening', address: adminAddress.address, port: adminAddress.port });
  }

  // Sign both kinds up front: signing is local and cheap, and a first client must not wait on it.
  // Failures are logged by the cache and retried in the background; clients are told why meanwhile.
  await tokens.start(ACTIONS);
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
    endpoint: config.endpoint,
    region: config.region,
    connect_to: `${config.connectTo.host}:${config.connectTo.port}`,
    auth_method: config.authMethod,
    token_ttl_s: config.tokenTtlSeconds,
    max_connections: config.maxConnections,
  });

  return {
    address,
    adminAddress,
    unixSocketPath,
    tokens,
    listener,
    metrics,
    health,
    setUsers(next) {
      users = next;
    },
    shutdown,
  };
}

/** Gauges that are computed at scrape time rather than kept up to date. */
function refreshGauges(tokens: TokenCache, metrics: Metrics): void {
  const now = Date.now();
  let credentialsExpiration: number | undefined;
  for (const action of ACTIONS) {
    const t = tokens.peek(action);
    if (!t) continue;
    metrics.tokenExpiry.set({ action }, (t.expiresAt - now) / 1000);
    if (t.credentialsExpiration !== undefined) {
      credentialsExpiration = Math.min(
        credentialsExpiration ?? Number.POSITIVE_INFINITY,
        t.credentialsExpiration,
      );
    }
  }
  if (credentialsExpiration === undefined) metrics.credentialsExpiry.reset();
  else metrics.credentialsExpiry.set((credentialsExpiration - now) / 1000);
}
