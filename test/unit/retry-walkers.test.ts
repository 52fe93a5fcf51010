/**
 * The retry layer's walkers (src/retry/walkers.ts): pure over bytes, so every stream is fed whole, at
 * every split position in two chunks, and byte by byte, and must give the same events each time.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BackendMessage, FrontendMessage } from '../../src/protocol/constants.js';
import { typedMessage } from '../../src/protocol/message-writer.js';
import { commandComplete, errorResponse, readyForQuery } from '../../src/protocol/to-client.js';
import {
  frontendBind,
  frontendDescribe,
  frontendExecute,
  frontendFlush,
  frontendParse,
  frontendQuery,
  frontendSync,
} from '../../src/protocol/to-server.js';
import { AnswerWalker, type RequestShape, RequestWalker, sqlstateIn } from '../../src/retry/walkers.js';

/** The stream cut into chunks: whole, at every split position, byte by byte. */
function chunkings(stream: Buffer): Buffer[][] {
  const out: Buffer[][] = [[stream]];
  for (let k = 1; k < stream.length; k++) out.push([stream.subarray(0, k), stream.subarray(k)]);
  out.push([...stream].map((b) => Buffer.from([b])));
  return out;
}

/** Request ends as absolute offsets in the stream, with their shapes. */
function requestEvents(chunks: Buffer[]): Array<{ end: number; shape: RequestShape }> {
  const walker = new RequestWalker();
  const events: Array<{ end: number; shape: RequestShape }> = [];
  let base = 0;
  for (const chunk of chunks) {
    walker.requestEnds(chunk, (end, shape) => {
      assert.ok(end > 0 && end <= chunk.length, 'an end lies inside the chunk');
      events.push({ end: base + end, shape });
    });
    base += chunk.length;
  }
  return events;
}

/** Answer events as strings, ReadyForQuery ends as absolute offsets. */
function answerEvents(chunks: Buffer[]): string[] {
  const walker = new AnswerWalker();
  const events: string[] = [];
  let base = 0;
  for (const chunk of chunks) {
    walker.walkAnswer(chunk, {
      ready: (end, status) => events.push(`Z@${base + end}:${status}`),
      error: (code) => events.push(`E:${code}`),
      copy: () => events.push('copy'),
    });
    base += chunk.length;
  }
  return events;
}

const copyData = (s: string): Buffer => typedMessage(FrontendMessage.CopyData, Buffer.from(s));
const copyDone = (): Buffer => typedMessage(FrontendMessage.CopyDone);
const conflict = (): Buffer =>
  errorResponse({
    severity: 'ERROR',
    sqlstate: '40001',
    message: 'change conflicts with another transaction',
  });

describe('RequestWalker', () => {
  const q1 = frontendQuery('SELECT 1');
  const named = Buffer.concat([
    frontendParse('s1', 'UPDATE t SET n = n + 1'),
    frontendBind('', 's1', []),
    frontendDescribe('P', ''),
    frontendExecute(''),
    frontendSync(),
  ]);
  const unnamed = Buffer.concat([
    frontendParse('', 'SELECT $1', [23]),
    frontendBind('', '', ['7']),
    frontendExecute(''),
    frontendSync(),
  ]);
  const flushed = Buffer.concat([frontendParse('s2', 'SELECT 2'), frontendFlush(), frontendSync()]);
  const copy = Buffer.concat([
    frontendQuery('COPY t FROM STDIN'),
    copyData('1\n'),
    copyData('2\n'),
    copyDone(),
  ]);
  const copyEnd = frontendSync();
  const q2 = frontendQuery('SELECT 3');
  const stream = Buffer.concat([q1, named, unnamed, flushed, copy, copyEnd, q2]);

  const ends: number[] = [];
  let at = 0;
  for (const part of [q1, named, unnamed, flushed, frontendQuery('COPY t FROM STDIN')]) {
    at += part.length;
    ends.push(at);
  }
  at += copy.length - frontendQuery('COPY t FROM STDIN').length + copyEnd.length;
  ends.push(at);
  at += q2.length;
  ends.push(at);
  const shapes: RequestShape[] = [
    { flush: false, parsedNames: [], copy: false },
    { flush: false, parsedNames: ['s1'], copy: false },
    { flush: false, parsedNames: [], copy: false },
    { flush: true, parsedNames: ['s2'], copy: false },
    { flush: false, parsedNames: [], copy: false },
    // The COPY data and the Sync after it form one request: the copy flag is set on it.
    { flush: false, parsedNames: [], copy: true },
    { flush: false, parsedNames: [], copy: false },
  ];

  it('finds each request end with its shape, whole, at every split and byte by byte', () => {
    for (const chunks of chunkings(stream)) {
      const events = requestEvents(chunks);
      assert.deepEqual(
        events.map((e) => e.end),
        ends,
        `split ${chunks[0]!.length}`,
      );
      assert.deepEqual(
        events.map((e) => e.shape),
        shapes,
        `split ${chunks[0]!.length}`,
      );
    }
  });

  it('reports the shape of an incomplete request and is between messages only at boundaries', () => {
    const walker = new RequestWalker();
    const partial = Buffer.concat([frontendParse('p', 'SELECT 1'), frontendFlush()]);
    walker.requestEnds(partial.subarray(0, 3), () => assert.fail('no request ends'));
    assert.equal(walker.atBoundary(), false);
    walker.requestEnds(partial.subarray(3), () => assert.fail('no request ends'));
    assert.equal(walker.atBoundary(), true);
    assert.deepEqual(walker.current, { flush: true, parsedNames: ['p'], copy: false });
  });

  it('FunctionCall ends a request', () => {
    const call = typedMessage(FrontendMessage.FunctionCall, Buffer.alloc(10));
    assert.deepEqual(
      requestEvents([call]).map((e) => e.end),
      [call.length],
    );
  });
});

describe('AnswerWalker', () => {
  const longMessage = 'x'.repeat(300);
  const answer = Buffer.concat([
    commandComplete('UPDATE 1'),
    readyForQuery('T'),
    errorResponse({ severity: 'ERROR', sqlstate: '40001', message: longMessage, detail: 'OC000' }),
    readyForQuery('E'),
    errorResponse({ severity: 'ERROR', sqlstate: '23505', message: 'duplicate' }),
    readyForQuery('I'),
    typedMessage(BackendMessage.CopyInResponse, Buffer.from([0, 0, 0])),
    readyForQuery('I'),
    typedMessage(BackendMessage.CopyOutResponse, Buffer.from([0, 0, 0])),
    typedMessage(BackendMessage.CopyData, Buffer.from('1\n')),
    typedMessage(BackendMessage.CopyDone),
    commandComplete('COPY 1'),
    readyForQuery('I'),
  ]);

  function expected(): string[] {
    const ends: number[] = [];
    let pos = 0;
    while (pos < answer.length) {
      const next = pos + 1 + answer.readInt32BE(pos + 1);
      if (answer[pos] === BackendMessage.ReadyForQuery) ends.push(next);
      pos = next;
    }
    return [
      `Z@${ends[0]}:T`,
      'E:40001',
      `Z@${ends[1]}:E`,
      'E:23505',
      `Z@${ends[2]}:I`,
      'copy',
      `Z@${ends[3]}:I`,
      'copy',
      `Z@${ends[4]}:I`,
    ];
  }

  it('reports ReadyForQuery ends and statuses, SQLSTATEs and COPY, at every split and byte by byte', () => {
    const want = expected();
    // Includes every split inside the 40001's fields (the SQLSTATE itself cut in two).
    for (const chunks of chunkings(answer)) assert.deepEqual(answerEvents(chunks), want);
  });

  it('ReadyForQuery without a body reads as I', () => {
    assert.deepEqual(answerEvents([typedMessage(BackendMessage.ReadyForQuery)]), ['Z@5:I']);
  });

  it('an ErrorResponse without a C field has no SQLSTATE', () => {
    const noCode = typedMessage(BackendMessage.ErrorResponse, Buffer.from('SERROR\0Mboom\0\0'));
    assert.deepEqual(answerEvents([noCode]), ['E:undefined']);
  });
});

describe('hostile input', () => {
  it('lengths below 4 end the message at its header and never throw or loop', () => {
    for (const length of [0, 1, 3, -1, -2147483648]) {
      const bad = Buffer.alloc(5);
      bad[0] = BackendMessage.ReadyForQuery;
      bad.writeInt32BE(length, 1);
      const stream = Buffer.concat([bad, readyForQuery('T')]);
      for (const chunks of chunkings(stream)) {
        assert.deepEqual(answerEvents(chunks), ['Z@5:I', 'Z@11:T']);
      }
      const req = Buffer.concat([Buffer.from([FrontendMessage.Sync]), bad.subarray(1), frontendQuery('x')]);
      assert.deepEqual(
        requestEvents([req]).map((e) => e.end),
        [5, 5 + frontendQuery('x').length],
      );
    }
  });

  it('a huge length swallows what follows without keeping it all', () => {
    const huge = Buffer.alloc(5);
    huge[0] = BackendMessage.ErrorResponse;
    huge.writeInt32BE(0x7fffffff, 1);
    const walker = new AnswerWalker();
    const events: string[] = [];
    const sink = {
      ready: () => events.push('Z'),
      error: () => events.push('E'),
      copy: () => events.push('C'),
    };
    walker.walkAnswer(huge, sink);
    const block = Buffer.alloc(1 << 20, 0x43);
    for (let i = 0; i < 64; i++) walker.walkAnswer(block, sink);
    assert.deepEqual(events, []);
    assert.equal(walker.atBoundary(), false);
  });

  it('an unterminated field in an ErrorResponse gives no SQLSTATE', () => {
    const body = Buffer.from('SERROR\0C40001');
    const bad = typedMessage(BackendMessage.ErrorResponse, body);
    assert.deepEqual(answerEvents([bad, readyForQuery('I')]), ['E:undefined', `Z@${bad.length + 6}:I`]);
  });

  it('random bytes never throw, at any split', () => {
    let seed = 7;
    const rand = (): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed;
    };
    for (let round = 0; round < 50; round++) {
      const junk = Buffer.from(Array.from({ length: 64 }, () => rand() & 0xff));
      // Small lengths so many messages start inside the junk.
      for (let i = 1; i + 4 < junk.length; i += 9) junk.writeInt32BE(rand() % 12, i);
      for (const chunks of chunkings(junk)) {
        assert.doesNotThrow(() => answerEvents(chunks));
        assert.doesNotThrow(() => requestEvents(chunks));
      }
      assert.deepEqual(answerEvents([junk]), answerEvents([...junk].map((b) => Buffer.from([b]))));
    }
  });
});

describe('sqlstateIn', () => {
  it('reads the C field wherever it is', () => {
    assert.equal(sqlstateIn(Buffer.from('SERROR\0VERROR\0C40001\0Mconflict\0\0')), '40001');
    assert.equal(sqlstateIn(Buffer.from('C08006\0\0')), '08006');
    assert.equal(sqlstateIn(conflict().subarray(5)), '40001');
  });

  it('gives undefined without a C field, for an empty body, or an unterminated field', () => {
    assert.equal(sqlstateIn(Buffer.from('SERROR\0Mx\0\0')), undefined);
    assert.equal(sqlstateIn(Buffer.alloc(0)), undefined);
    assert.equal(sqlstateIn(Buffer.from([0])), undefined);
    assert.equal(sqlstateIn(Buffer.from('SERROR\0C400')), undefined);
    assert.equal(sqlstateIn(Buffer.from('SERROR')), undefined);
  });

  it('does not take a C inside another field value for the code', () => {
    assert.equal(sqlstateIn(Buffer.from('MC99999\0C40001\0\0')), '40001');
  });
});
