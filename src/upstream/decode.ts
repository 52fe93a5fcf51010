import type { BackendMessage } from 'pg-protocol/dist/messages.js';
import { Parser } from 'pg-protocol/dist/parser.js';
import type { TypedFrame } from '../protocol/frame-reader.js';

/**
 * Decodes one complete backend frame with pg-protocol's client-side parser (the half of the protocol
 * it is made for). Only used during upstream login, never on the relay path.
 *
 * pg-protocol writes into the Buffer it is given when a message spans chunks; it is handed a fresh
 * copy holding exactly one message, so nothing the caller still uses can be touched.
 */
export function decodeBackendFrame(frame: TypedFrame): BackendMessage {
  const raw = encodeFrame(frame);
  let decoded: BackendMessage | undefined;
  new Parser().parse(raw, (msg) => {
    decoded = msg;
  });
  if (!decoded) throw new Error(`undecodable backend message '${String.fromCharCode(frame.type)}'`);
  return decoded;
}

/** Re-frames a typed message for forwarding as it came (type byte + length + body). */
export function encodeFrame(frame: TypedFrame): Buffer {
  const raw = Buffer.allocUnsafe(5 + frame.body.length);
  raw[0] = frame.type;
  raw.writeInt32BE(frame.body.length + 4, 1);
  frame.body.copy(raw, 5);
  return raw;
}
