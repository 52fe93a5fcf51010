/**
 * Properties and fuzzing of the compatibility layer's SQL reader (src/compat/sql): splitting
 * generated multi-statement texts gives their parts back; mightNeedCompat is never false where
 * classify finds work for the layer; hostile and mutated input never throws, stays fast, and split
 * slices cover the input (what lies between them is only whitespace, comments and ';').
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { tokenize } from '../../src/compat/sql/lexer.js';
import {
  classify,
  mightNeedCompat,
  type SplitStatement,
  splitStatements,
} from '../../src/compat/sql/statements.js';
import { runs } from './property-helpers.js';

/** Tokens that hide a ';' or look like something else, valid with scs on or off. */
const atom = fc.constantFrom(
  'select',
  'set',
  'x',
  'begin',
  'end',
  'case',
  'atomic',
  '1',
  '1.5e3',
  '.5',
  '0x1F',
  '$1',
  '"a;b"',
  '"""q"""',
  "'a;b'",
  "'it''s;'",
  "E'\\';'",
  "e'\\\\'",
  '$$;$$',
  "$t$ $$ ; ' $t$",
  "U&'\\0041;'",
  'U&"a;"',
  "B'01'",
  "X'1F'",
  "N';'",
  '(1;2)',
  "( ';' (;) )",
  '[1]',
  '::',
  '+',
  '=',
  '-',
  '/',
  ',',
);
const innerSep = fc.constantFrom(' ', '\n', '\t', ' /* ; */ ', ' /* /* ; */ */ ', ' -- ;\n', '\n-- x\n');
const outerSep = fc.constantFrom(';', ' ; ', ';\n', '; /* c; */ ', ' ;; ', '\n-- c;\n;', ';\t;\n');

/** One statement's text: atoms joined by whitespace or comments, starting and ending with a token. */
const generatedPart = fc
  .array(fc.tuple(atom, innerSep), { minLength: 1, maxLength: 8 })
  .map((items) => items.map(([a, s], k) => (k === items.length - 1 ? a : a + s)).join(''));

/** Routine bodies whose ';' PostgreSQL reads itself. */
const routine = fc.constantFrom(
  'create function f() returns int begin atomic select 1; select 2; end',
  'CREATE OR REPLACE PROCEDURE p() BEGIN ATOMIC SELECT CASE WHEN 1 = 1 THEN 1 END; END',
  'create function g() returns int language sql as $$ select 1; $$',
);
const part = fc.oneof({ weight: 5, arbitrary: generatedPart }, { weight: 1, arbitrary: routine });

/** The statements clients send, handled by the layer or not, for the multi-statement properties. */
const CORPUS = [
  'SET client_min_messages TO warning',
  "set local statement_timeout = '5s'",
  'SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL REPEATABLE READ',
  "SELECT pg_catalog.set_config('search_path', '', false)",
  "SELECT set_config(name, 'x', false) FROM pg_settings WHERE name = 'y'",
  'RESET ALL',
  'reset statement_timeout',
  'SHOW TIME ZONE',
  'BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY',
  'START TRANSACTION',
  'COMMIT',
  'ROLLBACK AND CHAIN',
  'LOCK TABLE ONLY public.t IN ACCESS SHARE MODE NOWAIT',
  'PREPARE q(int, numeric(10,2)) AS SELECT $1, $2',
  "EXECUTE q(1, '2,3')",
  'DEALLOCATE PREPARE q',
  'DISCARD ALL',
  'select 1',
  "insert into t values ('set x = 1; begin')",
  'update t set x = 1 where y = $$;$$',
  '/* c */ select "set"',
  'create function f() returns int begin atomic select 1; end',
  "SET x = E'\\'' ",
  "SET x = U&'\\0041' UESCAPE '!'",
];

/** Work the layer must see (COMMIT and ROLLBACK alone pass through: see mightNeedCompat). */
function needsLayer(sql: string, scs: boolean): boolean {
  return splitStatements(sql, scs).some((p) => {
    const kind = classify(p.text, scs).kind;
    return kind !== 'other' && kind !== 'commit' && kind !== 'rollback';
  });
}

/** Split slices are the input's own text, in order, and only whitespace, comments and ';' lie between. */
function assertCovers(sql: string, parts: SplitStatement[], scs: boolean): void {
  let prev = 0;
  const gaps: string[] = [];
  for (const p of parts) {
    assert.equal(sql.slice(p.start, p.end), p.text);
    assert.ok(p.start >= prev && p.end > p.start, 'slices in order, not empty');
    gaps.push(sql.slice(prev, p.start));
    prev = p.end;
  }
  gaps.push(sql.slice(prev));
  for (const g of gaps) {
    for (const t of tokenize(g, scs))
      assert.ok(t.kind === 'op' && t.value === ';', `gap ${JSON.stringify(g)}`);
  }
}

/** Case changes of ASCII letters, chosen per character by the seed list. */
function recase(sql: string, flips: readonly boolean[]): string {
  let out = '';
  for (let i = 0; i < sql.length; i++) {
    const ch = sql[i]!;
    out += flips[i % Math.max(1, flips.length)] ? ch.toUpperCase() : ch.toLowerCase();
  }
  return out;
}

const multiStatement = fc
  .tuple(
    fc.array(fc.constantFrom(...CORPUS), { minLength: 1, maxLength: 5 }),
    fc.array(outerSep, { minLength: 5, maxLength: 5 }),
    fc.array(fc.boolean(), { minLength: 1, maxLength: 7 }),
    fc.constantFrom('', ' ', '-- lead\n', '/* lead */'),
  )
  .map(([stmts, seps, flips, lead]) => lead + recase(stmts.map((s, k) => s + seps[k]!).join(''), flips));

/** Characters that change how SQL is read. */
const sqlChar = fc.constantFrom(
  ...[...'\'"$;/*-\n\\()[]eEuUbBxXnN&_.:=, \t0123456789sSeEtT!+'],
  'set ',
  'begin atomic ',
  'create function ',
  'case ',
  'end',
  'set_config',
  'é',
  '😀',
);
const hostile = fc.array(sqlChar, { maxLength: 80 }).map((a) => a.join(''));

type Edit = { kind: 'insert' | 'remove' | 'duplicate'; at: number; text: string };
const edit: fc.Arbitrary<Edit> = fc.record({
  kind: fc.constantFrom('insert', 'remove', 'duplicate') as fc.Arbitrary<Edit['kind']>,
  at: fc.nat(),
  text: fc.array(sqlChar, { minLength: 1, maxLength: 3 }).map((a) => a.join('')),
});

function mutate(sql: string, edits: readonly Edit[]): string {
  let s = sql;
  for (const e of edits) {
    const at = s.length === 0 ? 0 : e.at % (s.length + 1);
    if (e.kind === 'insert') s = s.slice(0, at) + e.text + s.slice(at);
    else if (e.kind === 'remove') s = s.slice(0, at) + s.slice(at + e.text.length);
    else s = s.slice(0, at) + s.slice(at, at + e.text.length * 3) + s.slice(at);
  }
  return s;
}

describe('compat sql properties', () => {
  it('splitStatements(parts joined by ;) gives the parts back', () => {
    fc.assert(
      fc.property(
        fc.array(part, { minLength: 1, maxLength: 6 }),
        fc.array(outerSep, { minLength: 6, maxLength: 6 }),
        fc.boolean(),
        fc.constantFrom('', ' ', '\n-- c\n', '/* c */ '),
        (parts, seps, scs, lead) => {
          const sql = lead + parts.map((p, k) => p + seps[k]!).join('');
          const got = splitStatements(sql, scs);
          assert.deepEqual(
            got.map((p) => p.text),
            parts,
          );
          assertCovers(sql, got, scs);
        },
      ),
      runs(1500),
    );
  });

  it('mightNeedCompat is true wherever a statement needs the layer (multi-statement texts)', () => {
    fc.assert(
      fc.property(multiStatement, fc.boolean(), (sql, scs) => {
        if (needsLayer(sql, scs)) assert.equal(mightNeedCompat(sql), true, sql);
      }),
      runs(1500),
    );
  });

  it('fuzz: mutated client statements never throw, split covers the input, mightNeedCompat holds', () => {
    fc.assert(
      fc.property(multiStatement, fc.array(edit, { maxLength: 6 }), fc.boolean(), (base, edits, scs) => {
        const sql = mutate(base, edits);
        const parts = splitStatements(sql, scs);
        assertCovers(sql, parts, scs);
        for (const p of parts) classify(p.text, scs);
        if (needsLayer(sql, scs)) assert.equal(mightNeedCompat(sql), true, sql);
      }),
      runs(2000),
    );
  });

  it('hostile text: never throws, split covers the input, mightNeedCompat holds', () => {
    fc.assert(
      fc.property(
        fc.oneof(hostile, fc.string({ maxLength: 60 }), fc.string({ unit: 'binary', maxLength: 30 })),
        fc.boolean(),
        (sql, scs) => {
          const parts = splitStatements(sql, scs);
          assertCovers(sql, parts, scs);
          classify(sql, scs);
          if (needsLayer(sql, scs)) assert.equal(mightNeedCompat(sql), true, sql);
        },
      ),
      runs(3000),
    );
  });
});

describe('compat sql: large hostile input stays linear', () => {
  const MB = 1 << 20;
  const cases: [string, string][] = [
    ['nested comments', `${'/*'.repeat(MB / 4)}${'*/'.repeat(MB / 4)} set x = 1`],
    ['unterminated nested comments', `set x = 1; ${'/*'.repeat(MB / 2)}`],
    ['quotes', "'".repeat(MB)],
    ['backslashes in an E string', `E'${'\\'.repeat(MB)}`],
    ['dollar signs', '$'.repeat(MB)],
    ['dollar tags', '$a$'.repeat(MB / 3)],
    ['semicolons', ';'.repeat(MB)],
    ['parentheses', '('.repeat(MB)],
    ['statements', 'set x = 1;'.repeat(MB / 10)],
    ['words', 'begin atomic case '.repeat(MB / 18)],
    ['U& strings', "U&'x' ".repeat(MB / 6)],
  ];
  for (const [name, sql] of cases) {
    it(`${name} (1 MB): no throw, bounded time`, () => {
      const t0 = performance.now();
      for (const scs of [true, false]) {
        mightNeedCompat(sql);
        const parts = splitStatements(sql, scs);
        if (parts.length < 10) for (const p of parts) classify(p.text, scs);
      }
      // Generous for a shared 2-core machine; a quadratic path over 1 MB would take minutes.
      assert.ok(performance.now() - t0 < 5000, `${name} took ${performance.now() - t0} ms`);
    });
  }
});
