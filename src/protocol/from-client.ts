import { ProxyError } from '../errors.js';
import { CANCEL_REQUEST_CODE, GSSENC_REQUEST_CODE, SSL_REQUEST_CODE } from './constants.js';

/**
 * Decoders for the frontend messages a proxy must read before authentication completes.
 * Formats: https://www.postgresql.org/docs/current/protocol-message-formats.html.
 * Every function takes the body (after the length, and after the type byte for typed messages)
 * and throws only ProxyError('PROTOCOL_VIOLATION') on malformed input.
 */

export type StartupPacket =
  | { kind: 'ssl' }
  | { kind: 'gssenc' }
  | { kind: 'cancel'; processId: number; secretKey: Buffer }
  | {
      kind: 'startup';
      major: number;
      minor: number;
      params: Map<string, string>;
      /** `_pq_.*` protocol options we do not implement; to be listed in NegotiateProtocolVersion. */
      unrecognizedOptions: string[];
    }
  | { kind: 'unknown'; code: number };

export interface SASLInitialResponse {
  mechanism: string;
  /** null when the client sent length -1 ("no initial response"). */
  data: Buffer | null;
}

/** Protocol 3.0 cancel keys are 4 bytes; protocol 3.2 allows 4 to 256 bytes. */
const MIN_CANCEL_KEY = 4;
const MAX_CANCEL_KEY = 256;

/**
 * Decodes the body of an untyped startup-phase packet (the bytes after its int32 length).
 * Whether `user` is present and whether the version is acceptable is the caller's decision.
 */
export function decodeStartupPacket(body: Buffer): StartupPacket {
  if (body.length < 4) violation('startup packet too short');
  const code = body.readInt32BE(0);
  switch (code) {
    case SSL_REQUEST_CODE:
      if (body.length !== 4) violation('invalid SSLRequest length');
      return { kind: 'ssl' };
    case GSSENC_REQUEST_CODE:
      if (body.length !== 4) violation('invalid GSSENCRequest length');
      return { kind: 'gssenc' };
    case CANCEL_REQUEST_CODE: {
      const keyLength = body.length - 8;
      if (keyLength < MIN_CANCEL_KEY || keyLength > MAX_CANCEL_KEY) violation('invalid CancelRequest length');
      return {
        kind: 'cancel',
        processId: body.readInt32BE(4),
        secretKey: Buffer.from(body.subarray(8)),
      };
    }
  }
  const major = code >>> 16;
  const minor = code & 0xffff;
  if (major !== 3) return { kind: 'unknown', code };
  return { kind: 'startup', major, minor, ...decodeStartupParams(body, 4) };
}

/**
 * StartupMessage parameters: NUL-terminated name/value pairs, then one more NUL
 * (PostgreSQL's ProcessStartupPacket: "expected terminator as last byte").
 * Names starting with `_pq_.` are protocol extension options, not run-time parameters
 * (protocol docs, "Protocol versions"): they are collected apart so the caller can decline them.
 */
function decodeStartupParams(
  body: Buffer,
  start: number,
): { params: Map<string, string>; unrecognizedOptions: string[] } {
  const params = new Map<string, string>();
  const unrecognizedOptions: string[] = [];
  const seen = new Set<string>();
  let offset = start;
  for (;;) {
    if (offset >= body.length) violation('missing terminator in startup packet');
    const name = readCString(body, offset, 'startup parameter name');
    offset = name.next;
    if (name.value === '') break;
    const value = readCString(body, offset, 'startup parameter value');
    offset = value.next;
    if (seen.has(name.value)) violation(`duplicate startup parameter "${name.value}"`);
    seen.add(name.value);
    if (name.value.startsWith('_pq_.')) unrecognizedOptions.push(name.value);
    else params.set(name.value, value.value);
  }
  if (offset !== body.length) violation('unexpected data after startup packet terminator');
  return { params, unrecognizedOptions };
}

/** PasswordMessage ('p'): exactly one NUL-terminated string. */
export function decodePasswordMessage(body: Buffer): string {
  const { value, next } = readCString(body, 0, 'password');
  if (next !== body.length) violation('unexpected data after password');
  return value;
}

/** SASLInitialResponse ('p'): mechanism name, int32 length (-1 = none), then that many bytes. */
export function decodeSASLInitialResponse(body: Buffer): SASLInitialResponse {
  const { value: mechanism, next } = readCString(body, 0, 'SASL mechanism');
  if (body.length - next < 4) violation('SASLInitialResponse too short');
  const length = body.readInt32BE(next);
  const dataStart = next + 4;
  if (length === -1) {
    if (dataStart !== body.length) violation('unexpected data after SASLInitialResponse');
    return { mechanism, data: null };
  }
  if (length < 0 || dataStart + length !== body.length) violation('invalid SASLInitialResponse length');
  return { mechanism, data: Buffer.from(body.subarray(dataStart)) };
}

/** SASLResponse ('p'): the whole body is mechanism-specific data. */
export function decodeSASLResponse(body: Buffer): Buffer {
  return Buffer.from(body);
}

function readCString(buf: Buffer, offset: number, what: string): { value: string; next: number } {
  const end = buf.indexOf(0, offset);
  if (end === -1) violation(`unterminated ${what}`);
  return { value: buf.toString('utf8', offset, end), next: end + 1 };
}

function violation(message: string): never {
  throw new ProxyError('PROTOCOL_VIOLATION', { message: `invalid frontend message: ${message}` });
}
