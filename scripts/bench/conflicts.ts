/**
 * `npm run bench:conflicts`: a conflict-heavy workload through the real proxy, with conflict retry off
 * and on, side by side. The local endpoint with DSQL's rules on makes conflicts real (40001, OC000);
 * N clients update one of 4 hot rows at random for S seconds, in autocommit and in two-statement
 * transactions (`BEGIN; UPDATE; UPDATE; COMMIT`). Reported per mode: errors the clients saw,
 * committed transactions per second, p50/p99 latency of committed ones, and whether the sum of the
 * counters equals the commits (it must, in every mode).
 *
 *   npm run bench:conflicts -- [--clients 16] [--seconds 5] [--reps 3]
 */
import { pathToFileURL } from 'node:url';
import pg from 'pg';
import { startProxyProcess } from '../../test/support/proxy-process.js';
import { startTestStack } from '../../test/support/stack.js';

interface Options {
  clients: number;
  seconds: number;
  reps: number;
}

interface Result {
  mode: string;
  workload: string;
  commits: number;
  errors: number;
  tps: number;
  p50: number;
  p99: number;
  exact: boolean;
}

function options(argv: string[]): Options {
  const o: Options = { clients: 16, seconds: 5, reps: 3 };
  for (let i = 0; i < argv.length; i++) {
    const v = Number(argv[i + 1]);
    if (argv[i] === '--clients') o.clients = v;
    else if (argv[i] === '--seconds') o.seconds = v;
    else if (argv[i] === '--reps') o.reps = v;
    else continue;
    i++;
  }
  return o;
}

const HOT_ROWS = 4;

async function workload(
  host: string,
  port: number,
  o: Options,
  txn: boolean,
): Promise<{ commits: number; errors: number; latencies: number[] }> {
  const latencies: number[] = [];
  let errors = 0;
  const until = Date.now() + o.seconds * 1000;
  await Promise.all(
    Array.from({ length: o.clients }, async () => {
      const c = new pg.Client({ host, port, user: 'app', password: '' });
      await c.connect();
      try {
        while (Date.now() < until) {
          const id = 1 + Math.floor(Math.random() * HOT_ROWS);
          const t0 = performance.now();
          try {
            if (txn) {
              await c.query('BEGIN');
              await c.query(`UPDATE bench_hot SET n = n + 1 WHERE id = ${id}`);
              await c.query(`UPDATE bench_hot SET m = m + 1 WHERE id = ${id}`);
              await c.query('COMMIT');
            } else {
              await c.query(`UPDATE bench_hot SET n = n + 1, m = m + 1 WHERE id = ${id}`);
            }
            latencies.push(performance.now() - t0);
          } catch {
            errors++;
            if (txn) await c.query('ROLLBACK').catch(() => {});
          }
        }
      } finally {
        await c.end();
      }
    }),
  );
  return { commits: latencies.length, errors, latencies };
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/**
 * Runs the workload and returns its table (markdown). `npm run bench` runs it after its own
 * measurements (a full run, or with --conflicts); `npm run bench:conflicts` runs it alone.
 */
export async function runConflictBench(
  o: Options,
  log: (line: string) => void = (l) => console.log(l),
): Promise<string> {
  const stack = await startTestStack();
  const results: Result[] = [];
  try {
    await stack.postgres.query(`
      drop table if exists bench_hot;
      create table bench_hot (id int primary key, n int not null, m int not null);
      insert into bench_hot select g, 0, 0 from generate_series(1, ${HOT_ROWS}) g;
      grant all on bench_hot to app;
    `);
    const proxies = {
      off: await startProxyProcess(stack, { args: ['--conflict-retry', 'off'] }),
      on: await startProxyProcess(stack),
    };
    for (let rep = 0; rep < o.reps; rep++) {
      for (const txn of [false, true]) {
        for (const mode of ['off', 'on'] as const) {
          await stack.postgres.query('update bench_hot set n = 0, m = 0');
          const p = proxies[mode];
          const r = await workload(p.host, p.port, o, txn);
          const [sum] = await stack.postgres.query<{ n: string; m: string }>(
            'select sum(n) as n, sum(m) as m from bench_hot',
          );
          const sorted = r.latencies.sort((a, b) => a - b);
          const res: Result = {
            mode: mode === 'on' ? 'retry on (transactions)' : 'retry off',
            workload: txn ? 'BEGIN; 2 UPDATEs; COMMIT' : 'autocommit UPDATE',
            commits: r.commits,
            errors: r.errors,
            tps: r.commits / o.seconds,
            p50: percentile(sorted, 50),
            p99: percentile(sorted, 99),
            exact: Number(sum?.n) === r.commits && Number(sum?.m) === r.commits,
          };
          results.push(res);
          log(JSON.stringify({ rep, ...res }));
        }
      }
    }
    await proxies.off.stop();
    await proxies.on.stop();
  } finally {
    await stack.stop();
  }
  const lines = [
    `${o.clients} clients on ${HOT_ROWS} hot rows, ${o.seconds} s per run, ${o.reps} interleaved repetitions (medians):`,
    '',
    '| workload | mode | committed/s | errors seen by clients per run | p50 ms | p99 ms | sums exact |',
    '|---|---|---|---|---|---|---|',
  ];
  for (const workloadName of ['autocommit UPDATE', 'BEGIN; 2 UPDATEs; COMMIT']) {
    for (const mode of ['retry off', 'retry on (transactions)']) {
      const rs = results.filter((r) => r.workload === workloadName && r.mode === mode);
      const med = (f: (r: Result) => number) =>
        percentile(
          rs.map(f).sort((a, b) => a - b),
          50,
        );
      lines.push(
        `| ${workloadName} | ${mode} | ${med((r) => r.tps).toFixed(0)} | ${med((r) => r.errors).toFixed(0)} | ${med((r) => r.p50).toFixed(2)} | ${med((r) => r.p99).toFixed(2)} | ${rs.every((r) => r.exact) ? 'yes' : 'NO'} |`,
      );
    }
  }
  return lines.join('\n');
}

export type ConflictBenchOptions = Options;

/** `npm run bench:conflicts` (this file run directly). */
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  runConflictBench(options(process.argv.slice(2)))
    .then((table) => console.log(`\n${table}`))
    .catch((err) => {
      console.error(err);
      process.exit(1);
    });
}
