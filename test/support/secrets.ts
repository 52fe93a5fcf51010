/**
 * The secrets scan: no log line may carry an AWS secret, a session token, an IAM token or its
 * signature, a password, or a SCRAM client proof, at any log level.
 */
import assert from 'node:assert/strict';
import type { SigningCredentials } from '../../src/local-endpoint/sigv4-verify.js';

export interface KnownSecrets {
  credentials?: SigningCredentials;
  /** IAM tokens the endpoint saw; their signatures are checked separately. */
  tokens?: string[];
  passwords?: string[];
}

/** Every password the tests of this process use (registerPasswords): each scan looks for them all. */
const registered = new Set<string>();

/**
 * Registers passwords (right and wrong ones) that a test sends or writes to an auth file: from then
 * on every scan, including the one each proxy runs at stop(), fails on a line that carries one.
 * A password must be long enough to be searched for without false alarms.
 */
export function registerPasswords(...passwords: string[]): void {
  for (const pw of passwords) {
    if (pw.length < 6)
      throw new Error(`password "${pw}" is too short for the secrets scan (at least 6 characters)`);
    registered.add(pw);
  }
}

/** Substrings that must not appear in any line (each once: a cached token is seen at many logins). */
export function secretNeedles(secrets: KnownSecrets): string[] {
  const needles = new Set<string>();
  const add = (s: string): void => {
    needles.add(s);
  };
  if (secrets.credentials) {
    add(secrets.credentials.secretAccessKey);
    if (secrets.credentials.sessionToken) add(secrets.credentials.sessionToken);
  }
  for (const token of new Set(secrets.tokens ?? [])) {
    add(token);
    const sig = /X-Amz-Signature=([0-9a-f]{64})/.exec(token)?.[1];
    if (sig) add(sig);
  }
  for (const pw of [...(secrets.passwords ?? []), ...registered]) if (pw.length >= 4) add(pw);
  return [...needles];
}

export function assertNoSecrets(lines: string[], secrets: KnownSecrets): void {
  assert.ok(lines.length > 0, 'there must be log lines to scan');
  const needles = secretNeedles(secrets);
  for (const line of lines) {
    for (const needle of needles) {
      assert.ok(!line.includes(needle), `a secret reached the log: ${line.slice(0, 200)}`);
    }
    // SCRAM client-final-message (c=biws,r=...,p=<proof>) and any presigned query string.
    assert.doesNotMatch(line, /c=(?:biws|eSws),r=/, `a SCRAM message reached the log: ${line.slice(0, 200)}`);
    assert.doesNotMatch(line, /X-Amz-Signature=/i, `a token reached the log: ${line.slice(0, 200)}`);
  }
}
