import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { silentLogger } from '../../src/log.js';
import {
  createCredentialProvider,
  describeCredentialError,
  scrubSecrets,
  withCredentialsTimeout,
} from '../../src/token/credentials.js';

const KEY_ID = 'AKIAIOSFODNN7EXAMPLE';
const TEMP_KEY_ID = 'ASIAQWERTYUIOPASDFGH';
const SECRET = 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY';
const SESSION_TOKEN =
  'IQoJb3JpZ2luX2VjEJr//////////wEaCXVzLWVhc3QtMSJHMEUCIQDexampleexampleexampleexampleexampleexample+AiA=';

class CredentialsProviderError extends Error {
  override name = 'CredentialsProviderError';
}

function assertNoSecrets(text: string): void {
  for (const s of [KEY_ID, TEMP_KEY_ID, SECRET, SESSION_TOKEN, SESSION_TOKEN.slice(0, 50)]) {
    assert.ok(!text.includes(s), `leaked ${s.slice(0, 8)}… in: ${text}`);
  }
}

describe('describeCredentialError', () => {
  const savedProfile = process.env.AWS_PROFILE;
  afterEach(() => {
    if (savedProfile === undefined) delete process.env.AWS_PROFILE;
    else process.env.AWS_PROFILE = savedProfile;
  });

  it('explains that no credentials were found and lists the ways to provide them', () => {
    const d = describeCredentialError(
      new CredentialsProviderError('Could not load credentials from any providers'),
    );
    assert.equal(d.message, 'no AWS credentials found');
    for (const word of [
      'AWS_ACCESS_KEY_ID',
      'AWS_SECRET_ACCESS_KEY',
      '--profile',
      'AWS_PROFILE',
      'aws sso login',
      'IRSA',
      'Pod Identity',
    ]) {
      assert.ok(d.hint.includes(word), `hint mentions ${word}`);
    }
  });

  it('recognises the message after the signer wrapped it', () => {
    const d = describeCredentialError(
      new Error('could not resolve AWS credentials: Could not load credentials from any providers'),
    );
    assert.equal(d.message, 'no AWS credentials found');
  });

  it('tells to run aws sso login with the profile when the SSO session expired', () => {
    delete process.env.AWS_PROFILE;
    const err = new CredentialsProviderError(
      'The SSO session associated with this profile has expired. To refresh this SSO session run aws sso login with the corresponding profile.',
    );
    const d = describeCredentialError(err, { profile: 'dev-sso' });
    assert.match(d.message, /SSO session has expired/);
    assert.ok(d.hint.includes('`aws sso login --profile dev-sso`'), d.hint);

    const t = describeCredentialError(
      new Error(
        "Token is expired. To refresh this SSO session run 'aws sso login' with the corresponding profile.",
      ),
    );
    assert.match(t.message, /SSO session/);
    assert.ok(t.hint.includes('`aws sso login`'));
  });

  it('takes the profile from AWS_PROFILE when none is given', () => {
    process.env.AWS_PROFILE = 'from-env';
    const d = describeCredentialError(
      new Error(
        'The SSO session associated with this profile is invalid. To refresh this SSO session run aws sso login',
      ),
    );
    assert.ok(d.hint.includes('aws sso login --profile from-env'));
  });

  it('explains expired credentials', () => {
    for (const err of [
      Object.assign(new Error('The security token included in the request is expired'), {
        name: 'ExpiredTokenException',
      }),
      Object.assign(new Error('the AWS credentials expired at 2024-01-01T00:00:00.000Z'), {
        code: 'ExpiredCredentials',
      }),
    ]) {
      const d = describeCredentialError(err);
      assert.equal(d.message, 'the AWS credentials have expired');
      assert.match(d.hint, /refresh|export new/i);
    }
  });

  it('names a missing profile', () => {
    const d = describeCredentialError(
      new CredentialsProviderError(
        'Could not resolve credentials using profile: [nope] in configuration/credentials file(s).',
      ),
    );
    assert.match(d.message, /profile "nope"/);
    assert.match(d.hint, /AWS_PROFILE/);
  });

  it('passes other errors through, scrubbed of keys, secrets and session tokens', () => {
    const err = new Error(
      `STS said no for ${KEY_ID} / ${TEMP_KEY_ID} with secret ${SECRET} and token ${SESSION_TOKEN}: AccessDenied`,
    );
    const d = describeCredentialError(err);
    assert.match(d.message, /STS said no/);
    assert.match(d.message, /AccessDenied/);
    assertNoSecrets(d.message);
    assertNoSecrets(d.hint);
  });

  it('never echoes secrets from any branch, or from non-Error throwables', () => {
    const inputs: unknown[] = [
      `Could not load credentials from any providers ${SECRET}`,
      new Error(`The SSO session associated with this profile has expired ${SESSION_TOKEN}`),
      new Error(`ExpiredToken ${KEY_ID} ${SECRET}`),
      { message: `weird ${SECRET} ${SESSION_TOKEN}` },
      { accessKeyId: KEY_ID, secretAccessKey: SECRET, sessionToken: SESSION_TOKEN },
      `x-amz url h/?X-Amz-Credential=${KEY_ID}%2F20240101%2Fus-east-1%2Fdsql%2Faws4_request&X-Amz-Security-Token=abc%2Bdef`,
      undefined,
      null,
      42,
    ];
    for (const input of inputs) {
      const d = describeCredentialError(input, { profile: 'p' });
      assert.equal(typeof d.message, 'string');
      assert.ok(d.message.length > 0);
      assertNoSecrets(d.message);
      assertNoSecrets(d.hint);
      assert.ok(!d.message.includes('abc%2Bdef'));
    }
  });
});

describe('scrubSecrets', () => {
  it('keeps ordinary error text', () => {
    const text = 'connect ETIMEDOUT 169.254.169.254:80 while reading /home/me/.aws/config';
    assert.equal(scrubSecrets(text), text);
  });
  it('removes key ids, 40-character secrets and long base64', () => {
    const out = scrubSecrets(`${KEY_ID} ${SECRET} ${SESSION_TOKEN}`);
    assertNoSecrets(out);
    assert.match(out, /\[redacted\]/);
  });
});

describe('createCredentialProvider', () => {
  const saved = { ...process.env };
  afterEach(() => {
    for (const k of ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN', 'AWS_PROFILE']) {
      if (saved[k] === undefined) delete process.env[k];
      else process.env[k] = saved[k];
    }
  });

  it('returns a provider that reads credentials from the environment', async () => {
    delete process.env.AWS_PROFILE;
    process.env.AWS_ACCESS_KEY_ID = KEY_ID;
    process.env.AWS_SECRET_ACCESS_KEY = SECRET;
    delete process.env.AWS_SESSION_TOKEN;
    const provider = createCredentialProvider({ logger: silentLogger() });
    assert.equal(typeof provider, 'function');
    const creds = await provider();
    assert.equal(creds.accessKeyId, KEY_ID);
    assert.equal(creds.secretAccessKey, SECRET);
  });
});

describe('withCredentialsTimeout', () => {
  // The timeout's timer is unref()'d (a pending lookup must not keep the proxy's process alive), so
  // in a bare test process nothing else would keep the event loop running until it fires.
  let keepAlive: NodeJS.Timeout | undefined;
  beforeEach(() => {
    keepAlive = setInterval(() => {}, 1000);
  });
  afterEach(() => clearInterval(keepAlive));

  it('fails a resolution that never settles, and the next call uses a fresh provider', async () => {
    let created = 0;
    const provider = withCredentialsTimeout(() => {
      created++;
      const n = created;
      // The first provider hangs forever, as the SDK's container request does on a silent server.
      return () =>
        n === 1
          ? new Promise<never>(() => {})
          : Promise.resolve({ accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret' });
    }, 50);
    const t0 = Date.now();
    await assert.rejects(provider(), /the AWS credential provider did not answer within 50 ms/);
    assert.ok(Date.now() - t0 < 1000);
    assert.equal((await provider()).accessKeyId, 'AKIDEXAMPLE');
    assert.equal(created, 2);
  });

  it('gives the message a person can act on', () => {
    const d = describeCredentialError(new Error('the AWS credential provider did not answer within 50 ms'));
    assert.match(d.message, /did not answer within 50 ms/);
  });
});
