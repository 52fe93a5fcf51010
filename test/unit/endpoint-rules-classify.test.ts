/**
 * The local endpoint's classifier (src/local-endpoint/rules/classify.ts): every rule with forms DSQL
 * refuses and forms it accepts, edits, `writes`, and the rule table.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isDsqlSessionParam } from '../../src/dsql/limits.js';
import { RULES, type RuleName } from '../../src/local-endpoint/rules/catalogue.js';
import { classify, type StatementVerdict } from '../../src/local-endpoint/rules/classify.js';

function one(sql: string): StatementVerdict {
  const v = classify(sql);
  assert.equal(v.length, 1, `one statement expected in ${JSON.stringify(sql)}, got ${v.length}`);
  return v[0]!;
}

/** Asserts each statement is refused by `rule` (one statement each). */
function refused(rule: RuleName, ...sqls: string[]): void {
  for (const sql of sqls) {
    const v = one(sql);
    assert.equal(v.refusal?.rule, rule, `${JSON.stringify(sql)} should be refused by ${rule}`);
    assert.equal(v.refusal?.sqlstate, '0A000', sql);
  }
}

/** Asserts each statement is accepted. */
function accepted(...sqls: string[]): void {
  for (const sql of sqls) {
    const v = one(sql);
    assert.equal(
      v.refusal,
      undefined,
      `${JSON.stringify(sql)} should be accepted, got ${v.refusal?.message}`,
    );
  }
}

function message(sql: string): string | undefined {
  return one(sql).refusal?.message;
}

describe('endpoint rules: session parameters', () => {
  it("SET of a parameter outside the allowlist, in every spelling, gets DSQL's message", () => {
    refused(
      'set-parameter',
      'SET statement_timeout = 0',
      'SET statement_timeout TO 0',
      'set SESSION statement_timeout to 0',
      'SET LOCAL lock_timeout = 0',
      'SET statement_timeout TO DEFAULT',
      'SET synchronize_seqscans = off',
      'SET myapp.tenant = 42',
      'SET "Statement_Timeout" = 0',
      'SET XML OPTION DOCUMENT',
      'SET SESSION AUTHORIZATION alice',
      'SET SESSION AUTHORIZATION DEFAULT',
      'RESET statement_timeout',
      'RESET SESSION AUTHORIZATION',
    );
    assert.equal(
      message('SET synchronize_seqscans = off'),
      'setting configuration parameter "synchronize_seqscans" not supported',
    );
    assert.equal(
      message('set Statement_Timeout = 0'),
      'setting configuration parameter "statement_timeout" not supported',
    );
    assert.equal(
      message('SET myapp.Tenant = 1'),
      'setting configuration parameter "myapp.tenant" not supported',
    );
    assert.equal(
      message('SET SESSION AUTHORIZATION x'),
      'setting configuration parameter "session_authorization" not supported',
    );
    // A long name is cut at 63 characters, never inside a surrogate pair.
    const long = `${'a'.repeat(62)}𝒳𝒳`;
    assert.equal(
      message(`SET ${long} = 1`),
      `setting configuration parameter "${'a'.repeat(62)}𝒳" not supported`,
    );
  });

  it('the allowlist (from startup-params.ts, plus role and disable_sync_create_index) is accepted', () => {
    accepted(
      'SET search_path = public',
      'SET search_path TO DEFAULT',
      "SET SESSION application_name TO 'x'",
      "SET LOCAL TimeZone = 'UTC'",
      'SET "TimeZone" = \'UTC\'',
      'SET datestyle = ISO, MDY',
      'SET extra_float_digits = 3',
      'SET intervalstyle = postgres',
      "SET client_encoding = 'UTF8'",
      'SET enable_seqscan = off',
      'SET disable_sync_create_index = on',
      "SET TIME ZONE 'UTC'",
      'SET LOCAL TIME ZONE LOCAL',
      "SET SCHEMA 'public'",
      "SET NAMES 'UTF8'",
      'SET ROLE app',
      'SET SESSION ROLE app',
      'SET ROLE NONE',
      'RESET ROLE',
      'RESET search_path',
      'RESET TIME ZONE',
    );
    assert.equal(isDsqlSessionParam('Role'), true);
    assert.equal(isDsqlSessionParam('statement_timeout'), false);
  });

  it('RESET ALL is refused (unconfirmed on DSQL, refused to be safe)', () => {
    refused('reset-all', 'RESET ALL', 'reset all');
  });

  it('set_config() anywhere: a literal allowlisted name is accepted, anything else refused', () => {
    accepted(
      "SELECT set_config('search_path', 'public', false)",
      "SELECT pg_catalog.set_config('application_name', 'x', false)",
      "SELECT set_config('TimeZone'::text, 'UTC', true)",
      "SELECT set_config($$search_path$$, 'x', false)",
      // Another schema's set_config is another function.
      "SELECT myschema.set_config(name, 'x', false)",
      // Not a call.
      'SELECT set_config FROM t',
    );
    refused(
      'set-parameter',
      "SELECT set_config('statement_timeout', '0', false)",
      "select PG_CATALOG.SET_CONFIG('lock_timeout', '0', false)",
      "SELECT 1 WHERE set_config('row_security', 'off', false) IS NOT NULL",
      "SELECT set_config(E'statement\\_timeout', '0', false)",
      "SELECT set_config('search' || '_path', 'x', false)",
      "SELECT set_config(name, 'view, foreign-table', false) FROM pg_settings WHERE name = 'restrict_nonsystem_relation_kind'",
    );
    assert.equal(
      message("SELECT set_config('statement_timeout', '0', false)"),
      'setting configuration parameter "statement_timeout" not supported',
    );
    // U&'' literals are read, with their UESCAPE character too.
    refused(
      'set-parameter',
      "SELECT set_config(U&'statement\\005ftimeout', '0', false)",
      "SELECT set_config(U&'statement!005ftimeout' UESCAPE '!', '0', false)",
    );
    accepted(
      "SELECT set_config(U&'search\\005Fpath', 'x', false)",
      "SELECT set_config(U&'search!+00005Fpath' UESCAPE '!', 'x', false)",
    );
    assert.equal(
      message("SELECT set_config(U&'statement\\005ftimeout', '0', false)"),
      'setting configuration parameter "statement_timeout" not supported',
    );
    // A computed name is never quoted (it is SQL text, which may hold secrets).
    assert.equal(
      message("SELECT set_config('x' || current_setting('my.secret_key'), '0', false)"),
      'setting configuration parameter "(computed name)" not supported',
    );
    assert.equal(
      message(
        "SELECT set_config(name, 'view, foreign-table', false) FROM pg_settings WHERE name = 'restrict_nonsystem_relation_kind'",
      ),
      'setting configuration parameter "restrict_nonsystem_relation_kind" not supported',
    );
  });
});

describe('endpoint rules: statements DSQL refuses', () => {
  it('LOCK and SQL-level PREPARE, with the messages AWS recorded', () => {
    refused('lock', 'LOCK TABLE public.t IN ACCESS SHARE MODE', 'lock t');
    refused('prepare', 'PREPARE dumpFunc(pg_catalog.oid) AS SELECT 1', 'prepare p as select 1');
    assert.equal(message('LOCK TABLE t'), 'unsupported statement: Lock');
    assert.equal(message('PREPARE p AS SELECT 1'), 'unsupported statement: Prepare');
    accepted("PREPARE TRANSACTION 'x'");
  });

  it('DEALLOCATE one statement is refused, DEALLOCATE [PREPARE] ALL accepted', () => {
    refused('deallocate', 'DEALLOCATE p', 'DEALLOCATE PREPARE p', 'deallocate "all"');
    accepted('DEALLOCATE ALL', 'deallocate prepare all');
  });

  it('DISCARD, LISTEN, UNLISTEN, NOTIFY', () => {
    refused('discard', 'DISCARD ALL', 'DISCARD PLANS', 'discard temp');
    refused('listen-notify', 'LISTEN ch', 'UNLISTEN *', "NOTIFY ch, 'x'");
    assert.equal(message('LISTEN ch'), 'unsupported statement: Listen');
    // pg_notify() is not in any source as refused: left to PostgreSQL.
    accepted("SELECT pg_notify('ch', 'x')");
  });

  it('SAVEPOINT, RELEASE, ROLLBACK TO; plain ROLLBACK is fine', () => {
    refused(
      'savepoint',
      'SAVEPOINT s1',
      'RELEASE SAVEPOINT s1',
      'RELEASE s1',
      'ROLLBACK TO SAVEPOINT s1',
      'ROLLBACK TO s1',
      'ROLLBACK WORK TO s1',
      'rollback transaction to savepoint s1',
    );
    accepted('ROLLBACK', 'ROLLBACK WORK', 'ROLLBACK AND NO CHAIN', 'ABORT', 'COMMIT', 'END');
  });

  it('DECLARE ... CURSOR', () => {
    refused(
      'cursor',
      'DECLARE c CURSOR FOR SELECT 1',
      'DECLARE c BINARY NO SCROLL CURSOR WITH HOLD FOR SELECT 1',
    );
  });

  it('SET TRANSACTION and SET SESSION CHARACTERISTICS', () => {
    refused(
      'set-transaction',
      'SET TRANSACTION ISOLATION LEVEL REPEATABLE READ',
      'SET TRANSACTION READ ONLY',
      'SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL SERIALIZABLE',
    );
  });

  it('BEGIN / START TRANSACTION: only REPEATABLE READ as an isolation level', () => {
    accepted(
      'BEGIN',
      'BEGIN WORK',
      'BEGIN READ ONLY',
      'BEGIN TRANSACTION READ WRITE',
      'BEGIN ISOLATION LEVEL REPEATABLE READ',
      'START TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY',
      'START TRANSACTION',
    );
    refused(
      'isolation-level',
      'BEGIN ISOLATION LEVEL SERIALIZABLE',
      'BEGIN TRANSACTION ISOLATION LEVEL READ COMMITTED',
      'begin read only, isolation level read uncommitted',
      'START TRANSACTION ISOLATION LEVEL SERIALIZABLE',
    );
  });

  it('COPY to or from a file or a program; STDIN and STDOUT are fine', () => {
    refused(
      'copy-file',
      "COPY t FROM '/tmp/x.csv'",
      "COPY t (a, b) TO '/tmp/x.csv' WITH (FORMAT csv)",
      "COPY (SELECT * FROM t) TO '/tmp/x'",
      "COPY t FROM PROGRAM 'cat /etc/passwd'",
    );
    accepted(
      'COPY t FROM STDIN',
      'COPY t (a, b) FROM STDIN WITH (FORMAT csv)',
      'COPY public.t TO STDOUT',
      "COPY (SELECT * FROM t WHERE a = 'x') TO STDOUT",
    );
  });

  it('TRUNCATE, VACUUM, LOAD', () => {
    refused('truncate', 'TRUNCATE t', 'TRUNCATE TABLE t RESTART IDENTITY');
    refused('vacuum', 'VACUUM', 'VACUUM (ANALYZE) t');
    refused('load', "LOAD 'auto_explain'");
    accepted('ANALYZE t');
  });

  it('temporary tables', () => {
    refused(
      'temporary-table',
      'CREATE TEMP TABLE x (a int)',
      'CREATE TEMPORARY TABLE x (a int)',
      'CREATE LOCAL TEMP TABLE x (a int)',
      'CREATE GLOBAL TEMPORARY TABLE x (a int)',
      'CREATE TEMP TABLE x AS SELECT 1',
      'SELECT 1 INTO TEMP x',
      'SELECT * INTO TEMPORARY TABLE x FROM t',
    );
    accepted('CREATE TABLE temp (a int)', 'SELECT 1 INTO x', 'SELECT temp FROM t');
  });

  it('triggers and extensions', () => {
    refused(
      'trigger',
      'CREATE TRIGGER tr AFTER INSERT ON t FOR EACH ROW EXECUTE FUNCTION f()',
      'CREATE OR REPLACE TRIGGER tr BEFORE UPDATE ON t EXECUTE PROCEDURE f()',
      'CREATE CONSTRAINT TRIGGER tr AFTER INSERT ON t FOR EACH ROW EXECUTE FUNCTION f()',
    );
    refused('extension', 'CREATE EXTENSION IF NOT EXISTS pgcrypto', 'create extension "uuid-ossp"');
  });

  it('functions, procedures and DO blocks in a language other than SQL or PL/pgSQL', () => {
    refused(
      'function-language',
      'CREATE PROCEDURE p() LANGUAGE plpython3u AS $$ pass $$',
      "CREATE OR REPLACE FUNCTION f() RETURNS int AS 'x' LANGUAGE 'plperl'",
      'CREATE FUNCTION f() RETURNS int LANGUAGE C AS $$ $$',
      'DO LANGUAGE plpython3u $$ pass $$',
      'DO $$ pass $$ LANGUAGE plperl',
    );
    assert.equal(
      message('CREATE FUNCTION f() RETURNS int LANGUAGE PLPerl AS $$ $$'),
      'language "plperl" is not supported; use LANGUAGE sql or plpgsql',
    );
    // AWS's "PL/pgSQL in Aurora DSQL" page: functions, procedures and DO blocks in plpgsql run.
    accepted(
      'CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $$ BEGIN RETURN 1; END $$',
      "CREATE OR REPLACE FUNCTION f() RETURNS int AS 'select 1' LANGUAGE 'plpgsql'",
      'DO $$ BEGIN PERFORM 1; END $$',
      'DO LANGUAGE plpgsql $$ BEGIN END $$',
    );
    accepted(
      'CREATE FUNCTION f() RETURNS int LANGUAGE sql AS $$ SELECT 1 $$',
      "CREATE FUNCTION f() RETURNS int AS 'SELECT 1' LANGUAGE SQL IMMUTABLE",
      'CREATE FUNCTION f(a int) RETURNS int RETURN a + 1',
      // "language" as a word in the SQL-standard body is not a LANGUAGE clause.
      'CREATE FUNCTION f() RETURNS text BEGIN ATOMIC SELECT language FROM langs; END',
      // A dollar-quoted body mentioning plpgsql is still a SQL function.
      "CREATE FUNCTION f() RETURNS text LANGUAGE sql AS $$ SELECT 'LANGUAGE plpgsql' $$",
    );
  });

  it('foreign keys in CREATE TABLE and ALTER TABLE', () => {
    refused(
      'foreign-key',
      'CREATE TABLE o (id int, c int REFERENCES c(id))',
      'CREATE TABLE o (id int, c int, FOREIGN KEY (c) REFERENCES c (id))',
      'CREATE TABLE o (id int, CONSTRAINT fk FOREIGN KEY (c) REFERENCES c)',
      'ALTER TABLE o ADD CONSTRAINT fk FOREIGN KEY (c) REFERENCES c (id)',
      'ALTER TABLE o ADD COLUMN c int REFERENCES c',
    );
    accepted(
      'CREATE TABLE o (id int PRIMARY KEY, "references" text)',
      "CREATE TABLE o (note text DEFAULT 'REFERENCES x')",
    );
  });

  it('partitions', () => {
    refused(
      'partition',
      'CREATE TABLE logs (id int, at date) PARTITION BY RANGE (at)',
      "CREATE TABLE logs_2024 PARTITION OF logs FOR VALUES FROM ('2024-01-01') TO ('2025-01-01')",
      "ALTER TABLE logs ATTACH PARTITION p FOR VALUES IN ('x')",
      'ALTER TABLE logs DETACH PARTITION p',
    );
    // A window's PARTITION BY is not a partitioned table.
    accepted('CREATE TABLE r AS SELECT rank() OVER (PARTITION BY a ORDER BY b) FROM t');
  });

  it('CREATE INDEX without ASYNC is refused; with ASYNC it is accepted and ASYNC is edited out', () => {
    refused(
      'create-index-sync',
      'CREATE INDEX i ON t (a)',
      'CREATE UNIQUE INDEX i ON t (a)',
      'CREATE INDEX CONCURRENTLY i ON t (a)',
      'create index on t (a)',
      'CREATE INDEX IF NOT EXISTS i ON t (a)',
    );
    const sql = 'CREATE UNIQUE INDEX  async i ON t (a)';
    const v = one(sql);
    assert.equal(v.refusal, undefined);
    assert.equal(v.asyncIndex, true);
    assert.deepEqual(v.edits, [{ start: 21, end: 26, text: '', kind: 'replace' }]);
    assert.equal(sql.slice(21, 26), 'async');
    // Unnamed: `ASYNC ON` is still the keyword.
    const unnamed = 'CREATE INDEX ASYNC ON t (a)';
    const u = one(unnamed);
    assert.equal(u.refusal, undefined);
    assert.equal(applyEdits(unnamed, u), 'CREATE INDEX  ON t (a)');
    assert.equal(one('CREATE INDEX i ON t (a)').asyncIndex, undefined);
  });

  it('SERIAL column types', () => {
    refused(
      'serial',
      'CREATE TABLE t (id serial PRIMARY KEY)',
      'CREATE TABLE t (a int, id BIGSERIAL)',
      'CREATE TABLE t (id smallserial)',
      'CREATE TABLE t (id serial8, "serial" serial4, x serial2)',
      'ALTER TABLE t ADD COLUMN n serial',
      'ALTER TABLE t ADD n bigserial',
      'ALTER TABLE t ADD COLUMN IF NOT EXISTS n serial',
    );
    assert.equal(
      message('CREATE TABLE t (id BigSerial)'),
      'type "bigserial" is not supported; use GENERATED BY DEFAULT AS IDENTITY',
    );
    accepted(
      'CREATE TABLE t (id bigint GENERATED BY DEFAULT AS IDENTITY, serial text)',
      'CREATE TABLE t (serial int)',
      'ALTER TABLE t ADD COLUMN serial text',
      'ALTER TABLE t ADD serial text',
      'ALTER TABLE t RENAME COLUMN serial TO n',
      'SELECT serial FROM t',
      'CREATE SEQUENCE s',
    );
  });

  it('advisory lock functions', () => {
    refused(
      'advisory-lock',
      'SELECT pg_advisory_lock(1)',
      'SELECT pg_catalog.pg_try_advisory_xact_lock(1, 2)',
      'SELECT x FROM t WHERE PG_ADVISORY_UNLOCK_ALL() IS NULL',
    );
    assert.equal(message('SELECT pg_advisory_lock(1)'), 'function pg_advisory_lock is not supported');
    accepted(
      "SELECT 'pg_advisory_lock(1)'",
      'SELECT pg_advisory_lock FROM t',
      'SELECT other.pg_advisory_lock(1)',
    );
  });

  it('a refused keyword inside a literal, comment, dollar quote or quoted identifier is not a statement', () => {
    accepted(
      "SELECT 'LOCK TABLE t'",
      "SELECT E'\\'; LOCK TABLE t; --'",
      'SELECT $$; LOCK TABLE t; $$',
      'SELECT $x$; TRUNCATE t; $x$',
      'SELECT 1 /* ; LOCK TABLE t; */',
      'SELECT 1 -- ; LOCK TABLE t',
      'SELECT "LOCK" FROM "TRUNCATE"',
      'CREATE FUNCTION f() RETURNS int LANGUAGE sql AS $$ SELECT 1 $$',
      "SELECT set_config FROM t WHERE x = 'SET statement_timeout = 0'",
    );
    assert.equal(classify("SELECT 'x;LOCK t'; SELECT 2").length, 2);
    assert.equal(
      classify("SELECT 'x;LOCK t'; SELECT 2").some((v) => v.refusal !== undefined),
      false,
    );
  });

  it('ordinary statements are accepted', () => {
    accepted(
      'SELECT 1',
      'INSERT INTO t VALUES (1)',
      'CREATE TABLE t (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), a text NOT NULL UNIQUE)',
      'CREATE VIEW v AS SELECT 1',
      'DROP TABLE t',
      'GRANT SELECT ON t TO r',
      'SHOW transaction_isolation',
      'EXPLAIN SELECT 1',
      "SELECT current_setting('search_path')",
      'SELECT * FROM t FOR UPDATE',
    );
  });
});

describe('endpoint rules: multi-statement strings', () => {
  it('each statement gets its own verdict with exact offsets', () => {
    const sql = "SET search_path = public; LOCK t;\nSELECT 'a;b' ; DISCARD ALL";
    const v = classify(sql);
    assert.deepEqual(
      v.map((s) => [sql.slice(s.start, s.end), s.keyword, s.refusal?.rule]),
      [
        ['SET search_path = public', 'set', undefined],
        ['LOCK t', 'lock', 'lock'],
        ["SELECT 'a;b'", 'select', undefined],
        ['DISCARD ALL', 'discard', 'discard'],
      ],
    );
  });

  it('keyword is the lower-case first word, or empty', () => {
    assert.deepEqual(
      classify('Select 1; (SELECT 1); "x"; VALUES (1)').map((v) => v.keyword),
      ['select', '', '', 'values'],
    );
  });

  it('nothing for empty text, whitespace, comments and bare semicolons', () => {
    for (const sql of ['', '   ', ';', ';;  ;', '-- x', '/* x */ ; /* y */'])
      assert.deepEqual(classify(sql), [], sql);
  });

  it('an unterminated comment at the end stays in the last statement', () => {
    const sql = 'SELECT 1 /* open';
    assert.deepEqual(classify(sql), [
      { start: 0, end: sql.length, keyword: 'select', writes: false, edits: [], unterminated: true },
    ]);
  });
});

describe('endpoint rules: sys.iam_session_user()', () => {
  it('one edit over the call, in any spelling, also in a refused or multi-statement text', () => {
    const cases: Array<[string, string]> = [
      ['SELECT sys.iam_session_user()', 'sys.iam_session_user()'],
      ['select SYS.IAM_SESSION_USER ( )', 'SYS.IAM_SESSION_USER ( )'],
      ['SELECT "sys"."iam_session_user"()', '"sys"."iam_session_user"()'],
      ['SELECT sys . /* c */ iam_session_user\n(\n)', 'sys . /* c */ iam_session_user\n(\n)'],
    ];
    for (const [sql, call] of cases) {
      const v = one(sql);
      assert.equal(v.edits.length, 1, sql);
      const e = v.edits[0]!;
      assert.equal(e.kind, 'iam-session-user');
      assert.equal(sql.slice(e.start, e.end), call);
    }
    const multi = 'SELECT 1; SELECT sys.iam_session_user(), sys.iam_session_user()';
    const [, second] = classify(multi);
    assert.deepEqual(
      second!.edits.map((e) => multi.slice(e.start, e.end)),
      ['sys.iam_session_user()', 'sys.iam_session_user()'],
    );
  });

  it('not in literals, not with quoted names in another case, not with arguments, not another schema', () => {
    for (const sql of [
      "SELECT 'sys.iam_session_user()'",
      'SELECT "SYS".iam_session_user()',
      'SELECT sys."IAM_SESSION_USER"()',
      'SELECT sys.iam_session_user(1)',
      'SELECT other.iam_session_user()',
      'SELECT iam_session_user()',
    ]) {
      assert.deepEqual(one(sql).edits, [], sql);
    }
  });
});

describe('endpoint rules: writes', () => {
  it('marks statements that may modify rows', () => {
    const yes = [
      'INSERT INTO t VALUES (1)',
      'UPDATE t SET a = 1',
      'DELETE FROM t',
      'MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN DELETE',
      'COPY t FROM STDIN',
      'SELECT 1 INTO x',
      'CREATE TABLE x AS SELECT 1',
      'CREATE TABLE x (a) AS VALUES (1)',
      'CREATE UNLOGGED TABLE x AS SELECT 1',
      'CREATE MATERIALIZED VIEW m AS SELECT 1',
      'WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d',
      'WITH s AS (SELECT 1) INSERT INTO t SELECT * FROM s',
      'WITH s AS (SELECT 1) SELECT * INTO x FROM s',
      'EXPLAIN ANALYZE UPDATE t SET a = 1',
      'EXPLAIN (ANALYZE, BUFFERS) DELETE FROM t',
    ];
    const no = [
      'SELECT 1',
      'SELECT * FROM t FOR UPDATE',
      'COPY t TO STDOUT',
      'CREATE TABLE x (a int)',
      'CREATE VIEW v AS SELECT 1',
      'WITH s AS (SELECT 1) SELECT * FROM s',
      'EXPLAIN UPDATE t SET a = 1',
      // RETURNS TABLE ... AS is a function, not CREATE TABLE ... AS.
      'CREATE FUNCTION f() RETURNS TABLE (a int) LANGUAGE sql AS $$ SELECT 1 $$',
      'CREATE OR REPLACE VIEW v AS SELECT 1',
      "SELECT 'INSERT INTO t VALUES (1)'",
      'SET search_path = public',
      'BEGIN',
    ];
    for (const sql of yes) assert.equal(one(sql).writes, true, sql);
    for (const sql of no) assert.equal(one(sql).writes, false, sql);
  });
});

describe('endpoint rules: the rule table', () => {
  it('lists every rule once, each with a SQLSTATE, a message and a source', () => {
    const names = RULES.map((r) => r.name);
    assert.equal(new Set(names).size, names.length);
    for (const r of RULES) {
      assert.match(r.sqlstate, /^[0-9A-Z]{5}$/, r.name);
      assert.ok(r.message.length > 0, r.name);
      assert.ok(r.source.startsWith('https://') || r.source === 'docs/dsql.md', r.name);
      assert.equal(r.sqlstatePublished, false, `${r.name}: no DSQL SQLSTATE is published`);
    }
    // The messages AWS has published, exactly.
    const published = RULES.filter((r) => r.published).map((r) => [r.name, r.message]);
    assert.deepEqual(published, [
      ['set-parameter', 'setting configuration parameter "<name>" not supported'],
      ['lock', 'unsupported statement: Lock'],
      ['prepare', 'unsupported statement: Prepare'],
    ]);
  });

  it('every refusal comes from a listed rule and carries its SQLSTATE', () => {
    const samples = [
      'SET statement_timeout = 0',
      'RESET ALL',
      'LOCK t',
      'PREPARE p AS SELECT 1',
      'DEALLOCATE p',
      'DISCARD ALL',
      'LISTEN c',
      'SAVEPOINT s',
      'DECLARE c CURSOR FOR SELECT 1',
      'SET TRANSACTION READ ONLY',
      'BEGIN ISOLATION LEVEL SERIALIZABLE',
      "COPY t TO '/x'",
      'TRUNCATE t',
      'VACUUM',
      "LOAD 'x'",
      'CREATE TEMP TABLE t (a int)',
      'CREATE TRIGGER x AFTER INSERT ON t EXECUTE FUNCTION f()',
      'CREATE EXTENSION x',
      'DO LANGUAGE plperl $$ $$',
      'CREATE TABLE t (a int REFERENCES u)',
      'CREATE TABLE t (a int) PARTITION BY LIST (a)',
      'CREATE INDEX i ON t (a)',
      'CREATE TABLE t (a serial)',
      'SELECT pg_advisory_lock(1)',
    ];
    const seen = new Set<string>();
    for (const sql of samples) {
      const r = one(sql).refusal;
      assert.ok(r?.rule !== undefined, sql);
      const info = RULES.find((x) => x.name === r.rule);
      assert.ok(info, sql);
      assert.equal(r.sqlstate, info.sqlstate);
      seen.add(r.rule);
    }
    assert.deepEqual([...seen].sort(), RULES.map((r) => r.name).sort(), 'a sample for every rule');
  });
});

function applyEdits(sql: string, v: StatementVerdict): string {
  let out = '';
  let at = 0;
  for (const e of v.edits) {
    out += sql.slice(at, e.start) + e.text;
    at = e.end;
  }
  return out + sql.slice(at);
}

describe('endpoint rules: hostile sizes', () => {
  it('stays linear on long texts (many statements, long quotes, many dollar signs)', () => {
    const texts = [
      'SELECT 1;'.repeat(50_000),
      `SELECT '${'x'.repeat(500_000)}`,
      '$a'.repeat(200_000),
      '$$'.repeat(200_000),
      '/*'.repeat(200_000),
      'set_config('.repeat(50_000),
      `${'('.repeat(100_000)}LOCK t`,
      'CREATE FUNCTION f() BEGIN '.repeat(20_000),
    ];
    for (const sql of texts) {
      const t0 = performance.now();
      classify(sql);
      const ms = performance.now() - t0;
      // Generous for a loaded 2-core machine; a quadratic pass takes minutes here.
      assert.ok(ms < 5_000, `${ms.toFixed(0)} ms for ${JSON.stringify(sql.slice(0, 20))}...`);
    }
  });
});
