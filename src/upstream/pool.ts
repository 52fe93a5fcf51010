import type { Logger } from '../log.js';
import type { UpstreamConnection } from './connector.js';

export interface PoolOptions {
  /** Idle connections kept per key at most. */
  maxIdlePerKey: number;
  /** An idle connection unused this long is closed (DSQL counts it against the cluster's limit). */
  idleTimeoutMs: number;
  /** Connections are not handed out when they would pass this age soon (--max-upstream-age). */
  maxAgeMs: number;
  log: Logger;
  onChange?: (idle: number) => void;
}

interface Idle {
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
 * This matters beyond speed: DSQL admits 100 new connections per second per cluster, so clients that
 * connect per request need their connections reused.
 */
export class UpstreamPool {
  private readonly idle = new Map<string, Idle[]>();
  private count = 0;
  private readonly sweeper: NodeJS.Timeout;

  constructor(private readonly opts: PoolOptions) {
    this.sweeper = setInterval(() => this.sweep(), Math.min(10_000, Math.max(100, opts.idleTimeoutMs / 4)));
    this.sweeper.unref();
  }

  get size(): number {
    return this.count;
  }

  /** The most recently released usable connection for the key, if any. */
  take(key: string, now = Date.now()): UpstreamConnection | undefined {
    const list = this.idle.get(key);
    while (list && list.length > 0) {
      const entry = list.pop()!;
      this.forget(entry);
      if (this.usable(entry.conn, now)) return entry.conn;
      entry.conn.socket.destroy();
    }
    return undefined;
  }

  /** Keeps a connection for later; false when it is not wanted (full, old), and the caller closes it. */
  put(key: string, conn: UpstreamConnection, now = Date.now()): boolean {
    const list = this.idle.get(key) ?? [];
    if (list.length >= this.opts.maxIdlePerKey || !this.usable(conn, now)) return false;
    const entry: Idle = {
      conn,
      since: now,
      drop: () => {
        const i = list.indexOf(entry);
        if (i >= 0) {
          list.splice(i, 1);
          this.forget(entry);
        }
      },
    };
    // Errors while idle are swallowed by the listener dial() left; the 'close' that follows drops it.
    conn.socket.once('close', entry.drop);
    list.push(entry);
    this.idle.set(key, list);
    this.count++;
    this.opts.onChange?.(this.count);
    return true;
  }

  close(): void {
    clearInterval(this.sweeper);
    for (const list of this.idle.values()) {
      for (const entry of list.splice(0)) {
        this.forget(entry);
        entry.conn.socket.destroy();
      }
    }
  }

  private usable(conn: UpstreamConnection, now: number): boolean {
    const remaining = conn.connectedAt + this.opts.maxAgeMs - now;
    return !conn.socket.destroyed && remaining > Math.min(MIN_REMAINING_LIFE_MS, this.opts.maxAgeMs / 4);
  }

  private forget(entry: Idle): void {
    entry.conn.socket.off('close', entry.drop);
    this.count--;
    this.opts.onChange?.(this.count);
  }

  private sweep(now = Date.now()): void {
    for (const list of this.idle.values()) {
      for (const entry of [...list]) {
        if (now - entry.since > this.opts.idleTimeoutMs || !this.usable(entry.conn, now)) {
          entry.drop();
          entry.conn.socket.destroy();
        }
      }
    }
  }
}

/** The pool key: the DSQL role and the startup parameters, which a reset restores. */
export function poolKey(role: string, params: ReadonlyMap<string, string>): string {
  const sorted = [...params].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return JSON.stringify([role, sorted]);
}
