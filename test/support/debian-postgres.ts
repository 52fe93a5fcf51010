/**
 * A PostgreSQL 15 server from Debian's `postgresql-15` package, as a LocalPostgres for the test
 * stack. The client suite needs it for one reason: Debian 12's pg_dump is 15, and pg_dump refuses
 * a server of a newer major version (the embedded PostgreSQL is 18). The endpoint and the proxy in
 * front of it are the same as everywhere else.
 *
 * Run as the `postgres` OS user when we are root (PostgreSQL refuses root), trust from 127.0.0.1
 * (the endpoint already checked the IAM token), the same `admin` and `app` roles as the embedded one.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { freePort, type LocalPostgres } from '../../src/local-endpoint/embedded-postgres.js';
import { ensurePostgresUser, reachableTmpdir } from '../../src/local-endpoint/pg-binaries.js';

function run(file: string, args: string[], opts: Parameters<typeof spawn>[2]): Promise<void> {
  return new Promise((done, fail) => {
    const child = spawn(file, args, { ...opts, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    for (const s of [child.stdout, child.stderr]) s?.on('data', (c: Buffer) => (out += c.toString('utf8')));
    child.once('error', fail);
    child.once('close', (code) =>
      code === 0 ? done() : fail(new Error(`${file} exited ${code}:\n${out.slice(-4000)}`)),
    );
  });
}

export async function startDebianPostgres(binDir: string): Promise<LocalPostgres> {
  const runAs = process.getuid?.() === 0 ? ensurePostgresUser() : undefined;
  const root = mkdtempSync(join(reachableTmpdir(runAs), 'dsql-proxy-pg15-'));
  chmodSync(root, 0o755);
  const dataDir = join(root, 'data');
  mkdirSync(dataDir, { mode: 0o700 });
  if (runAs) chownSync(dataDir, runAs.uid, runAs.gid);
  const spawnOpts = {
    ...(runAs ? { uid: runAs.uid, gid: runAs.gid } : {}),
    cwd: '/',
    env: { ...process.env, LC_ALL: 'C', LANG: 'C' },
  };
  const port = await freePort();
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  const onExit = (): void => {
    if (child?.pid && child.exitCode === null) {
      try {
        process.kill(child.pid, 'SIGQUIT');
      } catch {}
    }
  };
  const stop = async (): Promise<void> => {
    process.off('exit', onExit);
    if (child && child.exitCode === null && child.signalCode === null) {
      child.kill('SIGINT');
      const kill = setTimeout(() => child?.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(kill);
    }
    rmSync(root, { recursive: true, force: true });
  };
  const query = async <R = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<R[]> => {
    const c = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', database: 'postgres' });
    c.on('error', () => {});
    await c.connect();
    try {
      return (await c.query(sql, params)).rows as R[];
    } finally {
      await c.end().catch(() => {});
    }
  };
  try {
    await run(
      join(binDir, 'initdb'),
      [
        `--pgdata=${dataDir}`,
        '--auth=trust',
        '--username=postgres',
        '--encoding=UTF8',
        '--locale=C',
        '--no-sync',
      ],
      spawnOpts,
    );
    writeFileSync(join(dataDir, 'pg_hba.conf'), 'host all all 127.0.0.1/32 trust\n');
    process.on('exit', onExit);
    const pgChild = spawn(
      join(binDir, 'postgres'),
      [
        '-D',
        dataDir,
        '-p',
        String(port),
        '-c',
        'listen_addresses=127.0.0.1',
        '-c',
        'unix_socket_directories=',
        '-c',
        'fsync=off',
        '-c',
        'synchronous_commit=off',
      ],
      { ...spawnOpts, stdio: ['ignore', 'ignore', 'pipe'] },
    );
    child = pgChild;
    let log = '';
    pgChild.stderr?.on('data', (c: Buffer) => {
      log = (log + c.toString('utf8')).slice(-4000);
    });
    exited = new Promise((done) => pgChild.once('exit', () => done()));
    const deadline = Date.now() + 30_000;
    for (;;) {
      if (pgChild.exitCode !== null) throw new Error(`postgres 15 exited during startup: ${log}`);
      try {
        await query('select 1');
        break;
      } catch (err) {
        if (Date.now() > deadline)
          throw new Error(`postgres 15 did not start: ${(err as Error).message}\n${log}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    }
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
  return { host: '127.0.0.1', port, query, dataDir, stop };
}
