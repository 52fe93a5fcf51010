/**
 * Builders from configuration to the objects that reach one DSQL endpoint: AWS credentials for a
 * cluster, an endpoint's target (SNI, dial address, CA, TLS start) and its token signer. The proxy
 * (proxy.ts) and the preflight (check/run.ts) both build them here, so `check` tests exactly what the
 * proxy would use.
 */
import type { ClusterConfig, EndpointConfig, ProxyConfig } from '../config/index.js';
import type { Metrics } from '../core/metrics.js';
import type { SslNegotiation } from '../dsql/limits.js';
import type { Logger } from '../log.js';
import { type AwsCredentialIdentityProvider, createCredentialProvider } from '../token/credentials.js';
import { createTokenSigner, type TokenSignerOptions } from '../token/signer.js';
import { TokenCache } from '../token/token-cache.js';
import type { DnsCache } from '../upstream/dns-cache.js';
import type { Endpoint } from '../upstream/failover-list.js';
import { ConnectRateLimiter } from '../upstream/rate-limiter.js';
import { createTarget, type UpstreamTarget } from '../upstream/target.js';

/** What every builder of one cluster's run-time objects needs. */
export interface ClusterContext {
  /** The proxy-wide options (timeouts, connect rate, TLS start, pool mode). */
  config: ProxyConfig;
  cluster: ClusterConfig;
  credentials: AwsCredentialIdentityProvider;
  /** Shared by every cluster; undefined with --dns-cache-ttl 0. */
  dns: DnsCache | undefined;
  metrics: Metrics;
  /** Already a child with the cluster's name when there are several. */
  logger: Logger;
}

/**
 * A cluster's AWS credentials: its profile (or the default chain), and its `assume-role` with STS in
 * the Region of its first endpoint.
 */
export function clusterCredentials(cluster: ClusterConfig, logger: Logger): AwsCredentialIdentityProvider {
  const stsRegion = cluster.assumeRole === undefined ? undefined : cluster.endpoints[0]?.region;
  return createCredentialProvider({
    logger,
    ...(cluster.profile === undefined ? {} : { profile: cluster.profile }),
    ...(cluster.assumeRole === undefined ? {} : { assumeRole: cluster.assumeRole }),
    ...(stsRegion === undefined ? {} : { stsRegion }),
  });
}

/**
 * Credentials per cluster, shared: clusters with the same profile and role get one provider (and its
 * cached credentials). `override` replaces them all (the demo, tests).
 */
export function sharedCredentials(
  logger: Logger,
  override?: AwsCredentialIdentityProvider,
): (cluster: ClusterConfig) => AwsCredentialIdentityProvider {
  const providers = new Map<string, AwsCredentialIdentityProvider>();
  return (cluster) => {
    if (override) return override;
    const stsRegion = cluster.assumeRole === undefined ? undefined : cluster.endpoints[0]?.region;
    const key = JSON.stringify([cluster.profile ?? null, cluster.assumeRole ?? null, stsRegion ?? null]);
    let provider = providers.get(key);
    if (!provider) {
      provider = clusterCredentials(cluster, logger);
      providers.set(key, provider);
    }
    return provider;
  };
}

/** An endpoint's target: SNI and certificate identity, dial address, the cluster's CA, how TLS starts. */
export function endpointTarget(
  endpoint: EndpointConfig,
  cluster: ClusterConfig,
  sslNegotiation: SslNegotiation,
  dns: DnsCache | undefined,
): UpstreamTarget {
  return createTarget({
    hostname: endpoint.hostname,
    region: endpoint.region,
    connectHost: endpoint.connectTo.host,
    connectPort: endpoint.connectTo.port,
    caPem: cluster.caPem,
    sslNegotiation,
    dns,
  });
}

/** What signs an endpoint's tokens: its hostname and Region, the cluster's credentials and token TTL. */
export function signerOptions(
  endpoint: EndpointConfig,
  cluster: ClusterConfig,
  credentials: AwsCredentialIdentityProvider,
): TokenSignerOptions {
  return {
    hostname: endpoint.hostname,
    region: endpoint.region,
    credentials,
    ttlSeconds: cluster.tokenTtlSeconds,
  };
}

/** One endpoint: its own target (SNI, dial address), token cache (region) and rate limiter. */
export function createEndpoint(ctx: ClusterContext, e: EndpointConfig): Endpoint {
  const { config, cluster, metrics } = ctx;
  const endpoint = e.hostname;
  const target = endpointTarget(e, cluster, config.upstreamSslNegotiation, ctx.dns);
  const tokens = new TokenCache({
    sign: createTokenSigner(signerOptions(e, cluster, ctx.credentials)),
    logger: cluster.endpoints.length > 1 ? ctx.logger.child({ endpoint }) : ctx.logger,
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
