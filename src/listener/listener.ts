import net from 'node:net';
import { ProxyError } from '../errors.js';
import { CLIENT_WRITE_HIGH_WATER_MARK } from '../io/client-socket.js';
import type { Logger } from '../log.js';
import { ClientSession, type SessionDeps } from '../session/client-session.js';
import { listenUnixSocket } from './unix-socket.js';

export interface ListenAddress {
  host: string;
  port: number;
}

export type ListenerDeps = Omit<SessionDeps, 'admit'> & {
  /** The admitted sessions, shared by every listener so --max-connections counts all clients. */
  admitted?: Set<ClientSession>;
};

/**
 * Accepts client connections (TCP, and optionally a Unix-domain socket) and owns the set of live
 * sessions: admission against --max-connections, and shutdown that waits for sessions and then ends
 * the rest with 57P01.
 */
export class Listener {
  private readonly servers: net.Server[] = [];
  private readonly sessions = new Set<ClientSession>();
  private readonly admitted: Set<ClientSession>;
  private readonly log: Logger;
  private readonly sessionDeps: SessionDeps;
  private draining = false;
  private unixPath: string | undefined;

  constructor(deps: ListenerDeps) {
    const { admitted, ...sessionDeps } = deps;
    this.log = deps.logger;
    this.admitted = admitted ?? new Set();
    this.sessionDeps = { ...sessionDeps, admit: (s) => this.admit(s) };
  }

  /** Listens on TCP; resolves with the bound address (port 0 picks a free port). */
  async listen(addr: ListenAddress): Promise<net.AddressInfo> {
    const server = this.createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: addr.host, port: addr.port }, () => {
        server.off('error', reject);
        resolve();
      });
    });
    return server.address() as net.AddressInfo;
  }

  /** Also listens on `<dir>/.s.PGSQL.<port>`, the path libpq uses for `-h <dir> -p <port>`. */
  async listenUnix(dir: string, port: number): Promise<string> {
    const server = this.createServer();
    this.unixPath = await listenUnixSocket(server, dir, port);
    return this.unixPath;
  }

  get activeSessions(): number {
    return this.sessions.size;
  }

  /** Stops accepting new connections on every listener. */
  stopAccepting(): void {
    if (this.draining) return;
    this.draining = true;
    for (const server of this.servers) server.close();
  }

  /**
   * Stops accepting, lets sessions finish for up to `maxDelayMs`, then ends the rest with a 57P01
   * FATAL (between two server messages). Resolves once every session is gone.
   */
  async shutdown(maxDelayMs: number): Promise<void> {
    this.stopAccepting();
    this.log.info({ event: 'draining', sessions: this.sessions.size, max_delay_ms: maxDelayMs });
    const deadline = Date.now() + maxDelayMs;
    while (this.sessions.size > 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, Math.min(100, Math.max(1, deadline - Date.now()))));
    }
    if (this.sessions.size > 0) {
      this.log.info({ event: 'terminating_sessions', sessions: this.sessions.size });
      for (const session of this.sessions) session.terminate(new ProxyError('ADMIN_SHUTDOWN'));
      const hardDeadline = Date.now() + 2000;
      while (this.sessions.size > 0 && Date.now() < hardDeadline) {
        await new Promise((r) => setTimeout(r, 20));
      }
    }
  }

  private createServer(): net.Server {
    // No-delay and keepalive are set by the session (keepalive only for clients beyond loopback).
    const server = createClientServer((socket) => this.accept(socket));
    server.on('error', (err) => this.log.error({ event: 'listener_error', err: err.message }));
    this.servers.push(server);
    return server;
  }

  private admit(session: ClientSession): boolean {
    const max = this.sessionDeps.maxConnections;
    if (max > 0 && this.admitted.size >= max) return false;
    this.admitted.add(session);
    return true;
  }

  private accept(socket: net.Socket): void {
    if (this.draining) {
      socket.destroy();
      return;
    }
    const session = new ClientSession(socket, this.sessionDeps);
    this.sessions.add(session);
    this.sessionDeps.metrics.connectionsActive.inc();
    socket.on('error', () => {}); // reported by the session; never crash the process on a reset
    session
      .run()
      .catch((err: unknown) => this.log.error({ event: 'session_crashed', conn: session.id, err }))
      .finally(() => {
        this.sessions.delete(session);
        this.admitted.delete(session);
        this.sessionDeps.metrics.connectionsActive.dec();
      });
  }
}

/** The server clients connect to: their sockets hold up to CLIENT_WRITE_HIGH_WATER_MARK unsent. */
export function createClientServer(onSocket: (socket: net.Socket) => void): net.Server {
  return net.createServer({ highWaterMark: CLIENT_WRITE_HIGH_WATER_MARK }, onSocket);
}
