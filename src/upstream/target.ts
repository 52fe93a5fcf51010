import tls from 'node:tls';
import { DEFAULT_SSL_NEGOTIATION, type SslNegotiation } from '../dsql/limits.js';
import type { DnsCache } from './dns-cache.js';

/**
 * Everything needed to reach one DSQL endpoint, built once at start. The secure context in
 * particular is built once: assembling the root store per connection costs ~25 ms of CPU each.
 */
export interface UpstreamTarget {
  /** The cluster hostname: SNI, certificate identity and token host all use it. */
  readonly hostname: string;
  readonly region: string;
  /** Where the TCP connection goes (defaults to hostname:5432). */
  readonly connectHost: string;
  readonly connectPort: number;
  readonly secureContext: tls.SecureContext;
  readonly tlsSessions: TlsSessionCache;
  /** How TLS starts (see SslNegotiation). */
  readonly sslNegotiation: SslNegotiation;
  /** Addresses of connectHost kept between connections (--dns-cache-ttl); without it every dial looks up. */
  readonly dns: DnsCache | undefined;
}

/** Keeps the most recent TLS session ticket so reconnects skip the expensive half of the handshake. */
export class TlsSessionCache {
  private session: Buffer | undefined;
  get(): Buffer | undefined {
    return this.session;
  }
  set(session: Buffer): void {
    this.session = session;
  }
}

export interface TargetOptions {
  hostname: string;
  region: string;
  connectHost: string;
  connectPort: number;
  /** Extra PEM CA certificates trusted on top of the default roots. */
  caPem?: string | undefined;
  /** Default: direct. */
  sslNegotiation?: SslNegotiation | undefined;
  dns?: DnsCache | undefined;
}

export function createTarget(opts: TargetOptions): UpstreamTarget {
  const ca = opts.caPem ? [...tls.rootCertificates, opts.caPem] : undefined;
  return {
    hostname: opts.hostname,
    region: opts.region,
    connectHost: opts.connectHost,
    connectPort: opts.connectPort,
    secureContext: tls.createSecureContext(ca ? { ca } : {}),
    tlsSessions: new TlsSessionCache(),
    sslNegotiation: opts.sslNegotiation ?? DEFAULT_SSL_NEGOTIATION,
    dns: opts.dns,
  };
}
