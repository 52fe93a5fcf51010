/**
 * The proxy as a sidecar: admin endpoints through a whole lifecycle, metrics that move with traffic,
 * the shutdown phases, --max-connections, --login-timeout, SIGHUP reload and the Unix socket.
 */
import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import net from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import postgres from 'postgres';
import { createScramVerifier } from '../../src/auth/scram.js';
import { type ProxyProcess, stackArgs, startProxyProcess } from '../support/proxy-process.js';
import { assertNoSecrets } from '../support/secrets.js';
import { startTestStack, type TestStack } from '../support/stack.js';
import { tempDir } from '../support/temp-dirs.js';

let stack: TestStack;
const procs: ProxyProcess[] = [];

before(async () => {
  stack = await startTestStack();
});

after(async () => {
  await Promise.all(procs.map((p) => p.stop()));
  await stack?.stop();
  assertNoSecrets(
    procs.flatMap((p) => p.logs.map((l) => l.raw)),
    {
      credentials: stack.credentials,
      tokens: stack.endpoint.logins.map((l) => l.token),
      passwords: ['pw-one', 'pw-two'],
    },
  );
});

async function proxy(
  args: string[],
  opts: Parameters<typeof startProxyProcess>[1] = {},
): Promise<ProxyProcess> {
  const p = await startProxyProcess(stack, {
    ...opts,
    args: ['--admin-listen', '127.0.0.1:0', '--log-level', 'trace', ...args],
  });
  procs.push(p);
  return p;
}

async function http(
  p: ProxyProcess,
  path: string,
  method = 'GET',
): Promise<{ status: number; body: string }> {
  const res = await fetch(`http://127.0.0.1:${p.adminPort}${path}`, { method });
  return { status: res.status, body: await res.text() };
}

/** A request with exactly these headers (fetch will not set Host), the body `{}` for a POST. */
function rawHttp(
  port: number,
  path: string,
  method: string,
  headers: Record<string, string>,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method, headers, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        body += c;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end(method === 'POST' ? '{}' : undefined);
  });
}

/** Reads one sample from the Prometheus text, 0 when absent. */
function sample(metrics: string, name: string, labels = ''): number {
  const line = metrics.split('\n').find((l) => l.startsWith(`${name}${labels ? `{${labels}}` : ''} `));
  return line ? Number(line.split(' ').at(-1)) : 0;
}

async function client(p: ProxyProcess, user = 'app', password = ''): Promise<pg.Client> {
  const c = new pg.Client({ host: p.host, port: p.port, user, password });
  await c.connect();
  return c;
}

async function refusal(p: ProxyProcess, cfg: pg.ClientConfig = {}): Promise<pg.DatabaseError> {
  const c = new pg.Client({ host: p.host, port: p.port, user: 'app', password: '', ...cfg });
  c.on('error', () => {});
  const err = await c.connect().then(
    async () => {
      await c.end();
      return undefined;
    },
    (e: unknown) => e,
  );
  assert.ok(err instanceof Error, 'the connection should have been refused');
  return err as pg.DatabaseError;
}

describe('admin endpoints', () => {
  test('startup, liveness and readiness while serving; 404 and 405 elsewhere', async () => {
    const p = await proxy([]);
    assert.ok(p.adminPort > 0);
    assert.deepEqual(await http(p, '/startup'), { status: 200, body: 'started\n' });
    assert.equal((await http(p, '/livez')).status, 200);
    assert.deepEqual(await http(p, '/readyz'), {
      status: 200,
      body: `ready\nendpoint ${stack.hostname} (${stack.region}): up\n`,
    });
    assert.equal((await http(p, '/nope')).status, 404);
    assert.equal((await http(p, '/quitquitquit')).status, 405, 'GET must not stop the proxy');
    assert.equal((await http(p, '/readyz', 'POST')).status, 405);
    const before = stack.endpoint.connections;
    for (let i = 0; i < 5; i++) await http(p, '/readyz');
    assert.equal(stack.endpoint.connections, before, 'probes never open database connections');
  });

  test('without credentials: started listening, but /startup and /readyz are 503 and say why', async () => {
    const p = await proxy([], { credentials: false });
    const startup = await http(p, '/startup');
    assert.equal(startup.status, 503);
    assert.match(startup.body, /no token signed yet: .*no AWS credentials/i);
    const ready = await http(p, '/readyz');
    assert.equal(ready.status, 503);
    assert.match(ready.body, /no valid IAM token/);
    assert.equal((await http(p, '/livez')).status, 200, 'alive all the same');
  });

  test('POST /quitquitquit with --admin-quitquitquit runs the shutdown sequence and the process exits 0', async () => {
    const p = await proxy(['--admin-quitquitquit']);
    const res = await http(p, '/quitquitquit', 'POST');
    assert.equal(res.status, 200);
    assert.equal(await p.exited, 0);
    assert.ok(p.logs.some((l) => l.json?.event === 'quitquitquit'));
  });

  test('POST /quitquitquit is off by default: 403, and the proxy keeps serving', async () => {
    const p = await proxy([]);
    const res = await http(p, '/quitquitquit', 'POST');
    assert.equal(res.status, 403);
    assert.match(res.body, /--admin-quitquitquit/);
    const c = await client(p);
    assert.deepEqual((await c.query('select 1 as one')).rows, [{ one: 1 }]);
    await c.end();
    assert.equal(p.child.exitCode, null, 'still running');
  });

  test('a cross-site POST (Origin, text/plain) or a rebound Host cannot stop the proxy, even with quitquitquit on', async () => {
    const p = await proxy(['--admin-quitquitquit']);
    const crossSite = await rawHttp(p.adminPort, '/quitquitquit', 'POST', {
      origin: 'http://evil.example',
      'content-type': 'text/plain',
      'content-length': '2',
    });
    assert.equal(crossSite.status, 403);
    const rebound = await rawHttp(p.adminPort, '/quitquitquit', 'POST', {
      host: `evil.example:${p.adminPort}`,
    });
    assert.equal(rebound.status, 403);
    await p.waitForLog((l) => l.event === 'admin_refused');
    // Still running and serving a while later.
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(p.child.exitCode, null, 'the proxy did not exit');
    assert.ok(!p.logs.some((l) => l.json?.event === 'quitquitquit'));
    assert.equal((await http(p, '/readyz')).status, 200, 'not draining');
    const c = await client(p);
    assert.deepEqual((await c.query('select 1 as one')).rows, [{ one: 1 }]);
    await c.end();
  });

  test('shutdown lifecycle: readiness 503 at once, clients accepted during min delay, then drain, 57P01, exit 0', async () => {
    const p = await proxy(['--min-shutdown-delay', '1500ms', '--max-shutdown-delay', '1500ms']);
    const idle = await client(p);
    const idleError = new Promise<pg.DatabaseError>((resolve) =>
      idle.on('error', (e) => resolve(e as pg.DatabaseError)),
    );
    p.child.kill('SIGTERM');
    await p.waitForLog((l) => l.event === 'shutdown_delay');
    const ready = await http(p, '/readyz');
    assert.deepEqual(ready, { status: 503, body: 'draining: shutting down\n' });
    assert.equal((await http(p, '/livez')).status, 200);

    // Still accepting during the minimum delay.
    const late = await client(p);
    assert.deepEqual((await late.query('select 1 as one')).rows, [{ one: 1 }]);
    await late.end();

    await p.waitForLog((l) => l.event === 'draining');
    assert.match((await refusal(p)).message, /ECONNREFUSED|Connection terminated/);
    const err = await idleError;
    assert.equal(err.code, '57P01');
    assert.equal(await p.exited, 0);
  });
});

describe('metrics', () => {
  test('counters and histograms move with traffic', async () => {
    const verifier = createScramVerifier('pw-one');
    const dir = tempDir('metrics');
    writeFileSync(join(dir, 'users.txt'), `"app" "${verifier}"\n`);
    const p = await proxy(['--auth-file', join(dir, 'users.txt')]);
    const m0 = (await http(p, '/metrics')).body;
    const ep = `endpoint="${stack.hostname}",action="DbConnect"`;
    assert.ok(sample(m0, 'dsql_proxy_token_signings_total', ep) >= 1);
    assert.ok(sample(m0, 'dsql_proxy_token_expiry_seconds', ep) > 800, 'a fresh 900 s token');

    const c = await client(p, 'app', 'pw-one');
    await c.query("select repeat('x', 200000)");
    // A serialization failure as DSQL reports it: 40001 with (OC000) in the message.
    await assert.rejects(
      c.query(
        "do $$ begin raise exception 'change conflicts with another transaction, please retry: (OC000)' using errcode = '40001'; end $$",
      ),
      (e: { code?: string }) => e.code === '40001',
    );
    await c.query('select 1');
    const m1 = (await http(p, '/metrics')).body;
    assert.equal(sample(m1, 'dsql_proxy_client_connections_active'), 1);
    await c.end();

    const wrong = await refusal(p, { password: 'bad' });
    assert.equal(wrong.code, '28P01');
    const unknown = await refusal(p, { user: 'ghost', password: 'bad' });
    assert.equal(unknown.code, '28P01');

    const sql = postgres({ host: p.host, port: p.port, user: 'app', password: 'pw-one', max: 1 });
    const q = sql`select pg_sleep(10)`;
    setTimeout(() => q.cancel(), 500);
    await assert.rejects(q);
    await sql.end();

    await p.waitForLog((l) => l.event === 'cancel_request');
    const m2 = (await http(p, '/metrics')).body;
    assert.equal(sample(m2, 'dsql_proxy_client_connections_total', 'outcome="established"'), 2);
    assert.equal(sample(m2, 'dsql_proxy_auth_failures_total', 'reason="wrong_password"'), 1);
    assert.equal(sample(m2, 'dsql_proxy_auth_failures_total', 'reason="unknown_user"'), 1);
    assert.equal(sample(m2, 'dsql_proxy_upstream_connect_duration_seconds_count'), 2);
    assert.ok(sample(m2, 'dsql_proxy_bytes_total', 'direction="server_to_client"') > 200_000);
    assert.ok(sample(m2, 'dsql_proxy_bytes_total', 'direction="client_to_server"') > 100);
    assert.equal(sample(m2, 'dsql_proxy_serialization_conflicts_total', 'code="OC000"'), 1);
    assert.equal(sample(m2, 'dsql_proxy_cancel_requests_total', 'outcome="forwarded"'), 1);
    assert.ok(sample(m2, 'dsql_proxy_session_duration_seconds_count') >= 1);
    assert.match(m2, /dsql_proxy_process_cpu_seconds_total/);
  });

  test('a --connect-to host name is looked up once for several connections (--dns-cache-ttl)', async () => {
    const args = stackArgs(stack);
    const at = args.indexOf('--connect-to');
    args[at + 1] = `localhost:${stack.endpoint.port}`;
    const p = await proxy(args, { stackArgs: false });
    for (let i = 0; i < 3; i++) {
      const c = await client(p);
      assert.deepEqual((await c.query('select 1 as one')).rows, [{ one: 1 }]);
      await c.end();
    }
    const m = (await http(p, '/metrics')).body;
    assert.equal(sample(m, 'dsql_proxy_dns_lookups_total', 'host="localhost",result="resolved"'), 1);
    assert.equal(sample(m, 'dsql_proxy_dns_lookups_total', 'host="localhost",result="cached"'), 2);
    const resolved = p.logs.filter((l) => l.json?.event === 'dns_resolved');
    assert.equal(resolved.length, 1);
    assert.equal(resolved[0]?.json?.host, 'localhost');

    // With 0, Node looks the name up for each connection, and nothing is counted.
    const off = await proxy([...args, '--dns-cache-ttl', '0'], { stackArgs: false });
    const c = await client(off);
    await c.end();
    assert.doesNotMatch((await http(off, '/metrics')).body, /dsql_proxy_dns_lookups_total\{/);
  });

  test('upstream errors are counted by SQLSTATE', async () => {
    const p = await proxy([]);
    stack.endpoint.setRejectAll({
      sqlstate: '53400',
      message: 'Unable to accept connection, rate exceeded.',
    });
    try {
      assert.equal((await refusal(p)).code, '53400');
    } finally {
      stack.endpoint.setRejectAll(null);
    }
    const m = (await http(p, '/metrics')).body;
    assert.equal(sample(m, 'dsql_proxy_upstream_errors_total', 'sqlstate="53400"'), 1);
  });
});

describe('limits', () => {
  test('--max-connections: the next client gets 53300 with a clear message; a slot frees on close', async () => {
    const p = await proxy(['--max-connections', '2']);
    const a = await client(p);
    const b = await client(p);
    const err = await refusal(p);
    assert.equal(err.code, '53300');
    assert.match(err.message, /too many clients already: dsql-proxy allows 2 connections/);
    await a.end();
    await new Promise((r) => setTimeout(r, 100));
    const c = await client(p);
    assert.deepEqual((await c.query('select 1 as one')).rows, [{ one: 1 }]);
    await Promise.all([b.end(), c.end()]);
  });

  test('--login-timeout: a client that never finishes startup gets 08006 and a log line', async () => {
    const p = await proxy(['--login-timeout', '1s']);
    const t0 = Date.now();
    const received = await new Promise<Buffer>((resolve, reject) => {
      const s = net.connect(p.port, p.host);
      const chunks: Buffer[] = [];
      s.on('data', (d) => chunks.push(d));
      s.on('close', () => resolve(Buffer.concat(chunks)));
      s.on('error', reject);
      s.write(Buffer.from([0, 0, 0, 40])); // the start of a StartupMessage, never finished
    });
    const elapsed = Date.now() - t0;
    assert.ok(elapsed >= 900 && elapsed < 4000, `closed after ${elapsed} ms`);
    assert.equal(String.fromCharCode(received[0] ?? 0), 'E');
    assert.match(received.toString('latin1'), /C08006\0Mcanceling authentication due to timeout/);
    const line = await p.waitForLog((l) => l.event === 'refused' && l.reason === 'LOGIN_TIMEOUT');
    assert.equal(line.sqlstate, '08006');
    // The proxy still serves others.
    const c = await client(p);
    await c.end();
  });
});

describe('SIGHUP reload and the Unix socket', () => {
  test('SIGHUP: new users apply to new logins, open sessions stay; a broken file keeps the old users', async () => {
    const dir = tempDir('hup');
    const file = join(dir, 'users.txt');
    writeFileSync(file, `"app" "${createScramVerifier('pw-one')}"\n`);
    const p = await proxy(['--auth-file', file]);
    const open = await client(p, 'app', 'pw-one');

    writeFileSync(file, `"app" "${createScramVerifier('pw-two')}"\n`);
    p.child.kill('SIGHUP');
    await p.waitForLog((l) => l.event === 'reloaded');
    assert.equal((await refusal(p, { password: 'pw-one' })).code, '28P01');
    const fresh = await client(p, 'app', 'pw-two');
    await fresh.end();
    assert.deepEqual(
      (await open.query('select 1 as one')).rows,
      [{ one: 1 }],
      'the open session was not touched',
    );

    writeFileSync(file, '"app" "unterminated\n');
    p.child.kill('SIGHUP');
    const failed = await p.waitForLog((l) => l.event === 'reload_failed');
    assert.match(String(failed.reason), /users\.txt:1/);
    const still = await client(p, 'app', 'pw-two');
    await still.end();
    await open.end();
  });

  test('SIGHUP: a changed role-map applies to new sessions (and their token action); open ones keep theirs', async () => {
    const dir = tempDir('hup-roles');
    const file = join(dir, 'proxy.yaml');
    writeFileSync(file, 'role-map:\n  app: admin\n');
    const p = await proxy(['--config', file]);
    const asAdmin = await client(p, 'app');
    assert.deepEqual((await asAdmin.query('select current_user as u')).rows, [{ u: 'admin' }]);
    assert.deepEqual(
      stack.endpoint.logins
        .filter((l) => l.ok)
        .map((l) => [l.user, l.action])
        .at(-1),
      ['admin', 'DbConnectAdmin'],
    );
    await asAdmin.query(
      "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'legacy') THEN CREATE ROLE legacy LOGIN; END IF; END $$",
    );

    writeFileSync(file, 'role-map:\n  app: legacy\n  other: app\n');
    p.child.kill('SIGHUP');
    const reloaded = await p.waitForLog((l) => l.event === 'reloaded');
    const loginsBefore = stack.endpoint.logins.length;
    const asLegacy = await client(p, 'app');
    assert.deepEqual((await asLegacy.query('select current_user as u')).rows, [{ u: 'legacy' }]);
    const fresh = stack.endpoint.logins.slice(loginsBefore);
    assert.deepEqual(
      fresh.map((l) => [l.user, l.action, l.ok]),
      [['legacy', 'DbConnect', true]],
      'the new session logged in as the new role with a DbConnect token',
    );
    assert.deepEqual(
      (await asAdmin.query('select current_user as u')).rows,
      [{ u: 'admin' }],
      'the open session keeps its role',
    );
    // The log line names what changed (user and role names only).
    assert.deepEqual(reloaded.role_map_changes, [
      {
        cluster: 'default',
        added: [{ user: 'other', role: 'app' }],
        removed: [],
        changed: [{ user: 'app', from: 'admin', to: 'legacy' }],
      },
    ]);

    // A broken file keeps the reloaded map.
    writeFileSync(file, 'role-map:\n  app: [legacy\n');
    p.child.kill('SIGHUP');
    await p.waitForLog((l) => l.event === 'reload_failed');
    const still = await client(p, 'app');
    assert.deepEqual((await still.query('select current_user as u')).rows, [{ u: 'legacy' }]);
    await Promise.all([still.end(), asLegacy.end(), asAdmin.end()]);
    rmSync(dir, { recursive: true, force: true });
  });

  test('--unix-socket: clients connect through DIR/.s.PGSQL.<port>', async () => {
    const dir = tempDir('sock');
    const p = await proxy(['--unix-socket', dir]);
    const listening = p.logs.find((l) => l.json?.event === 'listening')?.json;
    assert.equal(listening?.unix_socket, join(dir, `.s.PGSQL.${p.port}`));
    const c = new pg.Client({ host: dir, port: p.port, user: 'app', password: '' });
    await c.connect();
    assert.deepEqual((await c.query('select current_user as u')).rows, [{ u: 'app' }]);
    await c.end();
  });
});
