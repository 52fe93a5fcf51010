import type { Logger } from '../log.js';
import type { ConnectRequest } from '../upstream/connector.js';

/**
 * A client's request for an upstream connection. Its abort signal, which fires when the client leaves
 * while it waits (queued for a connection slot, or between retries), is made only if the connector
 * asks for it: a pooled connection or a free slot never does, and Node's AbortController is slow to
 * create (about 1 % of a pooled connection's CPU). A class, so that the getter lives on the prototype
 * instead of being defined on each request object.
 */
export class ClientConnectRequest implements ConnectRequest {
  private controller: AbortController | undefined;
  private leftWith: Error | undefined;
  poolKey: string | undefined;

  constructor(
    readonly role: string,
    readonly params: ReadonlyMap<string, string>,
    readonly log: Logger,
    readonly notice: (message: string) => void,
  ) {}

  get signal(): AbortSignal {
    if (!this.controller) {
      this.controller = new AbortController();
      if (this.leftWith) this.controller.abort(this.leftWith);
    }
    return this.controller.signal;
  }

  /** The client went away: abort the wait now, or as soon as the connector looks at the signal. */
  clientLeft(reason: Error): void {
    this.leftWith = reason;
    this.controller?.abort(reason);
  }
}
