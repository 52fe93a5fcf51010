import http from 'node:http';
import type net from 'node:net';
import type { Logger } from '../log.js';
import type { Check, HealthState } from './health.js';
import type { Metrics } from './metrics.js';

export interface AdminServerDeps {
  health: HealthState;
  metrics: Metrics;
  logger: Logger;
  /** Refreshes gauges computed on demand (token expiry...) right before a scrape. */
  beforeScrape: () => void;
  /** Starts the same shutdown as SIGTERM. */
  quit: () => void;
}

/**
 * The admin HTTP listener: health probes, Prometheus metrics and /quitquitquit. It never opens a
 * database connection, so probes cannot add load to the cluster or fail because of it.
 */
export class AdminServer {
  private readonly server: http.Server;

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
    if (path === '/quitquitquit') {
      if (req.method !== 'POST') return send(res, 405, 'use POST\n', { allow: 'POST' });
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
