/**
 * The frontend scanner with a RequestGate (src/relay/frontend-scanner.ts): for streams of mixed
 * messages cut at every position (and fed byte by byte), where the gate takes a request
 * (interceptAt), which bytes wait for its decision (heldFrom), what it is asked, and the counts,
 * compared with an independent computation over the whole stream.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { EARLIER, FrontendScanner, NOWHERE, type RequestGate } from '../../src/relay/frontend-scanner.js';
import { runs } from './property-helpers.js';

interface Msg {
  type: string;
  body: Buffer;
}

const z = (s: string): Buffer => Buffer.from(`${s}\0`, 'utf8');
const Q = (sql: string): Msg => ({ type: 'Q', body: z(sql) });
const P = (name: string, sql: string): Msg => ({
  type: 'P',
  body: Buffer.concat([z(name), z(sql), Buffer.alloc(2)]),
});
const B = (portal: string, stmt: string): Msg => ({
  type: 'B',
  body: Buffer.concat([z(portal), z(stmt), Buffer.alloc(6)]),
});
const D: Msg = { type: 'D', body: z('P') };
const E: Msg = { type: 'E', body: Buffer.concat([z(''), Buffer.alloc(4)]) };
const S: Msg = { type: 'S', body: Buffer.alloc(0) };
const H: Msg = { type: 'H', body: Buffer.alloc(0) };
const X: Msg = { type: 'X', body: Buffer.alloc(0) };
const d = (data: string): Msg => ({ type: 'd', body: Buffer.from(data) });
const c: Msg = { type: 'c', body: Buffer.alloc(0) };

function wire(msgs: readonly Msg[]): Buffer {
  return Buffer.concat(
    msgs.flatMap((m) => {
      const h = Buffer.alloc(5);
      h.write(m.type, 0, 'latin1');
      h.writeInt32BE(m.body.length + 4, 1);
      return [h, m.body];
    }),
  );
}

/** Texts starting with "set" and Binds of statements starting with "v" are the layer's. */
class Gate implements RequestGate {
  calls: string[] = [];
  constructor(private readonly virtual: boolean) {}
  wantsText(sql: string): boolean {
    this.calls.push(`text:${sql}`);
    return sql.startsWith('set');
  }
  hasVirtual(): boolean {
    return this.virtual;
  }
  wantsBind(statement: string): boolean {
    this.calls.push(`bind:${statement}`);
    return statement.startsWith('v');
  }
}

const LIMIT: Record<string, number> = { Q: 64 * 1024, B: 64 * 1024, P: 16 * 1024 * 1024 };

interface Expected {
  /** Gate questions, in order, up to and including the request it takes. */
  calls: string[];
  /** Absolute start and end of the taken message, or undefined. */
  taken: { start: number; end: number } | undefined;
  /** Messages the gate could be asked about: [start, end, offered (body within limits, not empty)]. */
  candidates: Array<{ start: number; end: number; offered: boolean }>;
  requests: number;
  batchOpen: boolean;
}

/** The whole-stream model: reads each message in turn, with the state the protocol defines. */
function model(msgs: readonly Msg[], virtual: boolean, skipFirst = false): Expected {
  const out: Expected = { calls: [], taken: undefined, candidates: [], requests: 0, batchOpen: false };
  let at = 0;
  for (const [i, m] of msgs.entries()) {
    const start = at;
    const end = at + 5 + m.body.length;
    at = end;
    const firstOfRequest =
      !out.batchOpen &&
      !(skipFirst && i === 0) &&
      (m.type === 'Q' || m.type === 'P' || (m.type === 'B' && virtual));
    if (firstOfRequest) {
      const offered = m.body.length > 0 && m.body.length <= LIMIT[m.type]!;
      out.candidates.push({ start, end, offered });
      if (offered) {
        const fields = m.body.toString('utf8').split('\0');
        const wanted =
          m.type === 'Q'
            ? ask(out, 'text', fields[0]!, (s) => s.startsWith('set'))
            : m.type === 'P'
              ? ask(out, 'text', fields[1]!, (s) => s.startsWith('set'))
              : ask(out, 'bind', fields[1]!, (s) => s.startsWith('v'));
        if (wanted) {
          out.taken = { start, end };
          return out;
        }
      }
    }
    if (m.type === 'Q' || m.type === 'F') out.requests++;
    else if (m.type === 'S') {
      out.requests++;
      out.batchOpen = false;
    } else if (!['X', 'd', 'c', 'f'].includes(m.type)) out.batchOpen = true;
  }
  return out;
}

function ask(out: Expected, kind: string, value: string, rule: (s: string) => boolean): boolean {
  out.calls.push(`${kind}:${value}`);
  return rule(value);
}

/** Where `abs` lies relative to a chunk starting at `chunkStart`. */
const rel = (abs: number, chunkStart: number): number => (abs >= chunkStart ? abs - chunkStart : EARLIER);

/**
 * Feeds the chunks as the relay does (stopping at an intercept) and checks every chunk's
 * interceptAt/heldFrom against the model.
 */
function drive(msgs: readonly Msg[], chunks: readonly Buffer[], virtual: boolean, skipFirst = false): void {
  const want = model(msgs, virtual, skipFirst);
  const gate = new Gate(virtual);
  const s = new FrontendScanner();
  s.gate = gate;
  s.skipGateOnce = skipFirst;
  let chunkStart = 0;
  let intercepted = false;
  for (const chunk of chunks) {
    const chunkEnd = chunkStart + chunk.length;
    s.scan(chunk);
    const where = `chunk [${chunkStart}, ${chunkEnd})`;
    const t = want.taken;
    if (t && t.end > chunkStart && t.end <= chunkEnd) {
      assert.equal(s.interceptAt, rel(t.start, chunkStart), `interceptAt, ${where}`);
      intercepted = true;
      break;
    }
    assert.equal(s.interceptAt, NOWHERE, `no intercept, ${where}`);
    const open = want.candidates.find(
      (k) => k.start < chunkEnd && chunkEnd < k.end && (chunkEnd - k.start < 5 || k.offered),
    );
    assert.equal(s.heldFrom, open ? rel(open.start, chunkStart) : NOWHERE, `heldFrom, ${where}`);
    chunkStart = chunkEnd;
  }
  assert.equal(intercepted, want.taken !== undefined, 'intercepted');
  assert.deepEqual(gate.calls, want.calls, 'gate questions');
  assert.equal(s.requests, want.requests, 'requests');
  assert.equal(s.batchOpen, want.batchOpen, 'batchOpen');
}

function everySplit(msgs: readonly Msg[], virtual: boolean, skipFirst = false): void {
  const data = wire(msgs);
  for (let i = 0; i <= data.length; i++) {
    const chunks = [data.subarray(0, i), data.subarray(i)].filter((b) => b.length > 0);
    drive(msgs, chunks, virtual, skipFirst);
  }
  for (let i = 0; i < data.length; i++) {
    for (let j = i + 1; j < data.length; j += 7) {
      drive(
        msgs,
        [data.subarray(0, i), data.subarray(i, j), data.subarray(j)].filter((b) => b.length > 0),
        virtual,
        skipFirst,
      );
    }
  }
  const bytes = [...data].map((_, k) => data.subarray(k, k + 1));
  drive(msgs, bytes, virtual, skipFirst);
}

const STREAMS: Record<string, Msg[]> = {
  'simple Queries, the second taken': [Q('select 1'), Q('set a = 1'), Q('select 2')],
  'a batch, then a Query taken': [P('', 'select 1'), B('', ''), D, E, S, Q('set x to 2'), X],
  'a Parse of the layer inside an open batch is not asked about': [
    P('', 'select 1'),
    P('s', 'set y = 1'),
    S,
    P('', 'set z = 1'),
    S,
  ],
  'COPY data between requests': [
    Q('copy t from stdin'),
    d('set 1\n'),
    d('x'),
    c,
    Q('select 3'),
    Q('set q=0'),
  ],
  'a Bind of a virtual statement opens a batch': [Q('select 1'), B('', 'v1'), E, S],
  'a Bind of a DSQL statement is counted': [B('', 's1'), E, S, B('p', 'v2'), E, H, S],
  'nothing taken': [Q('select 1'), P('n', 'select $1'), B('', 'n'), E, S, Q('show x'), X],
  'an empty Query and Terminate': [{ type: 'Q', body: Buffer.alloc(0) }, Q(''), Q('set w=1')],
};

describe('FrontendScanner with a RequestGate: every split position', () => {
  for (const [title, msgs] of Object.entries(STREAMS)) {
    for (const virtual of [false, true]) {
      it(`${title} (hasVirtual ${virtual})`, () => everySplit(msgs, virtual));
    }
  }

  it('skipGateOnce: the first message is relayed without a question, the next is asked about', () => {
    everySplit([Q('set a = 1'), Q('set b = 2')], false, true);
    everySplit([P('', 'set a = 1'), B('', ''), E, S, Q('set b = 2')], false, true);
    everySplit([B('', 'v1'), E, S, B('', 'v2'), S], true, true);
  });

  it('random mixed streams agree with the model at every split', () => {
    const msg = fc.oneof(
      fc.constantFrom('select 1', 'set a=1', 'show x', '', 'set').map(Q),
      fc.tuple(fc.constantFrom('', 'n'), fc.constantFrom('select $1', 'set b=2')).map(([n, q]) => P(n, q)),
      fc.constantFrom('', 'v', 'n').map((st) => B('', st)),
      fc.constantFrom(D, E, S, H, c, d('set'), X),
    );
    fc.assert(
      fc.property(fc.array(msg, { maxLength: 8 }), fc.boolean(), fc.boolean(), (msgs, virtual, skip) => {
        const data = wire(msgs);
        for (let i = 0; i <= data.length; i++) {
          drive(
            msgs,
            [data.subarray(0, i), data.subarray(i)].filter((b) => b.length > 0),
            virtual,
            skip,
          );
        }
      }),
      runs(150),
    );
  });
});

describe('FrontendScanner with a RequestGate: bodies over the limits', () => {
  it('a Query over 64 KiB is never withheld nor asked about, and is counted', () => {
    const big = Q(`set a = '${'x'.repeat(64 * 1024)}'`);
    const msgs = [Q('select 1'), big, Q('set b = 1')];
    const data = wire(msgs);
    for (const i of [0, 3, 5, 6, 12, 20, 1000, 40_000, data.length - 20, data.length - 1]) {
      drive(
        msgs,
        [data.subarray(0, i), data.subarray(i)].filter((b) => b.length > 0),
        false,
      );
    }
  });

  it('a Query of exactly 64 KiB is still asked about', () => {
    const text = `set a = '${'x'.repeat(64 * 1024 - 11)}'`;
    const msgs = [Q(text)];
    assert.equal(msgs[0]!.body.length, 64 * 1024);
    const data = wire(msgs);
    for (const i of [1, 5, 6, 30_000, data.length - 1]) {
      drive(msgs, [data.subarray(0, i), data.subarray(i)], false);
    }
  });

  it('a Parse claiming more than 16 MiB is relayed as it arrives', () => {
    const s = new FrontendScanner();
    const gate = new Gate(false);
    s.gate = gate;
    const header = Buffer.alloc(5);
    header.write('P', 0, 'latin1');
    header.writeInt32BE(16 * 1024 * 1024 + 5, 1);
    s.scan(header.subarray(0, 3));
    assert.equal(s.heldFrom, 0, 'the type is known, the length not yet: held');
    s.scan(Buffer.concat([header.subarray(3), Buffer.from('\0set a = 1\0')]));
    assert.equal(s.heldFrom, NOWHERE);
    assert.equal(s.interceptAt, NOWHERE);
    s.scan(Buffer.alloc(1000));
    assert.equal(s.heldFrom, NOWHERE);
    assert.deepEqual(gate.calls, []);
    assert.equal(s.batchOpen, true);
  });

  it('a Bind over 64 KiB is relayed without a question even when the layer holds statements', () => {
    const bind = B('', `v${'x'.repeat(70_000)}`);
    const msgs = [bind, E, S, B('', 'v1'), S];
    const data = wire(msgs);
    for (const i of [2, 5, 9, 50_000, data.length - 3]) {
      drive(
        msgs,
        [data.subarray(0, i), data.subarray(i)].filter((b) => b.length > 0),
        true,
      );
    }
  });
});
