/**
 * runBatch (src/compat/batch.ts) against a scripted DSQL and a fake RequestIo: when a batch is handed
 * back, the layer's virtual statements and portals answered locally, DSQL's messages forwarded one at
 * a time with a Flush and their answers passed on in order, the abort statement after a local error
 * once DSQL has run part of the batch, and exactly one ReadyForQuery at the Sync.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { runBatch } from '../../src/compat/batch.js';
import type { TxnStatus } from '../../src/compat/session-state.js';
import type { TypedFrame } from '../../src/protocol/frame-reader.js';
import { fakeIo, summary } from './compat-io-fake.js';
import { be } from './compat-prepared-fake.js';

function frame(type: string, ...parts: Buffer[]): TypedFrame {
  return { type: type.charCodeAt(0), body: Buffer.concat(parts) };
}
const z = (s: string): Buffer => Buffer.from(`${s}\0`);
const i16 = (n: number): Buffer => Buffer.from([n >> 8, n & 0xff]);
const Parse = (name: string, sql: string) => frame('P', z(name), z(sql), i16(0));
const Bind = (portal: string, stmt: string) => frame('B', z(portal), z(stmt), i16(0), i16(0), i16(0));
const Describe = (target: 'S' | 'P', name: string) => frame('D', Buffer.from(target), z(name));
const Execute = (portal: string) => frame('E', z(portal), Buffer.alloc(4));
const Close = (target: 'S' | 'P', name: string) => frame('C', Buffer.from(target), z(name));
const Sync = frame('S');
const Flush = frame('H');

/** The type letters of each write the layer made to DSQL (decoded here, Flush included). */
function writes(f: ReturnType<typeof fakeIo>): string[] {
  return f.up.written.map((buf) => {
    let out = '';
    for (let at = 0; at < buf.length; at += 1 + buf.readInt32BE(at + 1)) out += String.fromCharCode(buf[at]!);
    return out;
  });
}

async function run(first: TypedFrame, rest: TypedFrame[], answers: Buffer[][], status: TxnStatus = 'I') {
  const f = fakeIo(answers, { status, frames: rest });
  const outcome = await runBatch(first, f.io);
  return { f, outcome };
}

describe('runBatch: pass', () => {
  it("a batch that opens with DSQL's Parse is handed back untouched", async () => {
    const { f, outcome } = await run(Parse('', 'select 1'), [Bind('', ''), Execute(''), Sync], []);
    assert.equal(outcome, 'pass');
    assert.equal(f.borrowed, 0);
    assert.deepEqual(f.client.written, []);
  });

  it('a Parse of two statements is not a virtual statement', async () => {
    const { outcome } = await run(Parse('', 'SET statement_timeout = 1; select 1'), [Sync], []);
    assert.equal(outcome, 'pass');
  });
});

describe('runBatch: virtual statements', () => {
  it('Parse/Bind/Describe/Execute/Close of SHOW answered locally, one ReadyForQuery', async () => {
    const { f, outcome } = await run(
      Parse('s1', 'SHOW statement_timeout'),
      [Describe('S', 's1'), Bind('p', 's1'), Describe('P', 'p'), Execute('p'), Close('P', 'p'), Sync],
      [],
    );
    assert.equal(outcome, 'done');
    assert.equal(f.borrowed, 0, 'DSQL never borrowed');
    assert.deepEqual(summary(f.client), ['1', 't', 'T', '2', 'T', 'D', 'C:SHOW', '3', 'Z:I']);
    assert.ok(f.io.virtualStatements.has('s1'), 'kept after the batch');
    assert.equal(f.io.virtualPortals.size, 0, 'portals end with the transaction');
    assert.deepEqual(f.readies, ['I']);
  });

  it('a SET through the extended protocol sets the parameter', async () => {
    const { f } = await run(Parse('', 'SET statement_timeout = 250'), [Bind('', ''), Execute(''), Sync], []);
    assert.deepEqual(summary(f.client), ['1', '2', 'C:SET', 'Z:I']);
    assert.equal(f.io.session.params.statementTimeoutMs, 250);
  });
});

describe('runBatch: mixed batches', () => {
  it("DSQL's messages are forwarded one at a time with a Flush, answers merged in order", async () => {
    const { f } = await run(
      Parse('v', 'SET statement_timeout = 5'),
      [Parse('q', 'select 1'), Bind('', 'v'), Execute(''), Bind('p', 'q'), Execute('p'), Flush, Sync],
      [
        [be.parseComplete()],
        [be.bindComplete()],
        [be.dataRow(['1']), be.complete('SELECT 1')],
        [],
        [be.rfq('I')],
      ],
    );
    assert.deepEqual(writes(f), ['PH', 'BH', 'EH', 'H', 'S']);
    assert.deepEqual(summary(f.client), ['1', '1', '2', 'C:SET', '2', 'D', 'C:SELECT 1', 'Z:I']);
    assert.equal(f.up.pendingAnswers, 0);
    assert.deepEqual(f.readies, ['I']);
  });

  it('an error from DSQL skips the rest of the batch until the Sync', async () => {
    const { f } = await run(
      Parse('v', 'SET statement_timeout = 5'),
      [Parse('q', 'select nope'), Bind('', 'v'), Execute(''), Sync],
      [[be.error('42703', 'column does not exist')], [be.rfq('I')]],
    );
    assert.deepEqual(writes(f), ['PH', 'S']);
    assert.deepEqual(summary(f.client), ['1', 'E:42703', 'Z:I']);
    assert.equal(f.io.session.params.statementTimeoutMs, 0, 'the SET after the error never ran');
  });

  it('a local error after DSQL ran part of the batch outside a block: the abort statement is sent', async () => {
    const { f } = await run(
      Parse('v', "SET statement_timeout = 'abc'"),
      [
        Parse('q', 'insert into t values (1)'),
        Bind('', 'q'),
        Execute(''),
        Bind('', 'v'),
        Execute(''),
        Execute(''),
        Sync,
      ],
      [
        [be.parseComplete()],
        [be.bindComplete()],
        [be.complete('INSERT 0 1')],
        [
          be.parseComplete(),
          be.bindComplete(),
          be.notice('passed on: asynchronous'),
          be.error('22012', 'division by zero'),
        ],
        [be.rfq('I')],
      ],
    );
    assert.deepEqual(writes(f), ['PH', 'BH', 'EH', 'PBEH', 'S']);
    const abort = f.up.written[3]!;
    assert.ok(abort.includes(Buffer.from('SELECT 1/0\0')), 'the abort statement');
    assert.deepEqual(summary(f.client), ['1', '1', '2', 'C:INSERT 0 1', '2', 'E:22023', 'N:00000', 'Z:I']);
  });

  it("a local error inside a block aborts DSQL's transaction; no Sync when DSQL was not used", async () => {
    const { f } = await run(
      Parse('', "SET statement_timeout = 'abc'"),
      [Bind('', ''), Execute(''), Parse('', 'select 1'), Sync],
      [[be.error('22012', 'division by zero'), be.rfq('E')]],
      'T',
    );
    assert.deepEqual(writes(f), ['Q']);
    assert.deepEqual(summary(f.client), ['1', '2', 'E:22023', 'Z:E']);
  });

  it("a forwarded Parse of the unnamed statement replaces the layer's unnamed statement", async () => {
    const { f } = await run(
      Parse('', 'SET statement_timeout = 5'),
      [Parse('', 'select 1'), Bind('', ''), Execute(''), Sync],
      [
        [be.parseComplete()],
        [be.bindComplete()],
        [be.dataRow(['1']), be.complete('SELECT 1')],
        [be.rfq('I')],
      ],
    );
    assert.deepEqual(writes(f), ['PH', 'BH', 'EH', 'S']);
    assert.deepEqual(summary(f.client), ['1', '1', '2', 'D', 'C:SELECT 1', 'Z:I']);
    assert.equal(f.io.session.params.statementTimeoutMs, 0);
    assert.equal(f.io.virtualStatements.has(''), false);
  });
});
