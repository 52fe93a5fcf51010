import { ProxyError } from '../errors.js';
import type { Logger } from '../log.js';

/**
 * Where one client connection is in its life. ClientSession drives the first three and the last;
 * MovableRelay the ones in between.
 *
 * - handshake: reading SSLRequest/StartupMessage (or a CancelRequest), TLS towards the client;
 * - authenticating: the local login (password, MD5 or SCRAM exchange, failed-login delay excluded);
 * - connecting: routing to a cluster, startup parameters, the upstream connection (token, dial, login);
 * - relaying: bytes flow both ways;
 * - move_due: relaying, and the upstream connection is old enough to be replaced at the next idle moment;
 * - moving: the client is held while the session moves (planned) or reconnects (after a loss) to a
 *   fresh upstream connection;
 * - closing: the end is decided (an ErrorResponse on its way, a delayed failed-login answer, the
 *   relay ending) and nothing starts any more;
 * - closed: every resource is released (cancel key unregistered).
 */
export type Phase =
  | 'handshake'
  | 'authenticating'
  | 'connecting'
  | 'relaying'
  | 'move_due'
  | 'moving'
  | 'closing'
  | 'closed';

/**
 * The possible transitions. Any phase may go to closing; closed is reached from closing, or directly
 * when nothing is left to answer (a CancelRequest's connection, a client gone during the login, the
 * relay's natural end).
 */
const NEXT: Readonly<Record<Phase, readonly Phase[]>> = {
  handshake: ['authenticating', 'closing', 'closed'],
  authenticating: ['connecting', 'closing', 'closed'],
  connecting: ['relaying', 'closing', 'closed'],
  // relaying → moving: a reconnect after the upstream was lost while idle.
  relaying: ['move_due', 'moving', 'closing', 'closed'],
  move_due: ['moving', 'closing', 'closed'],
  // moving → move_due: the old connection died under a planned move, handled as a loss from there.
  moving: ['relaying', 'move_due', 'closing', 'closed'],
  closing: ['closed'],
  closed: [],
};

export function canMove(from: Phase, to: Phase): boolean {
  return NEXT[from].includes(to);
}

export interface LifecycleOptions {
  log: Logger;
  /**
   * An impossible transition throws (a ProxyError 'INTERNAL') instead of being reported. On under
   * Node's test runner, so a test that drives a session into one fails loudly.
   */
  strict?: boolean;
  /**
   * Production: called (in a microtask, never inside the caller) after an impossible transition was
   * logged at error level; the session ends the connection with an INTERNAL error. The phase is left
   * as it was.
   */
  onImpossible?: (err: ProxyError) => void;
}

/** True under `node --test` (the runner marks the processes it runs), false in production. */
export const STRICT_PHASES = process.env.NODE_TEST_CONTEXT !== undefined;

/**
 * The phase of one client connection, changed only through `to()`, which logs each transition at
 * debug level (phase names only: no user, SQL or secret) and refuses impossible ones. Transitions
 * happen on lifecycle events only, never per message.
 */
export class Lifecycle {
  private current: Phase = 'handshake';

  constructor(private readonly opts: LifecycleOptions) {}

  get phase(): Phase {
    return this.current;
  }

  /** A method rather than a comparison of `phase`, which TypeScript would narrow across awaits. */
  is(phase: Phase): boolean {
    return this.current === phase;
  }

  /** closing or closed: the end is decided, nothing new starts. */
  get ending(): boolean {
    return this.current === 'closing' || this.current === 'closed';
  }

  /** Moves to `next`; false (after reporting it) when the transition is impossible. */
  to(next: Phase): boolean {
    const from = this.current;
    if (!canMove(from, next)) {
      const err = new ProxyError('INTERNAL', {
        cause: new Error(`impossible connection phase change ${from} → ${next}`),
      });
      this.opts.log.error({ event: 'phase_impossible', from, to: next });
      if (this.opts.strict) throw err;
      const onImpossible = this.opts.onImpossible;
      if (onImpossible) queueMicrotask(() => onImpossible(err));
      return false;
    }
    this.current = next;
    this.opts.log.debug({ event: 'phase', from, to: next });
    return true;
  }
}
