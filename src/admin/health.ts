import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { TokenActionStatus } from '../token/token-cache.js';
import type { EndpointPool, EndpointStatus } from '../upstream/endpoint-pool.js';

export interface Check {
  ok: boolean;
  /** Why, for the response body and the log. */
  detail: string;
}

/** An event loop that stalls this long is not alive in any useful sense. */
const MAX_EVENT_LOOP_DELAY_MS = 10_000;

/**
 * The three probes, in Cloud SQL Auth Proxy's model: none of them dials the database.
 * - startup: the listeners are up and a first token has been signed;
 * - liveness: the process and its event loop are healthy;
 * - readiness: accepting clients, not draining, and at least one endpoint usable: a valid token and
 *   not in backoff after a failure. The body lists every endpoint's state.
 */
export class HealthState {
  private listening = false;
  private draining = false;
  private readonly loopDelay = monitorEventLoopDelay({ resolution: 20 });

  constructor(private readonly pool: EndpointPool) {
    this.loopDelay.enable();
  }

  markListening(): void {
    this.listening = true;
  }

  markDraining(): void {
    this.draining = true;
  }

  get isDraining(): boolean {
    return this.draining;
  }

  startup(): Check {
    if (!this.listening) return { ok: false, detail: 'listeners are not up yet' };
    if (!this.anyTokenSigned()) return { ok: false, detail: `no token signed yet${this.lastErrorSuffix()}` };
    return { ok: true, detail: 'started' };
  }

  liveness(): Check {
    // Max delay since the last probe: a stall that ended still shows here once.
    const maxMs = this.loopDelay.max / 1e6;
    this.loopDelay.reset();
    if (maxMs > MAX_EVENT_LOOP_DELAY_MS) {
      return { ok: false, detail: `event loop stalled for ${Math.round(maxMs)} ms` };
    }
    return { ok: true, detail: `ok (max event loop delay ${maxMs.toFixed(1)} ms)` };
  }

  readiness(): Check {
    if (this.draining) return { ok: false, detail: 'draining: shutting down' };
    if (!this.listening) return { ok: false, detail: 'listeners are not up yet' };
    const endpoints = this.pool.status();
    const lines = endpoints.map(describeEndpoint).join('\n');
    if (!endpoints.some((e) => e.hasUsableToken)) {
      return { ok: false, detail: `no valid IAM token${this.lastErrorSuffix()}\n${lines}` };
    }
    if (!endpoints.some((e) => e.hasUsableToken && e.up)) {
      return { ok: false, detail: `no usable endpoint: every endpoint failed recently\n${lines}` };
    }
    return { ok: true, detail: `ready\n${lines}` };
  }

  close(): void {
    this.loopDelay.disable();
  }

  private tokenStatuses(): Array<TokenActionStatus | undefined> {
    return this.pool.endpoints.flatMap((ep) => Object.values(ep.tokens.status()));
  }

  private anyTokenSigned(): boolean {
    return this.tokenStatuses().some((s) => s?.expiresAt !== undefined);
  }

  private lastErrorSuffix(): string {
    const err = this.tokenStatuses().find((s) => s?.lastError)?.lastError;
    return err ? `: ${err}` : '';
  }
}

/** One line per endpoint in the /readyz body, e.g. `endpoint x.dsql.us-east-1.on.aws (us-east-1): up`. */
function describeEndpoint(e: EndpointStatus): string {
  const token = e.hasUsableToken ? '' : ', no valid token';
  const state = e.up
    ? 'up'
    : `down (${e.consecutiveFailures} failure${e.consecutiveFailures === 1 ? '' : 's'}, next try in ${Math.ceil((e.retryInMs ?? 0) / 1000)} s): ${e.lastError ?? ''}`;
  return `endpoint ${e.hostname} (${e.region}): ${state}${token}`;
}
