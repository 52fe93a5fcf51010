/**
 * DSQL's optimistic concurrency through the real proxy: with the local endpoint's rules on (snapshot
 * isolation), concurrent writers of one row see SQLSTATE 40001 with DSQL's `(OC000)` text, and the
 * arithmetic is exact: the counter equals the number of UPDATEs that reported success, and every
 * UPDATE either succeeded or failed with 40001. With `--conflict-retry off` the proxy passes every
 * 40001 through, as before issue 24: this is the baseline that the transparent retries
 * (conflict-retry.test.ts, the default `transactions` and `statements`) change without breaking the
 * arithmetic.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import pg from 'pg';
import postgres from 'postgres';
import { type ProxyProcess, startProxyProcess } from '../support/proxy-process.js';
import { startTestStack, type TestStack } from '../support/stack.js';

const CLIENTS = 8;
const UPDATES = 50;

let stack: TestStack;
let proxy: ProxyProcess;

before(async () => {
  stack = await startTestStack();
  await stack.postgres.query(`
    drop table if exists conflict_counter;
    create table conflict_counter (id int primary key, n int not null);
    insert into conflict_counter values (1, 0);
    grant all on conflict_counter to app;
  `);
  proxy = await startProxyProcess(stack, {
    args: ['--admin-listen', '127.0.0.1:0', '--conflict-retry', 'off'],
  });
});

after(async () => {
  await proxy?.stop();
  await stack?.stop();
});

test(`--conflict-retry off: ${CLIENTS} clients x ${UPDATES} autocommit increments: 40001 (OC000) reaches clients, the sum is exact`, async () => {
  const outcomes = { ok: 0, conflicts: 0, other: [] as string[] };
  const texts = new Set<string>();
  await Promise.all(
    Array.from({ length: CLIENTS }, async () => {
      const client = new pg.Client({ host: proxy.host, port: proxy.port, user: 'app', password: '' });
      await client.connect();
      try {
        for (let i = 0; i < UPDATES; i++) {
          try {
            const r = await client.query('UPDATE conflict_counter SET n = n + 1 WHERE id = 1');
            assert.equal(r.rowCount, 1);
            outcomes.ok++;
          } catch (err) {
            const e = err as { code?: string; message?: string };
            if (e.code === '40001') {
              outcomes.conflicts++;
              texts.add(String(e.message));
            } else outcomes.other.push(`${e.code}: ${e.message}`);
          }
        }
      } finally {
        await client.end();
      }
    }),
  );
  assert.deepEqual(outcomes.other, [], 'no error but 40001');
  assert.equal(outcomes.ok + outcomes.conflicts, CLIENTS * UPDATES);
  assert.ok(outcomes.conflicts > 0, 'concurrent writers of one row conflict, as on DSQL');
  assert.deepEqual([...texts], ['change conflicts with another transaction, please retry: (OC000)']);
  const [row] = await stack.postgres.query<{ n: number }>('select n from conflict_counter where id = 1');
  assert.equal(Number(row?.n), outcomes.ok, 'exactly the successful increments were applied');
  const metrics = await (await fetch(`http://127.0.0.1:${proxy.adminPort}/metrics`)).text();
  const counted = metrics.split('\n').find((l) => l.startsWith('dsql_proxy_serialization_conflicts_total'));
  assert.equal(Number(counted?.split(' ').at(-1)), outcomes.conflicts, 'the proxy counted each 40001');
  const retried = metrics
    .split('\n')
    .filter((l) => l.startsWith('dsql_proxy_conflict_retries_total'))
    .reduce((n, l) => n + Number(l.split(' ').at(-1)), 0);
  assert.equal(retried, 0, 'nothing was retried');
});

test('--conflict-retry off, postgres.js pipelining 8 x 50 increments: every error is a 40001, the sum is exact', async () => {
  // Pipelined batches reach the endpoint before any answer: its per-write limit check must still find
  // its statement when an earlier batch's write failed and skipped the check's Parse (it once got
  // 26000 "prepared statement ... does not exist" here).
  await stack.postgres.query('update conflict_counter set n = 0 where id = 1');
  const outcomes = { ok: 0, conflicts: 0, other: [] as string[] };
  await Promise.all(
    Array.from({ length: CLIENTS }, async () => {
      const sql = postgres({ host: proxy.host, port: proxy.port, user: 'app', password: '', max: 1 });
      try {
        await Promise.all(
          Array.from({ length: UPDATES }, () =>
            sql`UPDATE conflict_counter SET n = n + 1 WHERE id = 1`.then(
              () => {
                outcomes.ok++;
              },
              (err: { code?: string; message?: string }) => {
                if (err.code === '40001') outcomes.conflicts++;
                else outcomes.other.push(`${err.code}: ${err.message}`);
              },
            ),
          ),
        );
      } finally {
        await sql.end({ timeout: 5 });
      }
    }),
  );
  assert.deepEqual(outcomes.other, [], 'no error but 40001');
  assert.equal(outcomes.ok + outcomes.conflicts, CLIENTS * UPDATES);
  const [row] = await stack.postgres.query<{ n: number }>('select n from conflict_counter where id = 1');
  assert.equal(Number(row?.n), outcomes.ok);
});
