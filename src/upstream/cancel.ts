import { frontendCancelRequest } from '../protocol/backend.js';
import { dialUpstream } from './dial.js';
import type { UpstreamTarget } from './target.js';

/**
 * Sends a CancelRequest for an upstream session. Like any DSQL connection it must use TLS with SNI,
 * so it goes through the same dialer; the server answers nothing and closes. An error also ends in
 * 'close' (the dialer's own listener swallows it).
 */
export async function forwardCancel(
  target: UpstreamTarget,
  key: { processId: number; secretKey: Buffer },
  timeoutMs: number,
): Promise<void> {
  const socket = await dialUpstream(target, timeoutMs);
  await new Promise<void>((resolve) => {
    const timer = setTimeout(() => socket.destroy(), timeoutMs);
    socket.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
    socket.resume();
    socket.end(frontendCancelRequest(key.processId, key.secretKey));
  });
}
