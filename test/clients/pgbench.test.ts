/**
 * pgbench (libpq) through the real proxy, with the local endpoint's DSQL rules on: `pgbench -i` meets
 * DSQL's refusal (TRUNCATE), so the tables are made the way DSQL accepts them (identity key, batches of
 * 3,000 rows, see pgbenchTablesScript), then short runs of pgbench's simple-update script (`-N`) in the
 * simple, extended and prepared query modes, and a run that opens a new connection per transaction
 * (local SCRAM + IAM token + TLS upstream login every time). Concurrent writers can meet DSQL's 40001
 * conflicts, which pgbench retries (`--max-tries`), as DSQL asks applications to.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createScramVerifier } from '../../src/auth/scram.js';
import { type ProxyProcess, startProxyProcess, writeAuthFile } from '../support/proxy-process.js';
import { assertNoSecrets } from '../support/secrets.js';
import { startTestStack, type TestStack } from '../support/stack.js';
import {
  createPgbenchTables,
  describeResult,
  PGBENCH_RUN,
  type PgbenchSummary,
  parsePgbench,
  pgbench,
  psql,
  requireTool,
} from './tools.js';

const PASSWORDS = { admin: 'admin-bench-pw-7f', app: 'app-bench-pw-a1' };
const ADMIN = { user: 'admin', password: PASSWORDS.admin };

let stack: TestStack | undefined;
let proxy: ProxyProcess | undefined;

function up(): { stack: TestStack; proxy: ProxyProcess } {
  assert.ok(stack && proxy, 'the stack and the proxy are running');
  return { stack, proxy };
}

before(async () => {
  // Fail fast, before starting anything, with the install hint (CI installs postgresql-client).
  requireTool('pgbench');
  requireTool('psql');
  stack = await startTestStack();
  const authFile = writeAuthFile([
    ['admin', createScramVerifier(PASSWORDS.admin)],
    ['app', createScramVerifier(PASSWORDS.app)],
  ]);
  proxy = await startProxyProcess(stack, { args: ['--auth-file', authFile, '--log-level', 'trace'] });
});

after(async () => {
  await proxy?.stop();
  await stack?.stop();
});

function countLogs(p: ProxyProcess, event: string): number {
  return p.logs.filter((l) => l.json?.event === event).length;
}

/** A run must succeed with no failed transaction and a positive tps. */
function assertHealthyRun(summary: PgbenchSummary, mode: string): void {
  assert.equal(summary.queryMode, mode);
  assert.ok(summary.processed > 0, `some transactions were processed (${summary.processed})`);
  if (summary.failed !== undefined) assert.equal(summary.failed, 0, 'number of failed transactions: 0');
  assert.ok(summary.tps > 0, `tps > 0 (${summary.tps})`);
}

test('pgbench is installed (CI installs postgresql-client; the suite fails without it)', () => {
  assert.match(requireTool('pgbench'), /pgbench$/);
});

describe('pgbench through the proxy as admin (SCRAM locally)', () => {
  test('pgbench -i meets the first statement DSQL refuses (TRUNCATE) and exits non-zero', async () => {
    // pgbench -i also needs one 100,000-row COPY transaction and VACUUM (and FKs with -I f): none of
    // it works on DSQL, with or without the proxy, so the tables are prepared as below instead.
    const { proxy } = up();
    const r = await pgbench(proxy, ADMIN, ['-i', '-s', '1', '-q'], { timeoutMs: 60_000 });
    assert.equal(r.code, 1, describeResult(r));
    assert.deepEqual(
      r.stderr.split('\n').filter((l) => l.startsWith('pgbench:')),
      [
        'pgbench: error: query failed: ERROR:  TRUNCATE is not supported',
        'pgbench: detail: Query was: truncate table pgbench_accounts, pgbench_branches, pgbench_history, pgbench_tellers',
      ],
      describeResult(r),
    );
  });

  test('the pgbench tables, made as DSQL accepts them through the proxy (batches of 3,000 rows)', async () => {
    const { proxy, stack } = up();
    const r = await createPgbenchTables(proxy, ADMIN);
    assert.equal(r.code, 0, describeResult(r));
    assert.equal(r.stdout, '100000 accounts\n', describeResult(r));
    const [counts] = await stack.postgres.query<{ accounts: string; branches: string; tellers: string }>(
      'select (select count(*) from pgbench_accounts) as accounts, (select count(*) from pgbench_branches) as branches, (select count(*) from pgbench_tellers) as tellers',
    );
    assert.deepEqual(counts, { accounts: '100000', branches: '1', tellers: '10' });
  });

  for (const mode of ['simple', 'extended', 'prepared'] as const) {
    test(`pgbench -T 3 -c 4 -j 2 -M ${mode}`, async (t) => {
      const { proxy } = up();
      const logins = countLogs(proxy, 'upstream_connected');
      const r = await pgbench(proxy, ADMIN, ['-T', '3', '-c', '4', '-j', '2', '-M', mode, ...PGBENCH_RUN]);
      assert.equal(r.code, 0, describeResult(r));
      const summary = parsePgbench(r);
      assertHealthyRun(summary, mode);
      t.diagnostic(`-M ${mode}: ${summary.processed} transactions, tps ${summary.tps}`);
      assert.ok(
        summary.processed >= 30,
        `a healthy relay runs many transactions in 3 s: ${describeResult(r)}`,
      );
      // pgbench opens one connection to read the scale factor, then its 4 clients once, up front.
      assert.equal(countLogs(proxy, 'upstream_connected') - logins, 1 + 4);
    });
  }

  test('pgbench -C -T 3 -c 2: a new connection (auth + token + upstream login) per transaction', async (t) => {
    const { proxy, stack } = up();
    const upstreamBefore = countLogs(proxy, 'upstream_connected');
    const endpointBefore = stack.endpoint.logins.length;
    const r = await pgbench(proxy, ADMIN, ['-C', '-T', '3', '-c', '2', '-M', 'simple', ...PGBENCH_RUN]);
    assert.equal(r.code, 0, describeResult(r));
    const summary = parsePgbench(r);
    assertHealthyRun(summary, 'simple');
    // Every transaction had its own session: pgbench's first connection check plus one per transaction.
    const sessions = countLogs(proxy, 'upstream_connected') - upstreamBefore;
    assert.ok(
      sessions >= summary.processed,
      `one upstream session per transaction (${sessions} sessions, ${summary.processed} transactions)`,
    );
    const connectMs = proxy.logs
      .filter((l) => l.json?.event === 'upstream_connected')
      .slice(-sessions)
      .map((l) => Number(l.json?.connect_ms))
      .sort((a, b) => a - b);
    t.diagnostic(
      `-C: ${summary.processed} transactions, tps ${summary.tps}, upstream connect_ms median ${connectMs[Math.floor(connectMs.length / 2)]}`,
    );
    const logins = stack.endpoint.logins.slice(endpointBefore);
    assert.ok(logins.length >= summary.processed);
    assert.ok(
      logins.every((l) => l.ok && l.user === 'admin' && l.action === 'DbConnectAdmin'),
      'every upstream login used a valid admin token',
    );
  });

  test('after the runs the proxy is up and serving, and its logs carry no secret', async () => {
    const { proxy, stack } = up();
    assert.equal(proxy.child.exitCode, null, 'the proxy is still running');
    assert.equal(countLogs(proxy, 'session_crashed'), 0, 'no session crashed');
    const r = await psql(proxy, { user: 'app', password: PASSWORDS.app }, [
      '-A',
      '-t',
      '-c',
      'select count(*) from pgbench_accounts',
    ]);
    // app has no rights on the admin-created tables: the error must come back from upstream intact.
    assert.equal(r.code, 1, describeResult(r));
    assert.match(r.stderr, /permission denied for table pgbench_accounts/, describeResult(r));
    const ok = await psql(proxy, ADMIN, [
      '-A',
      '-t',
      '-c',
      'select (select sum(abalance) from pgbench_accounts) = (select sum(delta) from pgbench_history)',
    ]);
    assert.equal(ok.code, 0, describeResult(ok));
    assert.equal(ok.stdout, 't\n', 'the balances agree with the history: no lost or doubled transaction');
    assertNoSecrets(
      proxy.logs.map((l) => l.raw),
      {
        credentials: stack.credentials,
        tokens: stack.endpoint.logins.map((l) => l.token),
        passwords: Object.values(PASSWORDS),
      },
    );
  });
});
