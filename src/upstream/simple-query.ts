/**
 * One simple-protocol query on an already logged-in upstream connection. Used by `dsql-proxy check`,
 * and by the proxy itself only while a session is idle and its client held: reading and restoring
 * session state when a session moves to a fresh connection, and resetting a pooled connection.
 * Never on the relay path.
 */
import type { Duplex } from 'node:stream';
import type { DatabaseError } from 'pg-protocol';
import type { DataRowMessage, RowDescriptionMessage } from 'pg-protocol/dist/messages.js';
import { ProxyError } from '../errors.js';
import { socketDeadline } from '../io/deadline.js';
import { FrameStream } from '../io/frame-stream.js';
import { BackendMessage } from '../protocol/constants.js';
import { decodeBackendFrame } from '../protocol/from-server.js';
import { frontendQuery } from '../protocol/to-server.js';

/** A row or an error for `SELECT 1` is tiny; bound what the server may make us buffer. */
const MAX_MESSAGE = 1024 * 1024;

export interface SimpleQueryResult {
  /** Column names from RowDescription (empty when the statement returns no rows). */
  columns: string[];
  /** Rows in text format; SQL NULL is null. */
  rows: Array<Array<string | null>>;
  /** The CommandComplete tag, e.g. `SELECT 1`. */
  command: string;
}

/**
 * Sends `sql` as a simple Query and reads the answer up to ReadyForQuery. `sql` may also be a Query
 * message made once with frontendQuery(), for statements sent over and over (a pooled connection's
 * reset). Resolves with the rows, or
 * rejects with a ProxyError: the server's own SQLSTATE, message, detail and hint for an ErrorResponse
 * (read through to ReadyForQuery, so the connection stays usable), UPSTREAM_CLOSED when the server goes
 * away, UPSTREAM_TIMEOUT after `timeoutMs`.
 *
 * Only after such a server ErrorResponse (code UPSTREAM_REJECTED) is the connection still usable. Any
 * other failure (a message over MAX_MESSAGE, an unexpected message, a timeout) leaves the rest of the
 * answer unread, so the socket is destroyed before the promise rejects: a caller can never hand a
 * connection that is stopped in the middle of an answer back to a client, who would receive its tail.
 *
 * `leftover` is whatever the login read past its last frame (normally nothing); it is read first.
 */
export async function simpleQuery(
  socket: Duplex,
  sql: string | Buffer,
  timeoutMs: number,
  leftover: Buffer = Buffer.alloc(0),
): Promise<SimpleQueryResult> {
  if (leftover.length > 0) socket.unshift(leftover);
  const frames = new FrameStream(
    socket,
    () =>
      new ProxyError('UPSTREAM_CLOSED', {
        message: 'the DSQL endpoint closed the connection before answering the query',
      }),
  );
  const deadline = socketDeadline(
    socket,
    timeoutMs,
    () => new ProxyError('UPSTREAM_TIMEOUT', { message: `no answer to the query within ${timeoutMs} ms` }),
  );

  const result: SimpleQueryResult = { columns: [], rows: [], command: '' };
  let serverError: ProxyError | undefined;
  /** Set once the answer was read through its ReadyForQuery: the stream is between two answers. */
  let atRest = false;
  try {
    socket.write(typeof sql === 'string' ? frontendQuery(sql) : sql);
    for (;;) {
      let frame: Awaited<ReturnType<FrameStream['nextTyped']>>;
      try {
        frame = await frames.nextTyped(MAX_MESSAGE);
      } catch (err) {
        // A FATAL ErrorResponse is followed by the server closing: that error is the reason.
        throw deadline.expired ?? serverError ?? err;
      }
      switch (frame.type) {
        case BackendMessage.RowDescription:
          result.columns = (decodeBackendFrame(frame) as RowDescriptionMessage).fields.map((f) => f.name);
          break;
        case BackendMessage.DataRow:
          result.rows.push([...(decodeBackendFrame(frame) as DataRowMessage).fields]);
          break;
        case BackendMessage.CommandComplete: // the tag as a C string
          result.command = frame.body.toString('utf8', 0, Math.max(0, frame.body.indexOf(0)));
          break;
        case BackendMessage.EmptyQueryResponse:
        case BackendMessage.NoticeResponse:
        case BackendMessage.ParameterStatus:
          break;
        case BackendMessage.ErrorResponse:
          serverError ??= queryError(decodeBackendFrame(frame) as DatabaseError);
          break;
        case BackendMessage.ReadyForQuery:
          atRest = true;
          if (serverError) throw serverError;
          return result;
        default:
          throw new ProxyError('UPSTREAM_PROTOCOL', {
            message: `the DSQL endpoint sent an unexpected message '${String.fromCharCode(frame.type)}' in answer to a simple query`,
          });
      }
    }
  } finally {
    deadline.clear();
    frames.detach();
    if (!atRest) socket.destroy();
  }
}

function queryError(err: DatabaseError): ProxyError {
  return new ProxyError('UPSTREAM_REJECTED', {
    message: err.message || 'the query failed',
    sqlstate: err.code ?? 'XX000',
    detail: err.detail,
    hint: err.hint,
  });
}
