/**
 * Slows down password guessing, in the manner of PostgreSQL's auth_delay module: a failed login is
 * answered only after a delay. Here the delay grows with the recent failures for the same client
 * address and user (doubling from `baseMs`, capped at `maxMs`), and is forgotten after `windowMs`
 * without failures.
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

  constructor(opts: AuthDelayOptions = {}) {
    this.baseMs = opts.baseMs ?? 250;
    this.maxMs = opts.maxMs ?? 5000;
    this.windowMs = opts.windowMs ?? 60_000;
    this.maxKeys = opts.maxKeys ?? 10_000;
  }

  /** Records a failed login and returns how long to wait before answering it. */
  failure(address: string, user: string, now = Date.now()): number {
    const key = `${address}\u0000${user}`;
    const prev = this.recent.get(key);
    const failures = prev && now - prev.last <= this.windowMs ? prev.failures + 1 : 1;
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

  get size(): number {
    return this.recent.size;
  }
}
