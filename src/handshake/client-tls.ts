import { writeFileSync } from 'node:fs';
import tls from 'node:tls';
import { type Clock, systemClock } from '../core/clock.js';
import type { Logger } from '../log.js';

/** Local TLS towards clients (--client-tls). Off by default: on loopback, TLS only costs CPU. */
export interface ClientTls {
  /** Answer SSLRequest with 'S' and accept direct TLS (PostgreSQL 17+ `sslnegotiation=direct`). */
  enabled: boolean;
  /** Refuse clients that do not use TLS (--client-tls-required). */
  required: boolean;
  /**
   * Read at each handshake: a renewed certificate replaces it, and only new handshakes see the new one
   * (open sessions keep theirs).
   */
  secureContext: tls.SecureContext | undefined;
  /** Stops the renewal timer of a generated certificate (shutdown). */
  close?(): void;
}

export interface ClientTlsOptions {
  enabled: boolean;
  required: boolean;
  certPem?: string | undefined;
  keyPem?: string | undefined;
  /** Where to write the generated CA, so clients can use sslmode=verify-full. */
  caOut?: string | undefined;
}

export interface ClientTlsDeps {
  /** The proxy's clock: when the generated certificate is issued and renewed. */
  clock?: Clock;
  logger?: Logger;
}

/** Host names the generated certificate is valid for: what local clients put in `host=`. */
const LOCAL_NAMES = ['localhost'];
const LOCAL_IPS = ['127.0.0.1', '::1'];

const DAY_MS = 24 * 60 * 60_000;
/** The generated leaf's lifetime (short: it is re-issued in place, so nothing needs it to last). */
const LEAF_LIFETIME_MS = 30 * DAY_MS;
/** It is replaced this long before it expires, so no client ever meets an expired one. */
const RENEW_BEFORE_MS = 10 * DAY_MS;
/**
 * Longest single timer: setTimeout fires at once for delays over 2^31-1 ms (24.8 days), so a renewal
 * weeks ahead is reached in steps of at most a day.
 */
const MAX_TIMER_MS = DAY_MS;
/** After a failed renewal (it is local key generation: unlikely), try again this much later. */
const RETRY_MS = 60 * 60_000;

/**
 * Builds the server-side TLS context at start: from --client-cert/--client-key, or a generated CA and
 * a certificate for localhost, 127.0.0.1 and ::1 signed by it (written to --client-ca-out).
 *
 * A generated certificate is valid for 30 days and is renewed 10 days before it expires, without a
 * restart: the new one, from the same CA, replaces the secure context for new handshakes, so
 * `verify-full` clients with the CA file keep working however long the proxy runs. When the CA itself
 * (valid a year) comes that close to its end, a new CA is made and written to --client-ca-out again.
 * The generator is loaded only in that case.
 */
export async function createClientTls(opts: ClientTlsOptions, deps: ClientTlsDeps = {}): Promise<ClientTls> {
  if (!opts.enabled) return { enabled: false, required: false, secureContext: undefined };
  if (opts.certPem && opts.keyPem) {
    return { enabled: true, required: opts.required, secureContext: contextFor(opts.certPem, opts.keyPem) };
  }
  const clock = deps.clock ?? systemClock;
  const { createCa, issueCert } = await import('../core/certs.js');
  type Ca = Awaited<ReturnType<typeof createCa>>;

  const newCa = async (): Promise<Ca> => {
    const ca = await createCa('dsql-proxy local CA');
    if (opts.caOut) writeFileSync(opts.caOut, ca.certPem, { mode: 0o644 });
    return ca;
  };
  /** A leaf valid from a day ago (clock skew) for LEAF_LIFETIME_MS, never past the CA's own end. */
  const issue = async (ca: Ca): Promise<{ context: tls.SecureContext; notAfter: number }> => {
    const now = clock.now();
    const notAfter = Math.min(now + LEAF_LIFETIME_MS, ca.cert.notAfter.getTime());
    const leaf = await issueCert(ca, {
      hostnames: LOCAL_NAMES,
      ips: LOCAL_IPS,
      notBefore: new Date(now - DAY_MS),
      notAfter: new Date(notAfter),
    });
    return { context: contextFor(leaf.certPem, leaf.keyPem), notAfter };
  };

  let ca = await newCa();
  let current = await issue(ca);
  const result: ClientTls = { enabled: true, required: opts.required, secureContext: current.context };

  let timer: unknown;
  let closed = false;
  const schedule = (at: number): void => {
    if (closed) return;
    const delay = Math.max(0, Math.min(at - clock.now(), MAX_TIMER_MS));
    timer = clock.setTimeout(() => {
      if (clock.now() < at) schedule(at);
      else void renew();
    }, delay);
    // A renewal alone must not keep the process alive.
    (timer as { unref?: () => void } | undefined)?.unref?.();
  };
  const renew = async (): Promise<void> => {
    try {
      const now = clock.now();
      let newCaMade = false;
      if (ca.cert.notAfter.getTime() - now < LEAF_LIFETIME_MS + RENEW_BEFORE_MS) {
        ca = await newCa();
        newCaMade = true;
      }
      const next = await issue(ca);
      if (closed) return;
      current = next;
      result.secureContext = next.context;
      deps.logger?.info({
        event: 'client_tls_renewed',
        not_after: new Date(next.notAfter).toISOString(),
        new_ca: newCaMade,
        ...(newCaMade && opts.caOut ? { ca_written_to: opts.caOut } : {}),
      });
      // Never sooner than the retry interval: a leaf cut short by its CA's end must not loop.
      schedule(Math.max(next.notAfter - RENEW_BEFORE_MS, clock.now() + RETRY_MS));
    } catch (err) {
      deps.logger?.error({ event: 'client_tls_renew_failed', err, retry_in_ms: RETRY_MS });
      schedule(clock.now() + RETRY_MS);
    }
  };
  schedule(current.notAfter - RENEW_BEFORE_MS);
  result.close = () => {
    closed = true;
    clock.clearTimeout(timer);
  };
  return result;
}

function contextFor(cert: string, key: string): tls.SecureContext {
  // TLS 1.2 is the floor libpq itself defaults to (ssl_min_protocol_version).
  return tls.createSecureContext({ cert, key, minVersion: 'TLSv1.2' });
}
