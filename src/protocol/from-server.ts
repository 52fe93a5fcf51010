import type { BackendMessage as DecodedMessage } from 'pg-protocol/dist/messages.js';
import { Parser } from 'pg-protocol/dist/parser.js';
import { ProxyError } from '../errors.js';
import { BackendMessage } from './constants.js';
import type { TypedFrame } from './frame-reader.js';

/**
 * Decodes one complete backend frame with pg-protocol's client-side parser (the half of the protocol
 * it is made for). Only used during upstream login, never on the relay path.
 *
 * pg-protocol writes into the Buffer it is given when a message spans chunks; it is handed a fresh
 * copy holding exactly one message, so nothing the caller still uses can be touched.
 */
export function decodeBackendFrame(frame: TypedFrame): DecodedMessage {
  // pg-protocol's ErrorResponse/NoticeResponse parser loops until it reads a NUL field type; past the
  // end of the body it reads '' forever, so an unterminated field list (e.g. `SERROR\0`) would spin
  // the event loop and freeze every session. Found by the property tests; refuse such bodies first.
  const { type } = frame;
  if (
    (type === BackendMessage.ErrorResponse || type === BackendMessage.NoticeResponse) &&
    !fieldsTerminated(frame.body)
  ) {
    throw new ProxyError('UPSTREAM_PROTOCOL', {
      detail: `malformed ${type === BackendMessage.ErrorResponse ? 'ErrorResponse' : 'NoticeResponse'} (fields not terminated)`,
    });
  }
  const raw = encodeFrame(frame);
  let decoded: DecodedMessage | undefined;
  new Parser().parse(raw, (msg) => {
    decoded = msg;
  });
  if (!decoded) throw new Error(`undecodable backend message '${String.fromCharCode(frame.type)}'`);
  return decoded;
}

/** True when the body is a list of (type byte, NUL-terminated string) fields ending with one NUL. */
function fieldsTerminated(body: Buffer): boolean {
  let pos = 0;
  while (pos < body.length) {
    if (body[pos] === 0) return pos === body.length - 1;
    const end = body.indexOf(0, pos + 1);
    if (end === -1) return false;
    pos = end + 1;
  }
  return false;
}

/** Re-frames a typed message for forwarding as it came (type byte + length + body). */
export function encodeFrame(frame: TypedFrame): Buffer {
  const raw = Buffer.allocUnsafe(5 + frame.body.length);
  raw[0] = frame.type;
  raw.writeInt32BE(frame.body.length + 4, 1);
  frame.body.copy(raw, 5);
  return raw;
}

/**
 * One field of an ErrorResponse or NoticeResponse body (`field` is its type byte, e.g. 'C' for the
 * SQLSTATE), or undefined when absent or the body is malformed. Reads only up to that field.
 */
export function errorField(body: Buffer, field: number): string | undefined {
  let pos = 0;
  while (pos < body.length && body[pos] !== 0) {
    const end = body.indexOf(0, pos + 1);
    if (end < 0) return undefined;
    if (body[pos] === field) return body.toString('utf8', pos + 1, end);
    pos = end + 1;
  }
  return undefined;
}
