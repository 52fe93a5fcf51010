/**
 * `dsql-proxy check` through the real CLI binary against the test stack (a real PostgreSQL behind the
 * fake DSQL endpoint): every step passes, and each step fails on its own with its reason and hint.
 * The token step cannot be made to fail honestly from outside the process; it is covered with an
 * injected signer in test/unit/check-run.test.ts.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import tls from 'node:tls';
import { FrameStream } from '../../src/io/frame-stream.js';
import { identityArn } from '../../src/local-endpoint/sigv4-verify.js';
import {
  authenticationCleartextPassword,
  authenticationOk,
  errorResponse,
  parameterStatus,
  readyForQuery,
} from '../../src/protocol/to-client.js';
import { createCa, issueCert } from '../support/certs.js';
import { CLI, isolatedAwsEnv, stackArgs } from '../support/proxy-process.js';
import { assertNoSecrets } from '../support/secrets.js';
import { clusterHostname, generateCredentials, startTestStack, type TestStack } from '../support/stack.js';
import { tempDir } from '../support/temp-dirs.js';

let stack: TestStack;
/** Everything every check printed, for the secrets scan at the end. */
const allOutput: string[] = [];

before(async () => {
  stack = await startTestStack();
});

after(async () => {
  await stack?.stop();
  assertNoSecrets(allOutput, {
    credentials: stack.credentials,
    tokens: stack.endpoint.logins.map((l) => l.token),
  });
  const all = allOutput.join('\n');
  assert.ok(!all.includes(stack.credentials.accessKeyId), 'the full access key id must not be printed');
  assert.doesNotMatch(all, /X-Amz-(Signature|Credential|Security-Token)/i);
});

interface CheckRun {
  code: number | null;
  stdout: string;
  stderr: string;
  lines: string[];
}

interface RunOptions {
  /** AWS credentials in the environment; default the stack's. null: none at all. */
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string } | null;
  env?: Record<string, string>;
}

function runCheck(args: string[], opts: RunOptions = {}): Promise<CheckRun> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v !== undefined && !k.startsWith('AWS_') && !k.startsWith('DSQL_PROXY_')) env[k] = v;
  }
  Object.assign(env, isolatedAwsEnv());
  const creds = opts.credentials === undefined ? stack.credentials : opts.credentials;
  if (creds) {
    env.AWS_ACCESS_KEY_ID = creds.accessKeyId;
    env.AWS_SECRET_ACCESS_KEY = creds.secretAccessKey;
    if (creds.sessionToken) env.AWS_SESSION_TOKEN = creds.sessionToken;
  }
  Object.assign(env, opts.env ?? {});
  const child = spawn(process.execPath, [CLI, 'check', ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (c: string) => {
    stdout += c;
  });
  child.stderr.setEncoding('utf8').on('data', (c: string) => {
    stderr += c;
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`check did not exit within 30 s:\n${stdout}\n${stderr}`));
    }, 30_000);
    child.once('close', (code) => {
      clearTimeout(timer);
      allOutput.push(stdout, stderr);
      resolve({ code, stdout, stderr, lines: stdout.split('\n').filter((l) => l !== '') });
    });
  });
}

/** The `✓`/`✗` step lines, as [mark, step] pairs. */
function steps(run: CheckRun): string[] {
  return run.lines.filter((l) => /^[✓✗] /.test(l)).map((l) => l.slice(0, l.indexOf(':')));
}

function line(run: CheckRun, prefix: string): string {
  const hit = run.lines.find((l) => l.startsWith(prefix));
  assert.ok(hit, `no line starting with ${JSON.stringify(prefix)} in:\n${run.stdout}\n${run.stderr}`);
  return hit;
}

function hintAfter(run: CheckRun, prefix: string): string {
  const i = run.lines.findIndex((l) => l.startsWith(prefix));
  const hint = run.lines.slice(i + 1).find((l) => l.startsWith('  hint: '));
  assert.ok(hint, `no hint after ${prefix}:\n${run.stdout}`);
  return hint;
}

function argsWithout(args: string[], flag: string): string[] {
  const i = args.indexOf(flag);
  return i < 0 ? args : [...args.slice(0, i), ...args.slice(i + 2)];
}

describe('dsql-proxy check', () => {
  test('a dial host name gets a dns step with its addresses, and the rest passes through them', async () => {
    const args = [
      ...argsWithout(stackArgs(stack), '--connect-to'),
      '--connect-to',
      `localhost:${stack.endpoint.port}`,
    ];
    const run = await runCheck(args);
    assert.equal(run.code, 0, run.stdout + run.stderr);
    assert.deepEqual(steps(run), [
      '✓ config',
      '✓ credentials',
      '✓ token',
      '✓ dns',
      '✓ tls',
      '✓ login',
      '✓ query',
    ]);
    assert.match(line(run, '✓ dns:'), /^✓ dns: localhost → (.+, )?127\.0\.0\.1(, .+)? \(\d+ ms\)$/);
  });

  test('every step passes against the test stack', async () => {
    const run = await runCheck(stackArgs(stack));
    assert.equal(run.code, 0, run.stdout + run.stderr);
    assert.deepEqual(steps(run), ['✓ config', '✓ credentials', '✓ token', '✓ tls', '✓ login', '✓ query']);
    assert.match(line(run, '✓ config:'), new RegExp(`endpoint ${stack.hostname}`));
    assert.match(line(run, '✓ config:'), /region us-east-1 \(from the hostname\)/);
    assert.match(line(run, '✓ config:'), /dial 127\.0\.0\.1:\d+ \(connect-to\)/);
    assert.match(line(run, '✓ config:'), /token TTL 15m/);
    const creds = line(run, '✓ credentials:');
    assert.match(creds, /environment variables/);
    assert.match(creds, /no expiry \(long-term keys\)/);
    const id = stack.credentials.accessKeyId;
    assert.ok(creds.includes(`${id.slice(0, 4)}…${id.slice(-4)}`), creds);
    assert.match(
      line(run, '✓ token:'),
      /DbConnectAdmin for role admin, signed for us-east-1, valid until .*lifetime 15m/,
    );
    const tlsLine = line(run, '✓ tls:');
    assert.match(tlsLine, /TLSv1\.[23] /);
    assert.match(tlsLine, /direct TLS \(ALPN postgresql\)/);
    assert.ok(tlsLine.includes(`SAN DNS:${stack.hostname}`), tlsLine);
    assert.match(tlsLine, /issuer CN=/);
    assert.ok(tlsLine.includes(`SNI and certificate check used ${stack.hostname}`), tlsLine);
    assert.match(line(run, '✓ login:'), /logged in as admin, server_version \d+/);
    assert.match(line(run, '✓ query:'), /SELECT 1 returned 1/);
    // The endpoint answers sys.iam_session_user() as DSQL does: the ARN of the token's identity.
    assert.equal(line(run, '  - iam identity:'), `  - iam identity: ${identityArn(stack.credentials)}`);
    // Trust on loopback is fine for the proxy; check prints it as a note.
    assert.match(line(run, '  note:'), /trust authentication/);
    const login = stack.endpoint.logins.at(-1);
    assert.equal(login?.user, 'admin');
    assert.equal(login?.ok, true);
    assert.equal(login?.direct, true, 'direct TLS by default');
  });

  test('--role app logs in with a DbConnect token', async () => {
    const run = await runCheck([...stackArgs(stack), '--role', 'app']);
    assert.equal(run.code, 0, run.stdout + run.stderr);
    assert.match(line(run, '✓ token:'), /^✓ token: DbConnect for role app/);
    assert.match(line(run, '✓ login:'), /logged in as app/);
    assert.equal(stack.endpoint.logins.at(-1)?.action, 'DbConnect');
  });

  test('config: an unknown flag stops at step 1 with exit 2', async () => {
    const run = await runCheck([...stackArgs(stack), '--lissen', '127.0.0.1:1']);
    assert.equal(run.code, 2);
    assert.deepEqual(steps(run), ['✗ config']);
    assert.match(line(run, '✗ config:'), /unknown flag --lissen.*did you mean --listen/);
  });

  test('config: --role without a name is a configuration error', async () => {
    const run = await runCheck([...stackArgs(stack), '--role']);
    assert.equal(run.code, 2);
    assert.match(line(run, '✗ config:'), /--role needs a DSQL role name/);
  });

  test('credentials: none available', async () => {
    const run = await runCheck(stackArgs(stack), { credentials: null });
    assert.equal(run.code, 1);
    assert.deepEqual(steps(run), ['✓ config', '✗ credentials']);
    assert.equal(line(run, '✗ credentials:'), '✗ credentials: no AWS credentials found');
    assert.match(hintAfter(run, '✗ credentials:'), /AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY/);
  });

  test('credentials: temporary credentials that have expired', async () => {
    const run = await runCheck(stackArgs(stack), {
      credentials: {
        ...generateCredentials(),
        sessionToken: 'FwoGZXIvYXdzEXAMPLESESSIONTOKEN0123456789abcdef',
      },
      env: { AWS_CREDENTIAL_EXPIRATION: '2020-01-01T00:00:00Z' },
    });
    assert.equal(run.code, 1);
    assert.deepEqual(steps(run), ['✓ config', '✗ credentials']);
    assert.equal(
      line(run, '✗ credentials:'),
      '✗ credentials: the AWS credentials expired at 2020-01-01 00:00:00Z',
    );
    assert.match(hintAfter(run, '✗ credentials:'), /Temporary credentials/);
    assert.doesNotMatch(run.stdout, /FwoGZXIvYXdzEXAMPLESESSIONTOKEN/);
  });

  test('tls: without the CA the certificate is rejected', async () => {
    const run = await runCheck(argsWithout(stackArgs(stack), '--ca-file'));
    assert.equal(run.code, 1);
    assert.deepEqual(steps(run), ['✓ config', '✓ credentials', '✓ token', '✗ tls']);
    assert.match(line(run, '✗ tls:'), /TLS handshake with .* failed: .*certificate/);
    assert.match(hintAfter(run, '✗ tls:'), /--ca-file/);
  });

  test('tls: nothing listening at the dial address', async () => {
    const port = await closedPort();
    const args = [...argsWithout(stackArgs(stack), '--connect-to'), '--connect-to', `127.0.0.1:${port}`];
    const run = await runCheck(args);
    assert.equal(run.code, 1);
    assert.deepEqual(steps(run), ['✓ config', '✓ credentials', '✓ token', '✗ tls']);
    assert.match(line(run, '✗ tls:'), /could not connect to .*ECONNREFUSED/);
  });

  test('login: a wrong secret key is refused with the IAM hint', async () => {
    const wrong = { ...stack.credentials, secretAccessKey: generateCredentials().secretAccessKey };
    const run = await runCheck(stackArgs(stack), { credentials: wrong });
    assert.equal(run.code, 1);
    assert.deepEqual(steps(run), ['✓ config', '✓ credentials', '✓ token', '✓ tls', '✗ login']);
    assert.match(line(run, '✗ login:'), /access denied \(SQLSTATE 28000\)/);
    assert.match(hintAfter(run, '✗ login:'), /dsql:DbConnectAdmin/);
    assert.ok(!run.stdout.includes(wrong.secretAccessKey));
  });

  test('login: a role PostgreSQL does not know', async () => {
    const run = await runCheck([...stackArgs(stack), '--role', 'no_such_role']);
    assert.equal(run.code, 1);
    assert.deepEqual(steps(run), ['✓ config', '✓ credentials', '✓ token', '✓ tls', '✗ login']);
    assert.match(line(run, '✗ login:'), /no_such_role/);
  });

  describe('query step, against a scripted endpoint', () => {
    test('the server closes the connection instead of answering', async () => {
      const server = await scriptedEndpoint('close');
      try {
        const run = await runCheck(server.args);
        assert.equal(run.code, 1);
        assert.deepEqual(steps(run), ['✓ config', '✓ credentials', '✓ token', '✓ tls', '✓ login', '✗ query']);
        assert.match(line(run, '✓ tls:'), /TLS after an SSLRequest/);
        assert.match(line(run, '✓ login:'), /server_version 16\.0-scripted/);
        assert.match(line(run, '✗ query:'), /closed the connection before answering the query/);
      } finally {
        await server.close();
      }
    });

    test('the server answers SELECT 1 with an error: its SQLSTATE is shown', async () => {
      const server = await scriptedEndpoint('error');
      try {
        const run = await runCheck(server.args);
        assert.equal(run.code, 1);
        assert.deepEqual(steps(run), ['✓ config', '✓ credentials', '✓ token', '✓ tls', '✓ login', '✗ query']);
        assert.equal(line(run, '✗ query:'), '✗ query: scripted failure (SQLSTATE 0A000)');
        assert.equal(hintAfter(run, '✗ query:'), '  hint: a scripted hint');
      } finally {
        await server.close();
      }
    });
  });
});

async function closedPort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

/**
 * A minimal DSQL-like endpoint: SSLRequest → 'S' → TLS with a certificate for the cluster hostname,
 * accepts any password, logs in, then fails the first Query by closing or with an ErrorResponse. Like
 * PostgreSQL before 17 it knows no direct TLS, so its args include `--upstream-ssl-negotiation postgres`.
 */
async function scriptedEndpoint(
  mode: 'close' | 'error',
): Promise<{ args: string[]; close(): Promise<void> }> {
  const hostname = clusterHostname();
  const ca = await createCa('check test CA');
  const cert = await issueCert(ca, { hostnames: [hostname] });
  const secureContext = tls.createSecureContext({ cert: cert.certPem, key: cert.keyPem });
  const sockets = new Set<net.Socket>();
  const closed = (): Error => new Error('client went away');

  const serve = async (raw: net.Socket): Promise<void> => {
    const pre = new FrameStream(raw, closed);
    await pre.nextUntyped(8); // SSLRequest
    pre.detach();
    raw.write('S');
    const socket = new tls.TLSSocket(raw, { isServer: true, secureContext });
    sockets.add(socket);
    const frames = new FrameStream(socket, closed);
    await frames.nextUntyped(10_000); // StartupMessage
    socket.write(authenticationCleartextPassword());
    await frames.nextTyped(10_000); // the token
    socket.write(
      Buffer.concat([
        authenticationOk(),
        parameterStatus('server_version', '16.0-scripted'),
        readyForQuery('I'),
      ]),
    );
    await frames.nextTyped(10_000); // Query
    if (mode === 'close') {
      socket.destroy();
      return;
    }
    socket.write(
      Buffer.concat([
        errorResponse({
          severity: 'ERROR',
          sqlstate: '0A000',
          message: 'scripted failure',
          hint: 'a scripted hint',
        }),
        readyForQuery('I'),
      ]),
    );
    await frames.nextTyped(10_000).catch(() => undefined); // Terminate
    socket.destroy();
  };

  const server = net.createServer((raw) => {
    sockets.add(raw);
    raw.on('error', () => {});
    serve(raw).catch(() => raw.destroy());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  const dir = tempDir('check');
  const caFile = join(dir, 'ca.pem');
  writeFileSync(caFile, ca.certPem);
  return {
    args: [
      '--endpoint',
      hostname,
      '--connect-to',
      `127.0.0.1:${port}`,
      '--ca-file',
      caFile,
      '--upstream-ssl-negotiation',
      'postgres',
    ],
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
