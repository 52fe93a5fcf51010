/**
 * psql (libpq, postgresql-client) → the real proxy process (SCRAM locally) → TLS + IAM token →
 * the DSQL-like endpoint → real PostgreSQL. psql is what people type first; it must just work.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { createScramVerifier } from '../../src/auth/scram.js';
import { type ProxyProcess, startProxyProcess, writeAuthFile } from '../support/proxy-process.js';
import { assertNoSecrets } from '../support/secrets.js';
import { startTestStack, type TestStack } from '../support/stack.js';
import { describeResult, pgEnv, psql, requireTool, spawnTool } from './tools.js';

const PASSWORDS = { admin: 'admin-psql-pw-0x5e', app: 'app psql pässword' };

let stack: TestStack | undefined;
let proxy: ProxyProcess | undefined;
const others: ProxyProcess[] = [];

function up(): { stack: TestStack; proxy: ProxyProcess } {
  assert.ok(stack && proxy, 'the stack and the proxy are running');
  return { stack, proxy };
}

before(async () => {
  // Fail fast, before starting anything, with the install hint (CI installs postgresql-client).
  requireTool('psql');
  stack = await startTestStack();
  const authFile = writeAuthFile([
    ['admin', createScramVerifier(PASSWORDS.admin)],
    ['app', createScramVerifier(PASSWORDS.app)],
  ]);
  proxy = await startProxyProcess(stack, { args: ['--auth-file', authFile, '--log-level', 'trace'] });
});

after(async () => {
  for (const p of others) await p.stop();
  await proxy?.stop();
  await stack?.stop();
});

test('psql is installed (CI installs postgresql-client; the suite fails without it)', () => {
  const bin = requireTool('psql');
  assert.match(bin, /psql$/);
});

describe('psql through the proxy (SCRAM-SHA-256 auth file)', () => {
  test('default sslmode=prefer: SSLRequest answered N, psql falls back to plaintext and logs in', async () => {
    const { proxy } = up();
    const r = await psql(proxy, { user: 'admin', password: PASSWORDS.admin }, [
      '-h',
      '127.0.0.1',
      '-p',
      String(proxy.port),
      '-U',
      'admin',
      '-c',
      'select current_user',
    ]);
    assert.equal(r.code, 0, describeResult(r));
    assert.match(r.stdout, /^\s*current_user\s*\n-+\n\s*admin\s*\n\(1 row\)/m, describeResult(r));
    assert.equal(r.stderr, '');
    const auth = await proxy.waitForLog((l) => l.event === 'authenticated' && l.user === 'admin');
    assert.equal(auth.method, 'scram-sha-256');
  });

  test('-X -A -t script: create, insert, select with exact output', async () => {
    const { proxy } = up();
    const script = [
      'drop table if exists psql_script;',
      'create table psql_script (id int primary key, name text not null);',
      "insert into psql_script values (1, 'one'), (2, 'twee'), (3, 'drei ü');",
      "update psql_script set name = name || '!' where id = 2;",
      'select id, name from psql_script order by id;',
      'select count(*) from psql_script;',
    ].join('\n');
    const r = await psql(proxy, { user: 'app', password: PASSWORDS.app }, ['-A', '-t', '-q', '-f', '-'], {
      input: script,
    });
    assert.equal(r.code, 0, describeResult(r));
    assert.equal(r.stdout, '1|one\n2|twee!\n3|drei ü\n3\n');
    // The upstream NoticeResponse reaches psql through the relay.
    assert.equal(r.stderr, 'psql:<stdin>:1: NOTICE:  table "psql_script" does not exist, skipping\n');

    // The same through repeated -c (each -c is its own simple Query message).
    const c = await psql(proxy, { user: 'app', password: PASSWORDS.app }, [
      '-A',
      '-t',
      '-c',
      "insert into psql_script values (4, 'vier')",
      '-c',
      "select string_agg(name, ',' order by id) from psql_script",
      '-c',
      "select current_user, current_setting('application_name')",
    ]);
    assert.equal(c.code, 0, describeResult(c));
    assert.equal(c.stdout, 'INSERT 0 1\none,twee!,drei ü,vier\napp|dsql-proxy-client-suite\n');
  });

  test('\\d tablename describes the columns (catalog queries pass through)', async () => {
    const { proxy } = up();
    const setup = await psql(proxy, { user: 'app', password: PASSWORDS.app }, [
      '-c',
      'drop table if exists psql_described',
      '-c',
      'create table psql_described (id bigint primary key, label varchar(40) not null, at timestamptz default now())',
    ]);
    assert.equal(setup.code, 0, describeResult(setup));
    const r = await psql(proxy, { user: 'app', password: PASSWORDS.app }, ['-c', '\\d psql_described']);
    assert.equal(r.code, 0, describeResult(r));
    assert.match(r.stdout, /Table "public\.psql_described"/);
    assert.match(r.stdout, /^\s*id\s*\|\s*bigint\s*\|\s*\|\s*not null\s*\|/m);
    assert.match(r.stdout, /^\s*label\s*\|\s*character varying\(40\)\s*\|\s*\|\s*not null\s*\|/m);
    assert.match(r.stdout, /^\s*at\s*\|\s*timestamp with time zone\s*\|\s*\|\s*\|\s*now\(\)/m);
    assert.match(r.stdout, /"psql_described_pkey" PRIMARY KEY, btree \(id\)/);
  });

  test('\\copy from stdin and \\copy to stdout round-trip rows (COPY sub-protocol)', async () => {
    const { proxy, stack } = up();
    const conn = { user: 'app', password: PASSWORDS.app };
    const setup = await psql(proxy, conn, [
      '-c',
      'drop table if exists psql_copy',
      '-c',
      'create table psql_copy (id int primary key, name text, note text)',
    ]);
    assert.equal(setup.code, 0, describeResult(setup));

    // 1. `\copy ... from pstdin`: data piped into psql's own stdin.
    const rows = Array.from(
      { length: 500 },
      (_, i) => `${i + 1}\tname ${i + 1}\t${i % 7 === 0 ? '\\N' : `n${i}`}`,
    );
    const piped = await psql(proxy, conn, ['-c', '\\copy psql_copy from pstdin'], {
      input: `${rows.join('\n')}\n`,
    });
    assert.equal(piped.code, 0, describeResult(piped));
    assert.equal(piped.stdout.trim(), 'COPY 500');

    // 2. `\copy ... from stdin` inside a script read from stdin: the data follows the command, ends with `\.`.
    const script = [
      '\\copy psql_copy from stdin',
      '501\tfive-oh-one\ttab\\there',
      '502\tquote\'s "q"\t\\N',
      '\\.',
      'select count(*) from psql_copy;',
    ].join('\n');
    const inline = await psql(proxy, conn, ['-A', '-t', '-f', '-'], { input: `${script}\n` });
    assert.equal(inline.code, 0, describeResult(inline));
    assert.equal(inline.stdout, 'COPY 2\n502\n');

    // 3. `\copy ... to stdout` gives back exactly what went in.
    const out = await psql(proxy, conn, ['-c', '\\copy (select * from psql_copy order by id) to stdout']);
    assert.equal(out.code, 0, describeResult(out));
    const expected = [...rows, '501\tfive-oh-one\ttab\\there', '502\tquote\'s "q"\t\\N'];
    assert.deepEqual(out.stdout.trimEnd().split('\n'), expected);

    // And PostgreSQL really stored them (checked directly, not through the proxy).
    const direct = await stack.postgres.query<{ n: string; nulls: string; tab: string }>(
      'select count(*) as n, count(*) filter (where note is null) as nulls, (select note from psql_copy where id = 501) as tab from psql_copy',
    );
    assert.deepEqual(direct, [{ n: '502', nulls: String(72 + 1), tab: 'tab\there' }]);
  });

  test('wrong password: exit 2, "password authentication failed for user "app""', async () => {
    const { proxy } = up();
    const r = await psql(proxy, { user: 'app', password: 'not-the-password' }, ['-c', 'select 1']);
    assert.equal(r.code, 2, describeResult(r));
    assert.match(r.stderr, /password authentication failed for user "app"/, describeResult(r));
    assert.equal(r.stdout, '');
  });

  test('unknown user: the same message as a wrong password', async () => {
    const { proxy } = up();
    const r = await psql(proxy, { user: 'mallory', password: 'whatever' }, ['-c', 'select 1']);
    assert.equal(r.code, 2, describeResult(r));
    assert.match(r.stderr, /password authentication failed for user "mallory"/, describeResult(r));
    const refused = await proxy.waitForLog((l) => l.event === 'refused' && l.user === 'mallory');
    assert.equal(refused.reason, 'AUTH_FAILED');
  });

  test('no password offered (-w): psql fails instead of prompting', async () => {
    const { proxy } = up();
    const r = await psql(proxy, { user: 'app' }, ['-c', 'select 1']);
    assert.equal(r.code, 2, describeResult(r));
    assert.match(r.stderr, /no password supplied|password authentication failed/, describeResult(r));
  });

  test('sslmode=require is refused with a message about SSL (no local TLS yet)', async () => {
    const { proxy } = up();
    const r = await psql(proxy, { user: 'app', password: PASSWORDS.app, sslmode: 'require' }, [
      '-c',
      'select 1',
    ]);
    assert.equal(r.code, 2, describeResult(r));
    assert.match(r.stderr, /SSL/, describeResult(r));
    assert.match(r.stderr, /server does not support SSL, but SSL was required/, describeResult(r));
  });

  test('sslmode=disable: no SSLRequest at all, plain login works', async () => {
    const { proxy } = up();
    const r = await psql(proxy, { user: 'app', password: PASSWORDS.app, sslmode: 'disable' }, [
      '-A',
      '-t',
      '-c',
      'select 40 + 2',
    ]);
    assert.equal(r.code, 0, describeResult(r));
    assert.equal(r.stdout, '42\n');
  });

  test('-d someotherdb still lands on the upstream database postgres', async () => {
    const { proxy } = up();
    const r = await psql(proxy, { user: 'admin', password: PASSWORDS.admin }, [
      '-d',
      'someotherdb',
      '-A',
      '-t',
      '-c',
      'select current_database()',
    ]);
    assert.equal(r.code, 0, describeResult(r));
    assert.equal(r.stdout, 'postgres\n');
    const auth = await proxy.waitForLog((l) => l.event === 'authenticated' && l.database === 'someotherdb');
    assert.equal(auth.user, 'admin');
  });

  test('Ctrl-C (SIGINT) cancels a running pg_sleep through the proxy, over TLS upstream', async () => {
    const { proxy, stack } = up();
    const cancelsBefore = stack.endpoint.cancels.length;
    const seen = new Set(proxy.logs.map((l) => l.json));
    const running = spawnTool(
      'psql',
      ['-X', '-w', '-c', 'select pg_sleep(30)'],
      pgEnv(proxy, { user: 'admin', password: PASSWORDS.admin }),
      { timeoutMs: 25_000 },
    );
    // The session is relayed once the proxy logs upstream_connected; then wait for the query to run.
    await proxy.waitForLog((l) => l.event === 'upstream_connected' && !seen.has(l) && l.user === 'admin');
    const deadline = Date.now() + 10_000;
    for (;;) {
      const active = await stack.postgres.query(
        "select pid from pg_stat_activity where state = 'active' and query = 'select pg_sleep(30)'",
      );
      if (active.length === 1) break;
      assert.ok(Date.now() < deadline, `pg_sleep never started; psql stderr: ${running.stderr()}`);
      await sleep(50);
    }
    const t0 = Date.now();
    running.child.kill('SIGINT');
    const r = await running.result;
    const took = Date.now() - t0;
    assert.ok(took < 5_000, `psql should exit within a few seconds of Ctrl-C (took ${took} ms)`);
    assert.notEqual(r.code, 0, describeResult(r));
    assert.match(r.stderr, /canceling statement due to user request/, describeResult(r));
    const forwarded = await proxy.waitForLog(
      (l) => l.event === 'cancel_request' && !seen.has(l) && l.outcome !== undefined,
    );
    assert.equal(forwarded.outcome, 'forwarded');
    const cancels = stack.endpoint.cancels.slice(cancelsBefore);
    assert.ok(
      cancels.some((c) => c.forwarded && c.tls),
      `the endpoint saw a forwarded TLS cancel: ${JSON.stringify(cancels)}`,
    );
    assert.ok(
      cancels.every((c) => c.tls),
      'every cancel reaching the endpoint came over TLS',
    );
  });

  test('the SCRAM proxy logs carry no password, credential or token', () => {
    const { proxy, stack } = up();
    assert.ok(stack.endpoint.logins.length >= 10, 'the endpoint saw the logins');
    assertNoSecrets(
      proxy.logs.map((l) => l.raw),
      {
        credentials: stack.credentials,
        tokens: stack.endpoint.logins.map((l) => l.token),
        passwords: [...Object.values(PASSWORDS), 'not-the-password', 'whatever'],
      },
    );
  });
});

describe('psql through the trust proxy (no auth file)', () => {
  test('any user logs in without a password', async () => {
    const { stack } = up();
    const trust = await startProxyProcess(stack, { args: ['--log-level', 'trace'] });
    others.push(trust);
    const warning = trust.logs.find((l) => l.json?.event === 'config_warning');
    assert.match(String(warning?.json?.msg), /trust/);
    const r = await psql(trust, { user: 'app' }, [
      '-A',
      '-t',
      '-c',
      'select current_user, current_database()',
    ]);
    assert.equal(r.code, 0, describeResult(r));
    assert.equal(r.stdout, 'app|postgres\n');
    const a = await psql(trust, { user: 'admin' }, ['-A', '-t', '-c', 'select current_user']);
    assert.equal(a.code, 0, describeResult(a));
    assert.equal(a.stdout, 'admin\n');
    const auth = await trust.waitForLog((l) => l.event === 'authenticated' && l.user === 'app');
    assert.equal(auth.method, 'trust');
    assertNoSecrets(
      trust.logs.map((l) => l.raw),
      { credentials: stack.credentials, tokens: stack.endpoint.logins.map((l) => l.token) },
    );
  });
});
