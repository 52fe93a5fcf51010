/**
 * Where dsql-proxy's AWS credentials come from, and how a failure to get them is explained to a person.
 *
 * The credentials are only ever used to sign IAM auth tokens locally (src/token/signer.ts); they never
 * leave the process and must never reach a log line or a client. Everything here that turns an SDK error
 * into text scrubs that text of anything that looks like a key.
 */
import { fromNodeProviderChain, fromTemporaryCredentials } from '@aws-sdk/credential-providers';
import type { DsqlSignerConfig } from '@aws-sdk/dsql-signer';
import type { Logger } from '../log.js';

type CredentialsOption = NonNullable<DsqlSignerConfig['credentials']>;
/** A function that resolves AWS credentials (the SDK's own type, taken from the signer's options). */
export type AwsCredentialIdentityProvider = Extract<CredentialsOption, (...args: never[]) => unknown>;
/** Resolved AWS credentials: access key id, secret, optional session token and expiration. */
export type AwsCredentialIdentity = Exclude<CredentialsOption, AwsCredentialIdentityProvider>;

export interface CredentialProviderOptions {
  /** A named profile from ~/.aws/config; without it the chain honours AWS_PROFILE, then `default`. */
  profile?: string;
  /** An IAM role ARN to assume with the chain's (or the profile's) credentials; its credentials sign the tokens. */
  assumeRole?: string;
  /** Longest wait for one credentials resolution (default DEFAULT_CREDENTIALS_TIMEOUT_MS). */
  timeoutMs?: number;
  /** Region of the STS endpoint used for assumeRole (default: the SDK's, e.g. AWS_REGION). */
  stsRegion?: string;
  logger: Logger;
}

/**
 * The default Node credential chain (environment, SSO/shared profile, web identity (IRSA), container
 * (ECS, EKS Pod Identity), EC2 instance metadata). The returned provider is memoised by the SDK: it
 * resolves again on its own when temporary credentials come close to their expiration.
 */
export function createCredentialProvider(opts: CredentialProviderOptions): AwsCredentialIdentityProvider {
  const log = opts.logger.child({ component: 'aws-credentials' });
  // The SDK logs the provider it tries at debug level and, without a logger, prints some warnings with
  // console.warn. Route both into our logger, as scrubbed strings only.
  const sdkLogger = {
    trace: () => {},
    debug: (...content: unknown[]) => log.debug(scrubSecrets(content.map(textOf).join(' '))),
    info: (...content: unknown[]) => log.debug(scrubSecrets(content.map(textOf).join(' '))),
    warn: (...content: unknown[]) => log.warn(scrubSecrets(content.map(textOf).join(' '))),
    error: (...content: unknown[]) => log.error(scrubSecrets(content.map(textOf).join(' '))),
  };
  const create = (): AwsCredentialIdentityProvider => {
    const chain = fromNodeProviderChain({
      ...(opts.profile === undefined ? {} : { profile: opts.profile }),
      logger: sdkLogger,
    });
    if (opts.assumeRole === undefined) return chain;
    // STS AssumeRole with the chain's credentials; the SDK refreshes the role's credentials before they expire.
    return fromTemporaryCredentials({
      params: { RoleArn: opts.assumeRole, RoleSessionName: 'dsql-proxy' },
      masterCredentials: chain,
      ...(opts.stsRegion === undefined ? {} : { clientConfig: { region: opts.stsRegion } }),
      logger: sdkLogger,
    });
  };
  return withCredentialsTimeout(create, opts.timeoutMs ?? DEFAULT_CREDENTIALS_TIMEOUT_MS);
}

export const DEFAULT_CREDENTIALS_TIMEOUT_MS = 10_000;

/**
 * Bounds each credentials resolution. The SDK's container-credentials request (ECS, EKS Pod Identity)
 * has no effective timeout (its requestTimeout only logs a warning), so an endpoint that accepts and
 * never answers held every signing, and every client waiting on one, forever. On a timeout the
 * provider is replaced by a fresh one: the SDK's memoised chain makes every later call wait on the
 * hung request, so keeping it would never recover.
 */
export function withCredentialsTimeout(
  create: () => AwsCredentialIdentityProvider,
  timeoutMs: number,
): AwsCredentialIdentityProvider {
  let provider = create();
  return ((...args: Parameters<AwsCredentialIdentityProvider>) => {
    const current = provider;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        if (provider === current) provider = create();
        reject(new Error(`the AWS credential provider did not answer within ${timeoutMs} ms`));
      }, timeoutMs);
      timer.unref();
    });
    return Promise.race([current(...args), timeout]).finally(() => clearTimeout(timer));
  }) as AwsCredentialIdentityProvider;
}

export interface CredentialErrorDescription {
  /** What went wrong, in one line, safe to log and to show a client. */
  message: string;
  /** What to do about it. */
  hint: string;
}

export interface DescribeContext {
  /** The profile the proxy was configured with, used in the `aws sso login --profile X` hint. */
  profile?: string;
}

const NO_CREDENTIALS_HINT =
  'dsql-proxy uses the AWS default credential chain. Provide credentials in one of these ways: ' +
  'AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (plus AWS_SESSION_TOKEN for temporary keys) in the environment; ' +
  'a profile from ~/.aws/config via --profile or AWS_PROFILE (for an SSO profile run `aws sso login --profile NAME` first); ' +
  'on EKS, IRSA (AWS_ROLE_ARN and AWS_WEB_IDENTITY_TOKEN_FILE) or EKS Pod Identity; ' +
  'on ECS or EC2, the task role or instance profile.';

const MAX_MESSAGE_LENGTH = 400;

/**
 * Turns whatever the credential chain or the signer threw into a message and a hint a person can act
 * on. Never returns key ids, secrets or session tokens, even when the error text contained them.
 */
export function describeCredentialError(err: unknown, ctx: DescribeContext = {}): CredentialErrorDescription {
  const name = errorName(err);
  const raw = errorText(err);
  const profile = ctx.profile ?? process.env.AWS_PROFILE;
  const profileArg = profile ? ` --profile ${scrubSecrets(profile)}` : '';

  if (
    /SSO session .*(has expired|is invalid)|SSO session token .*(not found|invalid)|Token is expired.*sso login/i.test(
      raw,
    )
  ) {
    return {
      message: 'the AWS SSO session has expired or is invalid',
      hint: `Run \`aws sso login${profileArg}\`; dsql-proxy picks up the new session without a restart.`,
    };
  }
  if (/re-authenticate using aws login|does not contain login_session/i.test(raw)) {
    return {
      message: 'the AWS console login session has expired or is missing',
      hint: `Run \`aws login${profileArg}\`; dsql-proxy picks up the new session without a restart.`,
    };
  }
  if (
    /ExpiredToken|ExpiredCredentials/i.test(name) ||
    /security token included in the request is expired|credentials? (have |has )?expired|ExpiredToken/i.test(
      raw,
    )
  ) {
    return {
      message: 'the AWS credentials have expired',
      hint:
        'Temporary credentials (session tokens, assumed roles, SSO) only last a limited time. ' +
        'Credentials given as environment variables cannot be refreshed by dsql-proxy: export new ones and restart it, ' +
        `or use a profile or role it can refresh itself (for SSO run \`aws sso login${profileArg}\`).`,
    };
  }
  const missingProfile =
    /Could not resolve credentials using profile: \[([^\]]*)\]/.exec(raw) ??
    /Profile (\S+) (?:was not found|could not be found)/.exec(raw);
  if (missingProfile) {
    return {
      message: `AWS profile "${scrubSecrets(missingProfile[1] ?? '')}" was not found or has no usable credentials`,
      hint:
        'Check the name given with --profile or AWS_PROFILE against ~/.aws/config and ~/.aws/credentials ' +
        '(or the files named by AWS_CONFIG_FILE and AWS_SHARED_CREDENTIALS_FILE).',
    };
  }
  if (
    /Could not load credentials from any providers|Unable to find environment variable credentials/i.test(raw)
  ) {
    return { message: 'no AWS credentials found', hint: NO_CREDENTIALS_HINT };
  }
  const text = scrubSecrets(raw).trim() || 'unknown error';
  return {
    message: `could not get AWS credentials or sign a token: ${truncate(text, MAX_MESSAGE_LENGTH)}`,
    hint:
      'Check the AWS credentials available to dsql-proxy (environment variables, --profile or AWS_PROFILE, ' +
      'SSO, IRSA or EKS Pod Identity, ECS task role, EC2 instance profile).',
  };
}

/**
 * Replaces anything that looks like an AWS secret with `[redacted]`: access key ids (AKIA…, ASIA… and the
 * other unique-id prefixes), the signing parameters of a presigned token, 40-character secret keys and
 * any long base64 run (session tokens, signatures).
 */
export function scrubSecrets(text: string): string {
  return (
    text
      .replace(/(X-Amz-(?:Credential|Security-Token|Signature)=)[^&\s"']*/gi, '$1[redacted]')
      .replace(
        /\b(?:AKIA|ASIA|AGPA|AIDA|AROA|AIPA|ANPA|ANVA|ABIA|ACCA|A3T[A-Z0-9])[A-Z0-9]{12,}/g,
        '[redacted]',
      )
      // 40 or more characters from the base64 alphabet in a row: secret keys are exactly 40, session
      // tokens and signatures longer. Ordinary error text has spaces, dots or colons well before that.
      .replace(/[A-Za-z0-9+/=_-]{40,}/g, '[redacted]')
  );
}

function errorName(err: unknown): string {
  if (typeof err !== 'object' || err === null) return '';
  const e = err as { name?: unknown; code?: unknown; Code?: unknown };
  return [e.name, e.code, e.Code].filter((v) => typeof v === 'string').join(' ');
}

function errorText(err: unknown): string {
  if (err instanceof Error) return err.message;
  if (typeof err === 'string') return err;
  if (typeof err === 'object' && err !== null && typeof (err as { message?: unknown }).message === 'string') {
    return (err as { message: string }).message;
  }
  // Never stringify arbitrary objects: they may be credentials.
  return err === undefined || err === null ? '' : `non-error value of type ${typeof err}`;
}

function textOf(v: unknown): string {
  if (typeof v === 'string') return v;
  if (v instanceof Error) return v.message;
  return `[${typeof v}]`;
}

function truncate(s: string, max: number): string {
  return s.length <= max ? s : `${s.slice(0, max - 1)}…`;
}
