/**
 * Self-tests for the fake DSQL endpoint: it must accept exactly what DSQL accepts, and refuse
 * the rest with DSQL's messages (docs/dsql.md), or the proxy's tests prove nothing.
 */
import assert from 'node:assert/strict';
import { connect as netConnect, type Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { connect as tlsConnect } from 'node:tls';
import { DsqlSigner } from '@aws-sdk/dsql-signer';
import pg from 'pg';
import { createCa, issueCert } from '../../src/core/certs.js';
import { FrameStream } from '../../src/io/frame-stream.js';
import { type LocalPostgres, startPostgres } from '../../src/local-endpoint/embedded-postgres.js';
import {
  type DsqlEndpoint,
  MSG_ACCESS_DENIED,
  MSG_NO_SNI,
  MSG_RATE_EXCEEDED,
  MSG_SNI_MISMATCH,
  MSG_SSL_MANDATORY,
  MSG_TOO_MANY_CONNECTIONS,
  startDsqlEndpoint,
} from '../../src/local-endpoint/endpoint.js';
import type { SigningCredentials } from '../../src/local-endpoint/sigv4-verify.js';
import { int32 } from '../../src/protocol/message-writer.js';
import { frontendCancelRequest, frontendSSLRequest } from '../../src/protocol/to-server.js';
import { clusterHostname, generateCredentials, startTestStack } from '../support/stack.js';

const region = 'us-east-1';
const hostname = clusterHostname(region);
const credentials = generateCredentials();
let clockOffsetMs = 0;
let postgres: LocalPostgres;
let endpoint: DsqlEndpoint;

function token(opts: {
  admin: boolean;
  creds?: SigningCredentials;
  host?: string;
  region?: string;
  expiresIn?: number;
}): Promise<string> {
  const signer = new DsqlSigner({
    hostname: opts.host ?? hostname,
    region: opts.region ?? region,
    credentials: opts.creds ?? credentials,
    expiresIn: opts.expiresIn ?? 900,
  });
  return opts.admin ? signer.getDbConnectAdminAuthToken() : signer.getDbConnectAuthToken();
}

function client(cfg: pg.ClientConfig & { user: string }, ep: DsqlEndpoint = endpoint): pg.Client {
  const c = new pg.Client({
    host: '127.0.0.1',
    port: ep.port,
    database: 'postgres',
    ssl: { ca: ep.caPem, servername: ep.hostname },
    ...cfg,
  });
  c.on('error', () => {});
  return c;
}

/** Connects, runs `select current_user`, disconnects; returns the user. */
async function whoami(cfg: pg.ClientConfig & { user: string }, ep?: DsqlEndpoint): Promise<string> {
  const c = client(cfg, ep);
  await c.connect();
  try {
    const r = await c.query<{ current_user: string }>('select current_user');
    return r.rows[0]?.current_user ?? '';
  } finally {
    await c.end();
  }
}

async function rejects(
  cfg: pg.ClientConfig & { user: string },
  expected: { code?: string; message: string | RegExp },
  ep?: DsqlEndpoint,
) {
  const c = client(cfg, ep);
  const err = await c.connect().then(
    () => {
      void c.end();
      throw new Error('connection unexpectedly succeeded');
    },
    (e: unknown) => e as pg.DatabaseError,
  );
  if (typeof expected.message === 'string') assert.equal(err.message, expected.message);
  else assert.match(err.message, expected.message);
  if (expected.code) assert.equal(err.code, expected.code);
  return err;
}

function waitFor(cond: () => boolean, ms = 2000): Promise<void> {
  const until = Date.now() + ms;
  return new Promise((resolve, reject) => {
    const tick = (): void => {
      if (cond()) resolve();
      else if (Date.now() > until) reject(new Error('timed out waiting'));
      else setTimeout(tick, 10);
    };
    tick();
  });
}

before(async () => {
  postgres = await startPostgres();
  endpoint = await startDsqlEndpoint({
    hostname,
    region,
    credentials,
    postgres,
    now: () => Date.now() + clockOffsetMs,
  });
});

after(async () => {
  await endpoint?.close();
  await postgres?.stop();
});

describe('successful logins', () => {
  test('admin with a DbConnectAdmin token', async () => {
    const tok = await token({ admin: true });
    assert.equal(await whoami({ user: 'admin', password: tok }), 'admin');
    const login = endpoint.logins.at(-1);
    assert.deepEqual(
      { user: login?.user, action: login?.action, ok: login?.ok, token: login?.token },
      { user: 'admin', action: 'DbConnectAdmin', ok: true, token: tok },
    );
  });

  test('app with a DbConnect token, can create objects', async () => {
    const c = client({ user: 'app', password: await token({ admin: false }) });
    await c.connect();
    await c.query('create table if not exists app_t (id int)');
    await c.query('insert into app_t values (1)');
    assert.equal((await c.query('select count(*)::int as n from app_t')).rows[0].n, 1);
    await c.end();
  });

  test('direct TLS with ALPN postgresql (PG17 sslnegotiation=direct)', async () => {
    const tok = await token({ admin: true });
    assert.equal(await whoami({ user: 'admin', password: tok, sslnegotiation: 'direct' }), 'admin');
  });

  test('startup parameters reach PostgreSQL', async () => {
    const c = client({
      user: 'app',
      password: await token({ admin: false }),
      application_name: 'fixture-test',
    });
    await c.connect();
    const r = await c.query('select current_setting($1) as v', ['application_name']);
    assert.equal(r.rows[0].v, 'fixture-test');
    await c.end();
  });

  test('session sockets are released after disconnect', async () => {
    await waitFor(() => endpoint.sockets === 0);
  });
});

describe('refusals with DSQL messages', () => {
  test('admin with a DbConnect token: access denied + Session Id', async () => {
    const err = await rejects(
      { user: 'admin', password: await token({ admin: false }) },
      { code: '28000', message: MSG_ACCESS_DENIED },
    );
    assert.match(err.detail ?? '', /^Session Id: \S+$/);
    assert.match(endpoint.logins.at(-1)?.reason ?? '', /requires DbConnectAdmin/);
  });

  test('non-admin role with an admin token', async () => {
    await rejects({ user: 'app', password: await token({ admin: true }) }, { message: MSG_ACCESS_DENIED });
  });

  test('wrong secret key', async () => {
    const creds = { ...credentials, secretAccessKey: 'not-the-secret' };
    await rejects(
      { user: 'admin', password: await token({ admin: true, creds }) },
      { message: MSG_ACCESS_DENIED },
    );
    assert.equal(endpoint.logins.at(-1)?.reason, 'signature mismatch');
  });

  test('token for another host or region', async () => {
    const other = await token({ admin: true, host: clusterHostname(region) });
    await rejects({ user: 'admin', password: other }, { message: MSG_ACCESS_DENIED });
    assert.match(endpoint.logins.at(-1)?.reason ?? '', /host mismatch/);
    await rejects(
      { user: 'admin', password: await token({ admin: true, region: 'eu-west-1' }) },
      { message: MSG_ACCESS_DENIED },
    );
    assert.match(endpoint.logins.at(-1)?.reason ?? '', /region mismatch/);
  });

  test('expired token (endpoint clock moved past X-Amz-Date + X-Amz-Expires)', async () => {
    const tok = await token({ admin: true, expiresIn: 60 });
    clockOffsetMs = 61_000;
    try {
      await rejects({ user: 'admin', password: tok }, { message: MSG_ACCESS_DENIED });
      assert.equal(endpoint.logins.at(-1)?.reason, 'token expired');
    } finally {
      clockOffsetMs = 0;
    }
  });

  test('token signed in the future', async () => {
    const tok = await token({ admin: true });
    clockOffsetMs = -10 * 60_000;
    try {
      await rejects({ user: 'admin', password: tok }, { message: MSG_ACCESS_DENIED });
    } finally {
      clockOffsetMs = 0;
    }
  });

  test('no SNI', async () => {
    // Connecting to an IP without servername sends no SNI; skip the hostname check so TLS completes.
    await rejects(
      {
        user: 'admin',
        password: await token({ admin: true }),
        ssl: { ca: endpoint.caPem, checkServerIdentity: () => undefined },
      },
      { message: MSG_NO_SNI },
    );
  });

  test('SNI of another host', async () => {
    await rejects(
      {
        user: 'admin',
        password: await token({ admin: true }),
        ssl: { ca: endpoint.caPem, servername: 'other.example', checkServerIdentity: () => undefined },
      },
      { message: MSG_SNI_MISMATCH },
    );
  });

  test('plaintext connection: SSL is mandatory', async () => {
    await rejects(
      { user: 'admin', password: await token({ admin: true }), ssl: false },
      { code: '28000', message: MSG_SSL_MANDATORY },
    );
  });

  test('database other than postgres: 3D000', async () => {
    await rejects(
      { user: 'admin', password: await token({ admin: true }), database: 'other' },
      { code: '3D000', message: 'database "other" does not exist' },
    );
  });

  test('bytes queued behind SSLRequest are refused', async () => {
    const sock = netConnect(endpoint.port, '127.0.0.1');
    const chunks: Buffer[] = [];
    sock.on('data', (d: Buffer) => chunks.push(d));
    sock.on('error', () => {});
    sock.write(Buffer.concat([frontendSSLRequest(), Buffer.from('junk-after-sslrequest')]));
    await new Promise((r) => sock.on('close', r));
    assert.equal(Buffer.concat(chunks).length, 0, 'no S answer');
  });

  test('direct TLS without ALPN postgresql is closed', async () => {
    const tls = tlsConnect({
      host: '127.0.0.1',
      port: endpoint.port,
      servername: hostname,
      ca: endpoint.caPem,
    });
    const chunks: Buffer[] = [];
    tls.on('data', (d: Buffer) => chunks.push(d));
    tls.on('error', () => {});
    await new Promise((r) => tls.once('close', r));
    assert.equal(Buffer.concat(chunks).length, 0);
  });

  test('server certificate for the wrong host fails verification', async () => {
    const ca = await createCa('wrong-host CA');
    const cert = await issueCert(ca, { hostnames: ['wrong.example.com'] });
    const ep = await startDsqlEndpoint({ hostname, region, credentials, postgres, cert, caPem: ca.certPem });
    try {
      const c = client({ user: 'admin', password: await token({ admin: true }) }, ep);
      await assert.rejects(c.connect(), { code: 'ERR_TLS_CERT_ALTNAME_INVALID' });
    } finally {
      await ep.close();
    }
  });

  test('fault toggle refuses new sessions', async () => {
    endpoint.setRejectAll({
      sqlstate: '53300',
      message: 'Unable to accept connection, too many open connections.',
    });
    try {
      await rejects(
        { user: 'admin', password: await token({ admin: true }) },
        { code: '53300', message: /too many open connections/ },
      );
    } finally {
      endpoint.setRejectAll(null);
    }
  });
});

describe('credentials variants', () => {
  test('session token must match; temporary credentials expire', async () => {
    const temp = {
      ...generateCredentials('FwoGZXIvYXdzE+/sessiontoken=='),
      expiration: new Date(Date.now() + 60_000),
    };
    const ep = await startDsqlEndpoint({ hostname, region, credentials: [credentials, temp], postgres });
    try {
      const good = await token({ admin: true, creds: temp });
      assert.equal(await whoami({ user: 'admin', password: good }, ep), 'admin');
      const forged = await token({ admin: true, creds: { ...temp, sessionToken: 'other' } });
      await rejects({ user: 'admin', password: forged }, { message: MSG_ACCESS_DENIED }, ep);
      assert.equal(ep.logins.at(-1)?.reason, 'session token mismatch');
      // Static credentials still work alongside (rotation).
      assert.equal(await whoami({ user: 'admin', password: await token({ admin: true }) }, ep), 'admin');
    } finally {
      await ep.close();
    }
    const expired = await startDsqlEndpoint({
      hostname,
      region,
      credentials: { ...credentials, expiration: new Date(Date.now() - 1000) },
      postgres,
    });
    try {
      await rejects(
        { user: 'admin', password: await token({ admin: true }) },
        { message: MSG_ACCESS_DENIED },
        expired,
      );
    } finally {
      await expired.close();
    }
  });

  test('strictStartupParams rejects parameters DSQL does not support', async () => {
    const ep = await startDsqlEndpoint({
      hostname,
      region,
      credentials,
      postgres,
      strictStartupParams: true,
    });
    try {
      await rejects(
        { user: 'admin', password: await token({ admin: true }), statement_timeout: 1000 },
        { code: '0A000', message: 'setting configuration parameter "statement_timeout" not supported' },
        ep,
      );
    } finally {
      await ep.close();
    }
  });
});

/**
 * Sends a CancelRequest after SSLRequest + TLS, with SNI as a DSQL-aware client must (`sni: null`:
 * none, as when connecting to an IP address without a server name).
 */
async function cancelOverTls(pid: number, key: number, sni: string | null = hostname): Promise<void> {
  const raw = netConnect(endpoint.port, '127.0.0.1');
  raw.on('error', () => {});
  await new Promise((r) => raw.once('connect', r));
  const frames = new FrameStream(raw, () => new Error('endpoint closed the connection'));
  raw.write(frontendSSLRequest());
  assert.equal(await frames.peekByte(), 0x53, 'the endpoint accepts TLS with S');
  frames.detach();
  const tls = tlsConnect({
    socket: raw as Socket,
    ca: endpoint.caPem,
    ...(sni === null
      ? { host: '127.0.0.1', checkServerIdentity: () => undefined }
      : { servername: sni, checkServerIdentity: () => undefined }),
  });
  tls.on('error', () => {});
  await new Promise((r) => tls.once('secureConnect', r));
  tls.end(frontendCancelRequest(pid, int32(key)));
  await new Promise((r) => tls.once('close', r));
}

describe('cancel', () => {
  test('CancelRequest over TLS is forwarded to PostgreSQL', async () => {
    const c = client({ user: 'admin', password: await token({ admin: true }) });
    await c.connect();
    const { processID, secretKey } = c as unknown as { processID: number; secretKey: number };
    const started = Date.now();
    const running = c.query('select pg_sleep(10)').then(
      () => null,
      (e: pg.DatabaseError) => e,
    );
    await new Promise((r) => setTimeout(r, 200));
    await cancelOverTls(processID, secretKey);
    const err = await running;
    assert.equal(err?.code, '57014');
    assert.ok(Date.now() - started < 5000);
    assert.deepEqual(endpoint.cancels.at(-1), { tls: true, forwarded: true });
    await c.end();
  });

  test('CancelRequest over TLS without SNI, or with another name, is not forwarded', async () => {
    const c = client({ user: 'admin', password: await token({ admin: true }) });
    await c.connect();
    const { processID, secretKey } = c as unknown as { processID: number; secretKey: number };
    let settled = false;
    const running = c.query('select pg_sleep(3)').then(
      () => {
        settled = true;
        return null;
      },
      (e: pg.DatabaseError) => {
        settled = true;
        return e;
      },
    );
    await new Promise((r) => setTimeout(r, 200));
    for (const sni of [null, 'other.example']) {
      await cancelOverTls(processID, secretKey, sni);
      assert.deepEqual(endpoint.cancels.at(-1), { tls: true, forwarded: false });
    }
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(settled, false, 'the query was not cancelled');
    await cancelOverTls(processID, secretKey);
    assert.equal((await running)?.code, '57014');
    await c.end();
  });

  test('plaintext CancelRequest is dropped', async () => {
    const sock = netConnect(endpoint.port, '127.0.0.1');
    sock.on('error', () => {});
    sock.write(frontendCancelRequest(1, int32(2)));
    await new Promise((r) => sock.on('close', r));
    assert.deepEqual(endpoint.cancels.at(-1), { tls: false, forwarded: false });
  });
});

describe('connection quotas (rules dsql)', () => {
  test("past maxConnections open connections: 53300 with DSQL's text", async () => {
    const ep = await startDsqlEndpoint({ hostname, region, credentials, postgres, maxConnections: 2 });
    const open: pg.Client[] = [];
    try {
      for (let i = 0; i < 2; i++) {
        const c = client({ user: 'admin', password: await token({ admin: true }) }, ep);
        await c.connect();
        open.push(c);
      }
      await rejects(
        { user: 'admin', password: await token({ admin: true }) },
        { code: '53300', message: MSG_TOO_MANY_CONNECTIONS },
        ep,
      );
      await open.pop()?.end();
      await waitFor(() => ep.sockets < 2);
      const again = client({ user: 'admin', password: await token({ admin: true }) }, ep);
      await again.connect();
      open.push(again);
    } finally {
      await Promise.all(open.map((c) => c.end()));
      await ep.close();
    }
  });

  test("past the connection rate (token bucket): 53400 with DSQL's text", async () => {
    const ep = await startDsqlEndpoint({
      hostname,
      region,
      credentials,
      postgres,
      connectionRate: { perSecond: 0.5, burst: 2 },
    });
    try {
      const tok = await token({ admin: true });
      assert.equal(await whoami({ user: 'admin', password: tok }, ep), 'admin');
      assert.equal(await whoami({ user: 'admin', password: tok }, ep), 'admin');
      await rejects({ user: 'admin', password: tok }, { code: '53400', message: MSG_RATE_EXCEEDED }, ep);
    } finally {
      await ep.close();
    }
  });

  test("rules 'postgres' has no quotas", async () => {
    const ep = await startDsqlEndpoint({
      hostname,
      region,
      credentials,
      postgres,
      rules: 'postgres',
      connectionRate: { perSecond: 0.5, burst: 1 },
    });
    try {
      const tok = await token({ admin: true });
      for (let i = 0; i < 3; i++) assert.equal(await whoami({ user: 'admin', password: tok }, ep), 'admin');
    } finally {
      await ep.close();
    }
  });
});

describe('records', () => {
  test('logins and cancels keep only the last maxRecords entries, oldest first', async () => {
    const ep = await startDsqlEndpoint({ hostname, region, credentials, postgres, maxRecords: 2 });
    try {
      assert.equal(await whoami({ user: 'admin', password: await token({ admin: true }) }, ep), 'admin');
      assert.equal(await whoami({ user: 'app', password: await token({ admin: false }) }, ep), 'app');
      await rejects(
        { user: 'admin', password: await token({ admin: false }) },
        { code: '28000', message: MSG_ACCESS_DENIED },
        ep,
      );
      assert.deepEqual(
        ep.logins.map((l) => ({ user: l.user, ok: l.ok })),
        [
          { user: 'app', ok: true },
          { user: 'admin', ok: false },
        ],
      );
      // Plaintext cancels are recorded and dropped.
      for (let i = 0; i < 3; i++) {
        const sock = netConnect(ep.port, '127.0.0.1');
        sock.on('error', () => {});
        sock.write(frontendCancelRequest(1, int32(i)));
        await new Promise((r) => sock.on('close', r));
      }
      assert.deepEqual(ep.cancels, [
        { tls: false, forwarded: false },
        { tls: false, forwarded: false },
      ]);
    } finally {
      await ep.close();
    }
  });
});

describe('startTestStack', () => {
  test('starts an endpoint over a shared postgres; stop() is idempotent', async () => {
    const stack = await startTestStack({ postgres });
    try {
      assert.match(stack.credentials.accessKeyId, /^AKIA[A-Z2-7]{16}$/);
      const signer = new DsqlSigner({
        hostname: stack.hostname,
        region: stack.region,
        credentials: stack.credentials,
      });
      const password = await signer.getDbConnectAuthToken();
      assert.equal(await whoami({ user: 'app', password }, stack.endpoint), 'app');
      assert.equal(stack.endpoint.connections, 1);
    } finally {
      await stack.stop();
      await stack.stop();
    }
    assert.deepEqual(await postgres.query('select 1 as one'), [{ one: 1 }]);
  });
});
