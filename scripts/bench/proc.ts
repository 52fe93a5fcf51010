/**
 * Process helpers for the benchmark: run a command to completion, start a long-lived server process
 * and wait until it answers, read a process's CPU time and resident memory from /proc.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { accessSync, constants, readFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import pg from 'pg';
import { rssBytes as processRss } from '../../test/support/proxy-memory.js';

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
  /** Wall-clock milliseconds from spawn to exit. */
  ms: number;
}

/** Absolute path of a command on PATH, or undefined. */
export function which(cmd: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, cmd);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

export function run(
  file: string,
  args: string[],
  opts: { env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number; input?: string } = {},
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(file, args, {
      env: opts.env ?? process.env,
      cwd: opts.cwd ?? process.cwd(),
      stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (c: Buffer) => {
      stdout += c.toString('utf8');
    });
    child.stderr?.on('data', (c: Buffer) => {
      stderr = (stderr + c.toString('utf8')).slice(-16_384);
    });
    if (opts.input !== undefined) child.stdin?.end(opts.input);
    const timer =
      opts.timeoutMs === undefined
        ? undefined
        : setTimeout(() => {
            child.kill('SIGKILL');
          }, opts.timeoutMs);
    child.once('error', (err) => {
      if (timer) clearTimeout(timer);
      reject(err);
    });
    child.once('close', (code) => {
      if (timer) clearTimeout(timer);
      resolve({ code, stdout, stderr, ms: performance.now() - started });
    });
  });
}

/** run(), but a non-zero exit is an error that carries the output. */
export async function mustRun(
  file: string,
  args: string[],
  opts: Parameters<typeof run>[2] = {},
): Promise<RunResult> {
  const r = await run(file, args, opts);
  if (r.code !== 0) {
    throw new Error(
      `${file} ${args.join(' ')} exited ${r.code}: ${(r.stderr || r.stdout).trim().slice(-2000)}`,
    );
  }
  return r;
}

export interface Server {
  name: string;
  child: ChildProcess;
  pid: number;
  /** Last lines of its stderr, for error messages. */
  logTail(): string;
  stop(signal?: NodeJS.Signals): Promise<void>;
}

/** Start a long-running process; it is SIGKILLed when this process exits. */
export function startServer(name: string, file: string, args: string[], env: NodeJS.ProcessEnv): Server {
  const child = spawn(file, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let tail = '';
  const keep = (c: Buffer): void => {
    tail = (tail + c.toString('utf8')).slice(-8192);
    if (process.env.BENCH_DEBUG) process.stderr.write(`[${name}] ${c.toString('utf8')}`);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  child.on('error', (err) => {
    tail += `\nspawn error: ${err.message}`;
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const onExit = (): void => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  };
  process.on('exit', onExit);
  if (child.pid === undefined) throw new Error(`could not start ${name} (${file})`);
  return {
    name,
    child,
    pid: child.pid,
    logTail: () => tail,
    stop: async (signal: NodeJS.Signals = 'SIGTERM') => {
      process.off('exit', onExit);
      if (child.exitCode !== null || child.signalCode !== null) return;
      const kill = setTimeout(() => child.kill('SIGKILL'), 15_000);
      child.kill(signal);
      await exited;
      clearTimeout(kill);
    },
  };
}

export interface PgTarget {
  host: string;
  port: number;
  user: string;
  password?: string;
  database: string;
  ssl?: boolean;
}

/** One short session: connect, run SQL, close. */
export async function pgQuery(t: PgTarget, sql: string): Promise<Record<string, unknown>[]> {
  const c = new pg.Client({
    host: t.host,
    port: t.port,
    user: t.user,
    password: t.password,
    database: t.database,
    ssl: t.ssl ? { rejectUnauthorized: false } : false,
    connectionTimeoutMillis: 10_000,
  });
  c.on('error', () => {});
  await c.connect();
  try {
    return (await c.query(sql)).rows as Record<string, unknown>[];
  } finally {
    await c.end().catch(() => {});
  }
}

/** Poll until a query works through the target, or fail with the server's log tail. */
export async function waitReady(t: PgTarget, server: Server | undefined, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    if (server && (server.child.exitCode !== null || server.child.signalCode !== null)) {
      throw new Error(`${server.name} exited during startup: ${server.logTail().trim().slice(-2000)}`);
    }
    try {
      await pgQuery(t, 'select 1');
      return;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      throw new Error(
        `${server?.name ?? 'target'} not ready after ${timeoutMs} ms: ${(last as Error).message}\n${server?.logTail() ?? ''}`,
      );
    }
    await sleep(200);
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

let clkTck: number | undefined;
/** Kernel clock ticks per second (utime/stime unit). */
export function clockTicks(): number {
  if (clkTck === undefined) {
    try {
      clkTck = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clkTck = 100;
    }
  }
  return clkTck;
}

/** utime + stime of a process (all its threads), in seconds. */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The command name (field 2) may contain spaces: fields are counted after its closing paren.
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // rest[0] is field 3 (state); utime is field 14, stime field 15.
  const utime = Number(rest[11]);
  const stime = Number(rest[12]);
  return (utime + stime) / clockTicks();
}

/** utime + stime of one thread of a process (the main thread's id is the pid), in seconds. */
export function threadCpuSeconds(pid: number, tid: number): number {
  const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(rest[11]) + Number(rest[12])) / clockTicks();
}

/** VmRSS of a process in bytes. */
export function rssBytes(pid: number): number {
  const rss = processRss(pid);
  if (Number.isNaN(rss)) throw new Error(`no VmRSS for pid ${pid}`);
  return rss;
}

/**
 * The environment of a benchmarked proxy: static fake AWS credentials (the benchmark's PostgreSQL
 * trusts its user and ignores the token), and nothing from this shell that would change the proxy:
 * no session token or profile, no DSQL_PROXY_* settings, no NODE_OPTIONS.
 */
export function benchProxyEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    AWS_ACCESS_KEY_ID: 'AKIDBENCHBENCHBENCH0',
    AWS_SECRET_ACCESS_KEY: 'benchbenchbenchbenchbenchbenchbenchbench',
    AWS_EC2_METADATA_DISABLED: 'true',
    NODE_OPTIONS: '',
  };
  delete env.AWS_SESSION_TOKEN;
  delete env.AWS_PROFILE;
  for (const k of Object.keys(env)) if (k.startsWith('DSQL_PROXY_')) delete env[k];
  return env;
}

/** The CLI arguments of a benchmarked proxy: TLS to `connectTo` under the DSQL-like `endpoint` name. */
export function benchProxyArgs(o: {
  endpoint: string;
  connectTo: string;
  caFile: string;
  port: number;
  negotiation: 'direct' | 'postgres';
  extra: string[];
}): string[] {
  return [
    '--endpoint',
    o.endpoint,
    '--connect-to',
    o.connectTo,
    '--ca-file',
    o.caFile,
    '--listen',
    `127.0.0.1:${o.port}`,
    // Benchmark the relay, not DSQL's connection-rate limit (the default 100/s would cap -C).
    '--connect-rate',
    '0',
    '--log-level',
    'warn',
    '--upstream-ssl-negotiation',
    o.negotiation,
    ...o.extra,
  ];
}

/**
 * The statements psql ran between `\timing on` and `\timing off`, as psql's own timings in ms
 * ("Time: 941.114 ms", or "Time: 1079.203 ms (00:01.079)" past a second), in order.
 */
export function psqlTimingsMs(stdout: string): number[] {
  const out: number[] = [];
  for (const line of stdout.split('\n')) {
    const m = /^Time: (\d+(?:\.\d+)?) ms\b/.exec(line);
    if (m) out.push(Number(m[1]));
  }
  return out;
}

/** psql arguments that run `steps` in one session; psql times only the steps marked `timed`. */
export function psqlSteps(steps: { command: string; timed?: boolean }[]): string[] {
  const args = ['-X', '-q', '-v', 'ON_ERROR_STOP=1'];
  for (const s of steps) {
    if (s.timed) args.push('-c', '\\timing on', '-c', s.command, '-c', '\\timing off');
    else args.push('-c', s.command);
  }
  return args;
}
