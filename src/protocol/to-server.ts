import { CANCEL_REQUEST_CODE, FrontendMessage, PROTOCOL_3_0, SSL_REQUEST_CODE } from './constants.js';
import { cstring, int32, typedMessage, untypedMessage } from './message-writer.js';

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
