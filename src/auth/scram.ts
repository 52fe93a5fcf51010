import { createHash, createHmac, pbkdf2Sync, randomBytes, timingSafeEqual } from 'node:crypto';
import { ProxyError } from '../errors.js';
import { type Pbkdf2, pbkdf2Sha256 } from './pbkdf2.js';
import { saslPrep } from './saslprep.js';
import type { ScramVerifier } from './types.js';

/**
 * SCRAM-SHA-256 (RFC 5802, RFC 7677) as PostgreSQL speaks it
 * (https://www.postgresql.org/docs/current/sasl-authentication.html), server side.
 * No npm package does the server half, hence this file.
 */

export const SCRAM_MECHANISM = 'SCRAM-SHA-256';
/** PostgreSQL's defaults (scram_iterations, SCRAM_DEFAULT_SALT_LEN). */
export const SCRAM_DEFAULT_ITERATIONS = 4096;
export const SCRAM_DEFAULT_SALT_LENGTH = 16;
/**
 * The most iterations an auth file's verifier may ask for. PostgreSQL accepts up to 2^31-1, but every
 * `password`-method login costs one PBKDF2 at the verifier's count: 1,000,000 (about a second of one
 * core here) admits OWASP's 600,000 for PBKDF2-HMAC-SHA-256 with room to spare, 244 times PostgreSQL's
 * default, and keeps one login from costing minutes of CPU.
 */
export const SCRAM_MAX_ITERATIONS = 1_000_000;
const KEY_LENGTH = 32;

const B64 = '(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?';
const VERIFIER_RE = new RegExp(`^SCRAM-SHA-256\\$([1-9][0-9]{0,9}):(${B64})\\$(${B64}):(${B64})$`);
const B64_RE = new RegExp(`^${B64}$`);

// ---------------------------------------------------------------------------------------------
// Verifiers

/**
 * Parses `SCRAM-SHA-256$<iterations>:<b64 salt>$<b64 StoredKey>:<b64 ServerKey>`, the form of
 * pg_authid.rolpassword. Strict: canonical base64, a non-empty salt, 32-byte keys, and an
 * iteration count in 1..2^31-1. Returns null for anything else.
 */
export function parseScramVerifier(s: string): ScramVerifier | null {
  const m = VERIFIER_RE.exec(s);
  if (m === null) return null;
  const iterations = Number(m[1]);
  const salt = Buffer.from(m[2]!, 'base64');
  const storedKey = Buffer.from(m[3]!, 'base64');
  const serverKey = Buffer.from(m[4]!, 'base64');
  if (iterations > 0x7fffffff || salt.length === 0) return null;
  if (storedKey.length !== KEY_LENGTH || serverKey.length !== KEY_LENGTH) return null;
  return { iterations, salt, storedKey, serverKey };
}

/** Formats a verifier the way PostgreSQL stores it. */
export function formatScramVerifier(v: ScramVerifier): string {
  return `SCRAM-SHA-256$${v.iterations}:${v.salt.toString('base64')}$${v.storedKey.toString('base64')}:${v.serverKey.toString('base64')}`;
}

/**
 * Derives StoredKey and ServerKey (RFC 5802 §3):
 * SaltedPassword = PBKDF2-HMAC-SHA-256(SASLprep(password), salt, i), StoredKey = H(HMAC(SP, "Client Key")),
 * ServerKey = HMAC(SP, "Server Key"). Synchronous, for `hash-password` and tests: a session uses
 * deriveScramVerifierAsync, so no other client waits on the event loop meanwhile.
 */
export function deriveScramVerifier(
  password: string | Buffer,
  salt: Buffer,
  iterations: number,
): ScramVerifier {
  const salted = pbkdf2Sync(saslPrep(password), salt, iterations, KEY_LENGTH, 'sha256');
  const clientKey = hmac(salted, 'Client Key');
  return { iterations, salt, storedKey: sha256(clientKey), serverKey: hmac(salted, 'Server Key') };
}

/** deriveScramVerifier off the event loop (see pbkdf2.ts); `derive` is for tests. */
export async function deriveScramVerifierAsync(
  password: string | Buffer,
  salt: Buffer,
  iterations: number,
  derive: Pbkdf2 = pbkdf2Sha256,
): Promise<ScramVerifier> {
  const salted = await derive(saslPrep(password), salt, iterations);
  const clientKey = hmac(salted, 'Client Key');
  return { iterations, salt, storedKey: sha256(clientKey), serverKey: hmac(salted, 'Server Key') };
}

/** Creates a verifier string for a password (PostgreSQL defaults: 4096 iterations, 16-byte salt). */
export function createScramVerifier(
  password: string,
  opts: { iterations?: number; salt?: Buffer } = {},
): string {
  const salt = opts.salt ?? randomBytes(SCRAM_DEFAULT_SALT_LENGTH);
  return formatScramVerifier(
    deriveScramVerifier(password, salt, opts.iterations ?? SCRAM_DEFAULT_ITERATIONS),
  );
}

/**
 * Checks a cleartext password against a verifier (the `password` method with a SCRAM secret):
 * recompute with the verifier's salt and iterations and compare both keys in constant time.
 */
export function verifyScramPassword(password: string | Buffer, verifier: ScramVerifier): boolean {
  return sameKeys(deriveScramVerifier(password, verifier.salt, verifier.iterations), verifier);
}

/** verifyScramPassword off the event loop (see pbkdf2.ts); `derive` is for tests. */
export async function verifyScramPasswordAsync(
  password: string | Buffer,
  verifier: ScramVerifier,
  derive: Pbkdf2 = pbkdf2Sha256,
): Promise<boolean> {
  return sameKeys(
    await deriveScramVerifierAsync(password, verifier.salt, verifier.iterations, derive),
    verifier,
  );
}

function sameKeys(candidate: ScramVerifier, verifier: ScramVerifier): boolean {
  const storedOk = timingSafeEqual(candidate.storedKey, verifier.storedKey);
  const serverOk = timingSafeEqual(candidate.serverKey, verifier.serverKey);
  return storedOk && serverOk;
}

// ---------------------------------------------------------------------------------------------
// Server exchange

export interface ScramServerOptions {
  /**
   * Salt for the mock exchange run when the verifier is null (unknown user, or a secret that cannot
   * do SCRAM). Must be deterministic per user, e.g. HMAC(mockSecret, user), so that repeated
   * attempts see the same salt, as they would for a real user: otherwise the salt reveals the lie.
   */
  mockSalt: Buffer;
  /** Iterations announced by the mock exchange: those of the real users, or the exchange stands out. */
  mockIterations?: number;
  /** Source of the server nonce's random bytes (18 by default, as PostgreSQL). */
  nonceBytes?: () => Buffer;
  /**
   * Supplies the whole server nonce (printable, no comma) instead of base64(nonceBytes()).
   * For published test vectors such as RFC 7677 §3, whose nonce is not base64.
   */
  serverNonce?: () => string;
}

/**
 * A verifier still to be derived (a plain-text secret): its salt and iterations are known at once, so
 * server-first-message goes out without it; the keys are derived only once a proof arrives.
 */
export interface PendingScramVerifier {
  iterations: number;
  salt: Buffer;
  derive: () => Promise<ScramVerifier>;
}

export type ScramFinalResult = { ok: true; serverFinal: Buffer } | { ok: false };

type State =
  | { step: 'initial' }
  | { step: 'first-sent'; gs2Header: string; clientFirstBare: string; serverFirst: string; nonce: string }
  | { step: 'done' };

/**
 * One server-side SCRAM-SHA-256 exchange without channel binding (we advertise no -PLUS mechanism).
 *
 * A null verifier runs a mock exchange: same messages, same work, failure at the end. PostgreSQL
 * does the same so that a client cannot learn whether a user exists (auth-scram.c, "doomed").
 *
 * Malformed client messages throw ProxyError('PROTOCOL_VIOLATION'); a wrong proof returns { ok: false }.
 */
export class ScramServer {
  private verifier: ScramVerifier | PendingScramVerifier;
  private readonly doomed: boolean;
  private readonly serverNonce: () => string;
  private state: State = { step: 'initial' };

  constructor(verifier: ScramVerifier | PendingScramVerifier | null, opts: ScramServerOptions) {
    const nonceBytes = opts.nonceBytes ?? (() => randomBytes(18));
    this.serverNonce = opts.serverNonce ?? (() => nonceBytes().toString('base64'));
    if (verifier === null) {
      // Random keys: the proof check still runs (same cost) but cannot succeed.
      this.verifier = {
        iterations: opts.mockIterations ?? SCRAM_DEFAULT_ITERATIONS,
        salt: opts.mockSalt,
        storedKey: randomBytes(KEY_LENGTH),
        serverKey: randomBytes(KEY_LENGTH),
      };
      this.doomed = true;
    } else {
      this.verifier = verifier;
      this.doomed = false;
    }
  }

  /** Derives a pending verifier's keys (at most once); call before clientFinal. */
  async ready(): Promise<void> {
    if ('derive' in this.verifier) this.verifier = await this.verifier.derive();
  }

  /**
   * Reads client-first-message (RFC 5802 §7: gs2-header client-first-message-bare) and returns
   * server-first-message `r=<client nonce><server nonce>,s=<salt>,i=<iterations>`.
   */
  clientFirst(data: Buffer): Buffer {
    if (this.state.step !== 'initial') malformed('unexpected SCRAM client-first-message');
    const text = decodeText(data);
    const parts = text.split(',');
    const cbindFlag = parts[0];
    // gs2-cbind-flag: "n" (client has no channel binding), "y" (it has, but thinks we do not),
    // "p=..." (it wants channel binding, which we never offered).
    if (cbindFlag === undefined || cbindFlag.startsWith('p=')) {
      malformed('channel binding was not offered but the client requested it');
    }
    if (cbindFlag !== 'n' && cbindFlag !== 'y') malformed('invalid SCRAM gs2 channel-binding flag');
    if (parts[1] !== '') malformed('SCRAM authorization identity (a=) is not supported');
    const gs2Header = `${cbindFlag},,`;
    const clientFirstBare = text.slice(gs2Header.length);
    const attrs = parts.slice(2);
    if (attrs[0]?.startsWith('m=')) malformed('SCRAM mandatory extensions are not supported');
    // The user name is ignored, as in PostgreSQL: the StartupMessage's `user` is authoritative
    // (libpq sends an empty n=, node-postgres n=*).
    if (attrs[0] === undefined || !attrs[0].startsWith('n=')) malformed('SCRAM user name (n=) expected');
    const clientNonce = attrs[1]?.startsWith('r=') ? attrs[1].slice(2) : undefined;
    if (clientNonce === undefined || !isPrintable(clientNonce)) malformed('SCRAM client nonce (r=) expected');
    checkExtensions(attrs.slice(2));

    const serverNonce = this.serverNonce();
    if (!isPrintable(serverNonce))
      throw new ProxyError('INTERNAL', { message: 'invalid SCRAM server nonce' });
    const nonce = clientNonce + serverNonce;
    const serverFirst = `r=${nonce},s=${this.verifier.salt.toString('base64')},i=${this.verifier.iterations}`;
    this.state = { step: 'first-sent', gs2Header, clientFirstBare, serverFirst, nonce };
    return Buffer.from(serverFirst, 'utf8');
  }

  /**
   * Reads client-final-message `c=<b64 gs2 header>,r=<nonce>[,ext],p=<b64 proof>`, verifies the proof
   * (H(proof XOR HMAC(StoredKey, AuthMessage)) == StoredKey, constant time) and on success returns
   * server-final-message `v=<b64 ServerSignature>`.
   */
  clientFinal(data: Buffer): ScramFinalResult {
    const state = this.state;
    if (state.step !== 'first-sent') malformed('unexpected SCRAM client-final-message');
    this.state = { step: 'done' };
    const text = decodeText(data);
    const proofAt = text.lastIndexOf(',p=');
    if (proofAt === -1) malformed('SCRAM proof (p=) expected');
    const withoutProof = text.slice(0, proofAt);
    const attrs = withoutProof.split(',');

    const binding = attrs[0]?.startsWith('c=') ? attrs[0].slice(2) : undefined;
    if (binding === undefined || !B64_RE.test(binding)) malformed('SCRAM channel binding (c=) expected');
    // Without channel binding, c= carries exactly the gs2 header the client sent first.
    if (Buffer.from(binding, 'base64').toString('latin1') !== state.gs2Header) {
      malformed('SCRAM channel binding does not match the gs2 header');
    }
    const nonce = attrs[1]?.startsWith('r=') ? attrs[1].slice(2) : undefined;
    if (nonce !== state.nonce) malformed('SCRAM nonce mismatch');
    checkExtensions(attrs.slice(2));
    const proofB64 = text.slice(proofAt + 3);
    if (!B64_RE.test(proofB64)) malformed('invalid SCRAM proof encoding');
    const proof = Buffer.from(proofB64, 'base64');
    if (proof.length !== KEY_LENGTH) malformed('invalid SCRAM proof length');

    const verifier = this.verifier;
    if ('derive' in verifier) throw new ProxyError('INTERNAL', { message: 'SCRAM keys not derived yet' });
    const authMessage = `${state.clientFirstBare},${state.serverFirst},${withoutProof}`;
    const clientSignature = hmac(verifier.storedKey, authMessage);
    const clientKey = Buffer.alloc(KEY_LENGTH);
    for (let i = 0; i < KEY_LENGTH; i++) clientKey[i] = proof[i]! ^ clientSignature[i]!;
    const matches = timingSafeEqual(sha256(clientKey), verifier.storedKey);
    if (!matches || this.doomed) return { ok: false };
    const serverSignature = hmac(verifier.serverKey, authMessage);
    return { ok: true, serverFinal: Buffer.from(`v=${serverSignature.toString('base64')}`, 'utf8') };
  }
}

function hmac(key: Buffer, data: string): Buffer {
  return createHmac('sha256', key).update(data, 'utf8').digest();
}

function sha256(data: Buffer): Buffer {
  return createHash('sha256').update(data).digest();
}

/** SCRAM messages are UTF-8 text; reject bytes that are not, and NUL which libpq never sends. */
function decodeText(data: Buffer): string {
  if (data.includes(0)) malformed('NUL in SCRAM message');
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(data);
  } catch {
    return malformed('SCRAM message is not valid UTF-8');
  }
}

/** RFC 5802 `printable`: %x21-2B / %x2D-7E (no comma). */
function isPrintable(s: string): boolean {
  return s.length > 0 && /^[\x21-\x2b\x2d-\x7e]+$/.test(s);
}

/** Optional extensions (`x=...`) are allowed and ignored, like PostgreSQL's read_any_attr. */
function checkExtensions(attrs: string[]): void {
  for (const attr of attrs) if (!/^[A-Za-z]=/.test(attr)) malformed('malformed SCRAM attribute');
}

function malformed(message: string): never {
  throw new ProxyError('PROTOCOL_VIOLATION', { message: `malformed SCRAM message: ${message}` });
}
