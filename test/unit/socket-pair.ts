/**
 * Real TCP socket pairs for socket-level unit tests: a net server on 127.0.0.1 port 0, one
 * connection, both ends returned. Everything opened here is closed by `closeAll()` (call it in
 * `after()`), so a failing test cannot leave a handle that keeps the test process alive.
 */
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import tls from 'node:tls';

export interface SocketPair {
  /** The connecting end. */
  client: net.Socket;
  /** The accepted end. */
  server: net.Socket;
}

const servers = new Set<net.Server>();
const sockets = new Set<net.Socket>();

/** Remembers a socket so `closeAll()` destroys it. */
export function track<T extends net.Socket>(socket: T): T {
  sockets.add(socket);
  socket.once('close', () => sockets.delete(socket));
  return socket;
}

/** Listens on 127.0.0.1 port 0; the server is closed by `closeAll()`. */
export async function listen(
  onConnection: (socket: net.Socket) => void,
  options: net.ServerOpts = {},
): Promise<net.Server> {
  const server = net.createServer(options, (socket) => {
    track(socket);
    onConnection(socket);
  });
  servers.add(server);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  return server;
}

export function portOf(server: net.Server): number {
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('server is not listening on TCP');
  return address.port;
}

/**
 * `serverAllowHalfOpen`: the accepted end stays open when the connecting end sends FIN, like a
 * stalled server.
 */
export async function socketPair(opts: { serverAllowHalfOpen?: boolean } = {}): Promise<SocketPair> {
  let accepted: (socket: net.Socket) => void = () => {};
  const serverSide = new Promise<net.Socket>((resolve) => {
    accepted = resolve;
  });
  const server = await listen((socket) => accepted(socket), {
    allowHalfOpen: opts.serverAllowHalfOpen ?? false,
  });
  const client = track(net.connect({ host: '127.0.0.1', port: portOf(server), noDelay: true }));
  await new Promise<void>((resolve, reject) => {
    client.once('connect', resolve);
    client.once('error', reject);
  });
  const serverSocket = await serverSide;
  serverSocket.setNoDelay(true);
  // One pair per server: stop accepting so the server closes as soon as its socket does.
  server.close();
  servers.delete(server);
  return { client, server: serverSocket };
}

/** A port nothing listens on (bound, then released). */
export async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const port = portOf(server);
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

export async function closeAll(): Promise<void> {
  for (const socket of sockets) socket.destroy();
  sockets.clear();
  await Promise.all(
    [...servers].map((server) => new Promise<void>((resolve) => server.close(() => resolve()))),
  );
  servers.clear();
}

/**
 * Promise-based exact reads from a socket, written independently of src/io so the scripted peers in
 * these tests do not depend on the code under test.
 */
export class ByteReader {
  private buffered = Buffer.alloc(0);
  private ended = false;
  private wake: (() => void) | undefined;

  constructor(socket: net.Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.buffered = Buffer.concat([this.buffered, chunk]);
      this.wake?.();
    });
    socket.on('end', () => {
      this.ended = true;
      this.wake?.();
    });
    socket.on('close', () => {
      this.ended = true;
      this.wake?.();
    });
    socket.on('error', () => {});
  }

  /** Exactly n bytes; rejects if the peer goes away first. */
  async bytes(n: number): Promise<Buffer> {
    while (this.buffered.length < n) {
      if (this.ended) throw new Error(`peer closed after ${this.buffered.length} of ${n} bytes`);
      await new Promise<void>((resolve) => {
        this.wake = resolve;
      });
      this.wake = undefined;
    }
    const out = this.buffered.subarray(0, n);
    this.buffered = this.buffered.subarray(n);
    return out;
  }

  /** An untyped startup-phase packet; returns its body. */
  async untyped(): Promise<Buffer> {
    const length = (await this.bytes(4)).readInt32BE(0);
    return this.bytes(length - 4);
  }

  /** A typed message. */
  async typed(): Promise<{ type: string; body: Buffer }> {
    const header = await this.bytes(5);
    return { type: String.fromCharCode(header[0]!), body: await this.bytes(header.readInt32BE(1) - 4) };
  }

  /** Bytes received and not read yet. */
  pending(): number {
    return this.buffered.length;
  }

  /** Resolves once the peer has closed (end or close). */
  async closed(): Promise<void> {
    while (!this.ended) {
      await new Promise<void>((resolve) => {
        this.wake = resolve;
      });
      this.wake = undefined;
    }
  }
}

/** Waits for `predicate` to hold, polling; fails after `ms`. */
export async function waitFor(predicate: () => boolean, ms = 2000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await sleep(5);
  }
}

/**
 * What a fake DSQL endpoint does after reading the SSLRequest, or after a direct TLS ClientHello (where
 * 'refuse', 'tls-with-extra' and 'stall-after-s' close the connection, as PostgreSQL before 17 does).
 */
export type SslBehaviour =
  /** 'S', then a TLS handshake; direct TLS with ALPN `postgresql`. */
  | 'tls'
  /** As 'tls', but a direct TLS handshake selects no ALPN protocol. */
  | 'tls-no-alpn'
  /** 'N': no TLS. */
  | 'refuse'
  /** 'S' and more bytes in the same write (CVE-2021-23222). */
  | 'tls-with-extra'
  /** Never answers. */
  | 'silent'
  /** 'S', then nothing: the TLS handshake never completes. */
  | 'stall-after-s'
  /** Closes without answering. */
  | 'close';

export interface FakeEndpoint {
  port: number;
  behaviour: SslBehaviour;
  /** The SSLRequest packets received, one per connection that sent one. */
  sslRequests: Buffer[];
  /** How each connection started, in order. */
  openings: Array<'ssl-request' | 'direct'>;
  /** ALPN protocols the client offered in each direct TLS ClientHello, in order. */
  alpnOffers: string[][];
  /** SNI server names seen by completed TLS handshakes, in order. */
  servernames: (string | false | null)[];
  /** Runs on the server side of each established TLS connection (the login script). */
  onSecure: (socket: tls.TLSSocket) => void;
}

/**
 * A TCP server on 127.0.0.1 port 0 playing a DSQL endpoint's TLS negotiation: it reads the
 * SSLRequest, answers as `behaviour` says and, for 'tls', upgrades the same socket with a server-side
 * TLSSocket. A connection that opens with a TLS record instead is a direct TLS one (ALPN `postgresql`).
 * One secure context per endpoint, so TLS session tickets it issues stay valid across connections
 * (resumption is possible, as with a real endpoint).
 */
export async function fakeEndpoint(cert: { certPem: string; keyPem: string }): Promise<FakeEndpoint> {
  const secureContext = tls.createSecureContext({ cert: cert.certPem, key: cert.keyPem });
  const endpoint: FakeEndpoint = {
    port: 0,
    behaviour: 'tls',
    sslRequests: [],
    openings: [],
    alpnOffers: [],
    servernames: [],
    onSecure: () => {},
  };
  const secureOver = (raw: net.Socket, alpn: boolean): void => {
    const secure = track(
      new tls.TLSSocket(raw, {
        isServer: true,
        secureContext,
        ...(alpn
          ? {
              ALPNCallback: ({ protocols }: { protocols: string[] }) => {
                endpoint.alpnOffers.push(protocols);
                return protocols.includes('postgresql') ? 'postgresql' : undefined;
              },
            }
          : {}),
      }),
    );
    secure.on('error', () => {});
    secure.once('secure', () => {
      endpoint.servernames.push(secure.servername);
      endpoint.onSecure(secure);
    });
  };
  const server = await listen((raw) => {
    raw.on('error', () => {});
    raw.once('data', (request: Buffer) => {
      if (request[0] === 0x16 /* TLS handshake record */) {
        endpoint.openings.push('direct');
        if (endpoint.behaviour === 'silent') return;
        if (endpoint.behaviour !== 'tls' && endpoint.behaviour !== 'tls-no-alpn') {
          raw.destroy();
          return;
        }
        // TLSSocket reads what the socket holds in JS before it reads the handle (paused, so that
        // the flowing socket does not emit the bytes again to nobody).
        raw.pause();
        raw.unshift(request);
        secureOver(raw, endpoint.behaviour === 'tls');
        return;
      }
      endpoint.openings.push('ssl-request');
      endpoint.sslRequests.push(request);
      switch (endpoint.behaviour) {
        case 'refuse':
          raw.write('N');
          return;
        case 'tls-with-extra':
          raw.write(Buffer.from('Sextra'));
          return;
        case 'silent':
          return;
        case 'stall-after-s':
          raw.write('S');
          return;
        case 'close':
          raw.destroy();
          return;
        case 'tls':
        case 'tls-no-alpn':
          raw.write('S');
          secureOver(raw, false);
          return;
      }
    });
  });
  endpoint.port = portOf(server);
  return endpoint;
}
