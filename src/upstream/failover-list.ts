/**
 * The endpoints of a (multi-Region) cluster in order of preference, each with its own target (SNI,
 * dial address), token cache (tokens bind host and region), rate limiter and health state.
 *
 * An endpoint that fails (unreachable, timeout, TLS, closed, or a 53xxx refusal) is *down* for a
 * backoff: 1 s doubling per consecutive failure up to 30 s, with equal jitter (half fixed, half
 * random) so a fleet of proxies does not come back in step and the backoff never shrinks to zero.
 * pick() prefers, in configured order, endpoints that are up; once a down endpoint's backoff is over,
 * exactly one connect at a time probes it (the others keep using the next endpoint), so a dead
 * Region costs at most one client's connect timeout per backoff. When nothing preferred is left, the
 * remaining endpoints are tried anyway in order: refusing a client without trying is never better.
 */

import { type Clock, systemClock } from '../core/clock.js';
import type { TokenCache } from '../token/token-cache.js';
import type { ConnectRateLimiter } from './rate-limiter.js';
import type { UpstreamTarget } from './target.js';

/** One endpoint of a cluster, as the connector reaches it (wiring/endpoint.ts builds it). */
export interface Endpoint {
  readonly target: UpstreamTarget;
  readonly tokens: TokenCache;
  /** Undefined when --connect-rate is 0. */
  readonly limiter: ConnectRateLimiter | undefined;
}

export interface EndpointStatus {
  hostname: string;
  region: string;
  up: boolean;
  /** While down: ms until the next attempt is allowed (0: due now). */
  retryInMs: number | undefined;
  consecutiveFailures: number;
  lastError: string | undefined;
  /** A token for at least one action is usable now. */
  hasUsableToken: boolean;
}

interface State {
  up: boolean;
  downUntil: number;
  failures: number;
  probing: boolean;
  lastError: string | undefined;
}

export interface FailoverListOptions {
  clock?: Clock;
  random?: () => number;
  backoff?: { initialMs?: number; maxMs?: number };
  /** Told about each change between up and down. */
  onStateChange?: (ep: Endpoint, up: boolean, detail: { error?: string; retryInMs?: number }) => void;
}

export class FailoverList {
  readonly endpoints: readonly Endpoint[];
  private readonly states = new Map<Endpoint, State>();
  private readonly clock: Clock;
  private readonly random: () => number;
  private readonly initialMs: number;
  private readonly maxMs: number;
  private readonly onStateChange: FailoverListOptions['onStateChange'];

  constructor(endpoints: Endpoint[], opts: FailoverListOptions = {}) {
    if (endpoints.length === 0) throw new RangeError('FailoverList needs at least one endpoint');
    this.endpoints = endpoints;
    this.clock = opts.clock ?? systemClock;
    this.random = opts.random ?? Math.random;
    this.initialMs = opts.backoff?.initialMs ?? 1_000;
    this.maxMs = Math.max(this.initialMs, opts.backoff?.maxMs ?? 30_000);
    this.onStateChange = opts.onStateChange;
    for (const ep of endpoints) {
      this.states.set(ep, { up: true, downUntil: 0, failures: 0, probing: false, lastError: undefined });
    }
  }

  /** The next endpoint to try, skipping `tried`; undefined when every endpoint has been tried. */
  pick(tried: ReadonlySet<Endpoint>): Endpoint | undefined {
    const now = this.clock.now();
    for (const ep of this.endpoints) {
      if (tried.has(ep)) continue;
      const s = this.state(ep);
      if (s.up) return ep;
      if (now >= s.downUntil && !s.probing) {
        s.probing = true;
        return ep;
      }
    }
    return this.endpoints.find((ep) => !tried.has(ep));
  }

  /** The endpoint answered (even with an error that is not its fault, such as 28000). */
  succeeded(ep: Endpoint): void {
    const s = this.state(ep);
    const wasDown = !s.up;
    s.up = true;
    s.failures = 0;
    s.probing = false;
    s.downUntil = 0;
    s.lastError = undefined;
    if (wasDown) this.onStateChange?.(ep, true, {});
  }

  /** The endpoint could not be reached or refused for capacity: down for a backoff. */
  failed(ep: Endpoint, error: string): void {
    const s = this.state(ep);
    s.failures++;
    s.probing = false;
    s.lastError = error;
    const ceiling = Math.min(this.maxMs, this.initialMs * 2 ** Math.min(30, s.failures - 1));
    const delay = Math.round(ceiling / 2 + (this.random() * ceiling) / 2);
    s.downUntil = this.clock.now() + delay;
    const wasUp = s.up;
    s.up = false;
    if (wasUp) this.onStateChange?.(ep, false, { error, retryInMs: delay });
  }

  /** Nothing was learnt about the endpoint (no token, queue timeout, client left): release a probe. */
  released(ep: Endpoint): void {
    this.state(ep).probing = false;
  }

  status(): EndpointStatus[] {
    const now = this.clock.now();
    return this.endpoints.map((ep) => {
      const s = this.state(ep);
      return {
        hostname: ep.target.hostname,
        region: ep.target.region,
        up: s.up,
        retryInMs: s.up ? undefined : Math.max(0, s.downUntil - now),
        consecutiveFailures: s.failures,
        lastError: s.lastError,
        hasUsableToken: Object.values(ep.tokens.status()).some((t) => t?.hasUsable),
      };
    });
  }

  private state(ep: Endpoint): State {
    const s = this.states.get(ep);
    if (!s) throw new Error(`unknown endpoint ${ep.target.hostname}`);
    return s;
  }
}
