import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AuthFileError, parseAuthFile } from '../../src/auth/auth-file.js';
import { createScramVerifier, formatScramVerifier, SCRAM_MAX_ITERATIONS } from '../../src/auth/scram.js';

const SCRAM = createScramVerifier('pw', { salt: Buffer.alloc(16, 2) });
const MD5 = 'md54d45974e13472b5a0be3533de4666414';

function fails(text: string, line: number, pattern: RegExp): void {
  assert.throws(
    () => parseAuthFile(text),
    (err: unknown) => err instanceof AuthFileError && err.line === line && pattern.test(err.message),
  );
}

describe('parseAuthFile', () => {
  it('reads the three secret kinds, comments, blank lines and CRLF', () => {
    const text = [
      '; PgBouncer-style comment',
      '# another comment',
      '',
      `"alice" "${SCRAM}"`,
      `  "bob"\t"${MD5}"   `,
      '"carol" "plain text"\r',
      '"say ""hi""" "pa""ss"',
      '"empty" ""',
    ].join('\n');
    const users = parseAuthFile(text);
    assert.deepEqual([...users.keys()], ['alice', 'bob', 'carol', 'say "hi"', 'empty']);
    const alice = users.get('alice');
    assert.equal(alice?.kind, 'scram');
    if (alice?.kind === 'scram') assert.equal(alice.verifier.iterations, 4096);
    assert.deepEqual(users.get('bob'), { kind: 'md5', hash: MD5 });
    assert.deepEqual(users.get('carol'), { kind: 'plain', password: 'plain text' });
    assert.deepEqual(users.get('say "hi"'), { kind: 'plain', password: 'pa"ss' });
    assert.deepEqual(users.get('empty'), { kind: 'plain', password: '' });
  });

  it('treats md5-looking strings that are not md5 + 32 hex as plain', () => {
    const users = parseAuthFile(`"u" "md5notreallyahash"\n"v" "${MD5.toUpperCase()}"`);
    assert.deepEqual(users.get('u'), { kind: 'plain', password: 'md5notreallyahash' });
    assert.equal(users.get('v')?.kind, 'plain');
  });

  it('returns an empty map for an empty file', () => {
    assert.equal(parseAuthFile('').size, 0);
    assert.equal(parseAuthFile('\n; nothing\n\n').size, 0);
  });

  it('reports malformed lines by number', () => {
    const bad = [
      'alice secret',
      '"alice" secret',
      '"alice"',
      '"alice""secret"',
      '"alice" "secret" trailing',
      '"alice" "secret" "third"',
      '"alice "secret"',
      '"alice" "secret',
    ];
    for (const line of bad)
      fails(`; header\n"ok" "x"\n${line}`, 3, /^auth file line 3: expected "user" "secret"$/);
  });

  it('rejects an empty user and duplicate users, naming the lines', () => {
    fails('"" "x"', 1, /empty user name/);
    fails('"a" "x"\n\n"a" "y"', 3, /duplicate user "a" \(first defined on line 1\)/);
  });

  it('rejects a broken SCRAM verifier instead of treating it as a password', () => {
    fails(`"a" "${SCRAM.slice(0, -2)}"`, 1, /invalid SCRAM-SHA-256 verifier/);
  });

  it('never puts the secret into an error message', () => {
    const secrets = ['hunter2-secret', `${SCRAM.slice(0, -2)}`];
    const texts = [
      `"a" "${secrets[0]}" extra`,
      `"a" "${secrets[1]}"`,
      `"a" "x"\n"a" "${secrets[0]}"`,
      `"a" "${secrets[0]}`,
    ];
    for (const text of texts) {
      try {
        parseAuthFile(text);
        assert.fail('expected an error');
      } catch (err) {
        assert.ok(err instanceof AuthFileError);
        for (const s of secrets) assert.ok(!err.message.includes(s), err.message);
        assert.ok(!err.message.includes('hunter2'));
      }
    }
  });

  it(`bounds a verifier's iterations at ${SCRAM_MAX_ITERATIONS}, naming the line`, () => {
    const verifier = (iterations: number) =>
      formatScramVerifier({
        iterations,
        salt: Buffer.alloc(16, 1),
        storedKey: Buffer.alloc(32, 2),
        serverKey: Buffer.alloc(32, 3),
      });
    const ok = parseAuthFile(`"a" "${verifier(SCRAM_MAX_ITERATIONS)}"`).get('a');
    assert.equal(ok?.kind === 'scram' && ok.verifier.iterations, SCRAM_MAX_ITERATIONS);
    for (const n of [SCRAM_MAX_ITERATIONS + 1, 0x7fffffff]) {
      fails(
        `# users\n"a" "${MD5}"\n"b" "${verifier(n)}"`,
        3,
        new RegExp(`${n} iterations; at most ${SCRAM_MAX_ITERATIONS}`),
      );
    }
  });
});
