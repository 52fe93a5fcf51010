/**
 * A fault-injecting TCP relay for the integration tests: it listens on 127.0.0.1:0 and sits between
 * the proxy (`--connect-to 127.0.0.1:<relay.port>`) and the test endpoint. The mode applies to
 * connections accepted after it is set; `resetLatest`, `stallLatest` and `resetAll` act on live ones.
 *
 * - `pass`: forward both ways.
 * - `refuse`: answer every new connection with a TCP RST (the listener stays open).
 * - `reset-after`: forward, but reset both sides once `bytes` have come from the server side (set it
 *   inside the TLS handshake to break TLS half-way).
 * - `stall`: accept and never forward a byte either way.
 * - `trickle`: forward the server side one byte every `intervalMs` (the client side normally).
 */
import net from 'node:net';

export type FaultMode =
  | { kind: 'pass' }
  | { kind: 'refuse' }
  | { kind: 'reset-after'; bytes: number }
  | { kind: 'stall' }
  | { kind: 'trickle'; intervalMs: number };

export interface RelayCounters {
  /** Connections accepted (including refused ones). */
  accepted: number;
  refused: number;
  resets: number;
  /** Bytes relayed client -> server and server -> client. */
  bytesUp: number;
  bytesDown: number;
}

export interface FaultRelay {
  host: '127.0.0.1';
  port: number;
  readonly counters: RelayCounters;
  /** Relayed connections currently open. */
  readonly live: number;
  setMode(mode: FaultMode): void;
  /** Where new connections go (live ones stay where they are). */
  setTarget(target: { host: string; port: number }): void;
  /** Resets the most recently accepted live connection (both sides); false if there is none. */
  resetLatest(): boolean;
  /** Resets every live connection. */
  resetAll(): number;
  /** Stops forwarding on the most recently accepted live connection, leaving both sockets open. */
  stallLatest(): boolean;
  close(): Promise<void>;
}

interface Pair {
  client: net.Socket;
  server: net.Socket | undefined;
  stalled: boolean;
  timer: NodeJS.Timeout | undefined;
}

function reset(sock: net.Socket | undefined): void {
  if (!sock || sock.destroyed) return;
  // An RST, like a middlebox or a crashed peer, rather than an orderly FIN.
  if (typeof sock.resetAndDestroy === 'function' && !sock.connecting) sock.resetAndDestroy();
  else sock.destroy();
}

export async function startFaultRelay(initial: { host: string; port: number }): Promise<FaultRelay> {
  let target = initial;
  let mode: FaultMode = { kind: 'pass' };
  const counters: RelayCounters = { accepted: 0, refused: 0, resets: 0, bytesUp: 0, bytesDown: 0 };
  const pairs: Pair[] = [];

  const drop = (pair: Pair): void => {
    const i = pairs.indexOf(pair);
    if (i >= 0) pairs.splice(i, 1);
    if (pair.timer) clearInterval(pair.timer);
    pair.timer = undefined;
  };
  const resetPair = (pair: Pair): void => {
    counters.resets++;
    drop(pair);
    reset(pair.client);
    reset(pair.server);
  };

  const server = net.createServer((client) => {
    counters.accepted++;
    client.on('error', () => {});
    const m = mode;
    if (m.kind === 'refuse') {
      counters.refused++;
      reset(client);
      return;
    }
    const pair: Pair = { client, server: undefined, stalled: false, timer: undefined };
    pairs.push(pair);
    client.on('close', () => {
      drop(pair);
      pair.server?.destroy();
    });
    if (m.kind === 'stall') {
      pair.stalled = true;
      client.pause();
      return;
    }
    const up = net.connect(target.port, target.host);
    pair.server = up;
    up.setNoDelay(true);
    client.setNoDelay(true);
    up.on('error', () => {});
    up.on('close', () => {
      drop(pair);
      client.destroy();
    });
    client.on('data', (chunk: Buffer) => {
      if (pair.stalled) return;
      counters.bytesUp += chunk.length;
      if (!up.write(chunk)) {
        client.pause();
        up.once('drain', () => {
          if (!pair.stalled) client.resume();
        });
      }
    });
    client.on('end', () => up.end());
    let down = 0;
    const queue: Buffer[] = [];
    let queued = 0;
    const trickle = (): void => {
      if (pair.stalled || client.destroyed) return;
      const head = queue[0];
      if (!head) return;
      client.write(head.subarray(0, 1));
      counters.bytesDown++;
      queued--;
      if (head.length === 1) queue.shift();
      else queue[0] = head.subarray(1);
      if (queued < 4096) up.resume();
    };
    if (m.kind === 'trickle') pair.timer = setInterval(trickle, m.intervalMs);
    up.on('data', (chunk: Buffer) => {
      if (pair.stalled) return;
      if (m.kind === 'trickle') {
        queue.push(chunk);
        queued += chunk.length;
        if (queued >= 4096) up.pause();
        return;
      }
      if (m.kind === 'reset-after' && down + chunk.length >= m.bytes) {
        const head = chunk.subarray(0, Math.max(0, m.bytes - down));
        down += head.length;
        counters.bytesDown += head.length;
        if (head.length > 0) client.write(head, () => resetPair(pair));
        else resetPair(pair);
        return;
      }
      down += chunk.length;
      counters.bytesDown += chunk.length;
      if (!client.write(chunk)) {
        up.pause();
        client.once('drain', () => {
          if (!pair.stalled) up.resume();
        });
      }
    });
    up.on('end', () => {
      if (m.kind !== 'trickle') client.end();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as net.AddressInfo).port;

  return {
    host: '127.0.0.1',
    port,
    counters,
    get live() {
      return pairs.length;
    },
    setMode(m) {
      mode = m;
    },
    setTarget(t) {
      target = t;
    },
    resetLatest() {
      const pair = pairs.at(-1);
      if (!pair) return false;
      resetPair(pair);
      return true;
    },
    resetAll() {
      const all = [...pairs];
      for (const p of all) resetPair(p);
      return all.length;
    },
    stallLatest() {
      const pair = pairs.at(-1);
      if (!pair) return false;
      pair.stalled = true;
      pair.client.pause();
      pair.server?.pause();
      return true;
    },
    close() {
      return new Promise<void>((resolve) => {
        for (const p of [...pairs]) {
          drop(p);
          p.client.destroy();
          p.server?.destroy();
        }
        server.close(() => resolve());
      });
    },
  };
}
