import type { Metrics } from '../core/metrics.js';
import { toProxyError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Connector, ConnectRequest, UpstreamConnection } from './connector.js';
import { poolKey, type UpstreamPool } from './pool.js';
import type { ConnectionResetter, ResetPlan } from './reset.js';

/** A connector that hands out pooled connections first, and takes connections back. */
export interface PoolingConnector extends Connector {
  /**
   * Called when a client left cleanly while idle: reset the connection and keep it, or close it.
   * `req` is the request the client's connection was made or taken for; `plan` what the session may
   * have changed, undefined when the session cannot say (the connection is then closed).
   */
  release(req: ConnectRequest, conn: UpstreamConnection, plan: ResetPlan | undefined): void;
}

export interface PoolingOptions {
  base: Connector;
  pool: UpstreamPool;
  resetter: ConnectionResetter;
  metrics: Metrics;
  log: Logger;
}

/**
 * --pool-mode session: a new client of a DSQL role gets an idle connection another client of the same
 * role (and startup parameters) left, reset to its login state, instead of a new TLS connection and
 * login. PgBouncer's session mode, with DSQL's limits in mind.
 */
export function poolingConnector(opts: PoolingOptions): PoolingConnector {
  const { base, pool, resetter, metrics, log } = opts;
  return {
    async connect(req) {
      const reused = pool.take(keyOf(req));
      if (reused) {
        metrics.poolReuses.inc();
        return { ...reused, connectMs: 0 };
      }
      return base.connect(req);
    },
    release(req, conn, plan) {
      const { socket } = conn;
      if (plan === undefined) {
        // State the session could not follow cannot be undone: never hand it to another client.
        metrics.poolResets.inc({ outcome: 'unknown_state' });
        socket.destroy();
        return;
      }
      resetter.reset(socket, plan).then(
        (method) => {
          if (pool.put(keyOf(req), conn)) {
            metrics.poolResets.inc({ outcome: method });
          } else {
            metrics.poolResets.inc({ outcome: 'not_kept' });
            socket.destroy();
          }
        },
        (err: unknown) => {
          // A connection that cannot be reset cleanly is never handed to another client.
          metrics.poolResets.inc({ outcome: 'failed' });
          log.warn({ event: 'pool_reset_failed', err: toProxyError(err).message });
          socket.destroy();
        },
      );
    },
  };
}

/** The request's pool key, worked out once: the take and the release of a session share it. */
function keyOf(req: ConnectRequest): string {
  req.poolKey ??= poolKey(req.role, req.params);
  return req.poolKey;
}
