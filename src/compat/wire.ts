/**
 * The messages the compatibility layer writes: backend messages for answers it gives the client itself,
 * frontend messages for what it sends DSQL, and reading the few fields it needs from DSQL's answers.
 * Formats: https://www.postgresql.org/docs/current/protocol-message-formats.html
 */
import type { ProxyError } from '../errors.js';
import { BackendMessage, ErrorField } from '../protocol/constants.js';
import { encodeFrame, errorField } from '../protocol/from-server.js';
import { cstring, int16, int32, typedMessage } from '../protocol/message-writer.js';
import { commandComplete, errorFromProxyError, noticeResponse } from '../protocol/to-client.js';
import type { Frame } from './exchange.js';

/** The OID of type text, the type of every value the proxy answers with (SHOW, set_config). */
export const TEXT_OID = 25;

const EMPTY = Buffer.alloc(0);

export { commandComplete };

/** RowDescription of text columns, as SHOW and set_config answer. */
export function textRowDescription(columns: readonly string[]): Buffer {
  const parts: Buffer[] = [int16(columns.length)];
  for (const name of columns) {
    const meta = Buffer.alloc(18);
    // table OID 0, column 0, type OID, typlen -1, typmod -1, format 0 (text)
    meta.writeInt32BE(0, 0);
    meta.writeInt16BE(0, 4);
    meta.writeInt32BE(TEXT_OID, 6);
    meta.writeInt16BE(-1, 10);
    meta.writeInt32BE(-1, 12);
    meta.writeInt16BE(0, 16);
    parts.push(cstring(name), meta);
  }
  return typedMessage(BackendMessage.RowDescription, ...parts);
}

export function dataRow(values: readonly (string | null)[]): Buffer {
  const parts: Buffer[] = [int16(values.length)];
  for (const v of values) {
    if (v === null) {
      parts.push(int32(-1));
      continue;
    }
    const bytes = Buffer.from(v, 'utf8');
    parts.push(int32(bytes.length), bytes);
  }
  return typedMessage(BackendMessage.DataRow, ...parts);
}

export const PARSE_COMPLETE = typedMessage(BackendMessage.ParseComplete, EMPTY);
export const BIND_COMPLETE = typedMessage(BackendMessage.BindComplete, EMPTY);
export const CLOSE_COMPLETE = typedMessage(BackendMessage.CloseComplete, EMPTY);
export const NO_DATA = typedMessage(BackendMessage.NoData, EMPTY);

/** ParameterDescription with no parameters: the statements the proxy answers take none. */
export const NO_PARAMETERS = typedMessage(BackendMessage.ParameterDescription, int16(0));

export function errorMessage(err: ProxyError): Buffer {
  return errorFromProxyError(err);
}

export function warningMessage(sqlstate: string, message: string, hint?: string): Buffer {
  return noticeResponse({ severity: 'WARNING', sqlstate, message, hint });
}

// --- reading DSQL's answers ---

export function sqlstateOf(frame: Frame): string | undefined {
  return errorField(frame.body, ErrorField.Code);
}

/** A frame as it travels: type, length, body. */
export const encode = encodeFrame;

/** The NUL-terminated string at `pos` in `body` and the position after it, or undefined. */
export function cstringAt(body: Buffer, pos: number): { value: string; next: number } | undefined {
  const end = body.indexOf(0, pos);
  if (end < 0) return undefined;
  return { value: body.toString('utf8', pos, end), next: end + 1 };
}
