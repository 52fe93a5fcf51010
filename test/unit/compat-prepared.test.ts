import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ExchangeOutcome } from '../../src/compat/prepared.js';
import {
  PROTOCOL_NAME_PREFIX,
  runDeallocate,
  runExecute,
  runPrepare,
  SqlPreparedStatements,
} from '../../src/compat/prepared.js';
import { ProxyError } from '../../src/errors.js';
import { be, errorFields, RecordingClient, ScriptedUpstream } from './compat-prepared-fake.js';

const P1 = `${PROTOCOL_NAME_PREFIX}1`;

function prep(name: string, body: string, types: string[] = []) {
  return { kind: 'prepare' as const, name, types, body };
}
function exec(name: string, args: string[] = []) {
  return { kind: 'execute' as const, name, args };
}

/** A registry holding `name` as the first statement, with the given parameter types. */
function registryWith(name: string, oids: number[], typeNames?: string[]): SqlPreparedStatements {
  const registry = new SqlPreparedStatements();
  registry.add({
    name,
    protocolName: registry.nextProtocolName(),
    parseBody: Buffer.alloc(0),
    paramTypeOids: oids,
    paramTypeNames: typeNames,
  });
  return registry;
}

function assertError(
  outcome: ExchangeOutcome,
  code: string,
  message: string,
  status: string,
): Record<string, string> {
  assert.equal(outcome.ok, false);
  if (outcome.ok) throw new Error('unreachable');
  assert.equal(outcome.status, status);
  assert.equal(String.fromCharCode(outcome.error.type), 'E');
  const fields = errorFields(outcome.error.body);
  assert.equal(fields.C, code);
  assert.equal(fields.M, message);
  return fields;
}

describe('PREPARE', () => {
  it('parses and describes the body under a protocol name, registers it and answers PREPARE', async () => {
    const up = new ScriptedUpstream([[be.parseComplete(), be.paramDesc([]), be.rowDesc(['a']), be.rfq('I')]]);
    const client = new RecordingClient();
    const registry = new SqlPreparedStatements();
    const outcome = await runPrepare(prep('q', 'select 1 as a'), registry, up, client, 'I');
    assert.deepEqual(outcome, { ok: true, status: 'I' });
    assert.deepEqual(up.decoded(), [
      [
        { t: 'Parse', name: P1, sql: 'select 1 as a', oids: [] },
        { t: 'Describe', target: 'S', name: P1 },
        { t: 'Sync' },
      ],
    ]);
    assert.deepEqual(client.messages(), [['C', Buffer.from('PREPARE\0')]]);
    const entry = registry.get('q');
    assert.ok(entry);
    assert.equal(entry.protocolName, P1);
    assert.deepEqual(entry.paramTypeOids, []);
    // The Parse body as sent (replayed on a move): the first written message without its header.
    const first = up.written[0] ?? Buffer.alloc(0);
    assert.deepEqual(entry.parseBody, first.subarray(5, first.readInt32BE(1) + 1));
    assert.equal(up.pendingAnswers, 0);
  });

  it('resolves declared type names by regtype with the names as Bind values, then parses with their OIDs', async () => {
    const types = ['pg_catalog.oid', 'integer[]', '"My ""T"\'s'];
    const up = new ScriptedUpstream([
      [
        be.parseComplete(),
        be.bindComplete(),
        be.dataRow(['26', '1007', '99999']),
        be.complete('SELECT 1'),
        be.rfq('T'),
      ],
      // The statement uses a fourth parameter the server infers (text).
      [be.parseComplete(), be.paramDesc([26, 1007, 99999, 25]), be.noData(), be.rfq('T')],
    ]);
    const client = new RecordingClient();
    const registry = new SqlPreparedStatements();
    const body = 'insert into t values ($1, $2, $3, $4)';
    const outcome = await runPrepare(prep('ins', body, types), registry, up, client, 'T');
    assert.deepEqual(outcome, { ok: true, status: 'T' });
    const [resolve, parse] = up.decoded();
    assert.deepEqual(resolve, [
      {
        t: 'Parse',
        name: '',
        sql: 'SELECT $1::pg_catalog.regtype::pg_catalog.oid, $2::pg_catalog.regtype::pg_catalog.oid, $3::pg_catalog.regtype::pg_catalog.oid',
        oids: [25, 25, 25],
      },
      { t: 'Bind', portal: '', statement: '', paramFormats: [], values: types, resultFormats: [] },
      { t: 'Execute', portal: '', maxRows: 0 },
      { t: 'Sync' },
    ]);
    assert.deepEqual(parse?.[0], { t: 'Parse', name: P1, sql: body, oids: [26, 1007, 99999] });
    assert.deepEqual(registry.get('ins')?.paramTypeOids, [26, 1007, 99999, 25]);
    assert.deepEqual(client.messages(), [['C', Buffer.from('PREPARE\0')]]);
  });

  it("passes the server's 42704 for an unknown type on and parses nothing", async () => {
    const up = new ScriptedUpstream([
      [be.parseComplete(), be.error('42704', 'type "nosuch" does not exist'), be.rfq('I')],
    ]);
    const client = new RecordingClient();
    const registry = new SqlPreparedStatements();
    const outcome = await runPrepare(prep('q', 'select $1', ['nosuch']), registry, up, client, 'I');
    assertError(outcome, '42704', 'type "nosuch" does not exist', 'I');
    assert.equal(up.written.length, 1);
    assert.equal(registry.size, 0);
    assert.deepEqual(client.messages(), []);
  });

  it('answers 42P05 for a name that exists without touching the upstream', async () => {
    const registry = registryWith('q', []);
    const up = new ScriptedUpstream([]);
    const client = new RecordingClient();
    const outcome = await runPrepare(prep('q', 'select 2'), registry, up, client, 'T');
    assertError(outcome, '42P05', 'prepared statement "q" already exists', 'T');
    assert.equal(up.written.length, 0);
    assert.deepEqual(client.messages(), []);
  });

  it("returns the server's error for a body it refuses, with the status it reports, and registers nothing", async () => {
    const up = new ScriptedUpstream([[be.error('42601', 'syntax error at or near "selec"'), be.rfq('E')]]);
    const client = new RecordingClient();
    const registry = new SqlPreparedStatements();
    const outcome = await runPrepare(prep('q', 'selec 1'), registry, up, client, 'T');
    assertError(outcome, '42601', 'syntax error at or near "selec"', 'E');
    assert.equal(registry.get('q'), undefined);
    assert.deepEqual(client.messages(), []);
  });

  it('passes notices and parameter changes on as they come, before PREPARE', async () => {
    const up = new ScriptedUpstream([
      [
        be.notice('hello'),
        be.parseComplete(),
        be.parameterStatus('x', 'y'),
        be.paramDesc([23]),
        be.noData(),
        be.rfq('I'),
      ],
    ]);
    const client = new RecordingClient();
    await runPrepare(prep('q', 'select $1::int'), new SqlPreparedStatements(), up, client, 'I');
    assert.deepEqual(
      client.messages().map(([t]) => t),
      ['N', 'S', 'C'],
    );
  });

  it('refuses every statement in a failed transaction (25P02), as PostgreSQL does', async () => {
    const up = new ScriptedUpstream([]);
    const client = new RecordingClient();
    const registry = new SqlPreparedStatements();
    const message = 'current transaction is aborted, commands ignored until end of transaction block';
    assertError(await runPrepare(prep('q', 'select 1'), registry, up, client, 'E'), '25P02', message, 'E');
    assertError(await runExecute(exec('q'), registry, up, client, 'E'), '25P02', message, 'E');
    const dealloc = { kind: 'deallocate' as const, name: null };
    assertError(await runDeallocate(dealloc, registry, up, client, 'E'), '25P02', message, 'E');
    assert.equal(up.written.length, 0);
  });

  it('gives each statement a new protocol name, never reusing one after DEALLOCATE', async () => {
    const registry = new SqlPreparedStatements();
    const client = new RecordingClient();
    const ok = (): Buffer[] => [be.parseComplete(), be.paramDesc([]), be.noData(), be.rfq('I')];
    await runPrepare(prep('a', 'select 1'), registry, new ScriptedUpstream([ok()]), client, 'I');
    await runDeallocate(
      { kind: 'deallocate', name: 'a' },
      registry,
      new ScriptedUpstream([[be.closeComplete(), be.rfq('I')]]),
      client,
      'I',
    );
    await runPrepare(prep('a', 'select 1'), registry, new ScriptedUpstream([ok()]), client, 'I');
    assert.equal(registry.get('a')?.protocolName, `${PROTOCOL_NAME_PREFIX}2`);
  });
});

describe('EXECUTE', () => {
  it('answers 26000 for an unknown name and 42601 with a DETAIL for a wrong argument count, locally', async () => {
    const registry = registryWith('q', [23, 25]);
    const up = new ScriptedUpstream([]);
    const client = new RecordingClient();
    assertError(
      await runExecute(exec('nope'), registry, up, client, 'I'),
      '26000',
      'prepared statement "nope" does not exist',
      'I',
    );
    const fields = assertError(
      await runExecute(exec('q', ['1']), registry, up, client, 'T'),
      '42601',
      'wrong number of parameters for prepared statement "q"',
      'T',
    );
    assert.equal(fields.D, 'Expected 2 parameters but got 1.');
    assert.equal(up.written.length, 0);
  });

  it('binds literals and NULL as text without evaluating them, and answers in the simple-query shape', async () => {
    const registry = registryWith('q', [25, 25, 25, 25, 23, 25]);
    const args = ["'it''s a \\ back\\slash'", 'NULL', "'ünï ✓ 😀'", "$x$ $$ 'q' $x$", '42', 'null'];
    const up = new ScriptedUpstream([
      [
        be.bindComplete(),
        be.rowDesc(['a']),
        be.dataRow(['x']),
        be.dataRow([null]),
        be.complete('SELECT 2'),
        be.rfq('I'),
      ],
    ]);
    const client = new RecordingClient();
    const outcome = await runExecute(exec('q', args), registry, up, client, 'I');
    assert.deepEqual(outcome, { ok: true, status: 'I' });
    assert.deepEqual(up.decoded(), [
      [
        {
          t: 'Bind',
          portal: '',
          statement: P1,
          paramFormats: [],
          values: ["it's a \\ back\\slash", null, 'ünï ✓ 😀', " $$ 'q' ", '42', null],
          resultFormats: [],
        },
        { t: 'Describe', target: 'P', name: '' },
        { t: 'Execute', portal: '', maxRows: 0 },
        { t: 'Sync' },
      ],
    ]);
    assert.deepEqual(client.messages(), [
      ['T', be.rowDesc(['a']).subarray(5)],
      ['D', be.dataRow(['x']).subarray(5)],
      ['D', be.dataRow([null]).subarray(5)],
      ['C', Buffer.from('SELECT 2\0')],
    ]);
  });

  it('binds no values for a statement without parameters', async () => {
    const registry = registryWith('q', []);
    const up = new ScriptedUpstream([
      [be.bindComplete(), be.noData(), be.complete('INSERT 0 1'), be.rfq('T')],
    ]);
    const client = new RecordingClient();
    const outcome = await runExecute(exec('q'), registry, up, client, 'T');
    assert.deepEqual(outcome, { ok: true, status: 'T' });
    const bind = up.decoded()[0]?.[0];
    assert.ok(bind?.t === 'Bind');
    assert.deepEqual(bind.values, []);
    // No BindComplete or NoData reaches the client: just the inner statement's tag.
    assert.deepEqual(client.messages(), [['C', Buffer.from('INSERT 0 1\0')]]);
  });

  it("evaluates expression arguments upstream cast to the parameter's type (names fetched once, kept)", async () => {
    const registry = registryWith('q', [23, 25, 1042]);
    const up = new ScriptedUpstream([
      // format_type of the three parameter types
      [
        be.parseComplete(),
        be.bindComplete(),
        be.dataRow(['integer', 'text', 'bpchar']),
        be.complete('SELECT 1'),
        be.rfq('I'),
      ],
      // the evaluation: 1.6 -> 2, lower('AB') -> ab
      [be.parseComplete(), be.bindComplete(), be.dataRow(['2', 'ab']), be.complete('SELECT 1'), be.rfq('I')],
      [be.bindComplete(), be.noData(), be.complete('INSERT 0 1'), be.rfq('I')],
      // second EXECUTE: evaluation only
      [be.parseComplete(), be.bindComplete(), be.dataRow([null]), be.complete('SELECT 1'), be.rfq('I')],
      [be.bindComplete(), be.noData(), be.complete('INSERT 0 1'), be.rfq('I')],
    ]);
    const client = new RecordingClient();
    await runExecute(exec('q', ['1.6', "lower('AB') -- why", "'x'"]), registry, up, client, 'I');
    const [names, evaluation, run] = up.decoded();
    assert.deepEqual(names?.[0], {
      t: 'Parse',
      name: '',
      sql: 'SELECT pg_catalog.format_type($1, -1), pg_catalog.format_type($2, -1), pg_catalog.format_type($3, -1)',
      oids: [26, 26, 26],
    });
    assert.deepEqual(names?.[1], {
      t: 'Bind',
      portal: '',
      statement: '',
      paramFormats: [],
      values: ['23', '25', '1042'],
      resultFormats: [],
    });
    assert.deepEqual(evaluation?.[0], {
      t: 'Parse',
      name: '',
      sql: "SELECT (1.6\n)::integer::pg_catalog.text, (lower('AB') -- why\n)::text::pg_catalog.text",
      oids: [],
    });
    assert.deepEqual(
      evaluation?.slice(1).map((m) => m.t),
      ['Bind', 'Execute', 'Sync'],
    );
    assert.ok(run?.[0]?.t === 'Bind');
    assert.deepEqual(run[0].values, ['2', 'ab', 'x']);
    assert.deepEqual(registry.get('q')?.paramTypeNames, ['integer', 'text', 'bpchar']);

    await runExecute(exec('q', ['NULL', "'t'", "upper('c')"]), registry, up, client, 'I');
    const [evaluation2, run2] = up.decoded().slice(3);
    assert.deepEqual(evaluation2?.[0], {
      t: 'Parse',
      name: '',
      sql: "SELECT (upper('c')\n)::bpchar::pg_catalog.text",
      oids: [],
    });
    assert.ok(run2?.[0]?.t === 'Bind');
    assert.deepEqual(run2[0].values, [null, 't', null]);
    assert.equal(up.pendingAnswers, 0);
  });

  it('returns an evaluation error and binds nothing', async () => {
    const registry = registryWith('q', [23], ['integer']);
    const up = new ScriptedUpstream([
      [be.parseComplete(), be.bindComplete(), be.error('22012', 'division by zero'), be.rfq('E')],
    ]);
    const client = new RecordingClient();
    const outcome = await runExecute(exec('q', ['1/0']), registry, up, client, 'T');
    assertError(outcome, '22012', 'division by zero', 'E');
    assert.equal(up.written.length, 1);
    assert.deepEqual(client.messages(), []);
  });

  it('writes the rows sent before an error and returns the error with the reported status', async () => {
    const registry = registryWith('q', []);
    const up = new ScriptedUpstream([
      [
        be.bindComplete(),
        be.rowDesc(['a']),
        be.dataRow(['1']),
        be.error('22012', 'division by zero'),
        be.rfq('E'),
      ],
    ]);
    const client = new RecordingClient();
    const outcome = await runExecute(exec('q'), registry, up, client, 'T');
    assertError(outcome, '22012', 'division by zero', 'E');
    assert.deepEqual(
      client.messages().map(([t]) => t),
      ['T', 'D'],
    );
  });

  it('passes EmptyQueryResponse and notices on', async () => {
    const registry = registryWith('q', []);
    const up = new ScriptedUpstream([
      [be.bindComplete(), be.noData(), be.notice('n'), be.emptyQuery(), be.rfq('I')],
    ]);
    const client = new RecordingClient();
    await runExecute(exec('q'), registry, up, client, 'I');
    assert.deepEqual(
      client.messages().map(([t]) => t),
      ['N', 'I'],
    );
  });

  it('rejects with a ProxyError on a message that does not belong in the exchange', async () => {
    const registry = registryWith('q', []);
    const up = new ScriptedUpstream([[be.bindComplete(), be.closeComplete(), be.rfq('I')]]);
    await assert.rejects(runExecute(exec('q'), registry, up, new RecordingClient(), 'I'), (err: unknown) => {
      return err instanceof ProxyError && err.code === 'UPSTREAM_PROTOCOL';
    });
  });
});

describe('DEALLOCATE', () => {
  it('closes the protocol-level statement and answers DEALLOCATE', async () => {
    const registry = registryWith('q', []);
    const up = new ScriptedUpstream([[be.closeComplete(), be.rfq('T')]]);
    const client = new RecordingClient();
    const outcome = await runDeallocate({ kind: 'deallocate', name: 'q' }, registry, up, client, 'T');
    assert.deepEqual(outcome, { ok: true, status: 'T' });
    assert.deepEqual(up.decoded(), [[{ t: 'Close', target: 'S', name: P1 }, { t: 'Sync' }]]);
    assert.equal(registry.get('q'), undefined);
    assert.deepEqual(client.messages(), [['C', Buffer.from('DEALLOCATE\0')]]);
  });

  it('answers 26000 for an unknown name locally', async () => {
    const up = new ScriptedUpstream([]);
    const outcome = await runDeallocate(
      { kind: 'deallocate', name: 'x' },
      new SqlPreparedStatements(),
      up,
      new RecordingClient(),
      'I',
    );
    assertError(outcome, '26000', 'prepared statement "x" does not exist', 'I');
    assert.equal(up.written.length, 0);
  });

  it('sends DEALLOCATE ALL as a simple Query, clears the registry and answers DEALLOCATE ALL', async () => {
    const registry = registryWith('q', []);
    const up = new ScriptedUpstream([[be.complete('DEALLOCATE ALL'), be.rfq('I')]]);
    const client = new RecordingClient();
    const outcome = await runDeallocate({ kind: 'deallocate', name: null }, registry, up, client, 'I');
    assert.deepEqual(outcome, { ok: true, status: 'I' });
    assert.deepEqual(up.decoded(), [[{ t: 'Query', sql: 'DEALLOCATE ALL' }]]);
    assert.equal(registry.size, 0);
    assert.deepEqual(client.messages(), [['C', Buffer.from('DEALLOCATE ALL\0')]]);
  });

  it('keeps the registry when DEALLOCATE ALL fails upstream', async () => {
    const registry = registryWith('q', []);
    const up = new ScriptedUpstream([[be.error('XX000', 'boom'), be.rfq('I')]]);
    const client = new RecordingClient();
    const outcome = await runDeallocate({ kind: 'deallocate', name: null }, registry, up, client, 'I');
    assertError(outcome, 'XX000', 'boom', 'I');
    assert.equal(registry.size, 1);
    assert.deepEqual(client.messages(), []);
  });
});
