/**
 * Server-side check of a DSQL IAM auth token for the local endpoint, written from the SigV4 spec and
 * independent of the AWS SDK on purpose: a signer bug cannot hide behind a verifier with the same
 * bug (the endpoint self-test cross-checks it against tokens from `@aws-sdk/dsql-signer`).
 *
 * A token is a presigned GET URL without its scheme (docs/dsql.md, "Sources"):
 *   <host>/?Action=DbConnect[Admin]&X-Amz-Algorithm=AWS4-HMAC-SHA256
 *     &X-Amz-Credential=<key>/<yyyymmdd>/<region>/dsql/aws4_request&X-Amz-Date=<yyyymmddThhmmssZ>
 *     &X-Amz-Expires=<s>[&X-Amz-Security-Token=..]&X-Amz-Signature=<hex>&X-Amz-SignedHeaders=host
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

export interface SigningCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
  /** Temporary credentials: DSQL rejects tokens signed with them once they expire. */
  expiration?: Date;
  /** The identity's ARN, which `sys.iam_session_user()` answers; default: a made-up one (identityArn). */
  arn?: string;
}

/**
 * The ARN of the identity behind `creds`: its own `arn`, or a made-up IAM user ARN that stays the same
 * for the same access key (a 12-digit account and a name derived from a hash of the key id, so the
 * key id itself does not show).
 */
export function identityArn(creds: SigningCredentials): string {
  if (creds.arn) return creds.arn;
  const h = createHash('sha256').update(creds.accessKeyId).digest();
  const account = String(h.readBigUInt64BE(0) % 10n ** 12n).padStart(12, '0');
  return `arn:aws:iam::${account}:user/dsql-local-${h.subarray(8, 12).toString('hex')}`;
}

export interface VerifyOptions {
  hostname: string;
  region: string;
  credentials: SigningCredentials | SigningCredentials[];
  nowMs: number;
  /** How far X-Amz-Date may lie in the future (clock skew tolerance). */
  maxSkewMs?: number;
}

export type VerifyResult =
  | { ok: true; action: string; accessKeyId: string; expiresAtMs: number }
  | { ok: false; action: string | null; reason: string };

const ALGORITHM = 'AWS4-HMAC-SHA256';
const SERVICE = 'dsql';
const MAX_EXPIRES_S = 604_800;
/** SHA-256 of the empty payload: the SDK's presign signs a GET with no body this way. */
const EMPTY_SHA256 = createHash('sha256').update('').digest('hex');

/** RFC 3986 encoding as SigV4 requires: everything but unreserved characters is %XX (upper-case). */
export function sigv4Encode(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

function parseAmzDate(s: string): number | null {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(s);
  if (!m) return null;
  const [, y, mo, d, h, mi, se] = m.map(Number) as number[];
  const ms = Date.UTC(y ?? 0, (mo ?? 1) - 1, d, h, mi, se);
  return Number.isNaN(ms) ? null : ms;
}

function hmac(key: Buffer | string, data: string): Buffer {
  return createHmac('sha256', key).update(data, 'utf8').digest();
}

export function signingKey(secret: string, date: string, region: string, service: string): Buffer {
  return hmac(hmac(hmac(hmac(`AWS4${secret}`, date), region), service), 'aws4_request');
}

function splitToken(token: string): { host: string; pairs: [string, string][] } | null {
  const q = token.indexOf('/?');
  if (q <= 0) return null;
  const pairs: [string, string][] = [];
  for (const part of token.slice(q + 2).split('&')) {
    const eq = part.indexOf('=');
    if (eq <= 0) return null;
    try {
      pairs.push([decodeURIComponent(part.slice(0, eq)), decodeURIComponent(part.slice(eq + 1))]);
    } catch {
      return null;
    }
  }
  return { host: token.slice(0, q), pairs };
}

export function verifyDsqlToken(token: string, opts: VerifyOptions): VerifyResult {
  const parsed = splitToken(token);
  if (!parsed) return { ok: false, action: null, reason: 'malformed token' };
  const params = new Map<string, string>();
  for (const [k, v] of parsed.pairs) {
    if (params.has(k)) return { ok: false, action: null, reason: `duplicate parameter ${k}` };
    params.set(k, v);
  }
  const action = params.get('Action') ?? null;
  const fail = (reason: string): VerifyResult => ({ ok: false, action, reason });

  // The token binds the cluster hostname: a token for another cluster (or another Region's peer) fails.
  if (parsed.host !== opts.hostname) return fail(`host mismatch: ${parsed.host}`);
  if (action !== 'DbConnect' && action !== 'DbConnectAdmin') return fail(`unknown action ${action}`);
  if (params.get('X-Amz-Algorithm') !== ALGORITHM) return fail('bad algorithm');
  if (params.get('X-Amz-SignedHeaders') !== 'host') return fail('signed headers must be exactly "host"');

  const amzDate = params.get('X-Amz-Date') ?? '';
  const signedAt = parseAmzDate(amzDate);
  if (signedAt === null) return fail('bad X-Amz-Date');

  const scope = (params.get('X-Amz-Credential') ?? '').split('/');
  if (scope.length !== 5) return fail('bad X-Amz-Credential');
  const [keyId, scopeDate, scopeRegion, scopeService, terminator] = scope as [
    string,
    string,
    string,
    string,
    string,
  ];
  if (scopeDate !== amzDate.slice(0, 8)) return fail('credential date does not match X-Amz-Date');
  // dsql-signer never derives the region from the hostname; a wrong AWS_REGION shows up here.
  if (scopeRegion !== opts.region) return fail(`region mismatch: ${scopeRegion}`);
  if (scopeService !== SERVICE || terminator !== 'aws4_request') return fail('bad credential scope');

  const creds = (Array.isArray(opts.credentials) ? opts.credentials : [opts.credentials]).find(
    (c) => c.accessKeyId === keyId,
  );
  if (!creds) return fail(`unknown access key ${keyId}`);
  const presentedSessionToken = params.get('X-Amz-Security-Token');
  if (presentedSessionToken !== creds.sessionToken) return fail('session token mismatch');

  const expiresRaw = params.get('X-Amz-Expires') ?? '';
  const expiresS = /^\d{1,7}$/.test(expiresRaw) ? Number(expiresRaw) : Number.NaN;
  if (!(expiresS >= 1 && expiresS <= MAX_EXPIRES_S)) return fail(`bad X-Amz-Expires ${expiresRaw}`);
  if (signedAt - opts.nowMs > (opts.maxSkewMs ?? 5 * 60_000)) return fail('token signed in the future');
  let expiresAtMs = signedAt + expiresS * 1000;
  // Effective expiry = min(token expiry, temporary credentials' expiry) (docs/dsql.md).
  if (creds.expiration) expiresAtMs = Math.min(expiresAtMs, creds.expiration.getTime());
  if (opts.nowMs >= expiresAtMs) return fail('token expired');

  const signature = params.get('X-Amz-Signature') ?? '';
  if (!/^[0-9a-f]{64}$/.test(signature)) return fail('bad X-Amz-Signature');

  const canonicalQuery = [...params]
    .filter(([k]) => k !== 'X-Amz-Signature')
    .map(([k, v]) => [sigv4Encode(k), sigv4Encode(v)] as const)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join('&');
  const canonicalRequest = [
    'GET',
    '/',
    canonicalQuery,
    `host:${opts.hostname}`,
    '',
    'host',
    EMPTY_SHA256,
  ].join('\n');
  const stringToSign = [
    ALGORITHM,
    amzDate,
    `${scopeDate}/${scopeRegion}/${SERVICE}/aws4_request`,
    createHash('sha256').update(canonicalRequest, 'utf8').digest('hex'),
  ].join('\n');
  const expected = hmac(signingKey(creds.secretAccessKey, scopeDate, scopeRegion, SERVICE), stringToSign);
  if (!timingSafeEqual(expected, Buffer.from(signature, 'hex'))) return fail('signature mismatch');

  return { ok: true, action, accessKeyId: keyId, expiresAtMs };
}
