/**
 * The local endpoint classifier's own lexer and statement splitter (src/local-endpoint/rules/lexer.ts):
 * the cases that trip SQL lexers, with offsets checked exactly.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  decodeUnicodeEscapes,
  lex,
  splitStatements,
  type Token,
} from '../../src/local-endpoint/rules/lexer.js';

/** Tokens as `kind:text` for compact assertions. */
function shape(sql: string): string[] {
  return lex(sql).tokens.map((t: Token) => `${t.kind}:${sql.slice(t.start, t.end)}`);
}

/** The statements' texts as the splitter's ranges cut them. */
function pieces(sql: string): string[] {
  return splitStatements(sql).map((s) => sql.slice(s.start, s.end));
}

describe('endpoint rules lexer: tokens', () => {
  it('words are folded to lower case, quoted identifiers keep their case', () => {
    const { tokens } = lex('SeLeCt "MixedCase", "a""b" FROM t');
    assert.deepEqual(
      tokens.map((t) => [t.kind, t.lower]),
      [
        ['word', 'select'],
        ['qident', 'MixedCase'],
        ['op', ','],
        ['qident', 'a"b'],
        ['word', 'from'],
        ['word', 't'],
      ],
    );
  });

  it("a '' inside a string is a quote, and a backslash is literal (standard_conforming_strings)", () => {
    const sql = "SELECT 'it''s', 'C:\\'; LOCK t";
    // 'C:\' ends at the quote after the backslash: the backslash does not escape it.
    assert.deepEqual(shape(sql), [
      'word:SELECT',
      "string:'it''s'",
      'op:,',
      "string:'C:\\'",
      'op:;',
      'word:LOCK',
      'word:t',
    ]);
    assert.equal(lex(sql).tokens[1]!.lower, "it's");
  });

  it("E'' strings take backslash escapes, including \\' (either case of E)", () => {
    const sql = "SELECT E'a\\'; LOCK t', e'x\\\\', E'it''s'";
    assert.deepEqual(shape(sql), [
      'word:SELECT',
      "string:E'a\\'; LOCK t'",
      'op:,',
      "string:e'x\\\\'",
      'op:,',
      "string:E'it''s'",
    ]);
    const values = lex(sql)
      .tokens.filter((t) => t.kind === 'string')
      .map((t) => t.lower);
    assert.deepEqual(values, ["a'; LOCK t", 'x\\', "it's"]);
  });

  it("U&'' strings, U&\"\" identifiers, B'' X'' N'' strings are one token each", () => {
    assert.deepEqual(shape(`SELECT U&'d\\0061t''a', U&"d!0061t" UESCAPE '!', B'101', X'1F', N'n'`), [
      'word:SELECT',
      "string:U&'d\\0061t''a'",
      'op:,',
      'qident:U&"d!0061t"',
      'word:UESCAPE',
      "string:'!'",
      'op:,',
      "string:B'101'",
      'op:,',
      "string:X'1F'",
      'op:,',
      "string:N'n'",
    ]);
  });

  it("U&'' values: \\XXXX, \\+XXXXXX and a doubled escape; an invalid escape leaves the value unknown", () => {
    const values = lex(`U&'d\\0061t\\+000061''s\\\\' U&'\\00zz' U&"\\0041b" U&'x'`).tokens.map((t) => [
      t.kind,
      t.lower,
      t.unicode,
    ]);
    assert.deepEqual(values, [
      ['string', "data's\\", true],
      ['string', undefined, true],
      ['qident', 'Ab', true],
      ['string', 'x', true],
    ]);
    assert.equal(decodeUnicodeEscapes('a!0062!!', '!'), 'ab!');
    assert.equal(decodeUnicodeEscapes('\\+110000', '\\'), undefined);
    assert.equal(decodeUnicodeEscapes('\\+01F600', '\\'), '\u{1F600}');
  });

  it('a word ending in e, b, x, n or u is not a string prefix', () => {
    assert.deepEqual(shape("SELECT typname'x', date '2020-01-01'"), [
      'word:SELECT',
      'word:typname',
      "string:'x'",
      'op:,',
      'word:date',
      "string:'2020-01-01'",
    ]);
  });

  it('dollar quotes with and without tags; $1 is a parameter; $ inside a word is part of it', () => {
    const sql = 'SELECT $$a;$b$$, $tag$ $$ ; $tag$, $1, $12::int, a$b, $x';
    assert.deepEqual(shape(sql), [
      'word:SELECT',
      'string:$$a;$b$$',
      'op:,',
      'string:$tag$ $$ ; $tag$',
      'op:,',
      'param:$1',
      'op:,',
      'param:$12',
      'op::',
      'op::',
      'word:int',
      'op:,',
      'word:a$b',
      'op:,',
      // `$x` with no closing `$` opens no quote.
      'op:$',
      'word:x',
    ]);
    assert.equal(lex('$q$body$q$').tokens[0]!.lower, 'body');
  });

  it('a dollar-quote tag must match exactly (case-sensitive)', () => {
    assert.deepEqual(shape('$A$ $a$ ; $A$ x'), ['string:$A$ $a$ ; $A$', 'word:x']);
  });

  it('comments are skipped: -- to the end of the line, /* */ nested', () => {
    assert.deepEqual(shape('a -- LOCK t;\nb /* x /* LOCK; */ still comment; */ c'), [
      'word:a',
      'word:b',
      'word:c',
    ]);
    assert.deepEqual(shape('a--x\rb'), ['word:a', 'word:b']);
    assert.deepEqual(shape('a/**/b'), ['word:a', 'word:b']);
  });

  it('numbers, including fractions, exponents and a trailing dot', () => {
    assert.deepEqual(shape('1 1.5 .5 1e10 1.5E-3 0x1F 1_000 1..2'), [
      'number:1',
      'number:1.5',
      'number:.5',
      'number:1e10',
      'number:1.5E-3',
      'number:0x1F',
      'number:1_000',
      'number:1',
      'op:.',
      'number:.2',
    ]);
  });

  it('non-ASCII letters are identifier characters (also astral ones, as two UTF-16 units)', () => {
    const sql = 'SELECT café, 名前, 𝒳y';
    assert.deepEqual(shape(sql), ['word:SELECT', 'word:café', 'op:,', 'word:名前', 'op:,', 'word:𝒳y']);
  });

  it('unterminated strings, identifiers, dollar quotes run to the end and say so', () => {
    for (const sql of ["SELECT 'abc", 'SELECT "abc', "SELECT E'a\\'", 'SELECT $x$ abc $y$', "SELECT U&'x"]) {
      const last = lex(sql).tokens.at(-1)!;
      assert.equal(last.end, sql.length, sql);
      assert.equal(last.unterminated, true, sql);
    }
  });

  it('an unterminated block comment (also a nested one) is reported', () => {
    assert.equal(lex('a /* b').unterminatedComment, true);
    assert.equal(lex('a /* /* */ b').unterminatedComment, true);
    assert.equal(lex('a /* /* */ */ b').unterminatedComment, false);
  });
});

describe('endpoint rules lexer: statements', () => {
  it('splits at top-level semicolons with exact offsets, leaving out whitespace and empty statements', () => {
    const sql = ' SELECT 1 ;;\n  select 2;  /* only a comment */ ; LOCK t -- tail';
    const stmts = splitStatements(sql);
    assert.deepEqual(
      stmts.map((s) => [s.start, s.end]),
      [
        [1, 9],
        [15, 23],
        [49, 55],
      ],
    );
    assert.equal(sql.indexOf('LOCK t'), 49);
    assert.deepEqual(pieces(sql), ['SELECT 1', 'select 2', 'LOCK t']);
  });

  it('no split at a ; inside strings, identifiers, dollar quotes, comments or parentheses', () => {
    const sql = `SELECT ';', ";", $$;$$, E'\\';' /* ; */ -- ;\n, (1;2); SELECT 2`;
    assert.deepEqual(pieces(sql), [`SELECT ';', ";", $$;$$, E'\\';' /* ; */ -- ;\n, (1;2)`, 'SELECT 2']);
  });

  it('no split inside the BEGIN ATOMIC ... END body of a function or procedure', () => {
    const fn =
      'CREATE OR REPLACE FUNCTION f(a int) RETURNS int LANGUAGE sql\nBEGIN ATOMIC\n  SELECT 1;\n' +
      '  SELECT CASE WHEN a > 0 THEN 1 ELSE 2 END;\nEND';
    const proc = 'create procedure p() begin atomic insert into t values (1); end';
    assert.deepEqual(pieces(`${fn}; ${proc};SELECT 3`), [fn, proc, 'SELECT 3']);
  });

  it('BEGIN as a transaction statement is not a body: the split goes on', () => {
    assert.deepEqual(pieces('BEGIN; SELECT 1; END; COMMIT'), ['BEGIN', 'SELECT 1', 'END', 'COMMIT']);
  });

  it('a CASE ... END outside a routine body does not nest anything', () => {
    assert.deepEqual(pieces('SELECT CASE WHEN true THEN 1 END; SELECT 2'), [
      'SELECT CASE WHEN true THEN 1 END',
      'SELECT 2',
    ]);
  });

  it('a statement ending in an unterminated comment covers it, and says so', () => {
    const sql = 'SELECT 1; SELECT 2 /* open';
    const stmts = splitStatements(sql);
    assert.equal(stmts.length, 2);
    assert.equal(stmts[1]!.end, sql.length);
    assert.equal(stmts[1]!.unterminated, true);
    assert.equal(stmts[0]!.unterminated, false);
  });

  it('a ; in an unterminated string does not split', () => {
    assert.deepEqual(pieces("SELECT 'a; LOCK t"), ["SELECT 'a; LOCK t"]);
  });

  it('offsets are UTF-16 code units', () => {
    const sql = "SELECT '𝒳'; SELECT 1";
    assert.deepEqual(
      splitStatements(sql).map((s) => [s.start, s.end]),
      [
        [0, 11],
        [13, 21],
      ],
    );
  });
});
