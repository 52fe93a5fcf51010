import net from 'node:net';
import { ProxyError } from '../errors.js';
import type { Logger } from '../log.js';
import { ClientSession, type SessionDeps } from '../session/session.js';

export interface ListenAddress {
  host: string;
  port: number;
}

/**
 * Accepts client connections and owns the set of live sessions, so shutdown can wait for them and
 * then end the rest with 57P01.
 */
export class Listener {
  private readonly server: net.Server;
  private readonly sessions = new Set<ClientSession>();
  private readonly log: Logger;
  private draining = false;

  constructor(private readonly deps: SessionDeps) {
    this.log = deps.logger;
    this.server = net.createServer(
      { noDelay: true, keepAlive: true, keepAliveInitialDelay: 60_000 },
      (socket) => this.accept(socket),
    );
  }

  listen(addr: ListenAddress): Promise<net.AddressInfo> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen({ host: addr.host, port: addr.port }, () => {
        this.server.off('error', reject);
        this.server.on('error', (err) => this.log.error({ event: 'listener_error', err: err.message }));
        resolve(this.server.address() as net.AddressInfo);
      });
    });
  }

  get activeSessions(): number {
    return this.sessions.size;
  }

  /**
   * Stops accepting, lets sessions finish for up to `maxDelayMs`, then ends the rest with a 57P01
   * FATAL. Resolves once every session is gone.
   */
  async shutdown(maxDelayMs: number): Promise<void> {
    if (!this.draining) {
      this.draining = true;
      this.server.close();
      this.log.info({ event: 'draining', sessions: this.sessions.size, max_delay_ms: maxDelayMs });
    }
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

  private accept(socket: net.Socket): void {
    if (this.draining) {
      socket.destroy();
      return;
    }
    const session = new ClientSession(socket, this.deps);
    this.sessions.add(session);
    socket.on('error', () => {}); // reported by the session; never crash the process on a reset
    session
      .run()
      .catch((err: unknown) => this.log.error({ event: 'session_crashed', conn: session.id, err }))
      .finally(() => this.sessions.delete(session));
  }
}
