import type { Logger } from '../log.js';
import type { UpstreamConnection } from './connector.js';

export interface PoolOptions {
  /** Idle connections kept per key at most. */
  maxIdlePerKey: number;
  /**
   * Idle connections kept in all at most. Keys come from client input (role and startup parameters,
   * application_name among them), so a per-key cap alone bounds nothing.
   */
  maxIdleTotal: number;
  /** An idle connection unused this long is closed (DSQL counts it against the cluster's limit). */
  idleTimeoutMs: number;
  /** Connections are not handed out when they would pass this age soon (--max-upstream-age). */
  maxAgeMs: number;
  log: Logger;
  onChange?: (idle: number) => void;
}

interface Idle {
  key: string;
  conn: UpstreamConnection;
  since: number;
  drop: () => void;
}

/** Connections this close to max age are not worth handing out: the session would move at once. */
const MIN_REMAINING_LIFE_MS = 30_000;

/**
 * Session pooling (--pool-mode session): logged-in upstream connections that clients left cleanly,
 * kept for the next client with the same key (DSQL role + startup parameters). Most recently used
 * first, so the rest age out. A connection that closes or fails while idle leaves the pool at once.
 *
 * Bounded in total, not only per key: when it is full, the connection released longest ago (of any
 * key) is closed to make room, and a key without idle connections is deleted, so a client that varies
 * application_name cannot grow the key map or hold more than maxIdleTotal DSQL connections.
 *
 * This matters beyond speed: DSQL admits 100 new connections per second per cluster, so clients that
 * connect per request need their connections reused.
 */
export class UpstreamPool {
  private readonly idle = new Map<string, Idle[]>();
  /** Every idle entry, in release order (a Set keeps insertion order): the first is the oldest. */
  private readonly byAge = new Set<Idle>();
  private count = 0;
  private readonly sweeper: NodeJS.Timeout;

  constructor(private readonly opts: PoolOptions) {
    this.sweeper = setInterval(() => this.sweep(), Math.min(10_000, Math.max(100, opts.idleTimeoutMs / 4)));
    this.sweeper.unref();
  }

  get size(): number {
    return this.count;
  }

  /** Keys with idle connections (a key whose last connection left is deleted). */
  get keys(): number {
    return this.idle.size;
  }

  /** The most recently released usable connection for the key, if any. */
  take(key: string, now = Date.now()): UpstreamConnection | undefined {
    const list = this.idle.get(key);
    while (list && list.length > 0) {
      const entry = list.at(-1) as Idle;
      this.remove(entry);
      if (this.usable(entry.conn, now)) return entry.conn;
      entry.conn.socket.destroy();
    }
    return undefined;
  }

  /**
   * Keeps a connection for later; false when it is not wanted (its key is full, it is old), and the
   * caller closes it. When the pool as a whole is full, the oldest idle connection is closed instead.
   */
  put(key: string, conn: UpstreamConnection, now = Date.now()): boolean {
    const list = this.idle.get(key) ?? [];
    if (list.length >= this.opts.maxIdlePerKey || !this.usable(conn, now)) return false;
    while (this.count >= this.opts.maxIdleTotal) {
      const oldest = this.byAge.values().next().value as Idle | undefined;
      if (oldest === undefined) return false;
      this.remove(oldest);
      oldest.conn.socket.destroy();
    }
    const entry: Idle = { key, conn, since: now, drop: () => this.remove(entry) };
    // Errors while idle are swallowed by the listener dial() left; the 'close' that follows drops it.
    conn.socket.once('close', entry.drop);
    list.push(entry);
    this.idle.set(key, list);
    this.byAge.add(entry);
    this.count++;
    this.opts.onChange?.(this.count);
    return true;
  }

  close(): void {
    clearInterval(this.sweeper);
    for (const entry of [...this.byAge]) {
      this.remove(entry);
      entry.conn.socket.destroy();
    }
  }

  private usable(conn: UpstreamConnection, now: number): boolean {
    const remaining = conn.connectedAt + this.opts.maxAgeMs - now;
    return !conn.socket.destroyed && remaining > Math.min(MIN_REMAINING_LIFE_MS, this.opts.maxAgeMs / 4);
  }

  /** Takes an entry out of the pool (its key's list, the age order, the count); a no-op the second time. */
  private remove(entry: Idle): void {
    if (!this.byAge.delete(entry)) return;
    entry.conn.socket.off('close', entry.drop);
    const list = this.idle.get(entry.key);
    if (list) {
      // take() removes from the end, so search from there.
      const i = list.lastIndexOf(entry);
      if (i >= 0) list.splice(i, 1);
      if (list.length === 0) this.idle.delete(entry.key);
    }
    this.count--;
    this.opts.onChange?.(this.count);
  }

  private sweep(now = Date.now()): void {
    for (const entry of [...this.byAge]) {
      if (now - entry.since > this.opts.idleTimeoutMs || !this.usable(entry.conn, now)) {
        this.remove(entry);
        entry.conn.socket.destroy();
      }
    }
  }
}

/** The pool key: the DSQL role and the startup parameters, which a reset restores. */
export function poolKey(role: string, params: ReadonlyMap<string, string>): string {
  const sorted = [...params].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return JSON.stringify([role, sorted]);
}
