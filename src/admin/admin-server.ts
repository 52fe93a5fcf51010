import http from 'node:http';
import type net from 'node:net';
import type { Metrics } from '../core/metrics.js';
import type { Logger } from '../log.js';
import type { Check, HealthState } from './health.js';
import { adminRequestProblem } from './request-guard.js';

export interface AdminServerDeps {
  health: HealthState;
  metrics: Metrics;
  logger: Logger;
  /** Refreshes gauges computed on demand (token expiry...) right before a scrape. */
  beforeScrape: () => void;
  /** Starts the same shutdown as SIGTERM. */
  quit: () => void;
  /** POST /quitquitquit is served only when true (--admin-quitquitquit); otherwise it gets 403. */
  allowQuit: boolean;
}

/**
 * The admin HTTP listener: health probes, Prometheus metrics and (opt-in) /quitquitquit. It never
 * opens a database connection, so probes cannot add load to the cluster or fail because of it.
 * Requests a browser could have been made to send are refused first (see request-guard.ts).
 */
export class AdminServer {
  private readonly server: http.Server;
  /** The address it listens on, for the Host check; set by listen(). */
  private bindHost = '127.0.0.1';

  constructor(private readonly deps: AdminServerDeps) {
    this.server = http.createServer((req, res) => {
      this.handle(req, res).catch((err: unknown) => {
        deps.logger.error({ event: 'admin_error', err });
        if (!res.headersSent) res.writeHead(500);
        res.end();
      });
    });
    // Probes are short; never let a stuck client hold a socket.
    this.server.requestTimeout = 10_000;
    this.server.keepAliveTimeout = 5_000;
  }

  listen(host: string, port: number): Promise<net.AddressInfo> {
    this.bindHost = host;
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen({ host, port }, () => {
        this.server.off('error', reject);
        resolve(this.server.address() as net.AddressInfo);
      });
    });
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0];
    const { health, metrics } = this.deps;
    const problem = adminRequestProblem(req.headers, this.bindHost);
    if (problem !== undefined) {
      this.deps.logger.warn({
        event: 'admin_refused',
        method: req.method,
        path: path?.slice(0, 200),
        reason: problem,
      });
      return send(res, 403, `forbidden: ${problem}\n`);
    }
    if (path === '/quitquitquit') {
      if (req.method !== 'POST') return send(res, 405, 'use POST\n', { allow: 'POST' });
      if (!this.deps.allowQuit) {
        this.deps.logger.warn({
          event: 'admin_refused',
          method: req.method,
          path,
          reason: 'quitquitquit_off',
        });
        return send(
          res,
          403,
          'forbidden: POST /quitquitquit is off; start dsql-proxy with --admin-quitquitquit (DSQL_PROXY_ADMIN_QUITQUITQUIT=true) to allow it, or stop it with SIGTERM\n',
        );
      }
      this.deps.logger.info({ event: 'quitquitquit' });
      send(res, 200, 'shutting down\n');
      this.deps.quit();
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD')
      return send(res, 405, 'use GET\n', { allow: 'GET, HEAD' });
    switch (path) {
      case '/startup':
        return probe(res, health.startup());
      case '/livez':
        return probe(res, health.liveness());
      case '/readyz':
        return probe(res, health.readiness());
      case '/metrics': {
        this.deps.beforeScrape();
        const body = await metrics.registry.metrics();
        return send(res, 200, body, { 'content-type': metrics.registry.contentType });
      }
      default:
        return send(res, 404, 'not found: try /startup, /livez, /readyz, /metrics\n');
    }
  }
}

function probe(res: http.ServerResponse, check: Check): void {
  send(res, check.ok ? 200 : 503, `${check.detail}\n`);
}

function send(
  res: http.ServerResponse,
  status: number,
  body: string,
  headers: Record<string, string> = {},
): void {
  res.writeHead(status, {
    'content-type': 'text/plain; charset=utf-8',
    'cache-control': 'no-store',
    ...headers,
  });
  res.end(body);
}
