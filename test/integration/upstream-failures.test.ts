/**
 * When the upstream side fails, the client gets an ErrorResponse with the right SQLSTATE and a
 * message a person can act on, within the connect timeout, and the proxy keeps serving.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { createCa, issueCert } from '../../src/core/certs.js';
import { freePort } from '../../src/local-endpoint/embedded-postgres.js';
import { startDsqlEndpoint } from '../../src/local-endpoint/endpoint.js';
import { type ProxyProcess, stackArgs, startProxyProcess } from '../support/proxy-process.js';
import { generateCredentials, startTestStack, type TestStack } from '../support/stack.js';
import { closeAll, listen, portOf } from '../unit/socket-pair.js';

let stack: TestStack;
const procs: ProxyProcess[] = [];

before(async () => {
  stack = await startTestStack();
});

after(async () => {
  await Promise.all(procs.map((p) => p.stop()));
  await stack?.stop();
  // The fake servers below (socket-pair's listen()).
  await closeAll();
});

async function proxy(
  args: string[],
  opts: Parameters<typeof startProxyProcess>[1] = {},
): Promise<ProxyProcess> {
  const p = await startProxyProcess(stack, {
    ...opts,
    stackArgs: false,
    args: [...args, '--log-level', 'trace', ...(opts.args ?? [])],
  });
  procs.push(p);
  return p;
}

/** A proxy for the test stack whose upstream connections go to 127.0.0.1:`port` instead. */
function proxyTo(port: number, ...extra: string[]): Promise<ProxyProcess> {
  return proxy([...stackArgs(stack), '--connect-to', `127.0.0.1:${port}`, ...extra]);
}

/** Connects as `user` with trust auth and returns the error the connection failed with. */
async function connectError(p: ProxyProcess, user = 'app'): Promise<{ err: pg.DatabaseError; ms: number }> {
  const client = new pg.Client({ host: p.host, port: p.port, user, password: '' });
  client.on('error', () => {});
  const t0 = Date.now();
  const err = await client.connect().then(
    async () => {
      await client.end();
      return undefined;
    },
    (e: unknown) => e,
  );
  assert.ok(err instanceof Error, 'the connection should have failed');
  return { err: err as pg.DatabaseError, ms: Date.now() - t0 };
}

async function works(p: ProxyProcess, user = 'app'): Promise<void> {
  const client = new pg.Client({ host: p.host, port: p.port, user, password: '' });
  await client.connect();
  const r = await client.query('select 1 as one');
  await client.end();
  assert.deepEqual(r.rows, [{ one: 1 }]);
}

describe('upstream failures reach the client as clear errors', () => {
  test('unreachable endpoint: 08001 naming the address', async () => {
    const closedPort = await freePort();
    const p = await proxyTo(closedPort);
    const { err } = await connectError(p);
    assert.equal(err.code, '08001');
    assert.match(
      err.message,
      new RegExp(
        `could not connect to ${stack.hostname.replaceAll('.', '\\.')} via 127\\.0\\.0\\.1:${closedPort}: ECONNREFUSED`,
      ),
    );
    const line = await p.waitForLog((l) => l.event === 'refused' && l.reason === 'UPSTREAM_UNREACHABLE');
    assert.equal(line.sqlstate, '08001');
  });

  test('an endpoint that never answers: 08001 within the connect timeout', async () => {
    const silent = await listen((s) => s.on('error', () => {}));
    const p = await proxyTo(portOf(silent), '--connect-timeout', '1s');
    const { err, ms } = await connectError(p);
    assert.equal(err.code, '08001');
    assert.match(err.message, /timed out after 1000 ms/);
    assert.ok(ms >= 900 && ms < 5000, `answered after ${ms} ms`);
  });

  test('an endpoint that refuses TLS (SSLRequest answered N): 08001 saying so', async () => {
    const plain = await listen((s) => {
      s.on('error', () => {});
      s.once('data', () => s.write('N'));
    });
    const p = await proxyTo(portOf(plain), '--upstream-ssl-negotiation', 'postgres');
    const { err } = await connectError(p);
    assert.equal(err.code, '08001');
    assert.match(err.message, /does not accept TLS/);
  });

  test('direct TLS to a server that does not speak it: 08001 with the way back to an SSLRequest', async () => {
    // PostgreSQL before 17 reads the ClientHello as a startup packet of absurd length and hangs up;
    // a plaintext service answers bytes that are no TLS record.
    const hangUp = await listen((s) => {
      s.on('error', () => {});
      s.once('data', () => s.end());
    });
    const notTls = await listen((s) => {
      s.on('error', () => {});
      s.once('data', () => s.end('N'));
    });
    const p1 = await proxyTo(portOf(hangUp));
    const hung = (await connectError(p1)).err;
    assert.equal(hung.code, '08001');
    assert.match(hung.message, /could not connect to .*\(closed without answering the TLS handshake\)/);
    assert.match(hung.hint ?? '', /--upstream-ssl-negotiation postgres/);
    const line = await p1.waitForLog((l) => l.event === 'refused' && l.reason === 'UPSTREAM_UNREACHABLE');
    assert.equal(line.sqlstate, '08001');

    const p2 = await proxyTo(portOf(notTls));
    const garbled = (await connectError(p2)).err;
    assert.equal(garbled.code, '08001');
    assert.match(garbled.message, /^TLS handshake with .* failed: /);
    assert.match(garbled.hint ?? '', /may not support direct TLS.*--upstream-ssl-negotiation postgres/);
  });

  test('a certificate for another host: 08001 with the TLS reason and a hint', async () => {
    const ca = await createCa('wrong-host-ca');
    const cert = await issueCert(ca, { hostnames: ['not-the-cluster.example.com'] });
    const wrong = await startDsqlEndpoint({
      hostname: stack.hostname,
      region: stack.region,
      credentials: stack.credentials,
      postgres: stack.postgres,
      cert,
      caPem: ca.certPem,
    });
    try {
      const p = await proxy([...stackArgs({ ...stack, endpoint: wrong })]);
      const { err } = await connectError(p);
      assert.equal(err.code, '08001');
      assert.match(
        err.message,
        /TLS handshake with .* failed: the server's certificate is not valid for .* \(certificate names: DNS:/,
      );
      assert.equal(wrong.logins.length, 0, 'no token was sent to an unverified server');
    } finally {
      await wrong.close();
    }
  });

  test('a certificate from an untrusted CA: 08001, and no token leaves the proxy', async () => {
    const args = stackArgs(stack).filter((a, i, all) => a !== '--ca-file' && all[i - 1] !== '--ca-file');
    const before = stack.endpoint.logins.length;
    const p = await proxy(args);
    const { err } = await connectError(p);
    assert.equal(err.code, '08001');
    assert.match(
      err.message,
      /TLS handshake .* failed: .*(self-signed|unable to verify|unable to get local issuer)/,
    );
    assert.equal(stack.endpoint.logins.length, before);
  });

  test('a token the endpoint rejects: its SQLSTATE and message, with an IAM hint', async () => {
    const other = generateCredentials();
    const p = await proxy(stackArgs(stack), {
      env: { AWS_ACCESS_KEY_ID: other.accessKeyId, AWS_SECRET_ACCESS_KEY: other.secretAccessKey },
    });
    const { err } = await connectError(p);
    assert.equal(err.code, '28000');
    assert.match(err.message, /unable to accept connection, access denied/);
    assert.match(err.hint ?? '', /dsql:DbConnect/);
    const { err: adminErr } = await connectError(p, 'admin');
    assert.match(adminErr.hint ?? '', /dsql:DbConnectAdmin/);
  });

  test('no AWS credentials at all: 08001 saying so and how to provide them', async () => {
    const p = await proxy(stackArgs(stack), { credentials: false });
    const { err } = await connectError(p);
    assert.equal(err.code, '08001');
    assert.match(err.message, /no AWS credentials/i);
    assert.match(err.hint ?? '', /AWS_ACCESS_KEY_ID/);
    const logged = p.logs.some((l) => /no AWS credentials/i.test(l.raw));
    assert.ok(logged, 'the log says why too');
  });

  test('quota errors from the endpoint keep their SQLSTATE; the proxy serves again once they stop', async () => {
    const p = await proxy(stackArgs(stack));
    stack.endpoint.setRejectAll({
      sqlstate: '53300',
      message: 'Unable to accept connection, too many open connections.',
    });
    try {
      const { err } = await connectError(p);
      assert.equal(err.code, '53300');
      assert.match(err.message, /too many open connections/);
    } finally {
      stack.endpoint.setRejectAll(null);
    }
    await works(p);
  });
});

describe('how TLS to the endpoint starts (--upstream-ssl-negotiation)', () => {
  test('direct by default: ALPN postgresql, no SSLRequest; postgres: an SSLRequest first; both serve', async () => {
    const byDefault = await proxy(stackArgs(stack));
    const listening = await byDefault.waitForLog((l) => l.event === 'listening');
    assert.deepEqual(
      (listening.endpoints as Array<Record<string, unknown>>).map((e) => e.ssl_negotiation),
      ['direct'],
    );
    await works(byDefault);
    assert.equal(stack.endpoint.logins.at(-1)?.direct, true);

    const negotiated = await proxy([...stackArgs(stack), '--upstream-ssl-negotiation', 'postgres']);
    await works(negotiated);
    assert.equal(stack.endpoint.logins.at(-1)?.direct, false);
  });

  test('an unknown value is refused at start, naming the key and the choices', async () => {
    const p = await startProxyProcess(stack, {
      args: ['--upstream-ssl-negotiation', 'sslrequest'],
      expectStartFailure: true,
    });
    procs.push(p);
    assert.equal(await p.exited, 2);
    const text = p.logs.map((l) => l.raw).join('\n');
    assert.match(text, /upstream-ssl-negotiation/);
    assert.match(text, /direct/);
    assert.match(text, /postgres/);
  });
});
