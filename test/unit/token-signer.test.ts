import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import type { AwsCredentialIdentityProvider } from '../../src/token/credentials.js';
import {
  actionForRole,
  createTokenSigner,
  parseTokenValidity,
  TokenSignError,
  validateTtlSeconds,
} from '../../src/token/signer.js';

const HOST = 'abcdefghijklmnopqrstuvwxyz.dsql.us-east-1.on.aws';
const ACCESS_KEY = 'AKIDEXAMPLE';
const SECRET = 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY';
const staticCreds: AwsCredentialIdentityProvider = async () => ({
  accessKeyId: ACCESS_KEY,
  secretAccessKey: SECRET,
});

function amzDateMs(token: string): number {
  const m = /X-Amz-Date=(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z/.exec(token);
  assert.ok(m, 'token has X-Amz-Date');
  const [, y, mo, d, h, mi, s] = m.map(Number) as number[];
  return Date.UTC(y!, mo! - 1, d!, h!, mi!, s!);
}

describe('actionForRole', () => {
  it('maps admin to DbConnectAdmin and every other role to DbConnect', () => {
    assert.equal(actionForRole('admin'), 'DbConnectAdmin');
    assert.equal(actionForRole('app_user'), 'DbConnect');
    assert.equal(actionForRole('Admin'), 'DbConnect');
    assert.equal(actionForRole(''), 'DbConnect');
  });
});

describe('createTokenSigner with the real DsqlSigner', () => {
  const savedRegion = process.env.AWS_REGION;
  afterEach(() => {
    if (savedRegion === undefined) delete process.env.AWS_REGION;
    else process.env.AWS_REGION = savedRegion;
  });

  it('signs an admin token for the host, action, TTL and region', async () => {
    const before = Date.now();
    const sign = createTokenSigner({
      hostname: HOST,
      region: 'us-east-1',
      credentials: staticCreds,
      ttlSeconds: 600,
    });
    const t = await sign('DbConnectAdmin');
    const after = Date.now();
    assert.ok(t.token.startsWith(`${HOST}/?Action=DbConnectAdmin`), 'starts with host and action');
    assert.match(t.token, /[?&]X-Amz-Expires=600(&|$)/);
    assert.ok(t.token.includes('%2Fus-east-1%2Fdsql%2Faws4_request'), 'scope names us-east-1 and dsql');
    assert.ok(t.token.includes(`X-Amz-Credential=${ACCESS_KEY}%2F`));
    assert.ok(!t.token.includes('https://'), 'no scheme');
    assert.ok(!t.token.includes(SECRET), 'the secret is never in the token');
    const signedAt = amzDateMs(t.token);
    assert.equal(t.signedAt, signedAt);
    assert.equal(t.expiresAt, signedAt + 600_000);
    assert.equal(t.credentialsExpireAt, undefined);
    // X-Amz-Date is whole seconds: at most a second before the call, never after it.
    assert.ok(t.signedAt <= after && t.signedAt > before - 1000, 'signedAt is the token date');
  });

  it('signs a DbConnect token with the default TTL of 900 s', async () => {
    const sign = createTokenSigner({ hostname: HOST, region: 'us-east-1', credentials: staticCreds });
    const t = await sign('DbConnect');
    assert.ok(t.token.startsWith(`${HOST}/?Action=DbConnect&`));
    assert.match(t.token, /X-Amz-Expires=900(&|$)/);
    assert.equal(t.expiresAt - t.signedAt, 900_000);
  });

  it('ignores AWS_REGION: the explicit region is signed', async () => {
    process.env.AWS_REGION = 'eu-west-1';
    const sign = createTokenSigner({
      hostname: HOST,
      region: 'us-east-1',
      credentials: staticCreds,
      ttlSeconds: 5,
    });
    const t = await sign('DbConnect');
    assert.ok(t.token.includes('%2Fus-east-1%2Fdsql%2Faws4_request'));
    assert.ok(!t.token.includes('eu-west-1'));
  });

  it('includes the session token and caps expiresAt at the credentials expiration', async () => {
    const credsExpire = Date.now() + 60_000;
    const sign = createTokenSigner({
      hostname: HOST,
      region: 'us-east-1',
      ttlSeconds: 900,
      credentials: async () => ({
        accessKeyId: 'ASIAEXAMPLEEXAMPLE01',
        secretAccessKey: SECRET,
        sessionToken: 'FwoGZXIvYXdzEXAMPLESESSIONTOKEN',
        expiration: new Date(credsExpire),
      }),
    });
    const t = await sign('DbConnect');
    assert.ok(t.token.includes('X-Amz-Security-Token='));
    assert.equal(t.expiresAt, credsExpire);
    assert.equal(t.credentialsExpireAt, credsExpire);
  });

  it('keeps the token expiry when the credentials outlive it', async () => {
    const sign = createTokenSigner({
      hostname: HOST,
      region: 'us-east-1',
      ttlSeconds: 60,
      credentials: async () => ({
        accessKeyId: ACCESS_KEY,
        secretAccessKey: SECRET,
        expiration: new Date(Date.now() + 3_600_000),
      }),
    });
    const t = await sign('DbConnect');
    assert.equal(t.expiresAt, t.signedAt + 60_000);
    assert.equal(t.credentialsExpireAt, undefined);
  });

  it('refuses to sign with credentials that have already expired', async () => {
    const sign = createTokenSigner({
      hostname: HOST,
      region: 'us-east-1',
      credentials: async () => ({
        accessKeyId: ACCESS_KEY,
        secretAccessKey: SECRET,
        expiration: new Date(Date.now() - 1),
      }),
    });
    await assert.rejects(sign('DbConnect'), (err: unknown) => {
      assert.ok(err instanceof TokenSignError);
      assert.equal(err.code, 'ExpiredCredentials');
      assert.match(err.message, /expired/);
      return true;
    });
  });

  for (const ttl of [0, 604_801, 1.5, -5, Number.NaN]) {
    it(`rejects TTL ${ttl} with an Error, not a string`, () => {
      assert.throws(
        () =>
          createTokenSigner({
            hostname: HOST,
            region: 'us-east-1',
            credentials: staticCreds,
            ttlSeconds: ttl,
          }),
        (err: unknown) => {
          assert.ok(err instanceof Error);
          assert.match(err.message, /whole number of seconds from 1 to 604800/);
          return true;
        },
      );
    });
  }

  it('accepts the bounds 1 and 604800', async () => {
    assert.equal(validateTtlSeconds(1), 1);
    assert.equal(validateTtlSeconds(604_800), 604_800);
    const sign = createTokenSigner({
      hostname: HOST,
      region: 'us-east-1',
      credentials: staticCreds,
      ttlSeconds: 604_800,
    });
    const t = await sign('DbConnect');
    assert.equal(t.expiresAt - t.signedAt, 604_800_000);
  });

  it('rejects a region that contradicts the DSQL hostname, and malformed input', () => {
    assert.throws(
      () => createTokenSigner({ hostname: HOST, region: 'eu-west-1', credentials: staticCreds }),
      /does not match/,
    );
    assert.throws(
      () => createTokenSigner({ hostname: `https://${HOST}`, region: 'us-east-1', credentials: staticCreds }),
      /invalid DSQL hostname/,
    );
    assert.throws(
      () => createTokenSigner({ hostname: HOST, region: '', credentials: staticCreds }),
      /invalid AWS region/,
    );
  });

  it('accepts a PrivateLink hostname in the same region', async () => {
    const host = 'abcdefghijklmnopqrstuvwxyz.dsql-fnh4.us-east-1.on.aws';
    const sign = createTokenSigner({ hostname: host, region: 'us-east-1', credentials: staticCreds });
    const t = await sign('DbConnect');
    assert.ok(t.token.startsWith(`${host}/?Action=DbConnect&`));
  });

  it('turns non-Error throwables from the credential provider into safe Errors', async () => {
    const throwers: Array<[string, () => unknown]> = [
      ['string', () => `boom with secret ${SECRET}`],
      ['object', () => ({ accessKeyId: ACCESS_KEY, secretAccessKey: SECRET })],
      ['error', () => new Error(`The key AKIAIOSFODNN7EXAMPLE and ${SECRET} failed`)],
      ['undefined', () => undefined],
    ];
    for (const [label, make] of throwers) {
      const sign = createTokenSigner({
        hostname: HOST,
        region: 'us-east-1',
        credentials: async () => {
          throw make();
        },
      });
      await assert.rejects(sign('DbConnect'), (err: unknown) => {
        assert.ok(err instanceof Error, `${label}: is an Error`);
        assert.ok(err instanceof TokenSignError);
        assert.ok(!err.message.includes(SECRET), `${label}: no secret`);
        assert.ok(!err.message.includes('AKIAIOSFODNN7EXAMPLE'), `${label}: no key id`);
        assert.equal((err as Error & { cause?: unknown }).cause, undefined);
        return true;
      });
    }
  });

  it('rejects incomplete credentials', async () => {
    const sign = createTokenSigner({
      hostname: HOST,
      region: 'us-east-1',
      credentials: async () => ({ accessKeyId: '', secretAccessKey: '' }),
    });
    await assert.rejects(sign('DbConnect'), /incomplete credentials/);
  });
});

describe('parseTokenValidity', () => {
  it('reads X-Amz-Date and X-Amz-Expires', () => {
    const v = parseTokenValidity(
      'h/?Action=DbConnect&X-Amz-Date=20240102T030405Z&X-Amz-Expires=5&X-Amz-Signature=ab',
    );
    assert.equal(v.signedAt, Date.UTC(2024, 0, 2, 3, 4, 5));
    assert.equal(v.expiresAt, Date.UTC(2024, 0, 2, 3, 4, 10));
  });

  it('throws without quoting the token when the fields are missing', () => {
    assert.throws(
      () => parseTokenValidity('h/?Action=DbConnect&X-Amz-Signature=deadbeefsecret'),
      (err: unknown) => err instanceof TokenSignError && !err.message.includes('deadbeefsecret'),
    );
  });
});
