/**
 * One call for integration tests: a real PostgreSQL behind a fake DSQL endpoint, with freshly
 * generated (fake) IAM credentials that only this endpoint accepts.
 */
import { randomBytes } from 'node:crypto';
import { type DsqlEndpoint, type DsqlEndpointOptions, startDsqlEndpoint } from './dsql-endpoint.js';
import { startPostgres, type TestPostgres } from './postgres.js';
import type { TestCredentials } from './sigv4-verify.js';

export interface TestStack {
  postgres: TestPostgres;
  endpoint: DsqlEndpoint;
  credentials: TestCredentials;
  hostname: string;
  region: string;
  stop(): Promise<void>;
}

export type TestStackOptions = Partial<Omit<DsqlEndpointOptions, 'postgres'>> & {
  /** Reuse a running PostgreSQL (not stopped by stop()) instead of starting one. */
  postgres?: TestPostgres;
};

function randomString(len: number, alphabet: string): string {
  return [...randomBytes(len)].map((b) => alphabet[b % alphabet.length]).join('');
}

/** Static-key-shaped credentials: `AKIA` + 16 upper-case chars, 40-char secret. */
export function generateCredentials(sessionToken?: string): TestCredentials {
  return {
    accessKeyId: `AKIA${randomString(16, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567')}`,
    secretAccessKey: randomBytes(30).toString('base64'),
    ...(sessionToken ? { sessionToken } : {}),
  };
}

/** `<26-char cluster id>.dsql.<region>.on.aws`, the public endpoint shape. */
export function clusterHostname(region = 'us-east-1'): string {
  return `${randomString(26, 'abcdefghijklmnopqrstuvwxyz')}.dsql.${region}.on.aws`;
}

export async function startTestStack(opts: TestStackOptions = {}): Promise<TestStack> {
  const region = opts.region ?? 'us-east-1';
  const hostname = opts.hostname ?? clusterHostname(region);
  const credentials = opts.credentials ?? generateCredentials();
  const ownPostgres = !opts.postgres;
  const postgres = opts.postgres ?? (await startPostgres());
  let endpoint: DsqlEndpoint;
  try {
    endpoint = await startDsqlEndpoint({ ...opts, hostname, region, credentials, postgres });
  } catch (err) {
    if (ownPostgres) await postgres.stop();
    throw err;
  }
  let stopping: Promise<void> | undefined;
  return {
    postgres,
    endpoint,
    credentials: Array.isArray(credentials) ? (credentials[0] as TestCredentials) : credentials,
    hostname,
    region,
    stop() {
      stopping ??= (async () => {
        await endpoint.close();
        if (ownPostgres) await postgres.stop();
      })();
      return stopping;
    },
  };
}
