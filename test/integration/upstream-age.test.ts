/**
 * Sessions that outlast DSQL's connection cap. The test endpoint closes every connection after a few
 * seconds with a bare close, as DSQL does at 60 minutes; the proxy moves idle sessions to a fresh
 * connection before that (--max-upstream-age), carrying settings and prepared statements over.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { parse, serialize } from 'pg-protocol';
import type { BackendMessage, DataRowMessage } from 'pg-protocol/dist/messages.js';
import postgres from 'postgres';
import { type ProxyProcess, startProxyProcess } from '../support/proxy-process.js';
import { startTestStack, type TestStack } from '../support/stack.js';

const CAP_MS = 3000;
let stack: TestStack;
const procs: ProxyProcess[] = [];

before(async () => {
  stack = await startTestStack({ maxConnectionMs: CAP_MS });
});

after(async () => {
  await Promise.all(procs.map((p) => p.stop()));
  await stack?.stop();
});

async function proxy(args: string[], on: TestStack = stack): Promise<ProxyProcess> {
  const p = await startProxyProcess(on, { args: ['--log-level', 'trace', ...args] });
  procs.push(p);
  return p;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('--max-upstream-age moves idle sessions before the cap', () => {
  test('node-postgres: settings and named prepared statements survive several caps', async () => {
    const p = await proxy(['--max-upstream-age', '1500ms']);
    const client = new pg.Client({
      host: p.host,
      port: p.port,
      user: 'app',
      password: '',
      application_name: 'age-test',
    });
    await client.connect();
    try {
      await client.query('SET search_path TO pg_catalog, public');
      await client.query("SET TimeZone TO 'Asia/Tokyo'");
      await client.query('SET extra_float_digits TO 0');
      await client.query('SET enable_seqscan TO off');
      await client.query("SET DateStyle TO 'SQL, DMY'");
      const named = { name: 'add_one', text: 'select $1::int + 1 as n' };
      assert.equal((await client.query({ ...named, values: [1] })).rows[0].n, 2);

      const pids = new Set<number>();
      const until = Date.now() + CAP_MS * 3;
      let rounds = 0;
      while (Date.now() < until) {
        // The statement is executed by name only: node-postgres does not parse it again.
        const r = await client.query({ ...named, values: [rounds] });
        assert.equal(r.rows[0].n, rounds + 1);
        const s = await client.query(
          `select pg_backend_pid() as pid, current_setting('search_path') as sp, current_setting('TimeZone') as tz,
                  current_setting('extra_float_digits') as efd, current_setting('enable_seqscan') as es,
                  current_setting('DateStyle') as ds, current_setting('application_name') as app`,
        );
        const row = s.rows[0] as Record<string, string | number>;
        assert.deepEqual(
          { sp: row.sp, tz: row.tz, efd: row.efd, es: row.es, ds: row.ds, app: row.app },
          {
            sp: 'pg_catalog, public',
            tz: 'Asia/Tokyo',
            efd: '0',
            es: 'off',
            ds: 'SQL, DMY',
            app: 'age-test',
          },
        );
        pids.add(Number(row.pid));
        rounds++;
        await sleep(250);
      }
      assert.ok(pids.size >= 3, `the session ran on ${pids.size} upstream connections`);
    } finally {
      await client.end();
    }
    const moves = p.logs.filter((l) => l.json?.event === 'upstream_moved');
    assert.ok(moves.length >= 2, `${moves.length} moves logged`);
    assert.ok(moves.every((m) => Number(m.json?.prepared_statements) >= 1 && Number(m.json?.settings) >= 7));
    assert.equal(p.logs.filter((l) => l.json?.event === 'upstream_lost').length, 0, 'no session hit the cap');
  });

  test('SET ROLE (a setting DSQL accepts, never reported by the server) survives moves', async () => {
    await stack.postgres.query(
      "do $$ begin if not exists (select from pg_roles where rolname = 'age_reader') then create role age_reader; end if; end $$; grant age_reader to app",
    );
    const p = await proxy(['--max-upstream-age', '1500ms']);
    const client = new pg.Client({ host: p.host, port: p.port, user: 'app', password: '' });
    await client.connect();
    try {
      await client.query('SET ROLE age_reader');
      const users = new Set<string>();
      const until = Date.now() + CAP_MS * 3;
      while (Date.now() < until && p.logs.filter((l) => l.json?.event === 'upstream_moved').length < 2) {
        users.add((await client.query('select current_user as u')).rows[0].u);
        await sleep(250);
      }
      users.add((await client.query('select current_user as u')).rows[0].u);
      assert.ok(p.logs.filter((l) => l.json?.event === 'upstream_moved').length >= 2, 'the session moved');
      assert.deepEqual(
        [...users],
        ['age_reader'],
        'the role is the one the client set, before and after moves',
      );
    } finally {
      await client.end();
    }
  });

  test('postgres.js (extended protocol, prepared statements) keeps working across caps', async () => {
    const p = await proxy(['--max-upstream-age', '1500ms']);
    const sql = postgres({ host: p.host, port: p.port, user: 'app', password: '', max: 1, prepare: true });
    try {
      await sql`set search_path to public`;
      const until = Date.now() + CAP_MS * 2.5;
      let i = 0;
      while (Date.now() < until) {
        const [row] = await sql<
          { n: number; sp: string }[]
        >`select ${i}::int * 2 as n, current_setting('search_path') as sp`;
        assert.equal(row?.n, i * 2);
        assert.equal(row?.sp, 'public');
        i++;
        await sleep(200);
      }
    } finally {
      await sql.end();
    }
    assert.ok(p.logs.filter((l) => l.json?.event === 'upstream_moved').length >= 2);
  });

  test('a session inside a long transaction at the cap gets a clear FATAL error', async () => {
    const p = await proxy(['--max-upstream-age', '1s']);
    const client = new pg.Client({ host: p.host, port: p.port, user: 'app', password: '' });
    client.on('error', () => {});
    await client.connect();
    await client.query('begin');
    const err = await client.query(`select pg_sleep(${(CAP_MS * 1.5) / 1000})`).then(
      () => undefined,
      (e: pg.DatabaseError) => e,
    );
    assert.ok(err, 'the query must fail when the upstream closes under it');
    assert.equal(err.code, '08006');
    assert.match(err.message, /the DSQL endpoint closed the connection after \d.* \(inside a transaction\)/);
    const lost = await p.waitForLog((l) => l.event === 'upstream_lost');
    assert.equal(lost.context, 'inside a transaction');
    await client.end().catch(() => {});
  });
});

describe('a session move never runs client SQL again', () => {
  // Against DSQL's rules: the compatibility layer carries SQL PREPARE out over protocol-level
  // statements, which a move re-creates with Parse (preparing only). The session that could not move
  // before (08006 at its move, on plain PostgreSQL) has no counterpart left: with --compat off DSQL
  // refuses the PREPARE itself, so no session can hold SQL-level statements a move cannot re-create.
  test('PREPARE and EXECUTE in one Query: the row is inserted once, the session moves, EXECUTE still works', async () => {
    // The reproduction of issue 20: the move used to run the PREPARE's whole Query string again.
    await stack.postgres.query(
      'drop table if exists public.age_prepare; create table public.age_prepare (n int); grant select, insert on public.age_prepare to app',
    );
    const p = await proxy(['--max-upstream-age', '1500ms']);
    const client = new pg.Client({ host: p.host, port: p.port, user: 'app', password: '' });
    await client.connect();
    const pids = new Set<number>();
    try {
      await client.query('PREPARE ins AS INSERT INTO public.age_prepare VALUES (1); EXECUTE ins');
      const until = Date.now() + CAP_MS * 3;
      while (Date.now() < until) {
        pids.add((await client.query('select pg_backend_pid() as pid')).rows[0].pid);
        await sleep(250);
      }
      // The statement moved with the session: one EXECUTE, one more row.
      await client.query('EXECUTE ins');
    } finally {
      await client.end();
    }
    const [row] = await stack.postgres.query<{ n: string }>('select count(*) as n from public.age_prepare');
    assert.equal(Number(row?.n), 2, 'each EXECUTE inserted once, the move re-ran nothing');
    assert.ok(pids.size >= 2, `the session ran on ${pids.size} upstream connections`);
    assert.ok(p.logs.filter((l) => l.json?.event === 'upstream_moved').length >= 1);
    assert.equal(p.logs.filter((l) => l.json?.event === 'upstream_move_refused').length, 0);
    assert.doesNotMatch(p.logs.map((l) => l.raw).join('\n'), /INSERT INTO/i, 'no client SQL in the logs');
  });

  test('a session whose SQL PREPARE is gone again (DEALLOCATE) still moves', async () => {
    const p = await proxy(['--max-upstream-age', '1500ms']);
    const client = new pg.Client({ host: p.host, port: p.port, user: 'app', password: '' });
    await client.connect();
    try {
      await client.query('PREPARE two AS select 2 as n');
      assert.equal((await client.query('EXECUTE two')).rows[0].n, 2);
      await client.query('DEALLOCATE two');
      const pids = new Set<number>();
      const until = Date.now() + CAP_MS * 2;
      while (Date.now() < until) {
        pids.add((await client.query('select pg_backend_pid() as pid')).rows[0].pid);
        await sleep(250);
      }
      assert.ok(pids.size >= 2, `the session ran on ${pids.size} upstream connections`);
      await assert.rejects(client.query('EXECUTE two'), /prepared statement "two" does not exist/);
    } finally {
      await client.end();
    }
    assert.ok(p.logs.filter((l) => l.json?.event === 'upstream_moved').length >= 1);
    assert.equal(p.logs.filter((l) => l.json?.event === 'upstream_move_refused').length, 0);
  });
});

/** A bare protocol client, to send what drivers refuse to send (a second Parse of a name). */
async function rawClient(host: string, port: number) {
  const socket = net.connect(port, host);
  socket.on('error', () => {});
  const inbox: BackendMessage[] = [];
  let wake: (() => void) | undefined;
  void parse(socket, (m) => {
    inbox.push(m);
    wake?.();
  });
  /** The messages up to and including the next ReadyForQuery. */
  const untilReady = async (): Promise<BackendMessage[]> => {
    const got: BackendMessage[] = [];
    for (;;) {
      const m = inbox.shift();
      if (m === undefined) {
        await new Promise<void>((r) => {
          wake = r;
        });
        continue;
      }
      got.push(m);
      if (m.name === 'authenticationCleartextPassword') socket.write(serialize.password(''));
      if (m.name === 'readyForQuery') return got;
    }
  };
  await new Promise<void>((r) => socket.once('connect', () => r()));
  socket.write(serialize.startup({ user: 'app', database: 'postgres' }));
  await untilReady();
  return {
    send: (...parts: Buffer[]) => {
      socket.write(Buffer.concat(parts));
      return untilReady();
    },
    close: () => socket.end(serialize.end()),
  };
}

describe('a move re-creates the prepared statements the server accepted, not what the client sent', () => {
  test('a refused second Parse of a name does not replace the statement carried to the next connection', async () => {
    const p = await proxy(['--max-upstream-age', '1500ms']);
    const c = await rawClient(p.host, p.port);
    try {
      const first = await c.send(serialize.parse({ name: 'n1', text: 'select 1 as v' }), serialize.sync());
      assert.ok(first.some((m) => m.name === 'parseComplete'));
      const second = await c.send(serialize.parse({ name: 'n1', text: 'select 2 as v' }), serialize.sync());
      const refused = second.find((m) => m.name === 'error') as { code?: string } | undefined;
      assert.equal(refused?.code, '42P05', 'the server refuses a second Parse of an existing name');
      const runN1 = async (): Promise<string> => {
        const answer = await c.send(
          serialize.bind({ statement: 'n1' }),
          serialize.execute({}),
          serialize.sync(),
        );
        const row = answer.find((m): m is DataRowMessage => m.name === 'dataRow');
        assert.ok(row, `n1 answered: ${answer.map((m) => m.name).join(',')}`);
        return String(row.fields[0]);
      };
      const until = Date.now() + CAP_MS * 3;
      const values = new Set<string>();
      while (Date.now() < until && p.logs.filter((l) => l.json?.event === 'upstream_moved').length < 2) {
        values.add(await runN1());
        await sleep(250);
      }
      values.add(await runN1());
      assert.ok(p.logs.filter((l) => l.json?.event === 'upstream_moved').length >= 2, 'the session moved');
      assert.deepEqual([...values], ['1'], 'n1 is the statement the server accepted, before and after moves');
    } finally {
      c.close();
    }
  });
});

describe('an unexpected upstream close', () => {
  test('idle with reported settings only: reconnected transparently, settings kept', async () => {
    const p = await proxy(['--max-upstream-age', '1h']);
    const client = new pg.Client({ host: p.host, port: p.port, user: 'app', password: '' });
    await client.connect();
    try {
      await client.query("SET TimeZone TO 'America/Lima'");
      const named = { name: 'double', text: 'select $1::int * 2 as n' };
      assert.equal((await client.query({ ...named, values: [2] })).rows[0].n, 4);
      const before = (await client.query('select pg_backend_pid() as pid')).rows[0].pid;
      await sleep(CAP_MS + 500); // the endpoint closes the idle upstream connection
      await p.waitForLog((l) => l.event === 'upstream_reconnected');
      const r = await client.query("select pg_backend_pid() as pid, current_setting('TimeZone') as tz");
      assert.notEqual(r.rows[0].pid, before);
      assert.equal(r.rows[0].tz, 'America/Lima');
      assert.equal((await client.query({ ...named, values: [5] })).rows[0].n, 10);
    } finally {
      await client.end();
    }
  });

  test('idle after SET search_path (not reported by the server): a FATAL error instead of silent loss', async () => {
    const p = await proxy(['--max-upstream-age', '1h']);
    const client = new pg.Client({ host: p.host, port: p.port, user: 'app', password: '' });
    const closed = new Promise<pg.DatabaseError>((resolve) =>
      client.on('error', (e) => resolve(e as pg.DatabaseError)),
    );
    await client.connect();
    await client.query('SET search_path TO pg_catalog');
    const err = await closed;
    assert.equal(err.code, '08006');
    assert.match(err.message, /closed the connection after .* \(between transactions\)/);
    // The log line is written as the error is sent; wait for it rather than race the log pipe.
    const lost = await p.waitForLog((l) => l.event === 'upstream_lost');
    assert.equal(lost.context, 'between transactions');
  });
});
