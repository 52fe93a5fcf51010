import { readFileSync } from 'node:fs';
import { parseAuthFile } from '../auth/auth-file.js';
import type { AuthUsers } from '../auth/types.js';
import { ConfigError } from './config-error.js';

function reason(err: unknown): string {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ENOENT') return 'no such file';
  if (code === 'EACCES' || code === 'EPERM') return 'permission denied';
  if (code === 'EISDIR') return 'is a directory, not a file';
  return err instanceof Error ? err.message : String(err);
}

/** Reads a UTF-8 file; on failure throws ConfigError saying what the file is for and which option named it. */
export function readText(path: string, what: string, label: string, key: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read ${what} ${path} (${label}): ${reason(err)}`, {
      key,
      file: path,
      cause: err,
    });
  }
}

/** Reads a CA bundle and checks that it holds at least one PEM certificate. */
export function readCaPem(path: string, label: string): string {
  const pem = readText(path, 'CA file', label, 'ca-file');
  if (!pem.includes('-----BEGIN CERTIFICATE-----')) {
    throw new ConfigError(
      `CA file ${path} (${label}) contains no PEM certificate (expected "-----BEGIN CERTIFICATE-----")`,
      { key: 'ca-file', file: path },
    );
  }
  return pem;
}

/** Reads and parses an auth file; a malformed line becomes a ConfigError naming the file and the line. */
export function readAuthUsers(path: string, label: string): AuthUsers {
  const text = readText(path, 'auth file', label, 'auth-file');
  try {
    return parseAuthFile(text);
  } catch (err) {
    const line = (err as { line?: unknown }).line;
    const msg = err instanceof Error ? err.message : String(err);
    if (typeof line !== 'number') {
      throw new ConfigError(`invalid auth file ${path} (${label}): ${msg}`, {
        key: 'auth-file',
        file: path,
        cause: err,
      });
    }
    const reasonText = msg.replace(/^auth file line \d+: /, '');
    throw new ConfigError(`${path}:${line}: ${reasonText} (auth file given by ${label})`, {
      key: 'auth-file',
      file: path,
      line,
      cause: err,
    });
  }
}
