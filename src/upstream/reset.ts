import type { Duplex } from 'node:stream';
import { frontendQuery } from '../protocol/to-server.js';
import { simpleQuery } from './simple-query.js';

/**
 * What a leaving client's session may have changed on its upstream connection, as the session
 * tracked it (ServerSideState, and the compatibility layer's record of the DSQL parameters it SET).
 */
export interface ResetPlan {
  /** Session parameters (lower case) that may differ from their login values. */
  settings: readonly string[];
  /** Whether named prepared statements may exist on the connection (the client's or the layer's). */
  statements: boolean;
}

/** What a reset did: nothing to undo ('clean'), or one Query of RESETs and DEALLOCATE ALL ('reset'). */
export type ResetOutcome = 'clean' | 'reset';

/** A parameter name that needs no quoting, and so cannot carry anything into the reset's SQL. */
const PLAIN_NAME = /^[a-z_][a-z0-9_]*$/;

/**
 * The reset's SQL: `RESET <name>` for each setting, then `DEALLOCATE ALL` when statements may exist,
 * as one simple Query (one round trip); undefined when there is nothing to undo. Only statements DSQL
 * documents accepting: RESET of its own parameters (which returns a parameter to the value the session
 * had at login, startup parameters included, as in PostgreSQL) and DEALLOCATE ALL. Not DISCARD ALL or
 * RESET ALL, which DSQL refuses or is not known to accept (docs/dsql.md).
 *
 * Throws for a name that is not a plain lower-case identifier: the caller must not pool a connection
 * whose state it could not name.
 */
export function resetSql(plan: ResetPlan): string | undefined {
  const parts: string[] = [];
  for (const name of new Set(plan.settings)) {
    if (!PLAIN_NAME.test(name)) throw new Error(`not a plain parameter name: ${JSON.stringify(name)}`);
    parts.push(`RESET ${name}`);
  }
  if (plan.statements) parts.push('DEALLOCATE ALL');
  return parts.length > 0 ? parts.join('; ') : undefined;
}

/**
 * Brings a pooled connection back to its login state before another client gets it, undoing exactly
 * what the leaving session may have changed (see ResetPlan). DSQL has no temporary tables, advisory
 * locks or LISTEN to clean up (docs/dsql.md), and the compatibility layer's own state belongs to the
 * client session and ends with it.
 *
 * Rejects when the server refuses a statement (UPSTREAM_REJECTED), closes, or does not answer in time:
 * the connection cannot be reset cleanly, and the caller discards it.
 */
export class ConnectionResetter {
  /** Encoded Query messages by SQL: most sessions of an application leave the same state behind. */
  private readonly encoded = new Map<string, Buffer>();

  constructor(private readonly timeoutMs: number) {}

  async reset(socket: Duplex, plan: ResetPlan): Promise<ResetOutcome> {
    const sql = resetSql(plan);
    if (sql === undefined) return 'clean';
    await simpleQuery(socket, this.message(sql), this.timeoutMs);
    return 'reset';
  }

  private message(sql: string): Buffer {
    let msg = this.encoded.get(sql);
    if (msg === undefined) {
      msg = frontendQuery(sql);
      // Bounded: the names come from what clients set, and enable_* has many members.
      if (this.encoded.size < 64) this.encoded.set(sql, msg);
    }
    return msg;
  }
}
