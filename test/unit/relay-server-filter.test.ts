/**
 * The server-stream filter (src/relay/server-filter.ts): which notices client_min_messages drops,
 * the exact 57014 rewrite, zero-copy pass-through, options changed between chunks, the 64 KiB bound,
 * hostile input, and a start in the middle of the stream.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decodeBackendFrame } from '../../src/protocol/from-server.js';
import { BackendScanner } from '../../src/relay/backend-scanner.js';
import {
  filterStartState,
  MAX_INSPECTED,
  minLevelRank,
  noticeRank,
  ServerFilter,
  type ServerFilterOptions,
  STATEMENT_TIMEOUT_MESSAGE,
} from '../../src/relay/server-filter.js';
import { cstr, msg } from './wire-pieces.js';

const TIMEOUT = STATEMENT_TIMEOUT_MESSAGE;

/** A NoticeResponse or ErrorResponse from (field type, value) pairs, in order. */
function fields(type: 'N' | 'E', ...pairs: [string, string][]): Buffer {
  return msg(type, ...pairs.map(([t, v]) => cstr(t + v)), Buffer.from([0]));
}
const notice = (v: string, text = `a ${v.toLowerCase()}`) =>
  fields('N', ['S', v], ['V', v], ['C', '00000'], ['M', text]);
const cancelError = (text = 'canceling statement due to user request') =>
  fields(
    'E',
    ['S', 'ERROR'],
    ['V', 'ERROR'],
    ['C', '57014'],
    ['M', text],
    ['F', 'postgres.c'],
    ['L', '3301'],
  );
const dataRow = (s: string) => msg('D', Buffer.from([0, 1, 0, 0, 0, s.length]), Buffer.from(s));
const ready = msg('Z', Buffer.from('I'));

const opts = (minLevel: string, rewriteCancel = false): ServerFilterOptions => ({ minLevel, rewriteCancel });

function run(o: ServerFilterOptions, ...chunks: Buffer[]): Buffer {
  const f = new ServerFilter(o, 0);
  const out = Buffer.concat(chunks.map((c) => f.process(c)));
  assert.equal(f.empty, true);
  return out;
}

/** The messages of a well-formed stream, as (type, body) frames. */
function frames(stream: Buffer): { type: number; body: Buffer }[] {
  const out = [];
  for (let pos = 0; pos < stream.length; ) {
    const length = stream.readInt32BE(pos + 1);
    out.push({ type: stream[pos]!, body: stream.subarray(pos + 5, pos + 1 + length) });
    pos += 1 + length;
  }
  return out;
}

describe('ServerFilter: client_min_messages', () => {
  const levels = ['DEBUG', 'LOG', 'INFO', 'NOTICE', 'WARNING'];
  // PostgreSQL's should_output_to_client: elevel >= client_min_messages || elevel == INFO, with LOG
  // between DEBUG1 and NOTICE. DEBUG is ranked as DEBUG1 (all debug levels read "DEBUG").
  const kept: Record<string, string[]> = {
    debug5: levels,
    debug2: levels,
    debug: levels,
    debug1: levels,
    log: ['LOG', 'INFO', 'NOTICE', 'WARNING'],
    info: ['INFO', 'NOTICE', 'WARNING'],
    notice: ['INFO', 'NOTICE', 'WARNING'],
    warning: ['INFO', 'WARNING'],
    error: ['INFO'],
    ERROR: ['INFO'],
  };
  for (const [min, want] of Object.entries(kept)) {
    it(`client_min_messages=${min} passes ${want.join(', ')}`, () => {
      const stream = Buffer.concat(levels.map((v) => notice(v)));
      const out = run(opts(min), stream);
      assert.deepEqual(out, Buffer.concat(want.map((v) => notice(v))));
    });
  }

  it('falls back to S when V is absent, and passes an unknown (localised) severity', () => {
    const plainLog = fields('N', ['S', 'LOG'], ['M', 'x']);
    const localised = fields('N', ['S', 'REMARQUE'], ['M', 'x']);
    const vWins = fields('N', ['S', 'WARNING'], ['V', 'LOG'], ['M', 'x']);
    assert.deepEqual(run(opts('warning'), plainLog, localised, vWins), localised);
  });

  it('unknown client_min_messages values drop nothing; ranks follow elog.h', () => {
    assert.equal(minLevelRank('bogus'), 0);
    assert.equal(minLevelRank('constructor'), 0);
    assert.ok(minLevelRank('debug1') < minLevelRank('log') && minLevelRank('log') < minLevelRank('notice'));
    const n = notice('DEBUG');
    assert.deepEqual(run(opts('bogus'), n), n);
    assert.equal(noticeRank(notice('LOG').subarray(5)), minLevelRank('log'));
  });

  it('passes everything but dropped notices, in order, around them', () => {
    const stream = Buffer.concat([dataRow('a'), notice('LOG'), dataRow('b'), notice('WARNING'), ready]);
    const want = Buffer.concat([dataRow('a'), dataRow('b'), notice('WARNING'), ready]);
    assert.deepEqual(run(opts('notice'), stream), want);
  });
});

describe('ServerFilter: 57014 rewrite', () => {
  it('replaces M, keeps every other field byte for byte, and frames it right', () => {
    const out = run(opts('notice', true), cancelError());
    const decoded = decodeBackendFrame({ type: out[0]!, body: out.subarray(5) }) as unknown as Record<
      string,
      unknown
    >;
    assert.equal(decoded.name, 'error');
    assert.equal(decoded.message, TIMEOUT);
    assert.equal(decoded.code, '57014');
    assert.equal(decoded.severity, 'ERROR');
    assert.equal(decoded.file, 'postgres.c');
    assert.equal(decoded.line, '3301');
    assert.equal(out.readInt32BE(1), out.length - 1);
    assert.deepEqual(out, cancelError(TIMEOUT));
  });

  it('leaves other SQLSTATEs, malformed bodies and rewriteCancel off alone (same Buffer)', () => {
    const other = fields('E', ['S', 'ERROR'], ['C', '42601'], ['M', 'syntax error']);
    assert.equal(new ServerFilter(opts('notice', true), 0).process(other), other);
    const unterminated = Buffer.concat([msg('E', Buffer.from('C57014\0Mx'))]);
    assert.equal(new ServerFilter(opts('notice', true), 0).process(unterminated), unterminated);
    const off = cancelError();
    assert.equal(new ServerFilter(opts('notice', false), 0).process(off), off);
    const already = cancelError(TIMEOUT);
    assert.equal(new ServerFilter(opts('notice', true), 0).process(already), already);
  });

  it('rewrites a 57014 split anywhere, amid other messages', () => {
    const stream = Buffer.concat([dataRow('x'), cancelError(), ready]);
    const want = Buffer.concat([dataRow('x'), cancelError(TIMEOUT), ready]);
    for (let at = 0; at <= stream.length; at++) {
      assert.deepEqual(
        run(opts('notice', true), stream.subarray(0, at), stream.subarray(at)),
        want,
        `split at ${at}`,
      );
    }
  });
});

describe('ServerFilter: pass-through without copies', () => {
  it('returns the chunk itself when nothing is dropped', () => {
    const chunk = Buffer.concat([dataRow('a'), notice('NOTICE'), cancelError(), notice('INFO'), ready]);
    const f = new ServerFilter(opts('notice', false), 0);
    assert.equal(f.process(chunk), chunk);
    const g = new ServerFilter(opts('warning', true), 0);
    const kept = Buffer.concat([dataRow('a'), notice('WARNING'), notice('INFO'), ready]);
    assert.equal(g.process(kept), kept);
  });

  it('returns subarrays of the chunk (no copy) around a dropped notice', () => {
    const chunk = Buffer.concat([dataRow('a'), notice('LOG'), ready]);
    const out = new ServerFilter(opts('notice'), 0).process(chunk);
    assert.deepEqual(out, Buffer.concat([dataRow('a'), ready]));
    const onlyTail = Buffer.concat([notice('LOG'), ready]);
    const tail = new ServerFilter(opts('notice'), 0).process(onlyTail);
    assert.equal(tail.buffer, onlyTail.buffer, 'a single run is a view, not a copy');
  });

  it('passes a split DataRow header on at once: only notices and errors are withheld', () => {
    const f = new ServerFilter(opts('error', true), 0);
    const row = dataRow('abc');
    assert.deepEqual(f.process(row.subarray(0, 2)), row.subarray(0, 2));
    assert.equal(f.empty, true);
    assert.deepEqual(f.process(row.subarray(2)), row.subarray(2));
  });

  it('withholds a split notice until it is complete, then judges it', () => {
    const f = new ServerFilter(opts('notice'), 0);
    const n = notice('WARNING');
    assert.equal(f.process(n.subarray(0, 3)).length, 0);
    assert.equal(f.empty, false);
    assert.equal(f.process(n.subarray(3, 9)).length, 0);
    assert.deepEqual(f.process(n.subarray(9)), n);
    assert.equal(f.empty, true);
  });
});

describe('ServerFilter: options between chunks', () => {
  it('a change applies from the next message, not to one already begun', () => {
    const f = new ServerFilter(opts('notice'), 0);
    const a = notice('LOG');
    // Begun under 'notice' (would be dropped), completed under 'log': still judged by 'notice'.
    assert.equal(f.process(a.subarray(0, 7)).length, 0);
    f.options = opts('log');
    assert.equal(f.process(a.subarray(7)).length, 0);
    // The next one is judged under 'log'.
    assert.deepEqual(f.process(a), a);
    // A notice begun while nothing is inspected passes raw even if a drop turns on midway.
    f.options = opts('debug1');
    assert.deepEqual(f.process(a.subarray(0, 2)), a.subarray(0, 2));
    f.options = opts('error');
    assert.deepEqual(f.process(a.subarray(2)), a.subarray(2));
  });

  it('rewriteCancel turned on and off between chunks', () => {
    const f = new ServerFilter(opts('notice'), 0);
    const e = cancelError();
    assert.deepEqual(f.process(e), e);
    f.options = opts('notice', true);
    assert.deepEqual(f.process(e), cancelError(TIMEOUT));
    f.options = opts('notice', false);
    assert.deepEqual(f.process(e), e);
  });
});

describe('ServerFilter: bounds and hostile input', () => {
  it(`passes a notice over ${MAX_INSPECTED} bytes on raw, uninspected, also when split`, () => {
    const big = fields('N', ['V', 'LOG'], ['M', 'x'.repeat(MAX_INSPECTED)]);
    assert.deepEqual(run(opts('error'), big), big);
    const f = new ServerFilter(opts('error'), 0);
    assert.deepEqual(f.process(big.subarray(0, 3)), Buffer.alloc(0));
    assert.deepEqual(
      f.process(big.subarray(3, 10)),
      big.subarray(0, 10),
      'header let go once its length is known',
    );
    assert.equal(f.empty, true);
    assert.deepEqual(f.process(big.subarray(10)), big.subarray(10));
    const justUnder = fields('N', ['V', 'LOG'], ['M', 'x'.repeat(MAX_INSPECTED - 10)]);
    assert.ok(justUnder.length - 5 <= MAX_INSPECTED);
    assert.equal(run(opts('error'), justUnder).length, 0);
  });

  it('lengths below 4 read as an empty body, like BackendScanner; huge lengths pass raw', () => {
    for (const length of [-1, 0, 3, 4, -(2 ** 31)]) {
      const h = Buffer.from([0x4e, 0, 0, 0, 0]);
      h.writeInt32BE(length, 1);
      const stream = Buffer.concat([h, notice('LOG'), h]);
      for (let at = 0; at <= stream.length; at++) {
        const out = run(opts('notice', true), stream.subarray(0, at), stream.subarray(at));
        assert.deepEqual(out, Buffer.concat([h, h]), `length ${length} split at ${at}`);
      }
    }
    const huge = Buffer.from([0x45, 0x7f, 0xff, 0xff, 0xff, 1, 2, 3]);
    const f = new ServerFilter(opts('error', true), 0);
    assert.deepEqual(f.process(huge), huge);
    assert.equal(f.empty, true);
  });

  it('unterminated or empty field lists pass unchanged', () => {
    for (const body of ['VLOG', 'VLOG\0', 'VLOG\0Mx\0', '\0\0', '', '\0']) {
      const m = msg('N', Buffer.from(body, 'latin1'));
      assert.deepEqual(run(opts('error', true), m), m, JSON.stringify(body));
    }
  });
});

describe('ServerFilter: starting mid-stream', () => {
  it('passes rawRemaining bytes unread, then filters', () => {
    const row = dataRow('hello');
    const stream = Buffer.concat([row.subarray(4), notice('LOG'), ready]);
    const f = new ServerFilter(opts('notice'), row.length - 4);
    assert.deepEqual(f.process(stream), Buffer.concat([row.subarray(4), ready]));
  });

  it('a partialHeader already passed: the message passes raw, even a droppable notice', () => {
    const n = notice('LOG');
    const f = new ServerFilter(opts('notice'), 0, n.subarray(0, 2));
    const rest = Buffer.concat([n.subarray(2), n]);
    assert.deepEqual(f.process(rest.subarray(0, 4)), rest.subarray(0, 4));
    assert.deepEqual(f.process(rest.subarray(4)), n.subarray(6));
  });

  it('filterStartState reads a BackendScanner left mid-body or mid-header', () => {
    const n = notice('LOG');
    const stream = Buffer.concat([dataRow('abc'), n, ready, notice('WARNING')]);
    const want = Buffer.concat([dataRow('abc'), ready, notice('WARNING')]);
    for (let at = 0; at <= stream.length; at++) {
      const scanner = new BackendScanner();
      scanner.scan(stream.subarray(0, at));
      const { rawRemaining, partialHeader } = filterStartState(scanner);
      assert.ok(rawRemaining === 0 || partialHeader === undefined);
      const f = new ServerFilter(opts('notice'), rawRemaining, partialHeader);
      const out = Buffer.concat([stream.subarray(0, at), f.process(stream.subarray(at))]);
      // The LOG notice is dropped unless the filter started after its first byte.
      assert.deepEqual(out, at > dataRow('abc').length ? stream : want, `start at ${at}`);
    }
  });

  it('HeaderScanner accessors: remaining body bytes and a copy of the partial header', () => {
    const s = new BackendScanner();
    assert.equal(s.remainingBody(), 0);
    assert.equal(s.partialHeader().length, 0);
    const row = dataRow('abcdef');
    s.scan(row.subarray(0, 3));
    const copy = s.partialHeader();
    assert.deepEqual(copy, row.subarray(0, 3));
    assert.equal(s.remainingBody(), 0);
    s.scan(row.subarray(3, 8));
    assert.equal(s.partialHeader().length, 0);
    assert.equal(s.remainingBody(), row.length - 8);
    s.scan(row.subarray(8));
    assert.equal(s.remainingBody(), 0);
    s.scan(Buffer.from('Zq'));
    assert.deepEqual(copy, row.subarray(0, 3), 'a copy, not a view of the buffer the scanner reuses');
  });
});

describe('ServerFilter: frames of the output', () => {
  it('the output of a mixed stream is well framed and decodes', () => {
    const stream = Buffer.concat([notice('DEBUG'), dataRow('a'), cancelError(), notice('NOTICE'), ready]);
    const out = run(opts('warning', true), stream);
    const types = frames(out).map((fr) => String.fromCharCode(fr.type));
    assert.deepEqual(types, ['D', 'E', 'Z']);
    const e = frames(out)[1]!;
    assert.equal((decodeBackendFrame(e) as unknown as { message: string }).message, TIMEOUT);
  });
});
