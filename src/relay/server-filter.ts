/**
 * A message-level filter on the server-to-client byte stream, switched on only when a session needs
 * it (client_min_messages above notice, or a statement-timeout cancel whose 57014 must say "due to
 * statement timeout"). The relay's BackendScanner still scans every chunk (counts, status); the filter
 * only decides which bytes the client gets.
 *
 * Like the scanners it reads headers only: every message other than a NoticeResponse or ErrorResponse
 * it must look into passes as part of a run of the input chunk (a subarray, or the chunk itself when
 * nothing is dropped or changed). A NoticeResponse or ErrorResponse it must look into is read in place
 * when the chunk holds all of it; only one that a chunk boundary splits is withheld, from its first
 * byte, and copied until it is complete.
 *
 * Whatever it cannot make sense of (lengths below 4, unterminated fields, an unknown severity) passes
 * on unchanged: the client sees what the server sent, as it would without the filter.
 */
import { BackendMessage } from '../protocol/constants.js';
import type { HeaderScanner } from './header-scanner.js';

export interface ServerFilterOptions {
  /**
   * NoticeResponses whose severity ranks below this are dropped (PostgreSQL's client_min_messages order:
   * debug5..debug1 < log < notice < warning < error; INFO is always sent). 'notice' drops nothing DSQL sends by default.
   */
  minLevel: string;
  /** When true, an ErrorResponse with SQLSTATE 57014 gets the message "canceling statement due to statement timeout". */
  rewriteCancel: boolean;
}

/**
 * PostgreSQL's elevels (src/include/utils/elog.h). For the client, should_output_to_client() in
 * elog.c sends a message when `elevel >= client_min_messages || elevel == INFO`: a plain numeric
 * comparison, so LOG (15) ranks between DEBUG1 (14) and NOTICE (18), unlike for the server log.
 */
const DEBUG1 = 14;
const LOG = 15;
const INFO = 17;
const NOTICE = 18;
const WARNING = 19;
const ERROR = 21;

/** client_min_messages values (guc_tables.c client_message_level_options, hidden aliases included). */
const MIN_LEVELS: ReadonlyMap<string, number> = new Map([
  ['debug5', 10],
  ['debug4', 11],
  ['debug3', 12],
  ['debug2', 13],
  ['debug', 13],
  ['debug1', DEBUG1],
  ['log', LOG],
  ['info', INFO],
  ['notice', NOTICE],
  ['warning', WARNING],
  ['error', ERROR],
]);

/**
 * The non-localised severities a NoticeResponse can carry ('V' field). All five DEBUG levels read
 * "DEBUG" on the wire, so the filter cannot tell them apart; it ranks them as DEBUG1, the highest, so
 * that a debug message is dropped only when every debug level would be (never one PostgreSQL would send).
 */
const SEVERITIES: ReadonlyMap<string, number> = new Map([
  ['DEBUG', DEBUG1],
  ['LOG', LOG],
  ['INFO', INFO],
  ['NOTICE', NOTICE],
  ['WARNING', WARNING],
  ['ERROR', ERROR],
]);

/**
 * NoticeResponses and ErrorResponses with bodies over this are passed on raw, uninspected: sane ones
 * are a few hundred bytes, and withholding without a bound would let a server make the proxy buffer
 * without limit. Decided from the length field alone, so the outcome is the same whatever the chunking.
 */
export const MAX_INSPECTED = 64 * 1024;

/** PostgreSQL's text for a statement cancelled by statement_timeout (postgres.c ProcessInterrupts). */
export const STATEMENT_TIMEOUT_MESSAGE = 'canceling statement due to statement timeout';
const QUERY_CANCELED = '57014';

const EMPTY = Buffer.alloc(0);

/** Where a filter takes over a stream another reader (a HeaderScanner) has followed so far. */
export interface FilterStartState {
  rawRemaining: number;
  partialHeader: Buffer | undefined;
}

/** The state a filter switched on after `scanner` has scanned the bytes already passed needs. */
export function filterStartState(scanner: HeaderScanner): FilterStartState {
  const header = scanner.partialHeader();
  return { rawRemaining: scanner.remainingBody(), partialHeader: header.length > 0 ? header : undefined };
}

/** The rank for a client_min_messages value; 0 (drops nothing) for one PostgreSQL would not accept. */
export function minLevelRank(level: string): number {
  return MIN_LEVELS.get(level.toLowerCase()) ?? 0;
}

/** A field of an ErrorResponse or NoticeResponse body: its type byte and value `[start, end)` (NUL at end). */
interface Field {
  type: number;
  start: number;
  end: number;
}

/**
 * The fields of a body, or undefined when it is not a well-formed list: each field a type byte and a
 * NUL-terminated string, the list ended by one NUL that is the body's last byte.
 */
function parseFields(body: Buffer): Field[] | undefined {
  const fields: Field[] = [];
  let pos = 0;
  while (pos < body.length) {
    const type = body[pos]!;
    if (type === 0) return pos === body.length - 1 ? fields : undefined;
    const nul = body.indexOf(0, pos + 1);
    if (nul === -1) return undefined;
    fields.push({ type, start: pos + 1, end: nul });
    pos = nul + 1;
  }
  return undefined;
}

const FIELD_SEVERITY = 0x53; // 'S', localised
const FIELD_SEVERITY_V = 0x56; // 'V', non-localised (PostgreSQL 9.6 and later)
const FIELD_CODE = 0x43; // 'C'
const FIELD_MESSAGE = 0x4d; // 'M'

/**
 * The elevel of a NoticeResponse body from its 'V' field, or its 'S' field when it has no 'V' (older
 * servers); undefined when the body is malformed or the severity unknown (a localised 'S', say).
 */
export function noticeRank(body: Buffer): number | undefined {
  const fields = parseFields(body);
  if (!fields) return undefined;
  const field =
    fields.find((f) => f.type === FIELD_SEVERITY_V) ?? fields.find((f) => f.type === FIELD_SEVERITY);
  if (!field) return undefined;
  return SEVERITIES.get(body.toString('latin1', field.start, field.end));
}

/** Whether PostgreSQL would send a notice of this rank to a client with this client_min_messages rank. */
function keepNotice(body: Buffer, minRank: number): boolean {
  const rank = noticeRank(body);
  return rank === undefined || rank === INFO || rank >= minRank;
}

/**
 * The whole message (header included) of an ErrorResponse body whose SQLSTATE is 57014, with each 'M'
 * field's text replaced by PostgreSQL's statement-timeout text and every other field byte for byte as
 * it was; undefined when nothing changes (another SQLSTATE, a malformed body, no 'M' field, or the
 * text already that).
 */
export function rewriteCancelBody(body: Buffer): Buffer | undefined {
  const fields = parseFields(body);
  if (!fields) return undefined;
  const code = fields.find((f) => f.type === FIELD_CODE);
  if (!code || body.toString('latin1', code.start, code.end) !== QUERY_CANCELED) return undefined;
  const text = Buffer.from(STATEMENT_TIMEOUT_MESSAGE);
  const messages = fields.filter(
    (f) => f.type === FIELD_MESSAGE && !text.equals(body.subarray(f.start, f.end)),
  );
  if (messages.length === 0) return undefined;
  const parts: Buffer[] = [Buffer.alloc(5)];
  let from = 0;
  for (const m of messages) {
    parts.push(body.subarray(from, m.start), text);
    from = m.end;
  }
  parts.push(body.subarray(from));
  const out = Buffer.concat(parts);
  out[0] = BackendMessage.ErrorResponse;
  out.writeInt32BE(out.length - 1, 1);
  return out;
}

export class ServerFilter {
  /** client_min_messages as an elevel: notices ranked below it are dropped (INFO never). */
  private minRank = NOTICE;
  private rewrite = false;
  /** Bytes of the current message still to pass on unread. */
  private raw = 0;
  /** A header a chunk boundary split: its bytes so far, and whether they are withheld or passed on. */
  private header: Buffer | undefined;
  private headerFilled = 0;
  private headerHeld = false;
  /** The options' rank when the split header began: a message is judged by the options at its first byte. */
  private headerMinRank = NOTICE;
  /** A NoticeResponse or ErrorResponse (header included) withheld until all of it has arrived. */
  private held: Buffer | undefined;
  private heldFilled = 0;
  private heldMinRank = NOTICE;
  /** Pieces of the current `process()` output, and where its current pass-through run began. */
  private readonly pieces: Buffer[] = [];
  private runStart = 0;

  /**
   * `rawRemaining`: bytes of a message already partly passed to the client before the filter started
   * (passed on raw); `partialHeader`: header bytes (1-4) of a message whose header a chunk split, already
   * passed on (that message then passes raw too). At most one of them is set, as in a scanner's state
   * (`filterStartState()`); a `partialHeader` of 0 or 5+ bytes is ignored.
   */
  constructor(opts: ServerFilterOptions, rawRemaining: number, partialHeader?: Buffer) {
    this.options = opts;
    this.raw = rawRemaining > 0 ? Math.floor(rawRemaining) : 0;
    if (partialHeader && partialHeader.length > 0 && partialHeader.length < 5) {
      this.header = Buffer.alloc(5);
      partialHeader.copy(this.header);
      this.headerFilled = partialHeader.length;
      this.headerHeld = false;
    }
  }

  /** Takes effect from the next message: one already begun is judged by the options at its first byte. */
  set options(opts: ServerFilterOptions) {
    this.minRank = minLevelRank(opts.minLevel);
    this.rewrite = opts.rewriteCancel;
  }

  /** The bytes of `chunk` the client gets, in order (may be empty while a notice is incomplete). */
  process(chunk: Buffer): Buffer {
    const end = chunk.length;
    let pos = 0;
    this.runStart = 0;
    while (pos < end) {
      if (this.raw > 0) {
        const n = Math.min(this.raw, end - pos);
        this.raw -= n;
        pos += n;
      } else if (this.held) {
        pos = this.fillHeld(chunk, pos, end);
      } else if (this.headerFilled === 0 && end - pos >= 5) {
        pos = this.wholeHeader(chunk, pos, end);
      } else {
        pos = this.headerPiece(chunk, pos, end);
      }
    }
    this.flush(chunk, end);
    const out =
      this.pieces.length === 1
        ? this.pieces[0]!
        : this.pieces.length === 0
          ? EMPTY
          : Buffer.concat(this.pieces);
    this.pieces.length = 0;
    return out;
  }

  /** True when no bytes are withheld (the client's stream is between messages as far as the filter goes). */
  get empty(): boolean {
    return this.held === undefined && !(this.headerFilled > 0 && this.headerHeld);
  }

  /** Whether a message of this type must be looked into under the current options. */
  private inspects(type: number): boolean {
    // Nothing ranks below DEBUG1 once all debug levels read alike, so a lower minimum drops nothing.
    return (
      (type === BackendMessage.NoticeResponse && this.minRank > DEBUG1) ||
      (type === BackendMessage.ErrorResponse && this.rewrite)
    );
  }

  /**
   * What becomes of an inspected message: undefined to pass it as it is, an empty Buffer to drop it,
   * or its replacement. An ErrorResponse is inspected only with rewriteCancel on.
   */
  private judge(type: number, body: Buffer, minRank: number): Buffer | undefined {
    if (type === BackendMessage.NoticeResponse) return keepNotice(body, minRank) ? undefined : EMPTY;
    return rewriteCancelBody(body);
  }

  /** A header whole inside the chunk at `pos`: the fast path. Returns the position after what it took. */
  private wholeHeader(chunk: Buffer, pos: number, end: number): number {
    const type = chunk[pos]!;
    const length = chunk.readInt32BE(pos + 1);
    // A length below 4 cannot come from a sane server: an empty body, as BackendScanner reads it.
    const body = length > 4 ? length - 4 : 0;
    if (body === 0 || body > MAX_INSPECTED || !this.inspects(type)) {
      this.raw = body;
      return pos + 5;
    }
    const total = 5 + body;
    if (end - pos >= total) {
      const result = this.judge(type, chunk.subarray(pos + 5, pos + total), this.minRank);
      if (result !== undefined) this.replace(chunk, pos, pos + total, result);
      return pos + total;
    }
    this.flush(chunk, pos);
    this.held = Buffer.allocUnsafe(total);
    this.heldFilled = chunk.copy(this.held, 0, pos, end);
    this.heldMinRank = this.minRank;
    this.runStart = end;
    return end;
  }

  /** Part of a header a chunk boundary splits (its start, middle or end). */
  private headerPiece(chunk: Buffer, pos: number, end: number): number {
    if (this.headerFilled === 0) {
      // The message starts here: whether it is withheld is decided now, by its type byte.
      this.headerHeld = this.inspects(chunk[pos]!);
      this.headerMinRank = this.minRank;
      if (this.headerHeld) this.flush(chunk, pos);
    }
    this.header ??= Buffer.alloc(5);
    const header = this.header;
    const taken = chunk.copy(header, this.headerFilled, pos, Math.min(end, pos + 5 - this.headerFilled));
    this.headerFilled += taken;
    const next = pos + taken;
    if (this.headerHeld) this.runStart = next;
    if (this.headerFilled < 5) return next;
    this.headerFilled = 0;
    const length = header.readInt32BE(1);
    const body = length > 4 ? length - 4 : 0;
    if (!this.headerHeld) {
      this.raw = body;
    } else if (body === 0 || body > MAX_INSPECTED) {
      this.pieces.push(Buffer.from(header)); // a copy: `header` is reused by the next split header
      this.raw = body;
    } else {
      this.held = Buffer.allocUnsafe(5 + body);
      header.copy(this.held);
      this.heldFilled = 5;
      this.heldMinRank = this.headerMinRank;
    }
    return next;
  }

  /** More bytes of a withheld message; once it is complete, it is judged. */
  private fillHeld(chunk: Buffer, pos: number, end: number): number {
    const held = this.held!;
    const taken = chunk.copy(held, this.heldFilled, pos, Math.min(end, pos + held.length - this.heldFilled));
    this.heldFilled += taken;
    const next = pos + taken;
    this.runStart = next;
    if (this.heldFilled < held.length) return next;
    this.held = undefined;
    const result = this.judge(held[0]!, held.subarray(5), this.heldMinRank);
    if (result === undefined) this.pieces.push(held);
    else if (result.length > 0) this.pieces.push(result);
    return next;
  }

  /** Ends the run before `from`, puts `result` (empty to drop) in place of `[from, to)`, and starts a run after it. */
  private replace(chunk: Buffer, from: number, to: number, result: Buffer): void {
    this.flush(chunk, from);
    if (result.length > 0) this.pieces.push(result);
    this.runStart = to;
  }

  /** Adds the run `[runStart, upTo)` of the chunk to the output: the chunk itself when that is all of it. */
  private flush(chunk: Buffer, upTo: number): void {
    if (upTo <= this.runStart) return;
    this.pieces.push(
      this.runStart === 0 && upTo === chunk.length ? chunk : chunk.subarray(this.runStart, upTo),
    );
  }
}
