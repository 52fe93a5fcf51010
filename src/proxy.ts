import { randomBytes } from 'node:crypto';
import type net from 'node:net';
import type { AuthUsers } from './auth/types.js';
import { type ProxyConfig, resolveRole } from './config/index.js';
import { Listener } from './listener/listener.js';
import type { Logger } from './log.js';
import { CancelRegistry } from './session/cancel-registry.js';
import type { CancelRoute } from './session/session.js';
import { type AwsCredentialIdentityProvider, createCredentialProvider } from './token/credentials.js';
import { createTokenSigner } from './token/signer.js';
import { TokenCache } from './token/token-cache.js';
import { createTarget } from './upstream/target.js';

export interface RunningProxy {
  address: net.AddressInfo;
  tokens: TokenCache;
  listener: Listener;
  /** Replaces the local users (SIGHUP reload) without touching open sessions. */
  setUsers(users: AuthUsers): void;
  /** Stops accepting, drains for up to max-shutdown-delay, ends the rest with 57P01. */
  shutdown(): Promise<void>;
}

export interface StartOptions {
  /** Overrides the default AWS credential chain (tests, the demo). */
  credentials?: AwsCredentialIdentityProvider;
}

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
  const tokens = new TokenCache({
    sign: createTokenSigner({
      hostname: config.endpoint,
      region: config.region,
      credentials,
      ttlSeconds: config.tokenTtlSeconds,
    }),
    logger,
    ...(config.profile === undefined ? {} : { profile: config.profile }),
  });
  let users = config.users;
  const listener = new Listener({
    authMethod: config.authMethod,
    users: () => users,
    resolveRole: (user) => resolveRole(config, user),
    tokens,
    target,
    cancels: new CancelRegistry<CancelRoute>(),
    logger,
    mockSecret: randomBytes(32),
    loginTimeoutMs: config.loginTimeoutMs,
    connectTimeoutMs: config.connectTimeoutMs,
  });

  // Sign both kinds up front: signing is local and cheap, and a first client must not wait on it.
  // Failures are logged by the cache and retried in the background; clients are told why meanwhile.
  await tokens.start(['DbConnect', 'DbConnectAdmin']);
  const address = await listener.listen(config.listen);
  logger.info({
    event: 'listening',
    address: address.address,
    port: address.port,
    endpoint: config.endpoint,
    region: config.region,
    connect_to: `${config.connectTo.host}:${config.connectTo.port}`,
    auth_method: config.authMethod,
    token_ttl_s: config.tokenTtlSeconds,
  });

  return {
    address,
    tokens,
    listener,
    setUsers(next) {
      users = next;
    },
    async shutdown() {
      await listener.shutdown(config.maxShutdownDelayMs);
      tokens.stop();
    },
  };
}
