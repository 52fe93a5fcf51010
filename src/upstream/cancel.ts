import type net from 'node:net';
import { socketDeadline } from '../io/deadline.js';
import { frontendCancelRequest } from '../protocol/to-server.js';
import { dialUpstream } from './dial.js';
import type { UpstreamTarget } from './target.js';

/** Where a session's cancel goes: its upstream's endpoint and the key that upstream sent, if any. */
export interface CancelDestination {
  target: UpstreamTarget;
  upstreamKey: { processId: number; secretKey: Buffer } | undefined;
}

/**
 * - forwarded: sent to the upstream session the client's key named when it arrived and when it left;
 * - unknown_key: no live session has that key (dropped quietly, as PostgreSQL does);
 * - no_upstream_key: the upstream sent no BackendKeyData, so there is nothing to send;
 * - session_changed: the session ended or moved to another upstream connection while the cancel's TLS
 *   connection was being set up, so it was dropped.
 */
export type CancelOutcome = 'forwarded' | 'unknown_key' | 'no_upstream_key' | 'session_changed';

export type CancelDial = (target: UpstreamTarget, timeoutMs: number) => Promise<net.Socket>;

/**
 * Sends a CancelRequest for a client session's upstream. Like any DSQL connection it must use TLS with
 * SNI, so it goes through the same dialer; the server answers nothing and closes. A dial failure
 * rejects; an error after that also ends in 'close' (the dialer's own listener swallows it).
 *
 * `current` looks the session up by the client's key, and is asked twice: when the cancel arrives, and
 * again once the TLS connection is up, just before the request is written. The dial takes a round
 * trip or more, and meanwhile the session may have ended, its upstream connection reset and handed to
 * the next client (--pool-mode session), or it may have moved to a fresh connection: the upstream key
 * would then cancel a query of someone else, or of nobody. The request goes out only if the lookup
 * still gives the same route with the same upstream key; otherwise it is dropped.
 */
export async function forwardCancel(
  current: () => CancelDestination | undefined,
  timeoutMs: number,
  dial: CancelDial = dialUpstream,
): Promise<CancelOutcome> {
  const route = current();
  if (!route) return 'unknown_key';
  const { target, upstreamKey: key } = route;
  if (!key) return 'no_upstream_key';
  const socket = await dial(target, timeoutMs);
  const now = current();
  if (now !== route || now.upstreamKey !== key || now.target !== target) {
    socket.destroy();
    return 'session_changed';
  }
  await new Promise<void>((resolve) => {
    const deadline = socketDeadline(socket, timeoutMs, () => new Error('cancel request timed out'));
    socket.once('close', () => {
      deadline.clear();
      resolve();
    });
    socket.resume();
    socket.end(frontendCancelRequest(key.processId, key.secretKey));
  });
  return 'forwarded';
}
