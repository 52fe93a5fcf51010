/**
 * --pool-mode session: a client that leaves cleanly hands its reset DSQL connection to the next
 * client of the same role and startup parameters; nothing of one client's session reaches the next.
 *
 * All against the local endpoint with DSQL's rules on: the reset undoes exactly what the session
 * changed with statements DSQL accepts (`RESET <name>`, `DEALLOCATE ALL`), never `DISCARD ALL` or
 * `RESET ALL`, which the rules refuse as DSQL does (issue 23).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { type ProxyProcess, startProxyProcess } from '../support/proxy-process.js';
import { startTestStack, type TestStack } from '../support/stack.js';

/** The endpoint with DSQL's rules (the default), and its pooling proxy. */
let stack: TestStack;
let proxy: ProxyProcess;

const POOL_ARGS = ['--pool-mode', 'session', '--admin-listen', '127.0.0.1:0', '--log-level', 'trace'];

before(async () => {
  stack = await startTestStack();
  proxy = await startProxyProcess(stack, { args: POOL_ARGS });
});

after(async () => {
  await proxy?.stop();
  await stack?.stop();
});

const logins = (user: string, on: TestStack = stack) =>
  on.endpoint.logins.filter((l) => l.user === user).length;

async function metric(name: string, on: ProxyProcess = proxy): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${on.adminPort}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`));
  return line ? Number(line.split(' ').at(-1)) : 0;
}

async function session<T>(
  cfg: pg.ClientConfig,
  work: (c: pg.Client) => Promise<T>,
  on: ProxyProcess = proxy,
): Promise<T> {
  const client = new pg.Client({ host: on.host, port: on.port, user: 'app', password: '', ...cfg });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

const pid = (c: pg.Client) => c.query('select pg_backend_pid() as pid').then((r) => Number(r.rows[0].pid));
const settle = () => new Promise((r) => setTimeout(r, 150));

/** The pool's resets so far, by outcome. */
async function resets(on: ProxyProcess = proxy): Promise<Record<string, number>> {
  const text = await (await fetch(`http://127.0.0.1:${on.adminPort}/metrics`)).text();
  const out: Record<string, number> = {};
  for (const m of text.matchAll(/^dsql_proxy_pool_resets_total\{outcome="(\w+)"\} (\d+)$/gm))
    out[m[1] as string] = Number(m[2]);
  return out;
}

describe("--pool-mode session with DSQL's rules", () => {
  test('ten sequential clients that change settings and prepare statements: one upstream login', async () => {
    const before = logins('app');
    const pids = new Set<number>();
    for (let i = 0; i < 10; i++) {
      pids.add(
        await session({}, async (c) => {
          // Settings DSQL accepts, which a connection reused without a reset would carry to the next client.
          const seen = await c.query(
            "select current_setting('TimeZone') as tz, current_setting('search_path') as sp",
          );
          assert.notEqual(seen.rows[0].tz, 'Asia/Tokyo', `client ${i} starts from the login state`);
          assert.equal(seen.rows[0].sp, '"$user", public', `client ${i} starts from the login search_path`);
          await c.query("SET TimeZone TO 'Asia/Tokyo'");
          await c.query('SET search_path TO pg_catalog');
          // The same names each time: the previous client's statements are gone.
          await c.query('PREPARE sqlp AS SELECT 1');
          await c.query({ name: 'protop', text: 'select $1::int as n', values: [i] });
          return pid(c);
        }),
      );
      await settle(); // the release (reset) happens after the client is gone
    }
    assert.equal(logins('app') - before, 1, 'one upstream login for ten clients');
    assert.equal(pids.size, 1, 'one upstream backend');
    assert.deepEqual(await resets(), { reset: 10 }, 'every release reset, none refused');
    assert.equal(await metric('dsql_proxy_pool_reuses_total'), 9);
    assert.equal(await metric('dsql_proxy_pool_idle_connections'), 1);
    // Ten hand-overs of one socket: each owner removed its listeners (a leak shows as Node's warning).
    const warnings = proxy.logs.filter((l) => l.raw.includes('MaxListenersExceededWarning'));
    assert.deepEqual(
      warnings.map((l) => l.raw),
      [],
    );
  });

  test('stress: 50 sequential clients, half of them changing state, share one upstream login', async (t) => {
    const before = logins('app');
    const resetsBefore = await resets();
    const reusesBefore = await metric('dsql_proxy_pool_reuses_total');
    for (let i = 0; i < 50; i++) {
      await session({}, async (c) => {
        if (i % 2 === 1) await c.query('SET extra_float_digits TO 0');
        await c.query('select 1');
      });
      await settle();
    }
    const after = await resets();
    const delta = (k: string) => (after[k] ?? 0) - (resetsBefore[k] ?? 0);
    const upstreamLogins = logins('app') - before;
    t.diagnostic(
      `50 clients: upstream logins ${upstreamLogins}, pool_resets_total reset=${delta('reset')} clean=${delta('clean')} failed=${delta('failed')}`,
    );
    assert.equal(upstreamLogins, 0, 'the connection the test before left in the pool serves all fifty');
    assert.equal(delta('reset'), 25, 'a RESET for each client that changed a setting');
    assert.equal(delta('clean'), 25, 'no round trip for a client that changed nothing');
    assert.equal(delta('failed'), 0);
    assert.equal((await metric('dsql_proxy_pool_reuses_total')) - reusesBefore, 50);
  });

  test("one client's session state does not reach the next", async () => {
    const first = await session({}, async (c) => {
      await c.query('SET search_path TO pg_catalog');
      await c.query("SET TimeZone TO 'Asia/Tokyo'");
      await c.query('PREPARE sqlp AS SELECT 1');
      await c.query({ name: 'protop', text: 'select $1::int as n', values: [1] });
      return pid(c);
    });
    await settle();
    await session({}, async (c) => {
      assert.equal(await pid(c), first, 'the same upstream connection');
      const r = await c.query(
        "select current_setting('search_path') as sp, current_setting('TimeZone') as tz",
      );
      assert.equal(r.rows[0].sp, '"$user", public');
      assert.notEqual(r.rows[0].tz, 'Asia/Tokyo');
      // Names the previous client used are free again.
      await c.query('PREPARE sqlp AS SELECT 2');
      assert.equal(
        (await c.query({ name: 'protop', text: 'select $1::int * 3 as n', values: [2] })).rows[0].n,
        6,
      );
    });
  });

  test('a client that leaves inside a transaction does not give its connection back', async () => {
    await settle();
    const inTx = await session({}, async (c) => {
      await c.query('begin');
      await c.query('select 1');
      return pid(c);
    });
    await settle();
    const next = await session({}, pid);
    assert.notEqual(next, inTx, 'the connection left mid-transaction was closed, not reused');
  });

  test('a client that vanishes without Terminate does not give its connection back', async () => {
    await settle();
    const client = new pg.Client({ host: proxy.host, port: proxy.port, user: 'app', password: '' });
    client.on('error', () => {});
    await client.connect();
    const gone = await pid(client);
    (client as unknown as { connection: { stream: import('node:net').Socket } }).connection.stream.destroy();
    await settle();
    const next = await session({}, pid);
    assert.notEqual(next, gone);
  });

  test('different startup parameters or roles get different connections', async () => {
    await settle();
    const a = await session({ application_name: 'pool-a' }, pid);
    await settle();
    const b = await session({ application_name: 'pool-b' }, pid);
    await settle();
    const a2 = await session({ application_name: 'pool-a' }, pid);
    assert.notEqual(a, b);
    assert.equal(a2, a);
    const admin = await session(
      { user: 'admin' },
      async (c) => (await c.query('select current_user as u')).rows[0].u,
    );
    assert.equal(admin, 'admin');
  });
});

describe('--pool-max-idle-total', () => {
  test('clients that vary application_name cannot make the pool hold more than the total', async () => {
    const small = await startProxyProcess(stack, {
      args: ['--pool-mode', 'session', '--pool-max-idle-total', '2', '--admin-listen', '127.0.0.1:0'],
    });
    try {
      const idle = async (): Promise<number> => {
        const text = await (await fetch(`http://127.0.0.1:${small.adminPort}/metrics`)).text();
        const line = text.split('\n').find((l) => l.startsWith('dsql_proxy_pool_idle_connections '));
        return line ? Number(line.split(' ').at(-1)) : 0;
      };
      const opened = stack.endpoint.connections;
      // Other proxies of this file may hold pooled connections of their own.
      const socketsBefore = stack.endpoint.sockets;
      for (let i = 0; i < 5; i++) {
        const c = new pg.Client({
          host: small.host,
          port: small.port,
          user: 'app',
          password: '',
          application_name: `name-${i}`,
        });
        await c.connect();
        await c.query('select 1');
        await c.end();
        await settle();
        assert.ok((await idle()) <= 2, `at most 2 idle after ${i + 1} clients`);
      }
      assert.equal(await idle(), 2);
      assert.equal(stack.endpoint.connections - opened, 5, 'each name needed its own connection');
      // The evicted connections were closed, not left open at the endpoint.
      const start = Date.now();
      const ours = () => stack.endpoint.sockets - socketsBefore;
      while (ours() > 2 && Date.now() - start < 3000) await settle();
      assert.ok(ours() <= 2, `endpoint sockets of this proxy: ${ours()}`);
    } finally {
      await small.stop();
    }
  });
});
