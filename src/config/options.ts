/**
 * The single list of options. Flags, environment variables, the YAML file, `--help` and the README
 * table all come from here: a key is `--key` on the command line, `key:` in the file and
 * `DSQL_PROXY_KEY` (upper snake case) in the environment.
 */

export interface OptionDoc {
  key: string;
  /** Environment variable, or '' when the option can only be set in the config file. */
  env: string;
  type: string;
  /** Default as a person would write it, or '' when there is none. */
  default: string;
  description: string;
}

export const ENV_PREFIX = 'DSQL_PROXY_';

export function envName(key: string): string {
  return ENV_PREFIX + key.toUpperCase().replace(/-/g, '_');
}

export const OPTION_DOCS: OptionDoc[] = [
  {
    key: 'endpoint',
    env: envName('endpoint'),
    type: 'hostname',
    default: '',
    description:
      'Aurora DSQL cluster hostname, e.g. <cluster-id>.dsql.us-east-1.on.aws (required). Used for TLS SNI, certificate check and the token. Repeat it (or give a comma-separated list, or a YAML list) for the endpoints of a multi-Region cluster: the first reachable one in order is used.',
  },
  {
    key: 'region',
    env: envName('region'),
    type: 'string',
    default: 'from the endpoint',
    description:
      'Region the token is signed for. Taken from each endpoint hostname; give it only for other hostnames (it must agree with every endpoint it applies to). Never taken from AWS_REGION.',
  },
  {
    key: 'listen',
    env: envName('listen'),
    type: 'HOST:PORT',
    default: '127.0.0.1:5432',
    description: 'Address local clients connect to. IPv6 in brackets: [::1]:5432.',
  },
  {
    key: 'connect-to',
    env: envName('connect-to'),
    type: '[ENDPOINT=]HOST:PORT',
    default: '<endpoint>:5432',
    description:
      'Address to dial instead of an endpoint (PrivateLink, tunnel). TLS server name and token still use the endpoint. ENDPOINT=HOST:PORT sets it for one endpoint and may be repeated; plain HOST:PORT only with a single endpoint.',
  },
  {
    key: 'ca-file',
    env: envName('ca-file'),
    type: 'path',
    default: 'the default root store only',
    description:
      'PEM file with extra CA certificates trusted for the endpoint, on top of the default roots (which include Amazon Root CA 1).',
  },
  {
    key: 'upstream-ssl-negotiation',
    env: envName('upstream-ssl-negotiation'),
    type: 'direct|postgres',
    default: 'direct',
    description:
      "How TLS to the endpoint starts, as libpq's sslnegotiation: direct (the TLS handshake at once, ALPN postgresql; what DSQL and PostgreSQL 17+ accept, one round trip less per connection) or postgres (an SSLRequest first; for --connect-to targets that need it).",
  },
  {
    key: 'token-ttl',
    env: envName('token-ttl'),
    type: 'seconds',
    default: '900',
    description: 'Lifetime of each IAM token, 1..604800 seconds; a duration such as 15m is accepted.',
  },
  {
    key: 'auth-file',
    env: envName('auth-file'),
    type: 'path',
    default: '',
    description:
      'Local users, one `"user" "secret"` per line; secret is a SCRAM-SHA-256 verifier, an md5 hash or plain text. Re-read on SIGHUP.',
  },
  {
    key: 'auth-method',
    env: envName('auth-method'),
    type: 'scram-sha-256|md5|password|trust',
    default: 'scram-sha-256 (trust without auth-file)',
    description:
      'How local clients authenticate. Without an auth file only trust is possible, and only on a loopback listen address.',
  },
  {
    key: 'profile',
    env: 'AWS_PROFILE',
    type: 'string',
    default: '',
    description: 'AWS profile for credentials; otherwise the default credential chain.',
  },
  {
    key: 'log-level',
    env: envName('log-level'),
    type: 'fatal|error|warn|info|debug|trace|silent',
    default: 'info',
    description: 'Log level of the JSON logs on stderr.',
  },
  {
    key: 'connect-timeout',
    env: envName('connect-timeout'),
    type: 'duration',
    default: '10s',
    description: 'Limit for TCP + TLS + login to the endpoint.',
  },
  {
    key: 'dns-cache-ttl',
    env: envName('dns-cache-ttl'),
    type: 'duration',
    default: '15s',
    description:
      "How long the looked-up address of each endpoint (or --connect-to host name) is reused, as PgBouncer's dns_max_ttl. It is looked up again in the background before then, and at once after a connection to it fails; if a lookup fails, the last address is kept. 0 looks it up for every new connection.",
  },
  {
    key: 'connect-rate',
    env: envName('connect-rate'),
    type: 'per second',
    default: '100',
    description:
      'New upstream connections per second per endpoint (token bucket; DSQL allows 100/s per cluster). Clients beyond it wait in a queue, in arrival order. 0 turns the limit off.',
  },
  {
    key: 'connect-burst',
    env: envName('connect-burst'),
    type: 'integer',
    default: 'the connect-rate',
    description:
      'Connections that may start at once before connect-rate applies. DSQL allows a burst of 1,000 per cluster, shared by every proxy and client of the cluster.',
  },
  {
    key: 'connect-queue-timeout',
    env: envName('connect-queue-timeout'),
    type: 'duration',
    default: '10s',
    description:
      "Longest wait in the connect-rate queue; then the client gets SQLSTATE 53400. Keep it below the client's own connect timeout. Waits over 1 s get a NOTICE.",
  },
  {
    key: 'login-timeout',
    env: envName('login-timeout'),
    type: 'duration',
    default: '60s',
    description:
      'Time a local client has to finish its startup and authentication (PostgreSQL authentication_timeout).',
  },
  {
    key: 'max-shutdown-delay',
    env: envName('max-shutdown-delay'),
    type: 'duration',
    default: '30s',
    description: 'On SIGTERM, how long open sessions may run before they are closed.',
  },
  {
    key: 'min-shutdown-delay',
    env: envName('min-shutdown-delay'),
    type: 'duration',
    default: '0',
    description:
      'On SIGTERM, keep accepting new clients this long (readiness already reports 503) before draining, so load balancers and sidecar peers catch up.',
  },
  {
    key: 'max-connections',
    env: envName('max-connections'),
    type: 'integer',
    default: '0 (no limit)',
    description: 'Most client connections at once; the next client gets SQLSTATE 53300 with a clear message.',
  },
  {
    key: 'max-upstream-age',
    env: envName('max-upstream-age'),
    type: 'duration',
    default: '50m',
    description:
      'Age past which a session moves to a fresh upstream connection at its next idle moment, before DSQL closes it at 60 minutes without an error. Keep it below 60m.',
  },
  {
    key: 'startup-params',
    env: envName('startup-params'),
    type: 'drop|reject|pass',
    default: 'drop',
    description:
      'Startup parameters DSQL does not accept (statement_timeout, options, ...): drop them, reject the client with the reason, or pass them on to DSQL.',
  },
  {
    key: 'compat',
    env: envName('compat'),
    type: 'on|off',
    default: 'on',
    description:
      'The compatibility layer: answer or carry out what DSQL refuses (session SETs such as statement_timeout, SET TRANSACTION, LOCK ... ACCESS SHARE, SQL PREPARE/EXECUTE, DISCARD) with PostgreSQL semantics; off passes every statement to DSQL unchanged.',
  },
  {
    key: 'statement-timeout',
    env: envName('statement-timeout'),
    type: 'duration',
    default: '0 (off)',
    description:
      "Default statement_timeout of every session (a client's SET or startup parameter overrides it): past it, the proxy cancels the statement on DSQL and the client gets 57014. Needs --compat on.",
  },
  {
    key: 'statement-timeout-grace',
    env: envName('statement-timeout-grace'),
    type: 'duration',
    default: '2s',
    description:
      'After a statement-timeout cancel, how long DSQL has to end the statement before the proxy closes that DSQL connection and ends the session with FATAL 08006.',
  },
  {
    key: 'idle-in-transaction-timeout',
    env: envName('idle-in-transaction-timeout'),
    type: 'duration',
    default: '0 (off)',
    description:
      'Default idle_in_transaction_session_timeout: a session idle inside a transaction this long is ended with FATAL 25P03, as PostgreSQL does. Needs --compat on.',
  },
  {
    key: 'client-idle-timeout',
    env: envName('client-idle-timeout'),
    type: 'duration',
    default: '0 (off)',
    description:
      "A client idle outside a transaction this long is closed with FATAL 57P05 (PostgreSQL 17's idle-session timeout). Needs --compat on.",
  },
  {
    key: 'conflict-retry',
    env: envName('conflict-retry'),
    type: 'off|statements|transactions',
    default: 'transactions',
    description:
      'Retry DSQL\'s 40001 conflicts for the client where provably safe (README, "Conflicts that never reach the client"): statements = requests outside a transaction block; transactions = also BEGIN ... COMMIT, replayed and compared byte for byte; off = every 40001 reaches the client.',
  },
  {
    key: 'conflict-retry-buffer',
    env: envName('conflict-retry-buffer'),
    type: 'bytes',
    default: '1048576',
    description:
      'Bytes of one request and its answer (or of one transaction and its answers) held back for a retry; past it the answer flows to the client and is not retried.',
  },
  {
    key: 'conflict-retry-attempts',
    env: envName('conflict-retry-attempts'),
    type: 'integer',
    default: '3',
    description:
      'Sends of a conflicting request in all (the first included), 1 to 100, with backoff from about 1 ms to 100 ms.',
  },
  {
    key: 'admin-listen',
    env: envName('admin-listen'),
    type: 'HOST:PORT',
    default: 'off',
    description:
      'HTTP listener for /startup, /livez, /readyz, /metrics (and POST /quitquitquit with --admin-quitquitquit). A bare port means 127.0.0.1:PORT. Requests with an Origin header, or with a Host that is not the admin address (on 0.0.0.0: not an IP address or localhost), get 403.',
  },
  {
    key: 'admin-quitquitquit',
    env: envName('admin-quitquitquit'),
    type: 'flag',
    default: 'false',
    description:
      'Let POST /quitquitquit on the admin port start the shutdown (e.g. at the end of a Kubernetes Job). Off: it gets 403. Anyone who can reach the admin port can then stop the proxy.',
  },
  {
    key: 'unix-socket',
    env: envName('unix-socket'),
    type: 'directory',
    default: 'off',
    description: 'Also listen on DIR/.s.PGSQL.<port> (the --listen port), so `psql -h DIR` works.',
  },
  {
    key: 'client-tls',
    env: envName('client-tls'),
    type: 'off|on',
    default: 'off',
    description:
      'TLS towards local clients. With on, SSLRequest is answered S and direct TLS (sslnegotiation=direct, ALPN postgresql) is accepted, with --client-cert/--client-key or a generated certificate for localhost, 127.0.0.1 and ::1.',
  },
  {
    key: 'client-cert',
    env: envName('client-cert'),
    type: 'path',
    default: 'generated',
    description: 'PEM certificate (chain) presented to local clients; give --client-key with it.',
  },
  {
    key: 'client-key',
    env: envName('client-key'),
    type: 'path',
    default: 'generated',
    description: 'PEM private key for --client-cert.',
  },
  {
    key: 'client-ca-out',
    env: envName('client-ca-out'),
    type: 'path',
    default: '',
    description:
      'Where to write the CA of the generated certificate, for clients that verify it (sslmode=verify-full sslrootcert=PATH).',
  },
  {
    key: 'client-tls-required',
    env: envName('client-tls-required'),
    type: 'flag',
    default: 'false',
    description: 'Refuse local clients that do not use TLS (28000). Needs --client-tls on.',
  },
  {
    key: 'pool-mode',
    env: envName('pool-mode'),
    type: 'none|session',
    default: 'none',
    description:
      'session: when a client leaves while idle, its DSQL connection is reset and handed to the next client of the same DSQL role and startup parameters (DSQL admits only 100 new connections per second).',
  },
  {
    key: 'pool-max-idle',
    env: envName('pool-max-idle'),
    type: 'integer',
    default: '100',
    description: 'Idle pooled connections kept per DSQL role and parameter set (--pool-mode session).',
  },
  {
    key: 'pool-max-idle-total',
    env: envName('pool-max-idle-total'),
    type: 'integer',
    default: '100',
    description:
      'Idle pooled connections kept in all, over every role and parameter set (application_name is one). When full, the connection released longest ago is closed to make room.',
  },
  {
    key: 'pool-idle-timeout',
    env: envName('pool-idle-timeout'),
    type: 'duration',
    default: '10m',
    description: 'A pooled connection unused this long is closed.',
  },
  {
    key: 'role-map',
    env: '',
    type: 'mapping',
    default: '{}',
    description:
      'Config file only: local user -> DSQL role. Users not listed use the role of the same name. Re-read on SIGHUP (for new sessions).',
  },
  {
    key: 'clusters',
    env: '',
    type: 'mapping',
    default: '',
    description:
      'Config file only: several clusters in one proxy, name -> { endpoint, connect-to, region, profile, assume-role, token-ttl, role-map, listen, ca-file }. Clients pick one by database name on the shared listener (psql -d NAME); a cluster with its own listen serves any database name there. Replaces the top-level endpoint.',
  },
  {
    key: 'config',
    env: envName('config'),
    type: 'path',
    default: '',
    description: 'YAML config file with the same keys. Flag or environment only.',
  },
];

/** Keys accepted on the command line and in the environment (all but the file-only ones). */
export const FLAG_KEYS: readonly string[] = OPTION_DOCS.filter((o) => o.env !== '').map((o) => o.key);

/** Keys accepted in the YAML file. */
export const FILE_KEYS: readonly string[] = OPTION_DOCS.filter((o) => o.key !== 'config').map((o) => o.key);

function wrap(text: string, width: number, indent: string): string {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/)) {
    if (line !== '' && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else {
      line = line === '' ? word : `${line} ${word}`;
    }
  }
  if (line !== '') lines.push(line);
  return lines.map((l) => indent + l).join('\n');
}

/** The commands; the start of --help, and what a mistyped subcommand prints. */
export const USAGE = `Usage:
  dsql-proxy [options]                  run the proxy
  dsql-proxy demo [--listen HOST:PORT]  try it without AWS: local DSQL-like endpoint + embedded PostgreSQL
  dsql-proxy check [--role R] [options] preflight: config, credentials, token, TLS, login, SELECT 1
  dsql-proxy hash-password [--user U]   read a password (stdin or prompt), print a SCRAM-SHA-256 verifier
  dsql-proxy health                     container health check: /startup and /livez on the admin listener
  dsql-proxy --help | --version
`;

/** `--help` output, built from OPTION_DOCS. */
export function helpText(): string {
  const out = [
    USAGE.trimEnd(),
    '',
    'Local PostgreSQL sidecar for Amazon Aurora DSQL: clients authenticate locally, the proxy connects',
    'over TLS and logs in with a fresh IAM token.',
    '',
    'Every option can also be set in the environment or in the YAML file given by --config, under the',
    'same key. Precedence: flag > environment > config file > default.',
    '',
    'Options:',
  ];
  for (const o of OPTION_DOCS) {
    if (o.env === '') continue;
    out.push(`  --${o.key} <${o.type}>`);
    const extra = [`env ${o.env}`];
    if (o.default !== '') extra.push(`default ${o.default}`);
    out.push(wrap(`${o.description} [${extra.join('; ')}]`, 92, '      '));
  }
  out.push('  -h, --help', '      Show this help and exit.', '', 'Config file only:');
  for (const o of OPTION_DOCS) {
    if (o.env !== '') continue;
    out.push(`  ${o.key}: <${o.type}>`, wrap(o.description, 92, '      '));
  }
  out.push('', 'Durations: whole seconds or a number with ms, s, m or h (90, 500ms, 90s, 5m, 1h).');
  return `${out.join('\n')}\n`;
}
