/**
 * Time to a usable connection through the proxy in its default mode (a new upstream login per client),
 * with a network round trip between the proxy and the server, for each way of starting the upstream
 * TLS (`--upstream-ssl-negotiation direct` and `postgres`). On loopback a round trip costs next to
 * nothing, so a relay here delays every chunk by half the round trip each way, as a network would.
 *
 * Each round starts both proxies' clients in turn (interleaved), and every connection is a
 * node-postgres connect() and end(), one at a time.
 *
 * usage: node --import tsx scripts/bench/connect-latency.ts PG_PORT CA_FILE SERVERNAME [RTT_MS] [CONNECTIONS] [ROUNDS]
 * (PostgreSQL with ssl=on and a certificate for SERVERNAME signed by CA_FILE, trusting the user `bench`,
 * as the benchmark's own server; build first: npm run build.)
 */
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { freePort } from '../../src/local-endpoint/embedded-postgres.js';
import { benchProxyArgs, benchProxyEnv, type Server, startServer, waitReady } from './proc.js';
import { median } from './stats.js';

const [pgPort, caFile, servername, rttArg, countArg, roundsArg] = process.argv.slice(2);
if (!pgPort || !caFile || !servername) {
  process.stderr.write(
    'usage: connect-latency.ts PG_PORT CA_FILE SERVERNAME [RTT_MS] [CONNECTIONS] [ROUNDS]\n',
  );
  process.exit(2);
}
const rttMs = Number(rttArg ?? 2);
const count = Number(countArg ?? 50);
const rounds = Number(roundsArg ?? 3);
const USER = 'bench';
const cli = fileURLToPath(new URL('../../dist/cli.js', import.meta.url));

/** A TCP relay to PostgreSQL that delays every chunk, and the end, by `rttMs / 2` each way. */
async function delayRelay(): Promise<net.Server> {
  const half = rttMs / 2;
  const later = (fn: () => void): void => {
    // Timers of one duration fire in the order they were set: bytes keep their order. (A 0 ms timer
    // would still wait about 1 ms: with no round trip the bytes go at once.)
    if (half > 0) setTimeout(fn, half);
    else fn();
  };
  const server = net.createServer((client) => {
    const upstream = net.connect({ host: '127.0.0.1', port: Number(pgPort), noDelay: true });
    client.setNoDelay(true);
    for (const [from, to] of [
      [client, upstream],
      [upstream, client],
    ] as const) {
      from.on('data', (chunk: Buffer) => later(() => to.write(chunk)));
      from.on('end', () => later(() => to.end()));
      from.on('error', () => later(() => to.destroy()));
      from.on('close', () => later(() => to.destroy()));
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return server;
}

async function startProxy(
  negotiation: 'direct' | 'postgres',
  relayPort: number,
): Promise<{ server: Server; port: number }> {
  const port = await freePort();
  const args = benchProxyArgs({
    endpoint: servername as string,
    connectTo: `127.0.0.1:${relayPort}`,
    caFile: caFile as string,
    port,
    negotiation,
    extra: ['--auth-method', 'trust'],
  });
  const server = startServer(`proxy-${negotiation}`, process.execPath, [cli, ...args], benchProxyEnv());
  await waitReady({ host: '127.0.0.1', port, user: USER, database: 'postgres' }, server);
  return { server, port };
}

/** Milliseconds from connect() to a logged-in client, for `count` connections one after another. */
async function connectTimes(port: number): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i < count; i++) {
    const client = new pg.Client({ host: '127.0.0.1', port, user: USER, database: 'postgres', ssl: false });
    const t0 = performance.now();
    await client.connect();
    times.push(performance.now() - t0);
    await client.end();
  }
  return times;
}

const relay = await delayRelay();
const relayPort = (relay.address() as net.AddressInfo).port;
const modes = ['direct', 'postgres'] as const;
const proxies = new Map<string, { server: Server; port: number }>();
for (const mode of modes) proxies.set(mode, await startProxy(mode, relayPort));
const medians = new Map<string, number[]>(modes.map((m) => [m, []]));
try {
  for (const mode of modes) await connectTimes(proxies.get(mode)!.port); // warm-up
  for (let r = 0; r < rounds; r++) {
    for (const mode of modes) {
      const times = await connectTimes(proxies.get(mode)!.port);
      medians.get(mode)!.push(median(times));
    }
  }
} finally {
  for (const p of proxies.values()) await p.server.stop();
  relay.close();
}
process.stdout.write(
  `round trip proxy <-> server: ${rttMs} ms; ${count} connections per round, ${rounds} rounds\n`,
);
for (const mode of modes) {
  const m = medians.get(mode)!;
  process.stdout.write(
    `${mode.padEnd(8)} connect median ${median(m).toFixed(2)} ms (rounds: ${m.map((x) => x.toFixed(2)).join(', ')})\n`,
  );
}
const saved = median(medians.get('postgres')!) - median(medians.get('direct')!);
process.stdout.write(
  `direct saves ${saved.toFixed(2)} ms per new connection${rttMs > 0 ? ` (${(saved / rttMs).toFixed(2)} round trips)` : ''}\n`,
);
