/**
 * The local endpoint behind the door: a message-level relay between an authenticated client and the
 * embedded PostgreSQL that makes the session behave like Aurora DSQL (docs/dsql.md).
 *
 * `BehindDoor` is pure: it takes whole messages from either side and returns the bytes to send on,
 * so it is tested without sockets. Its design:
 * - A refused statement is not answered by us: its text is replaced by a statement that makes
 *   PostgreSQL raise DSQL's SQLSTATE and message (door-sql.ts). The error's ReadyForQuery status,
 *   an aborted transaction and the fate of a multi-statement Query's other statements (earlier ones
 *   ran, the implicit transaction rolls back, later ones are skipped) are then exactly a server's.
 *   The PL/pgSQL context field (`W`) is stripped from exactly those errors.
 * - A refused Parse: DSQL refuses at Parse, so PostgreSQL gets `Parse(unnamed, raise) + Bind +
 *   Execute` instead; their ParseComplete/BindComplete are swallowed, and the error arrives where the
 *   client expects ParseComplete; PostgreSQL then skips to Sync as for any failed Parse.
 * - Limits: after a write, a check runs in the same transaction (rows changed, from
 *   pg_stat_xact_user_tables; bytes, counted here from what the client sent), so a failing check
 *   rolls the write back. The write's CommandComplete is held until the check has answered.
 * - Conflicts: PostgreSQL's 40001 and 40P01 come out with DSQL's OC000 text.
 *
 * Every message PostgreSQL will answer gets a slot in a queue, in order, saying which answers the
 * client must see; an error drops the slots PostgreSQL skips (up to the next Sync).
 */
import type { Duplex } from 'node:stream';
import { BackendMessage, CloseTarget, ErrorField, FrontendMessage } from '../protocol/constants.js';
import { FrameReader } from '../protocol/frame-reader.js';
import { cstring, int32, typedMessage } from '../protocol/message-writer.js';
import {
  ageLimitMessage,
  editedText,
  MSG_CONFLICT_OC000,
  raiseStatement,
  rowCheckStatement,
  sizeLimitMessage,
} from './door-sql.js';
import { classify, type Refusal, type StatementVerdict } from './rules/classify.js';

export interface DoorLimits {
  /** Rows changed per transaction (DSQL: 3,000). */
  transactionRows: number;
  /** Bytes of changed data per transaction (DSQL: 10 MiB), approximated by the bytes the client sent. */
  transactionBytes: number;
  /** Transaction age (DSQL: 5 minutes). */
  transactionMs: number;
}

export const DSQL_LIMITS: DoorLimits = {
  transactionRows: 3000,
  transactionBytes: 10 * 1024 * 1024,
  transactionMs: 5 * 60_000,
};

export interface BehindDoorOptions {
  limits: DoorLimits;
  /** ARN of the identity that signed the session's token (`sys.iam_session_user()`). */
  arn: string;
  now: () => number;
  /** Told about each refusal and limit the endpoint raises (for the endpoint's records). */
  onRefusal?: (refusal: Refusal) => void;
}

/** The server's answers the client must not see, or must see changed. */
type Role =
  | 'client' // the client's own message: answers pass
  | 'swallow' // ours: its completion is dropped
  | 'raise' // ours, raising a refusal: its error passes with W stripped
  | 'check'; // ours, a limit check after a write: its completion is dropped, its error passes

interface Slot {
  /** The frontend message type that PostgreSQL answers. */
  msg: number;
  role: Role;
  /** Simple Query: one role per statement PostgreSQL will run, in order. */
  units?: Role[];
  /** Our check statement's Parse: what its answer (or its skipping) means for the next checks. */
  checkParse?: boolean;
  /** A client's write whose limit check follows: hold its CommandComplete until the check answers. */
  hold?: boolean;
}

const CHECK_STATEMENT = 'dsql_endpoint_limit_check';
const CHECK_PORTAL = 'dsql_endpoint_limit_check';

interface StatementInfo {
  writes: boolean;
  keyword: string;
  textBytes: number;
}

const BEGIN_KEYWORDS = new Set(['begin', 'start']);
const END_KEYWORDS = new Set(['commit', 'end', 'rollback', 'abort']);
const ROLLBACK_KEYWORDS = new Set(['rollback', 'abort']);

function frame(type: number, body: Buffer): Buffer {
  const out = Buffer.allocUnsafe(5 + body.length);
  out[0] = type;
  out.writeInt32BE(body.length + 4, 1);
  body.copy(out, 5);
  return out;
}

/** Reads NUL-terminated strings from a message body. */
class BodyReader {
  at = 0;
  constructor(private readonly body: Buffer) {}
  cstring(): string {
    const end = this.body.indexOf(0, this.at);
    if (end < 0) throw new RangeError('unterminated string');
    const s = this.body.toString('utf8', this.at, end);
    this.at = end + 1;
    return s;
  }
}

export function encodeParse(name: string, sql: string, paramTypes: Buffer = int16(0)): Buffer {
  return typedMessage(FrontendMessage.Parse, cstring(name), cstring(sql), paramTypes);
}

/** Bind of a statement with no parameters and default (text) result formats. */
export function encodeBind(portal: string, statement: string): Buffer {
  return typedMessage(
    FrontendMessage.Bind,
    cstring(portal),
    cstring(statement),
    int16(0),
    int16(0),
    int16(0),
  );
}

export function encodeExecute(portal: string): Buffer {
  return typedMessage(FrontendMessage.Execute, cstring(portal), int32(0));
}

function encodeClosePortal(portal: string): Buffer {
  return typedMessage(FrontendMessage.Close, Buffer.from([CloseTarget.Portal]), cstring(portal));
}

function encodeCloseStatement(name: string): Buffer {
  return typedMessage(FrontendMessage.Close, Buffer.from([CloseTarget.Statement]), cstring(name));
}

function int16(n: number): Buffer {
  const b = Buffer.allocUnsafe(2);
  b.writeInt16BE(n);
  return b;
}

/** ErrorResponse fields, in order. */
export function decodeFields(body: Buffer): Array<[number, string]> {
  const out: Array<[number, string]> = [];
  let at = 0;
  while (at < body.length && body[at] !== 0) {
    const code = body[at]!;
    const end = body.indexOf(0, at + 1);
    if (end < 0) break;
    out.push([code, body.toString('utf8', at + 1, end)]);
    at = end + 1;
  }
  return out;
}

export function encodeFields(fields: Array<[number, string]>): Buffer {
  const parts: Buffer[] = [];
  for (const [code, value] of fields) parts.push(Buffer.from([code]), cstring(value));
  parts.push(Buffer.from([0]));
  return Buffer.concat(parts);
}

export class BehindDoor {
  private readonly slots: Slot[] = [{ msg: 0, role: 'client' }]; // the startup: answered up to ReadyForQuery
  /** The write's CommandComplete (and what followed it), held until its limit check answers. */
  private held: Buffer[] | null = null;
  private readonly statements = new Map<string, StatementInfo>();
  private readonly portals = new Map<string, StatementInfo & { bytes: number }>();
  private checkState: 'none' | 'sent' | 'ready' = 'none';
  /** Parses of the check statement sent and neither answered nor skipped yet. */
  private checkParsesInFlight = 0;
  /** Whether the client is in an explicit transaction block, as far as what it sent says. */
  private inBlock = false;
  private txStartedAt = 0;
  private txBytes = 0;
  /** A CopyFail we sent for the bytes limit: its error comes out as DSQL's size error. */
  private copyFailSent = false;
  private readonly check: string;

  constructor(private readonly opts: BehindDoorOptions) {
    this.check = rowCheckStatement(opts.limits.transactionRows);
  }

  /** A whole client message in; the bytes to send to PostgreSQL out. */
  fromClient(type: number, body: Buffer): Buffer[] {
    try {
      switch (type) {
        case FrontendMessage.Query:
          return this.query(body);
        case FrontendMessage.Parse:
          return this.parse(body);
        case FrontendMessage.Bind:
          return this.bind(body);
        case FrontendMessage.Execute:
          return this.execute(body);
        case FrontendMessage.Sync:
          this.slots.push({ msg: type, role: 'client' });
          if (!this.inBlock) this.txBytes = 0;
          this.copyFailSent = false;
          return [frame(type, body)];
        case FrontendMessage.Describe:
        case FrontendMessage.FunctionCall: // answered up to ReadyForQuery, like a Query
          this.slots.push({ msg: type, role: 'client' });
          return [frame(type, body)];
        case FrontendMessage.Close:
          this.close(body);
          this.slots.push({ msg: type, role: 'client' });
          return [frame(type, body)];
        case FrontendMessage.CopyData:
          return this.copyData(body);
        default:
          return [frame(type, body)];
      }
    } catch {
      // A malformed message: PostgreSQL answers it as it would (a protocol violation).
      return [frame(type, body)];
    }
  }

  private refuse(refusal: Refusal): string {
    this.opts.onRefusal?.(refusal);
    return raiseStatement(refusal.sqlstate, refusal.message);
  }

  private ageExceeded(keyword: string): Refusal | undefined {
    if (!this.inBlock || ROLLBACK_KEYWORDS.has(keyword)) return undefined;
    if (this.opts.now() - this.txStartedAt <= this.opts.limits.transactionMs) return undefined;
    return { sqlstate: '54000', message: ageLimitMessage(this.opts.limits.transactionMs) };
  }

  private trackKeyword(keyword: string): void {
    if (BEGIN_KEYWORDS.has(keyword) && !this.inBlock) {
      this.inBlock = true;
      this.txStartedAt = this.opts.now();
      this.txBytes = 0;
    } else if (END_KEYWORDS.has(keyword)) {
      this.inBlock = false;
    }
  }

  private overBytes(): Refusal | undefined {
    if (this.txBytes <= this.opts.limits.transactionBytes) return undefined;
    return { sqlstate: '54000', message: sizeLimitMessage(this.opts.limits.transactionBytes) };
  }

  private query(body: Buffer): Buffer[] {
    const sql = new BodyReader(body).cstring();
    const verdicts = classify(sql);
    const units: Role[] = [];
    let out = '';
    let cursor = 0;
    for (const v of verdicts) {
      out += sql.slice(cursor, v.start);
      cursor = v.end;
      const age = units.length === 0 ? this.ageExceeded(v.keyword) : undefined;
      const refusal = v.refusal ?? age;
      if (refusal) {
        if (age && !v.refusal && (v.keyword === 'commit' || v.keyword === 'end')) {
          // DSQL's COMMIT of a too-old transaction fails and ends it: roll back, then raise.
          out += `ROLLBACK;\n${this.refuse(refusal)}`;
          units.push('swallow', 'raise');
          this.inBlock = false;
        } else {
          out += this.refuse(refusal);
          units.push('raise');
        }
        // PostgreSQL skips the rest after the error; the text stays, so it is parsed as a server would.
        break;
      }
      out += editedText(sql, v, this.opts.arn);
      units.push('client');
      this.trackKeyword(v.keyword);
      if (v.keyword === 'deallocate') this.checkState = 'none'; // DEALLOCATE ALL drops our check too
      if (v.writes) {
        this.txBytes += Buffer.byteLength(sql.slice(v.start, v.end));
        const over = this.overBytes();
        // After a newline: a trailing `--` comment in the statement cannot swallow the check.
        out += `\n;${over ? this.refuse(over) : this.check}`;
        units.push('check');
        if (over) break;
      }
    }
    out += sql.slice(cursor);
    if (!this.inBlock) this.txBytes = 0;
    this.copyFailSent = false;
    this.slots.push({ msg: FrontendMessage.Query, role: 'client', units });
    return [typedMessage(FrontendMessage.Query, cstring(out))];
  }

  private parse(body: Buffer): Buffer[] {
    const r = new BodyReader(body);
    const name = r.cstring();
    const sql = r.cstring();
    const paramTypes = body.subarray(r.at);
    const verdicts = classify(sql);
    const refused = verdicts.find((v) => v.refusal)?.refusal;
    if (refused) {
      this.statements.delete(name);
      this.statements.delete('');
      this.portals.delete('');
      return this.injectRaise(refused, 'raise');
    }
    this.statements.set(name, {
      writes: verdicts.some((v) => v.writes),
      keyword: verdicts[0]?.keyword ?? '',
      textBytes: Buffer.byteLength(sql),
    });
    this.slots.push({ msg: FrontendMessage.Parse, role: 'client' });
    if (verdicts.every((v) => v.edits.length === 0)) return [frame(FrontendMessage.Parse, body)];
    // Edits never add or renumber parameters, so the client's parameter types stay as sent.
    return [encodeParse(name, applyEdits(sql, verdicts, this.opts.arn), paramTypes)];
  }

  /** Parse + Bind + Execute of a raise on the unnamed statement: the client sees only the error. */
  private injectRaise(refusal: Refusal, role: 'raise' | 'check'): Buffer[] {
    this.slots.push(
      { msg: FrontendMessage.Parse, role: 'swallow' },
      { msg: FrontendMessage.Bind, role: 'swallow' },
      { msg: FrontendMessage.Execute, role },
    );
    return [encodeParse('', this.refuse(refusal)), encodeBind('', ''), encodeExecute('')];
  }

  private bind(body: Buffer): Buffer[] {
    const r = new BodyReader(body);
    const portal = r.cstring();
    const statement = r.cstring();
    const info = this.statements.get(statement) ?? { writes: false, keyword: '', textBytes: 0 };
    // The parameter values are most of a Bind: its whole size stands for them.
    this.portals.set(portal, { ...info, bytes: info.textBytes + body.length });
    this.slots.push({ msg: FrontendMessage.Bind, role: 'client' });
    return [frame(FrontendMessage.Bind, body)];
  }

  private execute(body: Buffer): Buffer[] {
    const portal = new BodyReader(body).cstring();
    const info = this.portals.get(portal);
    const keyword = info?.keyword ?? '';
    const age = this.ageExceeded(keyword);
    if (age) return this.injectRaise(age, 'raise');
    this.trackKeyword(keyword);
    if (keyword === 'deallocate') this.checkState = 'none'; // DEALLOCATE ALL drops our check too
    if (!info?.writes) {
      this.slots.push({ msg: FrontendMessage.Execute, role: 'client' });
      return [frame(FrontendMessage.Execute, body)];
    }
    this.txBytes += info.bytes;
    this.slots.push({ msg: FrontendMessage.Execute, role: 'client', hold: true });
    const out = [frame(FrontendMessage.Execute, body)];
    const over = this.overBytes();
    if (over) return [...out, ...this.injectRaise(over, 'check')];
    // The check: a named statement (parsed once per session) on a named portal, so the client's
    // unnamed statement and portal are left alone. While an earlier Parse of it is unconfirmed (a
    // pipelining client's batches are all sent before the first answer), it may yet be skipped after
    // an error in its batch, or it may yet create the statement: while one is in flight, each batch
    // closes and parses it again (a Close of a statement that does not exist is not an error), so a
    // Bind never names a statement that is not there and a Parse never meets one that is.
    if (this.checkState !== 'ready') {
      if (this.checkParsesInFlight > 0) {
        this.slots.push({ msg: FrontendMessage.Close, role: 'swallow' });
        out.push(encodeCloseStatement(CHECK_STATEMENT));
      }
      this.checkParsesInFlight++;
      this.slots.push({ msg: FrontendMessage.Parse, role: 'swallow', checkParse: true });
      out.push(encodeParse(CHECK_STATEMENT, this.check));
      this.checkState = 'sent';
    }
    this.slots.push(
      { msg: FrontendMessage.Bind, role: 'swallow' },
      { msg: FrontendMessage.Execute, role: 'check' },
      { msg: FrontendMessage.Close, role: 'swallow' },
    );
    out.push(
      encodeBind(CHECK_PORTAL, CHECK_STATEMENT),
      encodeExecute(CHECK_PORTAL),
      encodeClosePortal(CHECK_PORTAL),
    );
    return out;
  }

  /** A Parse of the check statement was skipped after an error: it created nothing. */
  private checkSkipped(): void {
    this.checkParsesInFlight--;
    if (this.checkState !== 'ready') this.checkState = 'none';
  }

  private close(body: Buffer): void {
    const kind = String.fromCharCode(body[0] ?? 0);
    const name = new BodyReader(body.subarray(1)).cstring();
    if (kind === 'S') this.statements.delete(name);
    else this.portals.delete(name);
  }

  private copyData(body: Buffer): Buffer[] {
    if (this.copyFailSent) return [frame(FrontendMessage.CopyData, body)]; // PostgreSQL drops it
    this.txBytes += body.length;
    const over = this.overBytes();
    if (!over) return [frame(FrontendMessage.CopyData, body)];
    // PostgreSQL answers CopyFail with an error (57014) that ends the COPY and its transaction;
    // fromServer() gives that error DSQL's text. Later copy messages are dropped by PostgreSQL.
    this.copyFailSent = true;
    this.opts.onRefusal?.(over);
    return [typedMessage(FrontendMessage.CopyFail, cstring(over.message))];
  }

  /** A whole server message in; the bytes to send to the client out. */
  fromServer(type: number, body: Buffer): Buffer[] {
    switch (type) {
      case BackendMessage.ErrorResponse:
        return this.error(body);
      case BackendMessage.ReadyForQuery:
        return this.ready(type, body);
      case BackendMessage.CommandComplete:
      case BackendMessage.EmptyQueryResponse:
      case BackendMessage.PortalSuspended:
        return this.completion(type, body);
      case BackendMessage.ParseComplete:
      case BackendMessage.BindComplete:
      case BackendMessage.CloseComplete:
      case BackendMessage.NoData:
        return this.simpleAnswer(type, body);
      case BackendMessage.RowDescription: {
        const head = this.slots[0];
        if (head?.msg === FrontendMessage.Describe) this.slots.shift();
        return this.pass(type, body);
      }
      default:
        return this.pass(type, body);
    }
  }

  private pass(type: number, body: Buffer): Buffer[] {
    const f = frame(type, body);
    if (this.held) {
      this.held.push(f);
      return [];
    }
    return [f];
  }

  private release(): Buffer[] {
    const out = this.held ?? [];
    this.held = null;
    return out;
  }

  /** ParseComplete, BindComplete, CloseComplete, NoData, FunctionCallResponse: end their slot. */
  private simpleAnswer(type: number, body: Buffer): Buffer[] {
    const head = this.slots[0];
    const expected =
      type === BackendMessage.ParseComplete
        ? FrontendMessage.Parse
        : type === BackendMessage.BindComplete
          ? FrontendMessage.Bind
          : type === BackendMessage.CloseComplete
            ? FrontendMessage.Close
            : FrontendMessage.Describe;
    // Anything unexpected passes untouched.
    if (head?.msg !== expected) return this.pass(type, body);
    this.slots.shift();
    if (head.checkParse) {
      this.checkState = 'ready';
      this.checkParsesInFlight--;
    }
    if (head.role === 'swallow') return [];
    return this.pass(type, body);
  }

  private completion(type: number, body: Buffer): Buffer[] {
    const head = this.slots[0];
    if (head?.msg === FrontendMessage.Query && head.units) {
      const unit = head.units.shift() ?? 'client';
      if (unit === 'client') {
        if (type === BackendMessage.CommandComplete && head.units[0] === 'check') {
          this.held = [frame(type, body)];
          return [];
        }
        return this.pass(type, body);
      }
      if (unit === 'raise') return this.pass(type, body); // cannot happen: a raise does not complete
      return this.release(); // our check or swallowed statement: drop its answer, free the write's
    }
    if (head?.msg !== FrontendMessage.Execute) return this.pass(type, body);
    this.slots.shift();
    if (head.role === 'client') {
      if (head.hold && type === BackendMessage.CommandComplete) {
        this.held = [frame(type, body)];
        return [];
      }
      return this.pass(type, body);
    }
    if (head.role === 'check') return this.release();
    return this.role(head.role, type, body);
  }

  private role(role: Role, type: number, body: Buffer): Buffer[] {
    return role === 'swallow' ? [] : this.pass(type, body);
  }

  private ready(type: number, body: Buffer): Buffer[] {
    // Whatever PostgreSQL skipped before this ReadyForQuery is gone.
    while (this.slots.length > 0) {
      const s = this.slots.shift()!;
      if (answeredByReady(s.msg)) break;
      if (s.checkParse) this.checkSkipped();
    }
    const out = [...this.release(), frame(type, body)];
    if (this.slots.length === 0) {
      // Nothing else in flight: the server's status is the truth.
      const status = String.fromCharCode(body[0] ?? 0x49);
      if (status === 'I') {
        this.inBlock = false;
        this.txBytes = 0;
      } else if (!this.inBlock) {
        this.inBlock = true;
        this.txStartedAt = this.opts.now();
      }
    }
    return out;
  }

  private error(body: Buffer): Buffer[] {
    const head = this.slots[0];
    let role: Role = 'client';
    if (head?.units) {
      role = head.units[0] ?? 'client';
      head.units.length = 0;
    } else if (head && !answeredByReady(head.msg)) {
      role = head.role;
      // PostgreSQL skips everything up to the next Sync.
      while (this.slots.length > 0 && this.slots[0]!.msg !== FrontendMessage.Sync) {
        const s = this.slots.shift()!;
        if (s.checkParse) this.checkSkipped(); // skipped: never parsed
      }
    }
    this.held = null; // the write's CommandComplete: the write is rolled back
    return [frame(BackendMessage.ErrorResponse, this.rewriteError(body, role))];
  }

  private rewriteError(body: Buffer, role: Role): Buffer {
    const fields = decodeFields(body);
    const code = fields.find(([c]) => c === ErrorField.Code)?.[1];
    if (this.copyFailSent && code === '57014') {
      this.copyFailSent = false;
      return dsqlError(fields, '54000', sizeLimitMessage(this.opts.limits.transactionBytes));
    }
    if (code === '40001' || code === '40P01') return dsqlError(fields, '40001', MSG_CONFLICT_OC000);
    if (role === 'raise' || role === 'check') {
      return encodeFields(fields.filter(([c]) => c !== ErrorField.Context));
    }
    return body;
  }
}

/** An error with DSQL's SQLSTATE and text; PostgreSQL's detail, hint and context do not apply. */
function dsqlError(fields: Array<[number, string]>, sqlstate: string, message: string): Buffer {
  const keep = fields.filter(([c]) => c === ErrorField.Severity || c === ErrorField.SeverityNonLocalized);
  return encodeFields([...keep, [ErrorField.Code, sqlstate], [ErrorField.Message, message]]);
}

/** Sync, Query, FunctionCall and the startup (0) are answered up to and including ReadyForQuery. */
function answeredByReady(msg: number): boolean {
  return (
    msg === FrontendMessage.Sync ||
    msg === FrontendMessage.Query ||
    msg === FrontendMessage.FunctionCall ||
    msg === 0
  );
}

function applyEdits(sql: string, verdicts: StatementVerdict[], arn: string): string {
  let out = '';
  let cursor = 0;
  for (const v of verdicts) {
    out += sql.slice(cursor, v.start) + editedText(sql, v, arn);
    cursor = v.end;
  }
  return out + sql.slice(cursor);
}

/** PostgreSQL's own bound on a message (1 GiB); the endpoint trusts its client no further than that. */
const MAX_MESSAGE = 0x3fffffff;

/**
 * Relays whole messages both ways through `door`. Bytes that arrived with the password message
 * (`pending`) go first. Backpressure: a side whose peer's buffer is full is paused until it drains.
 */
export function relayBehindDoor(client: Duplex, up: Duplex, door: BehindDoor, pending: Buffer): void {
  const pump = (
    reader: FrameReader,
    chunk: Buffer,
    handle: (type: number, body: Buffer) => Buffer[],
    src: Duplex,
    dst: Duplex,
  ): void => {
    reader.push(chunk);
    const out: Buffer[] = [];
    for (;;) {
      let f: ReturnType<FrameReader['nextTyped']>;
      try {
        f = reader.nextTyped(MAX_MESSAGE);
      } catch {
        src.destroy();
        dst.destroy();
        return;
      }
      if (!f) break;
      for (const b of handle(f.type, f.body)) out.push(b);
    }
    if (out.length === 0 || dst.destroyed) return;
    if (!dst.write(out.length === 1 ? out[0]! : Buffer.concat(out))) {
      src.pause();
      dst.once('drain', () => src.resume());
    }
  };
  const fromClient = new FrameReader();
  const fromServer = new FrameReader();
  const clientIn = (type: number, body: Buffer): Buffer[] => door.fromClient(type, body);
  const serverIn = (type: number, body: Buffer): Buffer[] => door.fromServer(type, body);
  if (pending.length > 0) pump(fromClient, pending, clientIn, client, up);
  client.on('data', (chunk: Buffer) => pump(fromClient, chunk, clientIn, client, up));
  up.on('data', (chunk: Buffer) => pump(fromServer, chunk, serverIn, up, client));
  client.resume();
}
