/**
 * CONTRACT: how the compatibility layer talks to the upstream connection while it has it to itself
 * (the relay has stopped relaying; no answer of an earlier request is still in flight).
 */

/** One complete backend message. */
export interface Frame {
  type: number;
  body: Buffer;
}

export interface UpstreamLink {
  /** Sends frontend messages (already encoded) to DSQL. */
  write(bytes: Buffer): void;
  /**
   * The next complete backend message. Rejects with a ProxyError when the upstream closes or a
   * message is malformed; the engine then ends the session.
   */
  next(): Promise<Frame>;
}

/** Where the layer's answers to the client go (they are counted by the relay's scanner on the way). */
export interface ClientLink {
  write(bytes: Buffer): void;
}
