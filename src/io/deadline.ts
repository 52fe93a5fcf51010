/**
 * A time limit on a phase that reads a socket (a login, a query during login or a move, a
 * handshake): when it passes, the socket is destroyed, which fails the read pending on it (a
 * FrameStream read then rejects with its "closed" error), and `expired` holds why.
 *
 * The socket is destroyed without an error, so nobody has to listen for an 'error' event the
 * timeout itself made. A caller reports `expired` ahead of the "closed" error the read failed with:
 * the timeout is the reason, the close only its consequence.
 */
export interface Deadline<E extends Error = Error> {
  /** The timeout error once the time ran out; undefined until then (and forever, once cleared in time). */
  readonly expired: E | undefined;
  /** Stops the timer: the phase ended, in time or otherwise. Safe to call more than once. */
  clear(): void;
}

export interface DeadlineOptions {
  /** Let the process exit while the deadline is pending (a timer nobody awaits). */
  unref?: boolean;
}

/** Starts a deadline of `ms` on `socket`; `timeoutError` makes `expired` when it passes. */
export function socketDeadline<E extends Error>(
  socket: { destroy(): void },
  ms: number,
  timeoutError: () => E,
  opts: DeadlineOptions = {},
): Deadline<E> {
  let expired: E | undefined;
  const timer = setTimeout(() => {
    expired = timeoutError();
    socket.destroy();
  }, ms);
  if (opts.unref) timer.unref();
  return {
    get expired() {
      return expired;
    },
    clear: () => clearTimeout(timer),
  };
}
