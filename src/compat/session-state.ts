import type { Metrics } from '../core/metrics.js';
import type { Logger } from '../log.js';
import { SessionParams } from './params.js';
import { SqlPreparedStatements } from './prepared.js';
import type { CompatStatement } from './sql/statements.js';

export type TxnStatus = 'I' | 'T' | 'E';

/** The kinds counted by dsql_proxy_compat_statements_total. */
export type CompatKind =
  | 'set'
  | 'reset'
  | 'show'
  | 'set_config'
  | 'begin'
  | 'set_transaction'
  | 'lock'
  | 'prepare'
  | 'execute'
  | 'deallocate'
  | 'discard'
  | 'refused';

/**
 * What the compatibility layer keeps for one client session: the parameters it answers for, the
 * SQL-level prepared statements it carries out, DSQL's own parameters the session changed (so RESET
 * ALL, DISCARD ALL and the pool's reset can put them back), and what it knows of the transaction.
 */
export class CompatSession {
  readonly params: SessionParams;
  readonly prepared = new SqlPreparedStatements();
  /** DSQL's parameters (lower case) the session changed with SET, RESET or set_config. */
  readonly dsqlTouched = new Set<string>();
  /** The open transaction has run nothing but its BEGIN (SET TRANSACTION may still re-begin it). */
  txnFresh = false;
  /** The open transaction was begun READ ONLY. */
  txnReadOnly = false;
  /**
   * SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY (or default_transaction_read_only = on): the
   * layer then runs every transaction READ ONLY on DSQL, statements outside a block in one of their own.
   */
  defaultReadOnly = false;
  /** The last statement the layer ran was refused (counted as 'refused', not as its kind). */
  refusedLast = false;
  /** True while the layer carries out a request (its own answers reach the client). */
  answering = false;

  constructor(
    startup: ReadonlyMap<string, string>,
    defaults: { statementTimeoutMs: number; idleInTransactionTimeoutMs: number },
    readonly metrics: Metrics,
    readonly log: Logger,
    /** Called after a statement changed a parameter the proxy carries out (timers, notice filter). */
    readonly onParamsChanged: () => void,
    /** Called after DEALLOCATE ALL reached DSQL: the client's protocol-level statements are gone too. */
    readonly onDeallocateAll: () => void,
  ) {
    this.params = new SessionParams(startup, defaults);
  }

  count(kind: CompatKind): void {
    this.metrics.compatStatements.inc({ kind });
    // Never the SQL text: it may hold secrets.
    this.log.debug({ event: 'compat_answered', kind });
  }
}

/** The kind a statement the layer handles is counted as. */
export function kindOf(stmt: CompatStatement): CompatKind {
  switch (stmt.kind) {
    case 'set-config':
      return 'set_config';
    case 'set-transaction':
      return 'set_transaction';
    case 'reset-all':
      return 'reset';
    case 'commit':
    case 'rollback':
    case 'other':
      return 'refused';
    default:
      return stmt.kind;
  }
}
