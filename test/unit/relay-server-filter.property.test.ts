/**
 * Properties of the server-stream filter (src/relay/server-filter.ts): on streams of mixed messages
 * split anywhere, its output is that of a whole-message model written here (independent of the code
 * under test), options changed between chunks included; every split position of a fixed stream gives
 * the unsplit output; and on hostile or mutated bytes it never throws, always returns, gives the same
 * output whatever the chunking, and passes everything when it has nothing to inspect.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { ServerFilter, type ServerFilterOptions } from '../../src/relay/server-filter.js';
import { bytes, cuts, mutateAll, mutation, runs, split } from './property-helpers.js';
import { hostileStream } from './scanner-model.js';
import { cstr, msg } from './wire-pieces.js';

const TIMEOUT = 'canceling statement due to statement timeout';

/** client_min_messages → elevel (elog.h); anything else drops nothing. */
const MIN: Record<string, number> = {
  debug5: 10,
  debug2: 13,
  debug: 13,
  debug1: 14,
  log: 15,
  info: 17,
  notice: 18,
  warning: 19,
  error: 21,
};
/** Severity on the wire → elevel; DEBUG counted as DEBUG1. */
const SEV: Record<string, number> = { DEBUG: 14, LOG: 15, INFO: 17, NOTICE: 18, WARNING: 19 };

/** A message with what the client must get of it, given the options at its first byte. */
interface Item {
  wire: Buffer;
  expect: (o: ServerFilterOptions) => Buffer;
}

const text = fc.stringMatching(/^[ -~]{0,40}$/);
const field = fc.tuple(fc.constantFrom('D', 'H', 'W', 'F', 'L', 'R', 'P', 'x'), text);

function frame(type: 'N' | 'E', pairs: readonly (readonly [string, string])[]): Buffer {
  return msg(type, ...pairs.map(([t, v]) => cstr(t + v)), Buffer.from([0]));
}

const noticeItem: fc.Arbitrary<Item> = fc
  .record({
    level: fc.constantFrom('DEBUG', 'LOG', 'INFO', 'NOTICE', 'WARNING'),
    withV: fc.boolean(),
    message: text,
    extra: fc.array(field, { maxLength: 3 }),
  })
  .map(({ level, withV, message, extra }) => {
    const pairs: [string, string][] = [['S', level], ...(withV ? [['V', level] as [string, string]] : [])];
    const wire = frame('N', [...pairs, ['C', '00000'], ['M', message], ...extra]);
    const keep = (o: ServerFilterOptions) => level === 'INFO' || SEV[level]! >= (MIN[o.minLevel] ?? 0);
    return { wire, expect: (o) => (keep(o) ? wire : Buffer.alloc(0)) };
  });

const errorItem: fc.Arbitrary<Item> = fc
  .record({
    code: fc.constantFrom('57014', '57014', '42601', '40001'),
    message: text,
    extra: fc.array(field, { maxLength: 3 }),
  })
  .map(({ code, message, extra }) => {
    const make = (m: string) => frame('E', [['S', 'ERROR'], ['V', 'ERROR'], ['C', code], ['M', m], ...extra]);
    const wire = make(message);
    return { wire, expect: (o) => (o.rewriteCancel && code === '57014' ? make(TIMEOUT) : wire) };
  });

const otherItem: fc.Arbitrary<Item> = fc
  .tuple(fc.constantFrom('D', 'Z', 'C', 'T', '1', '2', 'S', 'd'), bytes(40))
  .map(([type, body]) => {
    const wire = msg(type, body);
    return { wire, expect: () => wire };
  });

const item = fc.oneof(noticeItem, errorItem, otherItem);
const options: fc.Arbitrary<ServerFilterOptions> = fc.record({
  minLevel: fc.constantFrom(...Object.keys(MIN), 'bogus'),
  rewriteCancel: fc.boolean(),
});

/** Feeds the chunks, applying `schedule[i % length]` before chunk i; returns the whole output. */
function feed(chunks: readonly Buffer[], schedule: readonly ServerFilterOptions[]): Buffer {
  const f = new ServerFilter(schedule[0]!, 0);
  const out = chunks.map((c, i) => {
    f.options = schedule[i % schedule.length]!;
    return Buffer.from(f.process(c));
  });
  return Buffer.concat(out);
}

/** The whole-message model: each message judged by the options in force when its first byte arrived. */
function model(
  items: readonly Item[],
  chunks: readonly Buffer[],
  schedule: readonly ServerFilterOptions[],
): Buffer {
  const chunkStarts: number[] = [];
  let at = 0;
  for (const c of chunks) {
    chunkStarts.push(at);
    at += c.length;
  }
  let offset = 0;
  return Buffer.concat(
    items.map((it) => {
      let k = chunkStarts.length - 1;
      while (k > 0 && chunkStarts[k]! > offset) k--;
      offset += it.wire.length;
      return it.expect(schedule[Math.max(k, 0) % schedule.length]!);
    }),
  );
}

describe('ServerFilter properties', () => {
  it('mixed streams split anywhere, options changed between chunks: the whole-message model', () => {
    fc.assert(
      fc.property(
        fc.array(item, { maxLength: 14 }),
        cuts,
        fc.array(options, { minLength: 1, maxLength: 4 }),
        (items, points, schedule) => {
          const chunks = split(Buffer.concat(items.map((i) => i.wire)), points);
          assert.deepEqual(feed(chunks, schedule), model(items, chunks, schedule));
        },
      ),
      runs(1000),
    );
  });

  it('every split position of a fixed mixed stream gives the unsplit output', () => {
    const stream = Buffer.concat([
      msg('T', Buffer.from('rowdesc')),
      msg('D', Buffer.from('row one')),
      frame('N', [
        ['S', 'DEBUG'],
        ['V', 'DEBUG'],
        ['M', 'debug'],
      ]),
      frame('N', [
        ['S', 'LOG'],
        ['V', 'LOG'],
        ['M', 'log'],
      ]),
      msg('D', Buffer.from('row two')),
      frame('N', [
        ['S', 'INFO'],
        ['V', 'INFO'],
        ['M', 'info'],
      ]),
      frame('N', [
        ['S', 'NOTICE'],
        ['V', 'NOTICE'],
        ['M', 'notice'],
      ]),
      frame('N', [
        ['S', 'WARNUNG'],
        ['V', 'WARNING'],
        ['M', 'warning'],
      ]),
      frame('E', [
        ['S', 'ERROR'],
        ['V', 'ERROR'],
        ['C', '57014'],
        ['M', 'canceling statement due to user request'],
      ]),
      msg('Z', Buffer.from('I')),
    ]);
    for (const o of [
      { minLevel: 'warning', rewriteCancel: true },
      { minLevel: 'log', rewriteCancel: false },
    ]) {
      const whole = feed([stream], [o]);
      assert.ok(whole.length < stream.length, 'something is dropped');
      for (let a = 0; a <= stream.length; a++) {
        for (let b = a; b <= stream.length; b++) {
          const parts = [stream.subarray(0, a), stream.subarray(a, b), stream.subarray(b)];
          assert.deepEqual(feed(parts, [o]), whole, `split at ${a} and ${b}`);
        }
      }
      const oneByOne = [...stream].map((x) => Buffer.from([x]));
      assert.deepEqual(feed(oneByOne, [o]), whole);
    }
  });

  it('hostile and mutated bytes: never throws, returns, the same output whatever the chunking', () => {
    const input = fc.oneof(
      hostileStream,
      fc
        .tuple(fc.array(item, { maxLength: 8 }), fc.array(mutation, { maxLength: 4 }))
        .map(([items, ms]) => mutateAll(Buffer.concat(items.map((i) => i.wire)), ms)),
    );
    fc.assert(
      fc.property(input, cuts, options, (data, points, o) => {
        const copy = Buffer.from(data);
        const whole = feed([data], [o]);
        assert.deepEqual(feed(split(data, points), [o]), whole);
        assert.deepEqual(data, copy, 'input untouched');
        // Nothing to inspect: every byte passes, in order.
        assert.deepEqual(feed(split(data, points), [{ minLevel: 'debug5', rewriteCancel: false }]), data);
      }),
      runs(1500),
    );
  });

  it('whole-message chunks with nothing to drop come back as the same Buffer objects', () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(otherItem, errorItem, noticeItem), { maxLength: 8 }), (items) => {
        const f = new ServerFilter({ minLevel: 'debug1', rewriteCancel: false }, 0);
        for (const it of items) assert.equal(f.process(it.wire), it.wire);
      }),
      runs(300),
    );
  });
});
