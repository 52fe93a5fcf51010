/**
 * runSimpleQuery (src/compat/request.ts) against a scripted DSQL and a fake RequestIo: when a Query
 * is handed back unchanged, how DSQL's statements and the layer's own are run in order and their
 * answers merged, the hidden BEGIN/COMMIT/ROLLBACK around a multi-statement Query, the abort
 * statement after a local error inside a block, and exactly one ReadyForQuery per Query.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { runSimpleQuery } from '../../src/compat/request.js';
import type { TxnStatus } from '../../src/compat/session-state.js';
import { fakeIo, newSession, summary } from './compat-io-fake.js';
import { be } from './compat-prepared-fake.js';

const Q = (sql: string) => ({ type: 0x51, body: Buffer.from(`${sql}\0`) });
const ok = (tag: string, status: TxnStatus): Buffer[] => [be.complete(tag), be.rfq(status)];
const rows = (v: string, status: TxnStatus): Buffer[] => [
  be.rowDesc(['x']),
  be.dataRow([v]),
  be.complete('SELECT 1'),
  be.rfq(status),
];

/** The SQL of each Query the layer sent DSQL, in order. */
function sent(f: ReturnType<typeof fakeIo>): string[] {
  return f.up.decoded().flatMap((msgs) => msgs.map((m) => (m.t === 'Query' ? m.sql : m.t)));
}

describe('runSimpleQuery: pass', () => {
  for (const sql of ['select 1', 'select 1; select 2', 'begin', 'SET search_path = x']) {
    it(`'${sql}' has nothing of the layer's: handed back, DSQL untouched, no answer`, async () => {
      const f = fakeIo([]);
      assert.equal(await runSimpleQuery(Q(sql), f.io), 'pass');
      assert.equal(f.borrowed, 0);
      assert.deepEqual(f.client.written, []);
      assert.deepEqual(f.readies, []);
    });
  }
});

describe('runSimpleQuery: the layer answers', () => {
  it('a lone SET is answered locally with one ReadyForQuery; DSQL never borrowed', async () => {
    const f = fakeIo([]);
    assert.equal(await runSimpleQuery(Q('SET statement_timeout = 1000'), f.io), 'done');
    assert.equal(f.borrowed, 0);
    assert.deepEqual(summary(f.client), ['C:SET', 'Z:I']);
    assert.equal(f.io.session.params.statementTimeoutMs, 1000);
  });

  it('a multi-statement Query outside a block: hidden BEGIN/COMMIT, answers in statement order', async () => {
    const f = fakeIo([ok('BEGIN', 'T'), rows('1', 'T'), rows('2', 'T'), ok('COMMIT', 'I')]);
    const sql = 'select 1; SET statement_timeout = 1000; select 2';
    assert.equal(await runSimpleQuery(Q(sql), f.io), 'done');
    assert.deepEqual(sent(f), ['BEGIN', 'select 1', 'select 2', 'COMMIT']);
    assert.deepEqual(summary(f.client), ['T', 'D', 'C:SELECT 1', 'C:SET', 'T', 'D', 'C:SELECT 1', 'Z:I']);
    assert.deepEqual(f.readies, ['I']);
    assert.deepEqual(f.texts, ['select 1', 'select 2']);
    assert.equal(f.io.session.params.statementTimeoutMs, 1000, 'committed');
    assert.equal(f.up.pendingAnswers, 0);
  });

  it('consecutive DSQL statements go as one Query; an error there rolls back the hidden block and the SET', async () => {
    const f = fakeIo([
      ok('BEGIN', 'T'),
      [be.error('22012', 'division by zero'), be.rfq('E')],
      ok('ROLLBACK', 'I'),
    ]);
    const sql = 'SET statement_timeout = 1000; select 1/0; select 3';
    await runSimpleQuery(Q(sql), f.io);
    assert.deepEqual(sent(f), ['BEGIN', 'select 1/0;\nselect 3', 'ROLLBACK']);
    assert.deepEqual(summary(f.client), ['C:SET', 'E:22012', 'Z:I']);
    assert.equal(f.io.session.params.statementTimeoutMs, 0, 'undone with the implicit transaction');
  });

  it('a failing COMMIT of the hidden block reaches the client and undoes the SET', async () => {
    const f = fakeIo([ok('BEGIN', 'T'), rows('1', 'T'), [be.error('40001', 'conflict'), be.rfq('I')]]);
    await runSimpleQuery(Q('SET statement_timeout = 7; select 1'), f.io);
    assert.deepEqual(summary(f.client), ['C:SET', 'T', 'D', 'C:SELECT 1', 'E:40001', 'Z:I']);
    assert.equal(f.io.session.params.statementTimeoutMs, 0);
  });

  it("inside a block: no hidden BEGIN; a local error aborts DSQL's transaction with a hidden statement", async () => {
    const f = fakeIo([[be.error('22012', 'division by zero'), be.rfq('E')]], { status: 'T' });
    await runSimpleQuery(Q("SET statement_timeout = 'abc'"), f.io);
    assert.deepEqual(sent(f), ['SELECT 1/0']);
    assert.deepEqual(summary(f.client), ['E:22023', 'Z:E'], "the abort statement's error is not shown");
  });

  it('in a failed block: 25P02 without touching DSQL', async () => {
    const f = fakeIo([], { status: 'E' });
    await runSimpleQuery(Q('SET statement_timeout = 5'), f.io);
    assert.equal(f.borrowed, 0);
    assert.deepEqual(summary(f.client), ['E:25P02', 'Z:E']);
  });

  it('statements after a failed local one in a multi-statement Query are not run', async () => {
    const f = fakeIo([ok('BEGIN', 'T'), [be.error('22012', 'x'), be.rfq('E')], ok('ROLLBACK', 'I')]);
    await runSimpleQuery(Q("SET statement_timeout = 'abc'; select 1"), f.io);
    assert.deepEqual(sent(f), ['BEGIN', 'SELECT 1/0', 'ROLLBACK']);
    assert.deepEqual(summary(f.client), ['E:22023', 'Z:I']);
  });

  it('a Query with its own BEGIN/COMMIT is not wrapped again', async () => {
    const f = fakeIo([ok('BEGIN', 'T'), ok('COMMIT', 'I')]);
    await runSimpleQuery(Q('BEGIN; SET statement_timeout = 9; COMMIT'), f.io);
    assert.deepEqual(sent(f), ['BEGIN', 'COMMIT']);
    assert.deepEqual(summary(f.client), ['C:BEGIN', 'C:SET', 'C:COMMIT', 'Z:I']);
    assert.equal(f.io.session.params.statementTimeoutMs, 9);
  });

  it('BEGIN; SET; ROLLBACK in one Query undoes the SET, as PostgreSQL', async () => {
    const f = fakeIo([ok('BEGIN', 'T'), ok('ROLLBACK', 'I')]);
    await runSimpleQuery(Q('BEGIN; SET statement_timeout = 9; ROLLBACK'), f.io);
    assert.deepEqual(summary(f.client), ['C:BEGIN', 'C:SET', 'C:ROLLBACK', 'Z:I']);
    assert.equal(f.rollbacks, 1);
    assert.equal(f.io.session.params.statementTimeoutMs, 0);
  });

  it('BEGIN; SET LOCAL in one Query: the SET LOCAL is inside the block (no warning)', async () => {
    const f = fakeIo([ok('BEGIN', 'T')]);
    await runSimpleQuery(Q('BEGIN; SET LOCAL statement_timeout = 9'), f.io);
    assert.deepEqual(summary(f.client), ['C:BEGIN', 'C:SET', 'Z:T']);
    assert.equal(f.io.session.params.statementTimeoutMs, 9);
    f.io.session.params.endTransaction(true);
    assert.equal(f.io.session.params.statementTimeoutMs, 0, 'SET LOCAL ends with the transaction');
  });

  it('every Query the layer takes ends in exactly one ReadyForQuery', async () => {
    const cases: Array<[string, Buffer[][], TxnStatus]> = [
      ['SHOW statement_timeout', [], 'I'],
      ['SHOW statement_timeout; SHOW client_min_messages', [ok('BEGIN', 'T'), ok('COMMIT', 'I')], 'I'],
      ['select 1; RESET ALL', [ok('BEGIN', 'T'), rows('1', 'T'), ok('COMMIT', 'I')], 'I'],
      ['SET client_min_messages = warning', [], 'T'],
    ];
    for (const [sql, answers, status] of cases) {
      const f = fakeIo(answers, { status, session: newSession() });
      assert.equal(await runSimpleQuery(Q(sql), f.io), 'done', sql);
      assert.equal(summary(f.client).filter((m) => m.startsWith('Z')).length, 1, sql);
      assert.equal(f.readies.length, 1, sql);
      assert.equal(f.up.pendingAnswers, 0, sql);
    }
  });
});
