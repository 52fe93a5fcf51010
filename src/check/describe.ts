/**
 * Plain-words descriptions for `dsql-proxy check`: where credentials came from, a masked key id,
 * durations and certificate names. Nothing here ever returns a secret.
 */
import type { PeerCertificate } from 'node:tls';

/**
 * The SDK (@aws-sdk/credential-providers 3.11xx) marks resolved credentials with `$source`, a record
 * of feature ids such as CREDENTIALS_ENV_VARS. Listed from the most to the least specific: the first
 * match names the source, e.g. a profile that assumes a role carries both PROFILE and STS_ASSUME_ROLE.
 */
const SOURCES: ReadonlyArray<[string, (profile: string) => string]> = [
  ['CREDENTIALS_ENV_VARS_STS_WEB_ID_TOKEN', () => 'web identity token from the environment (IRSA)'],
  ['CREDENTIALS_PROFILE_SSO', (p) => `SSO, profile ${p}`],
  ['CREDENTIALS_PROFILE_SSO_LEGACY', (p) => `SSO (legacy), profile ${p}`],
  ['CREDENTIALS_SSO', () => 'SSO'],
  ['CREDENTIALS_SSO_LEGACY', () => 'SSO (legacy)'],
  ['CREDENTIALS_PROFILE_LOGIN', (p) => `aws login session, profile ${p}`],
  ['CREDENTIALS_LOGIN', () => 'aws login session'],
  ['CREDENTIALS_PROFILE_STS_WEB_ID_TOKEN', (p) => `web identity token, profile ${p}`],
  ['CREDENTIALS_PROFILE_PROCESS', (p) => `credential_process, profile ${p}`],
  ['CREDENTIALS_PROCESS', () => 'credential_process'],
  ['CREDENTIALS_PROFILE_SOURCE_PROFILE', (p) => `assumed role, profile ${p} (source_profile)`],
  ['CREDENTIALS_PROFILE_NAMED_PROVIDER', (p) => `assumed role, profile ${p} (credential_source)`],
  ['CREDENTIALS_STS_ASSUME_ROLE_WEB_ID', () => 'assumed role with web identity'],
  ['CREDENTIALS_STS_ASSUME_ROLE', () => 'assumed role (STS)'],
  ['CREDENTIALS_PROFILE', (p) => `shared credentials file, profile ${p}`],
  ['CREDENTIALS_ENV_VARS', () => 'environment variables (AWS_ACCESS_KEY_ID)'],
  ['CREDENTIALS_HTTP', () => 'container credentials (ECS task role or EKS Pod Identity)'],
  ['CREDENTIALS_IMDS', () => 'EC2 instance metadata (instance profile)'],
  ['CREDENTIALS_CODE', () => 'given in code'],
];

/** Where resolved credentials came from, in plain words; "default chain" when the SDK does not say. */
export function describeCredentialSource(credentials: object, profile: string | undefined): string {
  const marks = (credentials as { $source?: unknown }).$source;
  const keys = typeof marks === 'object' && marks !== null ? new Set(Object.keys(marks)) : new Set<string>();
  const name = profile ?? 'default';
  for (const [key, words] of SOURCES) if (keys.has(key)) return words(name);
  return 'default chain';
}

/** `AKIA…WXYZ`: at most the first and last four characters of an access key id. */
export function maskAccessKeyId(id: string): string {
  if (id.length < 12) return '…';
  return `${id.slice(0, 4)}…${id.slice(-4)}`;
}

/** A duration for people: `14m 58s`, `2h 5m`, `3d 4h`, `850 ms`. */
export function humanDuration(ms: number): string {
  if (ms < 0) return `-${humanDuration(-ms)}`;
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = Math.round(ms / 1000);
  const units: Array<[string, number]> = [
    ['d', 86_400],
    ['h', 3600],
    ['m', 60],
    ['s', 1],
  ];
  const parts: string[] = [];
  let rest = s;
  for (const [unit, size] of units) {
    const n = Math.floor(rest / size);
    rest -= n * size;
    if (n > 0) parts.push(`${n}${unit}`);
    if (parts.length === 2) break;
  }
  return parts.join(' ') || '0s';
}

/** `2025-01-02 03:04:05Z`: an instant without milliseconds. */
export function isoSeconds(ms: number): string {
  return new Date(ms)
    .toISOString()
    .replace('T', ' ')
    .replace(/\.\d{3}Z$/, 'Z');
}

/** `CN=…, O=…` from a certificate name (CN first; a field may hold several values). */
export function certName(name: PeerCertificate['subject'] | undefined): string {
  if (!name) return '(none)';
  const parts: string[] = [];
  for (const key of ['CN', 'O', 'OU', 'C']) {
    const v = (name as unknown as Record<string, string | string[] | undefined>)[key];
    if (v === undefined) continue;
    for (const one of Array.isArray(v) ? v : [v]) parts.push(`${key}=${one}`);
  }
  return parts.length > 0 ? parts.join(', ') : '(empty)';
}
