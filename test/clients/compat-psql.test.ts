/**
 * The libpq compatibility matrix: psql and pgbench through proxies with {SCRAM-SHA-256, md5} ×
 * {local TLS off, on} and every sslmode a user is likely to type. psql.test.ts and pgbench.test.ts
 * cover the default (SCRAM, plaintext) proxy in depth; this file checks that the same work holds on
 * the other corners of the matrix, and that TLS, when asked for, really is TLS.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { assertNoSecrets } from '../support/secrets.js';
import { startTestStack, type TestStack } from '../support/stack.js';
import { tempDir } from '../support/temp-dirs.js';
import {
  AUTHS,
  authenticatedSince,
  type CompatProxy,
  libpq,
  PASSWORDS,
  SSLMODES,
  startCompatProxy,
} from './compat.js';
import {
  createPgbenchTables,
  describeResult,
  PGBENCH_RUN,
  parsePgbench,
  pgbench,
  pgEnv,
  psql,
  requireTool,
  spawnTool,
} from './tools.js';

let stack: TestStack | undefined;
const proxies: CompatProxy[] = [];

function theStack(): TestStack {
  assert.ok(stack, 'the stack is running');
  return stack;
}

before(async () => {
  requireTool('psql');
  requireTool('pgbench');
  stack = await startTestStack();
  await stack.postgres.query('grant all on schema public to app');
});

after(async () => {
  for (const p of proxies) await p.proxy.stop();
  if (stack) {
    assertNoSecrets(
      proxies.flatMap((p) => p.proxy.logs.map((l) => l.raw)),
      {
        credentials: stack.credentials,
        tokens: stack.endpoint.logins.map((l) => l.token),
        passwords: Object.values(PASSWORDS),
      },
    );
  }
  await stack?.stop();
});

const TLS_LINE = /^SSL connection \(protocol: TLSv1\.[23],/m;
const NO_SSL = /server does not support SSL, but SSL was required/;

/** Ctrl-C on a running `select pg_sleep(30)`: psql must report the cancel within a few seconds. */
async function ctrlC(cp: CompatProxy, sslmode: 'verify-full' | 'prefer'): Promise<void> {
  const { target, conn } = libpq(cp, 'admin', sslmode);
  const stack = theStack();
  const before = stack.endpoint.cancels.length;
  const sql = `select pg_sleep(30) /* ${cp.label} ${sslmode} */`;
  const running = spawnTool('psql', ['-X', '-w', '-c', sql], pgEnv(target, conn), { timeoutMs: 25_000 });
  const deadline = Date.now() + 10_000;
  for (;;) {
    const active = await stack.postgres.query(
      "select pid from pg_stat_activity where state = 'active' and query = $1",
      [sql],
    );
    if (active.length === 1) break;
    assert.ok(Date.now() < deadline, `pg_sleep never started; psql stderr: ${running.stderr()}`);
    await sleep(50);
  }
  const t0 = Date.now();
  running.child.kill('SIGINT');
  const r = await running.result;
  assert.ok(Date.now() - t0 < 5_000, `psql exits within a few seconds of Ctrl-C: ${describeResult(r)}`);
  assert.notEqual(r.code, 0, describeResult(r));
  assert.match(r.stderr, /canceling statement due to user request/, describeResult(r));
  assert.ok(
    stack.endpoint.cancels.slice(before).some((c) => c.forwarded && c.tls),
    'the cancel reached the endpoint over TLS',
  );
}

for (const tls of [false, true]) {
  for (const auth of AUTHS) {
    describe(`psql and pgbench through the proxy (${auth}, client TLS ${tls ? 'on' : 'off'})`, () => {
      let cp: CompatProxy | undefined;
      const up = (): CompatProxy => {
        assert.ok(cp, 'the proxy is running');
        return cp;
      };
      before(async () => {
        cp = await startCompatProxy(theStack(), { auth, tls });
        proxies.push(cp);
      });

      for (const sslmode of SSLMODES) {
        const fails = !tls && (sslmode === 'require' || sslmode === 'verify-full');
        const encrypted = tls && sslmode !== 'disable';
        const outcome = fails ? 'refused: server does not support SSL' : encrypted ? 'TLS' : 'plaintext';
        test(`sslmode=${sslmode}: ${outcome}`, async () => {
          const cp = up();
          const { target, conn } = libpq(cp, 'app', sslmode);
          const seen = cp.proxy.logs.length;
          const r = await psql(target, conn, [
            '-A',
            '-t',
            '-c',
            'select current_user, 6 * 7',
            '-c',
            '\\conninfo',
          ]);
          if (fails) {
            assert.equal(r.code, 2, describeResult(r));
            assert.match(r.stderr, NO_SSL, describeResult(r));
            assert.equal(r.stdout, '');
            return;
          }
          assert.equal(r.code, 0, describeResult(r));
          assert.match(r.stdout, /^app\|42\n/, describeResult(r));
          if (encrypted) assert.match(r.stdout, TLS_LINE, describeResult(r));
          else assert.doesNotMatch(r.stdout, /SSL connection/, describeResult(r));
          const authLine = authenticatedSince(cp.proxy, seen, 'app');
          assert.equal(authLine?.method, auth, 'the proxy asked for the configured method');
        });
      }

      if (tls) {
        test('verify-full by IP (127.0.0.1 is in the certificate) and with a wrong CA (refused)', async () => {
          const cp = up();
          const byIp = await psql(
            { host: '127.0.0.1', port: cp.proxy.port },
            { user: 'app', password: PASSWORDS.app, sslmode: 'verify-full', sslrootcert: cp.caFile },
            ['-A', '-t', '-c', 'select 1', '-c', '\\conninfo'],
          );
          assert.equal(byIp.code, 0, describeResult(byIp));
          assert.match(byIp.stdout, TLS_LINE, describeResult(byIp));

          // The endpoint's CA did not sign the proxy's local certificate.
          const wrongCa = join(tempDir('wrong-ca'), 'ca.pem');
          writeFileSync(wrongCa, theStack().endpoint.caPem);
          const { target, conn } = libpq(cp, 'app', 'verify-full');
          const bad = await psql(target, { ...conn, sslrootcert: wrongCa }, ['-c', 'select 1']);
          assert.equal(bad.code, 2, describeResult(bad));
          assert.match(bad.stderr, /certificate verify failed/, describeResult(bad));
        });
      }

      const workMode = tls ? 'verify-full' : 'prefer';
      test(`sslmode=${workMode}: script, \\d, \\copy in and out`, async () => {
        const cp = up();
        const { target, conn } = libpq(cp, 'app', workMode);
        const table = `compat_${auth.replace(/\W/g, '')}_${tls ? 'tls' : 'plain'}`;
        const script = [
          `drop table if exists ${table};`,
          `create table ${table} (id int primary key, name text not null, note text);`,
          `insert into ${table} values (1, 'one', null), (2, 'twee', 'ü');`,
          `\\copy ${table} from stdin`,
          '3\tdrie\ttab\\there',
          '4\tvier\t\\N',
          '\\.',
          `select count(*), string_agg(name, ',' order by id) from ${table};`,
        ].join('\n');
        const r = await psql(target, conn, ['-A', '-t', '-q', '-f', '-'], { input: `${script}\n` });
        assert.equal(r.code, 0, describeResult(r));
        assert.equal(r.stdout, '4|one,twee,drie,vier\n');

        const rows = Array.from({ length: 300 }, (_, i) => `${i + 10}\trow ${i}\t${i % 5 ? `n${i}` : '\\N'}`);
        const piped = await psql(target, conn, ['-c', `\\copy ${table} from pstdin`], {
          input: `${rows.join('\n')}\n`,
        });
        assert.equal(piped.code, 0, describeResult(piped));
        assert.equal(piped.stdout.trim(), 'COPY 300');

        const out = await psql(target, conn, ['-c', `\\copy (select * from ${table} order by id) to stdout`]);
        assert.equal(out.code, 0, describeResult(out));
        assert.deepEqual(out.stdout.trimEnd().split('\n'), [
          '1\tone\t\\N',
          '2\ttwee\tü',
          '3\tdrie\ttab\\there',
          '4\tvier\t\\N',
          ...rows,
        ]);

        const d = await psql(target, conn, ['-c', `\\d ${table}`]);
        assert.equal(d.code, 0, describeResult(d));
        assert.match(d.stdout, new RegExp(`Table "public\\.${table}"`));
        assert.match(d.stdout, /^\s*id\s*\|\s*integer\s*\|\s*\|\s*not null\s*\|/m);
        assert.match(d.stdout, new RegExp(`"${table}_pkey" PRIMARY KEY, btree \\(id\\)`));
      });

      if (tls) {
        test('Ctrl-C cancels a running query of a TLS session (verify-full)', async () => {
          await ctrlC(up(), 'verify-full');
        });

        test('pgbench over TLS (verify-full): DSQL-shaped tables, -M simple/extended/prepared, -C', async (t) => {
          const cp = up();
          const { target, conn } = libpq(cp, 'admin', 'verify-full');
          // The tables are public.pgbench_*: the two TLS proxies' runs are sequential, each starts afresh.
          // pgbench -i meets DSQL's refusals (pgbench.test.ts shows it): the tables are made as DSQL accepts.
          const benchConn = conn;
          const init = await createPgbenchTables(target, benchConn);
          assert.equal(init.code, 0, describeResult(init));
          assert.equal(init.stdout, '100000 accounts\n', describeResult(init));
          const modes =
            auth === 'md5' ? (['prepared'] as const) : (['simple', 'extended', 'prepared'] as const);
          for (const mode of modes) {
            const r = await pgbench(target, benchConn, [
              '-T',
              '2',
              '-c',
              '2',
              '-j',
              '2',
              '-M',
              mode,
              ...PGBENCH_RUN,
            ]);
            assert.equal(r.code, 0, describeResult(r));
            const s = parsePgbench(r);
            assert.equal(s.queryMode, mode);
            assert.ok(s.processed >= 10, `-M ${mode}: transactions processed: ${describeResult(r)}`);
            if (s.failed !== undefined) assert.equal(s.failed, 0);
            t.diagnostic(`TLS -M ${mode}: ${s.processed} transactions, tps ${s.tps}`);
          }
          const seen = cp.proxy.logs.length;
          const c = await pgbench(target, benchConn, [
            '-C',
            '-T',
            '2',
            '-c',
            '2',
            '-M',
            'extended',
            ...PGBENCH_RUN,
          ]);
          assert.equal(c.code, 0, describeResult(c));
          const cs = parsePgbench(c);
          assert.ok(cs.processed >= 5, describeResult(c));
          const sessions = cp.proxy.logs.slice(seen).filter((l) => l.json?.event === 'authenticated').length;
          assert.ok(sessions >= cs.processed, `-C: one TLS login per transaction (${sessions} logins)`);
          t.diagnostic(`TLS -C: ${cs.processed} transactions, tps ${cs.tps}`);
          const ok = await psql(target, conn, [
            '-A',
            '-t',
            '-c',
            'select (select sum(abalance) from pgbench_accounts) = (select sum(delta) from pgbench_history)',
          ]);
          assert.equal(ok.stdout, 't\n', describeResult(ok));
        });
      }
    });
  }
}

describe('--client-tls-required', () => {
  let cp: CompatProxy | undefined;
  const up = (): CompatProxy => {
    assert.ok(cp, 'the proxy is running');
    return cp;
  };
  before(async () => {
    cp = await startCompatProxy(theStack(), {
      auth: 'scram-sha-256',
      tls: true,
      extraArgs: ['--client-tls-required'],
    });
    proxies.push(cp);
  });

  test('sslmode=disable is refused with a message that names TLS/SSL', async () => {
    const { target, conn } = libpq(up(), 'app', 'disable');
    const r = await psql(target, conn, ['-c', 'select 1']);
    assert.equal(r.code, 2, describeResult(r));
    assert.match(r.stderr, /SSL|TLS|encrypt/i, describeResult(r));
    assert.doesNotMatch(r.stderr, /password authentication failed/, 'refused before authentication');
  });

  for (const sslmode of ['prefer', 'require', 'verify-full'] as const) {
    test(`sslmode=${sslmode} logs in over TLS`, async () => {
      const { target, conn } = libpq(up(), 'app', sslmode);
      const r = await psql(target, conn, ['-A', '-t', '-c', 'select current_user', '-c', '\\conninfo']);
      assert.equal(r.code, 0, describeResult(r));
      assert.match(r.stdout, /^app\n/);
      assert.match(r.stdout, TLS_LINE);
    });
  }

  test('Ctrl-C still cancels: libpq 15 sends the CancelRequest in plaintext, as PostgreSQL accepts', async () => {
    await ctrlC(up(), 'verify-full');
  });
});
