/**
 * Signs Aurora DSQL IAM auth tokens: SigV4-presigned `GET https://<host>/?Action=DbConnect[Admin]` URLs
 * without the scheme, sent upstream as a cleartext password. Signing is local; resolving the
 * credentials may hit the network (IMDS, SSO, STS).
 *
 * Why this wraps `@aws-sdk/dsql-signer` instead of using it directly (see docs/dsql.md):
 * - it never derives the region from the hostname, it takes AWS_REGION or the profile's region and
 *   silently signs for the wrong one, so the region is always passed explicitly;
 * - its `profile` option is ignored, so credentials come from our own provider;
 * - it barely validates `expiresIn` (over 604800 it throws a string), so the TTL is checked here;
 * - it cannot tell when a token stops working: a token signed with temporary credentials dies with them,
 *   so the credentials are resolved here first and their expiration caps the token's.
 */
import { DsqlSigner } from '@aws-sdk/dsql-signer';
import { type AwsCredentialIdentityProvider, scrubSecrets } from './credentials.js';

export type TokenAction = 'DbConnect' | 'DbConnectAdmin';

export interface SignedToken {
  /** The token itself. A secret: never log it or any part of it. */
  token: string;
  /** When the token starts being valid: its X-Amz-Date, ms since the epoch (second resolution). */
  signedAt: number;
  /** When it stops working: min(X-Amz-Date + X-Amz-Expires, credentials' expiration), ms since the epoch. */
  expiresAt: number;
  /** The credentials' expiration when it is what capped `expiresAt`. */
  credentialsExpireAt?: number;
  /** The signing credentials' expiration, whenever they have one (temporary credentials). */
  credentialsExpiration?: number;
}

export type TokenSigner = (action: TokenAction) => Promise<SignedToken>;

export const DEFAULT_TOKEN_TTL_SECONDS = 900;
/** SigV4 presigned URLs last at most one week. */
export const MAX_TOKEN_TTL_SECONDS = 604_800;

/** DSQL's `admin` role needs a `DbConnectAdmin` token; every other role a `DbConnect` one. */
export function actionForRole(role: string): TokenAction {
  return role === 'admin' ? 'DbConnectAdmin' : 'DbConnect';
}

/** Why signing failed, with a message that is safe to log (no keys, secrets or token parts). */
export class TokenSignError extends Error {
  /** The SDK error's name or code (e.g. `CredentialsProviderError`), for classification. */
  readonly code: string;

  constructor(message: string, code = 'TokenSignError') {
    super(message);
    this.name = 'TokenSignError';
    this.code = code;
  }
}

export interface TokenSignerOptions {
  /** The real cluster hostname: the token binds it, also when the TCP connection goes elsewhere. */
  hostname: string;
  region: string;
  credentials: AwsCredentialIdentityProvider;
  /** Lifetime of each token in seconds, an integer in 1..604800; default 900. */
  ttlSeconds?: number;
  /** Wall clock, for tests; default Date.now. Only used to reject already-expired credentials. */
  now?: () => number;
}

/** Checks a token TTL the way the SDK does not: an integer number of seconds in 1..604800. */
export function validateTtlSeconds(ttl: unknown): number {
  if (typeof ttl !== 'number' || !Number.isInteger(ttl) || ttl < 1 || ttl > MAX_TOKEN_TTL_SECONDS) {
    throw new RangeError(
      `token TTL must be a whole number of seconds from 1 to ${MAX_TOKEN_TTL_SECONDS} (one week), got ${String(ttl)}`,
    );
  }
  return ttl;
}

const HOSTNAME_RE =
  /^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$/i;
const REGION_RE = /^[a-z]{2}(?:-[a-z0-9]+)+-\d+$/;
/** The regex AWS's own connectors use to find the region in a DSQL hostname (also PrivateLink labels). */
const DSQL_HOST_REGION_RE = /\.dsql[^.]*\.([^.]+)\.on\.aws$/;

/**
 * Returns a function that signs a fresh token for an action. Each call resolves the credentials again
 * (the SDK's provider is memoised and refreshes them itself) and signs with them.
 */
export function createTokenSigner(opts: TokenSignerOptions): TokenSigner {
  const ttlSeconds = validateTtlSeconds(opts.ttlSeconds ?? DEFAULT_TOKEN_TTL_SECONDS);
  const { hostname, region, credentials } = opts;
  const now = opts.now ?? Date.now;
  if (!HOSTNAME_RE.test(hostname)) {
    throw new Error(
      `invalid DSQL hostname ${JSON.stringify(hostname)}: expected a bare DNS name, no scheme or port`,
    );
  }
  if (!REGION_RE.test(region)) {
    throw new Error(`invalid AWS region ${JSON.stringify(region)} (expected something like us-east-1)`);
  }
  const hostRegion = DSQL_HOST_REGION_RE.exec(hostname.toLowerCase())?.[1];
  if (hostRegion !== undefined && hostRegion !== region) {
    // DSQL would reject every token: the signature scope names the region.
    throw new Error(
      `region ${region} does not match the region of DSQL hostname ${hostname} (${hostRegion})`,
    );
  }
  if (typeof credentials !== 'function') {
    throw new TypeError('credentials must be a credential provider function');
  }

  return async (action: TokenAction): Promise<SignedToken> => {
    if (action !== 'DbConnect' && action !== 'DbConnectAdmin') {
      throw new TokenSignError(`unknown token action ${JSON.stringify(String(action))}`);
    }
    let resolved: Awaited<ReturnType<AwsCredentialIdentityProvider>>;
    try {
      resolved = await credentials();
    } catch (err) {
      throw safeError(err, 'could not resolve AWS credentials');
    }
    if (
      typeof resolved?.accessKeyId !== 'string' ||
      resolved.accessKeyId === '' ||
      typeof resolved.secretAccessKey !== 'string' ||
      resolved.secretAccessKey === ''
    ) {
      throw new TokenSignError(
        'the AWS credential provider returned incomplete credentials',
        'InvalidCredentials',
      );
    }
    const credentialsExpireAt = resolved.expiration?.getTime();
    if (credentialsExpireAt !== undefined && !(credentialsExpireAt > now())) {
      throw new TokenSignError(
        `the AWS credentials expired at ${isoOrUnknown(credentialsExpireAt)}`,
        'ExpiredCredentials',
      );
    }

    let token: string;
    try {
      const signer = new DsqlSigner({ hostname, region, credentials: resolved, expiresIn: ttlSeconds });
      token =
        action === 'DbConnectAdmin'
          ? await signer.getDbConnectAdminAuthToken()
          : await signer.getDbConnectAuthToken();
    } catch (err) {
      throw safeError(err, 'could not sign the DSQL auth token');
    }
    if (typeof token !== 'string' || !token.startsWith(`${hostname}/?Action=${action}&`)) {
      throw new TokenSignError('the signer returned a token in an unexpected format');
    }

    const { signedAt, expiresAt: tokenExpiresAt } = parseTokenValidity(token);
    const expiration =
      credentialsExpireAt === undefined ? {} : { credentialsExpiration: credentialsExpireAt };
    if (credentialsExpireAt !== undefined && credentialsExpireAt < tokenExpiresAt) {
      return { token, signedAt, expiresAt: credentialsExpireAt, credentialsExpireAt, ...expiration };
    }
    return { token, signedAt, expiresAt: tokenExpiresAt, ...expiration };
  };
}

/**
 * Reads a token's validity from its own query string: X-Amz-Date (`YYYYMMDDTHHMMSSZ`, whole seconds,
 * so up to a second earlier than the moment it was signed) plus X-Amz-Expires seconds. Using the
 * token's own date rather than the local clock matters for short TTLs: a 5 s token signed at x.999 s
 * is already a second old. Throws a TokenSignError (that never quotes the token) when either is missing.
 */
export function parseTokenValidity(token: string): { signedAt: number; expiresAt: number } {
  const q = token.indexOf('?');
  const params = new URLSearchParams(q < 0 ? '' : token.slice(q + 1));
  const date = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(params.get('X-Amz-Date') ?? '');
  const expires = params.get('X-Amz-Expires') ?? '';
  if (!date || !/^\d+$/.test(expires)) {
    throw new TokenSignError('the signed token has no valid X-Amz-Date or X-Amz-Expires');
  }
  const [, y, mo, d, h, mi, s] = date.map(Number) as [number, number, number, number, number, number, number];
  const signedAt = Date.UTC(y, mo - 1, d, h, mi, s);
  return { signedAt, expiresAt: signedAt + Number(expires) * 1000 };
}

/** SDK code throws Errors, strings and plain objects; make all of them Errors whose text is safe to log. */
function safeError(err: unknown, context: string): TokenSignError {
  let name = 'Unknown';
  let text: string;
  if (err instanceof Error) {
    name = err.name;
    text = err.message;
  } else if (typeof err === 'string') {
    text = err;
  } else if (
    typeof err === 'object' &&
    err !== null &&
    typeof (err as { message?: unknown }).message === 'string'
  ) {
    text = (err as { message: string }).message;
    const n = (err as { name?: unknown }).name;
    if (typeof n === 'string') name = n;
  } else {
    // Never stringify arbitrary objects: they may hold credentials.
    text = `non-error value of type ${typeof err}`;
  }
  // The original is not kept as `cause`: SDK errors can carry request data, and this error gets logged.
  return new TokenSignError(`${context}: ${scrubSecrets(text) || 'unknown error'}`, name);
}

function isoOrUnknown(ms: number): string {
  return Number.isFinite(ms) ? new Date(ms).toISOString() : 'an unknown time';
}
