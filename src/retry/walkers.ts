/**
 * The retry layer's own reading of both streams, by message headers (pure over bytes; chunks may split
 * anything anywhere). It needs less than the relay's scanners and never shares their state: the relay
 * scans what the client finally gets, the retry layer also what it throws away.
 *
 * - RequestWalker (client -> DSQL): where each request ends (after a Query, Sync or FunctionCall), and
 *   whether it has a Flush (the client may then wait for answers before its Sync: the answer cannot be
 *   held back), COPY data, or names a prepared statement (Parse with a name: its name, to Close it
 *   before a re-send).
 * - AnswerWalker (DSQL -> client): where each ReadyForQuery ends and its status, the SQLSTATE of each
 *   ErrorResponse, and whether a COPY started.
 *
 * They run on every chunk of a session with retry on, so a header whole inside a chunk is read in
 * place, bodies are looked at only for the few message types that matter, and events go to a sink
 * object set by the caller (no closure per chunk).
 */
import { BackendMessage, ErrorField, FrontendMessage } from '../protocol/constants.js';
import { errorField } from '../protocol/from-server.js';

/** Bytes of a message body kept to read from it (ErrorResponse fields, Parse names). */
const KEEP = 16 * 1024;

abstract class Walker {
  private skip = 0;
  private header: Buffer | undefined;
  private headerFilled = 0;
  /** The current message's type. */
  protected type = 0;
  /** Pieces of the current message's body being kept (only for wanted types), or undefined. */
  private keep: Buffer[] | undefined;
  private kept = 0;
  private keepLimit = 0;

  /** Walks a chunk; message() and ended(offset just past the message) for each complete message. */
  protected walk(chunk: Buffer): void {
    let pos = 0;
    const end = chunk.length;
    while (pos < end) {
      if (this.skip === 0 && this.headerFilled === 0 && end - pos >= 5) {
        const type = chunk[pos]!;
        const length = chunk.readInt32BE(pos + 1);
        pos += 5;
        const size = length > 4 ? length - 4 : 0;
        if (end - pos >= size) {
          // The whole message is in the chunk (the usual case): read in place.
          this.type = type;
          if (this.wants(type)) this.message(type, chunk, pos, pos + Math.min(size, KEEP));
          else this.message(type, undefined, 0, 0);
          pos += size;
          this.ended(pos);
          continue;
        }
        this.begin(type, size);
      } else if (this.skip === 0 && this.headerFilled < 5) {
        this.header ??= Buffer.alloc(5);
        const n = Math.min(5 - this.headerFilled, end - pos);
        chunk.copy(this.header, this.headerFilled, pos, pos + n);
        this.headerFilled += n;
        pos += n;
        if (this.headerFilled < 5) break;
        this.headerFilled = 0;
        const length = this.header.readInt32BE(1);
        this.begin(this.header[0]!, length > 4 ? length - 4 : 0);
        if (this.skip > 0) continue;
        this.finish(pos);
        continue;
      }
      const n = Math.min(this.skip, end - pos);
      if (this.keep && this.kept < this.keepLimit) {
        const take = Math.min(n, this.keepLimit - this.kept);
        this.keep.push(chunk.subarray(pos, pos + take));
        this.kept += take;
      }
      this.skip -= n;
      pos += n;
      if (this.skip === 0) this.finish(pos);
    }
  }

  private begin(type: number, size: number): void {
    this.type = type;
    this.skip = size;
    this.keepLimit = this.wants(type) ? Math.min(size, KEEP) : 0;
    this.keep = this.keepLimit > 0 || this.wants(type) ? [] : undefined;
    this.kept = 0;
  }

  private finish(pos: number): void {
    const keep = this.keep;
    this.keep = undefined;
    const body = keep === undefined ? undefined : keep.length === 1 ? keep[0] : Buffer.concat(keep);
    this.message(this.type, body, 0, body?.length ?? 0);
    this.ended(pos);
  }

  /** Whether the body of a message of this type is read (message() gets its first bytes). */
  protected abstract wants(type: number): boolean;
  /** A complete message; a wanted one's body (its first bytes) is `buf[start, end)`. */
  protected abstract message(type: number, buf: Buffer | undefined, start: number, end: number): void;
  protected abstract ended(pos: number): void;

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

export interface RequestSink {
  /** A request ended at `end` in the chunk being walked, with this shape. */
  requestEnd(end: number, shape: RequestShape): void;
}

const PLAIN: RequestShape = Object.freeze({ flush: false, parsedNames: [], copy: false }) as RequestShape;

export class RequestWalker extends Walker {
  /** The shape of the request so far; PLAIN (shared, never written) until something sets a flag. */
  private shape: RequestShape = PLAIN;
  private sink: RequestSink | undefined;

  /** Walks a chunk; `sink.requestEnd` (or `sink` itself) for each request that ends in it. */
  requestEnds(chunk: Buffer, sink: RequestSink | RequestSink['requestEnd']): void {
    if (typeof sink === 'function') {
      this.requestEnds(chunk, { requestEnd: sink });
      return;
    }
    this.sink = sink;
    this.walk(chunk);
    this.sink = undefined;
  }

  /** The shape of the request so far (not yet complete). */
  get current(): RequestShape {
    return this.shape;
  }

  protected wants(type: number): boolean {
    return type === FrontendMessage.Parse;
  }

  private own(): RequestShape {
    if (this.shape === PLAIN) this.shape = { flush: false, parsedNames: [], copy: false };
    return this.shape;
  }

  protected message(type: number, buf: Buffer | undefined, start: number, end: number): void {
    if (type === FrontendMessage.Flush) this.own().flush = true;
    else if (
      type === FrontendMessage.CopyData ||
      type === FrontendMessage.CopyDone ||
      type === FrontendMessage.CopyFail
    )
      this.own().copy = true;
    else if (type === FrontendMessage.Parse && buf && end > start && buf[start] !== 0) {
      const nul = buf.indexOf(0, start);
      if (nul > start && nul < end) this.own().parsedNames.push(buf.toString('utf8', start, nul));
    }
  }

  protected ended(pos: number): void {
    const t = this.type;
    if (t === FrontendMessage.Query || t === FrontendMessage.Sync || t === FrontendMessage.FunctionCall) {
      const shape = this.shape;
      this.shape = PLAIN;
      this.sink?.requestEnd(pos, shape);
    }
  }
}

export interface AnswerEvents {
  /** A ReadyForQuery ended at `end` in the chunk, with this status. */
  ready(end: number, status: string): void;
  /** An ErrorResponse with this SQLSTATE (undefined if unreadable). */
  error(sqlstate: string | undefined): void;
  /** CopyInResponse, CopyOutResponse or CopyBothResponse; `inbound` when DSQL now waits for the client's data. */
  copy(inbound: boolean): void;
}

/** ReadyForQuery status bytes as strings, without a string made per message. */
const STATUS: Record<number, string> = { 73: 'I', 84: 'T', 69: 'E' };

export class AnswerWalker extends Walker {
  private events: AnswerEvents | undefined;
  private lastStatus = 'I';

  walkAnswer(chunk: Buffer, events: AnswerEvents): void {
    this.events = events;
    this.walk(chunk);
    this.events = undefined;
  }

  protected wants(type: number): boolean {
    return type === BackendMessage.ErrorResponse || type === BackendMessage.ReadyForQuery;
  }

  protected message(type: number, buf: Buffer | undefined, start: number, end: number): void {
    if (type === BackendMessage.ReadyForQuery)
      this.lastStatus = buf && end > start ? (STATUS[buf[start]!] ?? 'I') : 'I';
    else if (type === BackendMessage.ErrorResponse)
      this.events?.error(buf ? sqlstateIn(buf.subarray(start, end)) : undefined);
    else if (
      type === BackendMessage.CopyInResponse ||
      type === BackendMessage.CopyOutResponse ||
      type === BackendMessage.CopyBothResponse
    )
      this.events?.copy(type !== BackendMessage.CopyOutResponse);
  }

  protected ended(pos: number): void {
    if (this.type === BackendMessage.ReadyForQuery) this.events?.ready(pos, this.lastStatus);
  }
}

/** The 'C' field (SQLSTATE) of an ErrorResponse body. */
export function sqlstateIn(body: Buffer): string | undefined {
  return errorField(body, ErrorField.Code);
}
