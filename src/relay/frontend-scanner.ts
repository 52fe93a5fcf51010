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

/**
 * Decides which requests the compatibility layer takes over (src/compat). Asked only at the first
 * message of a request: a Query, or the Parse or Bind that opens an extended-protocol batch.
 */
export interface RequestGate {
  /** Whether a request that begins with this Query or Parse text goes to the gate. */
  wantsText(sql: string): boolean;
  /** Whether the layer holds statements of its own (only then are Bind bodies read). */
  hasVirtual(): boolean;
  /** Whether a batch that begins with a Bind of this prepared statement goes to the gate. */
  wantsBind(statement: string): boolean;
}

/** `interceptAt`/`heldFrom` value: nothing in this chunk. */
export const NOWHERE = -1;
/** `interceptAt`/`heldFrom` value: the message began in an earlier chunk (the relay holds its first bytes). */
export const EARLIER = -2;

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
  /** The compatibility layer's gate, when it is on. */
  gate: RequestGate | undefined;
  /** The next message is not offered to the gate (the gate handed it back to be relayed as it is). */
  skipGateOnce = false;
  /**
   * After scan(): where in the chunk the first request the gate takes begins (NOWHERE, an offset, or
   * EARLIER). The scan stops there: the gate frames and counts everything from that byte on.
   */
  interceptAt = NOWHERE;
  /**
   * After scan(): where a message the gate may still want begins, when the chunk ends before the gate
   * could decide (its body or header is incomplete): those bytes must not be relayed yet.
   */
  heldFrom = NOWHERE;
  /** Start of the message the gate will be asked about (offset in the current chunk, or EARLIER). */
  private candidateAt = NOWHERE;

  constructor(private events: FrontendEvents = {}) {
    super();
  }

  /** Stops handing events over (the session ended): the scanner no longer holds the receiver. */
  forgetEvents(): void {
    this.events = {};
  }

  scan(chunk: Buffer): void {
    this.terminateAt = -1;
    this.interceptAt = NOWHERE;
    this.heldFrom = NOWHERE;
    if (this.candidateAt !== NOWHERE) this.candidateAt = EARLIER;
    let pos = 0;
    const end = chunk.length;
    while (pos < end) {
      if (this.skip > 0) {
        const n = Math.min(this.skip, end - pos);
        if (this.capture) this.capture.push(Buffer.from(chunk.subarray(pos, pos + n)));
        this.skip -= n;
        pos += n;
        if (this.skip === 0 && this.capture) this.finishCapture();
        if (this.interceptAt !== NOWHERE) {
          this.stopAtIntercept();
          return;
        }
        continue;
      }
      if (this.headerFilled === 0 && end - pos >= 5) {
        if (chunk[pos] === FrontendMessage.Terminate) this.terminateAt = pos;
        this.messageAt = pos;
        this.startMessage(chunk[pos]!, chunk.readInt32BE(pos + 1));
        pos += 5;
        if (this.capture && end - pos >= this.skip) {
          // The whole body is in this chunk (the usual case): read it in place, no copy.
          this.capture = undefined;
          this.body(chunk, pos, pos + this.skip, false);
          pos += this.skip;
          this.skip = 0;
          if (this.interceptAt !== NOWHERE) {
            this.stopAtIntercept();
            return;
          }
        }
        continue;
      }
      if (this.headerFilled === 0) this.headerAt = pos;
      pos = this.takeHeaderPiece(chunk, pos, end);
    }
    if (this.gate === undefined) return;
    if (this.candidateAt !== NOWHERE) this.heldFrom = this.candidateAt;
    else if (this.headerFilled > 0 && this.mayBeCandidate(this.partialType())) {
      // A header split by the chunk's end: its first bytes stay here until the type and body are known.
      this.heldFrom = this.headerAt;
      this.candidateAt = this.headerAt;
    }
  }

  /** Where the current message's header began in this chunk (for a split header, NOWHERE/EARLIER). */
  private messageAt = 0;
  private headerAt = 0;

  /** The gate took a request: nothing after it is scanned here (the gate frames it). */
  private stopAtIntercept(): void {
    this.skip = 0;
    this.capture = undefined;
    this.candidateAt = NOWHERE;
  }

  protected splitHeader(type: number, length: number): void {
    if (type === FrontendMessage.Terminate) this.terminateSplit = true;
    // The header began in this chunk (headerAt) or in an earlier one, whose bytes the relay holds
    // if the message may be a candidate (see scan's end).
    this.messageAt = this.candidateAt === EARLIER ? EARLIER : this.headerAt;
    this.candidateAt = NOWHERE;
    this.startMessage(type, length);
  }

  /** Whether a message of this type, starting now, would be offered to the gate. */
  private mayBeCandidate(type: number): boolean {
    const gate = this.gate;
    if (gate === undefined || this.skipGateOnce || this.batchOpen) return false;
    return (
      type === FrontendMessage.Query ||
      type === FrontendMessage.Parse ||
      (type === FrontendMessage.Bind && gate.hasVirtual())
    );
  }

  private startMessage(type: number, length: number): void {
    this.type = type;
    this.skip = length > 4 ? length - 4 : 0;
    const candidate = this.mayBeCandidate(type);
    this.skipGateOnce = false;
    if (candidate) this.candidateAt = this.messageAt;
    else this.count(type);
    const wanted =
      type === FrontendMessage.Query ||
      type === FrontendMessage.Parse ||
      type === FrontendMessage.Close ||
      candidate;
    if (!wanted) return;
    if (this.skip === 0) {
      // An empty body is malformed: what the server makes of it is not followed, nor offered to the gate.
      this.passCandidate();
      if (type !== FrontendMessage.Query) this.events.onUntracked?.();
      return;
    }
    const limit = type === FrontendMessage.Parse ? MAX_KEPT_PARSE : MAX_INSPECTED;
    if (this.skip <= limit) {
      this.capture = [];
    } else {
      this.passCandidate();
      if (type === FrontendMessage.Bind) return;
      if (type !== FrontendMessage.Close) this.events.onStatementText?.(null);
      if (type !== FrontendMessage.Query) this.events.onUntracked?.();
    }
  }

  /** What a message means for the request count and the batch, once it is known to be relayed. */
  private count(type: number): void {
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
  }

  /** The gate is not asked about the current message after all (too large, or malformed): relay it. */
  private passCandidate(): void {
    if (this.candidateAt === NOWHERE) return;
    this.candidateAt = NOWHERE;
    this.count(this.type);
  }

  /** Asks the gate about the current message, whose body is `buf[start, end)`; true if it takes it. */
  private gateTakes(buf: Buffer, start: number, end: number, query: string | undefined): boolean {
    const gate = this.gate!;
    if (this.type === FrontendMessage.Query) return gate.wantsText(query!);
    const nameEnd = buf.indexOf(0, start);
    if (nameEnd < 0 || nameEnd >= end) return false;
    const textEnd = buf.indexOf(0, nameEnd + 1);
    if (textEnd < 0 || textEnd >= end) return false;
    if (this.type === FrontendMessage.Parse)
      return gate.wantsText(buf.toString('utf8', nameEnd + 1, textEnd));
    // Bind: portal name, then statement name.
    return gate.wantsBind(buf.toString('utf8', nameEnd + 1, textEnd));
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
    const query =
      this.type === FrontendMessage.Query ? buf.toString('utf8', start, Math.max(start, end - 1)) : undefined;
    if (this.candidateAt !== NOWHERE) {
      const at = this.candidateAt;
      this.candidateAt = NOWHERE;
      if (this.gateTakes(buf, start, end, query)) {
        this.interceptAt = at;
        return;
      }
      this.count(this.type);
      if (this.type === FrontendMessage.Bind) return;
    }
    if (query !== undefined) {
      this.events.onStatementText?.(query);
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
