import type { Duplex } from 'node:stream';
import { ProxyError } from '../errors.js';
import { frontendQuery } from '../protocol/to-server.js';
import { simpleQuery } from './simple-query.js';

export type ResetMethod = 'discard' | 'reset';

// Encoded once: a pooled connection is reset every time a client leaves it.
const DISCARD_ALL = frontendQuery('DISCARD ALL');
const RESET_ALL = frontendQuery('RESET ALL');
const DEALLOCATE_ALL = frontendQuery('DEALLOCATE ALL');

/**
 * Brings a session back to its login state before another client gets it.
 *
 * `DISCARD ALL` is PostgreSQL's one statement for that, but DSQL's support for it is not documented.
 * The fallback is what it does that can matter on DSQL: `RESET ALL` (settings back to their login
 * values) and `DEALLOCATE ALL` (prepared statements). DSQL has no temporary tables, advisory locks
 * or LISTEN to clean up (docs/dsql.md). A statement the server refuses means the connection cannot be
 * reset cleanly, and the caller discards it.
 *
 * `known` remembers which method the cluster accepted, so a refused DISCARD ALL is not retried on
 * every release.
 */
export class ConnectionResetter {
  private method: ResetMethod | undefined;

  constructor(private readonly timeoutMs: number) {}

  get preferred(): ResetMethod | undefined {
    return this.method;
  }

  async reset(socket: Duplex): Promise<ResetMethod> {
    if (this.method !== 'reset') {
      try {
        await simpleQuery(socket, DISCARD_ALL, this.timeoutMs);
        this.method = 'discard';
        return 'discard';
      } catch (err) {
        // Anything but a plain refusal (closed, timed out) leaves the connection unusable.
        if (!(err instanceof ProxyError && err.code === 'UPSTREAM_REJECTED')) throw err;
        if (this.method === 'discard') throw err;
      }
    }
    await simpleQuery(socket, RESET_ALL, this.timeoutMs);
    await simpleQuery(socket, DEALLOCATE_ALL, this.timeoutMs);
    this.method = 'reset';
    return 'reset';
  }
}
