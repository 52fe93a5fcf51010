/**
 * psql → the real proxy → the local endpoint with DSQL's rules on (the default): what DSQL refuses
 * behind the door reaches a psql user as DSQL's SQLSTATE and message, the session stays usable, and a
 * transaction in progress is aborted exactly as a server aborts it. The expected texts are written
 * out here on purpose, not read from the endpoint's rule table: the test checks the table too.
 *
 * The proxy runs with `--compat off`, so that every refusal is the endpoint's: with the compatibility
 * layer on (the default) several of these statements are answered by the proxy instead
 * (test/integration/compat-rules.test.ts).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { identityArn } from '../../src/local-endpoint/sigv4-verify.js';
import { type ProxyProcess, startProxyProcess } from '../support/proxy-process.js';
import { startTestStack, type TestStack } from '../support/stack.js';
import { describeResult, psql, requireTool } from './tools.js';

let stack: TestStack | undefined;
let proxy: ProxyProcess | undefined;

before(async () => {
  requireTool('psql');
  stack = await startTestStack();
  proxy = await startProxyProcess(stack, { args: ['--auth-method', 'trust', '--compat', 'off'] });
});

after(async () => {
  await proxy?.stop();
  await stack?.stop();
});

function up(): ProxyProcess {
  assert.ok(proxy, 'the proxy is running');
  return proxy;
}

/** Runs a script through the proxy with psql, not stopping at errors, with verbose error lines. */
async function script(lines: string[]): Promise<{ out: string[]; errors: string[] }> {
  const r = await psql(
    up(),
    { user: 'admin' },
    ['-v', 'ON_ERROR_STOP=0', '-v', 'VERBOSITY=verbose', '-A', '-t', '-q', '-f', '-'],
    { input: `${lines.join('\n')}\n` },
  );
  assert.equal(r.code, 0, describeResult(r));
  const errors = r.stderr
    .split('\n')
    .filter((l) => l.includes('ERROR:'))
    .map((l) => l.replace(/^psql:<stdin>:\d+: /, ''));
  return { out: r.stdout.split('\n').filter((l) => l !== ''), errors };
}

describe('psql meets what DSQL refuses, through the proxy', () => {
  // Each refused statement, then a probe that shows the session still answers.
  const refused: Array<[sql: string, error: string]> = [
    ['LOCK TABLE rules_t IN ACCESS SHARE MODE', '0A000: unsupported statement: Lock'],
    ['PREPARE p AS SELECT 1', '0A000: unsupported statement: Prepare'],
    [
      'SET synchronize_seqscans = off',
      '0A000: setting configuration parameter "synchronize_seqscans" not supported',
    ],
    [
      'SET statement_timeout TO 1000',
      '0A000: setting configuration parameter "statement_timeout" not supported',
    ],
    [
      "SELECT pg_catalog.set_config('lock_timeout', '5s', false)",
      '0A000: setting configuration parameter "lock_timeout" not supported',
    ],
    ['DISCARD ALL', '0A000: DISCARD is not supported'],
    ['TRUNCATE rules_t', '0A000: TRUNCATE is not supported'],
    ['CREATE INDEX rules_t_n ON rules_t (n)', '0A000: CREATE INDEX is not supported; use CREATE INDEX ASYNC'],
    ['CREATE TEMP TABLE rules_tmp (x int)', '0A000: temporary tables are not supported'],
    ['LISTEN rules_channel', '0A000: unsupported statement: Listen'],
  ];

  test('each refusal: its SQLSTATE and message, and the session answers the next statement', async () => {
    const lines = ['DROP TABLE IF EXISTS rules_t;', 'CREATE TABLE rules_t (id int PRIMARY KEY, n int);'];
    for (const [i, [sql]] of refused.entries()) lines.push(`${sql};`, `SELECT 'probe ${i}';`);
    const { out, errors } = await script(lines);
    assert.deepEqual(
      errors,
      refused.map(([, error]) => `ERROR:  ${error}`),
    );
    assert.deepEqual(
      out,
      refused.map((_, i) => `probe ${i}`),
    );
  });

  test('a refusal inside a transaction aborts it (25P02 until ROLLBACK), and nothing of it is kept', async () => {
    const { out, errors } = await script([
      'DROP TABLE IF EXISTS rules_tx;',
      'CREATE TABLE rules_tx (id int PRIMARY KEY, n int);',
      'INSERT INTO rules_tx VALUES (1, 0);',
      'BEGIN;',
      'UPDATE rules_tx SET n = n + 1;',
      'SAVEPOINT s1;',
      'SELECT 1;',
      'ROLLBACK;',
      'SELECT n FROM rules_tx;',
    ]);
    assert.deepEqual(errors, [
      'ERROR:  0A000: SAVEPOINT is not supported',
      'ERROR:  25P02: current transaction is aborted, commands ignored until end of transaction block',
    ]);
    assert.deepEqual(out, ['0']);
  });

  test('in one multi-statement Query, the statements before the refusal are rolled back with it', async () => {
    // psql -c sends its whole string as one Query: one implicit transaction, as on a server.
    const r = await psql(up(), { user: 'admin' }, [
      '-v',
      'VERBOSITY=verbose',
      '-c',
      'DROP TABLE IF EXISTS rules_multi; CREATE TABLE rules_multi (id int PRIMARY KEY)',
    ]);
    assert.equal(r.code, 0, describeResult(r));
    const multi = await psql(up(), { user: 'admin' }, [
      '-v',
      'VERBOSITY=verbose',
      '-c',
      'INSERT INTO rules_multi VALUES (1); LOCK TABLE rules_multi; INSERT INTO rules_multi VALUES (2)',
    ]);
    assert.equal(multi.code, 1, describeResult(multi));
    assert.match(multi.stderr, /ERROR: {2}0A000: unsupported statement: Lock/);
    const count = await psql(up(), { user: 'admin' }, ['-A', '-t', '-c', 'SELECT count(*) FROM rules_multi']);
    assert.equal(count.stdout.trim(), '0', describeResult(count));
  });

  test('what DSQL accepts passes: allowlisted SET, CREATE INDEX ASYNC, REPEATABLE READ, sys.iam_session_user()', async () => {
    const { out, errors } = await script([
      'DROP TABLE IF EXISTS rules_ok;',
      'CREATE TABLE rules_ok (id int PRIMARY KEY, n int);',
      "SET TimeZone TO 'UTC';",
      'SET search_path TO public;',
      'CREATE INDEX ASYNC rules_ok_n ON rules_ok (n);',
      "SELECT count(*) FROM pg_indexes WHERE indexname = 'rules_ok_n';",
      'BEGIN ISOLATION LEVEL REPEATABLE READ;',
      'SHOW transaction_isolation;',
      'COMMIT;',
      'SELECT sys.iam_session_user();',
    ]);
    assert.deepEqual(errors, []);
    // On DSQL, CREATE INDEX ASYNC answers a job_id row; the local endpoint does not emulate that row
    // (docs/dsql.md) and answers as PostgreSQL's CREATE INDEX does: no row, the index built.
    assert.ok(stack, 'the stack is running');
    assert.deepEqual(out, ['1', 'repeatable read', identityArn(stack.credentials)]);
  });
});
