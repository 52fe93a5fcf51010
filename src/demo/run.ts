/**
 * `dsql-proxy demo`: the proxy in one command, without an AWS account.
 *
 * It starts an embedded PostgreSQL, the local DSQL-like endpoint in front of it (TLS with a generated
 * CA, SNI, SigV4 token verification against generated demo credentials, `admin` vs `DbConnect`), and
 * then the real proxy in front of that, configured through the same loadConfig/startProxy path as a
 * production start. Only the endpoint and its credentials are stand-ins.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createScramVerifier } from '../auth/scram.js';
import { ConfigError, formatHostPort, loadConfig, parseHostPort } from '../config/index.js';
import { createCa, issueCert } from '../core/certs.js';
import { type LocalStack, startLocalStack } from '../local-endpoint/stack.js';
import { createLogger } from '../log.js';
import { type RunningProxy, startProxy } from '../proxy.js';
import type { AwsCredentialIdentityProvider } from '../token/credentials.js';

/** A made-up cluster hostname in the public endpoint shape (26-character cluster id). */
export const DEMO_HOSTNAME = 'demo0000000000000000000000.dsql.us-east-1.on.aws';
const DEMO_REGION = 'us-east-1';
const DEMO_USERS = ['admin', 'app'] as const;
const DEFAULT_LISTEN = '127.0.0.1:5432';
const ALTERNATIVE_LISTEN = '127.0.0.1:6432';

const USAGE = `Usage: dsql-proxy demo [--listen HOST:PORT] [--data-dir DIR] [--log-level LEVEL]

Runs the proxy against a local DSQL-like endpoint and an embedded PostgreSQL: no AWS account needed.
  --listen HOST:PORT  where psql connects (default ${DEFAULT_LISTEN})
  --data-dir DIR      keep the database in DIR across runs (default: a temporary directory, removed at exit)
  --log-level LEVEL   level of the proxy's JSON logs on stderr (default info)
`;

interface DemoOptions {
  listen: string;
  dataDir?: string;
  logLevel: string;
}

class UsageError extends Error {}

function parseArgs(argv: string[]): DemoOptions | 'help' {
  const opts: DemoOptions = { listen: DEFAULT_LISTEN, logLevel: 'info' };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    if (arg === '--help' || arg === '-h') return 'help';
    const eq = arg.indexOf('=');
    const name = arg.startsWith('--') && eq > 0 ? arg.slice(0, eq) : arg;
    const value = name === arg ? argv[++i] : arg.slice(eq + 1);
    if (!['--listen', '--data-dir', '--log-level'].includes(name)) {
      throw new UsageError(`unexpected argument ${JSON.stringify(arg)}`);
    }
    if (value === undefined || value === '') throw new UsageError(`${name} needs a value`);
    if (name === '--listen') opts.listen = value;
    else if (name === '--data-dir') opts.dataDir = resolve(value);
    else opts.logLevel = value;
  }
  return opts;
}

/** Fails fast, before PostgreSQL starts, when the listen address is taken (a local PostgreSQL, often). */
function checkListenFree(listen: string): Promise<NodeJS.ErrnoException | null> {
  let addr: { host: string; port: number };
  try {
    addr = parseHostPort(listen, '--listen');
  } catch {
    return Promise.resolve(null); // loadConfig reports it with the usual message
  }
  if (addr.port === 0) return Promise.resolve(null);
  return new Promise((done) => {
    const probe = createServer();
    probe.once('error', (err: NodeJS.ErrnoException) => done(err));
    probe.listen({ host: addr.host, port: addr.port, exclusive: true }, () => probe.close(() => done(null)));
  });
}

function busyMessage(listen: string): string {
  return (
    `dsql-proxy demo: ${listen} is already in use (a local PostgreSQL?). ` +
    `Pass another address, e.g. --listen ${ALTERNATIVE_LISTEN}\n`
  );
}

export async function runDemo(argv: string[]): Promise<number> {
  const opts = parseCommandLine(argv);
  if (typeof opts === 'number') return opts;
  const busy = await checkListenFree(opts.listen);
  if (busy?.code === 'EADDRINUSE') {
    process.stderr.write(busyMessage(opts.listen));
    return 1;
  }

  // Temporary files: the CA the proxy trusts and the auth file. Without --data-dir, startPostgres
  // makes (and removes) a temporary database directory of its own.
  const running: DemoRun = { tmp: mkdtempSync(join(tmpdir(), 'dsql-proxy-demo-')) };
  try {
    const failed = await startDemo(opts, running);
    if (failed !== undefined) {
      await cleanUp(running);
      return failed;
    }
  } catch (err) {
    await cleanUp(running);
    throw err;
  }
  return untilSignal(running);
}

/** What a running demo owns, stopped and removed by cleanUp(). */
interface DemoRun {
  tmp: string;
  stack?: LocalStack;
  proxy?: RunningProxy;
}

async function cleanUp(run: DemoRun): Promise<void> {
  await run.proxy?.shutdown().catch(() => {});
  await run.stack?.stop().catch(() => {});
  rmSync(run.tmp, { recursive: true, force: true });
}

/** The options, or the exit code after --help (0) or a usage error (2). */
function parseCommandLine(argv: string[]): DemoOptions | number {
  let opts: DemoOptions | 'help';
  try {
    opts = parseArgs(argv);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`dsql-proxy demo: ${err.message}\n${USAGE}`);
    return 2;
  }
  if (opts === 'help') {
    process.stdout.write(USAGE);
    return 0;
  }
  return opts;
}

/**
 * Starts the stack (PostgreSQL and the endpoint), then the proxy in front of it, and prints how to
 * connect. Returns an exit code when it cannot start for a reason the user can fix (bad option,
 * address in use); throws otherwise. What it started is in `run` either way.
 */
async function startDemo(opts: DemoOptions, run: DemoRun): Promise<number | undefined> {
  const credentials = {
    accessKeyId: `AKIA${randomToken(16, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567')}`,
    secretAccessKey: randomBytes(30).toString('base64'),
  };
  const ca = await createCa('dsql-proxy demo CA');
  const cert = await issueCert(ca, { hostnames: [DEMO_HOSTNAME] });
  // The proxy's logger, once the configuration is loaded: the endpoint's refusals are logged with it.
  let demoLogger: ReturnType<typeof createLogger> | undefined;
  const stack = await startLocalStack({
    hostname: DEMO_HOSTNAME,
    region: DEMO_REGION,
    credentials,
    cert,
    caPem: ca.certPem,
    // Behind the door too: an application pointed at the demo meets what DSQL will refuse.
    rules: 'dsql',
    // One line per refusal (DSQL's error, never the SQL text), so what DSQL would refuse shows in
    // the demo's log as well as in the application.
    onRefusal: (r) =>
      demoLogger?.info(
        { event: 'endpoint_refusal', user: r.user, sqlstate: r.sqlstate },
        `the local endpoint refused a statement as DSQL would: ${r.message}`,
      ),
    postgresOptions: opts.dataDir === undefined ? {} : { dataDir: opts.dataDir },
  });
  run.stack = stack;

  const files = writeDemoFiles(run.tmp, ca.certPem);
  const config = loadDemoConfig(opts, stack.endpoint.port, files);
  if (typeof config === 'number') return config;
  const logger = createLogger({ level: config.logLevel });
  demoLogger = logger;
  for (const warning of config.warnings) logger.warn({ event: 'config_warning' }, warning);
  const provider: AwsCredentialIdentityProvider = async () => ({ ...credentials });
  try {
    run.proxy = await startProxy(config, logger, { credentials: provider });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw err;
    process.stderr.write(busyMessage(opts.listen));
    return 1;
  }
  printBanner(opts, stack, run.proxy, credentials.accessKeyId, files.password);
  return undefined;
}

/** The CA file the proxy trusts and an auth file giving both demo users one fresh password. */
function writeDemoFiles(tmp: string, caPem: string): { caFile: string; authFile: string; password: string } {
  const caFile = join(tmp, 'demo-ca.pem');
  writeFileSync(caFile, caPem);
  const password = randomToken(20, 'abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789');
  const authFile = join(tmp, 'users.txt');
  writeFileSync(authFile, DEMO_USERS.map((u) => `"${u}" "${createScramVerifier(password)}"\n`).join(''), {
    mode: 0o600,
  });
  return { caFile, authFile, password };
}

/** The proxy's configuration, through the production loader; exit code 2 after a ConfigError. */
function loadDemoConfig(
  opts: DemoOptions,
  endpointPort: number,
  files: { caFile: string; authFile: string },
): ReturnType<typeof loadConfig> | number {
  try {
    // The environment is left out on purpose: DSQL_PROXY_* settings for a real cluster must not leak in.
    return loadConfig(
      [
        '--endpoint',
        DEMO_HOSTNAME,
        '--connect-to',
        `127.0.0.1:${endpointPort}`,
        '--ca-file',
        files.caFile,
        '--listen',
        opts.listen,
        '--auth-file',
        files.authFile,
        '--log-level',
        opts.logLevel,
        '--max-shutdown-delay',
        '5s',
      ],
      {},
    );
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`dsql-proxy demo: ${err.message}\n`);
    return 2;
  }
}

function printBanner(
  opts: DemoOptions,
  stack: LocalStack,
  proxy: RunningProxy,
  accessKeyId: string,
  password: string,
): void {
  const host = proxy.address.address;
  const port = proxy.address.port;
  const kept = opts.dataDir !== undefined;
  const dataDir = stack.postgres.dataDir;
  const lines = [
    'dsql-proxy demo: running, no AWS account needed',
    `  database  embedded PostgreSQL, data in ${dataDir}${kept ? ' (kept)' : ' (removed at exit)'}`,
    `  endpoint  DSQL-like at 127.0.0.1:${stack.endpoint.port}: TLS with SNI ${DEMO_HOSTNAME},`,
    `            IAM tokens checked against demo credentials ${accessKeyId}, admin needs DbConnectAdmin`,
    '            The local endpoint refuses what DSQL refuses (docs/dsql.md)',
    `  proxy     ${formatHostPort({ host, port })}, users ${DEMO_USERS.join(' and ')} (SCRAM), password ${password}`,
    '',
    'Connect with:',
    ...DEMO_USERS.map((u) => `  PGPASSWORD=${password} psql -h ${host} -p ${port} -U ${u}`),
    '',
    'Ctrl-C to stop.',
    '',
  ];
  process.stdout.write(lines.join('\n'));
}

/** Runs until SIGINT, SIGTERM or SIGHUP, then cleans up (0); a second signal exits at once (1). */
function untilSignal(run: DemoRun): Promise<number> {
  return new Promise<number>((done) => {
    let stopping = false;
    const stop = (signal: NodeJS.Signals): void => {
      if (stopping) {
        process.stderr.write(`dsql-proxy demo: ${signal} again, exiting now\n`);
        rmSync(run.tmp, { recursive: true, force: true });
        process.exit(1);
      }
      stopping = true;
      process.stderr.write(`dsql-proxy demo: ${signal}, stopping\n`);
      cleanUp(run).then(
        () => done(0),
        () => done(1),
      );
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
    process.on('SIGHUP', stop);
  });
}

function randomToken(length: number, alphabet: string): string {
  return [...randomBytes(length)].map((b) => alphabet[b % alphabet.length]).join('');
}
