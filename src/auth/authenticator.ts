import { randomBytes } from 'node:crypto';
import { ProxyError } from '../errors.js';
import { FrontendMessage } from '../protocol/constants.js';
import {
  decodePasswordMessage,
  decodeSASLInitialResponse,
  decodeSASLResponse,
} from '../protocol/from-client.js';
import {
  authenticationCleartextPassword,
  authenticationMD5Password,
  authenticationOk,
  authenticationSASL,
  authenticationSASLContinue,
  authenticationSASLFinal,
} from '../protocol/to-client.js';
import type { AuthContext } from './auth-context.js';
import { constantTimeEqual, md5Secret, verifyMd5Password, verifyMd5Response } from './md5.js';
import { type PendingScramVerifier, SCRAM_MECHANISM, ScramServer } from './scram.js';
import type { AuthMethod, AuthSecret, ScramVerifier } from './types.js';

/**
 * What the session does after each step: write every Buffer in `send`, then, if `done` is set, stop.
 * Success always carries AuthenticationOk in `send`. Failure carries nothing in `send`: the session
 * reports `done.error` (errorFromProxyError) and closes.
 */
export interface AuthStep {
  send: Buffer[];
  done?: { ok: true } | { ok: false; error: ProxyError };
}

/**
 * A state machine for one client's local authentication; no I/O, no timers. A step that needs a PBKDF2
 * derivation resolves once the thread pool has done it (see pbkdf2.ts): the event loop never waits.
 */
export interface Authenticator {
  begin(): AuthStep;
  /** One typed frontend message (type byte and body as FrameReader returns them). */
  receive(type: number, body: Buffer): Promise<AuthStep>;
  /** True while the exchange waits for a client message. */
  expectsMessage(): boolean;
}

export interface AuthenticatorOptions {
  method: AuthMethod;
  user: string;
  /** The auth file's users, what an unknown user looks like, and the keys derived so far. */
  context: AuthContext;
  random?: (n: number) => Buffer;
}

type Phase =
  | { name: 'new' }
  | { name: 'cleartext' }
  | { name: 'md5'; salt: Buffer }
  | { name: 'sasl-initial'; server: ScramServer }
  | { name: 'sasl-first'; server: ScramServer } // SASLInitialResponse had no data
  | { name: 'sasl-final'; server: ScramServer }
  | { name: 'done' };

/**
 * Chooses the exchange the way PostgreSQL does (auth.c, CheckPWChallengeAuth):
 * - trust: AuthenticationOk at once;
 * - scram-sha-256: SASL; an md5 secret cannot answer SCRAM, so a mock exchange runs and fails;
 *   a plain secret gets a verifier derived once the first proof arrives, and kept (AuthContext);
 * - md5: SCRAM if the secret is a SCRAM verifier (PostgreSQL upgrades the same way), else an MD5
 *   challenge with a random salt;
 * - password: cleartext, checked against any secret kind.
 *
 * An unknown user goes through the same messages as a user with the auth file's usual secret kind
 * (AuthContext.mockKind), with a stable salt and the usual iterations, and fails at the end with the
 * same error, so a client cannot enumerate users.
 */
export function createAuthenticator(opts: AuthenticatorOptions): Authenticator {
  const random = opts.random ?? randomBytes;
  const { user, context } = opts;
  const secret = context.users.get(user);
  let phase: Phase = { name: 'new' };

  const succeed = (...send: Buffer[]): AuthStep => {
    phase = { name: 'done' };
    return { send: [...send, authenticationOk()], done: { ok: true } };
  };
  const fail = (error: ProxyError = authFailed(user)): AuthStep => {
    phase = { name: 'done' };
    return { send: [], done: { ok: false, error } };
  };

  const startScram = (): AuthStep => {
    phase = { name: 'sasl-initial', server: scramServer(secret, user, context, random) };
    return { send: [authenticationSASL([SCRAM_MECHANISM])] };
  };

  const begin = (): AuthStep => {
    if (phase.name !== 'new') throw new ProxyError('INTERNAL', { message: 'authenticator already started' });
    switch (firstExchange(opts.method, secret, context)) {
      case 'ok':
        return succeed();
      case 'scram':
        return startScram();
      case 'md5':
        phase = { name: 'md5', salt: random(4) };
        return { send: [authenticationMD5Password(phase.salt)] };
      case 'cleartext':
        phase = { name: 'cleartext' };
        return { send: [authenticationCleartextPassword()] };
    }
  };

  const step = async (body: Buffer): Promise<AuthStep> => {
    switch (phase.name) {
      case 'cleartext':
        phase = { name: 'done' };
        return (await checkCleartext(body, user, secret, context)) ? succeed() : fail();
      case 'md5':
        return checkMd5(body, phase.salt, user, secret) ? succeed() : fail();
      case 'sasl-initial': {
        const data = saslInitialData(body);
        if (data === null) {
          // No initial response: ask for it with an empty challenge, as PostgreSQL does.
          phase = { name: 'sasl-first', server: phase.server };
          return { send: [authenticationSASLContinue(Buffer.alloc(0))] };
        }
        return scramFirst(phase.server, data);
      }
      case 'sasl-first':
        return scramFirst(phase.server, decodeSASLResponse(body));
      case 'sasl-final': {
        const { server } = phase;
        phase = { name: 'done' };
        const serverFinal = await scramFinal(server, body);
        return serverFinal ? succeed(authenticationSASLFinal(serverFinal)) : fail();
      }
      case 'new':
      case 'done':
        return fail(violation('unexpected message during authentication'));
    }
  };

  const scramFirst = (server: ScramServer, data: Buffer): AuthStep => {
    phase = { name: 'sasl-final', server };
    return { send: [authenticationSASLContinue(server.clientFirst(data))] };
  };

  const receive = async (type: number, body: Buffer): Promise<AuthStep> => {
    if (type !== FrontendMessage.Password) {
      return fail(violation(`expected password response, got message type ${type}`));
    }
    try {
      return await step(body);
    } catch (err) {
      if (err instanceof ProxyError) return fail(err);
      throw err;
    }
  };

  return {
    begin,
    receive,
    // A method, not a getter: a getter in an object literal takes V8's slow path on every creation.
    expectsMessage: () => phase.name !== 'new' && phase.name !== 'done',
  };
}

function authFailed(user: string): ProxyError {
  return new ProxyError('AUTH_FAILED', { message: `password authentication failed for user "${user}"` });
}

/** The SCRAM exchange for `user`: a mock one (it fails at the end) without a usable secret. */
function scramServer(
  secret: AuthSecret | undefined,
  user: string,
  context: AuthContext,
  random: (n: number) => Buffer,
): ScramServer {
  return new ScramServer(scramVerifier(secret, user, context), {
    mockSalt: context.mockSalt(user),
    mockIterations: context.mockIterations,
    nonceBytes: () => random(18),
  });
}

/** The client-first-message a SASLInitialResponse carries (null: none yet); SCRAM-SHA-256 only. */
function saslInitialData(body: Buffer): Buffer | null {
  const { mechanism, data } = decodeSASLInitialResponse(body);
  if (mechanism !== SCRAM_MECHANISM)
    throw violation('client selected an invalid SASL authentication mechanism');
  return data;
}

/** The client's proof, checked once the verifier is derived: the server-final message, or null. */
async function scramFinal(server: ScramServer, body: Buffer): Promise<Buffer | null> {
  const data = decodeSASLResponse(body);
  await server.ready();
  const result = server.clientFinal(data);
  return result.ok ? result.serverFinal : null;
}

/** The exchange a method and secret lead to (see createAuthenticator). */
function firstExchange(
  method: AuthMethod,
  secret: AuthSecret | undefined,
  context: AuthContext,
): 'ok' | 'scram' | 'md5' | 'cleartext' {
  switch (method) {
    case 'trust':
      return 'ok';
    case 'scram-sha-256':
      return 'scram';
    case 'md5':
      if (secret?.kind === 'scram') return 'scram';
      return secret === undefined && context.mockKind === 'scram' ? 'scram' : 'md5';
    case 'password':
      return 'cleartext';
  }
}

/** The verifier SCRAM checks against; null (a mock exchange that fails) for an md5 secret or none. */
function scramVerifier(
  secret: AuthSecret | undefined,
  user: string,
  context: AuthContext,
): ScramVerifier | PendingScramVerifier | null {
  if (secret?.kind === 'scram') return secret.verifier;
  if (secret?.kind === 'plain') {
    // Nothing is derived before a proof arrives; then once per user (AuthContext).
    const { password } = secret;
    return {
      iterations: context.mockIterations,
      salt: context.mockSalt(user),
      derive: () => context.plainVerifier(user, password),
    };
  }
  return null;
}

/** A cleartext password against any secret kind; a missing user costs what a present one does. */
async function checkCleartext(
  body: Buffer,
  user: string,
  secret: AuthSecret | undefined,
  context: AuthContext,
): Promise<boolean> {
  const password = decodePasswordMessage(body);
  // PostgreSQL refuses an empty password outright ("empty password returned by client").
  if (password === '') return false;
  // Raw bytes, not the decoded string: SASLprep falls back to them when they are not UTF-8.
  const raw = body.subarray(0, body.length - 1);
  if (secret === undefined) {
    // The cost of the usual secret kind, so the answer time does not tell a missing user apart.
    await context.mockPasswordCheck(user, raw);
    return false;
  }
  switch (secret.kind) {
    case 'scram':
      return context.checkScramPassword(secret, raw);
    case 'md5':
      return verifyMd5Password(password, user, secret.hash);
    case 'plain':
      return constantTimeEqual(password, secret.password);
  }
}

/** An MD5 challenge response; a SCRAM verifier cannot answer one. */
function checkMd5(body: Buffer, salt: Buffer, user: string, secret: AuthSecret | undefined): boolean {
  const response = decodePasswordMessage(body);
  if (secret === undefined || secret.kind === 'scram') return false;
  const stored = secret.kind === 'md5' ? secret.hash : md5Secret(secret.password, user);
  return verifyMd5Response(stored, salt, response);
}

function violation(message: string): ProxyError {
  return new ProxyError('PROTOCOL_VIOLATION', { message });
}
