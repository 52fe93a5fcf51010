/**
 * CONTRACT (helper C implements): a message-level filter on the server-to-client byte stream, switched
 * on only when a session needs it (client_min_messages above notice, or a statement-timeout cancel
 * whose 57014 must say "due to statement timeout"). The relay's BackendScanner still scans every chunk
 * (counts, status); the filter only decides which bytes the client gets.
 */

export interface ServerFilterOptions {
  /**
   * NoticeResponses whose severity ranks below this are dropped (PostgreSQL's client_min_messages order:
   * debug5..debug1 < log < notice < warning < error; INFO is always sent). 'notice' drops nothing DSQL sends by default.
   */
  minLevel: string;
  /** When true, an ErrorResponse with SQLSTATE 57014 gets the message "canceling statement due to statement timeout". */
  rewriteCancel: boolean;
}

export class ServerFilter {
  /**
   * `rawRemaining`: bytes of a message already partly passed to the client before the filter started
   * (passed on raw); `partialHeader`: header bytes (1-4) of a message whose header a chunk split, already
   * passed on (that message then passes raw too).
   */
  constructor(_opts: ServerFilterOptions, _rawRemaining: number, _partialHeader?: Buffer) {
    throw new Error('not implemented');
  }
  set options(_opts: ServerFilterOptions) {
    throw new Error('not implemented');
  }
  /** The bytes of `chunk` the client gets, in order (may be empty while a notice is incomplete). */
  process(_chunk: Buffer): Buffer {
    throw new Error('not implemented');
  }
  /** True when no bytes are withheld (the client's stream is between messages as far as the filter goes). */
  get empty(): boolean {
    throw new Error('not implemented');
  }
}
