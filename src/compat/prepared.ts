/**
 * CONTRACT (helper D implements): SQL-level PREPARE / EXECUTE / DEALLOCATE carried out over
 * protocol-level prepared statements, which DSQL accepts.
 */
import type { CompatStatement } from './sql/statements.js';
import type { ClientLink, Frame, UpstreamLink } from './exchange.js';

export type PrepareStatement = Extract<CompatStatement, { kind: 'prepare' }>;
export type ExecuteStatement = Extract<CompatStatement, { kind: 'execute' }>;
export type DeallocateStatement = Extract<CompatStatement, { kind: 'deallocate' }>;

/** One SQL-level prepared statement as it lives upstream. */
export interface SqlPreparedEntry {
  /** The SQL name (as the client wrote it, folded as PostgreSQL folds identifiers). */
  name: string;
  /** The protocol-level name it has upstream. */
  protocolName: string;
  /** The Parse message body sent upstream (replayed on a move to a new connection). */
  parseBody: Buffer;
  paramTypeOids: readonly number[];
}

/**
 * The outcome of one exchange: `ok` with the status of the upstream's ReadyForQuery, or the upstream's
 * ErrorResponse (whole message) for the engine to pass on, with that status.
 */
export type ExchangeOutcome = { ok: true; status: string } | { ok: false; error: Frame; status: string };

export class SqlPreparedStatements {
  get(_name: string): SqlPreparedEntry | undefined {
    throw new Error('not implemented');
  }
  entries(): readonly SqlPreparedEntry[] {
    throw new Error('not implemented');
  }
  clear(): void {
    throw new Error('not implemented');
  }
}

export function runPrepare(
  _stmt: PrepareStatement,
  _registry: SqlPreparedStatements,
  _up: UpstreamLink,
  _client: ClientLink,
): Promise<ExchangeOutcome> {
  throw new Error('not implemented');
}

export function runExecute(
  _stmt: ExecuteStatement,
  _registry: SqlPreparedStatements,
  _up: UpstreamLink,
  _client: ClientLink,
): Promise<ExchangeOutcome> {
  throw new Error('not implemented');
}

export function runDeallocate(
  _stmt: DeallocateStatement,
  _registry: SqlPreparedStatements,
  _up: UpstreamLink,
  _client: ClientLink,
): Promise<ExchangeOutcome> {
  throw new Error('not implemented');
}
