import type tls from 'node:tls';
import type { DatabaseError } from 'pg-protocol';
import type { ParameterStatusMessage, ReadyForQueryMessage } from 'pg-protocol/dist/messages.js';
import { ProxyError } from '../errors.js';
import { socketDeadline } from '../io/deadline.js';
import { FrameStream } from '../io/frame-stream.js';
import { BackendMessage } from '../protocol/constants.js';
import type { TypedFrame } from '../protocol/frame-reader.js';
import { decodeBackendFrame, encodeFrame } from '../protocol/from-server.js';
import { frontendPassword, frontendStartup } from '../protocol/to-server.js';

/** Backend messages are bounded during login; a ParameterStatus or ErrorResponse is far smaller. */
const MAX_LOGIN_MESSAGE = 1024 * 1024;

export interface UpstreamLoginRequest {
  /** The DSQL role. */
  user: string;
  /** Startup parameters from the client other than user and database. */
  params: ReadonlyMap<string, string>;
  /** The IAM token, sent as a cleartext password inside TLS. */
  token: string;
}

/** What a DSQL login answered, up to its ReadyForQuery. */
export interface UpstreamLogin {
  /** ParameterStatus messages as received, to forward to the client unchanged. */
  parameterMessages: Buffer[];
  /** NoticeResponse messages received during login, forwarded as well. */
  noticeMessages: Buffer[];
  parameters: Map<string, string>;
  /** The upstream's cancel key, if it sent one (DSQL may not). */
  backendKey: { processId: number; secretKey: Buffer } | undefined;
  transactionStatus: string;
  /** Bytes received after ReadyForQuery (none expected; forwarded if any). */
  leftover: Buffer;
}

/**
 * Logs in on an open TLS connection: StartupMessage (database is always `postgres` on DSQL), answer
 * AuthenticationCleartextPassword with the token, then collect ParameterStatus/BackendKeyData until
 * ReadyForQuery. An ErrorResponse keeps the upstream's SQLSTATE and message, with a hint where the
 * cause is known.
 */
export async function loginUpstream(
  socket: tls.TLSSocket,
  req: UpstreamLoginRequest,
  timeoutMs: number,
): Promise<UpstreamLogin> {
  const deadline = socketDeadline(
    socket,
    timeoutMs,
    () => new ProxyError('UPSTREAM_TIMEOUT', { message: `DSQL login did not finish within ${timeoutMs} ms` }),
  );
  // The timeout closes the socket, and FrameStream fails the pending read with `closedError()`: that
  // error must be the timeout, not "closed" (08006) with the timeout buried as its cause.
  const frames = new FrameStream(
    socket,
    () =>
      deadline.expired ??
      new ProxyError('UPSTREAM_CLOSED', { message: 'the DSQL endpoint closed the connection during login' }),
  );
  try {
    const startup: Record<string, string> = {};
    for (const [k, v] of req.params) startup[k] = v;
    startup.user = req.user;
    startup.database = 'postgres';
    socket.write(frontendStartup(startup));
    return await readUntilReady(frames, socket, req);
  } finally {
    deadline.clear();
    frames.detach();
  }
}

/** The login's answers, up to ReadyForQuery: authentication, then settings, key and notices. */
async function readUntilReady(
  frames: FrameStream,
  socket: tls.TLSSocket,
  req: UpstreamLoginRequest,
): Promise<UpstreamLogin> {
  const login: UpstreamLogin = {
    parameterMessages: [],
    noticeMessages: [],
    parameters: new Map(),
    backendKey: undefined,
    transactionStatus: 'I',
    leftover: Buffer.alloc(0),
  };
  let authenticated = false;
  for (;;) {
    const frame = await frames.nextTyped(MAX_LOGIN_MESSAGE);
    switch (frame.type) {
      case BackendMessage.Authentication:
        authenticated = authenticate(frame, socket, req.token, authenticated);
        break;
      case BackendMessage.ErrorResponse:
        throw upstreamError(decodeBackendFrame(frame) as DatabaseError, req.user);
      case BackendMessage.ParameterStatus: {
        const msg = decodeBackendFrame(frame) as ParameterStatusMessage;
        login.parameters.set(msg.parameterName, msg.parameterValue);
        login.parameterMessages.push(encodeFrame(frame));
        break;
      }
      case BackendMessage.BackendKeyData:
        // Raw key bytes: protocol 3.2 allows keys longer than pg-protocol's int32.
        if (frame.body.length >= 8) {
          login.backendKey = {
            processId: frame.body.readInt32BE(0),
            secretKey: Buffer.from(frame.body.subarray(4)),
          };
        }
        break;
      case BackendMessage.NoticeResponse:
        login.noticeMessages.push(encodeFrame(frame));
        break;
      case BackendMessage.NegotiateProtocolVersion: // harmless: we asked for 3.0
        break;
      case BackendMessage.ReadyForQuery:
        if (!authenticated) {
          throw new ProxyError('UPSTREAM_PROTOCOL', { detail: 'ReadyForQuery before authentication' });
        }
        login.transactionStatus = (decodeBackendFrame(frame) as ReadyForQueryMessage).status;
        login.leftover = frames.detach();
        return login;
      default:
        throw new ProxyError('UPSTREAM_PROTOCOL', {
          detail: `unexpected message '${String.fromCharCode(frame.type)}' during login`,
        });
    }
  }
}

/**
 * One authentication request: the token answers the one cleartext-password request; anything but
 * that and AuthenticationOk is a method the proxy does not speak. Returns whether the login is
 * authenticated now.
 */
function authenticate(
  frame: TypedFrame,
  socket: tls.TLSSocket,
  token: string,
  authenticated: boolean,
): boolean {
  let msg: ReturnType<typeof decodeBackendFrame>;
  try {
    msg = decodeBackendFrame(frame);
  } catch (err) {
    // pg-protocol throws a plain Error for request codes it does not know (GSS 7, SSPI 9...):
    // that is an unsupported method, not an internal error.
    const code = frame.body.length >= 4 ? String(frame.body.readInt32BE(0)) : '(truncated)';
    throw new ProxyError('UPSTREAM_AUTH_UNSUPPORTED', {
      detail: `the endpoint sent authentication request ${code}`,
      cause: err,
    });
  }
  if (msg.name === 'authenticationCleartextPassword' && !authenticated) {
    socket.write(frontendPassword(token));
    return false;
  }
  if (msg.name === 'authenticationOk') return true;
  throw new ProxyError('UPSTREAM_AUTH_UNSUPPORTED', { detail: `the endpoint sent ${msg.name}` });
}

/** Known DSQL login failures and what a person should check. */
function hintFor(message: string, role: string): string | undefined {
  if (/access denied|IAM authentication failed/i.test(message)) {
    const action = role === 'admin' ? 'dsql:DbConnectAdmin' : 'dsql:DbConnect';
    return `Check that the IAM identity dsql-proxy runs as is allowed ${action} on this cluster, that its credentials have not expired, and that role "${role}" exists and is granted to that identity (AWS IAM GRANT).`;
  }
  if (/too many open connections|rate exceeded/i.test(message)) {
    return 'DSQL limits open connections and the rate of new ones per cluster; retry shortly.';
  }
  return undefined;
}

function upstreamError(err: DatabaseError, role: string): ProxyError {
  const message = err.message || 'the DSQL endpoint refused the login';
  return new ProxyError('UPSTREAM_REJECTED', {
    message,
    sqlstate: err.code ?? '08001',
    detail: err.detail,
    hint: err.hint ?? hintFor(message, role),
  });
}
