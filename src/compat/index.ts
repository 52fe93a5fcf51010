/**
 * The compatibility layer for one client session, assembled: its state (CompatSession), the engine the
 * relay's gate hands requests to, and the watch that follows transactions and carries out timeouts.
 * MovableRelay plugs the returned hooks into its relay.
 */
import type { Clock } from '../core/clock.js';
import type { Metrics } from '../core/metrics.js';
import type { Logger } from '../log.js';
import type { Relay } from '../relay/relay.js';
import { CompatEngine } from './engine.js';
import { type ParamError, paramClass } from './params.js';
import { CompatSession } from './session-state.js';
import { SessionWatch } from './watch.js';

export interface CompatSettings {
  /** --statement-timeout and --idle-in-transaction-timeout in ms: the sessions' defaults (0: off). */
  statementTimeoutMs: number;
  idleInTransactionTimeoutMs: number;
  /** --client-idle-timeout in ms (0: off). */
  clientIdleMs: number;
  /** --statement-timeout-grace in ms. */
  graceMs: number;
}

/** Whether the layer takes a startup parameter of this name (instead of DSQL, or of dropping it). */
export function takesStartupParam(name: string): boolean {
  const cls = paramClass(name.toLowerCase());
  return cls === 'carried' || cls === 'harmless' || cls === 'fixed';
}

export class SessionCompat {
  readonly session: CompatSession;
  readonly engine: CompatEngine;
  readonly watch: SessionWatch;

  constructor(opts: {
    startup: ReadonlyMap<string, string>;
    settings: CompatSettings;
    metrics: Metrics;
    log: Logger;
    clock: Clock;
    cancel: () => void;
    /** DEALLOCATE ALL reached DSQL: the client's protocol-level statements are gone too. */
    onDeallocateAll: () => void;
  }) {
    const { settings } = opts;
    let watch: SessionWatch | undefined;
    this.session = new CompatSession(
      lowerKeys(opts.startup),
      {
        statementTimeoutMs: settings.statementTimeoutMs,
        idleInTransactionTimeoutMs: settings.idleInTransactionTimeoutMs,
      },
      opts.metrics,
      opts.log,
      () => watch?.paramsChanged(),
      opts.onDeallocateAll,
    );
    this.engine = new CompatEngine(this.session);
    watch = new SessionWatch(this.session, {
      clock: opts.clock,
      clientIdleMs: settings.clientIdleMs,
      graceMs: settings.graceMs,
      cancel: opts.cancel,
    });
    this.watch = watch;
    this.engine.watch = watch;
  }

  /** A startup parameter the layer cannot accept: the login fails with it, as PostgreSQL's would. */
  get startupError(): ParamError | undefined {
    return this.session.params.startupError;
  }

  attach(relay: Relay): void {
    this.engine.attach(relay);
    this.watch.attach(relay);
  }

  /** The Parse bodies of the SQL-level prepared statements, to re-create them on a new connection. */
  parseBodies(): Buffer[] {
    return this.session.prepared.entries().map((e) => e.parseBody);
  }

  stop(): void {
    this.watch.stop();
  }
}

function lowerKeys(m: ReadonlyMap<string, string>): Map<string, string> {
  const out = new Map<string, string>();
  for (const [k, v] of m) out.set(k.toLowerCase(), v);
  return out;
}
