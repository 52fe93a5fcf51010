/**
 * The client half of SCRAM-SHA-256 (RFC 5802 §3), written for the tests and the fuzzer from the RFC,
 * independently of src/auth/scram.ts, so the server is checked against a second implementation.
 */
import { createHash, createHmac, pbkdf2Sync } from 'node:crypto';

export interface ScramClientFinal {
  /** client-final-message, `c=...,r=...,p=...`. */
  message: string;
  /** The `v=` value a genuine server must answer with. */
  expectedServerSignature: string;
}

function hmac(key: Buffer, data: string): Buffer {
  return createHmac('sha256', key).update(data, 'utf8').digest();
}

/** client-first-message: gs2 header + `n=<user>,r=<nonce>`. */
export function clientFirstMessage(nonce: string, gs2Header = 'n,,', user = ''): string {
  return `${gs2Header}n=${user},r=${nonce}`;
}

/** Salted passwords keyed by password, salt and iterations: PBKDF2 is the slow part of a login. */
const saltedCache = new Map<string, Buffer>();

/**
 * Builds client-final-message from server-first-message. `password` is used as given (ASCII in the
 * callers, so SASLprep is the identity).
 */
export function clientFinalMessage(
  password: string,
  clientFirst: string,
  serverFirst: string,
): ScramClientFinal {
  const attrs = new Map(serverFirst.split(',').map((a) => [a.slice(0, 1), a.slice(2)] as const));
  const nonce = attrs.get('r') ?? '';
  const salt = attrs.get('s') ?? '';
  const iterations = Number(attrs.get('i'));
  const key = `${password}\0${salt}\0${iterations}`;
  let salted = saltedCache.get(key);
  if (salted === undefined) {
    salted = pbkdf2Sync(password, Buffer.from(salt, 'base64'), iterations, 32, 'sha256');
    saltedCache.set(key, salted);
  }
  const gs2Header = clientFirst.slice(0, clientFirst.indexOf(',', clientFirst.indexOf(',') + 1) + 1);
  const clientFirstBare = clientFirst.slice(gs2Header.length);
  const withoutProof = `c=${Buffer.from(gs2Header, 'latin1').toString('base64')},r=${nonce}`;
  const authMessage = `${clientFirstBare},${serverFirst},${withoutProof}`;
  const clientKey = hmac(salted, 'Client Key');
  const storedKey = createHash('sha256').update(clientKey).digest();
  const signature = hmac(storedKey, authMessage);
  const proof = Buffer.alloc(32);
  for (let i = 0; i < 32; i++) proof[i] = clientKey[i]! ^ signature[i]!;
  const serverSignature = hmac(hmac(salted, 'Server Key'), authMessage);
  return {
    message: `${withoutProof},p=${proof.toString('base64')}`,
    expectedServerSignature: serverSignature.toString('base64'),
  };
}
