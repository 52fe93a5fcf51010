import { createHash, createHmac } from 'node:crypto';
import { md5Secret } from './md5.js';
import { type Pbkdf2, pbkdf2Sha256 } from './pbkdf2.js';
import {
  deriveScramVerifierAsync,
  formatScramVerifier,
  SCRAM_DEFAULT_ITERATIONS,
  SCRAM_DEFAULT_SALT_LENGTH,
  verifyScramPasswordAsync,
} from './scram.js';
import type { AuthSecret, AuthUsers, ScramVerifier } from './types.js';

export interface AuthContextOptions {
  /** PBKDF2 implementation (tests count derivations with it). */
  derive?: Pbkdf2;
}

/**
 * What every login against one version of the auth file shares: how an unknown user is answered,
 * and the SCRAM keys already derived. A new context comes with every new users map (SIGHUP), so
 * nothing derived from an old file outlives it.
 *
 * An unknown user must look like a real one (PostgreSQL does the same with password_encryption and
 * a mock salt from a server secret):
 * - it gets the exchange of the file's usual secret kind: like a SCRAM user when at least half the
 *   users have SCRAM verifiers (PostgreSQL's default password_encryption), else like an md5 user;
 * - its salt is derived from the file's contents, so it stays the same across restarts and reloads
 *   as long as the file does, as a real user's does;
 * - it announces the iteration count most of the file's verifiers use (4096 when none).
 */
export class AuthContext {
  readonly users: AuthUsers;
  /** The exchange an unknown user gets: a SCRAM user's or an md5 user's. */
  readonly mockKind: 'scram' | 'md5';
  readonly mockIterations: number;
  /** Number of PBKDF2 derivations run, for tests and the docs' claims. */
  derivations = 0;
  private readonly mockKey: Buffer;
  private readonly derive: Pbkdf2;
  /** Plain-text secrets' SCRAM verifiers, derived on the first proof and kept. */
  private readonly plainVerifiers = new Map<string, Promise<ScramVerifier>>();
  constructor(users: AuthUsers, opts: AuthContextOptions = {}) {
    this.users = users;
    const counting = opts.derive ?? pbkdf2Sha256;
    this.derive = (password, salt, iterations) => {
      this.derivations++;
      return counting(password, salt, iterations);
    };
    const book = createHash('sha256').update('dsql-proxy mock salt key\0');
    let scram = 0;
    const iterations = new Map<number, number>();
    for (const user of [...users.keys()].sort()) {
      const secret = users.get(user) as AuthSecret;
      book.update(`${user}\0${secretText(secret)}\0`);
      if (secret.kind === 'scram') {
        scram++;
        const n = secret.verifier.iterations;
        iterations.set(n, (iterations.get(n) ?? 0) + 1);
      }
    }
    this.mockKey = book.digest();
    this.mockKind = scram * 2 >= users.size ? 'scram' : 'md5';
    let best = SCRAM_DEFAULT_ITERATIONS;
    let bestCount = 0;
    for (const [n, count] of iterations) {
      if (count > bestCount) [best, bestCount] = [n, count];
    }
    this.mockIterations = best;
  }

  /** The salt of a user without a SCRAM verifier: the same at every attempt, as a real one's. */
  mockSalt(user: string): Buffer {
    return createHmac('sha256', this.mockKey)
      .update(`scram-salt:${user}`)
      .digest()
      .subarray(0, SCRAM_DEFAULT_SALT_LENGTH);
  }

  /** The SCRAM verifier of a plain-text secret, derived once per user and file (concurrent logins share it). */
  plainVerifier(user: string, password: string): Promise<ScramVerifier> {
    let v = this.plainVerifiers.get(user);
    if (v === undefined) {
      v = deriveScramVerifierAsync(password, this.mockSalt(user), this.mockIterations, this.derive);
      v.catch(() => this.plainVerifiers.delete(user));
      this.plainVerifiers.set(user, v);
    }
    return v;
  }

  /**
   * Checks a cleartext password against a SCRAM secret: one derivation at the verifier's count per
   * attempt, as in PostgreSQL. Nothing is remembered: a fast hash of a password that matched would be
   * cheaper to attack from a memory dump than the verifier itself.
   */
  checkScramPassword(secret: AuthSecret & { kind: 'scram' }, password: Buffer): Promise<boolean> {
    return verifyScramPasswordAsync(password, secret.verifier, this.derive);
  }

  /** The work a cleartext check for an unknown user costs: that of the usual secret kind. */
  async mockPasswordCheck(user: string, password: Buffer): Promise<void> {
    if (this.mockKind === 'scram') await this.derive(password, this.mockSalt(user), this.mockIterations);
    else md5Secret(password.toString('utf8'), user);
  }
}

function secretText(secret: AuthSecret): string {
  switch (secret.kind) {
    case 'scram':
      return formatScramVerifier(secret.verifier);
    case 'md5':
      return secret.hash;
    case 'plain':
      return secret.password;
  }
}

const contexts = new WeakMap<AuthUsers, AuthContext>();

/** The context of a users map, made on first use: a reloaded file (a new map) starts afresh. */
export function authContext(users: AuthUsers): AuthContext {
  let c = contexts.get(users);
  if (c === undefined) {
    c = new AuthContext(users);
    contexts.set(users, c);
  }
  return c;
}
