import net from 'node:net';
import tls from 'node:tls';
import { ProxyError } from '../errors.js';
import { frontendSSLRequest } from '../protocol/backend.js';
import type { UpstreamTarget } from './target.js';

/**
 * Opens a verified TLS connection to a DSQL endpoint the way libpq does with sslmode=verify-full:
 * TCP (happy eyeballs: DSQL endpoints are dual-stack), SSLRequest, expect `S`, then TLS with
 * SNI = the endpoint hostname (DSQL refuses connections without SNI) and the certificate checked
 * against that same hostname, whatever address the TCP connection went to (PrivateLink, tunnels).
 *
 * The whole sequence is bounded by `timeoutMs`; every failure becomes a ProxyError with SQLSTATE
 * 08001 and a reason a person can act on.
 */
export function dialUpstream(target: UpstreamTarget, timeoutMs: number): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    let settled = false;
    let tlsSocket: tls.TLSSocket | undefined;
    const tcp = net.connect({
      host: target.connectHost,
      port: target.connectPort,
      autoSelectFamily: true,
      noDelay: true,
    });

    const fail = (err: ProxyError): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      tlsSocket?.destroy();
      tcp.destroy();
      reject(err);
    };
    const timer = setTimeout(() => {
      fail(
        new ProxyError('UPSTREAM_TIMEOUT', {
          message: `timed out after ${timeoutMs} ms connecting to ${describe(target)}`,
          hint: 'Check that the endpoint is reachable from here (security groups, VPC endpoint, DNS) or raise --connect-timeout.',
        }),
      );
    }, timeoutMs);

    tcp.once('error', (err: NodeJS.ErrnoException) => fail(unreachable(target, err)));
    tcp.once('close', () =>
      fail(
        new ProxyError('UPSTREAM_UNREACHABLE', {
          message: `${describe(target)} closed the connection before TLS`,
        }),
      ),
    );
    tcp.once('connect', () => {
      tcp.setKeepAlive(true, 60_000);
      tcp.write(frontendSSLRequest());
    });
    tcp.once('data', (chunk: Buffer) => {
      tcp.pause();
      tcp.removeAllListeners('close');
      // CVE-2021-23222: anything after the single-byte answer arrived before TLS and cannot be trusted.
      if (chunk.length !== 1) {
        fail(
          new ProxyError('UPSTREAM_PROTOCOL', {
            message: `${describe(target)} sent unexpected data in answer to the SSL request`,
          }),
        );
        return;
      }
      if (chunk[0] !== 0x53 /* 'S' */) {
        fail(
          new ProxyError('UPSTREAM_TLS', {
            message: `${describe(target)} does not accept TLS (answered the SSL request with '${String.fromCharCode(chunk[0] ?? 0)}')`,
            hint: 'Is --connect-to pointing at a DSQL endpoint?',
          }),
        );
        return;
      }
      tcp.removeAllListeners('error');
      const socket = tls.connect({
        socket: tcp,
        servername: target.hostname,
        host: target.hostname,
        secureContext: target.secureContext,
        minVersion: 'TLSv1.2',
        session: target.sessions.get(),
      });
      tlsSocket = socket;
      socket.on('session', (session: Buffer) => target.sessions.set(session));
      socket.once('error', (err: Error) => fail(tlsFailure(target, err)));
      socket.once('secureConnect', () => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        socket.removeAllListeners('error');
        // One listener for the connection's whole life, so an error between owners (login, relay,
        // pool, reset) never crashes the process. Each owner watches 'error'/'close' itself while it
        // holds the socket and removes its own listeners when it lets go.
        socket.on('error', ignoreError);
        resolve(socket);
      });
    });
  });
}

const ignoreError = (): void => {};

function describe(target: UpstreamTarget): string {
  const via =
    target.connectHost === target.hostname ? '' : ` via ${target.connectHost}:${String(target.connectPort)}`;
  return `${target.hostname}${via}`;
}

function unreachable(target: UpstreamTarget, err: NodeJS.ErrnoException): ProxyError {
  return new ProxyError('UPSTREAM_UNREACHABLE', {
    message: `could not connect to ${describe(target)}: ${err.code ?? err.message}`,
    hint:
      err.code === 'ENOTFOUND'
        ? 'The endpoint hostname does not resolve: check --endpoint (and --connect-to).'
        : 'Check that the endpoint is reachable from here (security groups, VPC endpoint, proxy settings).',
    cause: err,
  });
}

function tlsFailure(target: UpstreamTarget, err: Error): ProxyError {
  const code = (err as NodeJS.ErrnoException).code ?? '';
  const certProblem = code.startsWith('ERR_TLS_CERT') || /certificate|altnames/i.test(err.message);
  return new ProxyError('UPSTREAM_TLS', {
    message: `TLS handshake with ${describe(target)} failed: ${err.message}`,
    hint: certProblem
      ? `The endpoint's certificate was not accepted for ${target.hostname}. DSQL certificates chain to Amazon Root CA 1; add other CAs with --ca-file. Certificate checks are never turned off.`
      : undefined,
    cause: err,
  });
}
