/**
 * A scripted upstream for the SQL-level PREPARE tests: it records what the layer writes and, on each
 * write, makes the next canned answer readable, cut into chunks at seeded pseudo-random places and read
 * back through FrameReader as the engine's link would. Reading with nothing scripted fails the test
 * instead of hanging it. Frontend messages are decoded here, independently of src/protocol.
 */
import type { ClientLink, Frame, UpstreamLink } from '../../src/compat/exchange.js';
import { FrameReader } from '../../src/protocol/frame-reader.js';

export class ScriptedUpstream implements UpstreamLink {
  readonly written: Buffer[] = [];
  readonly #answers: Buffer[][];
  readonly #reader = new FrameReader();
  #seed: number;

  /** `answers[i]`: the backend messages made readable by the i-th write. */
  constructor(answers: Buffer[][], seed = 7) {
    this.#answers = [...answers];
    this.#seed = seed;
  }
  write(bytes: Buffer): void {
    this.written.push(Buffer.from(bytes));
    const answer = this.#answers.shift();
    if (answer === undefined) throw new Error('the layer wrote more than the script expects');
    const all = Buffer.concat(answer);
    let at = 0;
    while (at < all.length) {
      const size = 1 + (this.#random() % 9);
      this.#reader.push(all.subarray(at, at + size));
      at += size;
    }
  }
  next(): Promise<Frame> {
    const frame = this.#reader.nextTyped(1 << 20);
    if (frame === undefined || frame === null) return Promise.reject(new Error('read with nothing scripted'));
    return Promise.resolve({ type: frame.type, body: Buffer.from(frame.body) });
  }
  /** Answers not yet consumed (a test expects 0 at the end). */
  get pendingAnswers(): number {
    return this.#answers.length;
  }
  /** Everything written, decoded message by message, one array per write. */
  decoded(): Msg[][] {
    return this.written.map(decodeFrontend);
  }
  #random(): number {
    this.#seed = (this.#seed * 1103515245 + 12345) % 2147483648;
    return this.#seed;
  }
}

export class RecordingClient implements ClientLink {
  readonly written: Buffer[] = [];
  write(bytes: Buffer): void {
    this.written.push(Buffer.from(bytes));
  }
  /** The backend messages written, as [type char, body]. */
  messages(): [string, Buffer][] {
    const all = Buffer.concat(this.written);
    const out: [string, Buffer][] = [];
    let at = 0;
    while (at < all.length) {
      const length = all.readInt32BE(at + 1);
      out.push([String.fromCharCode(all[at] ?? 0), all.subarray(at + 5, at + 1 + length)]);
      at += 1 + length;
    }
    return out;
  }
}

export type Msg =
  | { t: 'Parse'; name: string; sql: string; oids: number[] }
  | {
      t: 'Bind';
      portal: string;
      statement: string;
      paramFormats: number[];
      values: (string | null)[];
      resultFormats: number[];
    }
  | { t: 'Describe' | 'Close'; target: string; name: string }
  | { t: 'Execute'; portal: string; maxRows: number }
  | { t: 'Sync' }
  | { t: 'Query'; sql: string };

function decodeFrontend(buf: Buffer): Msg[] {
  const out: Msg[] = [];
  let at = 0;
  while (at < buf.length) {
    const type = String.fromCharCode(buf[at] ?? 0);
    const length = buf.readInt32BE(at + 1);
    out.push(decodeOne(type, buf.subarray(at + 5, at + 1 + length)));
    at += 1 + length;
  }
  return out;
}

function decodeOne(type: string, body: Buffer): Msg {
  let at = 0;
  const str = (): string => {
    const end = body.indexOf(0, at);
    const s = body.subarray(at, end).toString('utf8');
    at = end + 1;
    return s;
  };
  const i16 = (): number => {
    at += 2;
    return body.readInt16BE(at - 2);
  };
  const i32 = (): number => {
    at += 4;
    return body.readInt32BE(at - 4);
  };
  const list = (read: () => number): number[] => Array.from({ length: i16() }, read);
  switch (type) {
    case 'P': {
      const name = str();
      const sql = str();
      return { t: 'Parse', name, sql, oids: list(() => i32() >>> 0) };
    }
    case 'B': {
      const portal = str();
      const statement = str();
      const paramFormats = list(i16);
      const values = list(() => 0).map(() => {
        const n = i32();
        if (n < 0) return null;
        at += n;
        return body.subarray(at - n, at).toString('utf8');
      });
      return { t: 'Bind', portal, statement, paramFormats, values, resultFormats: list(i16) };
    }
    case 'D':
    case 'C': {
      const target = String.fromCharCode(body[at++] ?? 0);
      return { t: type === 'D' ? 'Describe' : 'Close', target, name: str() };
    }
    case 'E':
      return { t: 'Execute', portal: str(), maxRows: i32() };
    case 'S':
      return { t: 'Sync' };
    case 'Q':
      return { t: 'Query', sql: str() };
    default:
      throw new Error(`unexpected frontend message '${type}'`);
  }
}

// Backend messages, one factory each, laid out by hand.

function msg(type: string, ...parts: Buffer[]): Buffer {
  const body = Buffer.concat(parts);
  const header = Buffer.alloc(5);
  header.write(type, 0, 'latin1');
  header.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([header, body]);
}
function i16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeInt16BE(n);
  return b;
}
function i32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n);
  return b;
}
const cstr = (s: string): Buffer => Buffer.from(`${s}\0`, 'utf8');

export const be = {
  parseComplete: (): Buffer => msg('1'),
  bindComplete: (): Buffer => msg('2'),
  closeComplete: (): Buffer => msg('3'),
  noData: (): Buffer => msg('n'),
  emptyQuery: (): Buffer => msg('I'),
  rfq: (status: 'I' | 'T' | 'E'): Buffer => msg('Z', Buffer.from(status)),
  complete: (tag: string): Buffer => msg('C', cstr(tag)),
  paramDesc: (oids: number[]): Buffer => msg('t', i16(oids.length), ...oids.map(i32)),
  /** RowDescription of text columns named as given (type text, format text). */
  rowDesc: (names: string[]): Buffer =>
    msg(
      'T',
      i16(names.length),
      ...names.map((n) => Buffer.concat([cstr(n), i32(0), i16(0), i32(25), i16(-1), i32(-1), i16(0)])),
    ),
  dataRow: (values: (string | null)[]): Buffer =>
    msg(
      'D',
      i16(values.length),
      ...values.map((v) =>
        v === null ? i32(-1) : Buffer.concat([i32(Buffer.byteLength(v)), Buffer.from(v)]),
      ),
    ),
  error: (code: string, message: string): Buffer =>
    msg('E', cstr('SERROR'), cstr('VERROR'), cstr(`C${code}`), cstr(`M${message}`), Buffer.from([0])),
  notice: (message: string): Buffer =>
    msg('N', cstr('SNOTICE'), cstr('C00000'), cstr(`M${message}`), Buffer.from([0])),
  parameterStatus: (name: string, value: string): Buffer => msg('S', cstr(name), cstr(value)),
};

/** The fields of an ErrorResponse body, by field code. */
export function errorFields(body: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  let at = 0;
  while (at < body.length && body[at] !== 0) {
    const end = body.indexOf(0, at + 1);
    out[String.fromCharCode(body[at] ?? 0)] = body.subarray(at + 1, end).toString('utf8');
    at = end + 1;
  }
  return out;
}
