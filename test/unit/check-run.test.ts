/**
 * runCheck with injected credentials and signer: the steps that cannot be made to fail honestly from
 * outside the process (token signing), credential sources and expiry, and takeRole (the describe
 * helpers are in check-describe.test.ts).
 * The full path (TLS, login, query) is covered through the CLI in test/integration/check.test.ts.
 */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { type CheckDeps, runCheck, takeRole } from '../../src/check/run.js';
import type { AwsCredentialIdentity } from '../../src/token/credentials.js';
import { TokenSignError } from '../../src/token/signer.js';
import { closedPort } from './socket-pair.js';

const ENDPOINT = 'abcdefghijklmnopqrstuvwxyz.dsql.eu-west-1.on.aws';
const KEY_ID = 'ASIAABCDEFGHIJKLMNOP';
const SECRET = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY';
const SESSION = 'IQoJb3JpZ2luX2VjEXAMPLESESSIONTOKENxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx';

async function check(
  argv: string[],
  deps: CheckDeps,
  env: NodeJS.ProcessEnv = {},
): Promise<{ code: number; lines: string[]; text: string }> {
  let text = '';
  const out = new Writable({
    write(chunk, _enc, cb) {
      text += String(chunk);
      cb();
    },
  });
  const code = await runCheck(argv, env, out, deps);
  return { code, text, lines: text.split('\n').filter((l) => l !== '') };
}

function creds(extra: Partial<AwsCredentialIdentity> & { $source?: Record<string, string> } = {}) {
  return {
    accessKeyId: KEY_ID,
    secretAccessKey: SECRET,
    sessionToken: SESSION,
    ...extra,
  } as AwsCredentialIdentity;
}

function assertNoSecret(text: string): void {
  for (const s of [KEY_ID, SECRET, SESSION, 'X-Amz-Signature'])
    assert.ok(!text.includes(s), `${s} leaked:\n${text}`);
}

test('token: a signing failure stops at step 3 with the reason (injected signer)', async () => {
  const r = await check(['--endpoint', ENDPOINT], {
    credentials: async () => creds(),
    createSigner: () => async () => {
      throw new TokenSignError('could not sign the DSQL auth token: clock skew detected', 'Error');
    },
  });
  assert.equal(r.code, 1);
  assert.deepEqual(
    r.lines.filter((l) => /^[✓✗]/.test(l)).map((l) => l.slice(0, l.indexOf(':'))),
    ['✓ config', '✓ credentials', '✗ token'],
  );
  assert.ok(r.lines.includes('✗ token: could not sign the DSQL auth token: clock skew detected'), r.text);
  assert.match(r.text, /\n {2}hint: Check the AWS credentials available/);
  assertNoSecret(r.text);
});

test('token: a signer that never answers is stopped by the connect timeout', async () => {
  const r = await check(['--endpoint', ENDPOINT, '--connect-timeout', '150ms'], {
    credentials: async () => creds(),
    createSigner: () => () => new Promise(() => {}),
  });
  assert.equal(r.code, 1);
  assert.ok(r.lines.includes('✗ token: timed out after 150ms signing the token'), r.text);
});

test('token: the production signer is given the region, endpoint and the resolved credentials once', async () => {
  let resolves = 0;
  let seen: { hostname: string; region: string; ttlSeconds?: number | undefined } | undefined;
  const r = await check(['--endpoint', ENDPOINT, '--token-ttl', '5m', '--role', 'reader'], {
    credentials: async () => {
      resolves++;
      return creds();
    },
    createSigner: (opts) => {
      seen = { hostname: opts.hostname, region: opts.region, ttlSeconds: opts.ttlSeconds };
      return async (action) => {
        assert.equal(action, 'DbConnect');
        const c = await opts.credentials();
        assert.equal(c.accessKeyId, KEY_ID);
        throw new TokenSignError('stop here');
      };
    },
  });
  assert.equal(r.code, 1);
  assert.equal(resolves, 1, 'the provider is resolved once');
  assert.deepEqual(seen, { hostname: ENDPOINT, region: 'eu-west-1', ttlSeconds: 300 });
});

test('credentials: source from $source, masked key id, expiry; never the secret', async () => {
  const expiration = new Date(Date.now() + 3 * 3600_000);
  const r = await check(['--endpoint', ENDPOINT], {
    credentials: async () => creds({ expiration, $source: { CREDENTIALS_IMDS: '0' } }),
    createSigner: () => async () => {
      throw new TokenSignError('stop');
    },
  });
  const line = r.lines.find((l) => l.startsWith('✓ credentials:')) ?? '';
  assert.match(
    line,
    /^✓ credentials: EC2 instance metadata \(instance profile\), access key ASIA…MNOP, expire \S+ \S+Z \(in (2h 59m|3h)\)$/,
  );
  assertNoSecret(r.text);
});

test('credentials: an SSO error gets the aws sso login hint with the profile', async () => {
  const r = await check(['--endpoint', ENDPOINT, '--profile', 'dev'], {
    credentials: async () => {
      throw new Error('The SSO session associated with this profile has expired or is otherwise invalid.');
    },
  });
  assert.equal(r.code, 1);
  assert.ok(r.lines.includes('✗ credentials: the AWS SSO session has expired or is invalid'), r.text);
  assert.ok(
    r.lines.includes(
      '  hint: Run `aws sso login --profile dev`; dsql-proxy picks up the new session without a restart.',
    ),
  );
});

/** The ✓/✗ step names of a run. */
const stepNames = (lines: string[]): string[] =>
  lines.filter((l) => /^[✓✗]/.test(l)).map((l) => l.slice(0, l.indexOf(':')));

test('dns: a dial host that does not resolve stops at the dns step, naming it and the code', async () => {
  const looked: string[] = [];
  const r = await check(['--endpoint', ENDPOINT], {
    credentials: async () => creds(),
    resolve: async (host) => {
      looked.push(host);
      throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' });
    },
  });
  assert.equal(r.code, 1);
  assert.deepEqual(stepNames(r.lines), ['✓ config', '✓ credentials', '✓ token', '✗ dns']);
  assert.ok(r.lines.includes(`✗ dns: ${ENDPOINT} does not resolve (ENOTFOUND)`), r.text);
  assert.match(r.text, /hint: Check --endpoint \(and --connect-to\)/);
  assert.deepEqual(looked, [ENDPOINT]);
  assertNoSecret(r.text);
});

test('dns: a resolver that never answers is stopped by the connect timeout', async () => {
  const r = await check(['--endpoint', ENDPOINT, '--connect-timeout', '150ms'], {
    credentials: async () => creds(),
    resolve: () => new Promise(() => {}),
  });
  assert.equal(r.code, 1);
  assert.ok(r.lines.includes(`✗ dns: timed out after 150ms looking up ${ENDPOINT}`), r.text);
  assert.match(r.text, /hint: The resolver did not answer: check the DNS settings/);
});

test('dns: the addresses found are shown, and the tls step dials them', async () => {
  const port = await closedPort();
  const r = await check(['--endpoint', ENDPOINT, '--connect-to', `db.internal.example:${port}`], {
    credentials: async () => creds(),
    resolve: async () => [{ address: '127.0.0.1', family: 4 }],
  });
  assert.equal(r.code, 1);
  assert.deepEqual(stepNames(r.lines), ['✓ config', '✓ credentials', '✓ token', '✓ dns', '✗ tls']);
  assert.match(r.text, /^✓ dns: db\.internal\.example → 127\.0\.0\.1 \(\d+ ms\)$/m);
  // Refused at the address the dns step found: the name itself is not resolvable anywhere.
  assert.match(r.text, /^✗ tls: could not connect to .* via db\.internal\.example:\d+: ECONNREFUSED$/m);
});

test('dns: no dns step when the dial host is an IP address', async () => {
  const port = await closedPort();
  const r = await check(['--endpoint', ENDPOINT, '--connect-to', `127.0.0.1:${port}`], {
    credentials: async () => creds(),
    resolve: async () => assert.fail('an IP address is not looked up'),
  });
  assert.deepEqual(stepNames(r.lines), ['✓ config', '✓ credentials', '✓ token', '✗ tls']);
});

test('credentials: a provider that hangs is stopped by the connect timeout', async () => {
  const r = await check(['--endpoint', ENDPOINT, '--connect-timeout', '100ms'], {
    credentials: () => new Promise(() => {}),
  });
  assert.equal(r.code, 1);
  assert.ok(r.lines.includes('✗ credentials: timed out after 100ms resolving AWS credentials'), r.text);
});

test('config: a missing endpoint is exit 2 with the reason', async () => {
  const r = await check([], {});
  assert.equal(r.code, 2);
  assert.match(r.lines[0] ?? '', /^✗ config: endpoint is required/);
});

test('--help prints the check usage', async () => {
  const r = await check(['--help'], {});
  assert.equal(r.code, 0);
  assert.match(r.text, /^Usage: dsql-proxy check \[--role NAME\]/);
});

test('takeRole strips --role in both spellings and rejects a missing name', () => {
  assert.deepEqual(takeRole(['--endpoint', 'x', '--role', 'app']), {
    role: 'app',
    rest: ['--endpoint', 'x'],
  });
  assert.deepEqual(takeRole(['--role=reader', '--listen', 'y']), { role: 'reader', rest: ['--listen', 'y'] });
  assert.deepEqual(takeRole(['--endpoint', 'x']), { role: 'admin', rest: ['--endpoint', 'x'] });
  assert.throws(() => takeRole(['--role']), /--role needs a DSQL role name/);
  assert.throws(() => takeRole(['--role', '--endpoint', 'x']), /--role needs a DSQL role name/);
  assert.throws(() => takeRole(['--role=']), /--role needs a DSQL role name/);
});
