/**
 * The compatibility layer's statement reader (src/compat/sql/statements.ts): classify() on the
 * statements pg_dump, psql, ORMs and drivers send, and on the grammar's corners; splitStatements();
 * mightNeedCompat(). Properties and fuzzing are in compat-sql-statements.property.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  type CompatStatement,
  classify,
  mightNeedCompat,
  splitStatements,
} from '../../src/compat/sql/statements.js';

const s = (value: string) => ({ value, kind: 'string' as const });
const id = (value: string) => ({ value, kind: 'ident' as const });
const num = (value: string) => ({ value, kind: 'number' as const });
const set = (name: string, value: Extract<CompatStatement, { kind: 'set' }>['value'], local = false) => ({
  kind: 'set' as const,
  name,
  local,
  value,
});

function check(cases: readonly (readonly [string, unknown])[], scs = true): void {
  for (const [sql, want] of cases) assert.deepEqual(classify(sql, scs), want, sql);
}

const OTHER = { kind: 'other' };

describe('classify: what clients send at setup', () => {
  it('pg_dump 15-18 (setup, and the header of the script it writes)', () => {
    check([
      ["SELECT pg_catalog.set_config('search_path', '', false);", setConfig([['search_path', '', false]])],
      ['SET DATESTYLE = ISO', set('datestyle', [id('iso')])],
      ['SET INTERVALSTYLE = POSTGRES', set('intervalstyle', [id('postgres')])],
      ['SET extra_float_digits TO 3', set('extra_float_digits', [num('3')])],
      ['SET synchronize_seqscans TO off', set('synchronize_seqscans', [id('off')])],
      ['SET statement_timeout = 0', set('statement_timeout', [num('0')])],
      ['SET lock_timeout = 0', set('lock_timeout', [num('0')])],
      ['SET idle_in_transaction_session_timeout = 0', set('idle_in_transaction_session_timeout', [num('0')])],
      ['SET transaction_timeout = 0', set('transaction_timeout', [num('0')])],
      ['SET row_security = off', set('row_security', [id('off')])],
      ['SET quote_all_identifiers = true', set('quote_all_identifiers', [id('true')])],
      ["SET client_encoding = 'UTF8'", set('client_encoding', [s('UTF8')])],
      ['SET standard_conforming_strings = on', set('standard_conforming_strings', [id('on')])],
      ['SET check_function_bodies = false', set('check_function_bodies', [id('false')])],
      ['SET xmloption = content', set('xmloption', [id('content')])],
      ['SET client_min_messages = warning', set('client_min_messages', [id('warning')])],
      ["SET default_tablespace = ''", set('default_tablespace', [s('')])],
      ['SET default_table_access_method = heap', set('default_table_access_method', [id('heap')])],
      [
        "SELECT set_config(name, 'view, foreign-table', false) FROM pg_settings WHERE name = 'restrict_nonsystem_relation_kind'",
        {
          kind: 'set-config',
          shape: 'pg-settings',
          calls: [
            {
              name: 'restrict_nonsystem_relation_kind',
              value: 'view, foreign-table',
              isLocal: false,
              column: 'set_config',
            },
          ],
        },
      ],
      ['BEGIN', { kind: 'begin', modes: {} }],
      [
        'SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY',
        { kind: 'set-transaction', modes: { isolation: 'repeatable read', readOnly: true }, session: false },
      ],
      [
        'SET TRANSACTION ISOLATION LEVEL SERIALIZABLE, READ ONLY, DEFERRABLE',
        {
          kind: 'set-transaction',
          modes: { isolation: 'serializable', readOnly: true, deferrable: true },
          session: false,
        },
      ],
      ['LOCK TABLE public.t IN ACCESS SHARE MODE', { kind: 'lock', mode: 'access share', nowait: false }],
      [
        'LOCK TABLE ONLY public.a, public."B", s.c IN ACCESS SHARE MODE',
        { kind: 'lock', mode: 'access share', nowait: false },
      ],
      ['RESET search_path', { kind: 'reset', name: 'search_path' }],
      ['COMMIT', { kind: 'commit', chain: false }],
      ["SELECT pg_catalog.setval('public.t_id_seq', 1, false);", OTHER],
    ]);
  });

  it("pg_dump 17's PREPARE and EXECUTE of its catalog queries", () => {
    const body =
      'SELECT\n  proretset, prosrc, probin\nFROM pg_catalog.pg_proc\nWHERE oid = $1 AND lanname = $2::pg_catalog.name';
    check([
      [
        `PREPARE dumpFunc(pg_catalog.oid, pg_catalog.name) AS\n${body}`,
        { kind: 'prepare', name: 'dumpfunc', types: ['pg_catalog.oid', 'pg_catalog.name'], body },
      ],
      ["EXECUTE dumpFunc('1234')", { kind: 'execute', name: 'dumpfunc', args: ["'1234'"] }],
      [
        "EXECUTE getColumnACLs('16384', ARRAY[1, 2], 'x,y', f(1, 2))",
        { kind: 'execute', name: 'getcolumnacls', args: ["'16384'", 'ARRAY[1, 2]', "'x,y'", 'f(1, 2)'] },
      ],
      [
        'PREPARE p(integer[], numeric(10,2), timestamp with time zone, "MyType") AS SELECT $1',
        {
          kind: 'prepare',
          name: 'p',
          types: ['integer[]', 'numeric(10,2)', 'timestamp with time zone', '"MyType"'],
          body: 'SELECT $1',
        },
      ],
    ]);
  });

  it('ActiveRecord, Django, SQLAlchemy/psycopg, pgjdbc, pgAdmin, pools', () => {
    check([
      ["SET client_min_messages TO 'warning'", set('client_min_messages', [s('warning')])],
      ['SET intervalstyle = iso_8601', set('intervalstyle', [id('iso_8601')])],
      ["SET SESSION timezone TO 'UTC'", set('timezone', [s('UTC')])],
      ['SET SESSION statement_timeout TO 5000', set('statement_timeout', [num('5000')])],
      ["SET TIME ZONE 'UTC'", set('timezone', [s('UTC')])],
      ['SET ROLE "app_rw"', set('role', [id('app_rw')])],
      ['show standard_conforming_strings', { kind: 'show', name: 'standard_conforming_strings' }],
      ['SHOW TRANSACTION ISOLATION LEVEL', { kind: 'show', name: 'transaction_isolation' }],
      [
        'BEGIN ISOLATION LEVEL SERIALIZABLE READ ONLY DEFERRABLE',
        { kind: 'begin', modes: { isolation: 'serializable', readOnly: true, deferrable: true } },
      ],
      ['SET extra_float_digits = 3', set('extra_float_digits', [num('3')])],
      [
        "SET application_name = 'PostgreSQL JDBC Driver'",
        set('application_name', [s('PostgreSQL JDBC Driver')]),
      ],
      [
        'SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL REPEATABLE READ',
        { kind: 'set-transaction', modes: { isolation: 'repeatable read' }, session: true },
      ],
      [
        'SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY',
        { kind: 'set-transaction', modes: { readOnly: true }, session: true },
      ],
      ['BEGIN READ ONLY', { kind: 'begin', modes: { readOnly: true } }],
      ['SET DateStyle=ISO', set('datestyle', [id('iso')])],
      ["SET client_encoding='UNICODE'", set('client_encoding', [s('UNICODE')])],
      [
        "SELECT set_config('bytea_output','hex',false) FROM pg_settings WHERE name = 'bytea_output'",
        {
          kind: 'set-config',
          shape: 'pg-settings',
          calls: [{ name: 'bytea_output', value: 'hex', isLocal: false, column: 'set_config' }],
        },
      ],
      ['DISCARD ALL', { kind: 'discard', what: 'all' }],
      ['RESET ALL', { kind: 'reset-all' }],
      ['DEALLOCATE ALL', { kind: 'deallocate', name: null }],
      ['deallocate "S_1"', { kind: 'deallocate', name: 'S_1' }],
    ]);
  });
});

function setConfig(calls: [string, string | null, boolean, string?][]): CompatStatement {
  return {
    kind: 'set-config',
    shape: 'literal',
    calls: calls.map(([name, value, isLocal, column]) => ({
      name,
      value,
      isLocal,
      column: column ?? 'set_config',
    })),
  };
}

describe('classify: SET grammar', () => {
  it('SESSION and LOCAL, and the same words as parameter names', () => {
    check([
      ['SET LOCAL statement_timeout = 0', set('statement_timeout', [num('0')], true)],
      ['set session statement_timeout = 0', set('statement_timeout', [num('0')])],
      ['SET local = 5', set('local', [num('5')])],
      ['SET session TO 5', set('session', [num('5')])],
      ['SET LOCAL TIME ZONE DEFAULT', set('timezone', 'default', true)],
      ['SET SESSION AUTHORIZATION bob', OTHER],
      ['SET SESSION AUTHORIZATION DEFAULT', OTHER],
      [
        'SET LOCAL TRANSACTION READ WRITE',
        { kind: 'set-transaction', modes: { readOnly: false }, session: false },
      ],
    ]);
  });

  it('values: lists, strings decoded, identifiers folded, numbers with their sign', () => {
    check([
      [
        'SET search_path = "$user", public, \'My Schema\'',
        set('search_path', [id('$user'), id('public'), s('My Schema')]),
      ],
      ['SET search_path TO DEFAULT', set('search_path', 'default')],
      ['SET x = DEFAULT', set('x', 'default')],
      ["SET x = 'default'", set('x', [s('default')])],
      ['SET x TO ON', set('x', [id('on')])],
      ['SET x TO FaLsE', set('x', [id('false')])],
      ['SET x = -1', set('x', [num('-1')])],
      ['SET x=-1', set('x', [num('-1')])],
      ['SET x = +1.5e3', set('x', [num('1.5e3')])],
      ['SET x = - .5', set('x', [num('-.5')])],
      ['SET x = 0x1F', set('x', [num('31')])],
      ['SET x = 1_000', set('x', [num('1000')])],
      ['SET x = 4294967296', set('x', [num('4294967296')])],
      ["SET x = E'a\\tb'", set('x', [s('a\tb')])],
      ["SET x = $$it's$$", set('x', [s("it's")])],
      ['SET x = MixedCase', set('x', [id('mixedcase')])],
      ['SET x = "MixedCase"', set('x', [id('MixedCase')])],
      ['SET x = none', set('x', [id('none')])],
      ['SET Ext.Param = 1', set('ext.param', [num('1')])],
      ['SET "MyExt".x = 1', set('MyExt.x', [num('1')])],
      ["SET x = 'a'\n'b'", set('x', [s('ab')])],
    ]);
  });

  it('scs off: plain strings read backslash escapes', () => {
    check([["SET x = 'a\\'b'", set('x', [s("a'b")])]], false);
    check([["SET x = 'a\\'b'", OTHER]], true);
  });

  it('special forms: TIME ZONE, SCHEMA, NAMES, ROLE, XML OPTION', () => {
    check([
      ['SET TIME ZONE LOCAL', set('timezone', 'default')],
      ['SET TIME ZONE UTC', set('timezone', [id('utc')])],
      ['SET TIME ZONE -7', set('timezone', [num('-7')])],
      ["SET TIME ZONE INTERVAL '+00:00' HOUR TO MINUTE", OTHER],
      ["SET time zone 'Europe/Rome', 'x'", OTHER],
      ["SET SCHEMA 'app'", set('search_path', [s('app')])],
      ['SET SCHEMA app', OTHER],
      ["SET NAMES 'UTF8'", set('client_encoding', [s('UTF8')])],
      ['SET NAMES', set('client_encoding', 'default')],
      ['SET NAMES DEFAULT', set('client_encoding', 'default')],
      ['SET ROLE NONE', set('role', [id('none')])],
      ["SET ROLE 'Admin'", set('role', [s('Admin')])],
      ['SET XML OPTION DOCUMENT', set('xmloption', [id('document')])],
      ["SET TRANSACTION SNAPSHOT '000003A1-1'", OTHER],
      ['SET CONSTRAINTS ALL DEFERRED', OTHER],
      ['SET x FROM CURRENT', OTHER],
      ["SET CATALOG 'x'", OTHER],
    ]);
  });

  it('what the grammar refuses is other', () => {
    check([
      ['SET', OTHER],
      ['SET x', OTHER],
      ['SET x =', OTHER],
      ['SET x = 1,', OTHER],
      ['SET x = null', OTHER],
      ['SET all = 1', OTHER],
      ['SET x = 1 2', OTHER],
      ["SET x = B'01'", OTHER],
      ["SET x = N'a'", OTHER],
      ['SET x = 1abc', OTHER],
      ["SET x = 'unterminated", OTHER],
      ['SET x = 1 /* unterminated', OTHER],
      ['SET x = 1; SET y = 2', OTHER],
    ]);
    check([['SET x = 1;;', set('x', [num('1')])]]);
  });
});

describe('classify: RESET and SHOW', () => {
  it('reads each form', () => {
    check([
      ['RESET statement_timeout', { kind: 'reset', name: 'statement_timeout' }],
      ['RESET TIME ZONE', { kind: 'reset', name: 'timezone' }],
      ['reset transaction isolation level', { kind: 'reset', name: 'transaction_isolation' }],
      ['RESET ROLE', { kind: 'reset', name: 'role' }],
      ['RESET SESSION AUTHORIZATION', OTHER],
      ['RESET', OTHER],
      ['RESET a b', OTHER],
      ['SHOW ALL', { kind: 'show', name: 'all' }],
      ['SHOW TIME ZONE', { kind: 'show', name: 'timezone' }],
      ['SHOW session authorization', { kind: 'show', name: 'session_authorization' }],
      ['SHOW "Foo".Bar', { kind: 'show', name: 'Foo.bar' }],
      ['SHOW', OTHER],
    ]);
  });
});

describe('classify: set_config', () => {
  it('the literal shape, with casts, aliases, NULL and boolean input', () => {
    check([
      ["SELECT set_config('Search_Path', 'a', true)", setConfig([['search_path', 'a', true]])],
      [
        "select pg_catalog.set_config('a'::text, 'b'::pg_catalog.text, 'off'::boolean) AS x, set_config('c', NULL, NULL) as \"Y\"",
        setConfig([
          ['a', 'b', false, 'x'],
          ['c', null, false, 'Y'],
        ]),
      ],
      ["SELECT set_config('a', 'b', 't')", setConfig([['a', 'b', true]])],
      ["SELECT set_config('a', 'b', ' YES ')", setConfig([['a', 'b', true]])],
      ["SELECT set_config('a', 'b', 'of')", setConfig([['a', 'b', false]])],
      ["SELECT \"set_config\"('a', 'b', false)", setConfig([['a', 'b', false]])],
    ]);
  });

  it('anything else mentioning set_config is other', () => {
    check([
      ["SELECT set_config('a', 'b', 'o')", OTHER],
      ["SELECT set_config('a', 'b', 'maybe')", OTHER],
      ["SELECT set_config('a', 'b', 1)", OTHER],
      ["SELECT set_config('a', 'b')", OTHER],
      ["SELECT set_config(NULL, 'b', false)", OTHER],
      ["SELECT set_config('a', 'b', false) x", OTHER],
      ["SELECT set_config('a', 'b', false) FROM t", OTHER],
      ["SELECT set_config('a', 'b'::int, false)", OTHER],
      ["SELECT set_config('a', lower('B'), false)", OTHER],
      ["SELECT set_config('a', 'b', false), 1", OTHER],
      ["SELECT \"Set_Config\"('a', 'b', false)", OTHER],
      ["SELECT U&\"set\\005fconfig\"('a', 'b', false)", OTHER],
      ["SELECT set_config(name, 'b', false) FROM pg_settings", OTHER],
      ["SELECT set_config(name, 'b', false) FROM pg_settings WHERE name LIKE 'x'", OTHER],
      ["SELECT set_config('a', 'b', false) FROM pg_settings WHERE name = 'c'", OTHER],
      [
        "SELECT set_config(name, 'b', false), set_config(name, 'c', false) FROM pg_settings WHERE name = 'a'",
        OTHER,
      ],
      ['SELECT 1', OTHER],
    ]);
  });

  it('pg-settings keeps the WHERE name as written (pg_settings compares exactly)', () => {
    const r = classify(
      "SELECT pg_catalog.set_config(name, 'x', true) FROM pg_catalog.pg_settings WHERE name = 'TimeZone'",
    );
    assert.deepEqual(r, {
      kind: 'set-config',
      shape: 'pg-settings',
      calls: [{ name: 'TimeZone', value: 'x', isLocal: true, column: 'set_config' }],
    });
  });
});

describe('classify: transactions', () => {
  it('BEGIN and START TRANSACTION with modes, commas or not', () => {
    check([
      ['BEGIN WORK', { kind: 'begin', modes: {} }],
      [
        'begin transaction read write, not deferrable',
        { kind: 'begin', modes: { readOnly: false, deferrable: false } },
      ],
      [
        'START TRANSACTION ISOLATION LEVEL READ COMMITTED',
        { kind: 'begin', modes: { isolation: 'read committed' } },
      ],
      [
        'START TRANSACTION ISOLATION LEVEL READ UNCOMMITTED',
        { kind: 'begin', modes: { isolation: 'read uncommitted' } },
      ],
      ['START', OTHER],
      ['START x', OTHER],
      ['BEGIN ATOMIC', OTHER],
      ['BEGIN READ ONLY,', OTHER],
      ['BEGIN , READ ONLY', OTHER],
      ['BEGIN ISOLATION LEVEL', OTHER],
      ['SET TRANSACTION', OTHER],
    ]);
  });

  it('COMMIT / END / ROLLBACK / ABORT, chains, and the forms that are other', () => {
    check([
      ['END', { kind: 'commit', chain: false }],
      ['commit work and chain', { kind: 'commit', chain: true }],
      ['END TRANSACTION AND NO CHAIN', { kind: 'commit', chain: false }],
      ['ROLLBACK', { kind: 'rollback', chain: false }],
      ['ABORT AND CHAIN', { kind: 'rollback', chain: true }],
      ["COMMIT PREPARED 'x'", OTHER],
      ["ROLLBACK PREPARED 'x'", OTHER],
      ['ROLLBACK TO SAVEPOINT a', OTHER],
      ['ROLLBACK TRANSACTION TO a', OTHER],
      ['COMMIT AND', OTHER],
    ]);
  });
});

describe('classify: LOCK, PREPARE, EXECUTE, DEALLOCATE, DISCARD', () => {
  it('LOCK forms and modes', () => {
    check([
      ['LOCK t', { kind: 'lock', mode: 'access exclusive', nowait: false }],
      [
        'lock table t * in share row exclusive mode nowait',
        { kind: 'lock', mode: 'share row exclusive', nowait: true },
      ],
      ['LOCK ONLY (a.b.c) IN SHARE MODE', { kind: 'lock', mode: 'share', nowait: false }],
      [
        'LOCK t IN SHARE UPDATE EXCLUSIVE MODE',
        { kind: 'lock', mode: 'share update exclusive', nowait: false },
      ],
      ['LOCK t IN ROW SHARE MODE', { kind: 'lock', mode: 'row share', nowait: false }],
      ['LOCK t IN ROW EXCLUSIVE MODE', { kind: 'lock', mode: 'row exclusive', nowait: false }],
      ['LOCK t IN EXCLUSIVE MODE', { kind: 'lock', mode: 'exclusive', nowait: false }],
      ['LOCK t IN ACCESS EXCLUSIVE MODE', { kind: 'lock', mode: 'access exclusive', nowait: false }],
      ['LOCK t IN SHARE', OTHER],
      ['LOCK t IN WEIRD MODE', OTHER],
      ['LOCK', OTHER],
      ['LOCK t,', OTHER],
    ]);
  });

  it('PREPARE, EXECUTE, DEALLOCATE, DISCARD corners', () => {
    check([
      [
        'PREPARE q AS insert into t values ($1)',
        { kind: 'prepare', name: 'q', types: [], body: 'insert into t values ($1)' },
      ],
      ['PREPARE q AS (select 1) /* c */', { kind: 'prepare', name: 'q', types: [], body: '(select 1)' }],
      ['PREPARE q () AS select 1', OTHER],
      ['PREPARE q(int AS select 1', OTHER],
      ['PREPARE q AS', OTHER],
      ['PREPARE q AS vacuum', OTHER],
      ["PREPARE TRANSACTION 'x'", OTHER],
      ['EXECUTE q', { kind: 'execute', name: 'q', args: [] }],
      ["EXECUTE q ( 1 , 'a)' , (2, 3) )", { kind: 'execute', name: 'q', args: ['1', "'a)'", '(2, 3)'] }],
      ['EXECUTE q()', OTHER],
      ['EXECUTE q(1,)', OTHER],
      ['EXECUTE q(1) x', OTHER],
      ['DEALLOCATE q', { kind: 'deallocate', name: 'q' }],
      ['DEALLOCATE PREPARE q', { kind: 'deallocate', name: 'q' }],
      ['DEALLOCATE prepare', { kind: 'deallocate', name: 'prepare' }],
      ['DEALLOCATE', OTHER],
      ['DISCARD PLANS', { kind: 'discard', what: 'plans' }],
      ['discard sequences', { kind: 'discard', what: 'sequences' }],
      ['DISCARD TEMP', { kind: 'discard', what: 'temp' }],
      ['DISCARD TEMPORARY', { kind: 'discard', what: 'temp' }],
      ['DISCARD constructor', OTHER],
      ['DISCARD ALL PLANS', OTHER],
    ]);
  });

  it('other statements, and quoted first words, are other', () => {
    check([
      ['SELECT 1', OTHER],
      ['"set" x = 1', OTHER],
      ['', OTHER],
      ['/* only */ -- comments', OTHER],
      ['INSERT INTO t VALUES (1)', OTHER],
    ]);
  });
});

describe('splitStatements', () => {
  const texts = (sql: string, scs = true) => splitStatements(sql, scs).map((p) => p.text);

  it('splits at top-level semicolons, drops empty statements, trims to the tokens', () => {
    const sql = ' select 1 ;; /* a */ set x = 1 -- b\n ; ; ';
    const parts = splitStatements(sql);
    assert.deepEqual(
      parts.map((p) => p.text),
      ['select 1', 'set x = 1'],
    );
    for (const p of parts) assert.equal(sql.slice(p.start, p.end), p.text);
  });

  it('does not split inside strings, comments, quoted identifiers, dollar quotes, parentheses', () => {
    assert.deepEqual(texts("select ';', E'\\';', \"a;b\", $q$;$q$, /* ; */ (1;2); select 2"), [
      "select ';', E'\\';', \"a;b\", $q$;$q$, /* ; */ (1;2)",
      'select 2',
    ]);
  });

  it('scs decides whether a backslash escapes a quote', () => {
    assert.deepEqual(texts("select 'a\\'; select 2"), ["select 'a\\'", 'select 2']);
    assert.deepEqual(texts("select 'a\\'; select 2", false), ["select 'a\\'; select 2"]);
  });

  it('keeps BEGIN ATOMIC bodies of CREATE FUNCTION / PROCEDURE whole', () => {
    const fn =
      'CREATE OR REPLACE FUNCTION f(a int) RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; SELECT CASE WHEN a > 0 THEN 1 ELSE 2 END; END';
    const proc = 'create procedure p() begin atomic insert into t values (1); insert into t values (2); end';
    assert.deepEqual(texts(`${fn}; ${proc};set x = 1`), [fn, proc, 'set x = 1']);
    // Outside a routine, BEGIN is a statement of its own.
    assert.deepEqual(texts('begin; select 1; end'), ['begin', 'select 1', 'end']);
    assert.deepEqual(texts('select 1 as begin; select 2'), ['select 1 as begin', 'select 2']);
  });

  it('an unterminated string or comment keeps the rest as one statement', () => {
    assert.deepEqual(texts("set a = 1; set b = 'x; set c = 2"), ['set a = 1', "set b = 'x; set c = 2"]);
    assert.deepEqual(texts('set a = 1; /* x; set c = 2'), ['set a = 1', '/* x; set c = 2']);
    assert.deepEqual(texts('select $a$ ; select 2'), ['select $a$ ; select 2']);
  });
});

describe('mightNeedCompat', () => {
  it('true for the first keywords the layer handles, any case, after comments', () => {
    for (const sql of [
      'SET x = 1',
      'set',
      '  reset all',
      'Show x',
      'PREPARE p AS select 1',
      'execute p',
      'DEALLOCATE ALL',
      'discard all',
      'LOCK t',
      '/* a /* b */ */ -- c\n BEGIN',
      'start transaction',
      'set"x"=1',
    ]) {
      assert.equal(mightNeedCompat(sql), true, sql);
    }
  });

  it('true when set_config appears anywhere, or a later statement may need the layer', () => {
    for (const sql of [
      "SELECT pg_catalog.SET_CONFIG('a', 'b', false)",
      'select 1; set statement_timeout = 0',
      'select 1;/*x*/reset all',
      'insert into t values (1);\nBEGIN',
    ]) {
      assert.equal(mightNeedCompat(sql), true, sql);
    }
  });

  it('false for ordinary statements', () => {
    for (const sql of [
      'select 1',
      'SELECT * FROM settings',
      'settings',
      'set_x',
      'commit',
      'select 1; select 2',
      "select 'set'",
      'select 1;',
      'update t set x = 1',
      '/* unterminated set',
      '',
    ]) {
      assert.equal(mightNeedCompat(sql), false, sql);
    }
  });
});
