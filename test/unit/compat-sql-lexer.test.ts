/**
 * The compatibility layer's SQL lexer (src/compat/sql/lexer.ts) against PostgreSQL's scan.l rules:
 * token boundaries, decoded values, and the errors it marks instead of throwing.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type Token, tokenize } from '../../src/compat/sql/lexer.js';

/** kind:value of each token. */
function kinds(sql: string, scs = true): string[] {
  return tokenize(sql, scs).map((t) => `${t.kind}:${t.value}${t.bad ? '!' : ''}`);
}

function only(sql: string, scs = true): Token {
  const toks = tokenize(sql, scs);
  assert.equal(toks.length, 1, `one token in ${JSON.stringify(sql)}: ${kinds(sql, scs).join(' ')}`);
  return toks[0]!;
}

describe('compat sql lexer: whitespace and comments', () => {
  it('skips spaces, -- comments and nested block comments', () => {
    assert.deepEqual(kinds(' \t\v\f\r\n-- x ; y\nset /* a /* b; */ c; */ x'), ['ident:set', 'ident:x']);
  });

  it('an unterminated block comment is one bad token to the end', () => {
    const toks = tokenize('select 1 /* a /* b */ c');
    assert.deepEqual(
      toks.map((t) => [t.kind, t.bad]),
      [
        ['ident', false],
        ['number', false],
        ['error', true],
      ],
    );
    assert.equal(toks[2]!.start, 9);
    assert.equal(toks[2]!.end, 23);
  });

  it('an operator stops where a comment starts', () => {
    assert.deepEqual(kinds('a =-- c\n1'), ['ident:a', 'op:=', 'number:1']);
    assert.deepEqual(kinds('a +/* c */1'), ['ident:a', 'op:+', 'number:1']);
  });
});

describe('compat sql lexer: identifiers', () => {
  it('folds ASCII only, keeps $ and digits inside', () => {
    assert.deepEqual(kinds('SeLeCt Ab$1_x ÄBC'), ['ident:select', 'ident:ab$1_x', 'ident:Äbc']);
  });

  it('quoted identifiers keep case and read "" as a quote', () => {
    const t = only('"My ""Name"""');
    assert.equal(t.value, 'My "Name"');
    assert.equal(t.quoted, true);
  });

  it('a zero-length quoted identifier is an error', () => {
    assert.equal(only('""').bad, true);
  });

  it('U&"" identifiers with escapes and UESCAPE', () => {
    assert.equal(only('U&"d\\0061t\\+000061"').value, 'data');
    const t = only('u&"d!0061t" /* c */ UESCAPE \'!\'');
    assert.equal(t.value, 'dat');
    assert.equal(t.quoted, true);
    assert.equal(only('U&"\\00zz"').bad, true);
  });

  it('cuts identifiers to 63 bytes without splitting a character', () => {
    assert.equal(only('a'.repeat(70)).value, 'a'.repeat(63));
    assert.equal(only('é'.repeat(40)).value, 'é'.repeat(31));
  });
});

describe('compat sql lexer: strings', () => {
  it("plain strings read '' as a quote, and scs decides what a backslash does", () => {
    assert.equal(only("'it''s \\n'").value, "it's \\n");
    assert.equal(only("'it\\'s \\n'", false).value, "it's \n");
    assert.equal(only("'a\\\\'", false).value, 'a\\');
  });

  it('E strings read all of PostgreSQL backslash escapes', () => {
    const t = only("E'\\b\\f\\n\\r\\t\\\\\\'\\q\\101\\x41\\x4\\u00e9\\U0001F600'");
    assert.equal(t.value, "\b\f\n\r\t\\'qAA\x04é😀");
    assert.equal(t.prefix, 'e');
    assert.equal(only("e'\\xc3\\xa9'").value, 'é', 'byte escapes form UTF-8');
    assert.equal(only("E'\\uD83D\\uDE00'").value, '😀', 'a surrogate pair');
  });

  it('E strings: invalid escapes are errors, not throws', () => {
    for (const bad of ["E'\\xff'", "E'\\0'", "E'\\uD83D'", "E'\\u12'", "E'\\U00110000'"]) {
      assert.equal(only(bad).bad, true, bad);
    }
  });

  it('strings continue across a newline', () => {
    assert.equal(only("'a'\n  'b'\n -- c\n'c'").value, 'abc');
    assert.equal(only("'a' -- c\n'b'").value, 'ab', 'a -- comment before the newline');
    assert.deepEqual(kinds("'a'\n/* c */'b'"), ['string:a', 'string:b'], 'a block comment ends it');
    assert.deepEqual(kinds("'a' \v\n'b'"), ['string:a', 'string:b'], 'only [ \\t\\f] before the newline');
    assert.deepEqual(kinds("'a' 'b'"), ['string:a', 'string:b']);
  });

  it('U& strings, UESCAPE, and their refusal when scs is off', () => {
    assert.equal(only("U&'\\0041\\\\'").value, 'A\\');
    assert.equal(only("U&'x#0041' UESCAPE '#'").value, 'xA');
    assert.equal(only("U&'x' UESCAPE 'a'").bad, true, 'a hex digit cannot be the escape');
    assert.equal(only("U&'x'", false).bad, true);
  });

  it('B, X and N strings', () => {
    assert.equal(only("B'0101'").prefix, 'b');
    assert.equal(only("b'012'").bad, true);
    assert.equal(only("X'1F'").prefix, 'x');
    assert.equal(only("x'1G'").bad, true);
    assert.equal(only("N'abc'").value, 'abc');
  });

  it('dollar quotes: empty and tagged tags, a digit cannot start a tag', () => {
    assert.equal(only("$$it's ; \\$$").value, "it's ; \\");
    assert.equal(only('$a_1$ $$ $b$ $a_1$').value, ' $$ $b$ ');
    assert.equal(only('$tag$x$TAG$y$tag$').value, 'x$TAG$y');
    assert.deepEqual(kinds('$1 $12'), ['param:$1', 'param:$12']);
    assert.deepEqual(kinds('$1$$x$$'), ['param:$1', 'string:x']);
    assert.deepEqual(kinds('$ x'), ['op:$', 'ident:x']);
    assert.deepEqual(kinds('a$$b$$'), ['ident:a$$b$$'], 'inside an identifier $ is a letter');
  });

  it('an unterminated string is one bad token to the end', () => {
    for (const s of ["'abc", "E'ab\\'", '$a$ x $a', '"abc', "U&'x", "B'01"]) {
      const toks = tokenize(`set x = ${s}`);
      const last = toks[toks.length - 1]!;
      assert.equal(last.kind, 'error', s);
      assert.equal(last.end, 8 + s.length, s);
    }
  });
});

describe('compat sql lexer: numbers, parameters, operators', () => {
  it('reads PostgreSQL numeric forms', () => {
    assert.deepEqual(kinds('1 1.5e3 .5 1. 0x1F 0o17 0b101 1_000 1E-2 0x_ff'), [
      'number:1',
      'number:1.5e3',
      'number:.5',
      'number:1.',
      'number:0x1F',
      'number:0o17',
      'number:0b101',
      'number:1_000',
      'number:1E-2',
      'number:0x_ff',
    ]);
  });

  it('trailing junk after a number is an error', () => {
    for (const s of ['1abc', '0x', '1_', '1__0', '1e', '1e+', '$1a']) {
      assert.equal(tokenize(s)[0]!.bad, true, s);
    }
  });

  it('1..2 is 1 then ..', () => {
    assert.deepEqual(kinds('1..2'), ['number:1', 'op:..', 'number:2']);
  });

  it('operators: punctuation, ::, trailing signs dropped as scan.l does', () => {
    assert.deepEqual(kinds('a::text[1](x),y;'), [
      'ident:a',
      'op:::',
      'ident:text',
      'op:[',
      'number:1',
      'op:]',
      'op:(',
      'ident:x',
      'op:)',
      'op:,',
      'ident:y',
      'op:;',
    ]);
    assert.deepEqual(kinds('x=-1'), ['ident:x', 'op:=', 'op:-', 'number:1']);
    assert.deepEqual(kinds('x@-1'), ['ident:x', 'op:@-', 'number:1']);
    assert.deepEqual(kinds('a <> b := c => d'), [
      'ident:a',
      'op:<>',
      'ident:b',
      'op::=',
      'ident:c',
      'op:=>',
      'ident:d',
    ]);
  });
});
