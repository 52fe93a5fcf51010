/** The helpers `dsql-proxy check` describes its steps with (src/check/describe.ts). */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { describeCredentialSource, humanDuration, maskAccessKeyId } from '../../src/check/describe.js';

test('describe helpers: masking, durations, sources', () => {
  assert.equal(maskAccessKeyId('AKIAIOSFODNN7EXAMPLE'), 'AKIA…MPLE');
  assert.equal(maskAccessKeyId('short'), '…');
  assert.equal(humanDuration(850), '850 ms');
  assert.equal(humanDuration(900_000), '15m');
  assert.equal(humanDuration(899_400), '14m 59s');
  assert.equal(humanDuration(7_500_000), '2h 5m');
  assert.equal(humanDuration(3 * 86_400_000 + 3_600_000), '3d 1h');
  assert.equal(
    describeCredentialSource({ $source: { CREDENTIALS_ENV_VARS: 'g' } }, undefined),
    'environment variables (AWS_ACCESS_KEY_ID)',
  );
  assert.equal(
    describeCredentialSource({ $source: { CREDENTIALS_PROFILE: 'n', CREDENTIALS_PROFILE_SSO: 'r' } }, 'dev'),
    'SSO, profile dev',
  );
  assert.equal(
    describeCredentialSource(
      {
        $source: {
          CREDENTIALS_PROFILE: 'n',
          CREDENTIALS_PROFILE_SOURCE_PROFILE: 'o',
          CREDENTIALS_STS_ASSUME_ROLE: 'i',
        },
      },
      undefined,
    ),
    'assumed role, profile default (source_profile)',
  );
  assert.equal(
    describeCredentialSource({ $source: { CREDENTIALS_HTTP: 'z' } }, undefined),
    'container credentials (ECS task role or EKS Pod Identity)',
  );
  assert.equal(describeCredentialSource({}, undefined), 'default chain');
});
