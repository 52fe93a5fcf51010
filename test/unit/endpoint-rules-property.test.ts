/**
 * Properties of the local endpoint's classifier (src/local-endpoint/rules/classify.ts): it never
 * throws; statement ranges and edits are well formed; comments and keyword case never change a
 * verdict; a refused statement inside a literal, comment or quoted identifier is never refused; and a
 * multi-statement text gets the verdicts of its statements one by one.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { classify, type StatementVerdict } from '../../src/local-endpoint/rules/classify.js';
import { lex, splitStatements } from '../../src/local-endpoint/rules/lexer.js';
import { runs } from './property-helpers.js';

/** Statements covering every rule, refused and accepted forms, and lexically tricky ones. */
const STATEMENTS: readonly string[] = [
  'SELECT 1',
  'SET statement_timeout = 0',
  'SET search_path TO public, "$user"',
  "set local TimeZone = 'UTC'",
  "SET TIME ZONE 'UTC'",
  'SET SESSION AUTHORIZATION DEFAULT',
  'RESET ALL',
  'RESET lock_timeout',
  "SELECT set_config('search_path', '', false)",
  "SELECT pg_catalog.set_config('statement_timeout', '0', false)",
  "SELECT set_config(name, 'view', false) FROM pg_settings WHERE name = 'restrict_nonsystem_relation_kind'",
  'LOCK TABLE ONLY public.t IN ACCESS SHARE MODE',
  'PREPARE q(pg_catalog.oid) AS SELECT $1',
  'DEALLOCATE q',
  'DEALLOCATE ALL',
  'DISCARD ALL',
  'LISTEN ch',
  "NOTIFY ch, 'payload; LOCK t'",
  'SAVEPOINT s1',
  'ROLLBACK TO SAVEPOINT s1',
  'ROLLBACK',
  'DECLARE c CURSOR FOR SELECT 1',
  'SET TRANSACTION ISOLATION LEVEL SERIALIZABLE',
  'BEGIN ISOLATION LEVEL READ COMMITTED',
  'BEGIN ISOLATION LEVEL REPEATABLE READ',
  'START TRANSACTION READ ONLY',
  'COMMIT',
  "COPY t FROM '/tmp/x'",
  'COPY t (a) FROM STDIN',
  'COPY (SELECT 1) TO STDOUT',
  'TRUNCATE t',
  'VACUUM t',
  "LOAD 'x'",
  'CREATE TEMP TABLE x (a int)',
  'SELECT 1 INTO TEMP x',
  'CREATE TRIGGER tr AFTER INSERT ON t FOR EACH ROW EXECUTE FUNCTION f()',
  'CREATE EXTENSION pgcrypto',
  'CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $$ BEGIN RETURN 1; END $$',
  "CREATE FUNCTION g() RETURNS text LANGUAGE sql AS $b$ SELECT 'LOCK t; $$' $b$",
  'CREATE FUNCTION h(a int) RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT a; SELECT CASE WHEN a > 0 THEN 1 END; END',
  'DO $$ BEGIN NULL; END $$',
  'CREATE TABLE o (id uuid PRIMARY KEY, c int REFERENCES c (id))',
  'ALTER TABLE o ADD CONSTRAINT f FOREIGN KEY (c) REFERENCES c',
  'CREATE TABLE l (a int) PARTITION BY RANGE (a)',
  'CREATE INDEX i ON t (a)',
  'CREATE UNIQUE INDEX ASYNC i ON t (a)',
  'CREATE TABLE s (id bigserial, "serial" text)',
  'SELECT pg_advisory_xact_lock(42)',
  'SELECT sys.iam_session_user()',
  "INSERT INTO t (a, b) VALUES (1, E'it\\'s'), ($1, U&'\\0041')",
  'WITH d AS (DELETE FROM t RETURNING *) SELECT count(*) FROM d',
  'UPDATE "Quoted ""Table""" SET "LOCK" = \'TRUNCATE\' WHERE a::text = \'x\'',
  "SELECT 'a' -- trailing; comment\n, /* nested /* LOCK t; */ ; */ 2",
];

/** What must not change when only comments or keyword case change. */
function gist(v: readonly StatementVerdict[]): unknown[] {
  return v.map((s) => [
    s.keyword,
    s.refusal?.rule,
    s.refusal?.message,
    s.writes,
    s.edits.map((e) => e.kind),
    s.asyncIndex,
  ]);
}

/** Asserts ranges are ordered, disjoint, non-empty, inside the text; edits sorted inside their statement. */
function assertWellFormed(sql: string, verdicts: readonly StatementVerdict[]): void {
  let prevEnd = 0;
  for (const v of verdicts) {
    assert.ok(Number.isInteger(v.start) && Number.isInteger(v.end));
    assert.ok(v.start >= prevEnd, `statement at ${v.start} overlaps the previous one ending at ${prevEnd}`);
    assert.ok(v.end > v.start, 'empty statement');
    assert.ok(v.end <= sql.length, 'statement past the end of the text');
    // PostgreSQL's whitespace is ASCII only: U+00A0 and friends are identifier characters to it.
    assert.ok(!/[ \t\n\r\f\v]/.test(sql[v.start]!), 'a statement starts at a token, not at whitespace');
    let editEnd = v.start;
    for (const e of v.edits) {
      assert.ok(e.start >= editEnd && e.end > e.start && e.end <= v.end, 'edits sorted, disjoint, inside');
      editEnd = e.end;
    }
    assert.equal(typeof v.writes, 'boolean');
    assert.equal(v.keyword, v.keyword.toLowerCase());
    prevEnd = v.end;
  }
}

/** Text from SQL-ish pieces, so that quotes, comments and keywords meet in every arrangement. */
const sqlish = fc
  .array(
    fc.oneof(
      fc.constantFrom(
        "'",
        '"',
        '$$',
        '$a$',
        '$1',
        '--',
        '/*',
        '*/',
        ';',
        '(',
        ')',
        ' ',
        '\n',
        '\\',
        "E'",
        "U&'",
        'U&"',
        'BEGIN',
        'ATOMIC',
        'END',
        'CASE',
        'CREATE FUNCTION',
        'SET',
        'LOCK',
        'set_config(',
        'sys.iam_session_user()',
        'INDEX ASYNC',
        'serial',
        'REFERENCES',
        '.',
        ',',
        '=',
      ),
      fc.constantFrom(...STATEMENTS),
      fc.string({ maxLength: 6 }),
    ),
    { maxLength: 24 },
  )
  .map((parts) => parts.join(''));

describe('endpoint rules: properties', () => {
  it('never throws, and ranges are well formed, on arbitrary text (any UTF-16, lone surrogates too)', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({ unit: 'binary', maxLength: 80 }),
          fc.string({ unit: 'grapheme', maxLength: 40 }),
          fc.string({ maxLength: 80 }),
          fc.string({
            unit: fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)),
            maxLength: 40,
          }),
        ),
        (sql) => {
          splitStatements(sql); // the lexer itself, without classify()'s safety net
          assertWellFormed(sql, classify(sql));
        },
      ),
      runs(3000),
    );
  });

  it('never throws, and ranges are well formed, on SQL-ish text', () => {
    fc.assert(
      fc.property(sqlish, (sql) => {
        splitStatements(sql); // the lexer itself, without classify()'s safety net
        assertWellFormed(sql, classify(sql));
      }),
      runs(3000),
    );
  });

  it('every prefix of a statement (a text cut anywhere) classifies without throwing, well formed', () => {
    for (const stmt of STATEMENTS) {
      for (let cut = 0; cut <= stmt.length; cut++) {
        const sql = stmt.slice(0, cut);
        splitStatements(sql); // the lexer itself, without classify()'s safety net
        assertWellFormed(sql, classify(sql));
      }
    }
  });

  it('a comment inserted between any two tokens changes no verdict', () => {
    fc.assert(
      fc.property(
        fc.array(fc.constantFrom(...STATEMENTS), { minLength: 1, maxLength: 3 }),
        fc.array(fc.nat(), { minLength: 1, maxLength: 4 }),
        fc.constantFrom(' /* c; LOCK t */ ', ' /* a /* nested */ b */ ', ' -- c; LOCK t\n', '\n\t '),
        (stmts, picks, comment) => {
          const sql = stmts.join('; ');
          const gaps = lex(sql).tokens.map((t) => t.end);
          const at = [...new Set(picks.map((p) => gaps[p % gaps.length]!))].sort((a, b) => b - a);
          let changed = sql;
          for (const pos of at) changed = changed.slice(0, pos) + comment + changed.slice(pos);
          assert.deepEqual(gist(classify(changed)), gist(classify(sql)), changed);
        },
      ),
      runs(2000),
    );
  });

  it('changing the case of keywords and unquoted names changes no verdict', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...STATEMENTS),
        fc.array(fc.boolean(), { minLength: 1, maxLength: 64 }),
        (sql, flips) => {
          let k = 0;
          let changed = '';
          let at = 0;
          for (const t of lex(sql).tokens) {
            if (t.kind !== 'word') continue;
            changed += sql.slice(at, t.start);
            for (const ch of sql.slice(t.start, t.end)) {
              const flip = flips[k++ % flips.length]!;
              changed +=
                /[a-z]/i.test(ch) && flip
                  ? ch === ch.toLowerCase()
                    ? ch.toUpperCase()
                    : ch.toLowerCase()
                  : ch;
            }
            at = t.end;
          }
          changed += sql.slice(at);
          assert.deepEqual(gist(classify(changed)), gist(classify(sql)), changed);
        },
      ),
      runs(2000),
    );
  });

  it('a refused statement inside a string, dollar quote, comment or quoted identifier is never refused', () => {
    const refusedOnes = STATEMENTS.filter((s) => classify(s).some((v) => v.refusal !== undefined));
    assert.ok(refusedOnes.length > 20);
    const wrappers: Array<(s: string) => string | undefined> = [
      (s) => `SELECT '${s.replaceAll("'", "''")}'`,
      (s) => `SELECT E'${s.replaceAll('\\', '\\\\').replaceAll("'", "\\'")}'`,
      (s) => (s.includes('$q$') ? undefined : `SELECT $q$${s}$q$`),
      (s) => `SELECT 1 AS "${s.replaceAll('"', '""')}"`,
      (s) => (/\/\*|\*\//.test(s) ? undefined : `SELECT 1 /* ${s} */`),
      (s) => (s.includes('\n') ? undefined : `SELECT 1 -- ${s}`),
      (s) => `CREATE FUNCTION w() RETURNS text LANGUAGE sql AS '${s.replaceAll("'", "''")}'`,
    ];
    fc.assert(
      fc.property(fc.constantFrom(...refusedOnes), fc.constantFrom(...wrappers), (stmt, wrap) => {
        const sql = wrap(stmt);
        if (sql === undefined) return;
        const v = classify(sql);
        assert.equal(v.length, 1, sql);
        assert.equal(v[0]!.refusal, undefined, sql);
        assert.deepEqual(v[0]!.edits, [], sql);
      }),
      runs(1000),
    );
  });

  it("a multi-statement text gets each statement's own verdict, at its own offsets", () => {
    fc.assert(
      fc.property(
        fc.array(fc.constantFrom(...STATEMENTS), { minLength: 1, maxLength: 5 }),
        fc.constantFrom(';', ' ; ', ';\n', '; ;', ';/* x */'),
        (stmts, sep) => {
          const sql = stmts.join(sep);
          const got = classify(sql);
          assert.equal(got.length, stmts.length, sql);
          let offset = 0;
          stmts.forEach((s, i) => {
            const alone = classify(s);
            assert.equal(alone.length, 1);
            const v = got[i]!;
            assert.equal(sql.slice(v.start, v.end), s);
            assert.equal(v.start, offset);
            const shift = (x: StatementVerdict): StatementVerdict => ({
              ...x,
              start: x.start + offset,
              end: x.end + offset,
              edits: x.edits.map((e) => ({ ...e, start: e.start + offset, end: e.end + offset })),
            });
            assert.deepEqual(v, shift(alone[0]!));
            offset += s.length + sep.length;
          });
        },
      ),
      runs(1000),
    );
  });
});
