import { createHash } from 'node:crypto';
import { type Clock, systemClock } from '../core/clock.js';

/** The default schedule: 250 ms after a first failure, doubling up to 5 s, forgotten after a minute. */
export const AUTH_DELAY_DEFAULTS = { baseMs: 250, maxMs: 5000, windowMs: 60_000, maxKeys: 10_000 } as const;

/**
 * Slows down password guessing, in the manner of PostgreSQL's auth_delay module: a failed login is
 * answered only after a delay. Here the delay grows with the recent failures for the same client
 * address and user (doubling from `baseMs`, capped at `maxMs`), and is forgotten after `windowMs`
 * without failures.
 *
 * The table is bounded: keys are hashes (a user name can be kilobytes long), entries older than the
 * window are dropped at each failure, and at most `maxKeys` pairs are kept, the least recent going first.
 *
 * Only failures wait. A correct login is answered at once, whatever anyone else did: in a sidecar
 * every client shares 127.0.0.1, so a lockout keyed on the address would let one misconfigured
 * client lock out all the others.
 */
export interface AuthDelayOptions {
  baseMs?: number;
  maxMs?: number;
  windowMs?: number;
  /** Bound on remembered (address, user) pairs; the oldest are forgotten first. */
  maxKeys?: number;
  clock?: Clock;
}

interface Record {
  failures: number;
  last: number;
}

export class AuthDelay {
  private readonly recent = new Map<string, Record>();
  private readonly baseMs: number;
  private readonly maxMs: number;
  private readonly windowMs: number;
  private readonly maxKeys: number;
  private readonly clock: Clock;

  constructor(opts: AuthDelayOptions = {}) {
    this.baseMs = opts.baseMs ?? AUTH_DELAY_DEFAULTS.baseMs;
    this.maxMs = opts.maxMs ?? AUTH_DELAY_DEFAULTS.maxMs;
    this.windowMs = opts.windowMs ?? AUTH_DELAY_DEFAULTS.windowMs;
    this.maxKeys = opts.maxKeys ?? AUTH_DELAY_DEFAULTS.maxKeys;
    this.clock = opts.clock ?? systemClock;
  }

  /** Records a failed login and returns how long to wait before answering it. */
  failure(address: string, user: string): number {
    const now = this.clock.now();
    this.expire(now);
    // A fixed-size key whatever the client sent as its user name.
    const key = createHash('sha256').update(`${address}\u0000${user}`, 'utf8').digest('base64');
    const prev = this.recent.get(key);
    const failures = prev ? prev.failures + 1 : 1;
    // Re-insert so the Map's order is least recently failed first, for eviction.
    this.recent.delete(key);
    this.recent.set(key, { failures, last: now });
    if (this.recent.size > this.maxKeys) {
      const oldest = this.recent.keys().next().value;
      if (oldest !== undefined) this.recent.delete(oldest);
    }
    if (this.baseMs === 0) return 0;
    return Math.min(this.maxMs, this.baseMs * 2 ** Math.min(failures - 1, 30));
  }

  /** Drops the pairs whose last failure is older than the window (the Map's front: least recent first). */
  private expire(now: number): void {
    for (const [key, record] of this.recent) {
      if (now - record.last <= this.windowMs) break;
      this.recent.delete(key);
    }
  }

  /** Pairs remembered now (expired ones dropped first). */
  get size(): number {
    this.expire(this.clock.now());
    return this.recent.size;
  }
}
