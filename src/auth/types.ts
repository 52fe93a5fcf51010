/** Authentication methods a local client can be asked to use (pg_hba.conf names). */
export type AuthMethod = 'scram-sha-256' | 'md5' | 'password' | 'trust';

export const AUTH_METHODS: readonly AuthMethod[] = ['scram-sha-256', 'md5', 'password', 'trust'];

/** A parsed SCRAM-SHA-256 verifier, as PostgreSQL stores it in pg_authid.rolpassword. */
export interface ScramVerifier {
  iterations: number;
  salt: Buffer;
  storedKey: Buffer;
  serverKey: Buffer;
}

/** One local user's secret from the auth file (PgBouncer auth_file format). */
export type AuthSecret =
  | { kind: 'scram'; verifier: ScramVerifier }
  /** `md5` + hex(md5(password || username)), as PostgreSQL stores md5 passwords. */
  | { kind: 'md5'; hash: string }
  | { kind: 'plain'; password: string };

/** user name -> secret */
export type AuthUsers = ReadonlyMap<string, AuthSecret>;
