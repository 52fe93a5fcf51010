import net from 'node:net';
import type tls from 'node:tls';
import { ProxyError } from '../errors.js';
import { SSLResponse } from '../protocol/constants.js';
import { frontendSSLRequest } from '../protocol/to-server.js';
import { connectCheckingLeaf } from './host-check.js';
import type { UpstreamTarget } from './target.js';

/** The ALPN protocol of PostgreSQL's direct TLS (PostgreSQL 17+ refuses direct TLS without it). */
const ALPN_POSTGRESQL = 'postgresql';

/**
 * Opens a verified TLS connection to a DSQL endpoint the way libpq does with sslmode=verify-full:
 * TCP (happy eyeballs: DSQL endpoints are dual-stack), then TLS with SNI = the endpoint hostname
 * (DSQL refuses connections without SNI) and the certificate checked against that same hostname,
 * whatever address the TCP connection went to (PrivateLink, tunnels). TLS starts as the target's
 * sslNegotiation says: at once with ALPN `postgresql` (direct), or after an SSLRequest (postgres).
 *
 * The whole sequence is bounded by `timeoutMs`; every failure becomes a ProxyError with SQLSTATE
 * 08001 and a reason a person can act on.
 */
export function dialUpstream(target: UpstreamTarget, timeoutMs: number): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => new Dial(target, timeoutMs, resolve, reject).start());
}

/** One dial: TCP, then TLS at once (direct) or after the SSLRequest's `S`; settles exactly once. */
class Dial {
  private settled = false;
  private tlsSocket: tls.TLSSocket | undefined;
  private readonly direct: boolean;
  private readonly timer: NodeJS.Timeout;
  private readonly tcp: net.Socket;

  constructor(
    private readonly target: UpstreamTarget,
    timeoutMs: number,
    private readonly resolve: (socket: tls.TLSSocket) => void,
    private readonly reject: (err: ProxyError) => void,
  ) {
    this.direct = target.sslNegotiation === 'direct';
    this.timer = setTimeout(() => {
      this.fail(
        new ProxyError('UPSTREAM_TIMEOUT', {
          message: `timed out after ${timeoutMs} ms connecting to ${describe(target)}`,
          hint: 'Check that the endpoint is reachable from here (security groups, VPC endpoint, DNS) or raise --connect-timeout.',
        }),
      );
    }, timeoutMs);
    this.tcp = net.connect({
      host: target.connectHost,
      port: target.connectPort,
      autoSelectFamily: true,
      noDelay: true,
      ...(target.dns ? { lookup: target.dns.lookup } : {}),
    });
  }

  start(): void {
    const { tcp } = this;
    tcp.once('error', (err: NodeJS.ErrnoException) => this.fail(unreachable(this.target, err, this.direct)));
    tcp.once('connect', () => tcp.setKeepAlive(true, 60_000));
    if (this.direct) {
      // The ClientHello leaves as soon as the TCP connection is up.
      this.startTls();
    } else {
      this.askForTls();
    }
  }

  private fail(err: ProxyError): void {
    if (this.settled) return;
    this.settled = true;
    clearTimeout(this.timer);
    // The address may be the problem (moved, gone): the next dial asks the resolver again.
    if (err.code === 'UPSTREAM_UNREACHABLE' || err.code === 'UPSTREAM_TIMEOUT') {
      this.target.dns?.forget(this.target.connectHost);
    }
    this.tlsSocket?.destroy();
    this.tcp.destroy();
    this.reject(err);
  }

  /** `postgres` negotiation: an SSLRequest, then TLS after the server's single `S`. */
  private askForTls(): void {
    const { tcp, target } = this;
    tcp.once('close', () =>
      this.fail(
        new ProxyError('UPSTREAM_UNREACHABLE', {
          message: `${describe(target)} closed the connection before TLS`,
        }),
      ),
    );
    tcp.once('connect', () => tcp.write(frontendSSLRequest()));
    tcp.once('data', (chunk: Buffer) => {
      tcp.pause();
      tcp.removeAllListeners('close');
      // CVE-2021-23222: anything after the single-byte answer arrived before TLS and cannot be trusted.
      if (chunk.length !== 1) {
        this.fail(
          new ProxyError('UPSTREAM_PROTOCOL', {
            message: `${describe(target)} sent unexpected data in answer to the SSL request`,
          }),
        );
        return;
      }
      if (chunk[0] !== SSLResponse.Accept) {
        this.fail(
          new ProxyError('UPSTREAM_TLS', {
            message: `${describe(target)} does not accept TLS (answered the SSL request with '${String.fromCharCode(chunk[0] ?? 0)}')`,
            hint: 'Is --connect-to pointing at a DSQL endpoint?',
          }),
        );
        return;
      }
      this.startTls();
    });
  }

  /** TLS over the TCP connection; with `direct`, ALPN `postgresql` is offered and required. */
  private startTls(): void {
    const { tcp, target, direct } = this;
    // The leaf's names checked by OpenSSL, without Node's JavaScript copy of the chain.
    const up = connectCheckingLeaf(
      {
        socket: tcp,
        servername: target.hostname,
        // `host` names the certificate identity when TLS runs over an existing socket.
        host: target.hostname,
        secureContext: target.secureContext,
        minVersion: 'TLSv1.2',
        session: target.tlsSessions.get(),
        ...(direct ? { ALPNProtocols: [ALPN_POSTGRESQL] } : {}),
      },
      target.hostname,
    );
    this.tlsSocket = up;
    up.on('session', (session: Buffer) => target.tlsSessions.set(session));
    up.once('error', (err: NodeJS.ErrnoException) =>
      // Nothing at all came back: the server hung up on the ClientHello (or reset the connection).
      this.fail(
        direct && tcp.bytesRead === 0 ? unreachable(target, err, direct) : tlsFailure(target, err, direct),
      ),
    );
    up.once('secureConnect', () => this.secured(up));
  }

  private secured(up: tls.TLSSocket): void {
    if (this.settled) return;
    // ALPN guards against a TLS server of another protocol on that address; libpq checks it too.
    if (this.direct && up.alpnProtocol !== ALPN_POSTGRESQL) {
      this.fail(
        new ProxyError('UPSTREAM_TLS', {
          message: `${describe(this.target)} did not select the ALPN protocol "${ALPN_POSTGRESQL}" in the TLS handshake`,
          hint: DIRECT_HINT,
        }),
      );
      return;
    }
    this.settled = true;
    clearTimeout(this.timer);
    this.tcp.removeAllListeners('error');
    up.removeAllListeners('error');
    // One listener for the connection's whole life, so an error between owners (login, relay,
    // pool, reset) never crashes the process. Each owner watches 'error'/'close' itself while it
    // holds the socket and removes its own listeners when it lets go.
    up.on('error', ignoreError);
    this.resolve(up);
  }
}

const DIRECT_HINT =
  'The server may not support direct TLS (PostgreSQL before 17, or another service at that address): check --connect-to, or set --upstream-ssl-negotiation postgres to start TLS with an SSLRequest.';

const ignoreError = (): void => {};

function describe(target: UpstreamTarget): string {
  const via =
    target.connectHost === target.hostname ? '' : ` via ${target.connectHost}:${String(target.connectPort)}`;
  return `${target.hostname}${via}`;
}

function unreachable(target: UpstreamTarget, err: NodeJS.ErrnoException, direct: boolean): ProxyError {
  // A connection that was accepted and then closed without a byte, under direct TLS: either the
  // endpoint's trouble, or a server that does not speak direct TLS.
  const lookup =
    err.syscall === 'getaddrinfo' || err.code === 'ENOTFOUND' || err.code?.startsWith('EAI_') === true;
  const hungUp = direct && err.syscall !== 'connect' && !lookup;
  return new ProxyError('UPSTREAM_UNREACHABLE', {
    message: `could not connect to ${describe(target)}: ${err.code ?? err.message}${hungUp ? ' (closed without answering the TLS handshake)' : ''}`,
    hint:
      err.code === 'ENOTFOUND'
        ? 'The endpoint hostname does not resolve: check --endpoint (and --connect-to).'
        : lookup
          ? "Looking up the endpoint's address failed: check the DNS settings of this host or pod (/etc/resolv.conf)."
          : `Check that the endpoint is reachable from here (security groups, VPC endpoint, proxy settings).${hungUp ? ` ${DIRECT_HINT}` : ''}`,
    cause: err,
  });
}

function tlsFailure(target: UpstreamTarget, err: Error, direct: boolean): ProxyError {
  const code = (err as NodeJS.ErrnoException).code ?? '';
  const certProblem = code.startsWith('ERR_TLS_CERT') || /certificate|altnames/i.test(err.message);
  return new ProxyError('UPSTREAM_TLS', {
    message: `TLS handshake with ${describe(target)} failed: ${err.message}`,
    hint: certProblem
      ? `The endpoint's certificate was not accepted for ${target.hostname}. DSQL certificates chain to Amazon Root CA 1; add other CAs with --ca-file. Certificate checks are never turned off.`
      : direct
        ? DIRECT_HINT
        : undefined,
    cause: err,
  });
}
