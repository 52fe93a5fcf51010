/**
 * The whole path with real parts: node-postgres and postgres.js → the real proxy process (SCRAM,
 * md5 or cleartext locally) → TLS + SNI + SigV4 token → a DSQL-like endpoint → real PostgreSQL.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import postgres from 'postgres';
import { md5Secret } from '../../src/auth/md5.js';
import { createScramVerifier } from '../../src/auth/scram.js';
import {
  allLogLines,
  type ProxyProcess,
  startProxyProcess,
  writeAuthFile,
} from '../support/proxy-process.js';
import { assertNoSecrets, registerPasswords } from '../support/secrets.js';
import { startTestStack, type TestStack } from '../support/stack.js';
import { tempDir } from '../support/temp-dirs.js';

const PASSWORDS = {
  admin: 'admin-local-pw',
  app: 'app pässword',
  alice: 'alice-md5-pw',
  bob: 'bob-plain-pw',
};
/** The wrong passwords the tests send: no more allowed in a log line than the right ones. */
const WRONG = {
  scram: 'nope-wrong-c41f',
  unknown: 'whatever-pw-8b2e',
  md5: 'wrong-md5-e07a',
  plain: 'wrong-plain-3d95',
};
// Every proxy's scan at stop() (md5 and password proxies too) looks for all of them.
registerPasswords(...Object.values(PASSWORDS), ...Object.values(WRONG));

let stack: TestStack;
let scram: ProxyProcess;

function authFile(): string {
  return writeAuthFile([
    ['admin', createScramVerifier(PASSWORDS.admin)],
    ['app', createScramVerifier(PASSWORDS.app)],
    ['alice', md5Secret(PASSWORDS.alice, 'alice')],
    ['bob', PASSWORDS.bob],
  ]);
}

async function pgQuery(
  proxy: ProxyProcess,
  user: string,
  password: string,
  sql: string,
): Promise<pg.QueryResult> {
  const client = new pg.Client({ host: proxy.host, port: proxy.port, user, password, database: 'anything' });
  await client.connect();
  try {
    return await client.query(sql);
  } finally {
    await client.end();
  }
}

async function pgError(proxy: ProxyProcess, cfg: pg.ClientConfig): Promise<pg.DatabaseError> {
  const client = new pg.Client({ host: proxy.host, port: proxy.port, ...cfg });
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

before(async () => {
  stack = await startTestStack();
  await stack.postgres.query('create table if not exists public.items (id int primary key, name text)');
  await stack.postgres.query('grant all on public.items to app');
  // alice and bob are local users mapped to DSQL roles through the config file
  scram = await startProxyProcess(stack, {
    args: ['--auth-file', authFile(), '--config', roleMapConfig({ alice: 'app', bob: 'app' })],
  });
});

after(async () => {
  await scram?.stop();
  await stack?.stop();
  // Every line of every proxy this file started (SCRAM, md5, password, trust), with the passwords.
  assertNoSecrets(allLogLines, {
    credentials: stack.credentials,
    tokens: stack.endpoint.logins.map((l) => l.token),
  });
});

function roleMapConfig(map: Record<string, string>): string {
  const file = join(tempDir('cfg'), 'proxy.yaml');
  writeFileSync(
    file,
    `role-map:\n${Object.entries(map)
      .map(([k, v]) => `  ${k}: ${v}\n`)
      .join('')}log-level: trace\n`,
  );
  return file;
}

describe('node-postgres through the proxy with SCRAM-SHA-256', () => {
  test('admin logs in with an admin token and runs queries', async () => {
    const r = await pgQuery(
      scram,
      'admin',
      PASSWORDS.admin,
      'select current_user as u, current_database() as d',
    );
    assert.deepEqual(r.rows, [{ u: 'admin', d: 'postgres' }]);
    const login = stack.endpoint.logins.findLast((l) => l.user === 'admin');
    assert.equal(login?.ok, true);
    assert.equal(login?.action, 'DbConnectAdmin');
  });

  test('a non-admin role gets a DbConnect token; writes and reads round-trip', async () => {
    const client = new pg.Client({
      host: scram.host,
      port: scram.port,
      user: 'app',
      password: PASSWORDS.app,
    });
    await client.connect();
    try {
      await client.query('delete from public.items');
      await client.query('insert into public.items values ($1, $2), ($3, $4)', [1, 'één', 2, 'two']);
      const r = await client.query('select id, name from public.items order by id');
      assert.deepEqual(r.rows, [
        { id: 1, name: 'één' },
        { id: 2, name: 'two' },
      ]);
      const big = await client.query("select repeat('x', 1000000) as s");
      assert.equal((big.rows[0] as { s: string }).s.length, 1_000_000);
    } finally {
      await client.end();
    }
    const login = stack.endpoint.logins.findLast((l) => l.user === 'app');
    assert.equal(login?.action, 'DbConnect');
  });

  test('the client sees the upstream ParameterStatus values and a proxy-owned cancel key', async () => {
    const client = new pg.Client({
      host: scram.host,
      port: scram.port,
      user: 'app',
      password: PASSWORDS.app,
    });
    await client.connect();
    try {
      const key = client as unknown as { processID: unknown; secretKey: unknown };
      assert.equal(typeof key.processID, 'number', 'the client received BackendKeyData');
      assert.equal(typeof key.secretKey, 'number');
      const r = await client.query('select pg_backend_pid() as pid, current_setting($1) as v', [
        'server_version',
      ]);
      const row = r.rows[0] as { pid: number; v: string };
      assert.notEqual(key.processID, row.pid, 'the client must not see the upstream backend pid');
      assert.match(row.v, /^\d+/);
    } finally {
      await client.end();
    }
  });

  test('a wrong password gets 28P01 and the proxy keeps serving', async () => {
    const err = await pgError(scram, { user: 'app', password: WRONG.scram });
    assert.equal(err.code, '28P01');
    assert.equal(err.message, 'password authentication failed for user "app"');
    const r = await pgQuery(scram, 'app', PASSWORDS.app, 'select 1 as one');
    assert.deepEqual(r.rows, [{ one: 1 }]);
  });

  test('an unknown user gets the same 28P01 as a wrong password', async () => {
    const err = await pgError(scram, { user: 'mallory', password: WRONG.unknown });
    assert.equal(err.code, '28P01');
    assert.equal(err.message, 'password authentication failed for user "mallory"');
    const refused = await scram.waitForLog((l) => l.event === 'refused' && l.user === 'mallory');
    assert.equal(refused.reason, 'AUTH_FAILED');
  });

  test('scram method: an md5 secret cannot answer SCRAM; a plain secret can, mapped to another DSQL role', async () => {
    // With scram-sha-256 as the method, an md5 secret cannot be used (PostgreSQL behaves the same).
    const err = await pgError(scram, { user: 'alice', password: PASSWORDS.alice });
    assert.equal(err.code, '28P01');
    // A plain-text secret works with SCRAM; bob is mapped to the DSQL role app.
    const r = await pgQuery(scram, 'bob', PASSWORDS.bob, 'select current_user as u');
    assert.deepEqual(r.rows, [{ u: 'app' }]);
  });

  test('SSL requests are answered N: a client that requires TLS gets a clear refusal', async () => {
    const client = new pg.Client({
      host: scram.host,
      port: scram.port,
      user: 'app',
      password: PASSWORDS.app,
      ssl: { rejectUnauthorized: false },
    });
    client.on('error', () => {});
    await assert.rejects(client.connect(), /does not support SSL/);
  });
});

describe('postgres.js through the proxy', () => {
  test('queries, a transaction, and a prepared statement', async () => {
    const sql = postgres({
      host: scram.host,
      port: scram.port,
      user: 'app',
      password: PASSWORDS.app,
      max: 2,
    });
    try {
      const [row] = await sql<{ n: number }[]>`select ${41}::int + 1 as n`;
      assert.equal(row?.n, 42);
      await sql.begin(async (tx) => {
        await tx`delete from public.items where id = 3`;
        await tx`insert into public.items values (3, 'three')`;
      });
      const rows = await sql<{ name: string }[]>`select name from public.items where id = ${3}`;
      assert.deepEqual(
        rows.map((r) => r.name),
        ['three'],
      );
    } finally {
      await sql.end();
    }
  });

  test('COPY FROM STDIN and TO STDOUT round-trip 2 MB; COPY TO on a connection of its own (postgres.js #499)', async () => {
    await stack.postgres.query('create table if not exists public.copy_rows (id int, v text)');
    await stack.postgres.query('truncate public.copy_rows');
    await stack.postgres.query('grant all on public.copy_rows to app');
    const options = { host: scram.host, port: scram.port, user: 'app', password: PASSWORDS.app, max: 1 };
    const sql = postgres(options);
    // postgres.js 3.4.9 pauses its socket when a CopyData push fills the stream's buffer and resumes
    // it only when the stream is read again; a CopyDone in the same socket read ends the stream, so
    // nothing resumes it and the connection's next query waits forever. That happens through any
    // intermediary that delivers server data in large reads (PgBouncer too), and sometimes direct.
    // The README's workaround: COPY TO on a connection of its own, ended afterwards.
    const copyOut = postgres(options);
    try {
      const sent = createHash('sha256');
      let sentBytes = 0;
      // Five COPYs of 2,000 rows: DSQL changes at most 3,000 rows in one transaction (docs/dsql.md).
      for (let copy = 0; copy < 5; copy++) {
        const writable = await sql`copy public.copy_rows (id, v) from stdin`.writable();
        for (let block = copy * 4; block < copy * 4 + 4; block++) {
          const lines = Array.from({ length: 500 }, (_, i) => `${block * 500 + i}\t${'x'.repeat(190)}\n`);
          const chunk = Buffer.from(lines.join(''), 'latin1');
          sent.update(chunk);
          sentBytes += chunk.length;
          if (!writable.write(chunk)) await once(writable, 'drain');
        }
        writable.end();
        await once(writable, 'finish');
      }
      const [count] = await sql<{ n: number }[]>`select count(*)::int as n from public.copy_rows`;
      assert.equal(count?.n, 10_000, 'the connection that ran COPY FROM answers its next query');

      const received = createHash('sha256');
      let receivedBytes = 0;
      // In the order written, which ORDER BY guarantees (DSQL refuses SET synchronize_seqscans).
      const readable =
        await copyOut`copy (select id, v from public.copy_rows order by id) to stdout`.readable();
      for await (const chunk of readable as AsyncIterable<Buffer>) {
        received.update(chunk);
        receivedBytes += chunk.length;
      }
      assert.equal(receivedBytes, sentBytes);
      assert.equal(received.digest('hex'), sent.digest('hex'), 'COPY TO returned the rows COPY FROM sent');
      await copyOut.end({ timeout: 5 });
      const [after] = await sql<{ n: number }[]>`select count(*)::int as n from public.copy_rows`;
      assert.equal(after?.n, 10_000, 'the other connection is unaffected');
    } finally {
      await copyOut.end({ timeout: 1 });
      await sql.end({ timeout: 5 });
    }
  });

  test('cancel reaches the upstream: pg_sleep is cancelled with 57014', async () => {
    const sql = postgres({
      host: scram.host,
      port: scram.port,
      user: 'admin',
      password: PASSWORDS.admin,
      max: 1,
    });
    try {
      const started = Date.now();
      const q = sql`select pg_sleep(20)`;
      setTimeout(() => q.cancel(), 700);
      await assert.rejects(q, (err: { code?: string }) => err.code === '57014');
      assert.ok(Date.now() - started < 10_000, 'cancel took effect well before the sleep ended');
      const cancels = stack.endpoint.cancels.filter((c) => c.forwarded);
      assert.ok(cancels.length >= 1 && cancels.every((c) => c.tls), 'the cancel went upstream over TLS');
      const [row] = await sql<{ one: number }[]>`select 1 as one`;
      assert.equal(row?.one, 1, 'the session stays usable after the cancel');
    } finally {
      await sql.end();
    }
  });

  test('a cancel request with an unknown key is dropped quietly', async () => {
    const { connect } = await import('node:net');
    const before = stack.endpoint.cancels.length;
    await new Promise<void>((resolve, reject) => {
      const s = connect(scram.port, scram.host, () => {
        const pkt = Buffer.alloc(16);
        pkt.writeInt32BE(16, 0);
        pkt.writeInt32BE(80877102, 4);
        pkt.writeInt32BE(12345, 8);
        pkt.writeInt32BE(67890, 12);
        s.end(pkt);
      });
      s.on('error', reject);
      s.on('close', () => resolve());
      s.resume();
    });
    await scram.waitForLog((l) => l.event === 'cancel_request' && l.outcome === 'unknown_key');
    assert.equal(stack.endpoint.cancels.length, before, 'nothing was forwarded');
  });
});

describe('other local auth methods', () => {
  test('md5 method: md5 and plain secrets work; a SCRAM verifier is answered with SCRAM', async () => {
    const proxy = await startProxyProcess(stack, {
      args: [
        '--auth-file',
        authFile(),
        '--auth-method',
        'md5',
        '--config',
        roleMapConfig({ alice: 'app', bob: 'app' }),
      ],
    });
    try {
      assert.deepEqual((await pgQuery(proxy, 'alice', PASSWORDS.alice, 'select current_user as u')).rows, [
        { u: 'app' },
      ]);
      assert.deepEqual((await pgQuery(proxy, 'bob', PASSWORDS.bob, 'select 2 as n')).rows, [{ n: 2 }]);
      assert.deepEqual((await pgQuery(proxy, 'app', PASSWORDS.app, 'select 3 as n')).rows, [{ n: 3 }]);
      const err = await pgError(proxy, { user: 'alice', password: WRONG.md5 });
      assert.equal(err.code, '28P01');
    } finally {
      await proxy.stop();
    }
  });

  test('password method: cleartext checked against every kind of secret', async () => {
    const proxy = await startProxyProcess(stack, {
      args: [
        '--auth-file',
        authFile(),
        '--auth-method',
        'password',
        '--config',
        roleMapConfig({ alice: 'app', bob: 'app' }),
      ],
    });
    try {
      for (const user of ['admin', 'app', 'alice', 'bob'] as const) {
        const r = await pgQuery(proxy, user, PASSWORDS[user], 'select 1 as one');
        assert.deepEqual(r.rows, [{ one: 1 }], user);
      }
      assert.equal((await pgError(proxy, { user: 'bob', password: WRONG.plain })).code, '28P01');
    } finally {
      await proxy.stop();
    }
  });

  test('trust without an auth file on loopback: any user, with a startup warning', async () => {
    const proxy = await startProxyProcess(stack, { args: ['--log-level', 'trace'] });
    try {
      const warning = proxy.logs.find((l) => l.json?.event === 'config_warning');
      assert.match(String(warning?.json?.msg), /trust/);
      const r = await pgQuery(proxy, 'app', '', 'select current_user as u');
      assert.deepEqual(r.rows, [{ u: 'app' }]);
    } finally {
      await proxy.stop();
    }
  });
});
