import type tls from 'node:tls';
import type { Metrics } from '../admin/metrics.js';
import type { Logger } from '../log.js';
import { actionForRole, type TokenAction } from '../token/signer.js';
import type { TokenCache } from '../token/token-cache.js';
import { dialUpstream } from './dial.js';
import { loginUpstream, type UpstreamSession } from './login.js';
import type { UpstreamTarget } from './target.js';

export interface ConnectRequest {
  /** The DSQL role to log in as. */
  role: string;
  /** Startup parameters to send along (already filtered for what DSQL accepts). */
  params: ReadonlyMap<string, string>;
  log: Logger;
  /** Sends a NoticeResponse to the waiting client (e.g. "waiting for a connection slot"). */
  notice?: (message: string) => void;
}

/** A logged-in upstream connection. */
export interface UpstreamConnection {
  socket: tls.TLSSocket;
  session: UpstreamSession;
  target: UpstreamTarget;
  action: TokenAction;
  connectMs: number;
}

/**
 * Opens logged-in upstream connections: token, TLS dial, login. Sessions use it for their first
 * connection and for moving to a fresh one; it is the one place that decides how a connection to
 * DSQL is made.
 */
export interface Connector {
  connect(req: ConnectRequest): Promise<UpstreamConnection>;
}

export interface SingleEndpointOptions {
  target: UpstreamTarget;
  tokens: TokenCache;
  connectTimeoutMs: number;
  metrics: Metrics;
}

/** One endpoint, no queueing: token from the cache, dial, login. */
export function singleEndpointConnector(opts: SingleEndpointOptions): Connector {
  return {
    async connect(req) {
      const action = actionForRole(req.role);
      const t0 = performance.now();
      const token = await opts.tokens.get(action);
      const socket = await dialUpstream(opts.target, opts.connectTimeoutMs);
      try {
        const session = await loginUpstream(
          socket,
          { user: req.role, params: req.params, token },
          opts.connectTimeoutMs,
        );
        const connectMs = performance.now() - t0;
        opts.metrics.upstreamConnectSeconds.observe(connectMs / 1000);
        return { socket, session, target: opts.target, action, connectMs };
      } catch (err) {
        socket.destroy();
        throw err;
      }
    },
  };
}
