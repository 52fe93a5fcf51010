/**
 * Startup parameters DSQL does not accept (--startup-params), against an endpoint that refuses them
 * the way DSQL does (`strictStartupParams`, using the same list as the proxy): node-postgres with
 * statement_timeout, PGOPTIONS-style `options`, and pgAdmin's client_min_messages (sent as a startup
 * parameter through postgres.js `connection`, since node-postgres only sends the keys it knows).
 *
 * The filter's own behaviour is tested with `--compat off`: with the compatibility layer on (the
 * default) the parameters it answers for (statement_timeout, client_min_messages, ...) are taken by
 * the layer and never reach the filter; the last describe shows that.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import postgres from 'postgres';
import { type ProxyProcess, startProxyProcess } from '../support/proxy-process.js';
import { startTestStack, type TestStack } from '../support/stack.js';

const NOTICE_PREFIX = 'dsql-proxy did not forward startup parameters that Aurora DSQL does not accept: ';

/** The fields of node-postgres's notice event the tests read. */
interface Notice {
  message?: string;
  severity?: string;
  code?: string;
}

let stack: TestStack;
const procs: ProxyProcess[] = [];

before(async () => {
  stack = await startTestStack({ strictStartupParams: true });
});

after(async () => {
  await Promise.all(procs.map((p) => p.stop()));
  await stack?.stop();
});

async function proxy(args: string[] = [], compat = false): Promise<ProxyProcess> {
  const p = await startProxyProcess(stack, { args: compat ? args : ['--compat', 'off', ...args] });
  procs.push(p);
  return p;
}

/** Connects with node-postgres, collecting the notices that arrive during login. */
async function pgConnect(
  p: ProxyProcess,
  cfg: pg.ClientConfig,
): Promise<{ client: pg.Client; notices: Notice[] }> {
  const client = new pg.Client({ host: p.host, port: p.port, user: 'app', password: '', ...cfg });
  const notices: Notice[] = [];
  client.on('notice', (n) => notices.push(n));
  await client.connect();
  return { client, notices };
}

async function pgError(p: ProxyProcess, cfg: pg.ClientConfig): Promise<pg.DatabaseError> {
  const client = new pg.Client({ host: p.host, port: p.port, user: 'app', password: '', ...cfg });
  client.on('error', () => {});
  const err = await client.connect().then(
    () => {
      void client.end();
      return undefined;
    },
    (e: unknown) => e,
  );
  assert.ok(err instanceof Error, 'the connection should have been refused');
  return err as pg.DatabaseError;
}

describe('--startup-params drop (default)', () => {
  let p: ProxyProcess;
  before(async () => {
    p = await proxy();
  });

  test('node-postgres with statement_timeout connects and is told what was left out', async () => {
    const { client, notices } = await pgConnect(p, { statement_timeout: 5000 });
    try {
      const res = await client.query('show statement_timeout');
      assert.equal(res.rows[0].statement_timeout, '0', 'statement_timeout was not forwarded');
      assert.equal(notices.length, 1);
      assert.equal(notices[0]?.message, `${NOTICE_PREFIX}statement_timeout`);
      assert.equal(notices[0]?.severity, 'NOTICE');
      assert.equal(notices[0]?.code, '00000');
    } finally {
      await client.end();
    }
    const line = await p.waitForLog((l) => l.event === 'startup_params_dropped');
    assert.deepEqual(line.dropped, ['statement_timeout']);
  });

  test('options: accepted settings are applied, the others dropped', async () => {
    const { client, notices } = await pgConnect(p, {
      options: '-c search_path=myschema -c statement_timeout=1s',
    });
    try {
      const res = await client.query('show search_path');
      assert.equal(res.rows[0].search_path, 'myschema');
      assert.deepEqual(
        notices.map((n) => n.message),
        [`${NOTICE_PREFIX}statement_timeout (from options)`],
      );
    } finally {
      await client.end();
    }
  });

  test('pgAdmin-like client_min_messages (postgres.js connection parameter) connects', async () => {
    const notices: string[] = [];
    const sql = postgres({
      host: p.host,
      port: p.port,
      user: 'app',
      pass: '',
      max: 1,
      connection: { client_min_messages: 'notice', TimeZone: 'UTC' },
      onnotice: (n) => notices.push(String(n.message)),
    });
    try {
      const rows = await sql`show timezone`;
      assert.equal(rows[0]?.TimeZone, 'UTC', 'an accepted parameter in another case is forwarded');
      assert.deepEqual(notices, [`${NOTICE_PREFIX}client_min_messages`]);
    } finally {
      await sql.end();
    }
  });

  test('accepted parameters alone bring no notice', async () => {
    const { client, notices } = await pgConnect(p, { application_name: 'plain' });
    try {
      await client.query('select 1');
      assert.deepEqual(notices, []);
    } finally {
      await client.end();
    }
  });
});

describe('--startup-params reject', () => {
  test('the login fails with 0A000 naming the parameters and the way out', async () => {
    const p = await proxy(['--startup-params', 'reject']);
    const err = await pgError(p, { statement_timeout: 5000 });
    assert.equal(err.code, '0A000');
    assert.match(err.message, /statement_timeout/);
    assert.match(err.message, /--startup-params drop/);

    const sql = postgres({
      host: p.host,
      port: p.port,
      user: 'app',
      pass: '',
      max: 1,
      connection: { client_min_messages: 'notice' },
    });
    try {
      await assert.rejects(sql`select 1`, (e: postgres.PostgresError) => {
        assert.equal(e.code, '0A000');
        assert.match(e.message, /client_min_messages/);
        return true;
      });
    } finally {
      await sql.end();
    }
  });
});

describe('--startup-params pass', () => {
  test("DSQL's own refusal reaches the client", async () => {
    const p = await proxy(['--startup-params', 'pass']);
    const err = await pgError(p, { statement_timeout: 5000 });
    assert.equal(err.code, '0A000');
    assert.equal(err.message, 'setting configuration parameter "statement_timeout" not supported');
  });
});

describe('with the compatibility layer on (the default)', () => {
  let p: ProxyProcess;
  before(async () => {
    p = await proxy([], true);
  });

  test('statement_timeout, client_min_messages and options -c are taken by the layer: no NOTICE, SHOW gives them', async () => {
    const { client, notices } = await pgConnect(p, {
      statement_timeout: 3000,
      options: '-c lock_timeout=2s -c search_path=public',
    });
    try {
      assert.deepEqual(notices, [], 'nothing was dropped');
      assert.deepEqual((await client.query('SHOW statement_timeout')).rows, [{ statement_timeout: '3s' }]);
      assert.deepEqual((await client.query('SHOW lock_timeout')).rows, [{ lock_timeout: '2s' }]);
      assert.deepEqual((await client.query('SHOW search_path')).rows, [{ search_path: 'public' }]);
      // RESET returns to the startup value, as in PostgreSQL.
      await client.query('SET statement_timeout = 0');
      await client.query('RESET statement_timeout');
      assert.deepEqual((await client.query('SHOW statement_timeout')).rows, [{ statement_timeout: '3s' }]);
    } finally {
      await client.end();
    }
  });

  test('an invalid value of a parameter the layer takes refuses the login with 22023, as PostgreSQL', async () => {
    const err = await pgError(p, { options: '-c statement_timeout=5x' });
    assert.equal(err.code, '22023');
    assert.equal(err.message, 'invalid value for parameter "statement_timeout": "5x"');
  });
});
