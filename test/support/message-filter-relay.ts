/**
 * A TLS-terminating relay for the integration tests that drops chosen server messages: it sits
 * between the proxy (`--connect-to 127.0.0.1:<relay.port> --ca-file <relay.caFile>`) and the test
 * endpoint, accepts the proxy's direct TLS (ALPN `postgresql`) with a certificate for the endpoint's
 * hostname from a CA of its own, opens direct TLS to the real endpoint with the same SNI, and relays
 * bytes both ways, except that server messages whose type is in `drop` are removed. Used to model an
 * upstream that sends no BackendKeyData (`drop: ['K']`), which the DSQL documentation leaves open,
 * and (`swallowCancels`) an upstream that ignores CancelRequests.
 *
 * The server -> client direction is parsed as typed messages from its first byte, which holds for
 * the connections the proxy opens (a login's answer, a query's); a cancel connection gets nothing back.
 */
import { rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import tls from 'node:tls';
import { CANCEL_REQUEST_CODE } from '../../src/protocol/constants.js';
import { createCa, issueCert } from './certs.js';
import { tempDir } from './temp-dirs.js';

export interface MessageFilterRelay {
  port: number;
  /** PEM file of the relay's CA, for the proxy's --ca-file. */
  caFile: string;
  /** Messages removed so far, by type. */
  dropped: Map<string, number>;
  /** CancelRequests swallowed so far (`swallowCancels`). */
  cancelsSwallowed: () => number;
  close(): Promise<void>;
}

export async function startMessageFilterRelay(opts: {
  hostname: string;
  endpoint: { port: number; caPem: string };
  drop: string[];
  /** Swallow every CancelRequest (answer nothing, close): an upstream that ignores cancels. */
  swallowCancels?: boolean;
}): Promise<MessageFilterRelay> {
  const ca = await createCa('message-filter relay CA');
  const cert = await issueCert(ca, { hostnames: [opts.hostname] });
  const dir = tempDir('filter');
  const caFile = join(dir, 'ca.pem');
  writeFileSync(caFile, ca.certPem);
  const secureContext = tls.createSecureContext({ cert: cert.certPem, key: cert.keyPem });
  const dropTypes = new Set(opts.drop.map((t) => t.charCodeAt(0)));
  const dropped = new Map<string, number>();
  let cancelsSwallowed = 0;
  const sockets = new Set<net.Socket>();
  const track = (s: net.Socket): void => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
    s.on('error', () => {});
  };

  const server = net.createServer((raw) => {
    track(raw);
    const front = new tls.TLSSocket(raw, { isServer: true, secureContext, ALPNProtocols: ['postgresql'] });
    track(front);
    front.pause();
    // The first message tells a session from a cancel (both arrive as direct TLS).
    front.once('secure', () => {
      if (!opts.swallowCancels) {
        relay(front, undefined);
        return;
      }
      front.once('data', (first: Buffer) => {
        if (
          first.length >= 8 &&
          first.readInt32BE(0) === 16 &&
          first.readInt32BE(4) === CANCEL_REQUEST_CODE
        ) {
          cancelsSwallowed += 1; // dropped: the statement runs on
          front.end();
          return;
        }
        front.pause();
        relay(front, first);
      });
      front.resume();
    });
  });

  /** Relays a session to the endpoint; `first` is what the client already sent. */
  const relay = (front: tls.TLSSocket, first: Buffer | undefined): void => {
    const back = tls.connect({
      host: '127.0.0.1',
      port: opts.endpoint.port,
      servername: opts.hostname,
      ca: opts.endpoint.caPem,
      ALPNProtocols: ['postgresql'],
    });
    track(back);
    const closeBoth = (): void => {
      front.destroy();
      back.destroy();
    };
    front.once('close', closeBoth);
    back.once('close', closeBoth);
    back.once('secureConnect', () => {
      if (first) back.write(first);
      front.on('data', (chunk: Buffer) => back.write(chunk));
      front.on('end', () => back.end());
      front.resume();
    });
    let pending = Buffer.alloc(0);
    back.on('data', (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      const keep: Buffer[] = [];
      while (pending.length >= 5) {
        const length = pending.readInt32BE(1);
        if (pending.length < 1 + length) break;
        const message = pending.subarray(0, 1 + length);
        pending = pending.subarray(1 + length);
        const type = message[0] as number;
        if (dropTypes.has(type)) {
          const name = String.fromCharCode(type);
          dropped.set(name, (dropped.get(name) ?? 0) + 1);
        } else {
          keep.push(message);
        }
      }
      if (keep.length > 0) front.write(Buffer.concat(keep));
    });
    back.on('end', () => front.end());
  };
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    caFile,
    dropped,
    cancelsSwallowed: () => cancelsSwallowed,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => {
          rmSync(dir, { recursive: true, force: true });
          resolve();
        });
      }),
  };
}
