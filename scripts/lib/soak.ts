/**
 * The soak run shared by `npm run soak` (scripts/soak.ts) and its short CI variant
 * (test/integration/soak.test.ts): N concurrent node-postgres clients run a mixed workload (short
 * queries, transactions, named prepared statements, ~1 MB results) through the real proxy process
 * against the test stack. It counts every error and compares the proxy's open file descriptors and
 * RSS after the clients have left with a baseline taken after a warm-up.
 */
import { readdirSync } from 'node:fs';
import pg from 'pg';
import {
  GC_NODE_ARGS,
  HEAP_SLACK_MB,
  LIVE_SESSIONS_SLACK,
  liveObjects,
  type Memory,
  memoryAfterGc,
  memoryFailures,
  rssBytes,
  settledMemory,
  TIMER_LISTS_SLACK,
} from '../../test/support/proxy-memory.js';
import { type ProxyProcess, startProxyProcess } from '../../test/support/proxy-process.js';
import { startTestStack, type TestStack } from '../../test/support/stack.js';

export interface SoakOptions {
  clients: number;
  durationMs: number;
  /** One in this many operations fetches a ~1 MB row (default 25). */
  largeEvery?: number;
  /**
   * The workload runs this many times (default 1), each after the previous one's clients have all
   * left, and memory is read after each: a leak grows from round to round, a warm-up plateau does not.
   */
  rounds?: number;
  log?: (line: string) => void;
}

export interface SoakReport {
  clients: number;
  durationMs: number;
  ops: number;
  opsByKind: Record<string, number>;
  errors: number;
  firstErrors: string[];
  bytesLarge: number;
  fd: { baseline: number; peak: number; after: number };
  rssMb: { baseline: number; peak: number; after: number };
  /** After a full garbage collection (the proxy runs with --expose-gc and the harness's preload). */
  gcMb: { baseline: Memory; rounds: Memory[] };
  /** Live objects per class of the proxy's per-connection objects, from a heap snapshot at the end. */
  liveObjects: Record<string, number>;
  proxyAlive: boolean;
  crashed: number;
}

export const LARGE_BYTES = 1024 * 1024;

function fdCount(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

function rssMb(pid: number): number {
  return rssBytes(pid) / 1048576;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function runSoak(opts: SoakOptions): Promise<SoakReport> {
  const log = opts.log ?? (() => {});
  const largeEvery = opts.largeEvery ?? 25;
  let stack: TestStack | undefined;
  let proxy: ProxyProcess | undefined;
  try {
    stack = await startTestStack({
      postgresOptions: { settings: { max_connections: String(opts.clients + 50) } },
    });
    await stack.postgres.query(
      'create table soak (client int, n int, at timestamptz default now()); grant all on soak to app',
    );
    proxy = await startProxyProcess(stack, {
      args: ['--connect-rate', '0', '--connect-queue-timeout', '60s', '--connect-timeout', '30s'],
      nodeArgs: GC_NODE_ARGS,
    });
    const { host, port } = proxy;
    const pid = proxy.child.pid as number;
    const connect = async (): Promise<pg.Client> => {
      const c = new pg.Client({ host, port, user: 'app', password: '', connectionTimeoutMillis: 60_000 });
      c.on('error', () => {});
      await c.connect();
      return c;
    };

    // Warm-up, then the baseline: V8 and the TLS stack keep what they grew on first use.
    for (let round = 0; round < 3; round++) {
      const warm = await Promise.all(Array.from({ length: 20 }, connect));
      await Promise.all(warm.map((c) => c.query('select repeat($1, $2::int) as v', ['x', LARGE_BYTES])));
      await Promise.all(warm.map((c) => c.end()));
    }
    await sleep(1000);
    const baseline = { fd: fdCount(pid), rss: rssMb(pid) };
    const gcBaseline = await memoryAfterGc(proxy);
    log(
      `baseline: fd=${baseline.fd} rss=${baseline.rss.toFixed(1)} MB; after GC rss=${gcBaseline.rss.toFixed(1)} heap=${gcBaseline.heap.toFixed(1)} MB`,
    );
    const gcRounds: Memory[] = [];

    let ops = 0;
    let errors = 0;
    let bytesLarge = 0;
    const firstErrors: string[] = [];
    const opsByKind: Record<string, number> = { short: 0, transaction: 0, prepared: 0, large: 0 };
    const fail = (what: string, err: unknown): void => {
      errors++;
      if (firstErrors.length < 10) firstErrors.push(`${what}: ${(err as Error)?.message ?? String(err)}`);
    };
    let peakFd = baseline.fd;
    let peakRss = baseline.rss;
    const sampler = setInterval(() => {
      try {
        peakFd = Math.max(peakFd, fdCount(pid));
        peakRss = Math.max(peakRss, rssMb(pid));
      } catch {}
    }, 500);

    // Every client connects first (50 at a time), then all run the workload together. The test
    // endpoint runs in this process and shares its event loop with 500 workers: logging in while
    // the others already move megabytes made its TLS handshakes (not the proxy) the bottleneck.
    let started = Date.now();
    let elapsed = 0;
    let after = baseline;
    for (let round = 1; round <= (opts.rounds ?? 1); round++) {
      const conns: pg.Client[] = [];
      for (let i = 0; i < opts.clients; i += 50) {
        const batch = await Promise.allSettled(
          Array.from({ length: Math.min(50, opts.clients - i) }, () => connect()),
        );
        for (const r of batch) {
          if (r.status === 'fulfilled') conns.push(r.value);
          else fail('connect', r.reason);
        }
      }
      log(`${conns.length} clients connected`);
      started = Date.now();
      const deadline = started + opts.durationMs;
      const worker = async (c: pg.Client, id: number): Promise<void> => {
        let n = 0;
        while (Date.now() < deadline) {
          n++;
          const pick =
            (id + n) % largeEvery === 0 ? 'large' : (['short', 'transaction', 'prepared'][n % 3] as string);
          try {
            if (pick === 'short') {
              const r = await c.query('select $1::int as n', [n]);
              if (r.rows[0]?.n !== n) throw new Error(`short: got ${JSON.stringify(r.rows)}`);
            } else if (pick === 'transaction') {
              await c.query('begin');
              await c.query('insert into soak (client, n) values ($1, $2)', [id, n]);
              const r = await c.query('select count(*)::int as k from soak where client = $1 and n = $2', [
                id,
                n,
              ]);
              await c.query('commit');
              if (r.rows[0]?.k !== 1) throw new Error(`transaction: got ${JSON.stringify(r.rows)}`);
            } else if (pick === 'prepared') {
              const r = await c.query({ name: 'soak_p', text: 'select $1::int + 1 as m', values: [n] });
              if (r.rows[0]?.m !== n + 1) throw new Error(`prepared: got ${JSON.stringify(r.rows)}`);
            } else {
              const r = await c.query('select repeat(chr(65 + $1::int % 26), $2::int) as v', [
                n,
                LARGE_BYTES,
              ]);
              const v = r.rows[0]?.v as string;
              if (v.length !== LARGE_BYTES || v[LARGE_BYTES - 1] !== String.fromCharCode(65 + (n % 26))) {
                throw new Error('large: wrong value');
              }
              bytesLarge += v.length;
            }
            ops++;
            opsByKind[pick] = (opsByKind[pick] ?? 0) + 1;
          } catch (err) {
            fail(`client ${id} ${pick}`, err);
            await c.query('rollback').catch(() => {});
          }
        }
        await c.end().catch((err: unknown) => fail(`client ${id} end`, err));
      };
      // Ids are unique over all rounds: the transaction check counts its own rows in the soak table.
      const workers = conns.map((c, i) => worker(c, (round - 1) * opts.clients + i));
      const progress = setInterval(() => {
        log(
          `t=${Math.round((Date.now() - started) / 1000)}s ops=${ops} errors=${errors} fd=${peakFd} rss=${peakRss.toFixed(1)} MB (peaks)`,
        );
      }, 10_000);
      await Promise.all(workers);
      clearInterval(progress);
      elapsed += Date.now() - started;

      // Closed sessions release their sockets at once; give the kernel and GC a moment.
      after = { fd: fdCount(pid), rss: rssMb(pid) };
      for (let i = 0; i < 120 && after.fd > baseline.fd + FD_SLACK; i++) {
        await sleep(250);
        after = { fd: fdCount(pid), rss: rssMb(pid) };
      }
      await sleep(2000);
      after = { fd: fdCount(pid), rss: rssMb(pid) };
      const m = await settledMemory(proxy, gcBaseline);
      gcRounds.push({ rss: m.rss, heap: m.heap });
      log(
        `round ${round}: fd=${after.fd} rss=${after.rss.toFixed(1)} MB; after GC rss=${m.rss.toFixed(1)} heap=${m.heap.toFixed(1)} MB (settled in ${(m.settleMs / 1000).toFixed(1)} s)`,
      );
    }
    clearInterval(sampler);

    // Last, because a heap snapshot inflates RSS: how many per-connection objects are still alive.
    const objects = await liveObjects(proxy);
    log(`live per-connection objects after the last round: ${JSON.stringify(objects)}`);

    const crashed = proxy.logs.filter((l) => l.json?.event === 'session_crashed').length;
    return {
      clients: opts.clients,
      durationMs: elapsed,
      ops,
      opsByKind,
      errors,
      firstErrors,
      bytesLarge,
      fd: { baseline: baseline.fd, peak: peakFd, after: after.fd },
      rssMb: { baseline: baseline.rss, peak: peakRss, after: after.rss },
      gcMb: { baseline: gcBaseline, rounds: gcRounds },
      liveObjects: objects,
      proxyAlive: proxy.child.exitCode === null && proxy.child.signalCode === null,
      crashed,
    };
  } finally {
    await proxy?.stop();
    await stack?.stop();
  }
}

/**
 * RSS is not the leak check: it stays above the baseline after a GC, because freed native memory
 * (OpenSSL's per-connection buffers, above all) is not all given back to the OS. A bare Node.js
 * TLS client that opens and closes 1,000 connections per round shows the same, with no proxy code
 * (see proxy-memory.ts). This bound catches runaway growth only.
 */
export const RSS_SLACK_MB = 128;
export const FD_SLACK = 5;

/** The failures of a report, empty when it passed. */
export function soakFailures(r: SoakReport): string[] {
  const out: string[] = [];
  if (r.errors > 0) out.push(`${r.errors} errors, first: ${r.firstErrors.join(' | ')}`);
  if (!r.proxyAlive) out.push('the proxy exited');
  if (r.crashed > 0) out.push(`${r.crashed} session_crashed log lines`);
  if (r.fd.after > r.fd.baseline + FD_SLACK)
    out.push(`fd ${r.fd.after} > baseline ${r.fd.baseline} + ${FD_SLACK}`);
  if (r.rssMb.after > r.rssMb.baseline + RSS_SLACK_MB) {
    out.push(
      `RSS ${r.rssMb.after.toFixed(1)} MB > baseline ${r.rssMb.baseline.toFixed(1)} + ${RSS_SLACK_MB} MB`,
    );
  }
  r.gcMb.rounds.forEach((m, i) => {
    const last = i === r.gcMb.rounds.length - 1;
    out.push(...memoryFailures(`round ${i + 1}`, r.gcMb.baseline, m, last ? r.liveObjects : undefined));
  });
  if (r.gcMb.rounds.length === 0) out.push('no memory reading after the workload');
  if (r.ops === 0) out.push('no operations ran');
  return out;
}

export function formatSoak(r: SoakReport): string {
  const mb = (x: number) => `${x.toFixed(1)} MB`;
  return [
    `soak: ${r.clients} clients for ${(r.durationMs / 1000).toFixed(1)} s`,
    `  ops: ${r.ops} (${(r.ops / (r.durationMs / 1000)).toFixed(0)}/s) ${JSON.stringify(r.opsByKind)}, large bytes ${mb(r.bytesLarge / 1048576)}`,
    `  errors: ${r.errors}${r.firstErrors.length ? ` (${r.firstErrors.join(' | ')})` : ''}`,
    `  fd: baseline ${r.fd.baseline}, peak ${r.fd.peak}, after ${r.fd.after} (slack +${FD_SLACK})`,
    `  RSS: baseline ${mb(r.rssMb.baseline)}, peak ${mb(r.rssMb.peak)}, after ${mb(r.rssMb.after)} (slack +${RSS_SLACK_MB} MB)`,
    `  after a full GC: baseline heap ${mb(r.gcMb.baseline.heap)} / RSS ${mb(r.gcMb.baseline.rss)}; ${r.gcMb.rounds
      .map((m, i) => `round ${i + 1}: heap ${mb(m.heap)} / RSS ${mb(m.rss)}`)
      .join('; ')} (heap slack +${HEAP_SLACK_MB} MB)`,
    `  live objects after the last round: ${JSON.stringify(r.liveObjects)} (ClientSession at most ${LIVE_SESSIONS_SLACK}, TimersList at most ${TIMER_LISTS_SLACK})`,
    `  proxy alive: ${r.proxyAlive}, session_crashed: ${r.crashed}`,
  ].join('\n');
}
