/**
 * The named prepared statements a session holds on the server, as far as the proxy can follow them
 * from the two byte streams: only what the server accepted, to re-create exactly that on a fresh
 * connection when the session moves.
 *
 * A Parse or a Close the client sends is only a request. The server answers each, in order, with
 * ParseComplete ('1') or CloseComplete ('3'), or with an ErrorResponse after which it skips every
 * message up to the Sync, answered by ReadyForQuery
 * (https://www.postgresql.org/docs/current/protocol-flow.html#PROTOCOL-FLOW-EXT-QUERY). So the n-th
 * ParseComplete or CloseComplete after the k-th ReadyForQuery answers the n-th Parse or Close sent
 * after the k-th request that ends in a ReadyForQuery (Query, Sync, FunctionCall): those are the
 * batch and index every operation is filed under. What is still pending when its batch's
 * ReadyForQuery arrives was refused or skipped (a second Parse of an existing name gets 42P05 and
 * must not replace the statement the server still has).
 *
 * Only named statements are kept; unnamed statements and portals end with their batch, so they cost
 * two counters and nothing else. Prepared statements are not transactional in PostgreSQL (a ROLLBACK
 * does not undo a Parse or a Close), so an accepted one counts whatever happens later in its batch.
 *
 * Memory is bounded: accepted and pending statements together, by count and by bytes. Past either
 * bound, or on an answer the proxy cannot pair with a request, tracking stops for good (everything is
 * let go) and the session is marked `untracked`: it can no longer be moved.
 */

import type { BackendScanner } from '../relay/backend-scanner.js';
import type { FrontendEvents } from '../relay/frontend-scanner.js';

/** At most this many named statements per session, accepted and pending together. */
export const MAX_TRACKED_STATEMENTS = 1000;
/** At most this many bytes of Parse bodies per session, accepted and pending together. */
export const MAX_TRACKED_BYTES = 16 * 1024 * 1024;

/** A named Parse or a Close of a named statement, sent and not answered yet. */
interface Pending {
  /** The requests that end in a ReadyForQuery sent before it: its batch. */
  batch: number;
  /** Its position among the Parse and Close messages of its batch. */
  index: number;
  name: string;
  /** The Parse body to keep; undefined for a Close. */
  body: Buffer | undefined;
}

export class StatementTracker {
  /** name -> Parse body of the statements the server accepted, in creation order. */
  private readonly accepted = new Map<string, Buffer>();
  /** Sent and not answered, in order; `head` is the first one still pending. */
  private pending: Pending[] = [];
  private head = 0;
  /** Bytes of Parse bodies held, accepted and pending. */
  private bytes = 0;
  /** The batch of the last Parse or Close sent, and how many were sent in it. */
  private sentBatch = -1;
  private sentInBatch = 0;
  /** The batch of the last ParseComplete or CloseComplete, and how many arrived in it. */
  private answeredBatch = -1;
  private answeredInBatch = 0;
  /** True for good once the proxy stopped following the statements (see the class comment). */
  untracked = false;

  /** How many named statements are held, accepted and pending (for tests and bounds). */
  get size(): number {
    return this.accepted.size + this.pending.length - this.head;
  }

  /** Bytes of Parse bodies held, accepted and pending. */
  get heldBytes(): number {
    return this.bytes;
  }

  /** The Parse bodies of the accepted statements, in creation order. */
  bodies(): Buffer[] {
    return [...this.accepted.values()];
  }

  /** Names of the accepted statements, in creation order. */
  names(): string[] {
    return [...this.accepted.keys()];
  }

  /**
   * A Parse sent in `batch` (the count of requests before it that end in ReadyForQuery). `name` is ''
   * for the unnamed statement; `body` (the whole Parse body, kept as it is) only for a named one.
   */
  parseSent(name: string, body: Buffer | undefined, batch: number): void {
    const index = this.nextIndex(batch);
    if (this.untracked || name === '' || body === undefined) return;
    if (this.size + 1 > MAX_TRACKED_STATEMENTS || this.bytes + body.length > MAX_TRACKED_BYTES) {
      this.stop();
      return;
    }
    this.bytes += body.length;
    this.pending.push({ batch, index, name, body });
  }

  /** A Close of a prepared statement ('S'); `name` '' for the unnamed one. */
  closeSent(name: string, batch: number): void {
    const index = this.nextIndex(batch);
    if (this.untracked || name === '') return;
    if (this.size + 1 > MAX_TRACKED_STATEMENTS) {
      this.stop();
      return;
    }
    this.pending.push({ batch, index, name, body: undefined });
  }

  /** A Close of a portal ('P'): answered like a Close of a statement, changes nothing kept. */
  portalCloseSent(batch: number): void {
    this.nextIndex(batch);
  }

  /** ParseComplete, with the number of ReadyForQuery seen before it. */
  parseComplete(readyCount: number): void {
    const op = this.answered(readyCount);
    if (op === undefined) return;
    if (op.body === undefined) {
      this.stop();
      return;
    }
    // Already held only after a DEALLOCATE or DISCARD the proxy did not follow: the server has the new one.
    this.forget(op.name);
    this.accepted.set(op.name, op.body);
  }

  /** CloseComplete, with the number of ReadyForQuery seen before it. */
  closeComplete(readyCount: number): void {
    const op = this.answered(readyCount);
    if (op === undefined) return;
    if (op.body !== undefined) {
      this.stop();
      return;
    }
    this.forget(op.name);
  }

  /**
   * DEALLOCATE ALL ran (the compatibility layer carried it out): the server holds no statement now.
   * Only called between requests, so nothing is pending.
   */
  forgetAll(): void {
    for (const body of this.accepted.values()) this.bytes -= body.length;
    this.accepted.clear();
  }

  /** Drops an accepted statement, if held, and its bytes. */
  private forget(name: string): void {
    const old = this.accepted.get(name);
    if (old === undefined) return;
    this.bytes -= old.length;
    this.accepted.delete(name);
  }

  /**
   * A ReadyForQuery; `readyCount` includes it. Whatever is still pending from the batches it ends
   * was refused or skipped after an error.
   */
  ready(readyCount: number): void {
    const { pending } = this;
    if (pending.length === 0) return;
    while (this.head < pending.length && pending[this.head]!.batch < readyCount) {
      this.bytes -= pending[this.head]!.body?.length ?? 0;
      this.head++;
    }
    this.compact();
  }

  /** Stops following the statements for good and lets everything go: the session is not movable. */
  stop(): void {
    this.untracked = true;
    this.accepted.clear();
    this.pending = [];
    this.head = 0;
    this.bytes = 0;
  }

  private nextIndex(batch: number): number {
    if (batch !== this.sentBatch) {
      this.sentBatch = batch;
      this.sentInBatch = 0;
    }
    return this.sentInBatch++;
  }

  /**
   * Pairs a ParseComplete or CloseComplete with what it answers: the pending named operation it
   * answers (taken off the queue), or undefined when it answers an unnamed one (or tracking stopped).
   */
  private answered(readyCount: number): Pending | undefined {
    if (readyCount !== this.answeredBatch) {
      this.answeredBatch = readyCount;
      this.answeredInBatch = 0;
    }
    const index = this.answeredInBatch++;
    if (this.untracked) return undefined;
    const op = this.pending[this.head];
    if (op === undefined || op.batch > readyCount || (op.batch === readyCount && op.index > index)) {
      return undefined;
    }
    if (op.batch === readyCount && op.index === index) {
      this.head++;
      this.compact();
      return op;
    }
    // An operation that should have been answered before this one was not: the streams disagree
    // with the protocol, so nothing the proxy kept can be trusted any more.
    this.stop();
    return undefined;
  }

  /** Drops the answered front of the queue once it is worth it (the queue is a plain array). */
  private compact(): void {
    if (this.head === this.pending.length) {
      this.pending.length = 0;
      this.head = 0;
    } else if (this.head >= 64 && this.head * 2 >= this.pending.length) {
      this.pending = this.pending.slice(this.head);
      this.head = 0;
    }
  }
}

/**
 * The frontend scanner's events that feed a tracker. `requests` reads the scanner's count of requests
 * that end in ReadyForQuery (the batch of a Parse or Close sent now). MovableRelay and the tests wire a
 * tracker the same way, through this and answersTo().
 */
export function statementEvents(
  tracker: StatementTracker,
  requests: () => number,
): Pick<
  FrontendEvents,
  'onNamedParse' | 'onUnnamedParse' | 'onCloseStatement' | 'onClosePortal' | 'onUntracked'
> {
  return {
    onNamedParse: (name, body) => tracker.parseSent(name, body, requests()),
    onUnnamedParse: () => tracker.parseSent('', undefined, requests()),
    onCloseStatement: (name) => tracker.closeSent(name, requests()),
    onClosePortal: () => tracker.portalCloseSent(requests()),
    onUntracked: () => tracker.stop(),
  };
}

/** Feeds a tracker the server's answers as the backend scanner sees them go by. */
export function answersTo(tracker: StatementTracker, scanner: BackendScanner): void {
  scanner.onParseComplete = () => tracker.parseComplete(scanner.readyCount);
  scanner.onCloseComplete = () => tracker.closeComplete(scanner.readyCount);
  scanner.onReady = () => tracker.ready(scanner.readyCount);
}
