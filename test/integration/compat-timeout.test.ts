/**
 * Timeouts DSQL cannot set, carried out by the proxy (issue 23), against the local endpoint with DSQL's
 * rules on (which refuse `SET statement_timeout` and the rest, as DSQL does):
 *
 * - statement_timeout by `SET` (simple and extended protocol), by startup parameter (node-postgres's
 *   `statement_timeout` option) and by `--statement-timeout`: `select pg_sleep(5)` fails with 57014
 *   `canceling statement due to statement timeout` in about the set time, and the session goes on;
 *   `SET LOCAL statement_timeout` ends with its transaction;
 * - an upstream that ignores CancelRequests (a relay in this file swallows them): the client gets a
 *   FATAL 08006 within timeout + `--statement-timeout-grace` + 1 s, and other clients keep working;
 * - idle_in_transaction_session_timeout (SET and `--idle-in-transaction-timeout`): FATAL 25P03;
 * - `--client-idle-timeout`: FATAL 57P05, PostgreSQL 17's idle-session message;
 * - client_min_messages = warning hides a NOTICE but not a WARNING.
 *
 * Windows are generous on the slow side (a shared CI machine) and strict on the fast side: a timeout
 * that fires before its time is a bug.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { startMessageFilterRelay } from '../support/message-filter-relay.js';
import { type ProxyProcess, startProxyProcess } from '../support/proxy-process.js';
import { startTestStack, type TestStack } from '../support/stack.js';

const TIMEOUT_MESSAGE = 'canceling statement due to statement timeout';

let stack: TestStack;
let proxy: ProxyProcess;
const procs: ProxyProcess[] = [];
const closers: Array<() => Promise<void>> = [];

before(async () => {
  stack = await startTestStack(); // DSQL's rules on
  proxy = await startProxy([]);
});

after(async () => {
  await Promise.all(procs.map((p) => p.stop()));
  for (const close of closers) await close();
  await stack?.stop();
});

async function startProxy(args: string[], stackArgs = true): Promise<ProxyProcess> {
  const p = await startProxyProcess(stack, { args, stackArgs });
  procs.push(p);
  return p;
}

/** The fields of node-postgres's notice event the tests read. */
interface Notice {
  message?: string;
  severity?: string;
}

interface Session {
  client: pg.Client;
  notices: Notice[];
  /** The first error the client reported while no query was running (a FATAL while idle). */
  idleError: Promise<pg.DatabaseError>;
}

async function connect(p: ProxyProcess, cfg: pg.ClientConfig = {}): Promise<Session> {
  const client = new pg.Client({ host: p.host, port: p.port, user: 'app', password: '', ...cfg });
  const notices: Notice[] = [];
  client.on('notice', (n) => notices.push(n));
  const idleError = new Promise<pg.DatabaseError>((resolve) =>
    client.on('error', (e) => resolve(e as pg.DatabaseError)),
  );
  await client.connect();
  return { client, notices, idleError };
}

async function end(s: Session): Promise<void> {
  await s.client.end().catch(() => {});
}

/** node-postgres in the extended protocol, also without values. */
function extended(client: pg.Client, text: string, values: unknown[] = []): Promise<pg.QueryResult> {
  return client.query({ text, values, queryMode: 'extended' } as pg.QueryConfig);
}

type Run = (client: pg.Client, sql: string) => Promise<pg.QueryResult>;
const PROTOCOLS: Array<[string, Run]> = [
  ['simple', (c, sql) => c.query(sql)],
  ['extended', (c, sql) => extended(c, sql)],
];

/** Runs `sql`, expects it to fail; returns the error and how long it took. */
async function failing(run: () => Promise<unknown>): Promise<{ err: pg.DatabaseError; ms: number }> {
  const started = performance.now();
  try {
    await run();
  } catch (err) {
    return { err: err as pg.DatabaseError, ms: performance.now() - started };
  }
  assert.fail(
    `expected an error, the statement succeeded after ${Math.round(performance.now() - started)} ms`,
  );
}

function assertWithin(ms: number, min: number, max: number, what: string): void {
  assert.ok(ms >= min && ms <= max, `${what}: ${Math.round(ms)} ms, want ${min}..${max} ms`);
}

async function assertStatementTimeout(
  run: () => Promise<unknown>,
  timeoutMs: number,
  what: string,
): Promise<void> {
  const { err, ms } = await failing(run);
  assert.equal(err.code, '57014', `${what}: ${err.message}`);
  assert.equal(err.message, TIMEOUT_MESSAGE, what);
  assert.equal(err.severity, 'ERROR', what);
  assertWithin(ms, timeoutMs - 50, timeoutMs + 1500, what);
}

async function assertUsable(client: pg.Client): Promise<void> {
  assert.deepEqual((await client.query('select 41 + 1 as n')).rows, [{ n: 42 }]);
  assert.deepEqual((await extended(client, 'select $1::int + 1 as n', [1])).rows, [{ n: 2 }]);
}

describe('statement_timeout', () => {
  for (const [name, run] of PROTOCOLS) {
    test(`by SET, ${name} protocol: pg_sleep(5) gets 57014 after about 1 s, the session goes on`, async () => {
      const s = await connect(proxy);
      try {
        assert.equal((await run(s.client, "SET statement_timeout = '1s'")).command, 'SET');
        assert.deepEqual((await run(s.client, 'SHOW statement_timeout')).rows, [{ statement_timeout: '1s' }]);
        await assertStatementTimeout(() => run(s.client, 'select pg_sleep(5)'), 1000, `${name} pg_sleep`);
        await assertUsable(s.client);
        // A statement shorter than the timeout is not touched.
        assert.equal((await run(s.client, 'select pg_sleep(0.2)')).rowCount, 1);
      } finally {
        await end(s);
      }
    });
  }

  test('by SET inside a multi-statement Query: the sleep after it is timed out', async () => {
    const s = await connect(proxy);
    try {
      await assertStatementTimeout(
        () => s.client.query("SET statement_timeout = '1s'; select pg_sleep(5)"),
        1000,
        'multi-statement',
      );
      // The Query is one implicit transaction, and it failed: PostgreSQL undoes the SET with it.
      assert.deepEqual((await s.client.query('SHOW statement_timeout')).rows, [{ statement_timeout: '0' }]);
      await assertUsable(s.client);
    } finally {
      await end(s);
    }
  });

  test("by startup parameter (node-postgres's statement_timeout option)", async () => {
    const s = await connect(proxy, { statement_timeout: 1000 });
    try {
      for (const [name, run] of PROTOCOLS) {
        await assertStatementTimeout(() => run(s.client, 'select pg_sleep(5)'), 1000, `startup, ${name}`);
        await assertUsable(s.client);
      }
    } finally {
      await end(s);
    }
  });

  test('by --statement-timeout: the default for every session, SET overrides it', async () => {
    const p = await startProxy(['--statement-timeout', '1s']);
    const s = await connect(p);
    try {
      assert.deepEqual((await s.client.query('SHOW statement_timeout')).rows, [{ statement_timeout: '1s' }]);
      await assertStatementTimeout(() => s.client.query('select pg_sleep(5)'), 1000, 'flag');
      await assertUsable(s.client);
      await s.client.query('SET statement_timeout = 0');
      const started = performance.now();
      await s.client.query('select pg_sleep(1.5)');
      assert.ok(performance.now() - started >= 1400, 'SET statement_timeout = 0 turned the default off');
      await s.client.query('RESET statement_timeout');
      assert.deepEqual((await s.client.query('SHOW statement_timeout')).rows, [{ statement_timeout: '1s' }]);
    } finally {
      await end(s);
    }
  });

  test('SET LOCAL statement_timeout ends with its transaction', async () => {
    const s = await connect(proxy);
    try {
      await s.client.query('BEGIN');
      assert.equal((await s.client.query("SET LOCAL statement_timeout = '700ms'")).command, 'SET');
      assert.deepEqual((await s.client.query('SHOW statement_timeout')).rows, [
        { statement_timeout: '700ms' },
      ]);
      await assertStatementTimeout(() => s.client.query('select pg_sleep(5)'), 700, 'SET LOCAL');
      // The transaction is aborted, as on PostgreSQL; ROLLBACK ends it and the SET LOCAL with it.
      assert.equal((await s.client.query('ROLLBACK')).command, 'ROLLBACK');
      assert.deepEqual((await s.client.query('SHOW statement_timeout')).rows, [{ statement_timeout: '0' }]);
      const started = performance.now();
      await s.client.query('select pg_sleep(1.2)');
      assert.ok(performance.now() - started >= 1100, 'no timeout after the transaction');
      // COMMIT ends it as well.
      await s.client.query('BEGIN');
      await s.client.query("SET LOCAL statement_timeout = '5s'");
      await s.client.query('COMMIT');
      assert.deepEqual((await s.client.query('SHOW statement_timeout')).rows, [{ statement_timeout: '0' }]);
    } finally {
      await end(s);
    }
  });
});

describe('statement_timeout with an upstream that ignores CancelRequests', () => {
  test('the client gets FATAL 08006 within timeout + grace + 1 s; other clients keep working', async () => {
    // An upstream that ignores CancelRequests: a relay in front of the endpoint that swallows them.
    const relay = await startMessageFilterRelay({
      hostname: stack.hostname,
      endpoint: { port: stack.endpoint.port, caPem: stack.endpoint.caPem },
      drop: [],
      swallowCancels: true,
    });
    closers.push(() => relay.close());
    const p = await startProxy(
      [
        '--endpoint',
        stack.hostname,
        '--connect-to',
        `127.0.0.1:${relay.port}`,
        '--ca-file',
        relay.caFile,
        '--listen',
        '127.0.0.1:0',
        '--statement-timeout-grace',
        '1s',
      ],
      false,
    );
    const victim = await connect(p);
    const other = await connect(p);
    try {
      await victim.client.query("SET statement_timeout = '1s'");
      const forwardedBefore = stack.endpoint.cancels.filter((c) => c.forwarded).length;
      const sleeping = failing(() => victim.client.query('select pg_sleep(10)'));
      // Meanwhile another session of the same proxy is served.
      await new Promise((r) => setTimeout(r, 300));
      assert.deepEqual((await other.client.query('select 1 as one')).rows, [{ one: 1 }]);
      const { err, ms } = await sleeping;
      assert.equal(err.code, '08006', err.message);
      assert.equal(err.severity, 'FATAL');
      assert.ok(err.message.length > 0);
      assertWithin(ms, 1000 + 1000 - 100, 1000 + 1000 + 1000, 'freed after timeout + grace');
      assert.ok(relay.cancelsSwallowed() >= 1, 'the proxy sent a CancelRequest, which the relay swallowed');
      assert.equal(
        stack.endpoint.cancels.filter((c) => c.forwarded).length,
        forwardedBefore,
        'none reached it',
      );
      await assertUsable(other.client);
      const fresh = await connect(p);
      await assertUsable(fresh.client);
      await end(fresh);
    } finally {
      await end(victim);
      await end(other);
    }
  });
});

describe('idle timeouts', () => {
  /** Waits for the FATAL a session gets while idle; returns it and how long after `since` it came. */
  async function idleFatal(
    s: Session,
    since: number,
    limitMs: number,
  ): Promise<{ err: pg.DatabaseError; ms: number }> {
    const timer = new Promise<never>((_, reject) =>
      setTimeout(() => reject(new Error(`no FATAL within ${limitMs} ms`)), limitMs).unref(),
    );
    const err = await Promise.race([s.idleError, timer]);
    return { err, ms: performance.now() - since };
  }

  test('SET idle_in_transaction_session_timeout: FATAL 25P03 while idle in a transaction', async () => {
    const s = await connect(proxy);
    try {
      assert.equal((await s.client.query("SET idle_in_transaction_session_timeout = '1s'")).command, 'SET');
      // Idle outside a transaction: nothing happens.
      await new Promise((r) => setTimeout(r, 1500));
      await assertUsable(s.client);
      await s.client.query('BEGIN');
      await s.client.query('select 1');
      const { err, ms } = await idleFatal(s, performance.now(), 5000);
      assert.equal(err.code, '25P03');
      assert.equal(err.severity, 'FATAL');
      assert.equal(err.message, 'terminating connection due to idle-in-transaction timeout');
      assertWithin(ms, 950, 2500, 'idle in transaction');
    } finally {
      await end(s);
    }
  });

  test('--idle-in-transaction-timeout: the same FATAL 25P03, as the default', async () => {
    const p = await startProxy(['--idle-in-transaction-timeout', '1s']);
    const s = await connect(p);
    try {
      await s.client.query('BEGIN');
      const { err, ms } = await idleFatal(s, performance.now(), 5000);
      assert.equal(err.code, '25P03');
      assert.equal(err.message, 'terminating connection due to idle-in-transaction timeout');
      assertWithin(ms, 950, 2500, 'idle in transaction (flag)');
    } finally {
      await end(s);
    }
  });

  test('--client-idle-timeout: an idle client is closed with FATAL 57P05', async () => {
    const p = await startProxy(['--client-idle-timeout', '1s']);
    const s = await connect(p);
    try {
      // Activity restarts the clock: three statements 600 ms apart keep the session alive.
      for (let i = 0; i < 3; i++) {
        await new Promise((r) => setTimeout(r, 600));
        await assertUsable(s.client);
      }
      const { err, ms } = await idleFatal(s, performance.now(), 5000);
      assert.equal(err.code, '57P05');
      assert.equal(err.severity, 'FATAL');
      assert.equal(err.message, 'terminating connection due to idle-session timeout');
      assertWithin(ms, 950, 2500, 'idle session');
    } finally {
      await end(s);
    }
  });
});

describe('client_min_messages', () => {
  for (const [name, run] of PROTOCOLS) {
    test(`warning hides a NOTICE but not a WARNING (${name} protocol)`, async () => {
      const s = await connect(proxy);
      const notice = "DO $$ BEGIN RAISE NOTICE 'compat notice'; END $$";
      const warning = "DO $$ BEGIN RAISE WARNING 'compat warning'; END $$";
      try {
        await run(s.client, notice);
        assert.deepEqual(
          s.notices.map((n) => [n.severity, n.message]),
          [['NOTICE', 'compat notice']],
          'a NOTICE reaches the client by default',
        );
        s.notices.length = 0;
        assert.equal((await run(s.client, 'SET client_min_messages = warning')).command, 'SET');
        await run(s.client, notice);
        await run(s.client, warning);
        assert.deepEqual(
          s.notices.map((n) => [n.severity, n.message]),
          [['WARNING', 'compat warning']],
        );
        s.notices.length = 0;
        assert.equal((await run(s.client, 'RESET client_min_messages')).command, 'RESET');
        await run(s.client, notice);
        assert.deepEqual(
          s.notices.map((n) => [n.severity, n.message]),
          [['NOTICE', 'compat notice']],
        );
      } finally {
        await end(s);
      }
    });
  }
});
