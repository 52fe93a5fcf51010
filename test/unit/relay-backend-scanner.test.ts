import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BackendScanner } from '../../src/relay/backend-scanner.js';

/*
 * The scanner is checked against a reference model computed once over the whole stream: for every
 * prefix length p, whether p ends on a message boundary, the status of the last ReadyForQuery whose
 * status byte lies inside the prefix, and how many such ReadyForQuery were seen. Backend messages are
 * laid by hand here (not with src/protocol) so both sides are independent.
 */

function int32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n, 0);
  return b;
}

function int16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeInt16BE(n, 0);
  return b;
}

function msg(type: string, body: Buffer = Buffer.alloc(0)): Buffer {
  return Buffer.concat([Buffer.from(type, 'latin1'), int32(body.length + 4), body]);
}

/** A type byte and an arbitrary (possibly hostile) length, no body. */
function header(type: string, length: number): Buffer {
  return Buffer.concat([Buffer.from(type, 'latin1'), int32(length)]);
}

function rowDescription(names: string[]): Buffer {
  const fields = names.map((name) =>
    Buffer.concat([
      Buffer.from(`${name}\0`, 'utf8'),
      int32(16384), // table oid
      int16(1), // column number
      int32(25), // type oid (text)
      int16(-1), // type size
      int32(-1), // type modifier
      int16(0), // text format
    ]),
  );
  return msg('T', Buffer.concat([int16(names.length), ...fields]));
}

/** A DataRow; null is SQL NULL (length -1). */
function dataRow(values: (Buffer | null)[]): Buffer {
  const parts: Buffer[] = [int16(values.length)];
  for (const v of values) parts.push(v === null ? int32(-1) : Buffer.concat([int32(v.length), v]));
  return msg('D', Buffer.concat(parts));
}

const commandComplete = (tag: string) => msg('C', Buffer.from(`${tag}\0`));
const readyForQuery = (status: 'I' | 'T' | 'E') => msg('Z', Buffer.from(status, 'latin1'));
const errorResponse = (text: string) => msg('E', Buffer.from(`SERROR\0C42P01\0M${text}\0\0`));

interface Model {
  boundary: Uint8Array;
  status: Uint8Array;
  ready: Uint32Array;
}

/** What a header-only scanner must report after each prefix of `stream` (lengths < 4 mean no body). */
function model(stream: Buffer): Model {
  const n = stream.length;
  const boundary = new Uint8Array(n + 1);
  const status = new Uint8Array(n + 1);
  const ready = new Uint32Array(n + 1);
  const statusByteAt = new Map<number, number>();
  boundary[0] = 1;
  let pos = 0;
  while (pos + 5 <= n) {
    const type = stream[pos]!;
    const length = stream.readInt32BE(pos + 1);
    const bodyLength = length > 4 ? length - 4 : 0;
    if (type === 0x5a && bodyLength > 0 && pos + 5 < n) statusByteAt.set(pos + 5, stream[pos + 5]!);
    const end = pos + 5 + bodyLength;
    if (end > n) break;
    boundary[end] = 1;
    pos = end;
  }
  let current = 0x49; // 'I'
  let count = 0;
  for (let p = 0; p <= n; p++) {
    status[p] = current;
    ready[p] = count;
    const s = statusByteAt.get(p);
    if (s !== undefined) {
      current = s;
      count++;
    }
  }
  return { boundary, status, ready };
}

/** Null when the scanner agrees with the model after a prefix of length p, else a description. */
function mismatch(scanner: BackendScanner, m: Model, p: number): string | null {
  const boundary = m.boundary[p] === 1;
  if (
    scanner.atBoundary() === boundary &&
    scanner.status.length === 1 &&
    scanner.status.charCodeAt(0) === m.status[p] &&
    scanner.readyCount === m.ready[p]
  ) {
    return null;
  }
  const status = String.fromCharCode(m.status[p]!);
  return (
    `after ${p} bytes: atBoundary ${scanner.atBoundary()} (want ${boundary}), status ${scanner.status} ` +
    `(want ${status}), readyCount ${scanner.readyCount} (want ${m.ready[p]})`
  );
}

/** Feeds `stream` cut at the given increasing offsets and checks the state after every chunk. */
function feed(stream: Buffer, m: Model, cuts: number[]): string | null {
  const scanner = new BackendScanner();
  let from = 0;
  for (const to of [...cuts, stream.length]) {
    scanner.scan(stream.subarray(from, to));
    from = to;
    const bad = mismatch(scanner, m, to);
    if (bad) return `cuts ${cuts.slice(0, 8).join(',')}: ${bad}`;
  }
  return null;
}

/** Deterministic PRNG (mulberry32) so a failing chunking can be replayed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function randomCuts(length: number, rand: () => number, maxChunk: number): number[] {
  const cuts: number[] = [];
  let at = 0;
  for (;;) {
    // Mostly small chunks, now and then a large one, so headers and bodies are split everywhere.
    const size = rand() < 0.7 ? Math.floor(rand() * 12) : Math.floor(rand() * maxChunk);
    at += size;
    if (at >= length) return cuts;
    cuts.push(at);
  }
}

const MB = 1024 * 1024;

/** A query result with small rows, empty rows and bodies, NULLs, a 1 MB and a 64 kB value, then more queries. */
const realistic = Buffer.concat([
  msg('1'), // ParseComplete: length 4, empty body
  msg('2'), // BindComplete
  rowDescription(['id', 'payload']),
  dataRow([]),
  dataRow([Buffer.from('1'), Buffer.alloc(0)]),
  dataRow([Buffer.from('2'), null]),
  dataRow([Buffer.from('3'), Buffer.alloc(MB, 0x5a)]), // a body full of 'Z' bytes
  ...Array.from({ length: 20 }, (_, i) => dataRow([Buffer.from(String(i + 4)), Buffer.from('x'.repeat(i))])),
  dataRow([Buffer.from('24'), Buffer.alloc(64 * 1024, 0x45)]),
  commandComplete('SELECT 25'),
  readyForQuery('T'),
  msg('I'), // EmptyQueryResponse
  readyForQuery('T'),
  errorResponse('relation "nope" does not exist'),
  readyForQuery('E'),
  commandComplete('ROLLBACK'),
  readyForQuery('I'),
]);
const realisticModel = model(realistic);

/** Many small rows: many headers per chunk. */
const manyRows = Buffer.concat([
  rowDescription(['n']),
  ...Array.from({ length: 400 }, (_, i) => dataRow([Buffer.from(String(i))])),
  commandComplete('SELECT 400'),
  readyForQuery('T'),
  commandComplete('COMMIT'),
  readyForQuery('I'),
]);
const manyRowsModel = model(manyRows);

describe('BackendScanner reference model', () => {
  it('describes the realistic stream as intended', () => {
    const n = realistic.length;
    assert.ok(n > MB);
    assert.equal(realisticModel.boundary[n], 1);
    assert.equal(realisticModel.ready[n], 4);
    assert.equal(String.fromCharCode(realisticModel.status[n]!), 'I');
    // Inside the 1 MB bodies there is no boundary.
    const inside = realistic.indexOf(Buffer.alloc(64, 0x5a));
    assert.equal(realisticModel.boundary[inside + 1000], 0);
  });
});

describe('BackendScanner over a realistic stream', () => {
  it('fed whole: at a boundary, last status I, four ReadyForQuery', () => {
    const s = new BackendScanner();
    assert.equal(s.atBoundary(), true);
    assert.equal(s.status, 'I');
    s.scan(realistic);
    assert.equal(s.atBoundary(), true);
    assert.equal(s.status, 'I');
    assert.equal(s.readyCount, 4);
  });

  it('tracks I/T/E through ReadyForQuery messages', () => {
    const s = new BackendScanner();
    s.scan(Buffer.concat([commandComplete('BEGIN'), readyForQuery('T')]));
    assert.equal(s.status, 'T');
    s.scan(Buffer.concat([errorResponse('boom'), readyForQuery('E')]));
    assert.equal(s.status, 'E');
    s.scan(Buffer.concat([commandComplete('ROLLBACK'), readyForQuery('I')]));
    assert.equal(s.status, 'I');
    assert.equal(s.readyCount, 3);
    assert.equal(s.atBoundary(), true);
  });

  it('does not take a Z inside a DataRow body for a ReadyForQuery', () => {
    const s = new BackendScanner();
    const trap = Buffer.concat([readyForQuery('E')]); // the bytes of a ReadyForQuery, as column data
    s.scan(dataRow([trap, trap]));
    assert.equal(s.readyCount, 0);
    assert.equal(s.status, 'I');
    assert.equal(s.atBoundary(), true);
  });

  it('agrees with the model at every split position into two chunks', () => {
    const n = realistic.length;
    let failures = 0;
    let first: string | null = null;
    for (let i = 0; i <= n; i++) {
      const scanner = new BackendScanner();
      scanner.scan(realistic.subarray(0, i));
      let bad = mismatch(scanner, realisticModel, i);
      if (!bad) {
        scanner.scan(realistic.subarray(i));
        bad = mismatch(scanner, realisticModel, n);
      }
      if (bad) {
        failures++;
        first ??= `split at ${i}: ${bad}`;
      }
    }
    assert.equal(first, null);
    assert.equal(failures, 0);
  });

  it('agrees with the model after every byte when fed one byte at a time', () => {
    const scanner = new BackendScanner();
    let first: string | null = null;
    for (let i = 0; i < realistic.length && first === null; i++) {
      scanner.scan(realistic.subarray(i, i + 1));
      first = mismatch(scanner, realisticModel, i + 1);
    }
    assert.equal(first, null);
    assert.equal(scanner.readyCount, 4);
  });

  it('agrees with the model under random chunkings (seeded)', () => {
    for (let seed = 1; seed <= 300; seed++) {
      const rand = prng(seed);
      const cuts = randomCuts(realistic.length, rand, 256 * 1024);
      assert.equal(feed(realistic, realisticModel, cuts), null, `seed ${seed}`);
    }
  });

  it('handles many small rows at every split position and in random chunks', () => {
    const n = manyRows.length;
    let first: string | null = null;
    for (let i = 0; i <= n && first === null; i++) {
      first = feed(manyRows, manyRowsModel, [i]);
    }
    assert.equal(first, null);
    for (let seed = 1; seed <= 200; seed++) {
      assert.equal(feed(manyRows, manyRowsModel, randomCuts(n, prng(seed), 4096)), null, `seed ${seed}`);
    }
  });

  it('ignores empty chunks', () => {
    const s = new BackendScanner();
    s.scan(Buffer.alloc(0));
    assert.equal(s.atBoundary(), true);
    s.scan(realistic.subarray(0, 3));
    s.scan(Buffer.alloc(0));
    assert.equal(s.atBoundary(), false);
    s.scan(realistic.subarray(3));
    assert.equal(s.atBoundary(), true);
    assert.equal(s.readyCount, 4);
  });
});

describe('BackendScanner with hostile lengths', () => {
  it('treats lengths 0..4 and negative lengths as empty bodies: boundary right after the header', () => {
    for (const length of [0, 1, 2, 3, 4, -1, -5, -0x80000000]) {
      const s = new BackendScanner();
      s.scan(header('D', length));
      assert.equal(s.atBoundary(), true, `length ${length}`);
      // The next bytes are read as a new message.
      s.scan(readyForQuery('T'));
      assert.equal(s.status, 'T', `length ${length}`);
      assert.equal(s.readyCount, 1);
    }
  });

  it('a ReadyForQuery with no body (length <= 4) changes neither status nor count', () => {
    for (const length of [4, 3, 0, -1]) {
      const s = new BackendScanner();
      s.scan(header('Z', length));
      assert.equal(s.status, 'I');
      assert.equal(s.readyCount, 0);
      assert.equal(s.atBoundary(), true);
    }
  });

  it('a huge length skips without looping and leaves the scanner mid-message', () => {
    const s = new BackendScanner();
    const started = Date.now();
    s.scan(Buffer.concat([header('D', 0x7fffffff), Buffer.alloc(4 * MB)]));
    s.scan(readyForQuery('E')); // still body bytes
    assert.equal(s.atBoundary(), false);
    assert.equal(s.status, 'I');
    assert.equal(s.readyCount, 0);
    assert.ok(Date.now() - started < 1000);
  });

  it('a huge ReadyForQuery takes its first body byte as the status, once', () => {
    const s = new BackendScanner();
    s.scan(Buffer.concat([header('Z', 0x40000000), Buffer.from('TEE')]));
    assert.equal(s.status, 'T');
    assert.equal(s.readyCount, 1);
    assert.equal(s.atBoundary(), false);
  });

  it('never throws on random bytes, in random chunks, and agrees with the model', () => {
    for (let seed = 1; seed <= 500; seed++) {
      const rand = prng(seed);
      const junk = Buffer.alloc(Math.floor(rand() * 300));
      for (let i = 0; i < junk.length; i++) {
        // Bias the length bytes towards small and hostile values.
        junk[i] = rand() < 0.5 ? Math.floor(rand() * 256) : [0, 0xff, 0x5a, 4, 5][Math.floor(rand() * 5)]!;
      }
      const m = model(junk);
      assert.equal(feed(junk, m, randomCuts(junk.length, rand, 64)), null, `seed ${seed}`);
      for (let i = 0; i <= junk.length; i++)
        assert.equal(feed(junk, m, [i]), null, `seed ${seed} split ${i}`);
    }
  });
});

describe('BackendScanner.onError hands over ErrorResponse bodies', () => {
  const conflict = Buffer.from('SERROR\0C40001\0Mchange conflicts with another transaction (OC000)\0\0');
  const stream = Buffer.concat([
    rowDescription(['a']),
    dataRow([Buffer.from('x'.repeat(300))]),
    msg('E', conflict),
    readyForQuery('E'),
    errorResponse('second'),
    readyForQuery('I'),
  ]);

  it('delivers each body exactly once, byte-identical, at every split position', () => {
    for (let cut = 0; cut <= stream.length; cut++) {
      const scanner = new BackendScanner();
      const seen: Buffer[] = [];
      scanner.onError = (body) => seen.push(Buffer.from(body));
      scanner.scan(stream.subarray(0, cut));
      scanner.scan(stream.subarray(cut));
      assert.equal(seen.length, 2, `cut ${cut}`);
      assert.deepEqual(seen[0], conflict, `cut ${cut}`);
      assert.match(seen[1]!.toString('latin1'), /Msecond\0/);
      assert.equal(scanner.status, 'I');
      assert.ok(scanner.atBoundary());
    }
  });

  it('delivers bodies fed one byte at a time', () => {
    const scanner = new BackendScanner();
    const seen: Buffer[] = [];
    scanner.onError = (body) => seen.push(Buffer.from(body));
    for (let i = 0; i < stream.length; i++) scanner.scan(stream.subarray(i, i + 1));
    assert.equal(seen.length, 2);
    assert.deepEqual(seen[0], conflict);
  });

  it('skips oversized error bodies instead of buffering them', () => {
    const scanner = new BackendScanner();
    let calls = 0;
    scanner.onError = () => calls++;
    scanner.scan(Buffer.concat([msg('E', Buffer.alloc(100_000, 0x41)), readyForQuery('I')]));
    assert.equal(calls, 0);
    assert.equal(scanner.status, 'I');
  });
});
