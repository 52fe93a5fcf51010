/**
 * Drivers through the proxy, each on the four corners of {SCRAM-SHA-256, md5} × {local TLS off, on}
 * (TLS on: the driver verifies the generated CA and the name `localhost`):
 *
 * - node-postgres: Client (parameters, named prepared statements, transactions, errors) and a Pool
 *   under concurrency;
 * - postgres.js: tagged queries, sql.begin transactions, prepared statements, concurrency;
 * - psycopg 3 (Debian's python3-psycopg, run by /usr/bin/python3): test/clients/python/psycopg_check.py;
 * - pgjdbc (Debian's libpostgresql-jdbc-java): test/clients/java/JdbcCheck.java, compiled here.
 *
 * The Python and Java programs print JSON; the assertions are here.
 */
import assert from 'node:assert/strict';

import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type tls from 'node:tls';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import postgres from 'postgres';
import { assertNoSecrets } from '../support/secrets.js';
import { startTestStack, type TestStack } from '../support/stack.js';
import { tempDir } from '../support/temp-dirs.js';
import { AUTHS, type CompatProxy, PASSWORDS, startCompatProxy } from './compat.js';
import { DEBIAN_PYTHON, lastJsonLine, PGJDBC_JAR, requireExtra, runProgram } from './tools.js';

const HERE = fileURLToPath(new URL('.', import.meta.url));
const PY_SCRIPT = join(HERE, 'python', 'psycopg_check.py');
const JAVA_SRC = join(HERE, 'java', 'JdbcCheck.java');
const classes = tempDir('jdbc');

let stack: TestStack | undefined;
const proxies: CompatProxy[] = [];

const run = runProgram;
const json = lastJsonLine;

before(async () => {
  // Fail fast, with the apt-get line, before starting anything (CI installs them).
  requireExtra('psycopg');
  requireExtra('pgjdbc');
  const javac = run('javac', ['-d', classes, '-cp', PGJDBC_JAR, JAVA_SRC]);
  stack = await startTestStack();
  const compiled = await javac;
  assert.equal(compiled.code, 0, `javac failed:\n${compiled.stdout}${compiled.stderr}`);
});

after(async () => {
  for (const p of proxies) await p.proxy.stop();
  if (stack) {
    assertNoSecrets(
      proxies.flatMap((p) => p.proxy.logs.map((l) => l.raw)),
      {
        credentials: stack.credentials,
        tokens: stack.endpoint.logins.map((l) => l.token),
        passwords: Object.values(PASSWORDS),
      },
    );
  }
  await stack?.stop();
});

for (const tlsOn of [false, true]) {
  for (const auth of AUTHS) {
    const tag = `${auth === 'md5' ? 'md5' : 'scram'}_${tlsOn ? 'tls' : 'plain'}`;
    describe(`drivers through the proxy (${auth}, client TLS ${tlsOn ? 'on' : 'off'})`, () => {
      let cp: CompatProxy | undefined;
      const up = (): CompatProxy => {
        assert.ok(cp, 'the proxy is running');
        return cp;
      };
      before(async () => {
        assert.ok(stack, 'the stack is running');
        cp = await startCompatProxy(stack, { auth, tls: tlsOn });
        proxies.push(cp);
      });

      const pgConfig = (cp: CompatProxy): pg.ClientConfig => ({
        host: '127.0.0.1',
        port: cp.proxy.port,
        user: 'app',
        password: PASSWORDS.app,
        database: 'postgres',
        ...(tlsOn ? { ssl: { ca: cp.caPem, servername: 'localhost' } } : {}),
      });

      test('node-postgres Client: parameters, named prepared statements, transactions, errors', async () => {
        const cp = up();
        const table = `drv_pg_${tag}`;
        const seen = cp.proxy.logs.length;
        const client = new pg.Client(pgConfig(cp));
        await client.connect();
        try {
          const stream = (client as unknown as { connection: { stream: tls.TLSSocket } }).connection.stream;
          assert.equal(Boolean(stream.encrypted), tlsOn, 'the socket is TLS exactly when asked for');
          if (tlsOn) assert.match(String(stream.getProtocol()), /^TLSv1\.[23]$/);
          const auth = cp.proxy.logs.slice(seen).find((l) => l.json?.event === 'authenticated')?.json;
          assert.equal(auth?.method, cp.auth);

          await client.query(`drop table if exists ${table}`);
          await client.query(`create table ${table} (id int primary key, name text not null, n bigint)`);
          const insert = { name: `ins_${tag}`, text: `insert into ${table} values ($1, $2, $3)` };
          for (let i = 1; i <= 50; i++) await client.query({ ...insert, values: [i, `name ${i}`, i * 3] });
          const prepared = await client.query<{ n: string }>(
            "select count(*)::text as n from pg_prepared_statements where name like 'ins_%'",
          );
          assert.equal(prepared.rows[0]?.n, '1', 'one named server-side statement, reused 50 times');

          await client.query('begin');
          await client.query(`update ${table} set n = 0 where id <= 5`);
          await client.query('commit');
          await client.query('begin');
          await client.query(`delete from ${table}`);
          await client.query('rollback');
          const r = await client.query<{ count: string; zeros: string; sum: string }>(
            `select count(*) as count, count(*) filter (where n = 0) as zeros, sum(n) as sum from ${table}`,
          );
          assert.deepEqual(r.rows[0], { count: '50', zeros: '5', sum: String(3 * ((50 * 51) / 2 - 15)) });

          await assert.rejects(client.query('select 1/0'), (e: pg.DatabaseError) => e.code === '22012');
          const after = await client.query<{ x: number }>('select $1::int + 1 as x', [41]);
          assert.equal(after.rows[0]?.x, 42);
        } finally {
          await client.end();
        }
      });

      test('node-postgres Pool: 40 concurrent transactions over at most 6 sessions', async () => {
        const cp = up();
        const table = `drv_pool_${tag}`;
        const pool = new pg.Pool({ ...pgConfig(cp), max: 6 });
        try {
          await pool.query(`drop table if exists ${table}`);
          await pool.query(`create table ${table} (id int primary key, pid int not null)`);
          const work = Array.from({ length: 40 }, async (_, i) => {
            const c = await pool.connect();
            try {
              await c.query('begin');
              await c.query('select pg_sleep(0.02)');
              await c.query(`insert into ${table} values ($1, pg_backend_pid())`, [i]);
              await c.query(i % 10 === 9 ? 'rollback' : 'commit');
            } finally {
              c.release();
            }
          });
          await Promise.all(work);
          const r = await pool.query<{ rows: string; pids: string }>(
            `select count(*) as rows, count(distinct pid) as pids from ${table}`,
          );
          assert.equal(r.rows[0]?.rows, '36', '4 of 40 rolled back');
          const pids = Number(r.rows[0]?.pids);
          assert.ok(pids > 1 && pids <= 6, `the pool spread the work over its sessions (${pids})`);
        } finally {
          await pool.end();
        }
      });

      test('postgres.js: tagged queries, sql.begin, prepared statements, concurrency', async () => {
        const cp = up();
        const table = `drv_pjs_${tag}`;
        const sql = postgres({
          host: '127.0.0.1',
          port: cp.proxy.port,
          user: 'app',
          pass: PASSWORDS.app,
          database: 'postgres',
          max: 4,
          prepare: true,
          onnotice: () => {},
          ssl: tlsOn ? { ca: cp.caPem, servername: 'localhost' } : false,
        });
        try {
          await sql.unsafe(`drop table if exists ${table}`);
          await sql.unsafe(`create table ${table} (id int primary key, name text, tags text[])`);
          await sql.begin(async (tx) => {
            for (let i = 1; i <= 30; i++) {
              await tx`insert into ${tx(table)} ${tx({ id: i, name: `n${i}`, tags: ['a', `t${i % 3}`] })}`;
            }
          });
          await assert.rejects(
            sql.begin(async (tx) => {
              await tx`delete from ${tx(table)}`;
              throw new Error('roll back');
            }),
            /roll back/,
          );
          const rows = await Promise.all(
            Array.from(
              { length: 30 },
              (_, i) => sql`select name, tags from ${sql(table)} where id = ${i + 1}`,
            ),
          );
          assert.deepEqual(
            rows.map((r) => r[0]?.name),
            Array.from({ length: 30 }, (_, i) => `n${i + 1}`),
          );
          assert.deepEqual(rows[4]?.[0]?.tags, ['a', 't2']);
          const [prep] = await sql`select count(*)::int as n from pg_prepared_statements`;
          assert.ok(Number(prep?.n) >= 1, 'postgres.js used named server-side statements');
          await assert.rejects(sql`select 1/0`, (e: { code?: string }) => e.code === '22012');
          const [{ x } = { x: 0 }] = await sql<{ x: number }[]>`select ${41}::int + 1 as x`;
          assert.equal(x, 42);
        } finally {
          await sql.end({ timeout: 5 });
        }
      });

      test('psycopg 3 (python3-psycopg): executemany, COPY, transactions, prepare=True', async () => {
        const cp = up();
        const conninfo = [
          tlsOn ? 'host=localhost hostaddr=127.0.0.1' : 'host=127.0.0.1',
          `port=${cp.proxy.port}`,
          'user=app',
          `password='${PASSWORDS.app}'`,
          'dbname=postgres',
          tlsOn ? `sslmode=verify-full sslrootcert=${cp.caFile}` : 'sslmode=prefer',
        ].join(' ');
        const out = json(
          await run(DEBIAN_PYTHON, [PY_SCRIPT, conninfo, `drv_py_${tag}`]),
          'psycopg_check.py',
        );
        assert.equal(out.user, 'app');
        assert.equal(out.ssl, tlsOn);
        assert.deepEqual(out.copy_out, [
          ['1', 'name 1'],
          ['150', 'copied \t150'],
          ['300', 'copied \t300'],
        ]);
        assert.equal(out.count, 300);
        assert.equal(out.sum, '1262.50', 'sum(i / 4) for i in 1..100, numeric');
        assert.deepEqual(out.after_tx, [300, 10]);
        assert.deepEqual(out.prepared_names, ['name 1', 'name 2', 'name 3', 'copied \t150']);
        assert.equal(out.prepared_server_side, 1, 'one server-side prepared statement, reused');
        assert.equal(out.error_sqlstate, '22012');
        assert.equal(out.after_error, 42);
      });

      test('pgjdbc (libpostgresql-jdbc-java): batch, transactions, server-side PreparedStatement, getTables', async () => {
        const cp = up();
        const table = `drv_jdbc_${tag}`;
        const url = tlsOn
          ? `jdbc:postgresql://localhost:${cp.proxy.port}/postgres?sslmode=verify-full&sslrootcert=${cp.caFile}`
          : `jdbc:postgresql://127.0.0.1:${cp.proxy.port}/postgres?sslmode=disable`;
        const out = json(
          await run('java', [
            '-cp',
            `${PGJDBC_JAR}:${classes}`,
            'JdbcCheck',
            url,
            'app',
            PASSWORDS.app,
            table,
          ]),
          'JdbcCheck',
        );
        assert.equal(out.user, 'app');
        assert.equal(out.batch, 500);
        assert.equal(out.duplicate_batch_failed, true);
        assert.equal(out.server_prepared, true);
        assert.equal(out.pg_prepared_statements, 1);
        assert.equal(out.prepared_sum, 10 * ((50 * 51) / 2));
        assert.equal(out.count, 500);
        assert.equal(out.sum, 10 * ((500 * 501) / 2));
        assert.deepEqual(out.tables, [table]);
        assert.deepEqual(out.columns, ['id:int4', 'name:text', 'amount:int8']);
        assert.equal(out.error_sqlstate, '22012');
        assert.equal(out.after_error, 42);
      });
    });
  }
}
