/**
 * Follows the client's message stream (after login) by headers, like BackendScanner does for the
 * server's, to know when a session may be moved to another upstream connection:
 * - how many requests that end in ReadyForQuery were sent (Query, Sync, FunctionCall);
 * - whether an extended-protocol batch is open (Parse/Bind/Execute... without its Sync yet);
 * - every Parse and Close, with the names of prepared statements (the session pairs them with the
 *   server's answers to keep only what the server accepted).
 * Bodies are only looked at for the few messages that need it (named Parse, Close, Query); the
 * rest are skipped unread.
 *
 * Message formats: https://www.postgresql.org/docs/current/protocol-message-formats.html
 */
import { CloseTarget, FrontendMessage } from '../protocol/constants.js';
import { HeaderScanner } from './header-scanner.js';

/** What the scanner hands over; all bodies are copies the receiver may keep. */
export interface FrontendEvents {
  /** A Parse ('P') that names its statement: the whole body, to replay it on a new connection. */
  onNamedParse?: (name: string, body: Buffer) => void;
  /** A Parse of the unnamed statement (answered like any Parse, kept by nobody). */
  onUnnamedParse?: () => void;
  /** A Close ('C') of a prepared statement ('S'); the name is '' for the unnamed statement. */
  onCloseStatement?: (name: string) => void;
  /** A Close ('C') of a portal ('P'). */
  onClosePortal?: () => void;
  /**
   * The text of a Query or a Parse, to notice statements that change session state; null when the
   * text was too large to look at (the receiver should assume the worst).
   */
  onStatementText?: (sql: string | null) => void;
  /**
   * A Parse or Close that could not be read (too large to keep, or malformed): the statements the
   * session holds can no longer be followed, so they cannot be re-created elsewhere.
   */
  onUntracked?: () => void;
}

/** Query bodies larger than this are not looked into; the session assumes the worst. */
const MAX_INSPECTED = 64 * 1024;
/**
 * Parse bodies are kept whole to be replayed, up to this size. The bytes are kept as they arrive,
 * never reserved from the length field, so a hostile length costs nothing until the bytes exist.
 */
const MAX_KEPT_PARSE = 16 * 1024 * 1024;

export class FrontendScanner extends HeaderScanner {
  /** Requests sent that are answered with a ReadyForQuery. */
  requests = 0;
  /** True from the first extended-protocol message until its Sync. */
  batchOpen = false;
  /** Offset in the last scanned chunk where a Terminate ('X') message starts, or -1. */
  terminateAt = -1;
  /** A Terminate whose header was split across chunks (part of it already passed on). */
  terminateSplit = false;
  private type = 0;
  /** Copies of the captured message's bytes so far, or undefined when not capturing. */
  private capture: Buffer[] | undefined;

  constructor(private events: FrontendEvents = {}) {
    super();
  }

  /** Stops handing events over (the session ended): the scanner no longer holds the receiver. */
  forgetEvents(): void {
    this.events = {};
  }

  scan(chunk: Buffer): void {
    this.terminateAt = -1;
    let pos = 0;
    const end = chunk.length;
    while (pos < end) {
      if (this.skip > 0) {
        const n = Math.min(this.skip, end - pos);
        if (this.capture) this.capture.push(Buffer.from(chunk.subarray(pos, pos + n)));
        this.skip -= n;
        pos += n;
        if (this.skip === 0 && this.capture) this.finishCapture();
        continue;
      }
      if (this.headerFilled === 0 && end - pos >= 5) {
        if (chunk[pos] === FrontendMessage.Terminate) this.terminateAt = pos;
        this.startMessage(chunk[pos]!, chunk.readInt32BE(pos + 1));
        pos += 5;
        if (this.capture && end - pos >= this.skip) {
          // The whole body is in this chunk (the usual case): read it in place, no copy.
          this.capture = undefined;
          this.body(chunk, pos, pos + this.skip, false);
          pos += this.skip;
          this.skip = 0;
        }
        continue;
      }
      pos = this.takeHeaderPiece(chunk, pos, end);
    }
  }

  protected splitHeader(type: number, length: number): void {
    if (type === FrontendMessage.Terminate) this.terminateSplit = true;
    this.startMessage(type, length);
  }

  private startMessage(type: number, length: number): void {
    this.type = type;
    this.skip = length > 4 ? length - 4 : 0;
    switch (type) {
      case FrontendMessage.Query:
      case FrontendMessage.FunctionCall:
        this.requests++;
        break;
      case FrontendMessage.Sync:
        this.requests++;
        this.batchOpen = false;
        break;
      case FrontendMessage.Terminate:
      case FrontendMessage.CopyData:
      case FrontendMessage.CopyDone:
      case FrontendMessage.CopyFail:
        break;
      default:
        // Parse, Bind, Describe, Execute, Close, Flush: part of an extended-protocol batch.
        this.batchOpen = true;
    }
    if (type !== FrontendMessage.Query && type !== FrontendMessage.Parse && type !== FrontendMessage.Close)
      return;
    if (this.skip === 0) {
      // An empty Parse or Close body is malformed: what the server makes of it is not followed.
      if (type !== FrontendMessage.Query) this.events.onUntracked?.();
      return;
    }
    const limit = type === FrontendMessage.Parse ? MAX_KEPT_PARSE : MAX_INSPECTED;
    if (this.skip <= limit) {
      this.capture = [];
    } else {
      if (type !== FrontendMessage.Close) this.events.onStatementText?.(null);
      if (type !== FrontendMessage.Query) this.events.onUntracked?.();
    }
  }

  private finishCapture(): void {
    const parts = this.capture!;
    const body = parts.length === 1 ? parts[0]! : Buffer.concat(parts);
    this.capture = undefined;
    this.body(body, 0, body.length, true);
  }

  /**
   * A wanted message's body, `buf[start, end)`; `owned` when buf is exactly that body, in a copy of
   * its own (a Parse body is then kept without copying it again).
   */
  private body(buf: Buffer, start: number, end: number, owned: boolean): void {
    if (this.type === FrontendMessage.Query) {
      this.events.onStatementText?.(buf.toString('utf8', start, Math.max(start, end - 1)));
      return;
    }
    const nameEnd = buf.indexOf(0, this.type === FrontendMessage.Close ? start + 1 : start);
    if (nameEnd < 0 || nameEnd >= end) {
      this.events.onUntracked?.();
      return;
    }
    if (this.type === FrontendMessage.Close) {
      if (buf[start] === CloseTarget.Statement)
        this.events.onCloseStatement?.(buf.toString('utf8', start + 1, nameEnd));
      else if (buf[start] === CloseTarget.Portal) this.events.onClosePortal?.();
      else this.events.onUntracked?.();
      return;
    }
    // Parse: statement name, then the query text. Unnamed statements do not outlive their batch,
    // but their text may still change session state (SET search_path through the extended protocol).
    if (nameEnd > start) {
      const whole = owned ? buf : Buffer.from(buf.subarray(start, end));
      this.events.onNamedParse?.(buf.toString('utf8', start, nameEnd), whole);
    } else {
      this.events.onUnnamedParse?.();
    }
    const textEnd = buf.indexOf(0, nameEnd + 1);
    if (textEnd > nameEnd && textEnd < end)
      this.events.onStatementText?.(buf.toString('utf8', nameEnd + 1, textEnd));
  }
}
