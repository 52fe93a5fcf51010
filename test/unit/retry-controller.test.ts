/**
 * The conflict-retry controller (src/retry/controller.ts) against a fake RetryPort: the test plays
 * DSQL by answering what the controller writes upstream, and checks what the client gets.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import { Metrics } from '../../src/core/metrics.js';
import { BackendMessage, FrontendMessage } from '../../src/protocol/constants.js';
import { typedMessage } from '../../src/protocol/message-writer.js';
import { commandComplete, errorResponse, readyForQuery } from '../../src/protocol/to-client.js';
import {
  frontendBind,
  frontendClose,
  frontendExecute,
  frontendFlush,
  frontendParse,
  frontendQuery,
  frontendSync,
} from '../../src/protocol/to-server.js';
import { ConflictRetry, type RetryPort, type RetrySettings } from '../../src/retry/controller.js';
import { ManualClock } from './manual-clock.js';

const settle = (): Promise<void> => new Promise((r) => setImmediate(r));

class FakePort implements RetryPort {
  readonly writes: Buffer[] = [];
  readonly delivered: Buffer[] = [];
  timeoutMs = 0;
  paused = false;
  private clientStatus = 'I';

  writeUpstream(bytes: Buffer): void {
    this.writes.push(Buffer.from(bytes));
  }
  deliver(bytes: Buffer): void {
    if (bytes.length === 0) return;
    this.delivered.push(Buffer.from(bytes));
    // The relay tracks the status the client saw from the ReadyForQuery it delivered.
    const all = Buffer.concat(this.delivered);
    let pos = 0;
    while (pos + 5 <= all.length) {
      const next = pos + 1 + all.readInt32BE(pos + 1);
      if (next > all.length) break;
      if (all[pos] === BackendMessage.ReadyForQuery) this.clientStatus = String.fromCharCode(all[pos + 5]!);
      pos = next;
    }
  }
  status(): string {
    return this.clientStatus;
  }
  pauseClient(): void {
    this.paused = true;
  }
  resumeClient(): void {
    this.paused = false;
  }
  statementTimeoutMs(): number {
    return this.timeoutMs;
  }
  /** Everything the client got, as one buffer. */
  get got(): Buffer {
    return Buffer.concat(this.delivered);
  }
}

function harness(settings: Partial<RetrySettings> = {}) {
  const port = new FakePort();
  const clock = new ManualClock(1000);
  const metrics = new Metrics({ processMetrics: false });
  const log = pino({ level: 'silent' });
  const retry = new ConflictRetry(
    port,
    { mode: 'transactions', bufferBytes: 1 << 20, attempts: 3, ...settings },
    clock,
    metrics,
    log,
  );
  return { port, clock, metrics, retry };
}

/** conflictRetries as "kind/outcome" -> count, and the attempts histogram's count and sum. */
async function counted(metrics: Metrics): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const v of (await metrics.conflictRetries.get()).values) {
    out[`${v.labels.kind}/${v.labels.outcome}`] = v.value;
  }
  for (const v of (await metrics.conflictRetryAttempts.get()).values) {
    // A histogram reports zeros before its first observation: only observations are counted here.
    if (v.value === 0) continue;
    if (v.metricName?.endsWith('_count')) out.attemptsCount = v.value;
    if (v.metricName?.endsWith('_sum')) out.attemptsSum = v.value;
  }
  return out;
}

const conflict = (): Buffer =>
  errorResponse({
    severity: 'ERROR',
    sqlstate: '40001',
    message: 'change conflicts with another transaction (OC000)',
  });
const dataRow = (value: string): Buffer => {
  const v = Buffer.from(value);
  const head = Buffer.alloc(6);
  head.writeInt16BE(1, 0);
  head.writeInt32BE(v.length, 2);
  return typedMessage(BackendMessage.DataRow, head, v);
};
const ok = (tag: string, status: 'I' | 'T' | 'E' = 'I'): Buffer =>
  Buffer.concat([commandComplete(tag), readyForQuery(status)]);
const failed = (status: 'I' | 'T' | 'E'): Buffer => Buffer.concat([conflict(), readyForQuery(status)]);
const q = (sql: string): Buffer => frontendQuery(sql);

/** Feeds a server answer in the given chunks. */
function serve(retry: ConflictRetry, ...chunks: Buffer[]): void {
  for (const c of chunks) retry.fromServer(c);
}

/** Runs the backoff out (at most 100 ms) and lets the controller's awaits go on. */
async function backoff(clock: ManualClock): Promise<void> {
  await clock.advance(200);
  await settle();
}

describe('pacing', () => {
  it('sends one request at a time: a pipelined request waits until the answer before it is delivered', async () => {
    const { port, retry } = harness();
    const a = q('SELECT 1');
    const b = q('SELECT 2');
    retry.fromClient(Buffer.concat([a, b]));
    assert.deepEqual(port.writes, [a]);
    assert.equal(retry.idle, false);
    serve(retry, commandComplete('SELECT 1'));
    assert.deepEqual(port.writes, [a], 'still waiting for the ReadyForQuery');
    assert.equal(port.delivered.length, 0, 'the answer is held');
    serve(retry, readyForQuery('I'));
    assert.deepEqual(port.got, ok('SELECT 1'));
    assert.deepEqual(port.writes, [a, b]);
    assert.equal(retry.idle, false);
    serve(retry, ok('SELECT 1'));
    assert.equal(retry.idle, true);
  });

  it('an extended batch goes out whole up to its Sync, the next one after its answer', () => {
    const { port, retry } = harness();
    const batch = Buffer.concat([
      frontendParse('', 'SELECT 1'),
      frontendBind('', '', []),
      frontendExecute(''),
      frontendSync(),
    ]);
    const next = q('SELECT 2');
    retry.fromClient(Buffer.concat([batch, next]).subarray(0, 7));
    retry.fromClient(Buffer.concat([batch, next]).subarray(7));
    assert.deepEqual(Buffer.concat(port.writes), batch);
    serve(retry, ok('SELECT 1'));
    assert.deepEqual(Buffer.concat(port.writes), Buffer.concat([batch, next]));
  });

  it('pauses the client while more than the buffer waits, resumes when it drains', () => {
    const { port, retry } = harness({ bufferBytes: 64 });
    retry.fromClient(q('SELECT 1'));
    retry.fromClient(q(`SELECT '${'x'.repeat(100)}'`));
    assert.equal(port.paused, true);
    serve(retry, ok('SELECT 1'));
    assert.equal(port.paused, false);
  });

  it('idle only when nothing waits or is in flight', () => {
    const { retry } = harness();
    assert.equal(retry.idle, true);
    retry.fromClient(q('SELECT 1').subarray(0, 3));
    assert.equal(retry.idle, false, 'a partial request is in flight');
    retry.fromClient(q('SELECT 1').subarray(3));
    serve(retry, ok('SELECT 1'));
    assert.equal(retry.idle, true);
  });
});

describe('holding an answer', () => {
  const answer = Buffer.concat([
    typedMessage(BackendMessage.RowDescription, Buffer.from([0, 0])),
    dataRow('1'),
    dataRow('2'),
    commandComplete('SELECT 2'),
    readyForQuery('I'),
  ]);

  it('is delivered once, unchanged, at its ReadyForQuery, at every split and byte by byte', () => {
    const chunkings: Buffer[][] = [[...answer].map((b) => Buffer.from([b]))];
    for (let k = 1; k < answer.length; k++) chunkings.push([answer.subarray(0, k), answer.subarray(k)]);
    for (const chunks of chunkings) {
      const { port, retry } = harness();
      retry.fromClient(q('SELECT n FROM t'));
      for (const c of chunks.slice(0, -1)) retry.fromServer(c);
      assert.equal(port.delivered.length, 0, `held (split ${chunks[0]!.length})`);
      retry.fromServer(chunks.at(-1)!);
      assert.equal(port.delivered.length, 1);
      assert.deepEqual(port.got, answer);
      assert.equal(retry.idle, true);
    }
  });
});

describe('statement retry', () => {
  it('re-sends the exact request after the backoff on 40001 I->I, at every split of the 40001 answer', async () => {
    const first = failed('I');
    const splits = [
      [first],
      ...Array.from({ length: first.length - 1 }, (_, k) => [
        first.subarray(0, k + 1),
        first.subarray(k + 1),
      ]),
    ];
    for (const chunks of splits) {
      const { port, clock, metrics, retry } = harness();
      const req = q('UPDATE t SET n = n + 1');
      retry.fromClient(req);
      serve(retry, ...chunks);
      await settle();
      assert.deepEqual(port.writes, [req], 'nothing before the backoff');
      assert.equal(clock.pending, 1);
      assert.equal(retry.idle, false);
      await backoff(clock);
      assert.deepEqual(port.writes, [req, req]);
      serve(retry, ok('UPDATE 1'));
      assert.deepEqual(port.got, ok('UPDATE 1'), 'the first answer is never delivered');
      assert.equal(retry.idle, true);
      assert.deepEqual(await counted(metrics), {
        'statement/succeeded': 1,
        attemptsCount: 1,
        attemptsSum: 2,
      });
    }
  });

  it('the same bytes for an unnamed extended batch', async () => {
    const { port, clock, retry } = harness();
    const batch = Buffer.concat([
      frontendParse('', 'UPDATE t SET n = $1', [23]),
      frontendBind('', '', ['5']),
      frontendExecute(''),
      frontendSync(),
    ]);
    retry.fromClient(batch.subarray(0, 10));
    retry.fromClient(batch.subarray(10));
    serve(retry, failed('I'));
    await backoff(clock);
    assert.deepEqual(port.writes.slice(2), [batch], 'no Close for an unnamed statement');
  });

  it('a named Parse: Close(S, name)+Sync first, its answer swallowed, then the request', async () => {
    const { port, clock, retry } = harness();
    const batch = Buffer.concat([
      frontendParse('s1', 'UPDATE t SET n = n + 1'),
      frontendBind('', 's1', []),
      frontendExecute(''),
      frontendSync(),
    ]);
    retry.fromClient(batch);
    serve(
      retry,
      Buffer.concat([typedMessage(BackendMessage.ParseComplete), typedMessage(BackendMessage.BindComplete)]),
      failed('I'),
    );
    await backoff(clock);
    assert.deepEqual(port.writes, [batch, Buffer.concat([frontendClose('S', 's1'), frontendSync()])]);
    serve(retry, Buffer.concat([typedMessage(BackendMessage.CloseComplete), readyForQuery('I')]));
    await settle();
    assert.deepEqual(port.writes.at(-1), batch);
    assert.equal(port.delivered.length, 0, 'the Close answer is swallowed');
    const good = Buffer.concat([
      typedMessage(BackendMessage.ParseComplete),
      typedMessage(BackendMessage.BindComplete),
      ok('UPDATE 1'),
    ]);
    serve(retry, good);
    assert.deepEqual(port.got, good);
  });

  it('attempts exhausted: the last 40001 is delivered', async () => {
    const { port, clock, metrics, retry } = harness({ attempts: 3 });
    const req = q('UPDATE t SET n = n + 1');
    retry.fromClient(req);
    serve(retry, failed('I'));
    await backoff(clock);
    serve(retry, failed('I'));
    await backoff(clock);
    assert.equal(port.writes.length, 3);
    const last = Buffer.concat([
      errorResponse({ severity: 'ERROR', sqlstate: '40001', message: 'third' }),
      readyForQuery('I'),
    ]);
    serve(retry, last);
    await settle();
    assert.equal(port.writes.length, 3, 'no fourth send');
    assert.deepEqual(port.got, last);
    assert.deepEqual(await counted(metrics), { 'statement/exhausted': 1 });
    assert.equal(retry.idle, true);
  });

  it('the buffer bound hit mid-answer: what was held, then streaming, no retry (too_large)', async () => {
    const { port, metrics, retry } = harness({ bufferBytes: 100 });
    const req = q('SELECT x FROM big');
    retry.fromClient(req);
    const rows = Array.from({ length: 10 }, (_, i) => dataRow(`row-${i}`));
    serve(retry, rows[0]!, rows[1]!);
    assert.equal(port.delivered.length, 0, 'still under the bound');
    serve(retry, ...rows.slice(2));
    assert.ok(port.delivered.length > 0, 'streaming');
    const tail = failed('I');
    serve(retry, tail);
    await settle();
    assert.deepEqual(port.got, Buffer.concat([...rows, tail]));
    assert.deepEqual(port.writes, [req]);
    assert.deepEqual(await counted(metrics), { 'statement/too_large': 1 });
  });

  it('a request with a Flush streams its answer', () => {
    const { port, retry } = harness();
    retry.fromClient(Buffer.concat([frontendParse('s', 'SELECT 1'), frontendFlush()]));
    const parsed = typedMessage(BackendMessage.ParseComplete);
    serve(retry, parsed);
    assert.deepEqual(port.got, parsed);
    retry.fromClient(Buffer.concat([frontendBind('', 's', []), frontendExecute(''), frontendSync()]));
    serve(retry, failed('I'));
    assert.deepEqual(port.got, Buffer.concat([parsed, failed('I')]), 'streamed, not retried');
    assert.equal(port.writes.length, 2);
  });

  it('a COPY response streams', () => {
    const { port, retry } = harness();
    retry.fromClient(q('COPY t TO STDOUT'));
    const copyOut = typedMessage(BackendMessage.CopyOutResponse, Buffer.from([0, 0, 0]));
    serve(retry, copyOut.subarray(0, 4));
    serve(retry, copyOut.subarray(4));
    assert.deepEqual(port.got, copyOut);
    const data = typedMessage(BackendMessage.CopyData, Buffer.from('1\n'));
    serve(retry, data);
    assert.deepEqual(port.got, Buffer.concat([copyOut, data]));
    serve(retry, ok('COPY 1'));
    assert.equal(retry.idle, true);
  });

  it('COPY FROM STDIN: the client data goes through at once, before the ReadyForQuery', () => {
    const { port, retry } = harness();
    const copy = q('COPY t FROM STDIN');
    retry.fromClient(copy);
    const copyIn = typedMessage(BackendMessage.CopyInResponse, Buffer.from([0, 0, 0]));
    serve(retry, copyIn);
    assert.deepEqual(port.got, copyIn, 'the CopyInResponse reaches the client');
    const data = typedMessage(FrontendMessage.CopyData, Buffer.from('1\n'));
    const done = typedMessage(FrontendMessage.CopyDone, Buffer.alloc(0));
    retry.fromClient(Buffer.concat([data, done]));
    assert.deepEqual(port.writes, [copy, Buffer.concat([data, done])], 'sent while DSQL waits for it');
    serve(retry, ok('COPY 1'));
    assert.equal(retry.idle, true);
    retry.fromClient(q('SELECT 1'));
    assert.deepEqual(port.writes.at(-1), q('SELECT 1'), 'pacing resumes after the COPY');
  });

  it('a cancel during the backoff delivers the original answer (cancelled)', async () => {
    const { port, clock, metrics, retry } = harness();
    const req = q('UPDATE t SET n = n + 1');
    retry.fromClient(Buffer.concat([req, q('SELECT 2')]));
    serve(retry, failed('I'));
    await settle();
    retry.cancel();
    await settle();
    assert.deepEqual(port.got, failed('I'));
    assert.equal(clock.pending, 0, 'the backoff timer is cleared');
    assert.deepEqual(port.writes, [req, q('SELECT 2')], 'the next request goes on');
    assert.deepEqual(await counted(metrics), { 'statement/cancelled': 1 });
  });

  it('statement_timeout stops retries', async () => {
    const { port, metrics, retry } = harness();
    port.timeoutMs = 50;
    retry.fromClient(q('UPDATE t SET n = n + 1'));
    serve(retry, failed('I'));
    await settle();
    assert.deepEqual(port.got, failed('I'));
    assert.equal(port.writes.length, 1);
    assert.deepEqual(await counted(metrics), { 'statement/exhausted': 1 });
  });

  it('a 40001 that leaves the session in a transaction (I->E) is not a statement retry', async () => {
    const { port, retry } = harness({ mode: 'statements' });
    retry.fromClient(q('BEGIN; UPDATE t SET n = 1'));
    serve(retry, commandComplete('BEGIN'), failed('E'));
    await settle();
    assert.deepEqual(port.got, Buffer.concat([commandComplete('BEGIN'), failed('E')]));
    assert.equal(port.writes.length, 1);
  });

  it('another error is never retried', async () => {
    const { port, retry } = harness();
    const other = Buffer.concat([
      errorResponse({ severity: 'ERROR', sqlstate: '40P01', message: 'deadlock' }),
      readyForQuery('I'),
    ]);
    retry.fromClient(q('UPDATE t SET n = 1'));
    serve(retry, other);
    await settle();
    assert.deepEqual(port.got, other);
    assert.equal(port.writes.length, 1);
  });
});

describe('transaction retry', () => {
  const begin = q('BEGIN');
  const update = q('UPDATE t SET n = n + 1');
  const select = q('SELECT n FROM t');
  const commit = q('COMMIT');
  const selected = (n: string): Buffer => Buffer.concat([dataRow(n), ok('SELECT 1', 'T')]);

  /** BEGIN, UPDATE and SELECT answered and delivered: the record the controller keeps. */
  function recorded(settings: Partial<RetrySettings> = {}) {
    const h = harness(settings);
    h.retry.fromClient(Buffer.concat([begin, update, select]));
    serve(h.retry, ok('BEGIN', 'T'), ok('UPDATE 1', 'T'), selected('5'));
    assert.deepEqual(h.port.writes, [begin, update, select]);
    return h;
  }

  /** Answers each hidden exchange in turn; returns what was written for them. */
  async function answerHidden(
    h: ReturnType<typeof harness>,
    from: number,
    answers: Buffer[],
  ): Promise<Buffer[]> {
    for (const a of answers) {
      await settle();
      serve(h.retry, a);
    }
    await settle();
    return h.port.writes.slice(from);
  }

  it('a 40001 at COMMIT (T->I): no ROLLBACK, the record replayed exactly, then COMMIT again (succeeded)', async () => {
    const h = recorded();
    h.retry.fromClient(commit);
    serve(h.retry, failed('I'));
    const from = h.port.writes.length;
    await h.clock.advance(200);
    const sent = await answerHidden(h, from, [ok('BEGIN', 'T'), ok('UPDATE 1', 'T'), selected('5')]);
    assert.deepEqual(sent, [begin, update, select, commit]);
    serve(h.retry, ok('COMMIT'));
    const before = Buffer.concat([ok('BEGIN', 'T'), ok('UPDATE 1', 'T'), selected('5')]);
    assert.deepEqual(h.port.got, Buffer.concat([before, ok('COMMIT')]), 'replayed answers hidden, no 40001');
    assert.deepEqual(await counted(h.metrics), {
      'transaction/succeeded': 1,
      attemptsCount: 1,
      attemptsSum: 2,
    });
    assert.equal(h.retry.idle, true);
  });

  it('a replayed answer that differs: ROLLBACK, the original 40001 delivered (mismatch)', async () => {
    const h = recorded();
    h.retry.fromClient(commit);
    const original = failed('I');
    serve(h.retry, original);
    const from = h.port.writes.length;
    await h.clock.advance(200);
    const sent = await answerHidden(h, from, [
      ok('BEGIN', 'T'),
      ok('UPDATE 1', 'T'),
      selected('6'),
      ok('ROLLBACK'),
    ]);
    assert.deepEqual(sent, [begin, update, select, q('ROLLBACK')]);
    const before = Buffer.concat([ok('BEGIN', 'T'), ok('UPDATE 1', 'T'), selected('5')]);
    assert.deepEqual(h.port.got, Buffer.concat([before, original]));
    assert.deepEqual(await counted(h.metrics), { 'transaction/mismatch': 1 });
    assert.equal(h.retry.idle, true);
  });

  it('a 40001 mid-transaction (T->E): ROLLBACK first, the replay, the request again', async () => {
    const h = recorded();
    const second = q('UPDATE u SET m = 1');
    h.retry.fromClient(second);
    serve(h.retry, failed('E'));
    const from = h.port.writes.length;
    await h.clock.advance(200);
    const sent = await answerHidden(h, from, [
      ok('ROLLBACK'),
      ok('BEGIN', 'T'),
      ok('UPDATE 1', 'T'),
      selected('5'),
    ]);
    assert.deepEqual(sent, [q('ROLLBACK'), begin, update, select, second]);
    serve(h.retry, ok('UPDATE 1', 'T'));
    assert.deepEqual(h.port.got.subarray(-ok('UPDATE 1', 'T').length), ok('UPDATE 1', 'T'));
    assert.equal(h.port.status(), 'T');
    assert.deepEqual(await counted(h.metrics), {
      'transaction/succeeded': 1,
      attemptsCount: 1,
      attemptsSum: 2,
    });
  });

  it('a mismatch mid-transaction leaves the client in an aborted transaction: ROLLBACK, BEGIN, SELECT 1/0', async () => {
    const h = recorded();
    const second = q('UPDATE u SET m = 1');
    h.retry.fromClient(second);
    const original = failed('E');
    serve(h.retry, original);
    const from = h.port.writes.length;
    await h.clock.advance(200);
    const divZero = Buffer.concat([
      errorResponse({ severity: 'ERROR', sqlstate: '22012', message: 'division by zero' }),
      readyForQuery('E'),
    ]);
    const sent = await answerHidden(h, from, [
      ok('ROLLBACK'),
      ok('BEGIN', 'T'),
      ok('UPDATE 0', 'T'),
      ok('ROLLBACK'),
      ok('BEGIN', 'T'),
      divZero,
    ]);
    assert.deepEqual(sent, [q('ROLLBACK'), begin, update, q('ROLLBACK'), begin, q('SELECT 1/0')]);
    assert.deepEqual(h.port.got.subarray(-original.length), original);
    assert.equal(h.port.status(), 'E');
    assert.deepEqual(await counted(h.metrics), { 'transaction/mismatch': 1 });
  });

  it('foreignAnswer() spoils the record: the 40001 at COMMIT is delivered (unreplayable)', async () => {
    const h = recorded();
    h.retry.foreignAnswer();
    h.retry.fromClient(commit);
    serve(h.retry, failed('I'));
    await settle();
    assert.deepEqual(h.port.writes, [begin, update, select, commit]);
    assert.deepEqual(h.port.got.subarray(-failed('I').length), failed('I'));
    assert.deepEqual(await counted(h.metrics), { 'transaction/unreplayable': 1 });
  });

  it('a transaction over the buffer is not replayed (too_large)', async () => {
    const h = recorded({ bufferBytes: 120 });
    h.retry.fromClient(commit);
    serve(h.retry, failed('I'));
    await settle();
    assert.deepEqual(h.port.writes, [begin, update, select, commit]);
    assert.deepEqual(await counted(h.metrics), { 'transaction/too_large': 1 });
  });

  it("mode 'statements' never replays a transaction", async () => {
    const h = recorded({ mode: 'statements' });
    h.retry.fromClient(commit);
    serve(h.retry, failed('I'));
    await h.clock.advance(200);
    assert.deepEqual(h.port.writes, [begin, update, select, commit]);
    assert.deepEqual(h.port.got.subarray(-failed('I').length), failed('I'));
    assert.deepEqual(await counted(h.metrics), {});
  });

  it('a named statement parsed in the transaction is closed before its replay', async () => {
    const h = harness();
    const parseBatch = Buffer.concat([frontendParse('p1', 'SELECT 1'), frontendSync()]);
    const parsedAnswer = Buffer.concat([typedMessage(BackendMessage.ParseComplete), readyForQuery('T')]);
    h.retry.fromClient(Buffer.concat([begin, parseBatch]));
    serve(h.retry, ok('BEGIN', 'T'), parsedAnswer);
    h.retry.fromClient(commit);
    serve(h.retry, failed('I'));
    const from = h.port.writes.length;
    await h.clock.advance(200);
    const closed = Buffer.concat([typedMessage(BackendMessage.CloseComplete), readyForQuery('I')]);
    const sent = await answerHidden(h, from, [ok('BEGIN', 'T'), closed, parsedAnswer]);
    assert.deepEqual(sent, [
      begin,
      Buffer.concat([frontendClose('S', 'p1'), frontendSync()]),
      parseBatch,
      commit,
    ]);
  });

  it('pipelined requests wait while a transaction is replayed', async () => {
    const h = recorded();
    const after = q('SELECT 42');
    h.retry.fromClient(Buffer.concat([commit, after]));
    serve(h.retry, failed('I'));
    const from = h.port.writes.length;
    await h.clock.advance(200);
    assert.equal(h.retry.idle, false);
    const sent = await answerHidden(h, from, [ok('BEGIN', 'T'), ok('UPDATE 1', 'T'), selected('5')]);
    assert.deepEqual(sent, [begin, update, select, commit], 'SELECT 42 not sent yet');
    serve(h.retry, ok('COMMIT'));
    assert.deepEqual(h.port.writes.at(-1), after);
  });
});
