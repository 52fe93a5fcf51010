import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { TokenCache } from '../token/token-cache.js';

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
 * - readiness: accepting clients, with a valid token at hand, and not draining.
 */
export class HealthState {
  private listening = false;
  private draining = false;
  private readonly loopDelay = monitorEventLoopDelay({ resolution: 20 });

  constructor(private readonly tokens: TokenCache) {
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
    const status = this.tokens.status();
    const usable = Object.values(status).some((s) => s?.hasUsable);
    if (!usable) return { ok: false, detail: `no valid IAM token${this.lastErrorSuffix()}` };
    return { ok: true, detail: 'ready' };
  }

  close(): void {
    this.loopDelay.disable();
  }

  private anyTokenSigned(): boolean {
    return Object.values(this.tokens.status()).some((s) => s?.expiresAt !== undefined);
  }

  private lastErrorSuffix(): string {
    const err = Object.values(this.tokens.status()).find((s) => s?.lastError)?.lastError;
    return err ? `: ${err}` : '';
  }
}
