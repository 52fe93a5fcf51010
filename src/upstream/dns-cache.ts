import dns from 'node:dns';
import type { LookupFunction } from 'node:net';

/** One name's addresses as the system resolver (getaddrinfo) gives them, in its order. */
export type Resolve = (hostname: string, family: number, hints: number) => Promise<dns.LookupAddress[]>;

export type DnsEvent =
  /** A lookup succeeded. */
  | { type: 'resolved'; hostname: string; addresses: number; ms: number }
  /** A lookup failed; `stale` when an earlier answer is kept for use. */
  | { type: 'failed'; hostname: string; code: string; stale: boolean }
  /** A connection was given an answer within its TTL. */
  | { type: 'cached'; hostname: string }
  /** A connection was given an expired answer, because looking the name up again failed. */
  | { type: 'stale'; hostname: string };

export interface DnsCacheOptions {
  /** How long an answer is used without a new lookup. */
  ttlMs: number;
  resolve?: Resolve;
  now?: () => number;
  onEvent?: (ev: DnsEvent) => void;
}

interface Entry {
  addresses: dns.LookupAddress[];
  /** When the answer was looked up. */
  at: number;
  /** From then on, a use starts a lookup in the background. */
  refreshAt: number;
  /** Uses so far: each use starts at the next address (round robin). */
  uses: number;
  /** The last lookup after this answer failed: until one succeeds, the answer is used past its TTL. */
  failing: boolean;
}

/** The share of the TTL after which a use refreshes the answer in the background. */
const REFRESH_AHEAD = 0.75;
/** After a failed lookup, uses start the next one after this share of the TTL, and at least... */
const RETRY_SHARE = 0.05;
/** ...this long. */
const MIN_RETRY_MS = 1000;

const systemResolve: Resolve = (hostname, family, hints) =>
  dns.promises.lookup(hostname, { family, hints, all: true });

/**
 * The addresses of the endpoint hostnames, kept for `ttlMs` like PgBouncer's `dns_max_ttl`, so a
 * new upstream connection does not wait on the resolver. Every lookup goes through getaddrinfo, as
 * Node's own does (`/etc/hosts`, search domains), which reports no TTL: `ttlMs` is the limit.
 *
 * - Several addresses are used in turn (round robin, as PgBouncer does): each use starts the list
 *   one address further, and Node tries the rest in that order if the first fails.
 * - A use in the last quarter of the TTL refreshes the answer in the background, so a name in
 *   steady use is never looked up on a connection's path.
 * - Lookups of one name at the same time share one resolver call.
 * - When a lookup fails and an earlier answer exists, that answer is used (a resolver outage does
 *   not stop new connections to an endpoint whose address has not changed) and the failure is
 *   reported. Until a lookup succeeds, connections get that answer at once, past its TTL, and a use
 *   starts a new lookup in the background at most every 5 % of the TTL (at least 1 s), so only the
 *   first connection after the TTL waits on a failing resolver. Failures are not cached.
 * - `forget` drops a name's answer: the dialer calls it when a connection to it fails, so the next
 *   connection asks the resolver again.
 *
 * `lookup` has the shape of `net.connect`'s `lookup` option, `all: true` included (what Node passes
 * with `autoSelectFamily`).
 */
export class DnsCache {
  private readonly entries = new Map<string, Entry>();
  private readonly pending = new Map<string, Promise<Entry>>();
  private readonly ttlMs: number;
  private readonly retryMs: number;
  private readonly resolve: Resolve;
  private readonly now: () => number;
  private readonly onEvent: (ev: DnsEvent) => void;

  constructor(opts: DnsCacheOptions) {
    this.ttlMs = opts.ttlMs;
    this.retryMs = Math.max(MIN_RETRY_MS, opts.ttlMs * RETRY_SHARE);
    this.resolve = opts.resolve ?? systemResolve;
    this.now = opts.now ?? Date.now;
    this.onEvent = opts.onEvent ?? (() => {});
  }

  readonly lookup: LookupFunction = (hostname, options, callback) => {
    const family = typeof options.family === 'number' ? options.family : 0;
    const hints = options.hints ?? 0;
    const key = `${family}/${hostname}`;
    const answer = (e: Entry): void => {
      const n = e.addresses.length;
      const start = e.uses++ % n;
      if (options.all) {
        callback(null, [...e.addresses.slice(start), ...e.addresses.slice(0, start)]);
      } else {
        const first = e.addresses[start] as dns.LookupAddress;
        callback(null, first.address, first.family);
      }
    };
    const entry = this.entries.get(key);
    const now = this.now();
    const fresh = entry !== undefined && now - entry.at < this.ttlMs;
    if (entry && (fresh || entry.failing)) {
      this.onEvent({ type: fresh ? 'cached' : 'stale', hostname });
      if (now >= entry.refreshAt) this.refreshInBackground(key, hostname, family, hints, entry);
      process.nextTick(answer, entry);
      return;
    }
    this.lookUp(key, hostname, family, hints).then(answer, (err: NodeJS.ErrnoException) => {
      // An answer dropped since (a connection to it failed) is not used.
      const previous = this.entries.get(key);
      if (previous) {
        this.onEvent({ type: 'stale', hostname });
        answer(previous);
      } else {
        callback(err, '', 0);
      }
    });
  };

  /** Drops every answer for `hostname`; the next connection looks it up again. */
  forget(hostname: string): void {
    for (const key of this.entries.keys()) {
      if (key.slice(key.indexOf('/') + 1) === hostname) this.entries.delete(key);
    }
  }

  private refreshInBackground(
    key: string,
    hostname: string,
    family: number,
    hints: number,
    entry: Entry,
  ): void {
    // Until this refresh ends, uses do not start another; a failure is handled in lookUp.
    entry.refreshAt = Number.POSITIVE_INFINITY;
    this.lookUp(key, hostname, family, hints).catch(() => {});
  }

  /**
   * One resolver call per key at a time. A success replaces the key's answer; a failure marks the
   * answer there is (if any) as failing, and is reported once, however many uses wait on it.
   */
  private lookUp(key: string, hostname: string, family: number, hints: number): Promise<Entry> {
    const inFlight = this.pending.get(key);
    if (inFlight) return inFlight;
    const started = this.now();
    const p = this.resolve(hostname, family, hints)
      .then((addresses) => {
        if (addresses.length === 0)
          throw Object.assign(new Error(`no address for ${hostname}`), { code: 'ENOTFOUND' });
        const at = this.now();
        const fresh: Entry = {
          addresses,
          at,
          refreshAt: at + this.ttlMs * REFRESH_AHEAD,
          uses: 0,
          failing: false,
        };
        this.entries.set(key, fresh);
        this.onEvent({ type: 'resolved', hostname, addresses: addresses.length, ms: at - started });
        return fresh;
      })
      .catch((err: NodeJS.ErrnoException) => {
        const previous = this.entries.get(key);
        if (previous) {
          previous.failing = true;
          previous.refreshAt = this.now() + this.retryMs;
        }
        this.onEvent({ type: 'failed', hostname, code: errorCode(err), stale: previous !== undefined });
        throw err;
      })
      .finally(() => this.pending.delete(key));
    this.pending.set(key, p);
    return p;
  }
}

function errorCode(err: NodeJS.ErrnoException): string {
  return err.code ?? err.message;
}
