import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { saslPrep } from '../../src/auth/saslprep.js';

describe('SASLprep (RFC 4013 §3 examples, PostgreSQL fallbacks)', () => {
  it('maps, normalises, and falls back to raw bytes', () => {
    assert.equal(saslPrep('I\u00ADX').toString(), 'IX'); // soft hyphen mapped to nothing
    assert.equal(saslPrep('user').toString(), 'user');
    assert.equal(saslPrep('USER').toString(), 'USER');
    assert.equal(saslPrep('\u00AA').toString(), 'a'); // NFKC
    assert.equal(saslPrep('\u2168').toString(), 'IX'); // NFKC
    assert.equal(saslPrep('a\u00A0b\u3000c').toString(), 'a b c'); // C.1.2 -> SPACE
    // Prohibited output: PostgreSQL uses the raw bytes instead of failing.
    assert.deepEqual(saslPrep('\u00AA\u0007'), Buffer.from('\u00AA\u0007', 'utf8'));
    assert.deepEqual(saslPrep('\u00AA\uE000'), Buffer.from('\u00AA\uE000', 'utf8'));
    // Not UTF-8: raw bytes.
    assert.deepEqual(saslPrep(Buffer.from([0xc3, 0x28, 0xaa])), Buffer.from([0xc3, 0x28, 0xaa]));
    // Pure ASCII is used as is, control characters included.
    assert.deepEqual(saslPrep('a\u0007'), Buffer.from('a\u0007'));
  });
});
