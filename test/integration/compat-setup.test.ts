/**
 * The statements ORMs and drivers send when they open a connection, through the proxy to the local
 * endpoint with DSQL's rules on (issue 23's compatibility layer answers what DSQL refuses). Each is
 * sent in the protocol the client uses; the answers (command tags, SHOW values) must be a server's,
 * and the session must stay usable.
 *
 * Ruby, Django, SQLAlchemy and pgjdbc are not installed in this suite: their statements are replayed
 * with node-postgres or postgres.js in the same protocol (say so per test):
 * - ActiveRecord 7.1+ (PostgreSQLAdapter#configure_connection, through the pg gem's `exec`: simple
 *   Query): `SET client_min_messages TO 'warning'`, `SET standard_conforming_strings = on`, `SET
 *   intervalstyle = iso_8601`, `SET SESSION timezone TO 'UTC'` (its `variables`, default timezone
 *   UTC), then its type-map load over pg_type.
 * - Django 4.2+ with psycopg 3: `SELECT set_config('TimeZone', $1, false)` (a bound parameter: psycopg
 *   sends it in the extended protocol) when the connection's TimeZone differs from settings.TIME_ZONE;
 *   with an OPTIONS isolation_level, psycopg starts each transaction with `BEGIN ISOLATION LEVEL ...`
 *   (psycopg 3.1 sends its own BEGIN/COMMIT/ROLLBACK with PQsendQueryParams: extended protocol).
 * - SQLAlchemy 2 with psycopg 3 (dialect initialize; cursor.execute without parameters is a simple
 *   Query in psycopg 3.1, inside the transaction psycopg opens with an extended-protocol BEGIN since
 *   SQLAlchemy does not use autocommit):
 *   `select pg_catalog.version()`, `select current_schema()`, `show standard_conforming_strings`,
 *   `show transaction isolation level`, then ROLLBACK (the pool's reset on return).
 * test/clients/compat-orm.test.ts runs the same with the real psycopg and pgjdbc.
 * - pgjdbc 42 (extended protocol): startup parameters DateStyle=ISO, TimeZone, extra_float_digits=3,
 *   client_encoding=UTF8, application_name; `Connection.setTransactionIsolation` /
 *   `setReadOnly` send `SET SESSION CHARACTERISTICS AS TRANSACTION ...`, `getTransactionIsolation`
 *   sends `SHOW TRANSACTION ISOLATION LEVEL`.
 * - node-postgres: its `statement_timeout`, `lock_timeout` and `idle_in_transaction_session_timeout`
 *   options are startup parameters; `query_timeout` is client side and sends nothing.
 * - postgres.js: startup parameters user, database, client_encoding=UTF8, application_name, then its
 *   array-type fetch over pg_type; queries pipelined on one connection, extended protocol.
 *
 * The proxy's counter `dsql_proxy_compat_statements_total{kind}` (admin port) must show the proxy
 * answered, so a test cannot pass because the endpoint happened to accept something.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import postgres from 'postgres';
import { type ProxyProcess, startProxyProcess } from '../support/proxy-process.js';
import { startTestStack, type TestStack } from '../support/stack.js';

let stack: TestStack;
let proxy: ProxyProcess;

before(async () => {
  stack = await startTestStack(); // DSQL's rules on
  proxy = await startProxyProcess(stack, { args: ['--admin-listen', '127.0.0.1:0'] });
});

after(async () => {
  await proxy?.stop();
  await stack?.stop();
});

/** `dsql_proxy_compat_statements_total` by kind, from the admin port. */
async function compatCounts(): Promise<Map<string, number>> {
  const text = await (await fetch(`http://127.0.0.1:${proxy.adminPort}/metrics`)).text();
  const counts = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = /^dsql_proxy_compat_statements_total\{kind="([a-z_]+)"\} (\d+)$/.exec(line);
    if (m?.[1] && m[2]) counts.set(m[1], Number(m[2]));
  }
  return counts;
}

/**
 * Asserts the counter grew by at least `want` per kind since `before`: the statements the proxy must
 * answer itself. At least, not exactly: whether it also answers SHOW of a parameter DSQL knows (e.g.
 * IntervalStyle) is the layer's choice.
 */
async function assertCounted(before: Map<string, number>, want: Record<string, number>): Promise<void> {
  const now = await compatCounts();
  for (const [kind, n] of Object.entries(want)) {
    const grew = (now.get(kind) ?? 0) - (before.get(kind) ?? 0);
    assert.ok(grew >= n, `compat statements of kind ${kind}: ${grew}, want at least ${n}`);
  }
}

async function pgClient(cfg: pg.ClientConfig = {}): Promise<pg.Client> {
  const client = new pg.Client({ host: proxy.host, port: proxy.port, user: 'app', password: '', ...cfg });
  client.on('error', () => {});
  await client.connect();
  return client;
}

/** node-postgres in the extended protocol (Parse/Bind/Describe/Execute/Sync), also without values. */
function extended(client: pg.Client, text: string, values: unknown[] = []): Promise<pg.QueryResult> {
  return client.query({ text, values, queryMode: 'extended' } as pg.QueryConfig);
}

async function assertUsable(client: pg.Client): Promise<void> {
  const r = await client.query('select 41 + 1 as n');
  assert.deepEqual(r.rows, [{ n: 42 }]);
  const x = await extended(client, 'select $1::int + 1 as n', [1]);
  assert.deepEqual(x.rows, [{ n: 2 }]);
}

describe('ActiveRecord (replayed with node-postgres, simple protocol as the pg gem sends it)', () => {
  test('configure_connection: SETs answered with SET, SHOW gives the values, type map loads', async () => {
    const seen = await compatCounts();
    const c = await pgClient();
    try {
      for (const sql of [
        "SET client_min_messages TO 'warning'",
        'SET standard_conforming_strings = on',
        'SET intervalstyle = iso_8601',
        "SET SESSION timezone TO 'UTC'",
      ]) {
        const r = await c.query(sql);
        assert.equal(r.command, 'SET', sql);
        assert.deepEqual(r.rows, [], sql);
      }
      // SHOW names its column after the parameter's canonical spelling (TimeZone, IntervalStyle).
      const shown: Record<string, string> = {};
      for (const name of [
        'client_min_messages',
        'standard_conforming_strings',
        'intervalstyle',
        'timezone',
      ]) {
        const r = await c.query(`SHOW ${name}`);
        assert.equal(r.command, 'SHOW');
        assert.equal(r.fields.length, 1);
        const column = String(r.fields[0]?.name);
        shown[column] = String(r.rows[0]?.[column]);
      }
      assert.deepEqual(shown, {
        client_min_messages: 'warning',
        standard_conforming_strings: 'on',
        IntervalStyle: 'iso_8601',
        TimeZone: 'UTC',
      });
      const types = await c.query(
        "SELECT t.oid, t.typname FROM pg_type as t WHERE t.typname IN ('int2', 'int4', 'int8', 'oid', 'float4', 'float8', 'numeric', 'bool', 'timestamp', 'timestamptz')",
      );
      assert.equal(types.rowCount, 10);
      const interval = await c.query("select (interval '1 day 2 hours')::text as i");
      assert.deepEqual(interval.rows, [{ i: 'P1DT2H' }], 'intervalstyle iso_8601 reached the server');
      await assertUsable(c);
    } finally {
      await c.end();
    }
    // client_min_messages, standard_conforming_strings: answered; intervalstyle, timezone: DSQL's own.
    await assertCounted(seen, { set: 2, show: 2 });
  });

  test('the same SETs as one multi-statement Query: one CommandComplete each, in order', async () => {
    const c = await pgClient();
    try {
      const rs = (await c.query(
        "SET client_min_messages TO 'warning'; SET standard_conforming_strings = on; SET intervalstyle = iso_8601; SHOW client_min_messages",
      )) as unknown as pg.QueryResult[];
      assert.deepEqual(
        rs.map((r) => r.command),
        ['SET', 'SET', 'SET', 'SHOW'],
      );
      assert.deepEqual(rs[3]?.rows, [{ client_min_messages: 'warning' }]);
      await assertUsable(c);
    } finally {
      await c.end();
    }
  });

  test('standard_conforming_strings = off is refused with 0A000 (accepting it would lie), the session goes on', async () => {
    const seen = await compatCounts();
    const c = await pgClient();
    try {
      await assert.rejects(c.query('SET standard_conforming_strings = off'), (err: pg.DatabaseError) => {
        assert.equal(err.code, '0A000');
        assert.match(err.message, /standard_conforming_strings/);
        return true;
      });
      assert.deepEqual((await c.query('SHOW standard_conforming_strings')).rows, [
        { standard_conforming_strings: 'on' },
      ]);
      await assertUsable(c);
    } finally {
      await c.end();
    }
    // The proxy refused it (DSQL would refuse any SET of it, which says nothing about the value).
    await assertCounted(seen, { refused: 1 });
  });
});

describe('Django with psycopg 3 (replayed with node-postgres in the protocol psycopg uses for each)', () => {
  test("ensure_timezone: SELECT set_config('TimeZone', $1, false) reaches DSQL and takes effect", async () => {
    const c = await pgClient();
    try {
      const r = await extended(c, "SELECT set_config('TimeZone', $1, false)", ['Europe/Paris']);
      assert.deepEqual(r.rows, [{ set_config: 'Europe/Paris' }]);
      assert.deepEqual((await extended(c, 'SHOW TimeZone')).rows, [{ TimeZone: 'Europe/Paris' }]);
      await assertUsable(c);
    } finally {
      await c.end();
    }
  });

  test('OPTIONS isolation_level REPEATABLE READ: BEGIN ISOLATION LEVEL REPEATABLE READ works', async () => {
    const c = await pgClient();
    try {
      assert.equal((await extended(c, 'BEGIN ISOLATION LEVEL REPEATABLE READ')).command, 'BEGIN');
      assert.deepEqual((await c.query('SHOW transaction_isolation')).rows, [
        { transaction_isolation: 'repeatable read' },
      ]);
      assert.equal((await extended(c, 'COMMIT')).command, 'COMMIT');
      await assertUsable(c);
    } finally {
      await c.end();
    }
  });

  test('OPTIONS isolation_level SERIALIZABLE: the proxy refuses BEGIN with 0A000 naming REPEATABLE READ', async () => {
    const seen = await compatCounts();
    const c = await pgClient();
    try {
      for (const level of ['SERIALIZABLE', 'READ COMMITTED']) {
        await assert.rejects(extended(c, `BEGIN ISOLATION LEVEL ${level}`), (err: pg.DatabaseError) => {
          assert.equal(err.code, '0A000', level);
          assert.match(err.message, /REPEATABLE READ/, level);
          return true;
        });
        // Nothing was begun: outside a transaction block, now() is this statement's own start.
        const r = await c.query('select now() = statement_timestamp() as outside');
        assert.deepEqual(r.rows, [{ outside: true }], `${level}: no transaction left open`);
      }
      await assertUsable(c);
    } finally {
      await c.end();
    }
    await assertCounted(seen, { refused: 2 });
  });
});

describe('SQLAlchemy 2 with psycopg 3: dialect initialize (replayed with node-postgres, simple protocol in a transaction)', () => {
  test('version, current_schema, standard_conforming_strings, isolation level', async () => {
    const seen = await compatCounts();
    const c = await pgClient();
    try {
      assert.equal((await extended(c, 'BEGIN')).command, 'BEGIN');
      const version = await c.query('select pg_catalog.version()');
      assert.match(String(version.rows[0]?.version), /^PostgreSQL \d+/);
      assert.deepEqual((await c.query('select current_schema()')).rows, [{ current_schema: 'public' }]);
      const scs = await c.query('show standard_conforming_strings');
      assert.equal(scs.command, 'SHOW');
      assert.deepEqual(scs.rows, [{ standard_conforming_strings: 'on' }]);
      const iso = await c.query('show transaction isolation level');
      assert.equal(iso.command, 'SHOW');
      assert.deepEqual(iso.rows, [{ transaction_isolation: 'repeatable read' }]);
      assert.equal((await extended(c, 'ROLLBACK')).command, 'ROLLBACK');
      await assertUsable(c);
    } finally {
      await c.end();
    }
    await assertCounted(seen, { show: 1 });
  });
});

describe('pgjdbc (replayed with postgres.js: its startup parameters, extended protocol)', () => {
  test('startup parameters reach DSQL; SET SESSION CHARACTERISTICS for REPEATABLE READ / READ ONLY answered', async () => {
    const sql = postgres({
      host: proxy.host,
      port: proxy.port,
      user: 'app',
      password: '',
      max: 1,
      fetch_types: false,
      connection: {
        DateStyle: 'ISO',
        TimeZone: 'UTC',
        extra_float_digits: '3',
        application_name: 'PostgreSQL JDBC Driver',
      },
      onnotice: () => {},
    });
    try {
      const [ds] = await sql.unsafe('SHOW DateStyle');
      assert.deepEqual(ds, { DateStyle: 'ISO, MDY' });
      const [efd] = await sql.unsafe('SHOW extra_float_digits');
      assert.deepEqual(efd, { extra_float_digits: '3' });
      const rr = await sql.unsafe(
        'SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL REPEATABLE READ',
      );
      assert.equal(rr.command, 'SET');
      const [iso] = await sql.unsafe('SHOW TRANSACTION ISOLATION LEVEL');
      assert.deepEqual(iso, { transaction_isolation: 'repeatable read' });
      const ro = await sql.unsafe('SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY');
      assert.equal(ro.command, 'SET');
      await sql.unsafe('BEGIN');
      await assert.rejects(sql.unsafe('create table compat_setup_ro (id int)'), (err: { code?: string }) => {
        assert.equal(err.code, '25006', 'read-only transaction');
        return true;
      });
      await sql.unsafe('ROLLBACK');
      assert.equal(
        (await sql.unsafe('SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE')).command,
        'SET',
      );
      await assert.rejects(
        sql.unsafe('SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL SERIALIZABLE'),
        (err: { code?: string; message: string }) => {
          assert.equal(err.code, '0A000');
          assert.match(err.message, /REPEATABLE READ/);
          return true;
        },
      );
      const [one] = await sql`select 1 as one`;
      assert.deepEqual(one, { one: 1 });
    } finally {
      await sql.end({ timeout: 5 });
    }
  });
});

describe('node-postgres: timeouts as startup parameters', () => {
  test('statement_timeout, lock_timeout, idle_in_transaction_session_timeout options: SHOW gives them', async () => {
    const c = await pgClient({
      statement_timeout: 3000,
      lock_timeout: 1500,
      idle_in_transaction_session_timeout: 60000,
    });
    try {
      for (const run of [(s: string) => c.query(s), (s: string) => extended(c, s)]) {
        assert.deepEqual((await run('SHOW statement_timeout')).rows, [{ statement_timeout: '3s' }]);
        assert.deepEqual((await run('SHOW lock_timeout')).rows, [{ lock_timeout: '1500ms' }]);
        assert.deepEqual((await run('SHOW idle_in_transaction_session_timeout')).rows, [
          { idle_in_transaction_session_timeout: '1min' },
        ]);
      }
      await assertUsable(c);
    } finally {
      await c.end();
    }
  });

  test('query_timeout is client side: nothing is sent, statement_timeout stays 0', async () => {
    const c = await pgClient({ query_timeout: 5000 });
    try {
      assert.deepEqual((await c.query('SHOW statement_timeout')).rows, [{ statement_timeout: '0' }]);
      await assertUsable(c);
    } finally {
      await c.end();
    }
  });
});

describe('postgres.js: defaults, its array-type fetch, pipelined SET/SHOW', () => {
  test('the type fetch runs at connect and pipelined compat statements answer in order', async () => {
    const seen = await compatCounts();
    const sql = postgres({
      host: proxy.host,
      port: proxy.port,
      user: 'app',
      password: '',
      max: 1,
      onnotice: () => {},
    });
    try {
      // The first query triggers `select b.oid, b.typarray from pg_catalog.pg_type ...` (fetch_types).
      const [arr] = await sql<{ a: number[] }[]>`select array[1, 2, 3]::int[] as a`;
      assert.deepEqual(arr?.a, [1, 2, 3], 'the array types were fetched');
      const [a, b, cc, d, e, f] = await Promise.all([
        sql.unsafe("SET client_min_messages TO 'warning'"),
        sql.unsafe('SHOW client_min_messages'),
        sql.unsafe('SET statement_timeout = 2500'),
        sql.unsafe('SHOW statement_timeout'),
        sql.unsafe('RESET statement_timeout'),
        sql`select current_setting('application_name') as app`,
      ]);
      assert.equal(a.command, 'SET');
      assert.deepEqual([...b], [{ client_min_messages: 'warning' }]);
      assert.equal(cc.command, 'SET');
      assert.deepEqual([...d], [{ statement_timeout: '2500ms' }]);
      assert.equal(e.command, 'RESET');
      assert.deepEqual([...f], [{ app: 'postgres.js' }]);
      const [after] = await sql.unsafe('SHOW statement_timeout');
      assert.deepEqual(after, { statement_timeout: '0' });
    } finally {
      await sql.end({ timeout: 5 });
    }
    await assertCounted(seen, { set: 2, show: 3, reset: 1 });
  });
});
