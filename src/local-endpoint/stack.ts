/**
 * One call for a DSQL-like stack: an embedded PostgreSQL behind the local endpoint, with freshly
 * generated (fake) IAM credentials that only this endpoint accepts. Used by the integration tests
 * and by `dsql-proxy demo`.
 */
import { randomBytes } from 'node:crypto';
import { type LocalPostgres, type StartPostgresOptions, startPostgres } from './embedded-postgres.js';
import { type DsqlEndpoint, type DsqlEndpointOptions, startDsqlEndpoint } from './endpoint.js';
import type { SigningCredentials } from './sigv4-verify.js';

export interface LocalStack {
  postgres: LocalPostgres;
  endpoint: DsqlEndpoint;
  credentials: SigningCredentials;
  hostname: string;
  region: string;
  stop(): Promise<void>;
}

export type LocalStackOptions = Partial<Omit<DsqlEndpointOptions, 'postgres'>> & {
  /** Reuse a running PostgreSQL (not stopped by stop()) instead of starting one. */
  postgres?: LocalPostgres;
  /** Options for the PostgreSQL this call starts (ignored with `postgres`). */
  postgresOptions?: StartPostgresOptions;
};

function randomString(len: number, alphabet: string): string {
  return [...randomBytes(len)].map((b) => alphabet[b % alphabet.length]).join('');
}

/** Static-key-shaped credentials: `AKIA` + 16 upper-case chars, 40-char secret. */
export function generateCredentials(sessionToken?: string): SigningCredentials {
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

export async function startLocalStack(opts: LocalStackOptions = {}): Promise<LocalStack> {
  const { postgres: given, postgresOptions, ...endpointOpts } = opts;
  const region = opts.region ?? 'us-east-1';
  const hostname = opts.hostname ?? clusterHostname(region);
  const credentials = opts.credentials ?? generateCredentials();
  const postgres = given ?? (await startPostgres(postgresOptions));
  let endpoint: DsqlEndpoint;
  try {
    endpoint = await startDsqlEndpoint({ ...endpointOpts, hostname, region, credentials, postgres });
  } catch (err) {
    if (!given) await postgres.stop();
    throw err;
  }
  let stopping: Promise<void> | undefined;
  return {
    postgres,
    endpoint,
    credentials: Array.isArray(credentials) ? (credentials[0] as SigningCredentials) : credentials,
    hostname,
    region,
    stop() {
      stopping ??= (async () => {
        await endpoint.close();
        if (!given) await postgres.stop();
      })();
      return stopping;
    },
  };
}
