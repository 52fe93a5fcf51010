import { CANCEL_REQUEST_CODE, FrontendMessage, PROTOCOL_3_0, SSL_REQUEST_CODE } from './constants.js';
import { cstring, int16, int32, typedMessage, untypedMessage } from './message-writer.js';

/**
 * Encoders for the frontend messages the proxy itself sends upstream.
 * Written here rather than taken from pg-protocol's serializer because its `startup()` always
 * appends `client_encoding=UTF8`, overriding what the client asked for.
 */

/** StartupMessage, protocol 3.0, with exactly the given parameters (insertion order kept). */
export function frontendStartup(params: Record<string, string>): Buffer {
  const parts: Buffer[] = [int32(PROTOCOL_3_0)];
  for (const [name, value] of Object.entries(params)) parts.push(cstring(name), cstring(value));
  parts.push(Buffer.from([0]));
  return untypedMessage(...parts);
}

/** PasswordMessage ('p'): used upstream to send the IAM token as a cleartext password. */
export function frontendPassword(password: string): Buffer {
  return typedMessage(FrontendMessage.Password, cstring(password));
}

export function frontendSSLRequest(): Buffer {
  return untypedMessage(int32(SSL_REQUEST_CODE));
}

/** CancelRequest: sent on a fresh connection with the key the upstream gave in BackendKeyData. */
export function frontendCancelRequest(processId: number, secretKey: Buffer): Buffer {
  return untypedMessage(int32(CANCEL_REQUEST_CODE), int32(processId), secretKey);
}

export function frontendTerminate(): Buffer {
  return typedMessage(FrontendMessage.Terminate);
}

/** Query ('Q'): the simple query protocol, one SQL string. */
export function frontendQuery(sql: string): Buffer {
  return typedMessage(FrontendMessage.Query, cstring(sql));
}

/*
 * The extended query protocol, for the compatibility layer's own exchanges (SQL-level PREPARE/EXECUTE
 * carried out over protocol-level prepared statements). Formats:
 * https://www.postgresql.org/docs/current/protocol-message-formats.html
 */

/** Parse ('P'): a statement name ('' = unnamed), its SQL and the declared parameter type OIDs (0 = unspecified). */
export function frontendParse(name: string, sql: string, paramTypeOids: readonly number[] = []): Buffer {
  const count = Buffer.allocUnsafe(2);
  count.writeInt16BE(paramTypeOids.length, 0);
  // OIDs are unsigned 32-bit; the wire field is the same 4 bytes.
  const oids = paramTypeOids.map((oid) => {
    const b = Buffer.allocUnsafe(4);
    b.writeUInt32BE(oid, 0);
    return b;
  });
  return typedMessage(FrontendMessage.Parse, cstring(name), cstring(sql), count, ...oids);
}

/**
 * Bind ('B') with every parameter in text format (no format codes: all text) and every result column
 * in text format. A null value is sent as length -1 (SQL NULL); a string is sent as UTF-8, a Buffer
 * as it is (e.g. a value read from a DataRow, already in the session's encoding).
 */
export function frontendBind(
  portal: string,
  statement: string,
  values: readonly (string | Buffer | null)[],
): Buffer {
  const parts: Buffer[] = [cstring(portal), cstring(statement), int16(0), int16(values.length)];
  for (const value of values) {
    if (value === null) {
      parts.push(int32(-1));
    } else {
      const bytes = typeof value === 'string' ? Buffer.from(value, 'utf8') : value;
      parts.push(int32(bytes.length), bytes);
    }
  }
  parts.push(int16(0));
  return typedMessage(FrontendMessage.Bind, ...parts);
}

/** Describe ('D') of a prepared statement ('S') or a portal ('P'). */
export function frontendDescribe(target: 'S' | 'P', name: string): Buffer {
  return typedMessage(FrontendMessage.Describe, Buffer.from(target, 'latin1'), cstring(name));
}

/** Execute ('E'): run a portal; maxRows 0 means all rows. */
export function frontendExecute(portal: string, maxRows = 0): Buffer {
  return typedMessage(FrontendMessage.Execute, cstring(portal), int32(maxRows));
}

/** Close ('C') of a prepared statement ('S') or a portal ('P'). */
export function frontendClose(target: 'S' | 'P', name: string): Buffer {
  return typedMessage(FrontendMessage.Close, Buffer.from(target, 'latin1'), cstring(name));
}

export function frontendSync(): Buffer {
  return typedMessage(FrontendMessage.Sync);
}

export function frontendFlush(): Buffer {
  return typedMessage(FrontendMessage.Flush);
}
