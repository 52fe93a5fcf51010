import { isMd5Secret } from './md5.js';
import { parseScramVerifier, SCRAM_MAX_ITERATIONS } from './scram.js';
import type { AuthSecret } from './types.js';

/**
 * Reads a PgBouncer-style auth_file (https://www.pgbouncer.org/config.html#authentication-file-format):
 * one `"user" "secret"` per line, both double-quoted, `""` inside quotes standing for one `"`.
 * Blank lines and lines starting with `;` or `#` are comments. Only whitespace may follow the secret.
 *
 * Secret kinds, decided by form:
 * - `SCRAM-SHA-256$...` must be a valid verifier (a typo must not silently become a plain password)
 *   with at most SCRAM_MAX_ITERATIONS iterations;
 * - `md5` + 32 hex digits is an md5 secret;
 * - anything else is a plain password.
 *
 * Errors name the line, never the secret.
 */

export class AuthFileError extends Error {
  readonly line: number;

  constructor(line: number, reason: string) {
    super(`auth file line ${line}: ${reason}`);
    this.name = 'AuthFileError';
    this.line = line;
  }
}

export function parseAuthFile(text: string): Map<string, AuthSecret> {
  const users = new Map<string, AuthSecret>();
  const firstLine = new Map<string, number>();
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const lineNo = i + 1;
    const line = lines[i]!.trim();
    if (line === '' || line.startsWith(';') || line.startsWith('#')) continue;
    const fields = parseLine(line);
    if (fields === null) throw new AuthFileError(lineNo, 'expected "user" "secret"');
    const [user, secret] = fields;
    if (user === '') throw new AuthFileError(lineNo, 'empty user name');
    const previous = firstLine.get(user);
    if (previous !== undefined) {
      throw new AuthFileError(lineNo, `duplicate user "${user}" (first defined on line ${previous})`);
    }
    users.set(user, classify(secret, lineNo));
    firstLine.set(user, lineNo);
  }
  return users;
}

function classify(secret: string, lineNo: number): AuthSecret {
  if (secret.startsWith('SCRAM-SHA-256$')) {
    const verifier = parseScramVerifier(secret);
    if (verifier === null) throw new AuthFileError(lineNo, 'invalid SCRAM-SHA-256 verifier');
    if (verifier.iterations > SCRAM_MAX_ITERATIONS) {
      throw new AuthFileError(
        lineNo,
        `SCRAM-SHA-256 verifier with ${verifier.iterations} iterations; at most ${SCRAM_MAX_ITERATIONS} are accepted (each login with --auth-method password costs one derivation at that count): hash the password again, e.g. with dsql-proxy hash-password`,
      );
    }
    return { kind: 'scram', verifier };
  }
  if (isMd5Secret(secret)) return { kind: 'md5', hash: secret };
  return { kind: 'plain', password: secret };
}

/** Parses `"a" "b"` (whitespace between, nothing but whitespace after); null if malformed. */
function parseLine(line: string): [string, string] | null {
  const first = readQuoted(line, 0);
  if (first === null) return null;
  let pos = first.next;
  if (pos >= line.length || !/\s/.test(line[pos]!)) return null;
  while (pos < line.length && /\s/.test(line[pos]!)) pos++;
  const second = readQuoted(line, pos);
  if (second === null) return null;
  if (line.slice(second.next).trim() !== '') return null;
  return [first.value, second.value];
}

function readQuoted(line: string, start: number): { value: string; next: number } | null {
  if (line[start] !== '"') return null;
  let value = '';
  let pos = start + 1;
  while (pos < line.length) {
    const ch = line[pos]!;
    if (ch === '"') {
      if (line[pos + 1] === '"') {
        value += '"';
        pos += 2;
        continue;
      }
      return { value, next: pos + 1 };
    }
    value += ch;
    pos++;
  }
  return null;
}
