/**
 * The process as an operator sees it: it refuses bad configuration with one clear message, drains on
 * SIGTERM and ends leftover sessions with 57P01, exits at once on a second signal, and
 * `hash-password` writes verifiers that the auth file accepts.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { parseScramVerifier, verifyScramPassword } from '../../src/auth/scram.js';
import { allLogLines, CLI, type ProxyProcess, startProxyProcess } from '../support/proxy-process.js';
import { assertNoSecrets, registerPasswords } from '../support/secrets.js';
import { startTestStack, type TestStack } from '../support/stack.js';
import { tempDir } from '../support/temp-dirs.js';

registerPasswords('s3cret pass', 'pw-from-hash');

let stack: TestStack;

before(async () => {
  stack = await startTestStack();
});

after(async () => {
  await stack?.stop();
  // Every line of every proxy this file started, including those that exited on their own.
  assertNoSecrets(allLogLines, {
    credentials: stack.credentials,
    tokens: stack.endpoint.logins.map((l) => l.token),
  });
});

function run(
  args: string[],
  input?: string,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(input ?? '');
  });
}

async function connected(p: ProxyProcess): Promise<pg.Client> {
  const client = new pg.Client({ host: p.host, port: p.port, user: 'app', password: '' });
  await client.connect();
  return client;
}

describe('startup refusals: one clear message naming the key, exit code 2', () => {
  const endpoint = 'abcdefghijklmnopqrstuvwxyz.dsql.us-east-1.on.aws';
  const cases: Array<[string, string[], RegExp]> = [
    ['missing endpoint', [], /endpoint/],
    ['TTL out of range', ['--endpoint', endpoint, '--token-ttl', '604801'], /token-ttl/],
    ['bad port', ['--endpoint', endpoint, '--listen', '127.0.0.1:70000'], /listen/],
    ['unknown flag', ['--endpoint', endpoint, '--no-such-flag', 'x'], /no-such-flag/],
    ['region contradicting the hostname', ['--endpoint', endpoint, '--region', 'eu-west-1'], /region/],
    ['trust on a non-loopback address', ['--endpoint', endpoint, '--listen', '0.0.0.0:5432'], /trust/],
    [
      'unreadable auth file',
      ['--endpoint', endpoint, '--auth-file', '/nonexistent/users.txt'],
      /auth-file|users\.txt/,
    ],
  ];
  for (const [name, args, pattern] of cases) {
    test(name, async () => {
      const r = await run(args);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, pattern);
      assert.equal(r.stderr.trim().split('\n').length, 1, `one message, got:\n${r.stderr}`);
    });
  }

  test('a malformed auth file line is named by file and line', async () => {
    const dir = tempDir('bad-auth');
    const file = join(dir, 'users.txt');
    writeFileSync(file, '"admin" "pw"\n"broken line\n');
    const r = await run(['--endpoint', endpoint, '--auth-file', file]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, new RegExp(`${file.replaceAll('/', '\\/')}:2`));
    assert.doesNotMatch(r.stderr, /"pw"/, 'no secret in the message');
  });
});

describe('hash-password', () => {
  test('reads stdin and prints a SCRAM-SHA-256 verifier for the password', async () => {
    const r = await run(['hash-password'], 's3cret pass\n');
    assert.equal(r.code, 0, r.stderr);
    const verifier = parseScramVerifier(r.stdout.trim());
    assert.ok(verifier, `not a verifier: ${r.stdout}`);
    assert.equal(verifier.iterations, 4096);
    assert.equal(verifyScramPassword('s3cret pass', verifier), true);
    assert.equal(verifyScramPassword('other', verifier), false);
  });

  test('--user prints a whole auth file line that the proxy accepts', async () => {
    const r = await run(['hash-password', '--user', 'app'], 'pw-from-hash\n');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^"app" "SCRAM-SHA-256\$4096:/);
    const dir = tempDir('hash');
    const file = join(dir, 'users.txt');
    writeFileSync(file, r.stdout);
    const p = await startProxyProcess(stack, { args: ['--auth-file', file] });
    try {
      const client = new pg.Client({ host: p.host, port: p.port, user: 'app', password: 'pw-from-hash' });
      await client.connect();
      assert.deepEqual((await client.query('select 1 as one')).rows, [{ one: 1 }]);
      await client.end();
    } finally {
      await p.stop();
    }
  });
});

describe('shutdown', () => {
  test('SIGTERM: no new clients, running work finishes, idle sessions get 57P01 after the delay, exit 0', async () => {
    const p = await startProxyProcess(stack, {
      args: ['--max-shutdown-delay', '2s', '--log-level', 'trace'],
    });
    try {
      const idle = await connected(p);
      const idleError = new Promise<pg.DatabaseError>((resolve) =>
        idle.on('error', (e) => resolve(e as pg.DatabaseError)),
      );
      const busy = await connected(p);
      busy.on('error', () => {});
      const busyQuery = busy.query('select pg_sleep(1) as slept');
      await new Promise((r) => setTimeout(r, 200));
      const t0 = Date.now();
      p.child.kill('SIGTERM');
      await p.waitForLog((l) => l.event === 'draining');

      // New clients are no longer accepted.
      const late = new pg.Client({ host: p.host, port: p.port, user: 'app', password: '' });
      late.on('error', () => {});
      await assert.rejects(late.connect(), /ECONNREFUSED|Connection terminated/);

      // Work in flight completes within the drain window.
      assert.equal((await busyQuery).rowCount, 1);
      await busy.end();

      // What is left at the deadline is ended with 57P01, then the process exits 0.
      const err = await idleError;
      assert.equal(err.code, '57P01');
      assert.match(err.message, /shutting down/);
      const elapsed = Date.now() - t0;
      assert.ok(elapsed >= 1800 && elapsed < 6000, `ended after ${elapsed} ms`);
      assert.equal(await p.exited, 0);
      const order = p.logs
        .map((l) => l.json?.event)
        .filter((e) => e === 'draining' || e === 'terminating_sessions' || e === 'stopped');
      assert.deepEqual(order, ['draining', 'terminating_sessions', 'stopped']);
    } finally {
      // The process has exited; stop() runs the secrets scan over everything it wrote.
      await p.stop();
    }
  });

  test('SIGTERM with no sessions exits promptly', async () => {
    const p = await startProxyProcess(stack, { args: ['--max-shutdown-delay', '30s'] });
    try {
      const t0 = Date.now();
      p.child.kill('SIGTERM');
      assert.equal(await p.exited, 0);
      assert.ok(Date.now() - t0 < 3000);
    } finally {
      await p.stop();
    }
  });

  test('a second signal exits at once', async () => {
    const p = await startProxyProcess(stack, { args: ['--max-shutdown-delay', '60s'] });
    try {
      const client = await connected(p);
      client.on('error', () => {});
      p.child.kill('SIGTERM');
      await p.waitForLog((l) => l.event === 'draining');
      const t0 = Date.now();
      p.child.kill('SIGINT');
      const code = await p.exited;
      assert.equal(code, 1);
      assert.ok(Date.now() - t0 < 3000, 'did not wait for the drain');
    } finally {
      await p.stop();
    }
  });
});
