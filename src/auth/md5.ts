import { createHash, timingSafeEqual } from 'node:crypto';

/**
 * PostgreSQL's md5 password scheme (https://www.postgresql.org/docs/current/auth-password.html):
 * the stored secret is `md5` + hex(md5(password ‖ user)), and the client answers an
 * AuthenticationMD5Password(salt) with `md5` + hex(md5(hex(md5(password ‖ user)) ‖ salt)).
 * The user name is the salt of the stored form, so an md5 secret is tied to its user.
 */

const MD5_SECRET_RE = /^md5[0-9a-f]{32}$/;

/** True for a string of the stored form `md5` + 32 lowercase hex digits. */
export function isMd5Secret(s: string): boolean {
  return MD5_SECRET_RE.test(s);
}

/** The stored form of a password for a user: `md5` + hex(md5(password ‖ user)). */
export function md5Secret(password: string, user: string): string {
  return `md5${md5Hex(Buffer.from(password + user, 'utf8'))}`;
}

/** What a client answers to AuthenticationMD5Password(salt), given the stored secret. */
export function md5Response(secret: string, salt: Buffer): string {
  return `md5${md5Hex(Buffer.concat([Buffer.from(secret.slice(3), 'latin1'), salt]))}`;
}

/** Checks a client's md5 response against the stored secret and the salt we sent (constant time). */
export function verifyMd5Response(secret: string, salt: Buffer, response: string): boolean {
  return constantTimeEqual(md5Response(secret, salt), response);
}

/** Checks a cleartext password (the `password` method) against an md5 secret (constant time). */
export function verifyMd5Password(password: string, user: string, secret: string): boolean {
  return constantTimeEqual(md5Secret(password, user), secret);
}

/**
 * Compares two strings without a data-dependent early exit. Both sides are hashed first so that
 * inputs of different lengths (which timingSafeEqual refuses) do not leak the expected length.
 */
export function constantTimeEqual(a: string, b: string): boolean {
  const ha = createHash('sha256').update(a, 'utf8').digest();
  const hb = createHash('sha256').update(b, 'utf8').digest();
  return timingSafeEqual(ha, hb);
}

function md5Hex(data: Buffer): string {
  return createHash('md5').update(data).digest('hex');
}
