import type net from 'node:net';
import { ProxyError } from '../errors.js';
import type { FrameStream } from '../io/frame-stream.js';
import { negotiateProtocolVersion, SSL_NO } from '../protocol/backend.js';
import { MAX_STARTUP_PACKET_LENGTH } from '../protocol/constants.js';
import { decodeStartupPacket } from '../protocol/frontend.js';

export type ClientHello =
  | {
      kind: 'startup';
      user: string;
      /** What the client asked for; the upstream database is always `postgres`. */
      database: string;
      /** Startup parameters other than user and database, in the client's order. */
      params: Map<string, string>;
    }
  | { kind: 'cancel'; processId: number; secretKey: Buffer };

/**
 * The untyped startup phase, server side
 * (https://www.postgresql.org/docs/current/protocol-flow.html#PROTOCOL-FLOW-START-UP):
 * SSLRequest and GSSENCRequest are answered `N` (no local TLS yet), at most once each, then a
 * StartupMessage 3.x or a CancelRequest is expected.
 */
export async function readClientHello(socket: net.Socket, frames: FrameStream): Promise<ClientHello> {
  let sawSsl = false;
  let sawGss = false;
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
        if (packet.kind === 'ssl') sawSsl = true;
        else sawGss = true;
        socket.write(SSL_NO);
        break;
      }
      case 'cancel':
        return { kind: 'cancel', processId: packet.processId, secretKey: packet.secretKey };
      case 'startup': {
        if (packet.major !== 3) {
          throw new ProxyError('UNSUPPORTED_PROTOCOL', {
            message: `unsupported frontend protocol ${packet.major}.${packet.minor}: dsql-proxy supports 3.0`,
          });
        }
        // Newer minor versions and `_pq_.` options are negotiated down, as PostgreSQL does.
        if (packet.minor > 0 || packet.unrecognizedOptions.length > 0) {
          socket.write(negotiateProtocolVersion(0, packet.unrecognizedOptions));
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
        return { kind: 'startup', user, database, params };
      }
      default:
        // decodeStartupPacket reports every major version other than 3 (2.0, 4.0...) as 'unknown', so
        // the `major !== 3` check above never sees them. PostgreSQL reads any code that is not a special
        // request as a protocol version and refuses it as "unsupported frontend protocol M.m".
        throw new ProxyError('UNSUPPORTED_PROTOCOL', {
          message: `unsupported frontend protocol ${packet.code >>> 16}.${packet.code & 0xffff}: dsql-proxy supports 3.0`,
        });
    }
  }
}
