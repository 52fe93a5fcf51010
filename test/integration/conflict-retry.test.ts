/**
 * Transparent retry of DSQL's 40001 (issue 24) through the real proxy, against the local endpoint with
 * DSQL's rules on, so conflicts are real (40001 `(OC000)`, raised at the conflicting write: docs/dsql.md).
 * The oracle is exact arithmetic: a counter incremented by every request a client saw succeed must end
 * at exactly the number of those requests, no lost and no doubled write; the retry metrics say which
 * path the proxy took, so a test cannot pass because no conflict happened.
 *
 * The endpoint makes a writer WAIT for the row's current writer and then fail (PostgreSQL's REPEATABLE
 * READ), so with 8 clients on one row an attempt fails more often than on DSQL; the proxies here allow
 * ATTEMPTS retries instead of the default 3 so that "zero errors" measures correctness, not luck.
 * `--conflict-retry off` (the old behaviour) is test/integration/conflicts.test.ts.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import postgres from 'postgres';
import { pgEnv, runTool } from '../clients/tools.js';
import { rssBytes } from '../support/proxy-memory.js';
import { type ProxyProcess, startProxyProcess } from '../support/proxy-process.js';
import { startTestStack, type TestStack } from '../support/stack.js';

const CLIENTS = 8;
const UPDATES = 50;
const TRANSACTIONS = 25;
const ATTEMPTS = 20;
const INCREMENT = 'UPDATE retry_counter SET n = n + 1 WHERE id = 1';

let stack: TestStack;
const procs: ProxyProcess[] = [];

before(async () => {
  stack = await startTestStack();
  await stack.postgres.query(`
    drop table if exists retry_counter, retry_a, retry_b, retry_log;
    create table retry_counter (id int primary key, n int not null);
    create table retry_a (id int primary key, n int not null);
    create table retry_b (id int primary key, n int not null);
    create table retry_log (client int, i int, ts text not null, r text not null, primary key (client, i));
    insert into retry_counter values (1, 0);
    insert into retry_a values (1, 0);
    insert into retry_b values (1, 0);
    grant all on retry_counter, retry_a, retry_b, retry_log to app;
  `);
});

after(async () => {
  await Promise.all(procs.map((p) => p.stop()));
  await stack?.stop();
});

async function startProxy(mode: 'off' | 'statements' | 'transactions'): Promise<ProxyProcess> {
  const p = await startProxyProcess(stack, {
    args: [
      '--admin-listen',
      '127.0.0.1:0',
      '--conflict-retry',
      mode,
      '--conflict-retry-attempts',
      String(ATTEMPTS),
    ],
  });
  procs.push(p);
  return p;
}

// ---- metrics ----------------------------------------------------------------------------------

type Metrics = Map<string, number>;

async function scrape(p: ProxyProcess): Promise<Metrics> {
  const text = await (await fetch(`http://127.0.0.1:${p.adminPort}/metrics`)).text();
  const out: Metrics = new Map();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const cut = line.lastIndexOf(' ');
    out.set(line.slice(0, cut), Number(line.slice(cut + 1)));
  }
  return out;
}

/** The sum of every series of `name` whose labels include all of `labels`. */
function sum(m: Metrics, name: string, labels: Record<string, string> = {}): number {
  let total = 0;
  for (const [series, value] of m) {
    const brace = series.indexOf('{');
    if ((brace < 0 ? series : series.slice(0, brace)) !== name) continue;
    if (Object.entries(labels).every(([k, v]) => series.includes(`${k}="${v}"`))) total += value;
  }
  return total;
}

/** What changed between two scrapes, by the same selection as sum(). */
function delta(a: Metrics, b: Metrics, name: string, labels: Record<string, string> = {}): number {
  return sum(b, name, labels) - sum(a, name, labels);
}

const RETRIES = 'dsql_proxy_conflict_retries_total';
const CONFLICTS = 'dsql_proxy_serialization_conflicts_total';
const ATTEMPTS_COUNT = 'dsql_proxy_conflict_retry_attempts_count';

// ---- data -------------------------------------------------------------------------------------

async function reset(): Promise<void> {
  await stack.postgres.query(
    'update retry_counter set n = 0; update retry_a set n = 0; update retry_b set n = 0; delete from retry_log',
  );
}

async function counter(table = 'retry_counter'): Promise<number> {
  const [row] = await stack.postgres.query<{ n: number }>(`select n from ${table} where id = 1`);
  return Number(row?.n);
}

interface Outcomes {
  ok: number;
  conflicts: number;
  other: string[];
}

const outcomes = (): Outcomes => ({ ok: 0, conflicts: 0, other: [] });

function record(o: Outcomes, err: unknown): void {
  const e = err as { code?: string; message?: string };
  if (e.code === '40001') o.conflicts++;
  else o.other.push(`${e.code}: ${e.message}`);
}

async function pgClient(p: ProxyProcess): Promise<pg.Client> {
  const c = new pg.Client({ host: p.host, port: p.port, user: 'app', password: '' });
  await c.connect();
  return c;
}

/** `body` once per client, each on a connection of its own, all at once. */
async function eachClient(p: ProxyProcess, body: (c: pg.Client, client: number) => Promise<void>) {
  await Promise.all(
    Array.from({ length: CLIENTS }, async (_, client) => {
      const c = await pgClient(p);
      try {
        await body(c, client);
      } finally {
        await c.end();
      }
    }),
  );
}

// ---- autocommit workloads (case 1) ------------------------------------------------------------

/** One psql per client, 50 statements on stdin, ON_ERROR_STOP=0: every error is a line on stderr. */
async function viaPsql(p: ProxyProcess): Promise<Outcomes> {
  const o = outcomes();
  const input = `${INCREMENT};\n`.repeat(UPDATES);
  const results = await Promise.all(
    Array.from({ length: CLIENTS }, () =>
      runTool('psql', ['-X', '-w', '-q', '-v', 'ON_ERROR_STOP=0'], pgEnv(p, { user: 'app' }), {
        input,
        timeoutMs: 120_000,
      }),
    ),
  );
  for (const r of results) {
    assert.equal(r.signal, null, `psql was not killed: ${r.stderr.slice(-500)}`);
    const errors = r.stderr.split('\n').filter((l) => l.includes('ERROR:'));
    for (const l of errors) {
      if (l.includes('(OC000)')) o.conflicts++;
      else o.other.push(l);
    }
    o.ok += UPDATES - errors.length;
  }
  return o;
}

async function viaPg(p: ProxyProcess, query: string | pg.QueryConfig): Promise<Outcomes> {
  const o = outcomes();
  await eachClient(p, async (c) => {
    for (let i = 0; i < UPDATES; i++) {
      try {
        const r = await c.query(query);
        assert.equal(r.rowCount, 1);
        o.ok++;
      } catch (err) {
        record(o, err);
      }
    }
  });
  return o;
}

/** postgres.js, one connection per client, all 50 UPDATEs pipelined on it (named statements). */
async function viaPostgresJs(p: ProxyProcess): Promise<Outcomes> {
  const o = outcomes();
  await Promise.all(
    Array.from({ length: CLIENTS }, async () => {
      const sql = postgres({ host: p.host, port: p.port, user: 'app', password: '', max: 1 });
      try {
        const settled = await Promise.allSettled(
          Array.from({ length: UPDATES }, () => sql`update retry_counter set n = n + 1 where id = 1`),
        );
        for (const s of settled) {
          if (s.status === 'fulfilled') {
            assert.equal(s.value.count, 1);
            o.ok++;
          } else record(o, s.reason);
        }
      } finally {
        await sql.end({ timeout: 5 });
      }
    }),
  );
  return o;
}

const AUTOCOMMIT: Array<[string, (p: ProxyProcess) => Promise<Outcomes>]> = [
  ['psql', viaPsql],
  ['node-postgres simple', (p) => viaPg(p, INCREMENT)],
  [
    'node-postgres parameterised',
    (p) => viaPg(p, { text: 'UPDATE retry_counter SET n = n + $1 WHERE id = 1', values: [1] }),
  ],
  ['postgres.js pipelined', viaPostgresJs],
];

/** Runs one autocommit workload and checks the arithmetic: every UPDATE applied once, none failed. */
async function zeroErrorsExact(p: ProxyProcess, run: (p: ProxyProcess) => Promise<Outcomes>) {
  await reset();
  const before = await scrape(p);
  const o = await run(p);
  const after = await scrape(p);
  assert.deepEqual(o.other, [], 'no error but 40001');
  assert.equal(o.conflicts, 0, 'no 40001 reached a client');
  assert.equal(o.ok, CLIENTS * UPDATES);
  assert.equal(await counter(), CLIENTS * UPDATES, 'each UPDATE applied exactly once');
  const retried = delta(before, after, RETRIES, { kind: 'statement', outcome: 'succeeded' });
  assert.ok(retried > 0, 'conflicts happened and were retried (else this proves nothing)');
  assert.equal(delta(before, after, RETRIES, { kind: 'transaction' }), 0, 'no transaction was open');
  assert.equal(delta(before, after, CONFLICTS), 0, 'the conflicts counter counts only what reached clients');
  assert.equal(delta(before, after, ATTEMPTS_COUNT), retried, 'one attempts observation per success');
}

// ---- transactions (cases 2, 3, 4) -------------------------------------------------------------

/** 8 x 25 `BEGIN; UPDATE a; UPDATE b; COMMIT`, as separate queries; a failed one is rolled back. */
async function blindTransactions(p: ProxyProcess): Promise<Outcomes> {
  const o = outcomes();
  await eachClient(p, async (c) => {
    for (let i = 0; i < TRANSACTIONS; i++) {
      try {
        await c.query('BEGIN');
        await c.query('UPDATE retry_a SET n = n + 1 WHERE id = 1');
        await c.query('UPDATE retry_b SET n = n + 1 WHERE id = 1');
        await c.query('COMMIT');
        o.ok++;
      } catch (err) {
        record(o, err);
        await c.query('ROLLBACK');
      }
    }
  });
  return o;
}

/**
 * A 40001 in the middle of a transaction leaves it aborted, as a server does: the next statement
 * but ROLLBACK gets 25P02. Then ROLLBACK. A proxy that replayed into a fresh, open transaction fails this.
 */
async function expectAborted(c: pg.Client, o: Outcomes): Promise<void> {
  try {
    await c.query('SELECT 1');
    o.other.push('after a 40001 the transaction was not aborted: SELECT 1 succeeded');
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code !== '25P02') o.other.push(`after a 40001: ${code}, expected 25P02`);
  }
  await c.query('ROLLBACK');
}

/** 8 x 25 transactions that write what the client computed from a SELECT it saw. */
async function readThenWrite(p: ProxyProcess): Promise<Outcomes> {
  const o = outcomes();
  await eachClient(p, async (c) => {
    for (let i = 0; i < TRANSACTIONS; i++) {
      let failedAt = '';
      try {
        failedAt = 'BEGIN';
        await c.query('BEGIN');
        failedAt = 'SELECT';
        const seen = await c.query<{ n: number }>('SELECT n FROM retry_counter WHERE id = 1');
        const next = Number(seen.rows[0]?.n) + 1;
        failedAt = 'UPDATE';
        await c.query(`UPDATE retry_counter SET n = ${next} WHERE id = 1`);
        failedAt = 'COMMIT';
        await c.query('COMMIT');
        o.ok++;
      } catch (err) {
        record(o, err);
        if (failedAt === 'COMMIT') continue; // a failed COMMIT ends the transaction
        await expectAborted(c, o);
      }
    }
  });
  return o;
}

describe('--conflict-retry transactions', () => {
  let p: ProxyProcess;
  before(async () => {
    p = await startProxy('transactions');
  });

  for (const [name, run] of AUTOCOMMIT) {
    test(`${CLIENTS} x ${UPDATES} autocommit increments via ${name}: zero errors, n = ${CLIENTS * UPDATES}`, () =>
      zeroErrorsExact(p, run));
  }

  test(`${CLIENTS} x ${TRANSACTIONS} blind two-counter transactions: zero errors, both counters exact`, async () => {
    await reset();
    const before = await scrape(p);
    const o = await blindTransactions(p);
    const after = await scrape(p);
    assert.deepEqual(o.other, []);
    assert.equal(o.conflicts, 0, 'no 40001 reached a client');
    assert.equal(o.ok, CLIENTS * TRANSACTIONS);
    assert.equal(await counter('retry_a'), CLIENTS * TRANSACTIONS);
    assert.equal(await counter('retry_b'), CLIENTS * TRANSACTIONS);
    assert.ok(
      delta(before, after, RETRIES, { kind: 'transaction', outcome: 'succeeded' }) > 0,
      'replays happened',
    );
    assert.equal(delta(before, after, CONFLICTS), 0);
  });

  test(`${CLIENTS} x ${TRANSACTIONS} read-then-write transactions: 40001s reach clients, n = committed`, async () => {
    await reset();
    const before = await scrape(p);
    const o = await readThenWrite(p);
    const after = await scrape(p);
    assert.deepEqual(o.other, [], 'only 40001, and the transaction aborted as on a server');
    assert.equal(o.ok + o.conflicts, CLIENTS * TRANSACTIONS);
    assert.ok(o.conflicts > 0, "the replay's SELECT saw another n: the client got the original 40001");
    assert.equal(await counter(), o.ok, 'no lost and no doubled update');
    assert.ok(
      delta(before, after, RETRIES, { kind: 'transaction', outcome: 'mismatch' }) > 0,
      'the metric counted the mismatches',
    );
    // Every conflict here follows a SELECT whose value changed, so no replay can have matched.
    assert.equal(delta(before, after, RETRIES, { kind: 'transaction', outcome: 'succeeded' }), 0);
    assert.equal(delta(before, after, CONFLICTS), o.conflicts, 'the counter counts what reached clients');
  });

  test('a transaction that read clock_timestamp() and random() is never replayed into another answer', async () => {
    await reset();
    const before = await scrape(p);
    const o = outcomes();
    const committed = new Map<string, { ts: string; r: string }>();
    await eachClient(p, async (c, client) => {
      for (let i = 0; i < TRANSACTIONS; i++) {
        let failedAt = '';
        try {
          await c.query('BEGIN');
          const seen = await c.query<{ ts: string; r: string }>(
            'SELECT clock_timestamp()::text AS ts, random()::text AS r',
          );
          const { ts, r } = seen.rows[0] ?? { ts: '', r: '' };
          failedAt = 'UPDATE';
          await c.query(INCREMENT);
          await c.query('INSERT INTO retry_log VALUES ($1, $2, $3, $4)', [client, i, ts, r]);
          failedAt = 'COMMIT';
          await c.query('COMMIT');
          committed.set(`${client}/${i}`, { ts, r });
          o.ok++;
        } catch (err) {
          record(o, err);
          if (failedAt !== 'COMMIT') await expectAborted(c, o);
        }
      }
    });
    const after = await scrape(p);
    assert.deepEqual(o.other, []);
    assert.ok(o.conflicts > 0, 'conflicts reached clients: the clock differs in every replay');
    assert.equal(
      delta(before, after, RETRIES, { kind: 'transaction', outcome: 'succeeded' }),
      0,
      'no replay matched: each read another clock and another random()',
    );
    assert.ok(
      delta(before, after, RETRIES, { kind: 'transaction', outcome: 'mismatch' }) > 0,
      'the metric counted the mismatches',
    );
    assert.equal(await counter(), o.ok, 'n = committed transactions');
    const rows = await stack.postgres.query<{ client: number; i: number; ts: string; r: string }>(
      'select client, i, ts, r from retry_log',
    );
    const logged = new Map(rows.map((row) => [`${row.client}/${row.i}`, { ts: row.ts, r: row.r }]));
    assert.deepEqual(logged, committed, 'committed rows carry exactly the values their client saw');
  });

  test('a CancelRequest during a retried statement: 57014, the session stays usable', async () => {
    await cancelDuringRetry(p);
  });
});

// ---- cancel (case 8) --------------------------------------------------------------------------

async function direct(): Promise<pg.Client> {
  const c = new pg.Client({ host: stack.postgres.host, port: stack.postgres.port, user: 'postgres' });
  await c.connect();
  return c;
}

/**
 * Waits until a backend whose query contains `marker` waits on a lock held by `blocker`'s pid (any
 * pid when omitted: a second waiter for a row waits on the first waiter's tuple lock, not the holder).
 */
async function waitBlocked(marker: string, blocker?: number): Promise<number> {
  for (const deadline = Date.now() + 15_000; Date.now() < deadline; ) {
    // The marker is a parameter, so this query's own text does not match.
    const rows = await stack.postgres.query<{ pid: number }>(
      `select pid from pg_stat_activity
        where query like '%' || $1 || '%'
          and ($2::int is null and cardinality(pg_blocking_pids(pid)) > 0 or $2::int = any(pg_blocking_pids(pid)))`,
      [marker, blocker ?? null],
    );
    if (rows[0]) return Number(rows[0].pid);
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`no backend running ${marker} waited on ${blocker}`);
}

/**
 * Makes the first attempt of an autocommit UPDATE fail with 40001 and its retry wait on a row lock:
 * L1 holds the row; the client's UPDATE and L2's (READ COMMITTED, so it does not fail) wait on L1;
 * L1 commits: the client's attempt fails, L2 updates the new row version and holds it, and the
 * proxy's retry waits on L2. The client's cancel must stop that retry.
 */
async function cancelDuringRetry(p: ProxyProcess): Promise<void> {
  await reset();
  const l1 = await direct();
  const l2 = await direct();
  const sql = postgres({ host: p.host, port: p.port, user: 'app', password: '', max: 1 });
  try {
    const before = await scrape(p);
    const l1pid = Number((await l1.query('select pg_backend_pid() as pid')).rows[0].pid);
    const l2pid = Number((await l2.query('select pg_backend_pid() as pid')).rows[0].pid);
    await l1.query('BEGIN; UPDATE retry_counter SET n = n + 1 WHERE id = 1');
    const q = sql.unsafe(`${INCREMENT} /* retry-cancel-me */`);
    const settled = q.then(
      () => undefined,
      (err: { code?: string }) => err,
    );
    const clientPid = await waitBlocked('retry-cancel-me', l1pid);
    await l2.query('BEGIN ISOLATION LEVEL READ COMMITTED');
    const l2update = l2.query('UPDATE retry_counter SET n = n + 10 WHERE id = 1 /* retry-second-locker */');
    l2update.catch(() => {}); // awaited below; a failure before that must not be unhandled
    await waitBlocked('retry-second-locker');
    await l1.query('COMMIT');
    await l2update;
    // The same backend now waits on L2: that is the proxy's retry, the client has seen nothing.
    assert.equal(
      await waitBlocked('retry-cancel-me', l2pid),
      clientPid,
      'the retry runs on the same upstream',
    );
    q.cancel();
    const err = await settled;
    assert.equal(err?.code, '57014', 'the client gets 57014, not the 40001 of the first attempt');
    await l2.query('ROLLBACK');
    const [row] = await sql<{ one: number }[]>`select 1 as one`;
    assert.equal(row?.one, 1, 'the session stays usable');
    assert.equal(await counter(), 1, "only L1's increment: the cancelled UPDATE and L2's are not applied");
    const after = await scrape(p);
    assert.equal(delta(before, after, RETRIES, { kind: 'statement', outcome: 'cancelled' }), 1);
    assert.equal(delta(before, after, CONFLICTS), 0, 'no 40001 reached the client');
  } finally {
    await sql.end({ timeout: 5 });
    await l1.end().catch(() => {});
    await l2.end().catch(() => {});
  }
}

// ---- statements only (case 6) -----------------------------------------------------------------

describe('--conflict-retry statements', () => {
  let p: ProxyProcess;
  before(async () => {
    p = await startProxy('statements');
  });

  test('autocommit increments via node-postgres: zero errors, n exact', () =>
    zeroErrorsExact(p, AUTOCOMMIT[1]![1]));

  test('blind two-counter transactions: 40001s reach clients (only autocommit is retried), counters exact', async () => {
    await reset();
    const before = await scrape(p);
    const o = await blindTransactions(p);
    const after = await scrape(p);
    assert.deepEqual(o.other, []);
    assert.ok(o.conflicts > 0, 'transactions are not retried in this mode');
    assert.equal(o.ok + o.conflicts, CLIENTS * TRANSACTIONS);
    assert.equal(await counter('retry_a'), o.ok);
    assert.equal(await counter('retry_b'), o.ok);
    assert.equal(delta(before, after, RETRIES, { kind: 'transaction' }), 0);
    assert.equal(delta(before, after, CONFLICTS), o.conflicts);
  });
});

// ---- bounded hold-back (case 7) ---------------------------------------------------------------

describe('a large autocommit result', () => {
  test('50 MB streams through a retrying proxy with bounded memory, every row arrives', async () => {
    // RSS moves with the garbage collector, so the oracle is relative: a proxy with retry off streams
    // the same result, and the retrying one may grow by its buffer and some slack, never by the 50 MB
    // it would hold if it did not let the answer flow past --conflict-retry-buffer.
    const growth: Record<string, number> = {};
    for (const mode of ['off', 'transactions'] as const) {
      const p = await startProxy(mode); // a fresh process: its RSS has not grown yet
      const c = await pgClient(p);
      try {
        await c.query("select repeat('x', 1000) from generate_series(1, 100)"); // warm the path
        const pid = p.child.pid ?? 0;
        const baseline = rssBytes(pid);
        let peak = baseline;
        const sampler = setInterval(() => {
          peak = Math.max(peak, rssBytes(pid));
        }, 20);
        let rows: unknown[][];
        try {
          ({ rows } = await c.query({
            text: "select repeat('x', 1000) from generate_series(1, 50000)",
            rowMode: 'array',
          }));
        } finally {
          clearInterval(sampler);
        }
        peak = Math.max(peak, rssBytes(pid));
        assert.equal(rows.length, 50_000);
        assert.ok(
          rows.every((r) => typeof r[0] === 'string' && r[0].length === 1000),
          'every row whole',
        );
        growth[mode] = (peak - baseline) / 1048576;
      } finally {
        await c.end();
      }
    }
    const { off = 0, transactions = 0 } = growth;
    assert.ok(
      transactions < off + 16,
      `proxy RSS grew ${transactions.toFixed(1)} MB with retry on, ${off.toFixed(1)} MB with it off: the result was held`,
    );
  });
});
