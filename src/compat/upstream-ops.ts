/**
 * Small exchanges the compatibility layer has with DSQL while it has the connection to itself. Each
 * reads through the ReadyForQuery, so the connection is between requests again afterwards.
 */
import { BackendMessage, FrontendMessage } from '../protocol/constants.js';
import { cstring, typedMessage } from '../protocol/message-writer.js';
import { frontendQuery } from '../protocol/to-server.js';
import type { ClientLink, Frame, UpstreamLink } from './exchange.js';
import type { TxnStatus } from './session-state.js';
import { encode } from './wire.js';

export interface QueryOutcome {
  status: TxnStatus;
  /** The first ErrorResponse, if the query failed. */
  error: Frame | undefined;
}

/** Messages the server may send at any time; they reach the client whatever the exchange. */
export function isAsync(type: number): boolean {
  return (
    type === BackendMessage.NoticeResponse ||
    type === BackendMessage.ParameterStatus ||
    type === BackendMessage.NotificationResponse
  );
}

/**
 * What of a query's answers reaches the client (never its ReadyForQuery: the layer sends one for the
 * whole request): 'all' for the client's own statements; 'errors' for the layer's own statements whose
 * failure the client must see (the COMMIT of a hidden transaction); 'none' for the rest. Asynchronous
 * messages (notices, ParameterStatus) always pass.
 */
export type Forward = 'all' | 'errors' | 'none';

/** Runs a simple Query, reading through its ReadyForQuery. */
export async function runQuery(
  up: UpstreamLink,
  sql: string,
  client: ClientLink,
  hidden: boolean | Forward,
): Promise<QueryOutcome> {
  const mode: Forward = hidden === true ? 'none' : hidden === false ? 'all' : hidden;
  up.write(frontendQuery(sql));
  let error: Frame | undefined;
  for (;;) {
    const frame = await up.next();
    if (frame.type === BackendMessage.ReadyForQuery) {
      return { status: String.fromCharCode(frame.body[0] ?? 73) as TxnStatus, error };
    }
    if (frame.type === BackendMessage.ErrorResponse) error ??= frame;
    if (frame.type === BackendMessage.CopyInResponse) {
      // COPY FROM STDIN needs the client's data, which the layer does not relay: fail the COPY.
      up.write(copyFail('COPY FROM STDIN is not supported in a query dsql-proxy splits'));
      continue;
    }
    if (
      mode === 'all' ||
      isAsync(frame.type) ||
      (mode === 'errors' && frame.type === BackendMessage.ErrorResponse)
    ) {
      client.write(encode(frame));
    }
  }
}

/**
 * PostgreSQL aborts a transaction block at any error; when the error is the proxy's own, DSQL's
 * transaction must be aborted too, or a later COMMIT would commit it. A statement that always fails
 * does that; its error is the proxy's business and is not shown.
 */
export const ABORT_STATEMENT = 'SELECT 1/0';

export async function abortUpstream(up: UpstreamLink, client: ClientLink): Promise<TxnStatus> {
  return (await runQuery(up, ABORT_STATEMENT, client, true)).status;
}

function copyFail(message: string): Buffer {
  return typedMessage(FrontendMessage.CopyFail, cstring(message));
}
