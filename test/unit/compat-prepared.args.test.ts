import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { localArgValue } from '../../src/compat/prepared-args.js';

const TEXT = 25;
const INT2 = 21;
const INT4 = 23;
const FLOAT8 = 701;
const OID = 26;

const local = (source: string, oid = TEXT): string | null | undefined => localArgValue(source, oid)?.value;

describe('EXECUTE arguments decided locally', () => {
  it('takes NULL in any case as SQL NULL', () => {
    assert.deepEqual(localArgValue('NULL', TEXT), { value: null });
    assert.deepEqual(localArgValue(' null ', INT4), { value: null });
  });

  it("decodes plain string literals: '' is a quote, backslashes are plain characters", () => {
    assert.equal(local("'abc'"), 'abc');
    assert.equal(local("''"), '');
    assert.equal(local("''''"), "'");
    assert.equal(local("'it''s'"), "it's");
    assert.equal(local("'a\\nb\\'"), 'a\\nb\\');
    assert.equal(local("  'ünï ✓ 😀'\n"), 'ünï ✓ 😀');
    assert.equal(local("'1.6'", INT4), '1.6');
  });

  it('decodes dollar-quoted literals, tagged or not', () => {
    assert.equal(local("$$a'b\\c$$"), "a'b\\c");
    assert.equal(local('$$$$'), '');
    assert.equal(local('$fn$ $$ $fn$'), ' $$ ');
  });

  it('leaves to the server what is not exactly one plain literal', () => {
    for (const source of [
      "'a' || 'b'",
      "'a' 'b'",
      "'a'\n'b'",
      "'a'''||''''",
      "E'a\\nb'",
      "U&'d\\0061t'",
      "'1'::int",
      "'x",
      "'",
      '$a$x$a$ || $a$y$a$',
      '$$',
      '$1',
      'now()',
      '1.6',
      '1e3',
      '- 5',
      'nulls',
      '(NULL)',
    ]) {
      assert.equal(localArgValue(source, INT4), undefined, source);
    }
  });

  it('binds a bare integer only where the input function reads it as the coercion would', () => {
    assert.equal(local('42', INT4), '42');
    assert.equal(local('-2147483648', INT4), '-2147483648');
    assert.equal(local('007', INT4), '007');
    assert.equal(local('32767', INT2), '32767');
    assert.equal(local('5', FLOAT8), '5');
    assert.equal(local('123', OID), '123');
    // Out of range: the server's own error text differs between cast and input; leave it to the server.
    assert.equal(localArgValue('2147483648', INT4), undefined);
    assert.equal(localArgValue('32768', INT2), undefined);
    assert.equal(localArgValue('-1', OID), undefined);
    // '-0' is float -0 by input but integer 0 by coercion.
    assert.equal(localArgValue('-0', FLOAT8), undefined);
    // For text, 007 would become '7' by the int-to-text cast.
    assert.equal(localArgValue('007', TEXT), undefined);
    assert.equal(localArgValue('5', TEXT), undefined);
  });
});
