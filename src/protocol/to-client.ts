import type { ProxyError, Severity } from '../errors.js';
import { AuthRequest, BackendMessage, ErrorField, SSLResponse } from './constants.js';
import { cstring, int32, typedMessage } from './message-writer.js';

/**
 * Encoders for the backend messages the proxy sends to its clients (the proxy in the server's role).
 * Messages the proxy sends to DSQL are in to-server.ts.
 * Formats: https://www.postgresql.org/docs/current/protocol-message-formats.html.
 */

export interface ErrorFields {
  severity: Severity;
  sqlstate: string;
  message: string;
  detail?: string | undefined;
  hint?: string | undefined;
}

/** Answer to SSLRequest / GSSENCRequest when the proxy will not encrypt. */
export const SSL_NO: Buffer = Buffer.from([SSLResponse.Refuse]);

/**
 * ErrorResponse ('E'). Both S (possibly localised) and V (never localised, PostgreSQL 9.6+) carry
 * the severity; clients such as libpq prefer V when present.
 */
export function errorResponse(fields: ErrorFields): Buffer {
  return typedMessage(BackendMessage.ErrorResponse, encodeFields(fields));
}

/** NoticeResponse ('N'): same fields as ErrorResponse. */
export function noticeResponse(fields: ErrorFields): Buffer {
  return typedMessage(BackendMessage.NoticeResponse, encodeFields(fields));
}

/** The ErrorResponse a client sees for a catalogued ProxyError. */
export function errorFromProxyError(err: ProxyError): Buffer {
  return errorResponse({
    severity: err.severity,
    sqlstate: err.sqlstate,
    message: err.message,
    detail: err.detail,
    hint: err.hint,
  });
}

function encodeFields(fields: ErrorFields): Buffer {
  const parts: Buffer[] = [];
  const add = (code: number, value: string): void => {
    parts.push(Buffer.from([code]), cstring(value));
  };
  add(ErrorField.Severity, fields.severity);
  add(ErrorField.SeverityNonLocalized, fields.severity);
  add(ErrorField.Code, fields.sqlstate);
  add(ErrorField.Message, fields.message);
  if (fields.detail !== undefined) add(ErrorField.Detail, fields.detail);
  if (fields.hint !== undefined) add(ErrorField.Hint, fields.hint);
  parts.push(Buffer.from([0]));
  return Buffer.concat(parts);
}

function authentication(code: number, ...rest: Buffer[]): Buffer {
  return typedMessage(BackendMessage.Authentication, int32(code), ...rest);
}

export function authenticationOk(): Buffer {
  return authentication(AuthRequest.Ok);
}

export function authenticationCleartextPassword(): Buffer {
  return authentication(AuthRequest.CleartextPassword);
}

/** AuthenticationMD5Password with the 4-byte salt the client must hash with. */
export function authenticationMD5Password(salt: Buffer): Buffer {
  if (salt.length !== 4) throw new RangeError('MD5 salt must be 4 bytes');
  return authentication(AuthRequest.MD5Password, salt);
}

/** AuthenticationSASL: the mechanism list, each NUL-terminated, then an empty string. */
export function authenticationSASL(mechanisms: readonly string[]): Buffer {
  return authentication(AuthRequest.SASL, ...mechanisms.map(cstring), Buffer.from([0]));
}

export function authenticationSASLContinue(data: Buffer): Buffer {
  return authentication(AuthRequest.SASLContinue, data);
}

export function authenticationSASLFinal(data: Buffer): Buffer {
  return authentication(AuthRequest.SASLFinal, data);
}

export function parameterStatus(name: string, value: string): Buffer {
  return typedMessage(BackendMessage.ParameterStatus, cstring(name), cstring(value));
}

/** BackendKeyData ('K'): 4-byte keys in protocol 3.0, up to 256 bytes in 3.2. */
export function backendKeyData(processId: number, secretKey: Buffer): Buffer {
  return typedMessage(BackendMessage.BackendKeyData, int32(processId), secretKey);
}

export function readyForQuery(status: 'I' | 'T' | 'E'): Buffer {
  return typedMessage(BackendMessage.ReadyForQuery, Buffer.from(status, 'latin1'));
}

/** CommandComplete ('C') with its command tag, e.g. `PREPARE`, `INSERT 0 1`, `SELECT 3`. */
export function commandComplete(tag: string): Buffer {
  return typedMessage(BackendMessage.CommandComplete, cstring(tag));
}

/**
 * The end of a login, after AuthenticationOk: `messages` as they are (the server's ParameterStatus
 * and notices, already framed), then BackendKeyData and ReadyForQuery, in one Buffer. The same bytes
 * as concatenating backendKeyData() and readyForQuery() after them, written in place: every client
 * login goes through here.
 */
export function loginAnswer(
  messages: readonly Buffer[],
  processId: number,
  secretKey: Buffer,
  status: 'I' | 'T' | 'E',
): Buffer {
  let length = 9 + secretKey.length + 6;
  for (const m of messages) length += m.length;
  const out = Buffer.allocUnsafe(length);
  let at = 0;
  for (const m of messages) at += m.copy(out, at);
  out[at] = BackendMessage.BackendKeyData;
  out.writeInt32BE(8 + secretKey.length, at + 1);
  out.writeInt32BE(processId, at + 5);
  at += 9 + secretKey.copy(out, at + 9);
  out[at] = BackendMessage.ReadyForQuery;
  out.writeInt32BE(5, at + 1);
  out[at + 5] = status.charCodeAt(0);
  return out;
}

/**
 * NegotiateProtocolVersion ('v'): the newest minor version of the requested major we support, and
 * the `_pq_.*` options we did not recognise. Sent instead of failing, so 3.2 clients fall back to 3.0.
 */
/**
 * NegotiateProtocolVersion. The first Int32 is documented as the newest supported *minor* version,
 * but PostgreSQL sends the full version code, major << 16 | minor (PG_PROTOCOL_LATEST in
 * SendNegotiateProtocolVersion), and libpq 18 reads it that way: a bare 0 is taken as a downgrade to
 * protocol 0.0 and the connection fails ("server requested downgrade to pre-3.0 protocol version").
 */
export function negotiateProtocolVersion(version: number, unrecognized: readonly string[]): Buffer {
  return typedMessage(
    BackendMessage.NegotiateProtocolVersion,
    int32(version),
    int32(unrecognized.length),
    ...unrecognized.map(cstring),
  );
}
