import type { X509Certificate } from 'node:crypto';
import { isIP } from 'node:net';
import tls from 'node:tls';

/**
 * `tls.connect` with the upstream certificate's host-name check made cheap.
 *
 * Node's default check (`tls.checkServerIdentity`) is handed `getPeerCertificate(true)`: the leaf and
 * its chain turned into JavaScript objects (names, three fingerprints, each public key decoded and
 * re-encoded), only for the subjectAltName string. That is about a fifth of the CPU of a TLS login
 * (`scripts/bench/tls-handshake.ts`), and in its default mode the proxy makes a TLS login for every
 * client.
 *
 * Here the check is OpenSSL's `X509_check_host` on the leaf (`X509Certificate.checkHost`), with
 * libpq's `verify-full` rules: DNS subjectAltNames, the subject's CN only when there are none, and a
 * wildcard only as the whole first label (`*.dsql.us-east-1.on.aws`; never `d*.…`, never across a
 * dot). OpenSSL has already verified the chain against the secure context's CAs during the handshake;
 * this decides whether that verified leaf names the endpoint.
 *
 * Two of the socket's methods are shadowed, on that socket only:
 * - `getPeerCertificate`, during the handshake: Node's `onConnectSecure` calls it only to pass its
 *   result to `checkServerIdentity`, which here does not read it. If a Node version stopped calling
 *   it, or called it elsewhere, the host would still be checked here (the `checkServerIdentity`
 *   option is public API); only the saving would be lost.
 * - after the check, `getPeerCertificate` and `getPeerX509Certificate` answer from the checked leaf.
 *   On a client socket Node 20's `getPeerX509Certificate()` takes the leaf out of the socket's peer
 *   chain, so without this a later `getPeerCertificate()` (the `check` command's TLS line) would find
 *   nothing. Detailed chains (`issuerCertificate`) are not available on upstream sockets.
 *
 * IP addresses as hostnames (never a DSQL endpoint) keep Node's default check, which matches IP
 * subjectAltNames.
 */
export function connectCheckingLeaf(options: tls.ConnectionOptions, hostname: string): tls.TLSSocket {
  const check = hostCheckOptions(hostname, () => socket);
  const socket = tls.connect({ ...options, ...check });
  if (check.checkServerIdentity) skipPeerCertificateObjects(socket);
  return socket;
}

/** The `checkServerIdentity` option for `hostname`: none (Node's default) for an IP address. */
export function hostCheckOptions(
  hostname: string,
  socket: () => tls.TLSSocket | undefined,
): Pick<tls.ConnectionOptions, 'checkServerIdentity'> {
  if (isIP(hostname) !== 0) return {};
  return { checkServerIdentity: (host) => checkLeafHost(socket(), host) };
}

/** Shadows `getPeerCertificate` for the handshake (see connectCheckingLeaf). */
function skipPeerCertificateObjects(socket: tls.TLSSocket): void {
  socket.getPeerCertificate = emptyPeerCertificate;
  const restore = (): void => {
    // Still the handshake's shadow (a resumed session is not checked again): Node's method shows
    // through again once the own property goes.
    if (socket.getPeerCertificate === emptyPeerCertificate) {
      delete (socket as Partial<Pick<tls.TLSSocket, 'getPeerCertificate'>>).getPeerCertificate;
    }
  };
  socket.once('secureConnect', restore);
  socket.once('close', restore);
}

const HOST_RULES = {
  subject: 'default',
  wildcards: true,
  partialWildcards: false,
  multiLabelWildcards: false,
  singleLabelSubdomains: false,
} as const;

const emptyPeerCertificate = (() => ({})) as unknown as tls.TLSSocket['getPeerCertificate'];

/** undefined when the peer's leaf certificate names `host`; else the error the handshake fails with. */
export function checkLeafHost(socket: tls.TLSSocket | undefined, host: string): Error | undefined {
  const cert = socket?.getPeerX509Certificate();
  if (socket && cert) keepLeaf(socket, cert);
  if (cert?.checkHost(host, HOST_RULES) !== undefined) return undefined;
  const names = cert
    ? (cert.subjectAltName ?? `no subjectAltName; subject ${cert.subject.replaceAll('\n', ', ')}`)
    : 'no certificate';
  const err: NodeJS.ErrnoException = new Error(
    `the server's certificate is not valid for ${host} (certificate names: ${names})`,
  );
  // The code Node's own check uses, so callers tell a name mismatch from other TLS failures.
  err.code = 'ERR_TLS_CERT_ALTNAME_INVALID';
  return err;
}

/** The socket's certificate accessors answer from `cert` from now on (see connectCheckingLeaf). */
function keepLeaf(socket: tls.TLSSocket, cert: X509Certificate): void {
  socket.getPeerX509Certificate = () => cert;
  socket.getPeerCertificate = (() => cert.toLegacyObject()) as tls.TLSSocket['getPeerCertificate'];
}
