/**
 * CONTRACT (helper B implements; the engine codes against these signatures).
 *
 * The session parameters the proxy answers for DSQL: which names it handles and how, their values per
 * session with PostgreSQL's transaction semantics, and the text SHOW gives.
 *
 * Every name falls in one class:
 * - 'dsql': DSQL accepts it (src/dsql/limits.ts isDsqlSessionParam): SET/RESET/SHOW go to DSQL.
 * - 'carried': the proxy carries it out (statement_timeout, idle_in_transaction_session_timeout,
 *   transaction_timeout, client_min_messages).
 * - 'harmless': accepting any valid value changes nothing DSQL does (e.g. lock_timeout: DSQL never waits
 *   on a lock; synchronize_seqscans).
 * - 'fixed': only the value DSQL behaves as is accepted (standard_conforming_strings=on,
 *   default_transaction_isolation='repeatable read', default_transaction_read_only=off, ...); another
 *   value is refused with 0A000 naming what DSQL does, because accepting it would lie.
 * - 'unknown': not the proxy's: the statement goes to DSQL and its answer reaches the client.
 */

export type ParamClass = 'dsql' | 'carried' | 'harmless' | 'fixed' | 'unknown';

/** A failure PostgreSQL would report, in PostgreSQL's words and SQLSTATE. */
export interface ParamError {
  sqlstate: string;
  message: string;
  detail?: string;
  hint?: string;
}

/** What SET/RESET produced: ok (maybe with a WARNING to send, e.g. SET LOCAL outside a transaction), or an error. */
export type ParamResult = { ok: true; warning?: ParamError } | { ok: false; error: ParamError };

export type MessageLevel = 'debug5' | 'debug4' | 'debug3' | 'debug2' | 'debug1' | 'log' | 'notice' | 'warning' | 'error';

export function paramClass(_name: string): ParamClass {
  throw new Error('not implemented');
}

/**
 * One session's values of the names the proxy handles ('carried', 'harmless', 'fixed').
 * `inTransaction` is true inside a transaction block (explicit or the implicit one of a multi-statement Query).
 */
export class SessionParams {
  /** `startup`: the client's startup parameters (any case); handled names among them become the session defaults (their RESET value). Invalid ones produce errors via startupErrors. */
  constructor(_startup: ReadonlyMap<string, string>, _defaults?: { statementTimeoutMs?: number; idleInTransactionTimeoutMs?: number }) {
    throw new Error('not implemented');
  }
  /** Startup parameters that were invalid or refused (the login must fail with this error, as PostgreSQL does). */
  get startupError(): ParamError | undefined {
    throw new Error('not implemented');
  }
  /** SET name = value (value items as from the classifier, or 'default'). */
  set(_name: string, _value: readonly { value: string; kind: string }[] | 'default', _local: boolean, _inTransaction: boolean): ParamResult {
    throw new Error('not implemented');
  }
  /** set_config(name, value, is_local): returns the new value as SHOW would give it, or an error. value null = reset. */
  setConfig(_name: string, _value: string | null, _isLocal: boolean, _inTransaction: boolean): { ok: true; shown: string } | { ok: false; error: ParamError } {
    throw new Error('not implemented');
  }
  reset(_name: string, _inTransaction: boolean): ParamResult {
    throw new Error('not implemented');
  }
  /** RESET ALL for the handled names (the engine resets DSQL's own names separately). */
  resetAll(_inTransaction: boolean): void {
    throw new Error('not implemented');
  }
  /** SHOW name: the value as PostgreSQL shows it (e.g. statement_timeout 5000 -> '5s'), undefined if not handled. */
  show(_name: string): string | undefined {
    throw new Error('not implemented');
  }
  /** The transaction (explicit or implicit) ended: SET LOCAL values end; on rollback, SETs made in it are undone. */
  endTransaction(_committed: boolean): void {
    throw new Error('not implemented');
  }
  /** Back to the session defaults (DISCARD ALL). */
  discardAll(): void {
    throw new Error('not implemented');
  }
  /** Effective values the proxy carries out; 0 = disabled. */
  get statementTimeoutMs(): number {
    throw new Error('not implemented');
  }
  get idleInTransactionTimeoutMs(): number {
    throw new Error('not implemented');
  }
  get transactionTimeoutMs(): number {
    throw new Error('not implemented');
  }
  get clientMinMessages(): MessageLevel {
    throw new Error('not implemented');
  }
}
