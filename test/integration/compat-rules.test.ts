/**
 * Each rule of issue 23's compatibility layer, through the real proxy to the local endpoint with
 * DSQL's rules on, with real clients: node-postgres in the simple protocol (`query(text)`) and the
 * extended protocol (`{ text, values, queryMode: 'extended' }`), postgres.js for pipelining. Oracles
 * are exact: the CommandComplete tags as sent on the wire (node-postgres' `command` cuts `LOCK TABLE`
 * to `LOCK`, so the raw tags are read from its connection), SHOW values, SQLSTATEs, and counts of rows
 * read straight from the endpoint's PostgreSQL (not through the proxy).
 */
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';
import pg from 'pg';
import postgres from 'postgres';
import { type ProxyProcess, startProxyProcess } from '../support/proxy-process.js';
import { startTestStack, type TestStack } from '../support/stack.js';

let stack: TestStack;
let proxy: ProxyProcess;

const T = 'compat_rules_t';

before(async () => {
  stack = await startTestStack(); // DSQL's rules on
  await stack.postgres.query(`create table if not exists public.${T} (id int)`);
  await stack.postgres.query(`grant all on public.${T} to public`);
  proxy = await startProxyProcess(stack, { args: ['--admin-listen', '127.0.0.1:0'] });
});

after(async () => {
  await proxy?.stop();
  await stack?.stop();
});

beforeEach(async () => {
  await stack.postgres.query(`delete from public.${T}`);
});

/** Rows in the table, read from PostgreSQL itself: what was really committed. */
async function rowsInT(): Promise<number[]> {
  const rows = await stack.postgres.query<{ id: number }>(`select id from public.${T} order by id`);
  return rows.map((row) => row.id);
}

interface Client extends pg.Client {
  /** Every CommandComplete tag received, verbatim. */
  tags: string[];
  /** Every NoticeResponse received: [severity, code, message]. */
  notices: Array<[string, string, string]>;
}

async function connect(p: ProxyProcess = proxy): Promise<Client> {
  const c = new pg.Client({ host: p.host, port: p.port, user: 'app', password: '' }) as Client;
  c.tags = [];
  c.notices = [];
  c.on('error', () => {});
  c.on('notice', (n) => c.notices.push([String(n.severity), String(n.code), String(n.message)]));
  await c.connect();
  const conn = (c as unknown as { connection: { on(e: string, f: (m: { text: string }) => void): void } })
    .connection;
  conn.on('commandComplete', (m) => c.tags.push(m.text));
  return c;
}

async function withClient(fn: (c: Client) => Promise<void>, p: ProxyProcess = proxy): Promise<void> {
  const c = await connect(p);
  try {
    await fn(c);
  } finally {
    await c.end();
  }
}

function extended(c: pg.Client, text: string, values: unknown[] = []): Promise<pg.QueryResult> {
  return c.query({ text, values, queryMode: 'extended' } as pg.QueryConfig);
}

type Run = (c: pg.Client, text: string) => Promise<pg.QueryResult>;
const PROTOCOLS: Array<[string, Run]> = [
  ['simple', (c, text) => c.query(text)],
  ['extended', (c, text) => extended(c, text)],
];

/** A multi-statement simple Query: one result per statement, in order. */
async function multi(c: pg.Client, text: string): Promise<pg.QueryResult[]> {
  const r = (await c.query(text)) as unknown as pg.QueryResult | pg.QueryResult[];
  return Array.isArray(r) ? r : [r];
}

async function rejectsWith(p: Promise<unknown>, code: string, message?: RegExp | string): Promise<void> {
  await assert.rejects(p, (err: pg.DatabaseError) => {
    assert.equal(err.code, code, `${err.code}: ${err.message}`);
    if (typeof message === 'string') assert.equal(err.message, message);
    else if (message) assert.match(err.message, message);
    return true;
  });
}

async function show(c: pg.Client, name: string): Promise<string> {
  const r = await c.query(`SHOW ${name}`);
  assert.equal(r.fields.length, 1);
  return String(r.rows[0]?.[String(r.fields[0]?.name)]);
}

/** Outside a transaction block now() is the statement's own start: proves no block is left open. */
async function assertIdle(c: pg.Client): Promise<void> {
  const r = await c.query('select now() = statement_timestamp() as outside');
  assert.deepEqual(r.rows, [{ outside: true }], 'no transaction block left open');
}

async function compatCounts(p: ProxyProcess = proxy): Promise<Map<string, number>> {
  const text = await (await fetch(`http://127.0.0.1:${p.adminPort}/metrics`)).text();
  const counts = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = /^dsql_proxy_compat_statements_total\{kind="([a-z_]+)"\} (\d+)$/.exec(line);
    if (m?.[1] && m[2]) counts.set(m[1], Number(m[2]));
  }
  return counts;
}

function deltas(before: Map<string, number>, now: Map<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of now) {
    const d = v - (before.get(k) ?? 0);
    if (d !== 0) out[k] = d;
  }
  return out;
}

describe('session parameters the layer answers for', () => {
  for (const [proto, run] of PROTOCOLS) {
    test(`${proto}: SET / SET SESSION / TO DEFAULT / RESET / SHOW with their tags and values`, async () => {
      await withClient(async (c) => {
        assert.equal((await run(c, 'SET lock_timeout = 1000')).command, 'SET');
        assert.equal(await show(c, 'lock_timeout'), '1s');
        assert.equal((await run(c, "SET SESSION lock_timeout TO '2min'")).command, 'SET');
        assert.equal(await show(c, 'lock_timeout'), '2min');
        await run(c, 'SET lock_timeout TO DEFAULT');
        assert.equal(await show(c, 'lock_timeout'), '0');
        await run(c, 'SET statement_timeout = 5000');
        assert.equal((await run(c, 'SHOW statement_timeout')).rows[0]?.statement_timeout, '5s');
        assert.equal((await run(c, 'RESET statement_timeout')).command, 'RESET');
        assert.equal(await show(c, 'statement_timeout'), '0');
        assert.deepEqual(c.tags, [
          'SET',
          'SHOW',
          'SET',
          'SHOW',
          'SET',
          'SHOW',
          'SET',
          'SHOW',
          'RESET',
          'SHOW',
        ]);
        await assertIdle(c);
      });
    });

    test(`${proto}: RESET ALL puts every layer parameter back`, async () => {
      await withClient(async (c) => {
        await run(c, 'SET lock_timeout = 1000');
        await run(c, "SET client_min_messages = 'error'");
        await run(c, 'SET work_mem = 8192');
        await run(c, 'SET search_path = pg_catalog');
        assert.equal((await run(c, 'RESET ALL')).command, 'RESET');
        // DSQL's own parameter the session changed is put back too (DSQL refuses RESET ALL itself).
        assert.deepEqual((await c.query('select current_schema() as s')).rows, [{ s: 'public' }]);
        assert.equal(await show(c, 'lock_timeout'), '0');
        assert.equal(await show(c, 'client_min_messages'), 'notice');
        assert.equal(await show(c, 'work_mem'), '4MB');
      });
    });

    test(`${proto}: set_config of a layer parameter answers its row; is_local ends with the transaction`, async () => {
      await withClient(async (c) => {
        const r = await run(c, "SELECT set_config('statement_timeout', '5000', false)");
        assert.deepEqual(r.rows, [{ set_config: '5s' }]);
        assert.equal(await show(c, 'statement_timeout'), '5s');
        await c.query('BEGIN');
        assert.deepEqual((await run(c, "SELECT set_config('lock_timeout', '3s', true)")).rows, [
          { set_config: '3s' },
        ]);
        assert.equal(await show(c, 'lock_timeout'), '3s');
        await c.query('COMMIT');
        assert.equal(await show(c, 'lock_timeout'), '0');
        assert.equal(await show(c, 'statement_timeout'), '5s');
      });
    });

    test(`${proto}: SET in a rolled-back transaction is undone, in a committed one kept; SET LOCAL ends at COMMIT`, async () => {
      await withClient(async (c) => {
        await c.query('BEGIN');
        assert.equal((await run(c, 'SET lock_timeout = 1000')).command, 'SET');
        assert.equal(await show(c, 'lock_timeout'), '1s');
        await c.query('ROLLBACK');
        assert.equal(await show(c, 'lock_timeout'), '0');

        await c.query('BEGIN');
        await run(c, 'SET lock_timeout = 2000');
        assert.equal((await run(c, 'SET LOCAL statement_timeout = 7000')).command, 'SET');
        assert.equal(await show(c, 'statement_timeout'), '7s');
        assert.equal((await c.query('COMMIT')).command, 'COMMIT');
        assert.equal(await show(c, 'lock_timeout'), '2s');
        assert.equal(await show(c, 'statement_timeout'), '0');
      });
    });

    test(`${proto}: SET LOCAL outside a block warns 25P01 and changes nothing`, async () => {
      await withClient(async (c) => {
        assert.equal((await run(c, 'SET LOCAL lock_timeout = 1000')).command, 'SET');
        assert.deepEqual(c.notices, [
          ['WARNING', '25P01', 'SET LOCAL can only be used in transaction blocks'],
        ]);
        assert.equal(await show(c, 'lock_timeout'), '0');
      });
    });

    test(`${proto}: SET of a DSQL parameter (search_path) reaches DSQL and takes effect; RESET brings it back`, async () => {
      const seen = await compatCounts();
      await withClient(async (c) => {
        assert.equal((await run(c, 'SET search_path = pg_catalog')).command, 'SET');
        assert.deepEqual((await c.query('select current_schema() as s')).rows, [{ s: 'pg_catalog' }]);
        assert.equal((await run(c, 'RESET search_path')).command, 'RESET');
        assert.deepEqual((await c.query('select current_schema() as s')).rows, [{ s: 'public' }]);
      });
      // DSQL answered both itself: the layer counted nothing.
      assert.deepEqual(deltas(seen, await compatCounts()), {});
    });

    test(`${proto}: an unknown parameter reaches DSQL and its refusal comes back unchanged`, async () => {
      await withClient(async (c) => {
        await rejectsWith(
          run(c, 'SET foo.bar = 1'),
          '0A000',
          'setting configuration parameter "foo.bar" not supported',
        );
        await c.query('BEGIN');
        await c.query(`INSERT INTO ${T} VALUES (1)`);
        await rejectsWith(
          run(c, 'SET foo.bar = 1'),
          '0A000',
          'setting configuration parameter "foo.bar" not supported',
        );
        await rejectsWith(c.query('select 1'), '25P02');
        assert.equal((await c.query('COMMIT')).command, 'ROLLBACK');
      });
      assert.deepEqual(await rowsInT(), []);
    });
  }

  test('work_mem (harmless: answered by the layer, DSQL never sees it) is kept with its unit', async () => {
    const seen = await compatCounts();
    await withClient(async (c) => {
      assert.equal((await c.query("SET work_mem = '64MB'")).command, 'SET');
      assert.equal(await show(c, 'work_mem'), '64MB');
    });
    assert.deepEqual(deltas(seen, await compatCounts()), { set: 1, show: 1 });
  });

  test('a multi-statement `SET statement_timeout = 5000; SELECT 1/0` undoes the SET', async () => {
    await withClient(async (c) => {
      await rejectsWith(c.query('SET statement_timeout = 5000; SELECT 1/0'), '22012', 'division by zero');
      assert.equal(await show(c, 'statement_timeout'), '0');
      await assertIdle(c);
    });
  });

  test('a multi-statement SET/SHOW in one Query answers in order', async () => {
    await withClient(async (c) => {
      const rs = await multi(
        c,
        'SET lock_timeout = 1000; SHOW lock_timeout; RESET lock_timeout; SHOW lock_timeout',
      );
      assert.deepEqual(c.tags, ['SET', 'SHOW', 'RESET', 'SHOW']);
      assert.deepEqual(
        rs.map((r) => r.rows),
        [[], [{ lock_timeout: '1s' }], [], [{ lock_timeout: '0' }]],
      );
    });
  });
});

describe('a multi-statement Query mixing DSQL statements and the layer', () => {
  test('answers in order, rows and tags as a server sends them', async () => {
    await withClient(async (c) => {
      const rs = await multi(
        c,
        `SELECT 1 AS a; SET lock_timeout = 1000; INSERT INTO ${T} VALUES (1), (2); SHOW lock_timeout; SELECT count(*)::int AS n FROM ${T}`,
      );
      assert.deepEqual(c.tags, ['SELECT 1', 'SET', 'INSERT 0 2', 'SHOW', 'SELECT 1']);
      assert.deepEqual(
        rs.map((r) => r.rows),
        [[{ a: 1 }], [], [], [{ lock_timeout: '1s' }], [{ n: 2 }]],
      );
      await assertIdle(c);
    });
    assert.deepEqual(await rowsInT(), [1, 2]);
  });

  test('atomic: a failing DSQL statement after the layer SET leaves the table empty and undoes the SET', async () => {
    await withClient(async (c) => {
      await rejectsWith(
        c.query(`INSERT INTO ${T} VALUES (1); SET lock_timeout = 1000; INSERT INTO ${T} VALUES ('x')`),
        '22P02',
      );
      assert.equal(await show(c, 'lock_timeout'), '0');
      await assertIdle(c);
    });
    assert.deepEqual(await rowsInT(), []);
  });

  test("atomic: the layer's own error in the middle leaves the table empty", async () => {
    await withClient(async (c) => {
      await rejectsWith(
        c.query(
          `INSERT INTO ${T} VALUES (1); SET standard_conforming_strings = off; INSERT INTO ${T} VALUES (2)`,
        ),
        '0A000',
        /standard_conforming_strings/,
      );
      assert.deepEqual(c.tags, ['INSERT 0 1']);
      await assertIdle(c);
    });
    assert.deepEqual(await rowsInT(), []);
  });

  test('inside an explicit block, the earlier statements stay in the transaction and COMMIT keeps them', async () => {
    await withClient(async (c) => {
      await c.query('BEGIN');
      await multi(
        c,
        `INSERT INTO ${T} VALUES (1); SET lock_timeout = 1000; LOCK TABLE ${T} IN ACCESS SHARE MODE`,
      );
      assert.equal((await c.query('COMMIT')).command, 'COMMIT');
      assert.deepEqual(c.tags, ['BEGIN', 'INSERT 0 1', 'SET', 'LOCK TABLE', 'COMMIT']);
      assert.equal(await show(c, 'lock_timeout'), '1s');
    });
    assert.deepEqual(await rowsInT(), [1]);
  });
});

describe('a refused statement inside an explicit transaction aborts it', () => {
  for (const [proto, run] of PROTOCOLS) {
    test(`${proto}: LOCK ... IN EXCLUSIVE MODE: 0A000, then 25P02, COMMIT answers ROLLBACK`, async () => {
      await withClient(async (c) => {
        await run(c, 'BEGIN');
        await run(c, `INSERT INTO ${T} VALUES (1)`);
        await rejectsWith(
          run(c, `LOCK ${T} IN EXCLUSIVE MODE`),
          '0A000',
          /EXCLUSIVE MODE is not supported on DSQL/,
        );
        await rejectsWith(run(c, 'SELECT 1'), '25P02');
        await rejectsWith(run(c, 'SET lock_timeout = 1'), '25P02');
        assert.equal((await run(c, 'COMMIT')).command, 'ROLLBACK');
        await assertIdle(c);
      });
      assert.deepEqual(await rowsInT(), []);
    });
  }
});

test('multi-statement: BEGIN; INSERT; LOCK ... EXCLUSIVE in one Query leaves the block aborted', async () => {
  await withClient(async (c) => {
    await rejectsWith(
      c.query(`BEGIN; INSERT INTO ${T} VALUES (1); LOCK ${T} IN EXCLUSIVE MODE; SELECT 1`),
      '0A000',
    );
    assert.deepEqual(c.tags, ['BEGIN', 'INSERT 0 1']);
    await rejectsWith(c.query('SELECT 1'), '25P02');
    assert.equal((await c.query('COMMIT')).command, 'ROLLBACK');
    await assertIdle(c);
  });
  assert.deepEqual(await rowsInT(), []);
});

describe('transaction isolation and access modes', () => {
  for (const [proto, run] of PROTOCOLS) {
    test(`${proto}: BEGIN ISOLATION LEVEL SERIALIZABLE / READ COMMITTED refused 0A000, REPEATABLE READ works`, async () => {
      await withClient(async (c) => {
        for (const level of ['SERIALIZABLE', 'READ COMMITTED']) {
          await rejectsWith(run(c, `BEGIN ISOLATION LEVEL ${level}`), '0A000', /REPEATABLE READ/);
          await assertIdle(c);
        }
        assert.equal((await run(c, 'BEGIN ISOLATION LEVEL REPEATABLE READ')).command, 'BEGIN');
        await run(c, `INSERT INTO ${T} VALUES (1)`);
        assert.equal(await show(c, 'transaction_isolation'), 'repeatable read');
        assert.equal((await run(c, 'COMMIT')).command, 'COMMIT');
      });
      assert.deepEqual(await rowsInT(), [1]);
    });

    test(`${proto}: SET TRANSACTION REPEATABLE READ, READ ONLY first in the block: a write fails 25006`, async () => {
      await withClient(async (c) => {
        await run(c, 'BEGIN');
        assert.equal(
          (await run(c, 'SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY')).command,
          'SET',
        );
        assert.equal(await show(c, 'transaction_read_only'), 'on');
        await rejectsWith(run(c, `INSERT INTO ${T} VALUES (1)`), '25006');
        assert.equal((await run(c, 'COMMIT')).command, 'ROLLBACK');
      });
      assert.deepEqual(await rowsInT(), []);
    });

    test(`${proto}: SET TRANSACTION READ ONLY after a query: 0A000 and the block is aborted`, async () => {
      await withClient(async (c) => {
        await run(c, 'BEGIN');
        await run(c, `INSERT INTO ${T} VALUES (1)`);
        await rejectsWith(run(c, 'SET TRANSACTION READ ONLY'), '0A000', /first statement/);
        await rejectsWith(run(c, 'SELECT 1'), '25P02');
        assert.equal((await run(c, 'COMMIT')).command, 'ROLLBACK');
      });
      assert.deepEqual(await rowsInT(), []);
    });

    test(`${proto}: SET TRANSACTION outside a block: WARNING 25P01 and SET`, async () => {
      await withClient(async (c) => {
        assert.equal((await run(c, 'SET TRANSACTION READ ONLY')).command, 'SET');
        assert.deepEqual(c.notices, [
          ['WARNING', '25P01', 'SET TRANSACTION can only be used in transaction blocks'],
        ]);
        await run(c, `INSERT INTO ${T} VALUES (1)`);
      });
      assert.deepEqual(await rowsInT(), [1]);
    });

    test(`${proto}: SET SESSION CHARACTERISTICS READ ONLY: autocommit writes fail 25006, READ WRITE brings them back`, async () => {
      await withClient(async (c) => {
        assert.equal((await run(c, 'SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY')).command, 'SET');
        await rejectsWith(run(c, `INSERT INTO ${T} VALUES (1)`), '25006');
        assert.deepEqual((await run(c, 'SELECT 7 AS n')).rows, [{ n: 7 }]);
        await run(c, 'BEGIN');
        await rejectsWith(run(c, `INSERT INTO ${T} VALUES (2)`), '25006');
        await run(c, 'ROLLBACK');
        await run(c, 'SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE');
        assert.equal((await run(c, `INSERT INTO ${T} VALUES (3)`)).rowCount, 1);
      });
      assert.deepEqual(await rowsInT(), [3]);
    });
  }
});

describe('LOCK TABLE', () => {
  for (const [proto, run] of PROTOCOLS) {
    test(`${proto}: ACCESS SHARE in a block answers LOCK TABLE; outside 25P01; other modes 0A000`, async () => {
      await withClient(async (c) => {
        await rejectsWith(
          run(c, `LOCK TABLE ${T} IN ACCESS SHARE MODE`),
          '25P01',
          'LOCK TABLE can only be used in transaction blocks',
        );
        await run(c, 'BEGIN');
        await run(c, `LOCK TABLE ${T} IN ACCESS SHARE MODE`);
        await run(c, `INSERT INTO ${T} VALUES (1)`);
        await run(c, 'COMMIT');
        assert.deepEqual(c.tags, ['BEGIN', 'LOCK TABLE', 'INSERT 0 1', 'COMMIT']);
        for (const mode of ['ROW EXCLUSIVE', 'SHARE', 'ACCESS EXCLUSIVE']) {
          await run(c, 'BEGIN');
          await rejectsWith(run(c, `LOCK TABLE ${T} IN ${mode} MODE`), '0A000', /OCC|not supported on DSQL/);
          await rejectsWith(run(c, 'SELECT 1'), '25P02');
          assert.equal((await run(c, 'COMMIT')).command, 'ROLLBACK');
        }
      });
      assert.deepEqual(await rowsInT(), [1]);
    });
  }
});

describe('SQL-level PREPARE / EXECUTE / DEALLOCATE', () => {
  for (const [proto, run] of PROTOCOLS) {
    test(`${proto}: declared types, NULLs, quotes and backslashes, expressions as arguments`, async () => {
      await withClient(async (c) => {
        await run(c, 'PREPARE p(int, text) AS SELECT $1 + 1 AS n, $2 AS s, pg_typeof($2)::text AS t');
        assert.deepEqual((await run(c, "EXECUTE p(1, 'it''s a \\ back')")).rows, [
          { n: 2, s: "it's a \\ back", t: 'text' },
        ]);
        assert.deepEqual((await run(c, 'EXECUTE p(NULL, NULL)')).rows, [{ n: null, s: null, t: 'text' }]);
        assert.deepEqual((await run(c, "EXECUTE p(0, E'tab\\there')")).rows, [
          { n: 1, s: 'tab\there', t: 'text' },
        ]);
        const e = await run(c, 'EXECUTE p(1+1, now()::text)');
        assert.equal(e.rows[0]?.n, 3);
        assert.match(String(e.rows[0]?.s), /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d/);
        assert.equal((await run(c, 'DEALLOCATE p')).command, 'DEALLOCATE');
        assert.deepEqual(c.tags, ['PREPARE', 'SELECT 1', 'SELECT 1', 'SELECT 1', 'SELECT 1', 'DEALLOCATE']);
      });
    });

    test(`${proto}: an INSERT executes exactly once per EXECUTE; errors 42P05, 26000, 42601`, async () => {
      await withClient(async (c) => {
        await run(c, `PREPARE ins(int) AS INSERT INTO ${T} VALUES ($1)`);
        assert.equal((await run(c, 'EXECUTE ins(1)')).rowCount, 1);
        assert.equal((await run(c, 'EXECUTE ins(2)')).rowCount, 1);
        await rejectsWith(
          run(c, 'PREPARE ins(int) AS SELECT 1'),
          '42P05',
          'prepared statement "ins" already exists',
        );
        await rejectsWith(run(c, 'EXECUTE nope'), '26000', 'prepared statement "nope" does not exist');
        await rejectsWith(run(c, 'DEALLOCATE nope'), '26000', 'prepared statement "nope" does not exist');
        await rejectsWith(
          run(c, 'EXECUTE ins(1, 2)'),
          '42601',
          /wrong number of parameters for prepared statement "ins"/,
        );
        assert.equal((await run(c, 'DEALLOCATE ALL')).command, 'DEALLOCATE');
        await rejectsWith(run(c, 'EXECUTE ins(3)'), '26000');
        assert.deepEqual(c.tags, ['PREPARE', 'INSERT 0 1', 'INSERT 0 1', 'DEALLOCATE ALL']);
      });
      assert.deepEqual(await rowsInT(), [1, 2]);
    });

    test(`${proto}: in a rolled-back transaction the INSERT is undone, the statement stays (as PostgreSQL)`, async () => {
      await withClient(async (c) => {
        await run(c, 'BEGIN');
        await run(c, `PREPARE ins2(int) AS INSERT INTO ${T} VALUES ($1)`);
        await run(c, 'EXECUTE ins2(5)');
        assert.equal((await run(c, 'ROLLBACK')).command, 'ROLLBACK');
        assert.deepEqual(await rowsInT(), []);
        assert.equal((await run(c, 'EXECUTE ins2(6)')).rowCount, 1);
      });
      assert.deepEqual(await rowsInT(), [6]);
    });
  }

  test('in a multi-statement Query: tags in order, each EXECUTE inserts once', async () => {
    await withClient(async (c) => {
      const rs = await multi(
        c,
        `PREPARE m(int) AS INSERT INTO ${T} VALUES ($1); EXECUTE m(1); SELECT count(*)::int AS n FROM ${T}; EXECUTE m(2); DEALLOCATE m`,
      );
      assert.deepEqual(c.tags, ['PREPARE', 'INSERT 0 1', 'SELECT 1', 'INSERT 0 1', 'DEALLOCATE']);
      assert.deepEqual(rs[2]?.rows, [{ n: 1 }]);
    });
    assert.deepEqual(await rowsInT(), [1, 2]);
  });
});

describe('DISCARD', () => {
  test('DISCARD ALL outside a block resets parameters, DSQL parameters and prepared statements of both levels', async () => {
    await withClient(async (c) => {
      await c.query('SET lock_timeout = 1000');
      await c.query('SET search_path = pg_catalog');
      await c.query('PREPARE d AS SELECT 1 AS one');
      assert.deepEqual((await c.query({ name: 'named1', text: 'select 2 as two' })).rows, [{ two: 2 }]);
      assert.equal((await c.query('DISCARD ALL')).command, 'DISCARD');
      assert.equal(c.tags.at(-1), 'DISCARD ALL');
      assert.equal(await show(c, 'lock_timeout'), '0');
      assert.deepEqual((await c.query('select current_schema() as s')).rows, [{ s: 'public' }]);
      await rejectsWith(c.query('EXECUTE d'), '26000', 'prepared statement "d" does not exist');
      // node-postgres believes named1 is still prepared and sends only Bind: the server's answer.
      await rejectsWith(c.query({ name: 'named1', text: 'select 2 as two' }), '26000', /named1/);
      assert.deepEqual((await c.query({ name: 'named2', text: 'select 3 as three' })).rows, [{ three: 3 }]);
    });
  });

  test('extended: DISCARD ALL, and DISCARD ALL inside a block is 25001', async () => {
    await withClient(async (c) => {
      await extended(c, 'SET lock_timeout = 1000');
      assert.equal((await extended(c, 'DISCARD ALL')).command, 'DISCARD');
      assert.equal(await show(c, 'lock_timeout'), '0');
      for (const run of [(t: string) => c.query(t), (t: string) => extended(c, t)]) {
        await run('BEGIN');
        await rejectsWith(run('DISCARD ALL'), '25001', 'DISCARD ALL cannot run inside a transaction block');
        assert.equal((await run('COMMIT')).command, 'ROLLBACK');
      }
    });
  });

  for (const [proto, run] of PROTOCOLS) {
    test(`${proto}: DISCARD PLANS / SEQUENCES / TEMP answer their tags, in and out of a block`, async () => {
      await withClient(async (c) => {
        for (const what of ['PLANS', 'SEQUENCES', 'TEMP']) await run(c, `DISCARD ${what}`);
        await run(c, 'BEGIN');
        await run(c, 'DISCARD PLANS');
        await run(c, 'COMMIT');
        assert.deepEqual(c.tags, [
          'DISCARD PLANS',
          'DISCARD SEQUENCES',
          'DISCARD TEMP',
          'BEGIN',
          'DISCARD PLANS',
          'COMMIT',
        ]);
      });
    });
  }
});

describe('client_min_messages', () => {
  for (const [proto, run] of PROTOCOLS) {
    test(`${proto}: error hides a WARNING from plpgsql, notice shows it again`, async () => {
      await withClient(async (c) => {
        const raise = "DO $$ BEGIN RAISE WARNING 'w'; END $$";
        await run(c, raise);
        assert.deepEqual(c.notices, [['WARNING', '01000', 'w']]);
        await run(c, 'SET client_min_messages = error');
        await run(c, raise);
        await run(c, 'SET LOCAL lock_timeout = 1'); // its own 25P01 WARNING is hidden too
        assert.equal(c.notices.length, 1);
        await run(c, 'RESET client_min_messages');
        await run(c, raise);
        assert.equal(c.notices.length, 2);
      });
    });
  }
});

describe('postgres.js pipelining (extended protocol, one connection)', () => {
  test('pipelined layer statements and DSQL statements answer in order', async () => {
    const sql = postgres({
      host: proxy.host,
      port: proxy.port,
      user: 'app',
      pass: '',
      max: 1,
      onnotice: () => {},
    });
    try {
      const [set, shown, sel, prep, exec, reset, shown2] = await Promise.all([
        sql.unsafe('SET lock_timeout = 1000'),
        sql.unsafe('SHOW lock_timeout'),
        sql`select ${5}::int as n`,
        sql.unsafe('PREPARE pj(int) AS SELECT $1::int * 2 AS d'),
        sql.unsafe('EXECUTE pj(21)'),
        sql.unsafe('RESET lock_timeout'),
        sql.unsafe('SHOW lock_timeout'),
      ]);
      assert.equal(set.command, 'SET');
      assert.deepEqual([...shown], [{ lock_timeout: '1s' }]);
      assert.deepEqual([...sel], [{ n: 5 }]);
      assert.equal(prep.command, 'PREPARE');
      assert.deepEqual([...exec], [{ d: 42 }]);
      assert.equal(reset.command, 'RESET');
      assert.deepEqual([...shown2], [{ lock_timeout: '0' }]);
      // A refusal in the pipeline fails its own query only (each ends with its Sync).
      const settled = await Promise.allSettled([
        sql.unsafe('SET lock_timeout = 2000'),
        sql.unsafe('SET standard_conforming_strings = off'),
        sql.unsafe('SHOW lock_timeout'),
      ]);
      assert.deepEqual(
        settled.map((s) => s.status),
        ['fulfilled', 'rejected', 'fulfilled'],
      );
      assert.equal((settled[1] as PromiseRejectedResult).reason.code, '0A000');
      assert.deepEqual(
        [...(settled[2] as PromiseFulfilledResult<postgres.RowList<postgres.Row[]>>).value],
        [{ lock_timeout: '2s' }],
      );
      // A pipelined transaction with a local LOCK TABLE in the middle commits both inserts.
      const lockTag = await sql.begin((tx) => [
        tx.unsafe(`INSERT INTO ${T} VALUES (1)`),
        tx.unsafe(`LOCK TABLE ${T} IN ACCESS SHARE MODE`),
        tx.unsafe(`INSERT INTO ${T} VALUES (2)`),
      ]);
      assert.equal(lockTag[1]?.command, 'LOCK TABLE');
    } finally {
      await sql.end();
    }
    assert.deepEqual(await rowsInT(), [1, 2]);
  });
});

describe('dsql_proxy_compat_statements_total', () => {
  test('counts each answer by kind, exactly', async () => {
    const seen = await compatCounts();
    await withClient(async (c) => {
      await c.query('SET lock_timeout = 1000');
      await extended(c, 'SHOW lock_timeout');
      await c.query('RESET lock_timeout');
      await c.query('RESET ALL');
      await c.query("SELECT set_config('lock_timeout', '1', false)");
      await c.query('SHOW search_path'); // DSQL's own: not counted
      await c.query('BEGIN ISOLATION LEVEL REPEATABLE READ'); // folded: DSQL runs it
      await c.query('SET TRANSACTION READ ONLY');
      await c.query(`LOCK TABLE ${T} IN ACCESS SHARE MODE`);
      await c.query('ROLLBACK');
      await c.query('PREPARE x AS SELECT 1');
      await c.query('EXECUTE x');
      await extended(c, 'DEALLOCATE x');
      await c.query('DISCARD PLANS');
      await rejectsWith(c.query('BEGIN ISOLATION LEVEL SERIALIZABLE'), '0A000');
    });
    assert.deepEqual(deltas(seen, await compatCounts()), {
      set: 1,
      show: 1,
      reset: 2,
      set_config: 1,
      set_transaction: 1,
      lock: 1,
      prepare: 1,
      execute: 1,
      deallocate: 1,
      discard: 1,
      refused: 1,
    });
  });
});

describe('--compat off passes everything to DSQL', () => {
  let off: ProxyProcess;
  before(async () => {
    off = await startProxyProcess(stack, { args: ['--compat', 'off', '--admin-listen', '127.0.0.1:0'] });
  });
  after(async () => {
    await off?.stop();
  });

  for (const [proto, run] of PROTOCOLS) {
    test(`${proto}: DSQL's refusals of SET statement_timeout, LOCK and PREPARE come back`, async () => {
      const seen = await compatCounts(off);
      await withClient(async (c) => {
        await rejectsWith(
          run(c, 'SET statement_timeout = 0'),
          '0A000',
          'setting configuration parameter "statement_timeout" not supported',
        );
        await run(c, 'BEGIN');
        await rejectsWith(
          run(c, `LOCK TABLE ${T} IN ACCESS SHARE MODE`),
          '0A000',
          'unsupported statement: Lock',
        );
        await run(c, 'ROLLBACK');
        await rejectsWith(run(c, 'PREPARE q AS SELECT 1'), '0A000', 'unsupported statement: Prepare');
        assert.deepEqual((await run(c, 'SELECT 1 AS one')).rows, [{ one: 1 }]);
      }, off);
      assert.deepEqual(deltas(seen, await compatCounts(off)), {});
    });
  }
});
