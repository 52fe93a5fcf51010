/**
 * Runs the PostgreSQL command-line clients (psql, pgbench from postgresql-client) against the
 * proxy, with a clean libpq environment, and captures stdout, stderr and the exit code.
 *
 * The tools are required: CI installs them, so a missing binary fails the suite with a clear
 * message instead of skipping it.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

export type Tool = 'psql' | 'pgbench' | 'pg_dump' | 'pg_restore';

export const INSTALL_HINT =
  'install the PostgreSQL command-line clients: `apt-get install -y postgresql-client` ' +
  '(Debian/Ubuntu; the client suite needs psql, pgbench, pg_dump and pg_restore on PATH)';

/** Absolute path of a tool on PATH, or a thrown Error that says how to install it. */
export function requireTool(tool: Tool): string {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, tool);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  throw new Error(`${tool} was not found on PATH: ${INSTALL_HINT}`);
}

/**
 * Debian's own Python: psycopg 3 comes from the `python3-psycopg` package, which only that
 * interpreter sees (a pyenv or venv python3 earlier on PATH would not have it).
 */
export const DEBIAN_PYTHON = '/usr/bin/python3';
/** pgjdbc from Debian's `libpostgresql-jdbc-java`. */
export const PGJDBC_JAR = '/usr/share/java/postgresql.jar';
/** Debian 12's PostgreSQL 15 server, the backend for the pg_dump round trip (see pgdump test). */
export const PG15_BIN = '/usr/lib/postgresql/15/bin';

export type Extra = 'psycopg' | 'pgjdbc' | 'postgresql-15';

const EXTRA_HINT: Record<Extra, string> = {
  psycopg: 'apt-get install -y --no-install-recommends python3-psycopg',
  pgjdbc: 'apt-get install -y --no-install-recommends libpostgresql-jdbc-java default-jdk-headless',
  'postgresql-15': 'apt-get install -y --no-install-recommends postgresql-15',
};

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * Checks a client that is not a libpq tool; throws with the apt-get line when it is missing (CI
 * installs them all, so a missing one fails the suite instead of skipping it).
 */
export function requireExtra(extra: Extra): void {
  const missing = (what: string): never => {
    throw new Error(`${what}: install it with \`${EXTRA_HINT[extra]}\` (.ci/run does)`);
  };
  if (extra === 'psycopg') {
    if (!executable(DEBIAN_PYTHON)) missing(`${DEBIAN_PYTHON} was not found`);
    const r = spawnSync(DEBIAN_PYTHON, ['-c', 'import psycopg'], { encoding: 'utf8' });
    if (r.status !== 0) missing(`${DEBIAN_PYTHON} cannot import psycopg (${(r.stderr ?? '').trim()})`);
  } else if (extra === 'pgjdbc') {
    for (const tool of ['java', 'javac']) {
      const found = (process.env.PATH ?? '').split(delimiter).some((d) => d && executable(join(d, tool)));
      if (!found) missing(`${tool} was not found on PATH`);
    }
    try {
      accessSync(PGJDBC_JAR, constants.R_OK);
    } catch {
      missing(`${PGJDBC_JAR} was not found`);
    }
  } else {
    for (const bin of ['initdb', 'postgres']) {
      if (!executable(join(PG15_BIN, bin))) missing(`${join(PG15_BIN, bin)} was not found`);
    }
  }
}

export interface Target {
  host: string;
  port: number;
}

export interface ConnOptions {
  user: string;
  /** Omitted: no password is offered (psql/pgbench run with -w, they never prompt). */
  password?: string;
  database?: string;
  /** libpq sslmode; omitted: libpq's default (prefer). */
  sslmode?: string;
  /** libpq sslrootcert (PGSSLROOTCERT): the CA file for verify-ca/verify-full. */
  sslrootcert?: string;
  /** libpq hostaddr (PGHOSTADDR): dial this address, keep `host` for TLS name checks. */
  hostaddr?: string;
}

/**
 * A libpq environment with nothing inherited from the machine: no PG* variables, no ~/.pgpass,
 * no ~/.psqlrc or service file, English messages.
 */
export function pgEnv(target: Target, conn: ConnOptions): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v === undefined || k.startsWith('PG') || k.startsWith('LC_') || k === 'LANG' || k === 'LANGUAGE') {
      continue;
    }
    env[k] = v;
  }
  Object.assign(env, {
    LANG: 'C.UTF-8',
    LC_ALL: 'C.UTF-8',
    PGHOST: target.host,
    PGPORT: String(target.port),
    PGUSER: conn.user,
    PGDATABASE: conn.database ?? 'postgres',
    PGCONNECT_TIMEOUT: '10',
    PGPASSFILE: '/dev/null',
    PGSERVICEFILE: '/dev/null',
    PGCLIENTENCODING: 'UTF8',
    PGAPPNAME: 'dsql-proxy-client-suite',
  });
  if (conn.password !== undefined) env.PGPASSWORD = conn.password;
  if (conn.sslmode !== undefined) env.PGSSLMODE = conn.sslmode;
  if (conn.sslrootcert !== undefined) env.PGSSLROOTCERT = conn.sslrootcert;
  if (conn.hostaddr !== undefined) env.PGHOSTADDR = conn.hostaddr;
  return env;
}

export interface ToolResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
}

export interface RunOptions {
  /** Written to the tool's stdin, which is then closed (stdin is always closed). */
  input?: string;
  /** Kill (SIGKILL) the tool after this long; the result then has signal SIGKILL. Default 60 s. */
  timeoutMs?: number;
  /** Leave stdin open (ignores `input`): the test writes to child.stdin over time and ends it. */
  interactive?: boolean;
}

export interface RunningTool {
  child: ChildProcess;
  /** Everything written to stderr so far. */
  stderr(): string;
  result: Promise<ToolResult>;
}

/** Starts a tool; the promise rejects only when the tool cannot be started at all. */
export function spawnTool(
  tool: Tool,
  args: string[],
  env: Record<string, string>,
  opts: RunOptions = {},
): RunningTool {
  const bin = requireTool(tool);
  const started = performance.now();
  const child = spawn(bin, args, { env, stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout?.setEncoding('utf8').on('data', (c: string) => {
    stdout += c;
  });
  child.stderr?.setEncoding('utf8').on('data', (c: string) => {
    stderr += c;
  });
  child.stdin?.on('error', () => {}); // the tool may exit before reading all of its input
  if (!opts.interactive) child.stdin?.end(opts.input ?? '');
  const result = new Promise<ToolResult>((resolve, reject) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 60_000);
    child.once('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(
        err.code === 'ENOENT' ? new Error(`${tool} could not be started (${bin}): ${INSTALL_HINT}`) : err,
      );
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, ms: Math.round(performance.now() - started) });
    });
  });
  return { child, stderr: () => stderr, result };
}

export function runTool(
  tool: Tool,
  args: string[],
  env: Record<string, string>,
  opts: RunOptions = {},
): Promise<ToolResult> {
  return spawnTool(tool, args, env, opts).result;
}

/** psql with no psqlrc (-X), never prompting for a password (-w), stopping at the first error. */
export function psql(
  target: Target,
  conn: ConnOptions,
  args: string[],
  opts: RunOptions = {},
): Promise<ToolResult> {
  return runTool('psql', ['-X', '-w', '-v', 'ON_ERROR_STOP=1', ...args], pgEnv(target, conn), opts);
}

export function pgDump(
  target: Target,
  conn: ConnOptions,
  args: string[],
  opts: RunOptions = {},
): Promise<ToolResult> {
  return runTool('pg_dump', args, pgEnv(target, conn), opts);
}

export function pgRestore(
  target: Target,
  conn: ConnOptions,
  args: string[],
  opts: RunOptions = {},
): Promise<ToolResult> {
  return runTool('pg_restore', args, pgEnv(target, conn), opts);
}

export function pgbench(
  target: Target,
  conn: ConnOptions,
  args: string[],
  opts: RunOptions = {},
): Promise<ToolResult> {
  return runTool('pgbench', args, pgEnv(target, conn), opts);
}

/** A readable dump of a result for assertion messages. */
export function describeResult(r: ToolResult): string {
  return `exit ${r.code}${r.signal ? ` (${r.signal})` : ''} after ${r.ms} ms\n--- stdout ---\n${r.stdout}\n--- stderr ---\n${r.stderr}`;
}

export interface PgbenchSummary {
  tps: number;
  processed: number;
  failed: number | undefined;
  queryMode: string | undefined;
}

/** Parses pgbench's run summary; throws with the full output when a line is missing. */
export function parsePgbench(r: ToolResult): PgbenchSummary {
  const out = r.stdout;
  const tps = /^tps = ([0-9.]+)/m.exec(out)?.[1];
  const processed = /^number of transactions actually processed: (\d+)/m.exec(out)?.[1];
  if (tps === undefined || processed === undefined) {
    throw new Error(`pgbench printed no summary:\n${describeResult(r)}`);
  }
  const failed = /^number of failed transactions: (\d+)/m.exec(out)?.[1];
  return {
    tps: Number(tps),
    processed: Number(processed),
    failed: failed === undefined ? undefined : Number(failed),
    queryMode: /^query mode: (\S+)/m.exec(out)?.[1],
  };
}

/** DSQL's limit on rows changed per transaction: the pgbench fixture loads in batches of this size. */
export const DSQL_ROWS_PER_TRANSACTION = 3000;

/**
 * The psql script that makes pgbench's four tables at scale 1 the way DSQL accepts them, for
 * `pgbench -n` runs instead of `pgbench -i` (which DSQL refuses: TRUNCATE, one 100,000-row COPY
 * transaction, VACUUM, foreign keys with `-I f`). Primary keys in CREATE TABLE, an identity key on
 * pgbench_history (pgbench names its columns when it inserts), and the 100,000 accounts loaded by
 * `\copy` in autocommit batches of 3,000 rows.
 */
export function pgbenchTablesScript(): string {
  const lines = [
    'drop table if exists pgbench_history, pgbench_tellers, pgbench_accounts, pgbench_branches;',
    'create table pgbench_branches (bid int primary key, bbalance int not null, filler char(88));',
    'create table pgbench_tellers (tid int primary key, bid int not null, tbalance int not null, filler char(84));',
    'create table pgbench_accounts (aid int primary key, bid int not null, abalance int not null, filler char(84));',
    'create table pgbench_history (id bigint generated by default as identity primary key, tid int, bid int, aid int, delta int, mtime timestamp, filler char(22));',
    'insert into pgbench_branches values (1, 0, null);',
    'insert into pgbench_tellers select t, 1, 0, null from generate_series(1, 10) t;',
  ];
  const accounts = 100_000;
  for (let first = 1; first <= accounts; first += DSQL_ROWS_PER_TRANSACTION) {
    lines.push('\\copy pgbench_accounts (aid, bid, abalance, filler) from stdin');
    const last = Math.min(first + DSQL_ROWS_PER_TRANSACTION - 1, accounts);
    for (let aid = first; aid <= last; aid++) lines.push(`${aid}\t1\t0\t`);
    lines.push('\\.');
  }
  lines.push("select (select count(*) from pgbench_accounts) || ' accounts';");
  return `${lines.join('\n')}\n`;
}

/**
 * pgbench run flags for those tables: no vacuum (`-n`, DSQL refuses VACUUM), the simple-update script
 * (`-N`: with TPC-B's one branch row, concurrent clients conflict on it all the time), and retries
 * of DSQL's 40001 conflicts (`--max-tries`), as DSQL asks applications to retry.
 */
export const PGBENCH_RUN: readonly string[] = ['-N', '--max-tries', '10', '-n'];

/** Makes the pgbench tables with psql through `target` (see pgbenchTablesScript); returns psql's result. */
export function createPgbenchTables(target: Target, conn: ConnOptions): Promise<ToolResult> {
  return psql(target, conn, ['-A', '-t', '-q', '-f', '-'], {
    input: pgbenchTablesScript(),
    timeoutMs: 120_000,
  });
}

/** What a program printed and how it ended (runProgram). */
export interface ProgramRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a program without blocking the event loop (the test endpoint lives in this process). */
export function runProgram(cmd: string, args: string[], timeoutMs = 60_000): Promise<ProgramRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, LC_ALL: 'C.UTF-8' },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** The JSON object a check program printed on its last line; fails the test if it exited non-zero. */
export function lastJsonLine(r: ProgramRun, what: string): Record<string, unknown> {
  assert.equal(
    r.code,
    0,
    `${what} exited ${r.code}\n--- stdout ---\n${r.stdout}\n--- stderr ---\n${r.stderr}`,
  );
  const line = r.stdout.trim().split('\n').at(-1) ?? '';
  try {
    return JSON.parse(line) as Record<string, unknown>;
  } catch {
    assert.fail(`${what} printed no JSON:\n${r.stdout}\n${r.stderr}`);
  }
}
