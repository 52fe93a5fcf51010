import type net from 'node:net';
import tls from 'node:tls';
import { ProxyError } from '../errors.js';
import { CLIENT_WRITE_HIGH_WATER_MARK } from '../io/client-socket.js';
import { FrameStream } from '../io/frame-stream.js';
import { replayDuplex } from '../io/replay-duplex.js';
import { MAX_STARTUP_PACKET_LENGTH, PROTOCOL_3_0, TLS_HANDSHAKE_RECORD } from '../protocol/constants.js';
import { decodeStartupPacket, type StartupPacket } from '../protocol/from-client.js';
import { negotiateProtocolVersion, SSL_NO } from '../protocol/to-client.js';
import type { ClientTls } from './client-tls.js';

export interface ClientTlsInfo {
  protocol: string | null;
  /** Direct TLS (PostgreSQL 17+ `sslnegotiation=direct`) rather than SSLRequest. */
  direct: boolean;
}

export type ClientHello =
  | {
      kind: 'startup';
      user: string;
      /** What the client asked for; the upstream database is always `postgres`. */
      database: string;
      /** Startup parameters other than user and database, in the client's order. */
      params: Map<string, string>;
      /** The connection from here on: the TLS socket when the client negotiated TLS. */
      socket: net.Socket;
      frames: FrameStream;
      tls: ClientTlsInfo | undefined;
    }
  | { kind: 'cancel'; processId: number; secretKey: Buffer };

export interface HelloOptions {
  tls?: ClientTls;
  /** The error a read fails with when the client goes away (also for the TLS stream). */
  closedError?: () => Error;
}

const NO_TLS: ClientTls = { enabled: false, required: false, secureContext: undefined };

/**
 * The untyped startup phase, server side
 * (https://www.postgresql.org/docs/current/protocol-flow.html#PROTOCOL-FLOW-START-UP):
 * SSLRequest is answered `S` and TLS begins when local TLS is on, `N` otherwise; GSSENCRequest is
 * always answered `N`; each at most once. A TLS ClientHello as the very first bytes is direct TLS
 * (PostgreSQL 17+), accepted with ALPN `postgresql` when TLS is on. Then a StartupMessage 3.x or a
 * CancelRequest is expected.
 */
export async function readClientHello(
  rawSocket: net.Socket,
  rawFrames: FrameStream,
  opts: HelloOptions = {},
): Promise<ClientHello> {
  const ctx = opts.tls ?? NO_TLS;
  const closedError =
    opts.closedError ?? (() => new ProxyError('PROTOCOL_VIOLATION', { message: 'client closed' }));
  let socket = rawSocket;
  let frames = rawFrames;
  let tlsInfo: ClientTlsInfo | undefined;
  let sawSsl = false;
  let sawGss = false;

  if ((await frames.peekByte()) === TLS_HANDSHAKE_RECORD) {
    if (!ctx.enabled) {
      // Nothing PostgreSQL-shaped can be said inside a TLS handshake: close, and let the log say why.
      throw new ProxyError('TLS_NOT_ENABLED', {
        message:
          'the client started TLS directly (sslnegotiation=direct) but local TLS is off (--client-tls off)',
      });
    }
    const leftover = frames.detach();
    socket = await startTls(replayDuplex(rawSocket, leftover), ctx, true);
    frames = new FrameStream(socket, closedError);
    tlsInfo = { protocol: (socket as tls.TLSSocket).getProtocol(), direct: true };
    sawSsl = true;
  }

  for (;;) {
    const packet = decodeStartupPacket(await frames.nextUntyped(MAX_STARTUP_PACKET_LENGTH));
    switch (packet.kind) {
      case 'ssl':
      case 'gssenc': {
        if ((packet.kind === 'ssl' && sawSsl) || (packet.kind === 'gssenc' && sawGss)) {
          throw new ProxyError('PROTOCOL_VIOLATION', {
            message: `duplicate ${packet.kind.toUpperCase()} request`,
          });
        }
        // CVE-2021-23214: bytes that arrived with the request were sent before any encryption was
        // agreed; processing them would let a man in the middle inject them.
        if (frames.buffered() > 0) throw new ProxyError('SSL_BYTES_AFTER_REQUEST');
        if (packet.kind === 'gssenc') {
          sawGss = true;
          socket.write(SSL_NO);
          break;
        }
        sawSsl = true;
        if (!ctx.enabled) {
          socket.write(SSL_NO);
          break;
        }
        socket.write('S');
        frames.detach();
        socket = await startTls(rawSocket, ctx, false);
        frames = new FrameStream(socket, closedError);
        tlsInfo = { protocol: (socket as tls.TLSSocket).getProtocol(), direct: false };
        break;
      }
      case 'cancel':
        return { kind: 'cancel', processId: packet.processId, secretKey: packet.secretKey };
      case 'startup':
        return startupHello(packet, ctx, { socket, frames, tls: tlsInfo });
      default:
        // decodeStartupPacket reports any major version other than 3 as an unknown code.
        throw new ProxyError('UNSUPPORTED_PROTOCOL', {
          message: `unsupported frontend protocol ${packet.code >>> 16}.${packet.code & 0xffff}: dsql-proxy supports 3.0`,
        });
    }
  }
}

/** A StartupMessage: protocol 3.x (a newer minor version is negotiated down), TLS if required, a user. */
function startupHello(
  packet: Extract<StartupPacket, { kind: 'startup' }>,
  ctx: ClientTls,
  channel: { socket: net.Socket; frames: FrameStream; tls: ClientTlsInfo | undefined },
): ClientHello {
  if (packet.major !== 3) {
    throw new ProxyError('UNSUPPORTED_PROTOCOL', {
      message: `unsupported frontend protocol ${packet.major}.${packet.minor}: dsql-proxy supports 3.0`,
    });
  }
  if (ctx.required && !channel.tls) {
    throw new ProxyError('TLS_REQUIRED');
  }
  // Newer minor versions and `_pq_.` options are negotiated down, as PostgreSQL does.
  if (packet.minor > 0 || packet.unrecognizedOptions.length > 0) {
    channel.socket.write(negotiateProtocolVersion(PROTOCOL_3_0, packet.unrecognizedOptions));
  }
  const params = new Map(packet.params);
  const user = params.get('user');
  if (!user) {
    throw new ProxyError('AUTH_INVALID', {
      message: 'no PostgreSQL user name specified in startup packet',
    });
  }
  const database = params.get('database') || user;
  params.delete('user');
  params.delete('database');
  return { kind: 'startup', user, database, params, ...channel };
}

/**
 * The server side of the TLS handshake. ALPN `postgresql` is offered; PostgreSQL 17 requires a
 * direct-TLS client to ask for it, so that a TLS connection meant for another protocol is not taken
 * for a PostgreSQL one.
 */
function startTls(
  transport: net.Socket | import('node:stream').Duplex,
  ctx: ClientTls,
  direct: boolean,
): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    // Node passes highWaterMark on to the socket; its type definitions do not list it.
    const options: tls.TLSSocketOptions & { highWaterMark: number } = {
      isServer: true,
      secureContext: ctx.secureContext,
      ALPNProtocols: ['postgresql'],
      // The TLS socket replaces the raw one towards the relay: the same write threshold.
      highWaterMark: CLIENT_WRITE_HIGH_WATER_MARK,
    };
    const secure = new tls.TLSSocket(transport as net.Socket, options);
    const fail = (err: Error): void => {
      secure.destroy();
      reject(
        new ProxyError('CLIENT_TLS_FAILED', {
          message: `TLS handshake with the client failed: ${err.message}`,
          cause: err,
        }),
      );
    };
    secure.once('error', fail);
    secure.once('secure', () => {
      secure.off('error', fail);
      if (direct && secure.alpnProtocol !== 'postgresql') {
        secure.destroy();
        reject(
          new ProxyError('CLIENT_TLS_FAILED', {
            message: 'direct TLS without ALPN "postgresql" is refused (PostgreSQL 17 rule)',
          }),
        );
        return;
      }
      resolve(secure);
    });
  });
}
