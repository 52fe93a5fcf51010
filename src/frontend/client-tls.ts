import { writeFileSync } from 'node:fs';
import tls from 'node:tls';

/** Local TLS towards clients (--client-tls). Off by default: on loopback, TLS only costs CPU. */
export interface ClientTls {
  /** Answer SSLRequest with 'S' and accept direct TLS (PostgreSQL 17+ `sslnegotiation=direct`). */
  enabled: boolean;
  /** Refuse clients that do not use TLS (--client-tls-required). */
  required: boolean;
  secureContext: tls.SecureContext | undefined;
}

export interface ClientTlsOptions {
  enabled: boolean;
  required: boolean;
  certPem?: string | undefined;
  keyPem?: string | undefined;
  /** Where to write the generated CA, so clients can use sslmode=verify-full. */
  caOut?: string | undefined;
}

/** Host names the generated certificate is valid for: what local clients put in `host=`. */
const LOCAL_NAMES = ['localhost'];
const LOCAL_IPS = ['127.0.0.1', '::1'];

/**
 * Builds the server-side TLS context once at start: from --client-cert/--client-key, or a generated
 * CA and a certificate for localhost, 127.0.0.1 and ::1 signed by it (written to --client-ca-out).
 * The generator is loaded only in that case.
 */
export async function createClientTls(opts: ClientTlsOptions): Promise<ClientTls> {
  if (!opts.enabled) return { enabled: false, required: false, secureContext: undefined };
  let cert: string;
  let key: string;
  if (opts.certPem && opts.keyPem) {
    cert = opts.certPem;
    key = opts.keyPem;
  } else {
    const { createCa, issueCert } = await import('../local-endpoint/certs.js');
    const ca = await createCa('dsql-proxy local CA');
    const leaf = await issueCert(ca, { hostnames: LOCAL_NAMES, ips: LOCAL_IPS });
    cert = leaf.certPem;
    key = leaf.keyPem;
    if (opts.caOut) writeFileSync(opts.caOut, ca.certPem, { mode: 0o644 });
  }
  return {
    enabled: true,
    required: opts.required,
    // TLS 1.2 is the floor libpq itself defaults to (ssl_min_protocol_version).
    secureContext: tls.createSecureContext({ cert, key, minVersion: 'TLSv1.2' }),
  };
}
