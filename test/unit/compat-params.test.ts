/** Session parameters the proxy answers for itself (src/compat/params.ts, src/compat/param-catalogue.ts). */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatValue, PARAM_SPECS, paramSpec, parseBool, rint } from '../../src/compat/param-catalogue.js';
import { paramClass, SessionParams } from '../../src/compat/params.js';

const v = (value: string, kind = 'string') => [{ value, kind }];
const fresh = (
  startup: Record<string, string> = {},
  defaults?: { statementTimeoutMs?: number; idleInTransactionTimeoutMs?: number },
) => new SessionParams(new Map(Object.entries(startup)), defaults);

describe('paramClass', () => {
  const table: [string, string][] = [
    ['application_name', 'dsql'],
    ['DateStyle', 'dsql'],
    ['TIMEZONE', 'dsql'],
    ['search_path', 'dsql'],
    ['enable_seqscan', 'dsql'],
    ['role', 'dsql'],
    ['statement_timeout', 'carried'],
    ['Statement_Timeout', 'carried'],
    ['idle_in_transaction_session_timeout', 'carried'],
    ['transaction_timeout', 'carried'],
    ['client_min_messages', 'carried'],
    ['lock_timeout', 'harmless'],
    ['synchronize_seqscans', 'harmless'],
    ['row_security', 'harmless'],
    ['check_function_bodies', 'harmless'],
    ['escape_string_warning', 'harmless'],
    ['default_transaction_deferrable', 'harmless'],
    ['work_mem', 'harmless'],
    ['maintenance_work_mem', 'harmless'],
    ['max_parallel_workers_per_gather', 'harmless'],
    ['geqo', 'harmless'],
    ['jit', 'harmless'],
    ['standard_conforming_strings', 'fixed'],
    ['default_transaction_read_only', 'fixed'],
    ['default_transaction_isolation', 'fixed'],
    ['transaction_isolation', 'fixed'],
    ['transaction_read_only', 'fixed'],
    ['transaction_deferrable', 'fixed'],
    ['quote_all_identifiers', 'fixed'],
    ['default_tablespace', 'fixed'],
    ['default_table_access_method', 'fixed'],
    ['default_with_oids', 'fixed'],
    ['bytea_output', 'fixed'],
    ['array_nulls', 'fixed'],
    ['xmloption', 'fixed'],
    ['session_replication_role', 'fixed'],
    ['exit_on_error', 'fixed'],
    ['idle_session_timeout', 'fixed'],
    ['lc_messages', 'fixed'],
    ['log_min_duration_statement', 'fixed'],
    ['log_connections', 'fixed'],
    ['lc_numeric', 'unknown'],
    ['restrict_nonsystem_relation_kind', 'unknown'],
    ['myapp.tenant', 'unknown'],
    ['server_version', 'unknown'],
  ];
  for (const [name, cls] of table) it(`${name} is ${cls}`, () => assert.equal(paramClass(name), cls));
});

describe('accept and refuse, per name', () => {
  // [name, value, accepted?, SHOW afterwards or the error's SQLSTATE]
  const table: [string, string, boolean, string][] = [
    ['statement_timeout', '5000', true, '5s'],
    ['statement_timeout', '5x', false, '22023'],
    ['statement_timeout', '-1', false, '22023'],
    ['lock_timeout', '10s', true, '10s'],
    ['idle_in_transaction_session_timeout', '1min', true, '1min'],
    ['transaction_timeout', '0', true, '0'],
    ['client_min_messages', 'WARNING', true, 'warning'],
    ['client_min_messages', 'debug', true, 'debug2'],
    ['client_min_messages', 'info', true, 'info'],
    ['client_min_messages', 'fatal', false, '22023'],
    ['standard_conforming_strings', 'on', true, 'on'],
    ['standard_conforming_strings', 'TRUE', true, 'on'],
    ['standard_conforming_strings', 'off', false, '0A000'],
    ['standard_conforming_strings', 'maybe', false, '22023'],
    ['synchronize_seqscans', 'off', true, 'off'],
    ['row_security', 'off', true, 'off'],
    ['check_function_bodies', 'false', true, 'off'],
    ['escape_string_warning', 'off', true, 'off'],
    ['default_transaction_read_only', 'off', true, 'off'],
    ['default_transaction_read_only', 'on', false, '0A000'],
    ['default_transaction_isolation', 'REPEATABLE READ', true, 'repeatable read'],
    ['default_transaction_isolation', 'serializable', false, '0A000'],
    ['default_transaction_isolation', 'read committed', false, '0A000'],
    ['default_transaction_isolation', 'snapshot', false, '22023'],
    ['default_transaction_deferrable', 'on', true, 'on'],
    ['transaction_isolation', 'repeatable read', true, 'repeatable read'],
    ['transaction_isolation', 'serializable', false, '0A000'],
    ['transaction_read_only', 'off', true, 'off'],
    ['transaction_read_only', 'on', false, '0A000'],
    ['transaction_deferrable', 'off', true, 'off'],
    ['transaction_deferrable', 'on', false, '0A000'],
    ['quote_all_identifiers', 'false', true, 'off'],
    ['quote_all_identifiers', 'true', false, '0A000'],
    ['default_tablespace', '', true, ''],
    ['default_tablespace', 'fast', false, '0A000'],
    ['default_table_access_method', 'heap', true, 'heap'],
    ['default_table_access_method', 'columnar', false, '0A000'],
    ['default_with_oids', 'false', true, 'off'],
    ['default_with_oids', 'true', false, '0A000'],
    ['bytea_output', 'hex', true, 'hex'],
    ['bytea_output', 'escape', false, '0A000'],
    ['array_nulls', 'on', true, 'on'],
    ['array_nulls', 'off', false, '0A000'],
    ['xmloption', 'content', true, 'content'],
    ['xmloption', 'document', false, '0A000'],
    ['session_replication_role', 'origin', true, 'origin'],
    ['session_replication_role', 'replica', false, '0A000'],
    ['exit_on_error', 'off', true, 'off'],
    ['exit_on_error', 'on', false, '0A000'],
    ['transform_null_equals', 'on', false, '0A000'],
    ['idle_session_timeout', '0', true, '0'],
    ['idle_session_timeout', '10min', false, '0A000'],
    ['work_mem', '64MB', true, '64MB'],
    ['work_mem', '1000', true, '1000kB'],
    ['work_mem', '10', false, '22023'],
    ['work_mem', '5ms', false, '22023'],
    ['maintenance_work_mem', '1GB', true, '1GB'],
    ['max_parallel_workers_per_gather', '0', true, '0'],
    ['max_parallel_workers_per_gather', '2s', false, '22023'],
    ['geqo', 'off', true, 'off'],
    ['jit', 'off', true, 'off'],
    ['plan_cache_mode', 'force_custom_plan', true, 'force_custom_plan'],
    ['synchronous_commit', 'off', true, 'off'],
    ['synchronous_commit', 'yes', true, 'on'],
    ['lc_messages', 'C', false, '42501'],
    ['log_min_duration_statement', '0', false, '42501'],
    ['log_statement', 'all', false, '42501'],
    ['log_connections', 'on', false, '55P02'],
    ['log_line_prefix', '%m', false, '55P02'],
  ];
  for (const [name, value, accepted, expected] of table) {
    it(`SET ${name} = '${value}' ${accepted ? `shows ${JSON.stringify(expected)}` : `fails with ${expected}`}`, () => {
      const params = fresh();
      const result = params.set(name, v(value), false, false);
      if (accepted) {
        assert.deepEqual(result, { ok: true });
        assert.equal(params.show(name), expected);
      } else {
        assert.equal(result.ok, false);
        if (!result.ok) assert.equal(result.error.sqlstate, expected);
      }
    });
  }
  it('every fixed name accepts its own SHOW value and DEFAULT', () => {
    for (const spec of PARAM_SPECS.filter((s) => s.fixed !== undefined)) {
      const params = fresh();
      const shown = params.show(spec.name) as string;
      assert.deepEqual(params.set(spec.name, v(shown), false, false), { ok: true }, spec.name);
      assert.deepEqual(params.set(spec.name, 'default', false, false), { ok: true }, spec.name);
      assert.deepEqual(params.reset(spec.name, false), { ok: true }, spec.name);
    }
  });
  it('restricted names refuse RESET and DEFAULT too, and SHOW is left to DSQL', () => {
    const params = fresh();
    assert.equal(params.show('log_statement'), undefined);
    const reset = params.reset('log_statement', false);
    assert.deepEqual(reset, {
      ok: false,
      error: { sqlstate: '42501', message: 'permission denied to set parameter "log_statement"' },
    });
    const set = params.set('log_disconnections', 'default', false, false);
    assert.equal(
      !set.ok && set.error.message,
      'parameter "log_disconnections" cannot be set after connection start',
    );
  });
  it('handled names that are neither dsql nor unknown: show() answers, others undefined', () => {
    const params = fresh();
    assert.equal(params.show('application_name'), undefined);
    assert.equal(params.show('lc_numeric'), undefined);
    assert.equal(params.show('STANDARD_CONFORMING_STRINGS'), 'on');
  });
});

describe("PostgreSQL's messages", () => {
  it('a refused fixed value names what DSQL does, with a hint', () => {
    const result = fresh().set('standard_conforming_strings', v('off', 'ident'), false, false);
    assert.equal(result.ok, false);
    if (result.ok) return;
    assert.equal(result.error.sqlstate, '0A000');
    assert.equal(
      result.error.message,
      'standard_conforming_strings = off is not supported by dsql-proxy: DSQL always uses standard_conforming_strings = on',
    );
    assert.ok(result.error.hint && result.error.hint.length > 0);
  });
  it('string and spaced enum values are quoted in the refusal', () => {
    const iso = fresh().set('default_transaction_isolation', v('serializable'), false, false);
    assert.ok(
      !iso.ok &&
        iso.error.message.endsWith("DSQL always uses default_transaction_isolation = 'repeatable read'"),
    );
    const ts = fresh().set('default_tablespace', v('fast'), false, false);
    assert.ok(
      !ts.ok &&
        ts.error.message ===
          "default_tablespace = fast is not supported by dsql-proxy: DSQL always uses default_tablespace = ''",
    );
  });
  it('bool: requires a Boolean value', () => {
    const result = fresh().set('row_security', v('maybe'), false, false);
    assert.deepEqual(result, {
      ok: false,
      error: { sqlstate: '22023', message: 'parameter "row_security" requires a Boolean value' },
    });
  });
  it('units: the time-unit hint', () => {
    assert.deepEqual(fresh().set('statement_timeout', v('5x'), false, false), {
      ok: false,
      error: {
        sqlstate: '22023',
        message: 'invalid value for parameter "statement_timeout": "5x"',
        hint: 'Valid units for this parameter are "us", "ms", "s", "min", "h", and "d".',
      },
    });
  });
  it('units: the memory-unit hint; no hint for garbage without a number', () => {
    const mem = fresh().set('work_mem', v('5ms'), false, false);
    assert.ok(
      !mem.ok && mem.error.hint === 'Valid units for this parameter are "B", "kB", "MB", "GB", and "TB".',
    );
    const bare = fresh().set('statement_timeout', v('abc'), false, false);
    assert.deepEqual(bare, {
      ok: false,
      error: { sqlstate: '22023', message: 'invalid value for parameter "statement_timeout": "abc"' },
    });
    const unitless = fresh().set('max_parallel_workers_per_gather', v('2s'), false, false);
    assert.ok(!unitless.ok && unitless.error.hint === undefined);
  });
  it('range: with units, as PostgreSQL 16+', () => {
    const result = fresh().set('statement_timeout', v('-1', 'number'), false, false);
    assert.ok(!result.ok);
    assert.equal(
      result.error.message,
      '-1 ms is outside the valid range for parameter "statement_timeout" (0 ms .. 2147483647 ms)',
    );
    const big = fresh().set('statement_timeout', v('3000000000'), false, false);
    assert.ok(!big.ok && big.error.hint === 'Value exceeds integer range.');
  });
  it('enum: the list of visible values', () => {
    const result = fresh().set('client_min_messages', v('fatal'), false, false);
    assert.ok(!result.ok);
    assert.equal(result.error.message, 'invalid value for parameter "client_min_messages": "fatal"');
    assert.equal(
      result.error.hint,
      'Available values: debug5, debug4, debug3, debug2, debug1, log, notice, warning, error.',
    );
  });
  it('SET with a list: takes only one argument', () => {
    const result = fresh().set('statement_timeout', [...v('1'), ...v('2')], false, false);
    assert.deepEqual(result, {
      ok: false,
      error: { sqlstate: '22023', message: 'SET statement_timeout takes only one argument' },
    });
  });
  it('a name the layer does not handle: unrecognized', () => {
    const result = fresh().set('no_such', v('1'), false, false);
    assert.ok(!result.ok && result.error.sqlstate === '42704');
  });
});

describe('value input and SHOW', () => {
  it('parseBool: words, prefixes, on/off need two letters, 1/0', () => {
    const yes = ['on', 'ON', 'true', 't', 'tr', 'TRU', 'yes', 'y', '1'];
    const no = ['off', 'of', 'false', 'f', 'no', 'n', '0'];
    const bad = ['', 'o', 'onn', 'truex', '2', '01', ' on', 'on ', 'nope'];
    for (const text of yes) assert.equal(parseBool(text), true, text);
    for (const text of no) assert.equal(parseBool(text), false, text);
    for (const text of bad) assert.equal(parseBool(text), undefined, text);
  });
  it('rint rounds halves to even', () => {
    assert.deepEqual([0.5, 1.5, 2.5, -0.5, -1.5, 2.4, 2.6].map(rint), [0, 2, 2, -0, -2, 2, 3]);
  });
  // [input, stored ms, SHOW]
  const timeouts: [string, number, string][] = [
    ['0', 0, '0'],
    ['5000', 5000, '5s'],
    ['60000', 60000, '1min'],
    ['1500', 1500, '1500ms'],
    ['5s', 5000, '5s'],
    ['5 s', 5000, '5s'],
    [' 5s ', 5000, '5s'],
    ['1min', 60000, '1min'],
    ['1.5s', 1500, '1500ms'],
    ['1.5min', 90000, '90s'],
    ['0.5ms', 0, '0'],
    ['1.5', 2, '2ms'],
    ['2.5', 2, '2ms'],
    ['1500us', 2, '2ms'],
    ['2h', 7200000, '2h'],
    ['1d', 86400000, '1d'],
    ['24h', 86400000, '1d'],
    ['0x10', 16, '16ms'],
    ['010', 8, '8ms'],
    ['1e3', 1000, '1s'],
    ['.5s', 500, '500ms'],
    ['2147483647', 2147483647, '2147483647ms'],
  ];
  for (const [input, ms, shown] of timeouts) {
    it(`statement_timeout '${input}' = ${ms} ms, shown ${shown}`, () => {
      const params = fresh();
      assert.deepEqual(params.set('statement_timeout', v(input), false, false), { ok: true });
      assert.equal(params.statementTimeoutMs, ms);
      assert.equal(params.show('statement_timeout'), shown);
    });
  }
  const rejected = ['5x', '5S', '5 sec', '5s x', '', '-.5', 'inf', 'nan', '1e999', '5000000000', '1 d d'];
  for (const input of rejected) {
    it(`statement_timeout '${input}' is refused with 22023`, () => {
      const result = fresh().set('statement_timeout', v(input), false, false);
      assert.ok(!result.ok && result.error.sqlstate === '22023');
    });
  }
  it('memory SHOW: the largest unit that divides evenly', () => {
    const spec = paramSpec('work_mem');
    assert.ok(spec);
    assert.deepEqual(
      [64, 1000, 1024, 4096, 1048576, 1536].map((kb) => formatValue(spec, kb)),
      ['64kB', '1000kB', '1MB', '4MB', '1GB', '1536kB'],
    );
  });
  it('memory input: 1.5MB is 1536kB', () => {
    const params = fresh();
    params.set('work_mem', v('1.5MB'), false, false);
    assert.equal(params.show('work_mem'), '1536kB');
  });
});

describe('SET number items as the SQL lexer gives them', () => {
  const table: [string, number][] = [
    ['010', 10],
    ['0x10', 16],
    ['1_000', 1000],
    ['-0', 0],
    ['1.5', 2],
    ['1e3', 1000],
  ];
  for (const [text, ms] of table) {
    it(`SET statement_timeout = ${text} is ${ms} ms`, () => {
      const p = fresh();
      assert.deepEqual(p.set('statement_timeout', v(text, 'number'), false, false), { ok: true });
      assert.equal(p.statementTimeoutMs, ms);
    });
  }
  it("the string '010' is octal, as strtol reads it", () => {
    const p = fresh();
    p.set('statement_timeout', v('010', 'string'), false, false);
    assert.equal(p.statementTimeoutMs, 8);
  });
  it('an integer beyond int32 stays as written and is out of range', () => {
    const result = fresh().set('statement_timeout', v('3000000000', 'number'), false, false);
    assert.ok(!result.ok && result.error.hint === 'Value exceeds integer range.');
  });
});

describe('transaction semantics (guc.c AtEOXact_GUC)', () => {
  const st = (p: SessionParams) => p.statementTimeoutMs;
  it('SET outside a transaction lasts', () => {
    const p = fresh();
    p.set('statement_timeout', v('5s'), false, false);
    assert.equal(st(p), 5000);
  });
  it('SET in a transaction persists at commit, is undone at rollback', () => {
    const a = fresh();
    a.set('statement_timeout', v('5s'), false, true);
    assert.equal(st(a), 5000);
    a.endTransaction(true);
    assert.equal(st(a), 5000);
    const b = fresh();
    b.set('statement_timeout', v('5s'), false, true);
    b.endTransaction(false);
    assert.equal(st(b), 0);
  });
  it('SET LOCAL lasts until the end of the transaction, commit or rollback', () => {
    for (const committed of [true, false]) {
      const p = fresh();
      p.set('statement_timeout', v('7s'), true, true);
      assert.equal(st(p), 7000);
      p.endTransaction(committed);
      assert.equal(st(p), 0);
    }
  });
  it('SET LOCAL outside a transaction: WARNING 25P01 and no effect', () => {
    const p = fresh();
    const result = p.set('statement_timeout', v('7s'), true, false);
    assert.deepEqual(result, {
      ok: true,
      warning: { sqlstate: '25P01', message: 'SET LOCAL can only be used in transaction blocks' },
    });
    assert.equal(st(p), 0);
  });
  it('SET LOCAL outside a transaction still checks the value', () => {
    const result = fresh().set('statement_timeout', v('7x'), true, false);
    assert.ok(!result.ok && result.error.sqlstate === '22023');
  });
  it('SET then SET LOCAL then commit: the SET value survives; rollback: the value before', () => {
    for (const [committed, expected] of [
      [true, 5000],
      [false, 1000],
    ] as const) {
      const p = fresh({ statement_timeout: '1s' });
      p.set('statement_timeout', v('5s'), false, true);
      p.set('statement_timeout', v('9s'), true, true);
      p.set('statement_timeout', v('8s'), true, true);
      assert.equal(st(p), 8000);
      p.endTransaction(committed);
      assert.equal(st(p), expected);
    }
  });
  it('SET LOCAL then SET: the SET value survives commit', () => {
    const p = fresh();
    p.set('statement_timeout', v('9s'), true, true);
    p.set('statement_timeout', v('5s'), false, true);
    p.endTransaction(true);
    assert.equal(st(p), 5000);
  });
  it('SET, SET LOCAL, SET, SET LOCAL: the last SET survives commit', () => {
    const p = fresh();
    p.set('statement_timeout', v('1s'), false, true);
    p.set('statement_timeout', v('2s'), true, true);
    p.set('statement_timeout', v('3s'), false, true);
    p.set('statement_timeout', v('4s'), true, true);
    p.endTransaction(true);
    assert.equal(st(p), 3000);
  });
  it('RESET in a transaction is a SET of the reset value (undone at rollback)', () => {
    const p = fresh();
    p.set('statement_timeout', v('5s'), false, false);
    p.reset('statement_timeout', true);
    assert.equal(st(p), 0);
    p.endTransaction(false);
    assert.equal(st(p), 5000);
  });
  it('SET LOCAL ... TO DEFAULT lasts until the end of the transaction', () => {
    const p = fresh();
    p.set('statement_timeout', v('5s'), false, false);
    p.set('statement_timeout', 'default', true, true);
    assert.equal(st(p), 0);
    p.endTransaction(true);
    assert.equal(st(p), 5000);
  });
  it('RESET ALL: every handled name back, undone at rollback; transaction_* untouched', () => {
    const p = fresh({ client_min_messages: 'warning' });
    p.set('statement_timeout', v('5s'), false, false);
    p.set('client_min_messages', v('error'), false, false);
    p.set('lock_timeout', v('3s'), false, false);
    p.resetAll(true);
    assert.deepEqual([st(p), p.clientMinMessages, p.show('lock_timeout')], [0, 'warning', '0']);
    p.endTransaction(false);
    assert.deepEqual([st(p), p.clientMinMessages, p.show('lock_timeout')], [5000, 'error', '3s']);
    p.resetAll(false);
    assert.deepEqual([st(p), p.clientMinMessages], [0, 'warning']);
  });
  it('a failed SET changes nothing', () => {
    const p = fresh();
    p.set('statement_timeout', v('5s'), false, true);
    p.set('statement_timeout', v('bad'), false, true);
    p.set('standard_conforming_strings', v('off'), false, true);
    assert.equal(st(p), 5000);
    assert.equal(p.show('standard_conforming_strings'), 'on');
  });
  it('DISCARD ALL: back to the session defaults, pending transaction records dropped', () => {
    const p = fresh({ statement_timeout: '2s' });
    p.set('statement_timeout', v('5s'), false, false);
    p.set('lock_timeout', v('5s'), false, false);
    p.discardAll();
    assert.equal(st(p), 2000);
    assert.equal(p.show('lock_timeout'), '0');
  });
});

describe('set_config', () => {
  it('returns the new value as SHOW gives it, and sets', () => {
    const p = fresh();
    assert.deepEqual(p.setConfig('statement_timeout', '60000', false, false), { ok: true, shown: '1min' });
    assert.equal(p.statementTimeoutMs, 60000);
  });
  it('NULL value resets (set_config is not strict)', () => {
    const p = fresh({}, { statementTimeoutMs: 30000 });
    p.setConfig('statement_timeout', '5s', false, false);
    assert.deepEqual(p.setConfig('statement_timeout', null, false, false), { ok: true, shown: '30s' });
    assert.equal(p.statementTimeoutMs, 30000);
  });
  it('is_local outside a transaction: no warning, shows the value, no lasting effect', () => {
    const p = fresh();
    assert.deepEqual(p.setConfig('lock_timeout', '4s', true, false), { ok: true, shown: '4s' });
    assert.equal(p.show('lock_timeout'), '0');
  });
  it('is_local inside a transaction: until its end', () => {
    const p = fresh();
    assert.deepEqual(p.setConfig('statement_timeout', '4s', true, true), { ok: true, shown: '4s' });
    assert.equal(p.statementTimeoutMs, 4000);
    p.endTransaction(true);
    assert.equal(p.statementTimeoutMs, 0);
  });
  it('refusals and invalid values as SET; the name in any case', () => {
    const p = fresh();
    const refused = p.setConfig('Standard_Conforming_Strings', 'off', false, false);
    assert.ok(!refused.ok && refused.error.sqlstate === '0A000');
    const invalid = p.setConfig('statement_timeout', 'x', false, false);
    assert.ok(!invalid.ok && invalid.error.sqlstate === '22023');
    assert.deepEqual(p.setConfig('STATEMENT_TIMEOUT', '1s', false, false), { ok: true, shown: '1s' });
  });
});

describe('startup parameters and defaults', () => {
  it('boot defaults without anything else', () => {
    const p = fresh();
    assert.deepEqual(
      [
        p.statementTimeoutMs,
        p.idleInTransactionTimeoutMs,
        p.transactionTimeoutMs,
        p.clientMinMessages,
        p.startupError,
      ],
      [0, 0, 0, 'notice', undefined],
    );
  });
  it('the proxy defaults become the RESET values', () => {
    const p = fresh({}, { statementTimeoutMs: 30000, idleInTransactionTimeoutMs: 60000 });
    assert.deepEqual([p.statementTimeoutMs, p.idleInTransactionTimeoutMs], [30000, 60000]);
    p.set('statement_timeout', v('1s'), false, false);
    p.reset('statement_timeout', false);
    assert.equal(p.statementTimeoutMs, 30000);
    assert.equal(p.show('idle_in_transaction_session_timeout'), '1min');
  });
  it('a startup parameter beats the proxy default, in any case, and is the RESET value', () => {
    const p = fresh(
      { STATEMENT_TIMEOUT: '5s', client_min_messages: 'WARNING' },
      { statementTimeoutMs: 30000 },
    );
    assert.equal(p.statementTimeoutMs, 5000);
    p.set('statement_timeout', v('1s'), false, false);
    p.reset('statement_timeout', false);
    assert.equal(p.statementTimeoutMs, 5000);
    assert.equal(p.clientMinMessages, 'warning');
  });
  it('names the layer does not handle are ignored', () => {
    const p = fresh({ application_name: 'x', user: 'u', database: 'postgres', lc_numeric: 'de_DE' });
    assert.equal(p.startupError, undefined);
  });
  it('an invalid or refused one fills startupError (the first), as PostgreSQL refuses the login', () => {
    const p = fresh({ statement_timeout: '5x', standard_conforming_strings: 'off' });
    assert.equal(p.startupError?.sqlstate, '22023');
    assert.equal(p.startupError?.message, 'invalid value for parameter "statement_timeout": "5x"');
    assert.equal(p.statementTimeoutMs, 0);
    assert.equal(fresh({ standard_conforming_strings: 'off' }).startupError?.sqlstate, '0A000');
    assert.equal(fresh({ log_statement: 'all' }).startupError?.sqlstate, '42501');
    assert.equal(fresh({ log_connections: 'on' }).startupError?.sqlstate, '42501');
    assert.equal(fresh({ log_line_prefix: 'x' }).startupError?.sqlstate, '55P02');
  });
  it("client_min_messages 'info' filters as 'notice' (PostgreSQL always sends INFO)", () => {
    const p = fresh({ client_min_messages: 'info' });
    assert.equal(p.clientMinMessages, 'notice');
    assert.equal(p.show('client_min_messages'), 'info');
  });
});

describe('what clients send on connect', () => {
  // pg_dump's script header (pg_backup_archiver.c _doSetFixedOutputState), ActiveRecord, pgjdbc and psycopg2.
  const statements: [string, string][] = [
    ['statement_timeout', '0'],
    ['lock_timeout', '0'],
    ['idle_in_transaction_session_timeout', '0'],
    ['transaction_timeout', '0'],
    ['standard_conforming_strings', 'on'],
    ['check_function_bodies', 'false'],
    ['xmloption', 'content'],
    ['client_min_messages', 'warning'],
    ['row_security', 'off'],
    ['default_tablespace', ''],
    ['default_table_access_method', 'heap'],
    ['default_with_oids', 'false'],
    ['synchronize_seqscans', 'off'],
    ['default_transaction_isolation', 'repeatable read'],
    ['default_transaction_deferrable', 'off'],
  ];
  it('all are accepted, inside and outside a transaction', () => {
    for (const inTransaction of [false, true]) {
      const p = fresh();
      for (const [name, value] of statements)
        assert.deepEqual(p.set(name, v(value), false, inTransaction), { ok: true }, name);
    }
  });
});
