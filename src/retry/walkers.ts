/**
 * The retry layer's own reading of both streams, by message headers (pure over bytes; chunks may split
 * anything anywhere). It needs less than the relay's scanners and never shares their state: the relay
 * scans what the client finally gets, the retry layer also what it throws away.
 *
 * - RequestWalker (client -> DSQL): where each request ends (after a Query, Sync or FunctionCall), and
 *   whether it has a Flush (the client may then wait for answers before its Sync: the answer cannot be
 *   held back) or names a prepared statement (Parse with a name: its name, to Close it before a re-send).
 * - AnswerWalker (DSQL -> client): where each ReadyForQuery ends and its status, the SQLSTATE of each
 *   ErrorResponse, and whether a COPY started.
 */
import { BackendMessage, FrontendMessage } from '../protocol/constants.js';

/** Bytes of a message body kept to read from it (ErrorResponse fields, Parse names). */
const KEEP = 16 * 1024;

abstract class Walker {
  private skip = 0;
  private readonly header = Buffer.alloc(5);
  private headerFilled = 0;
  /** The current message's type and the first bytes of its body when it is one to read. */
  protected type = 0;
  private keep: Buffer[] | undefined;
  private kept = 0;
  private keepLimit = 0;

  /** Walks a chunk; `onEnd(offset)` after each complete message (offset just past it). */
  protected walk(chunk: Buffer, onEnd: (end: number) => void): void {
    let pos = 0;
    const end = chunk.length;
    while (pos < end) {
      if (this.headerFilled < 5) {
        const n = Math.min(5 - this.headerFilled, end - pos);
        chunk.copy(this.header, this.headerFilled, pos, pos + n);
        this.headerFilled += n;
        pos += n;
        if (this.headerFilled < 5) break;
        this.type = this.header[0]!;
        const length = this.header.readInt32BE(1);
        this.skip = length > 4 ? length - 4 : 0;
        this.keepLimit = this.wants(this.type) ? Math.min(this.skip, KEEP) : 0;
        this.keep = this.keepLimit > 0 ? [] : undefined;
        this.kept = 0;
      }
      const n = Math.min(this.skip, end - pos);
      if (this.keep && this.kept < this.keepLimit) {
        const take = Math.min(n, this.keepLimit - this.kept);
        this.keep.push(chunk.subarray(pos, pos + take));
        this.kept += take;
      }
      this.skip -= n;
      pos += n;
      if (this.skip === 0) {
        this.headerFilled = 0;
        const body = this.keep ? Buffer.concat(this.keep) : undefined;
        this.keep = undefined;
        this.message(this.type, body);
        onEnd(pos);
      }
    }
  }

  /** Whether the body of a message of this type is read (message() gets its first bytes). */
  protected abstract wants(type: number): boolean;
  protected abstract message(type: number, body: Buffer | undefined): void;

  /** True between two messages. */
  atBoundary(): boolean {
    return this.headerFilled === 0 && this.skip === 0;
  }
}

export interface RequestShape {
  /** The request has a Flush: its answers must flow as they come. */
  flush: boolean;
  /** Names of the prepared statements its Parse messages create. */
  parsedNames: string[];
  /** The request carries COPY data (CopyData/CopyDone/CopyFail from the client). */
  copy: boolean;
}

export class RequestWalker extends Walker {
  private shape: RequestShape = freshShape();

  /**
   * Offsets in `chunk` just past each request's last message, in order; the shape of each completed
   * request comes back through `onRequest`.
   */
  requestEnds(chunk: Buffer, onRequest: (end: number, shape: RequestShape) => void): void {
    this.walk(chunk, (end) => {
      const t = this.type;
      if (t === FrontendMessage.Query || t === FrontendMessage.Sync || t === FrontendMessage.FunctionCall) {
        const shape = this.shape;
        this.shape = freshShape();
        onRequest(end, shape);
      }
    });
  }

  /** The shape of the request so far (not yet complete). */
  get current(): RequestShape {
    return this.shape;
  }

  protected wants(type: number): boolean {
    return type === FrontendMessage.Parse;
  }

  protected message(type: number, body: Buffer | undefined): void {
    if (type === FrontendMessage.Flush) this.shape.flush = true;
    else if (
      type === FrontendMessage.CopyData ||
      type === FrontendMessage.CopyDone ||
      type === FrontendMessage.CopyFail
    )
      this.shape.copy = true;
    else if (type === FrontendMessage.Parse && body) {
      const nul = body.indexOf(0);
      if (nul > 0) this.shape.parsedNames.push(body.toString('utf8', 0, nul));
    }
  }
}

function freshShape(): RequestShape {
  return { flush: false, parsedNames: [], copy: false };
}

export interface AnswerEvents {
  /** A ReadyForQuery ended at `end` in the chunk, with this status. */
  ready(end: number, status: string): void;
  /** An ErrorResponse with this SQLSTATE (undefined if unreadable). */
  error(sqlstate: string | undefined): void;
  /** CopyInResponse, CopyOutResponse or CopyBothResponse; `inbound` when DSQL now waits for the client's data. */
  copy(inbound: boolean): void;
}

export class AnswerWalker extends Walker {
  private events: AnswerEvents | undefined;
  private lastStatus = 'I';

  walkAnswer(chunk: Buffer, events: AnswerEvents): void {
    this.events = events;
    this.walk(chunk, (end) => {
      if (this.type === BackendMessage.ReadyForQuery) events.ready(end, this.lastStatus);
    });
    this.events = undefined;
  }

  protected wants(type: number): boolean {
    return type === BackendMessage.ErrorResponse || type === BackendMessage.ReadyForQuery;
  }

  protected message(type: number, body: Buffer | undefined): void {
    if (type === BackendMessage.ReadyForQuery)
      this.lastStatus = body && body.length > 0 ? String.fromCharCode(body[0]!) : 'I';
    else if (type === BackendMessage.ErrorResponse) this.events?.error(body ? sqlstateIn(body) : undefined);
    else if (
      type === BackendMessage.CopyInResponse ||
      type === BackendMessage.CopyOutResponse ||
      type === BackendMessage.CopyBothResponse
    )
      this.events?.copy(type !== BackendMessage.CopyOutResponse);
  }
}

/** The 'C' field of an ErrorResponse body. */
export function sqlstateIn(body: Buffer): string | undefined {
  let pos = 0;
  while (pos < body.length && body[pos] !== 0) {
    const end = body.indexOf(0, pos + 1);
    if (end < 0) return undefined;
    if (body[pos] === 0x43) return body.toString('latin1', pos + 1, end);
    pos = end + 1;
  }
  return undefined;
}
