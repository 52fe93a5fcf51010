/**
 * Properties of the auth-file parser: any text gives a user map or an AuthFileError naming a line of
 * the file (never another error, never the secret), and lines formatted the PgBouncer way parse back
 * to the same users and secrets.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { AuthFileError, parseAuthFile } from '../../src/auth/auth-file.js';
import { md5Secret } from '../../src/auth/md5.js';
import { createScramVerifier, parseScramVerifier } from '../../src/auth/scram.js';
import { mutateAll, mutation, onlyThrows, runs } from './property-helpers.js';

/** `"user" "secret"` with `"` doubled inside the quotes, as the format defines. */
function formatLine(user: string, secret: string): string {
  const q = (s: string): string => `"${s.replaceAll('"', '""')}"`;
  return `${q(user)} ${q(secret)}`;
}

/** Field text that fits on one line (the file is split at \n). */
const field = (minLength: number) =>
  fc.string({ unit: 'binary', minLength, maxLength: 16 }).filter((s) => !s.includes('\n'));

/** Secrets of every kind the file may hold. */
const secret = fc.oneof(
  field(0).filter((s) => !s.startsWith('SCRAM-SHA-256$')),
  fc.constantFrom('"', '""', ' ', 'md5', 'md5 ', '#x', ';x'),
  fc.string({ minLength: 1, maxLength: 8 }).map((pw) => md5Secret(pw, 'u')),
  fc.constant(createScramVerifier('pw', { iterations: 1, salt: Buffer.from('salt') })),
);

function checkError(err: AuthFileError, lineCount: number): void {
  assert.ok(err.line >= 1 && err.line <= lineCount, `line ${err.line} of ${lineCount}`);
}

describe('parseAuthFile properties', () => {
  it('any text: a user map or only AuthFileError with a line number inside the file', () => {
    const lineish = fc.oneof(
      fc.string({ maxLength: 30 }),
      fc.tuple(field(0), field(0)).map(([u, s]) => formatLine(u, s)),
      fc.constantFrom('', '   ', '# c', '; c', '"a"', '"a""', '"a" "b" c', '"a""b"', '"a"\t"b"  ', '\r', '"'),
    );
    fc.assert(
      fc.property(
        fc.array(lineish, { maxLength: 8 }),
        fc.constantFrom('\n', '\r\n'),
        fc.array(mutation, { maxLength: 2 }),
        (lines, eol, ms) => {
          const text = mutateAll(Buffer.from(lines.join(eol)), ms).toString('utf8');
          const lineCount = text.split(/\r?\n/).length;
          const users = onlyThrows(
            () => parseAuthFile(text),
            AuthFileError,
            (e) => checkError(e, lineCount),
          );
          if (users === undefined) return;
          for (const [user, s] of users) {
            assert.notEqual(user, '');
            if (s.kind === 'scram') assert.ok(s.verifier.storedKey.length === 32);
          }
        },
      ),
      runs(1500),
    );
  });

  it('formatted lines parse back to the same users and secrets, with comments and blank lines around', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.tuple(field(1), secret), { selector: ([u]) => u, maxLength: 8 }),
        fc.array(fc.constantFrom('', '# comment "x" "y"', '; other', '   '), { maxLength: 4 }),
        fc.constantFrom('\n', '\r\n'),
        fc.constantFrom(' ', '\t', '  \t'),
        (entries, noise, eol, gap) => {
          const lines = entries.map(([u, s]) => formatLine(u, s).replace('" "', `"${gap}"`));
          const text = [...noise, ...lines, ...noise].join(eol);
          const users = parseAuthFile(text);
          assert.equal(users.size, entries.length);
          for (const [user, s] of entries) {
            const got = users.get(user);
            assert.ok(got, user);
            if (s.startsWith('SCRAM-SHA-256$'))
              assert.deepEqual(got, { kind: 'scram', verifier: parseScramVerifier(s) });
            else if (/^md5[0-9a-f]{32}$/.test(s)) assert.deepEqual(got, { kind: 'md5', hash: s });
            else assert.deepEqual(got, { kind: 'plain', password: s });
          }
        },
      ),
      runs(800),
    );
  });

  it('a duplicate user is an AuthFileError on the second line, never a silent overwrite', () => {
    fc.assert(
      fc.property(field(1), secret, secret, fc.nat({ max: 3 }), (user, a, b, blanks) => {
        const text = [formatLine(user, a), ...Array(blanks).fill(''), formatLine(user, b)].join('\n');
        assert.throws(
          () => parseAuthFile(text),
          (e: unknown) => e instanceof AuthFileError && e.line === blanks + 2,
        );
      }),
      runs(200),
    );
  });

  it('error messages never contain the secret', () => {
    fc.assert(
      fc.property(field(1), fc.stringMatching(/^[A-Za-z0-9]{12,20}$/), (user, pw) => {
        // A broken verifier and a line with trailing junk, both holding a recognisable secret.
        for (const text of [formatLine(user, `SCRAM-SHA-256$${pw}`), `${formatLine(user, pw)} junk`]) {
          assert.throws(
            () => parseAuthFile(text),
            (e: unknown) => e instanceof AuthFileError && !e.message.includes(pw),
          );
        }
      }),
      runs(200),
    );
  });
});
