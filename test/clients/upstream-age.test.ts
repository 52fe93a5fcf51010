/**
 * A psql session with settings (SET) keeps working across several of DSQL's connection caps
 * (shortened to 3 s in the test endpoint): the proxy moves it to fresh upstream connections at idle
 * moments (--max-upstream-age 1500ms) and carries the settings over. One with SQL-level PREPARE
 * statements moves too: the compatibility layer carries them out over protocol-level statements and
 * re-creates those with Parse (never by re-running the client's text). With --compat off DSQL refuses
 * the PREPARE, so no session holds a statement a move could not re-create.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { type ProxyProcess, startProxyProcess } from '../support/proxy-process.js';
import { startTestStack, type TestStack } from '../support/stack.js';
import { describeResult, pgEnv, requireTool, spawnTool } from './tools.js';

const CAP_MS = 3000;
let stack: TestStack;
let proxy: ProxyProcess;

before(async () => {
  requireTool('psql');
  stack = await startTestStack({ maxConnectionMs: CAP_MS });
  proxy = await startProxyProcess(stack, { args: ['--max-upstream-age', '1500ms', '--log-level', 'trace'] });
});

after(async () => {
  await proxy?.stop();
  await compatOff?.stop();
  await stack?.stop();
});

/** A proxy with --compat off on the same endpoint, for the last test. */
let compatOff: ProxyProcess | undefined;

test('psql: SET survives several caps', async () => {
  const env = pgEnv({ host: proxy.host, port: proxy.port }, { user: 'app' });
  const psql = spawnTool('psql', ['-X', '-w', '-A', '-t', '-q', '-v', 'ON_ERROR_STOP=1'], env, {
    interactive: true,
    timeoutMs: 60_000,
  });
  const stdin = psql.child.stdin!;
  stdin.write("SET search_path TO pg_catalog, public;\nSET TimeZone TO 'Europe/Lisbon';\n");
  const rounds = 8;
  for (let i = 0; i < rounds; i++) {
    stdin.write(
      `SELECT ${i} + 1;\nSELECT current_setting('search_path') || '|' || current_setting('TimeZone') || '|' || pg_backend_pid();\n`,
    );
    await new Promise((r) => setTimeout(r, 1000));
  }
  stdin.end('\\q\n');
  const r = await psql.result;
  assert.equal(r.code, 0, describeResult(r));
  const lines = r.stdout.trim().split('\n');
  assert.equal(lines.length, rounds * 2, r.stdout);
  const pids = new Set<string>();
  for (let i = 0; i < rounds; i++) {
    assert.equal(lines[i * 2], String(i + 1), `round ${i}`);
    const [sp, tz, pid] = (lines[i * 2 + 1] ?? '').split('|');
    assert.equal(sp, 'pg_catalog, public');
    assert.equal(tz, 'Europe/Lisbon');
    pids.add(pid ?? '');
  }
  assert.ok(pids.size >= 3, `ran on ${pids.size} upstream connections`);
  const moves = proxy.logs.filter((l) => l.json?.event === 'upstream_moved');
  assert.ok(moves.length >= 2 && moves.every((m) => Number(m.json?.settings) >= 7));
  assert.equal(proxy.logs.filter((l) => l.json?.event === 'upstream_lost').length, 0);
});

test('psql: a session holding SQL PREPARE statements moves, and EXECUTE after the moves inserts once', async () => {
  await stack.postgres.query(
    'drop table if exists public.age_psql; create table public.age_psql (n int); grant select, insert on public.age_psql to app',
  );
  const seen = proxy.logs.length;
  const env = pgEnv({ host: proxy.host, port: proxy.port }, { user: 'app' });
  const psql = spawnTool('psql', ['-X', '-w', '-A', '-t', '-q', '-v', 'ON_ERROR_STOP=1'], env, {
    interactive: true,
    timeoutMs: 60_000,
  });
  const stdin = psql.child.stdin!;
  stdin.write('PREPARE add_one(int) AS SELECT $1 + 1;\nEXECUTE add_one(1);\n');
  stdin.write('PREPARE ins AS INSERT INTO public.age_psql VALUES (1); EXECUTE ins;\n');
  for (let i = 0; i < 5; i++) {
    stdin.write('SELECT pg_backend_pid();\n');
    await new Promise((r) => setTimeout(r, 1000));
  }
  stdin.end('EXECUTE add_one(41);\nEXECUTE ins;\n\\q\n');
  const r = await psql.result;
  assert.equal(r.code, 0, describeResult(r));
  const lines = r.stdout.trim().split('\n');
  assert.equal(lines[0], '2', 'EXECUTE before the moves');
  assert.equal(lines.at(-1), '42', 'EXECUTE after the moves');
  assert.ok(new Set(lines.slice(1, -1)).size >= 2, `backends: ${lines.slice(1, -1).join(' ')}`);
  const [row] = await stack.postgres.query<{ n: string }>('select count(*) as n from public.age_psql');
  assert.equal(Number(row?.n), 2, "each EXECUTE inserted once, no move re-ran the PREPARE's Query");
  const after = proxy.logs.slice(seen);
  assert.ok(
    after.some((l) => l.json?.event === 'upstream_moved'),
    'the session moved',
  );
  assert.equal(after.filter((l) => l.json?.event === 'upstream_move_refused').length, 0);
});

test('psql with --compat off: DSQL refuses SQL PREPARE, and the session then moves like any other', async () => {
  compatOff = await startProxyProcess(stack, {
    args: ['--max-upstream-age', '1500ms', '--log-level', 'trace', '--compat', 'off'],
  });
  const env = pgEnv({ host: compatOff.host, port: compatOff.port }, { user: 'app' });
  const psql = spawnTool('psql', ['-X', '-w', '-A', '-t', '-q', '-v', 'ON_ERROR_STOP=0'], env, {
    interactive: true,
    timeoutMs: 60_000,
  });
  const stdin = psql.child.stdin!;
  stdin.write('PREPARE add_one(int) AS SELECT $1 + 1;\n');
  for (let i = 0; i < 6; i++) {
    stdin.write(`SELECT ${i};\n`);
    await new Promise((r) => setTimeout(r, 1000));
  }
  stdin.end('\\q\n');
  const r = await psql.result;
  assert.equal(r.code, 0, describeResult(r));
  assert.deepEqual(
    r.stderr.split('\n').filter((l) => l.includes('ERROR')),
    ['ERROR:  unsupported statement: Prepare'],
    describeResult(r),
  );
  assert.deepEqual(r.stdout.trim().split('\n'), ['0', '1', '2', '3', '4', '5']);
  assert.ok(
    compatOff.logs.some((l) => l.json?.event === 'upstream_moved'),
    'the session moved at least once',
  );
  assert.equal(compatOff.logs.filter((l) => l.json?.event === 'upstream_move_refused').length, 0);
});
