/**
 * Faults between the proxy and DSQL, and in the AWS credential provider (issue 7, "Faults"). For each
 * one: the affected client gets an ErrorResponse with a SQLSTATE and a clear message within a bounded
 * time, a session opened before the fault keeps working, the proxy stays up (no exit, no
 * `session_crashed`), and a client after the fault is gone succeeds.
 *
 * The network faults come from a TCP relay between the proxy and the endpoint
 * (test/support/fault-relay.ts). Wrong certificate host, untrusted CA, an unreachable port, a server
 * that refuses TLS and missing credentials are in upstream-failures.test.ts.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type net from 'node:net';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { createCa, issueCert } from '../../src/core/certs.js';
import { type DsqlEndpoint, startDsqlEndpoint } from '../../src/local-endpoint/endpoint.js';
import { type FaultRelay, startFaultRelay } from '../support/fault-relay.js';
import { type ProxyProcess, stackArgs, startProxyProcess } from '../support/proxy-process.js';
import { assertNoSecrets } from '../support/secrets.js';
import { generateCredentials, startTestStack, type TestStack } from '../support/stack.js';

let stack: TestStack;
/** The endpoint the relay normally forwards to, and one that accepts other credentials only. */
let good: DsqlEndpoint;
let otherCreds: DsqlEndpoint;
let relay: FaultRelay;
let p: ProxyProcess;
/** Opened before any fault; every test runs a query on it afterwards. */
let survivor: pg.Client;
const procs: ProxyProcess[] = [];
const endpoints: DsqlEndpoint[] = [];
const creds = generateCredentials(`IQoJb3JpZ2luX2Vj${'x'.repeat(40)}`);
/** Time from the fault's trigger to the client's error, per fault, for the report. */
const timings: Array<[string, number, string]> = [];

before(async () => {
  stack = await startTestStack({ credentials: creds });
  const ca = await createCa('faults-ca');
  const cert = await issueCert(ca, { hostnames: [stack.hostname] });
  const base = {
    hostname: stack.hostname,
    region: stack.region,
    postgres: stack.postgres,
    cert,
    caPem: ca.certPem,
  };
  good = await startDsqlEndpoint({ ...base, credentials: creds });
  otherCreds = await startDsqlEndpoint({ ...base, credentials: generateCredentials() });
  endpoints.push(good, otherCreds);
  relay = await startFaultRelay(good);
  p = await proxy([...relayArgs(), '--connect-timeout', '1s'], {
    env: {
      AWS_ACCESS_KEY_ID: creds.accessKeyId,
      AWS_SECRET_ACCESS_KEY: creds.secretAccessKey,
      AWS_SESSION_TOKEN: creds.sessionToken,
    },
  });
  survivor = await client(p);
});

after(async () => {
  await survivor?.end().catch(() => {});
  await Promise.all(procs.map((x) => x.stop()));
  await relay?.close();
  await Promise.all(endpoints.map((e) => e.close()));
  await stack?.stop();
  for (const [fault, ms, code] of timings) console.log(`# time to error: ${fault}: ${ms} ms (${code})`);
  assertNoSecrets(
    procs.flatMap((x) => x.logs.map((l) => l.raw)),
    { credentials: creds, tokens: endpoints.flatMap((e) => e.logins.map((l) => l.token)) },
  );
});

function relayArgs(): string[] {
  return [...stackArgs({ ...stack, endpoint: good }), '--connect-to', `127.0.0.1:${relay.port}`];
}

async function proxy(args: string[], opts: Parameters<typeof startProxyProcess>[1] = {}) {
  const x = await startProxyProcess(stack, {
    ...opts,
    stackArgs: false,
    args: [...args, '--log-level', 'trace'],
  });
  procs.push(x);
  return x;
}

async function client(x: ProxyProcess): Promise<pg.Client> {
  const c = new pg.Client({ host: x.host, port: x.port, user: 'app', password: '' });
  c.on('error', () => {});
  await c.connect();
  return c;
}

/** A connection attempt that must fail: its error and how long it took. */
async function connectError(x: ProxyProcess): Promise<{ err: pg.DatabaseError; ms: number }> {
  const c = new pg.Client({ host: x.host, port: x.port, user: 'app', password: '' });
  c.on('error', () => {});
  const t0 = Date.now();
  const err = await c.connect().then(
    async () => {
      await c.end();
      return undefined;
    },
    (e: unknown) => e,
  );
  assert.ok(err instanceof Error, 'the connection should have failed');
  return { err: err as pg.DatabaseError, ms: Date.now() - t0 };
}

async function expectError(
  fault: string,
  x: ProxyProcess,
  want: { code: string; message: RegExp; maxMs: number },
): Promise<pg.DatabaseError> {
  const { err, ms } = await connectError(x);
  timings.push([fault, ms, String(err.code)]);
  assert.equal(err.code, want.code, `${fault}: ${err.message}`);
  assert.match(err.message, want.message);
  assert.ok(ms < want.maxMs, `${fault}: answered after ${ms} ms (limit ${want.maxMs})`);
  return err;
}

/** The session from before the fault still works, the process is up, and nothing crashed. */
async function stillServing(x: ProxyProcess, before: pg.Client): Promise<void> {
  const r = await before.query('select 2 as two');
  assert.deepEqual(r.rows, [{ two: 2 }]);
  assert.equal(x.child.exitCode, null, 'the proxy is still running');
  assert.equal(x.child.signalCode, null);
  const crashed = x.logs.filter((l) => l.json?.event === 'session_crashed' || l.json?.level === 60);
  assert.deepEqual(
    crashed.map((l) => l.raw),
    [],
  );
}

/** A client after the fault is gone connects and queries (retrying briefly for token recovery). */
async function recovers(x: ProxyProcess, withinMs = 100): Promise<void> {
  const deadline = Date.now() + withinMs;
  for (;;) {
    try {
      const c = await client(x);
      const r = await c.query('select 1 as one');
      await c.end();
      assert.deepEqual(r.rows, [{ one: 1 }]);
      return;
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}

describe('network faults between the proxy and DSQL', () => {
  test('refused (RST on connect): 08001 at once', async () => {
    relay.setMode({ kind: 'refuse' });
    try {
      await expectError('refuse', p, {
        code: '08001',
        message: /could not connect to .*(ECONNRESET|closed|reset)/i,
        maxMs: 3000,
      });
      assert.ok(relay.counters.refused > 0);
    } finally {
      relay.setMode({ kind: 'pass' });
    }
    await stillServing(p, survivor);
    await recovers(p);
  });

  test('reset during the TLS handshake: 08001 naming TLS', async () => {
    // 100 bytes from the server: inside its first TLS flight (ServerHello, certificate).
    relay.setMode({ kind: 'reset-after', bytes: 100 });
    try {
      await expectError('reset during TLS', p, {
        code: '08001',
        message: /(TLS|ECONNRESET|socket)/i,
        maxMs: 3000,
      });
    } finally {
      relay.setMode({ kind: 'pass' });
    }
    await stillServing(p, survivor);
    await recovers(p);
  });

  test('reset mid-query: the client gets an error, not a hang; others carry on', async () => {
    const victim = await client(p);
    const pending = victim.query('select pg_sleep(20)').then(
      () => undefined,
      (e: unknown) => e as pg.DatabaseError,
    );
    await new Promise((r) => setTimeout(r, 300));
    const t0 = Date.now();
    assert.ok(relay.resetLatest(), 'the victim has a live relay connection');
    const err = await pending;
    const ms = Date.now() - t0;
    assert.ok(err instanceof Error, 'the query should have failed');
    timings.push(['reset mid-query', ms, String(err.code)]);
    assert.equal(err.code, '08006', err.message);
    assert.match(err.message, /connection to DSQL|lost|closed|reset/i);
    assert.ok(ms < 2000, `answered after ${ms} ms`);
    await victim.end().catch(() => {});
    await stillServing(p, survivor);
    await recovers(p);
  });

  test('stall (accepted, never answers): 08001 within --connect-timeout 1s', async () => {
    relay.setMode({ kind: 'stall' });
    try {
      await expectError('stall', p, { code: '08001', message: /timed out after 1000 ms/, maxMs: 3000 });
    } finally {
      relay.setMode({ kind: 'pass' });
    }
    await stillServing(p, survivor);
    await recovers(p);
  });

  test('trickle (one byte every 5 ms): 08001 within --connect-timeout 1s', async () => {
    relay.setMode({ kind: 'trickle', intervalMs: 5 });
    try {
      const err = await expectError('trickle', p, {
        code: '08001',
        message: /timed out after 1000 ms|did not finish within 1000 ms/,
        maxMs: 3000,
      });
      assert.ok(err.message.length > 0);
    } finally {
      relay.setMode({ kind: 'pass' });
    }
    await stillServing(p, survivor);
    await recovers(p);
  });

  test('token rejected (endpoint with other credentials): 28000 with the IAM hint', async () => {
    relay.setTarget(otherCreds);
    try {
      const err = await expectError('token rejected', p, {
        code: '28000',
        message: /access denied/,
        maxMs: 3000,
      });
      assert.match(err.hint ?? '', /dsql:DbConnect/);
    } finally {
      relay.setTarget(good);
    }
    await stillServing(p, survivor);
    await recovers(p);
  });

  for (const sqlstate of ['53300', '53400']) {
    test(`quota refusal ${sqlstate}: passed through after retrying within --connect-timeout`, async () => {
      good.setRejectAll({ sqlstate, message: `Unable to accept connection, quota ${sqlstate}.` });
      try {
        await expectError(sqlstate, p, {
          code: sqlstate,
          message: new RegExp(`quota ${sqlstate}`),
          maxMs: 3000,
        });
      } finally {
        good.setRejectAll(null);
      }
      await stillServing(p, survivor);
      await recovers(p);
    });
  }
});

type CredsMode = 'ok' | '500' | 'garbage' | 'hang';

/** A container-credentials server (AWS_CONTAINER_CREDENTIALS_FULL_URI) with switchable faults. */
async function startCredsServer(lifetimeMs: number) {
  let mode: CredsMode = 'ok';
  let requests = 0;
  const hung = new Set<http.ServerResponse>();
  const sockets = new Set<net.Socket>();
  const server = http.createServer((_req, res) => {
    requests++;
    if (mode === 'hang') {
      hung.add(res);
      return;
    }
    if (mode === '500') {
      res.writeHead(500, { 'content-type': 'application/json' });
      res.end('{"code":"InternalError","message":"credential service unavailable"}');
      return;
    }
    if (mode === 'garbage') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('<html>this is not credentials</html>');
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(
      JSON.stringify({
        AccessKeyId: creds.accessKeyId,
        SecretAccessKey: creds.secretAccessKey,
        Token: creds.sessionToken,
        Expiration: new Date(Date.now() + lifetimeMs).toISOString(),
      }),
    );
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/creds`,
    get requests() {
      return requests;
    },
    setMode(m: CredsMode) {
      mode = m;
      if (m !== 'hang') for (const r of hung) r.destroy();
      if (m !== 'hang') hung.clear();
    },
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

describe('credential provider faults', () => {
  const LIFETIME_MS = 6000;

  for (const fault of ['500', 'garbage', 'hang'] as const) {
    test(`container credentials ${fault}: 08001 once the token runs out, sessions carry on, recovers`, async () => {
      const server = await startCredsServer(LIFETIME_MS);
      try {
        const x = await proxy(relayArgs(), {
          credentials: false,
          env: { AWS_CONTAINER_CREDENTIALS_FULL_URI: server.url },
        });
        const before = await client(x);
        server.setMode(fault);
        // The SDK keeps serving the credentials it has until they expire (its background refresh
        // swallows errors), and the token is capped by their expiration.
        await new Promise((r) => setTimeout(r, LIFETIME_MS + 300));
        const err = await expectError(`credentials ${fault}`, x, {
          code: '08001',
          message: /no valid IAM authentication token is available/,
          maxMs: 13_000,
        });
        assert.ok(err.message.length < 600);
        // Before the fix the SDK's container request never timed out and this client waited forever.
        if (fault === 'hang') assert.match(err.message, /did not answer within 10000 ms/);
        await stillServing(x, before);
        await before.end();
        server.setMode('ok');
        await recovers(x, 5000);
      } finally {
        await server.close();
      }
    });
  }

  test('environment credentials that expire: 08001 saying so; sessions carry on', async () => {
    const expiresAt = Date.now() + 8000;
    const x = await proxy(relayArgs(), {
      credentials: false,
      env: {
        AWS_ACCESS_KEY_ID: creds.accessKeyId,
        AWS_SECRET_ACCESS_KEY: creds.secretAccessKey,
        AWS_SESSION_TOKEN: creds.sessionToken,
        AWS_CREDENTIAL_EXPIRATION: new Date(expiresAt).toISOString(),
      },
    });
    const before = await client(x);
    await new Promise((r) => setTimeout(r, expiresAt - Date.now() + 200));
    await expectError('credentials expired (env)', x, {
      code: '08001',
      message: /no valid IAM authentication token is available: .*expired/,
      maxMs: 3000,
    });
    await stillServing(x, before);
    await before.end();
  });

  test('environment credentials already expired at start: 08001 saying so', async () => {
    const x = await proxy(relayArgs(), {
      credentials: false,
      env: {
        AWS_ACCESS_KEY_ID: creds.accessKeyId,
        AWS_SECRET_ACCESS_KEY: creds.secretAccessKey,
        AWS_SESSION_TOKEN: creds.sessionToken,
        AWS_CREDENTIAL_EXPIRATION: new Date(Date.now() - 60_000).toISOString(),
      },
    });
    await expectError('credentials expired at start (env)', x, {
      code: '08001',
      message: /no valid IAM authentication token is available: .*expired/,
      maxMs: 3000,
    });
    await stillServing(x, survivor);
  });
});
