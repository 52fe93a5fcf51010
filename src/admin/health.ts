import { performance } from 'node:perf_hooks';
import type { TokenActionStatus } from '../token/token-cache.js';
import type { EndpointStatus, FailoverList } from '../upstream/failover-list.js';

export interface Check {
  ok: boolean;
  /** Why, for the response body and the log. */
  detail: string;
}

/** An event loop that stalls this long is not alive in any useful sense. */
const MAX_EVENT_LOOP_DELAY_MS = 10_000;
/**
 * How often the stall monitor's timer fires. A stall is measured in full whatever the interval, and only
 * stalls of seconds matter here; each firing wakes an idle process (every sidecar pays for it).
 */
const STALL_CHECK_INTERVAL_MS = 1000;

/**
 * The longest event-loop stall since it was last asked: how late a once-a-second timer fired. (Node's
 * monitorEventLoopDelay histogram drops the first interval after each reset(), so a stall that starts
 * within one interval of a probe would go unseen at this rate.)
 */
class StallMonitor {
  private last = performance.now();
  private worst = 0;
  private readonly timer = setInterval(() => {
    const now = performance.now();
    this.worst = Math.max(this.worst, now - this.last - STALL_CHECK_INTERVAL_MS);
    this.last = now;
  }, STALL_CHECK_INTERVAL_MS).unref();

  /** The worst lateness in ms since the previous call, including a gap still in progress. */
  take(): number {
    const current = performance.now() - this.last - STALL_CHECK_INTERVAL_MS;
    const worst = Math.max(0, this.worst, current);
    this.worst = 0;
    return worst;
  }

  close(): void {
    clearInterval(this.timer);
  }
}

/**
 * The three probes, in Cloud SQL Auth Proxy's model: none of them dials the database.
 * - startup: the listeners are up and a first token has been signed;
 * - liveness: the process and its event loop are healthy;
 * - readiness: accepting clients, not draining, and in every cluster at least one endpoint usable: a
 *   valid token and not in backoff after a failure. The body lists every endpoint's state (grouped by
 *   cluster when there are several).
 */
export class HealthState {
  private listening = false;
  private draining = false;
  private readonly stalls = new StallMonitor();

  private readonly clusters: ReadonlyArray<{ name: string; failover: FailoverList }>;

  private readonly maxLoopDelayMs: number;

  /** One cluster's failover list, or every cluster's. */
  constructor(
    failover: FailoverList | ReadonlyArray<{ name: string; failover: FailoverList }>,
    opts: { maxLoopDelayMs?: number } = {},
  ) {
    this.maxLoopDelayMs = opts.maxLoopDelayMs ?? MAX_EVENT_LOOP_DELAY_MS;
    this.clusters = Array.isArray(failover)
      ? failover
      : [{ name: 'default', failover: failover as FailoverList }];
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
    // The worst stall since the last probe: one that ended still shows here once.
    const maxMs = this.stalls.take();
    if (maxMs > this.maxLoopDelayMs) {
      return { ok: false, detail: `event loop stalled for ${Math.round(maxMs)} ms` };
    }
    return { ok: true, detail: `ok (max event loop delay ${maxMs.toFixed(1)} ms)` };
  }

  readiness(): Check {
    if (this.draining) return { ok: false, detail: 'draining: shutting down' };
    if (!this.listening) return { ok: false, detail: 'listeners are not up yet' };
    if (this.clusters.length === 1) {
      const only = this.clusters[0] as { failover: FailoverList };
      const endpoints = only.failover.status();
      const problem = clusterProblem(endpoints, this.lastErrorSuffix(only.failover));
      const lines = endpoints.map(describeEndpoint).join('\n');
      return { ok: problem === undefined, detail: `${problem ?? 'ready'}\n${lines}` };
    }
    const notReady: string[] = [];
    const lines: string[] = [];
    for (const { name, failover } of this.clusters) {
      const endpoints = failover.status();
      const problem = clusterProblem(endpoints, this.lastErrorSuffix(failover));
      if (problem !== undefined) notReady.push(name);
      lines.push(
        `cluster ${name}: ${problem ?? 'ready'}`,
        ...endpoints.map((e) => `  ${describeEndpoint(e)}`),
      );
    }
    const head =
      notReady.length === 0 ? 'ready' : `not ready: no usable endpoint in cluster ${notReady.join(', ')}`;
    return { ok: notReady.length === 0, detail: `${head}\n${lines.join('\n')}` };
  }

  close(): void {
    this.stalls.close();
  }

  private tokenStatuses(failover?: FailoverList): Array<TokenActionStatus | undefined> {
    const lists = failover ? [failover] : this.clusters.map((c) => c.failover);
    return lists.flatMap((p) => p.endpoints.flatMap((ep) => Object.values(ep.tokens.status())));
  }

  /** Every cluster has signed a first token. */
  private anyTokenSigned(): boolean {
    return this.clusters.every(({ failover }) =>
      this.tokenStatuses(failover).some((s) => s?.expiresAt !== undefined),
    );
  }

  private lastErrorSuffix(failover?: FailoverList): string {
    const err = this.tokenStatuses(failover).find((s) => s?.lastError)?.lastError;
    return err ? `: ${err}` : '';
  }
}

/** Why a cluster is not ready, or undefined when one of its endpoints is usable. */
function clusterProblem(endpoints: EndpointStatus[], lastError: string): string | undefined {
  if (!endpoints.some((e) => e.hasUsableToken)) return `no valid IAM token${lastError}`;
  if (!endpoints.some((e) => e.hasUsableToken && e.up))
    return 'no usable endpoint: every endpoint failed recently';
  return undefined;
}

/** One line per endpoint in the /readyz body, e.g. `endpoint x.dsql.us-east-1.on.aws (us-east-1): up`. */
function describeEndpoint(e: EndpointStatus): string {
  const token = e.hasUsableToken ? '' : ', no valid token';
  const state = e.up
    ? 'up'
    : `down (${e.consecutiveFailures} failure${e.consecutiveFailures === 1 ? '' : 's'}, next try in ${Math.ceil((e.retryInMs ?? 0) / 1000)} s): ${e.lastError ?? ''}`;
  return `endpoint ${e.hostname} (${e.region}): ${state}${token}`;
}
