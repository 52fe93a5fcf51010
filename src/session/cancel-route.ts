import type { UpstreamTarget } from '../upstream/target.js';
import type { CancelKey } from './cancel-registry.js';

/**
 * Where a CancelRequest for a live session goes: the endpoint of its current upstream connection and
 * the key that connection sent. The MovableRelay owns it and changes it when the session moves; the
 * cancel registry and forwardCancel get this read-only view of the same object, so a cancel in flight
 * sees a move (see forwardCancel).
 */
export interface CancelRoute {
  readonly target: UpstreamTarget;
  readonly upstreamKey: CancelKey | undefined;
  /** Told when the client sends a CancelRequest for the session (a conflict retry stops). */
  readonly clientCancelled?: () => void;
}
