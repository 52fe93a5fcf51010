/**
 * What Aurora DSQL allows, in one place: the session parameters it accepts, how long it keeps a
 * connection, and how TLS may start. Every layer that needs one of these facts imports it from here
 * (docs/dsql.md has the sources).
 */

/**
 * The configuration parameters DSQL lets a session set, in PostgreSQL's spelling, plus every
 * `enable_*` planner switch (DSQL_SETTING_PREFIX). They are accepted in the StartupMessage and in
 * `SET`, and the proxy restores them when it moves a session.
 *
 * Source: the "Supported session parameters" table in the Aurora DSQL user guide
 * (https://docs.aws.amazon.com/aurora-dsql/latest/userguide/accessing.html) and the allowlist of
 * AWS's pg_dump proxy for DSQL (awslabs/aurora-dsql-tools, pgdump-proxy/dsql_pgdump_proxy.py,
 * `ALLOWED_SET_PARAMS`).
 */
export const DSQL_SETTINGS = [
  'application_name',
  'client_encoding',
  'DateStyle',
  'IntervalStyle',
  'TimeZone',
  'search_path',
  'extra_float_digits',
] as const;

/** The prefix of the planner switches DSQL accepts (`enable_seqscan`, `enable_hashjoin`...). */
export const DSQL_SETTING_PREFIX = 'enable_';

/**
 * Two names DSQL accepts in `SET` (and set_config) but that are not known to work as startup
 * parameters (AWS's pg_dump proxy lets both through; role is contradictory in AWS's pages: docs/dsql.md):
 * `role`, and `disable_sync_create_index`, which plain PostgreSQL lacks.
 */
export const DSQL_SET_ONLY_SETTINGS = ['role', 'disable_sync_create_index'] as const;

/** DSQL_SETTINGS in lower case: PostgreSQL parameter names are case-insensitive. */
const SETTABLE_LOWER: ReadonlySet<string> = new Set(DSQL_SETTINGS.map((name) => name.toLowerCase()));
const SET_ONLY_LOWER: ReadonlySet<string> = new Set(DSQL_SET_ONLY_SETTINGS);

/** Whether DSQL accepts `name` as a startup parameter (a configuration parameter name, any case). */
export function isDsqlSettableParam(name: string): boolean {
  const lower = name.toLowerCase();
  return SETTABLE_LOWER.has(lower) || lower.startsWith(DSQL_SETTING_PREFIX);
}

/** Whether DSQL accepts `SET name` or `set_config('name', ...)` in a session (any case). */
export function isDsqlSessionParam(name: string): boolean {
  return isDsqlSettableParam(name) || SET_ONLY_LOWER.has(name.toLowerCase());
}

/**
 * What happens to startup parameters DSQL would refuse (--startup-params): `drop` forwards the
 * accepted ones and names the others in a NOTICE, `reject` refuses the login with 0A000, `pass`
 * forwards everything unchanged.
 */
export const STARTUP_PARAMS_MODES = ['drop', 'reject', 'pass'] as const;
export type StartupParamsMode = (typeof STARTUP_PARAMS_MODES)[number];

/** DSQL ends every connection after 60 minutes, with a bare close (CHAP_quotas.html; docs/dsql.md, "At the door"). */
export const DSQL_MAX_CONNECTION_MS = 60 * 60_000;

/**
 * How the upstream TLS connection starts, as libpq's `sslnegotiation`:
 * - `direct`: the TLS handshake right away, with ALPN `postgresql` (PostgreSQL 17+, and DSQL: AWS's
 *   own DSQL connectors use it), one round trip less per new connection;
 * - `postgres`: an SSLRequest first, then TLS after the server's `S` (every PostgreSQL version).
 */
export const SSL_NEGOTIATIONS = ['direct', 'postgres'] as const;
export type SslNegotiation = (typeof SSL_NEGOTIATIONS)[number];
export const DEFAULT_SSL_NEGOTIATION: SslNegotiation = 'direct';
