/**
 * `dsql-proxy demo` end to end: the built CLI starts PostgreSQL, the DSQL-like endpoint and the real
 * proxy, prints how to connect, serves SCRAM logins for admin and app, and cleans up on SIGTERM.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { freePort } from '../../src/local-endpoint/embedded-postgres.js';
import { type DemoProcess, startDemo } from '../support/demo-process.js';

let demo: DemoProcess;
let port: number;

before(async () => {
  port = await freePort();
  demo = await startDemo(['--listen', `127.0.0.1:${port}`]);
});

after(async () => {
  if (demo && demo.child.exitCode === null) await demo.stop();
});

function client(user: string, password: string): pg.Client {
  const c = new pg.Client({ host: demo.host, port: demo.port, user, password, database: 'postgres' });
  c.on('error', () => {});
  return c;
}

describe('dsql-proxy demo', () => {
  test('prints the psql lines for admin and app on the requested address', () => {
    assert.equal(demo.host, '127.0.0.1');
    assert.equal(demo.port, port);
    assert.deepEqual(demo.psqlLines, [
      `PGPASSWORD=${demo.password} psql -h 127.0.0.1 -p ${port} -U admin`,
      `PGPASSWORD=${demo.password} psql -h 127.0.0.1 -p ${port} -U app`,
    ]);
    assert.match(demo.stdout(), /demo0000000000000000000000\.dsql\.us-east-1\.on\.aws/);
    assert.match(demo.stdout(), /Ctrl-C to stop/);
    assert.match(demo.stdout(), /The local endpoint refuses what DSQL refuses \(docs\/dsql\.md\)/);
    assert.ok(existsSync(demo.dataDir), 'the data directory exists while the demo runs');
  });

  test('admin connects with SCRAM and can create, insert and select', async () => {
    const c = client('admin', demo.password);
    await c.connect();
    try {
      assert.equal((await c.query('select current_user as u')).rows[0].u, 'admin');
      await c.query('create table demo_items (id int primary key, name text)');
      await c.query("insert into demo_items values (1, 'one'), (2, 'two')");
      const { rows } = await c.query('select id, name from demo_items order by id');
      assert.deepEqual(rows, [
        { id: 1, name: 'one' },
        { id: 2, name: 'two' },
      ]);
    } finally {
      await c.end();
    }
  });

  test('the endpoint behind the proxy refuses what DSQL refuses', async () => {
    const c = client('admin', demo.password);
    await c.connect();
    try {
      // TRUNCATE is refused by DSQL and not bridged by the proxy: the endpoint's refusal comes through.
      await assert.rejects(c.query('TRUNCATE demo_items'), {
        code: '0A000',
        message: 'TRUNCATE is not supported',
      });
      // LOCK outside a transaction block: the proxy's compatibility layer answers as PostgreSQL does.
      await assert.rejects(c.query('LOCK TABLE demo_items'), {
        code: '25P01',
        message: 'LOCK TABLE can only be used in transaction blocks',
      });
      assert.equal(
        (await c.query('SHOW transaction_isolation')).rows[0].transaction_isolation,
        'repeatable read',
      );
      // The demo logs the refusal (DSQL's error, not the SQL text).
      const line = demo
        .stderr()
        .split('\n')
        .find((l) => l.includes('"endpoint_refusal"'));
      assert.ok(line, demo.stderr());
      assert.equal(JSON.parse(line).sqlstate, '0A000');
      assert.ok(!line.includes('demo_items'), 'no SQL text in the log');
    } finally {
      await c.end();
    }
  });

  test('app connects with SCRAM as a DbConnect role', async () => {
    const c = client('app', demo.password);
    await c.connect();
    try {
      assert.equal((await c.query('select current_user as u')).rows[0].u, 'app');
    } finally {
      await c.end();
    }
  });

  test('a wrong password is refused with 28P01', async () => {
    const c = client('app', `${demo.password}-wrong`);
    await assert.rejects(c.connect(), (err: pg.DatabaseError) => {
      assert.equal(err.code, '28P01');
      return true;
    });
  });

  test('SIGTERM stops everything, exits 0 and removes the temporary data directory', async () => {
    const { code, signal } = await demo.stop('SIGTERM');
    assert.equal(signal, null);
    assert.equal(code, 0, demo.stderr());
    assert.ok(!existsSync(demo.dataDir), `${demo.dataDir} is removed`);
  });
});
