/**
 * `npm run bench`: dsql-proxy against direct TLS to PostgreSQL and against PgBouncer, on this machine.
 * Not part of the tests. See docs/benchmarks.md for the method; `--help` for the options.
 *
 * Setup: an embedded PostgreSQL (src/local-endpoint/embedded-postgres.ts) with ssl=on and a server
 * certificate for a DSQL-like hostname; the real proxy (`node dist/cli.js`) dials it directly with
 * TLS (SNI and verify-full against that hostname, token signing with static fake credentials that
 * PostgreSQL's `trust` ignores); PgBouncer (if installed) in session mode with server TLS.
 * Every figure is measured interleaved (direct, proxy, pgbouncer, direct, proxy, ...) so that the
 * noise of a shared machine hits all of them alike, and reported as median (min–max) and as ratios.
 */

import {
  chmodSync,
  chownSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { createCa, issueCert } from '../../src/core/certs.js';
import { freePort, type LocalPostgres, startPostgres } from '../../src/local-endpoint/embedded-postgres.js';
import { runConflictBench } from './conflicts.js';
import {
  benchProxyArgs,
  benchProxyEnv,
  cpuSeconds,
  mustRun,
  psqlSteps,
  psqlTimingsMs,
  rssBytes,
  run,
  type Server,
  sleep,
  startServer,
  threadCpuSeconds,
  waitReady,
  which,
} from './proc.js';
import { type ProfileResult, runProfile } from './profile.js';
import {
  ANALYSIS_MARKER,
  BASELINE,
  type BenchReport,
  emptyMeasurements,
  PROXY_FRESH,
  renderMarkdown,
  renderSvg,
  renderTable,
} from './report.js';
import { percentile } from './stats.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const ENDPOINT = 'benchbenchbenchbenchbench0.dsql.us-east-1.on.aws';
const USER = 'bench';
/** How the proxy's upstream TLS starts in every run (its default). */
const PROXY_UPSTREAM_TLS = 'direct';
const PASSWORD = 'bench-password';

interface Options {
  quick: boolean;
  reps: number;
  seconds: number;
  clients: number[];
  idleClients: number;
  bulkMb: number;
  scale: number;
  profile: boolean;
  write: boolean;
  cli: string;
  /** Another build's CLI, run as a second `proxy` target in the pgbench -S runs (--baseline-cli). */
  baselineCli?: string;
  baselineLabel?: string;
  /** Extra flags for the baseline only (--baseline-args), e.g. `--compat off` with this build's CLI. */
  baselineArgs: string[];
  /** Run the conflict-heavy workload, retry off vs on, at the end (scripts/bench/conflicts.ts). */
  conflicts: boolean;
}

const HELP = `npm run bench [-- options]

  --quick            short smoke run (~1-2 min): 2 repetitions, 2 s runs, small COPY, 200 idle clients;
                     writes nothing under docs/ unless --write is given
  --reps N           repetitions of every measurement (default 5)
  --seconds S        duration of each pgbench run (default 5)
  --clients 1,16,64  client counts for the pgbench -S throughput runs
  --idle N           idle clients for the memory measurement (default 1000)
  --bulk-mb N        size of the COPY data set in MB (default 150)
  --scale N          pgbench scale factor (default 1)
  --no-profile       skip the --cpu-prof run of the proxy
  --write            write docs/benchmarks.md and docs/benchmarks.svg (default for a full run)
  --no-write         do not
  --cli PATH         the proxy's CLI (default dist/cli.js; run \`npm run build\` first)
  --baseline-cli PATH
                     another build's CLI (e.g. from \`npm run bench:baseline -- <commit>\`), run with the
                     proxy's flags beside it in the pgbench -S runs: tps and CPU per transaction of both
                     and their per-repetition ratio (new÷baseline)
  --baseline-label TEXT
                     the baseline's name in the report, e.g. its commit (default: its path)
  --conflicts / --no-conflicts
                     at the end, a conflict-heavy workload (16 clients on 4 hot rows) through the local
                     endpoint with DSQL's rules, conflict retry off vs on: errors seen by clients,
                     commits/s, p50/p99 (default: on in a full run, off with --quick; alone:
                     npm run bench:conflicts)
  --baseline-args "FLAGS"
                     extra proxy flags for the baseline only, e.g. \`--baseline-cli dist/cli.js
                     --baseline-args "--compat off"\` to compare a feature on (proxy) and off (baseline)
  --render FILE      only re-render docs/benchmarks.{md,svg} from the JSON a run saved

Needs: npm ci && npm run build; pgbench and psql (apt-get install -y postgresql-client);
optional: pgbouncer (apt-get install -y pgbouncer) — its rows are skipped when it is missing.`;

function parseArgs(argv: string[]): Options {
  const quick = argv.includes('--quick');
  const o: Options = {
    quick,
    reps: quick ? 2 : 5,
    seconds: quick ? 3 : 5,
    clients: [1, 16, 64],
    idleClients: quick ? 200 : 1000,
    bulkMb: quick ? 30 : 150,
    // Scale 1 (100,000 accounts, 13 MB): a new PostgreSQL backend maps the shared-buffer pages it touches
    // one page fault at a time, and at scale 10 that ramp lasted the whole of a 5 s run, so targets that
    // open a backend per client (direct, the proxy without pooling) were measured cold against warm
    // pooled ones. See docs/benchmarks.md, "Cold and warm backends".
    scale: 1,
    profile: !quick,
    write: !quick,
    cli: join(ROOT, 'dist/cli.js'),
    baselineArgs: [],
    conflicts: !quick,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    switch (a) {
      case '--quick':
        break;
      case '--reps':
        o.reps = Number(next());
        break;
      case '--seconds':
        o.seconds = Number(next());
        break;
      case '--clients':
        o.clients = next().split(',').map(Number);
        break;
      case '--idle':
        o.idleClients = Number(next());
        break;
      case '--bulk-mb':
        o.bulkMb = Number(next());
        break;
      case '--scale':
        o.scale = Number(next());
        break;
      case '--profile':
        o.profile = true;
        break;
      case '--no-profile':
        o.profile = false;
        break;
      case '--write':
        o.write = true;
        break;
      case '--no-write':
        o.write = false;
        break;
      case '--cli':
        o.cli = resolve(next());
        break;
      case '--baseline-cli':
        o.baselineCli = resolve(next());
        break;
      case '--baseline-label':
        o.baselineLabel = next();
        break;
      case '--conflicts':
        o.conflicts = true;
        break;
      case '--no-conflicts':
        o.conflicts = false;
        break;
      case '--baseline-args':
        o.baselineArgs = next().split(/\s+/).filter(Boolean);
        break;
      case '--help':
      case '-h':
        console.log(HELP);
        process.exit(0);
        break;
      default:
        throw new Error(`unknown option ${a}\n${HELP}`);
    }
  }
  if (o.baselineLabel !== undefined && o.baselineCli === undefined)
    throw new Error('--baseline-label needs --baseline-cli');
  return o;
}

/** One way of reaching PostgreSQL that pgbench/psql can be pointed at. */
interface Target {
  name: string;
  port: number;
  /** libpq sslmode the client uses on its own leg. */
  sslmode: 'require' | 'disable';
  password?: string;
  /** The middle process whose CPU time and memory are read (none for direct). */
  server?: Server;
}

function log(msg: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
}

/** libpq environment with nothing inherited from the machine's PG* variables. */
function libpqEnv(t: Target, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('PG')) env[k] = v;
  Object.assign(env, {
    PGHOST: '127.0.0.1',
    PGPORT: String(t.port),
    PGUSER: USER,
    PGDATABASE: 'postgres',
    PGSSLMODE: t.sslmode,
    PGPASSFILE: '/nonexistent/dsql-proxy-bench-pgpass',
    PGCONNECT_TIMEOUT: '20',
    PGAPPNAME: 'dsql-proxy-bench',
    LC_ALL: 'C',
    ...extra,
  });
  if (t.password !== undefined) env.PGPASSWORD = t.password;
  return env;
}

interface PgbenchResult {
  tps: number;
  txns: number;
  /** Per-transaction latencies in µs, when a log was requested. */
  latenciesUs?: number[];
  cpuSec?: number;
  /** CPU seconds of the middle process's main thread alone (the JavaScript event loop for the proxy). */
  mainCpuSec?: number;
}

async function pgbench(
  t: Target,
  args: string[],
  seconds: number,
  opts: { logDir?: string } = {},
): Promise<PgbenchResult> {
  const cpu0 = t.server ? cpuSeconds(t.server.pid) : 0;
  const main0 = t.server ? threadCpuSeconds(t.server.pid, t.server.pid) : 0;
  const logArgs = opts.logDir ? ['-l', `--log-prefix=${join(opts.logDir, 'txlog')}`] : [];
  const r = await mustRun('pgbench', ['-n', '-T', String(seconds), ...logArgs, ...args], {
    env: libpqEnv(t),
    cwd: opts.logDir ?? tmpdir(),
    timeoutMs: (seconds + 60) * 1000,
  });
  const cpu1 = t.server ? cpuSeconds(t.server.pid) : 0;
  const main1 = t.server ? threadCpuSeconds(t.server.pid, t.server.pid) : 0;
  const tps = /tps = ([\d.]+)/.exec(r.stdout);
  const txns = /number of transactions actually processed: (\d+)/.exec(r.stdout);
  const failed = /number of failed transactions: (\d+)/.exec(r.stdout);
  if (!txns || (!tps && Number(txns[1]) > 0)) {
    throw new Error(`unexpected pgbench output for ${t.name}:\n${r.stdout}\n${r.stderr}`);
  }
  if (failed && Number(failed[1]) > 0)
    throw new Error(`pgbench against ${t.name}: ${failed[1]} failed transactions`);
  const out: PgbenchResult = { tps: tps ? Number(tps[1]) : 0, txns: Number(txns[1]) };
  if (t.server) {
    out.cpuSec = cpu1 - cpu0;
    out.mainCpuSec = main1 - main0;
  }
  if (opts.logDir) {
    const lat: number[] = [];
    for (const f of readdirSync(opts.logDir)) {
      if (!f.startsWith('txlog')) continue;
      // client_id transaction_no time script_no time_epoch time_us: field 3 is the latency in µs.
      for (const line of readFileSync(join(opts.logDir, f), 'utf8').split('\n')) {
        const field = line.split(' ')[2];
        if (field !== undefined) lat.push(Number(field));
      }
      rmSync(join(opts.logDir, f));
    }
    out.latenciesUs = lat;
  }
  return out;
}

function machine(): BenchReport['machine'] {
  const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
  const model = /^model name\s*:\s*(.*)$/m.exec(cpuinfo)?.[1] ?? cpus()[0]?.model ?? 'unknown';
  return {
    nproc: cpus().length,
    cpu: model.trim(),
    memGiB: totalmem() / 2 ** 30,
    node: process.version,
    kernel: readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim(),
  };
}

function writeDocs(report: BenchReport): void {
  const mdPath = join(ROOT, 'docs/benchmarks.md');
  let analysis = '';
  try {
    const prev = readFileSync(mdPath, 'utf8');
    const at = prev.indexOf(ANALYSIS_MARKER);
    if (at >= 0) analysis = prev.slice(at);
  } catch {
    // first run
  }
  writeFileSync(mdPath, renderMarkdown(report) + (analysis ? `\n${analysis}` : ''));
  writeFileSync(join(ROOT, 'docs/benchmarks.svg'), renderSvg(report));
  log('wrote docs/benchmarks.md and docs/benchmarks.svg');
}

/** What the machine and the build offer: PgBouncer or not, the proxy's --pool-mode or not. */
interface Preflight {
  pgbouncerBin: string | undefined;
  hasPoolMode: boolean;
  /** Lines for the report about rows that are skipped. */
  notes: string[];
}

async function preflight(o: Options): Promise<Preflight> {
  for (const tool of ['pgbench', 'psql']) {
    if (!which(tool)) throw new Error(`${tool} not found: apt-get install -y postgresql-client`);
  }
  statSync(o.cli); // fails clearly when the build is missing
  const pgbouncerBin = which('pgbouncer');
  const notes: string[] = [];
  if (!pgbouncerBin)
    notes.push('PgBouncer is not installed (apt-get install -y pgbouncer): its rows are skipped.');
  const helpText = (await run(process.execPath, [o.cli, '--help'])).stdout;
  const hasPoolMode = helpText.includes('--pool-mode');
  if (!hasPoolMode)
    notes.push('The proxy has no --pool-mode flag yet: the "proxy --pool-mode session" row is skipped.');
  if (o.baselineCli) await checkBaseline(o.baselineCli);
  return { pgbouncerBin, hasPoolMode, notes };
}

/** The flags the baseline is started with: the `proxy` target's (benchProxyArgs and --auth-method). */
const BASELINE_FLAGS = [
  ...benchProxyArgs({ endpoint: '', connectTo: '', caFile: '', port: 0, negotiation: 'direct', extra: [] }),
  '--auth-method',
].filter((a) => a.startsWith('--'));

/** Fails before PostgreSQL starts when the baseline build is missing or lacks one of the proxy's flags. */
async function checkBaseline(cli: string): Promise<void> {
  statSync(cli);
  const help = await run(process.execPath, [cli, '--help']);
  const missing = BASELINE_FLAGS.filter((f) => !help.stdout.includes(f));
  if (help.code !== 0 || missing.length) {
    throw new Error(
      help.code !== 0
        ? `the baseline CLI ${cli} exited ${help.code} on --help: is it a built dist/cli.js (npm run bench:baseline)?`
        : `the baseline CLI ${cli} has no ${missing.join(', ')}: the bench starts it with the same flags as ` +
            'the proxy; pick a later baseline commit',
    );
  }
}

/** One run's state: what cleanup() stops and removes. */
interface BenchRun {
  o: Options;
  /** A directory the `postgres` OS user can reach when we are root (PostgreSQL and PgBouncer run as it). */
  work: string;
  /** The middle processes started so far, stopped in reverse order. */
  servers: Server[];
  postgres?: LocalPostgres;
}

async function cleanup(r: BenchRun): Promise<void> {
  for (const s of r.servers.reverse()) await s.stop().catch(() => {});
  await r.postgres?.stop().catch(() => {});
  rmSync(r.work, { recursive: true, force: true });
}

/** PostgreSQL as the bench set it up: TLS under the DSQL-like name, pgbench's tables loaded. */
interface Upstream {
  postgres: LocalPostgres;
  pgPort: number;
  caFile: string;
  pgInfo: { version: string; ssl: string; max: string };
  direct: Target;
}

async function setupPostgres(r: BenchRun): Promise<Upstream> {
  const { o, work } = r;
  // --- PKI: a CA and a certificate for the DSQL-like hostname (and 127.0.0.1 for direct clients).
  const ca = await createCa('dsql-proxy bench CA');
  const cert = await issueCert(ca, { hostnames: [ENDPOINT], ips: ['127.0.0.1'] });
  const caFile = join(work, 'ca.pem');
  writeFileSync(caFile, ca.certPem, { mode: 0o644 });

  // --- PostgreSQL: init, then ssl=on + room for 1,000+ backends, restart.
  const dataDir = join(work, 'pgdata');
  log('starting PostgreSQL (initdb)');
  r.postgres = await startPostgres({ dataDir });
  const owner = statSync(dataDir);
  for (const [name, body] of [
    ['server.crt', cert.certPem],
    ['server.key', cert.keyPem],
  ] as const) {
    const p = join(dataDir, name);
    writeFileSync(p, body, { mode: 0o600 });
    chownSync(p, owner.uid, owner.gid);
  }
  const settings: Record<string, string> = {
    ssl: 'on',
    ssl_cert_file: 'server.crt',
    ssl_key_file: 'server.key',
    // Room for N idle proxy clients while PgBouncer still holds idle server connections from earlier runs.
    max_connections: String(Math.max(1200, o.idleClients + 500)),
    shared_buffers: '512MB',
    max_wal_size: '4GB',
  };
  for (const [k, v] of Object.entries(settings)) await r.postgres.query(`ALTER SYSTEM SET ${k} = '${v}'`);
  await r.postgres.query(`CREATE ROLE ${USER} WITH LOGIN SUPERUSER PASSWORD '${PASSWORD}'`);
  await r.postgres.stop();
  const postgres = await startPostgres({ dataDir });
  r.postgres = postgres;
  const pgPort = postgres.port;
  const [pgInfo] = await postgres.query<{ version: string; ssl: string; max: string }>(
    "SELECT version() AS version, current_setting('ssl') AS ssl, current_setting('max_connections') AS max",
  );
  if (pgInfo?.ssl !== 'on') throw new Error('PostgreSQL did not come up with ssl=on');
  log(`PostgreSQL on 127.0.0.1:${pgPort}, ssl=${pgInfo.ssl}, max_connections=${pgInfo.max}`);

  const direct: Target = { name: 'direct', port: pgPort, sslmode: 'require' };
  log(`pgbench -i -s ${o.scale}`);
  await mustRun('pgbench', ['-i', '-q', '-s', String(o.scale)], { env: libpqEnv(direct), cwd: work });
  await postgres.query('VACUUM ANALYZE');
  return { postgres, pgPort, caFile, pgInfo, direct };
}

/** Starts the proxy (real CLI, TLS straight to PostgreSQL under the DSQL-like name, token signing on). */
type StartProxy = (name: string, extra: string[], nodeFlags?: string[], cli?: string) => Promise<Target>;

function proxyStarter(r: BenchRun, up: Upstream): StartProxy {
  const proxyEnv = benchProxyEnv();
  const proxyArgs = (port: number, extra: string[]): string[] =>
    benchProxyArgs({
      endpoint: ENDPOINT,
      connectTo: `127.0.0.1:${up.pgPort}`,
      caFile: up.caFile,
      port,
      // The default, named so that the report can say how the proxy's upstream TLS starts.
      negotiation: PROXY_UPSTREAM_TLS,
      extra,
    });
  return async (name, extra, nodeFlags = [], cli = r.o.cli) => {
    const port = await freePort();
    const server = startServer(
      name,
      process.execPath,
      [...nodeFlags, cli, ...proxyArgs(port, extra)],
      proxyEnv,
    );
    r.servers.push(server);
    const t: Target = { name, port, sslmode: 'disable', server };
    await waitReady(
      { host: '127.0.0.1', port, user: USER, database: 'postgres', password: PASSWORD },
      server,
    );
    return t;
  };
}

/** PgBouncer in session mode, TLS to the server. */
async function startPgbouncer(
  r: BenchRun,
  up: Upstream,
  pgbouncerBin: string,
): Promise<{ bouncer: Target; version: string | undefined }> {
  const { o, work } = r;
  const version = (await run(pgbouncerBin, ['--version'])).stdout.split('\n')[0]?.trim();
  const port = await freePort();
  const ini = join(work, 'pgbouncer.ini');
  const userlist = join(work, 'userlist.txt');
  writeFileSync(userlist, `"${USER}" "${PASSWORD}"\n`, { mode: 0o644 });
  writeFileSync(
    ini,
    [
      '[databases]',
      `postgres = host=127.0.0.1 port=${up.pgPort} dbname=postgres`,
      '[pgbouncer]',
      'listen_addr = 127.0.0.1',
      `listen_port = ${port}`,
      'unix_socket_dir =',
      'auth_type = trust',
      `auth_file = ${userlist}`,
      'pool_mode = session',
      `max_client_conn = ${o.idleClients + 500}`,
      `default_pool_size = ${o.idleClients + 100}`,
      'server_tls_sslmode = require',
      `server_tls_ca_file = ${up.caFile}`,
      'ignore_startup_parameters = extra_float_digits',
      'log_connections = 0',
      'log_disconnections = 0',
      'log_pooler_errors = 1',
      '',
    ].join('\n'),
    { mode: 0o644 },
  );
  const args = process.getuid?.() === 0 ? ['-u', 'postgres', ini] : [ini];
  const server = startServer('pgbouncer', pgbouncerBin, args, process.env);
  r.servers.push(server);
  const bouncer: Target = { name: 'pgbouncer', port, sslmode: 'disable', server };
  await waitReady({ host: '127.0.0.1', port, user: USER, database: 'postgres' }, server);
  log(`pgbouncer pid ${server.pid} on ${port}`);
  return { bouncer, version };
}

/**
 * The Node.js floor: the least a Node.js session pooler can do (scripts/bench/node-floor.ts), and with
 * --no-reuse the same without reuse (a new upstream login per client, like the proxy's default mode).
 */
async function startFloor(r: BenchRun, up: Upstream, name: string, extra: string[]): Promise<Target> {
  const port = await freePort();
  const server = startServer(
    name,
    process.execPath,
    [
      '--import',
      'tsx',
      join(ROOT, 'scripts/bench/node-floor.ts'),
      String(port),
      String(up.pgPort),
      up.caFile,
      ENDPOINT,
      ...extra,
    ],
    { ...process.env, NODE_OPTIONS: '' },
  );
  r.servers.push(server);
  await waitReady({ host: '127.0.0.1', port, user: USER, database: 'postgres' }, server);
  log(`${name} pid ${server.pid} on ${port}`);
  return { name, port, sslmode: 'disable', server };
}

/** Everything the workloads are pointed at, and which of them each workload runs through. */
interface Targets {
  direct: Target;
  proxy: Target;
  bouncer: Target | undefined;
  pgbouncerVersion: string | undefined;
  /** Targets of pgbench -S and COPY. */
  relayTargets: Target[];
  /** The baseline build, started with the proxy's flags (--baseline-cli); measured for pgbench -S only. */
  baseline: Target | undefined;
  /** Targets that keep their server connections between pgbench runs. */
  pooling: Target[];
  /** Targets of pgbench -C. */
  connTargets: Target[];
}

async function startTargets(
  r: BenchRun,
  up: Upstream,
  pre: Preflight,
  startProxy: StartProxy,
): Promise<Targets> {
  const { direct } = up;
  const proxy = await startProxy('proxy', ['--auth-method', 'trust']);
  const verifier = await mustRun(process.execPath, [r.o.cli, 'hash-password', '--user', USER], {
    input: `${PASSWORD}\n`,
  });
  const authFile = join(r.work, 'auth.txt');
  writeFileSync(authFile, verifier.stdout);
  const proxyScram = {
    ...(await startProxy('proxy-scram', ['--auth-file', authFile, '--auth-method', 'scram-sha-256'])),
    password: PASSWORD,
  };
  const proxyPool = pre.hasPoolMode
    ? await startProxy('proxy-pool', ['--auth-method', 'trust', '--pool-mode', 'session'])
    : undefined;
  log(`proxy pid ${proxy.server?.pid} on ${proxy.port}; scram proxy on ${proxyScram.port}`);

  const started = pre.pgbouncerBin ? await startPgbouncer(r, up, pre.pgbouncerBin) : undefined;
  const bouncer = started?.bouncer;

  const baseline = r.o.baselineCli
    ? await startProxy(BASELINE, ['--auth-method', 'trust', ...r.o.baselineArgs], [], r.o.baselineCli)
    : undefined;
  if (baseline)
    log(`baseline ${r.o.baselineLabel ?? r.o.baselineCli} pid ${baseline.server?.pid} on ${baseline.port}`);

  const floor = await startFloor(r, up, 'node-floor', []);
  const floorFresh = await startFloor(r, up, 'node-floor-no-reuse', ['--no-reuse']);

  const mainTargets = [direct, proxy, ...(bouncer ? [bouncer] : [])];
  // -S and COPY run the proxy twice: as it runs by default (one server connection per client, like
  // direct) and with --pool-mode session, which keeps server connections like PgBouncer and the
  // floor do. And through the floor: it tells the proxy's own cost from Node's.
  const relayTargets = [...mainTargets, ...(proxyPool ? [proxyPool] : []), floor];
  // Targets that keep their server connections between pgbench runs: warmed up before each client
  // count, so that their first measured repetition does not pay for opening connections (and for the
  // new backends' first touches of shared memory) that the later repetitions reuse.
  const pooling = [...(proxyPool ? [proxyPool] : []), ...(bouncer ? [bouncer] : []), floor];
  const connTargets = [
    direct,
    proxy,
    proxyScram,
    ...(proxyPool ? [proxyPool] : []),
    ...(bouncer ? [bouncer] : []),
    floor,
    floorFresh,
  ];
  return {
    direct,
    proxy,
    bouncer,
    pgbouncerVersion: started?.version,
    relayTargets,
    baseline,
    pooling,
    connTargets,
  };
}

/**
 * The targets of one pgbench -S repetition: the relay targets, with the baseline (if any) beside the
 * proxy: after it in the 1st, 3rd, … repetition and before it in the 2nd, 4th, …, so that neither
 * build always runs second (in a machine warmed, or slowed, by the other).
 */
function throughputOrder(t: Pick<Targets, 'relayTargets' | 'baseline' | 'proxy'>, rep: number): Target[] {
  if (!t.baseline) return t.relayTargets;
  const pair = rep % 2 === 0 ? [t.proxy, t.baseline] : [t.baseline, t.proxy];
  return t.relayTargets.flatMap((x) => (x === t.proxy ? pair : [x]));
}

async function newReport(o: Options, up: Upstream, t: Targets, pre: Preflight): Promise<BenchReport> {
  return {
    date: new Date().toISOString(),
    quick: o.quick,
    options: {
      reps: o.reps,
      seconds: o.seconds,
      clients: o.clients,
      idle: o.idleClients,
      bulkMb: o.bulkMb,
      scale: o.scale,
    },
    machine: machine(),
    versions: {
      postgres: up.pgInfo.version,
      pgbouncer: t.pgbouncerVersion,
      pgbench: (await run('pgbench', ['--version'])).stdout.trim(),
    },
    loadBefore: loadavg(),
    proxyUpstreamTls: PROXY_UPSTREAM_TLS,
    ...(o.baselineCli ? { baseline: { label: o.baselineLabel ?? o.baselineCli } } : {}),
    ...emptyMeasurements(),
    copyOutWarm: {},
    copyInWarm: {},
    notes: pre.notes,
  };
}

function push(rec: Record<string, number[]>, key: string, v: number): void {
  const list = rec[key] ?? [];
  list.push(v);
  rec[key] = list;
}

/** 1. pgbench -S throughput (and latency at 1 client), interleaved per repetition. */
async function measureThroughput(r: BenchRun, t: Targets, report: BenchReport): Promise<void> {
  const { o } = r;
  const logDir = join(r.work, 'txlogs');
  mkdirSync(logDir);
  for (const c of o.clients) {
    const tps: Record<string, number[]> = {};
    const cpu: Record<string, number[]> = {};
    report.tps[c] = tps;
    report.cpuPerTxnUs[c] = cpu;
    const mainCpu: Record<string, number[]> = {};
    report.mainCpuPerTxnUs = report.mainCpuPerTxnUs ?? {};
    report.mainCpuPerTxnUs[c] = mainCpu;
    const sArgs = ['-S', '-M', 'simple', '-c', String(c), '-j', String(Math.min(2, c))];
    for (const target of t.pooling) {
      await pgbench(target, sArgs, 2 + Math.ceil(c / 10));
      log(`-S c=${c} warm-up ${target.name}`);
    }
    for (let rep = 0; rep < o.reps; rep++) {
      const paired: Record<string, number> = {};
      for (const target of throughputOrder(t, rep)) {
        // pgbench's -T clock includes connecting the clients (slow on a loaded machine): add time for it;
        // the tps it reports exclude the initial connection time.
        const dur = o.seconds + (c >= 16 ? Math.ceil(c / 10) : 0);
        const res = await pgbench(target, sArgs, dur, c === 1 ? { logDir } : {});
        push(tps, target.name, res.tps);
        if (res.cpuSec !== undefined && res.txns > 0) push(cpu, target.name, (res.cpuSec / res.txns) * 1e6);
        if (res.mainCpuSec !== undefined && res.txns > 0)
          push(mainCpu, target.name, (res.mainCpuSec / res.txns) * 1e6);
        if (res.latenciesUs?.length) {
          const avg = res.latenciesUs.reduce((a, b) => a + b, 0) / res.latenciesUs.length;
          push(report.lat1.avgUs, target.name, avg);
          push(report.lat1.p99Us, target.name, percentile(res.latenciesUs, 99));
          paired[target.name] = avg;
        }
        log(`-S c=${c} rep ${rep + 1}/${o.reps} ${target.name}: ${res.tps.toFixed(0)} tps`);
      }
      const d = paired.direct;
      if (d !== undefined) {
        for (const [name, avg] of Object.entries(paired))
          if (name !== 'direct') push(report.lat1.addedUs, name, avg - d);
      }
    }
  }
}

/** 2. New connections per second: pgbench -C -S (a new connection for every transaction). */
async function measureConnRate(r: BenchRun, t: Targets, report: BenchReport): Promise<void> {
  const { o } = r;
  const cpuPerConn: Record<string, number[]> = {};
  report.cpuPerConnUs = cpuPerConn;
  for (let rep = 0; rep < o.reps; rep++) {
    for (const target of t.connTargets) {
      const res = await pgbench(target, ['-C', '-S', '-c', '4', '-j', '2'], o.seconds);
      push(report.connRate, target.name, res.tps);
      // -C: one connection per transaction, so CPU per transaction is CPU per new connection.
      if (res.cpuSec !== undefined && res.txns > 0)
        push(cpuPerConn, target.name, (res.cpuSec / res.txns) * 1e6);
      log(`-C rep ${rep + 1}/${o.reps} ${target.name}: ${res.tps.toFixed(0)} conn/s`);
    }
  }
}

/** 3. Bulk transfer with psql: COPY TO STDOUT (to /dev/null) and COPY FROM STDIN (from a file). */
async function measureCopy(r: BenchRun, up: Upstream, t: Targets, report: BenchReport): Promise<void> {
  const { o, work } = r;
  const { postgres } = up;
  // newReport() made both (the same objects the report holds).
  const copyOutWarm = report.copyOutWarm ?? {};
  const copyInWarm = report.copyInWarm ?? {};
  report.copyOutWarm = copyOutWarm;
  report.copyInWarm = copyInWarm;
  const rowBytes = 256; // approximate text size of one generated row
  const rows = Math.ceil((o.bulkMb * 1e6) / rowBytes);
  log(`generating ${o.bulkMb} MB for COPY (${rows} rows)`);
  await postgres.query(
    `CREATE UNLOGGED TABLE bulk AS SELECT g AS id, md5(g::text) AS h, repeat('x', ${rowBytes - 45}) AS pad FROM generate_series(1, ${rows}) g`,
  );
  await postgres.query('CREATE UNLOGGED TABLE bulk_in (LIKE bulk)');
  const bulkFile = join(work, 'bulk.txt');
  await mustRun('psql', psqlSteps([{ command: `\\copy bulk to '${bulkFile}'` }]), {
    env: libpqEnv(t.direct),
  });
  const bulkMB = statSync(bulkFile).size / 1e6;
  // Every repetition, not three: one COPY takes about a second, and with three the median of a
  // transfer that shares two cores with PostgreSQL and psql moved between 0.71x and 0.90x direct
  // from one run to the next.
  // Each psql session copies twice each way, timed by psql itself (\timing: the COPY, not the
  // login). Where the server connection is new (direct, the proxy's default mode) the first COPY
  // runs in a new PostgreSQL backend, whose first pass over the table's shared buffers is slow on
  // this kind of VM (lab: about 1,000 ms, then 500-800 ms for the next COPY in the same session).
  // The second COPY measures the transfer; the poolers' server connections are warm for both.
  const copyTo = `\\copy bulk to '/dev/null'`;
  const copyFrom = `\\copy bulk_in from '${bulkFile}'`;
  for (let rep = 0; rep < Math.max(2, o.reps); rep++) {
    for (const target of t.relayTargets) {
      const copy = async (steps: { command: string; timed?: boolean }[]): Promise<number[]> => {
        const res = await mustRun('psql', psqlSteps(steps), { env: libpqEnv(target), timeoutMs: 600_000 });
        const ms = psqlTimingsMs(res.stdout);
        if (ms.length !== 2)
          throw new Error(`psql printed ${ms.length} timings, not 2: ${res.stdout.slice(-500)}`);
        return ms.map((m) => bulkMB / (m / 1000));
      };
      const [outFirst = Number.NaN, outWarm = Number.NaN] = await copy([
        { command: copyTo, timed: true },
        { command: copyTo, timed: true },
      ]);
      const [inFirst = Number.NaN, inWarm = Number.NaN] = await copy([
        { command: 'TRUNCATE bulk_in' },
        { command: copyFrom, timed: true },
        { command: 'TRUNCATE bulk_in' },
        { command: copyFrom, timed: true },
      ]);
      push(report.copyOut, target.name, outFirst);
      push(copyOutWarm, target.name, outWarm);
      push(report.copyIn, target.name, inFirst);
      push(copyInWarm, target.name, inWarm);
      log(
        `COPY rep ${rep + 1} ${target.name}: out ${outFirst.toFixed(0)} then ${outWarm.toFixed(0)} MB/s, in ${inFirst.toFixed(0)} then ${inWarm.toFixed(0)} MB/s`,
      );
    }
  }
  report.bulkMB = bulkMB;
  rmSync(bulkFile);
  await postgres.query('DROP TABLE bulk, bulk_in');
}

/** The resident memory of one middle process, before and with `o.idleClients` idle clients. */
async function idleMemory(o: Options, t: Target, report: BenchReport): Promise<void> {
  const server = t.server;
  if (!server) return;
  const clients: InstanceType<typeof pg.Client>[] = [];
  await sleep(1000);
  const before = rssBytes(server.pid);
  let opened = 0;
  let error: string | undefined;
  try {
    while (opened < o.idleClients) {
      const batch: Promise<void>[] = [];
      for (let i = 0; i < 50 && opened < o.idleClients; i++, opened++) {
        const c = new pg.Client({
          host: '127.0.0.1',
          port: t.port,
          user: USER,
          database: 'postgres',
          ssl: false,
        });
        c.on('error', () => {});
        clients.push(c);
        batch.push(c.connect().then(() => c.query('select 1').then(() => undefined)));
      }
      await Promise.all(batch);
    }
  } catch (err) {
    error = (err as Error).message;
    opened = clients.length;
  }
  await sleep(2000);
  const withN = rssBytes(server.pid);
  const connected = error ? opened - 1 : opened;
  report.rss.push({
    target: t.name,
    n: connected,
    beforeBytes: before,
    withBytes: withN,
    ...(error ? { error } : {}),
  });
  log(
    `RSS ${t.name}: ${(before / 2 ** 20).toFixed(1)} MiB -> ${(withN / 2 ** 20).toFixed(1)} MiB with ${connected} idle clients${error ? ` (stopped: ${error})` : ''}`,
  );
  await Promise.all(clients.map((c) => c.end().catch(() => {})));
  await sleep(1000);
}

/**
 * 4. Resident memory with N idle clients (each ran one query, so PgBouncer holds a server too).
 * The proxy twice: the process that ran every phase above (what a sidecar that has been busy
 * holds), and a fresh one started for this (its "before" is the process at rest after startup,
 * so its per-client figure is not blurred by what the earlier phases left in the heap).
 */
async function measureIdleMemory(
  r: BenchRun,
  t: Targets,
  startProxy: StartProxy,
  report: BenchReport,
): Promise<void> {
  const proxyFresh = await startProxy(PROXY_FRESH, ['--auth-method', 'trust']);
  for (const target of [t.proxy, proxyFresh, ...(t.bouncer ? [t.bouncer] : [])]) {
    await idleMemory(r.o, target, report);
  }
  await proxyFresh.server?.stop('SIGTERM');
}

/** 5. CPU profile of the proxy under pgbench -S -c 16. */
async function measureProfile(r: BenchRun, startProxy: StartProxy): Promise<ProfileResult | undefined> {
  if (!r.o.profile) return undefined;
  const profDir = join(r.work, 'cpuprof');
  mkdirSync(profDir);
  const prof = await startProxy(
    'proxy-cpuprof',
    ['--auth-method', 'trust'],
    ['--cpu-prof', '--cpu-prof-dir', profDir],
  );
  log('profiling the proxy under pgbench -S -c 16');
  const res = await pgbench(prof, ['-S', '-M', 'simple', '-c', '16', '-j', '2'], Math.max(r.o.seconds, 10));
  await prof.server?.stop('SIGTERM');
  const profile = runProfile(profDir, res.tps, ROOT);
  if (process.env.BENCH_KEEP_PROFILE) {
    const keep = resolve(process.env.BENCH_KEEP_PROFILE);
    for (const f of readdirSync(profDir)) writeFileSync(keep, readFileSync(join(profDir, f)));
    log(`profile kept at ${keep}`);
  }
  return profile;
}

/** Prints the table, writes docs/ when asked, and saves the raw results. */
function finish(o: Options, report: BenchReport): void {
  console.log(renderTable(report));
  if (o.write) {
    writeDocs(report);
  }
  writeFileSync(join(tmpdir(), 'dsql-proxy-bench-last.json'), JSON.stringify(report, null, 2));
  log(
    `raw results: ${join(tmpdir(), 'dsql-proxy-bench-last.json')}; ${report.elapsedSec?.toFixed(0)} s in all`,
  );
}

async function main(): Promise<void> {
  const renderAt = process.argv.indexOf('--render');
  if (renderAt >= 0) {
    // Re-render the docs from a saved result file (e.g. after changing the report format).
    const file = process.argv[renderAt + 1];
    if (!file) throw new Error('--render needs the JSON file a run saved');
    const report = JSON.parse(readFileSync(file, 'utf8')) as BenchReport;
    console.log(renderTable(report));
    writeDocs(report);
    return;
  }
  const o = parseArgs(process.argv.slice(2));
  const started = Date.now();
  const pre = await preflight(o);

  const work = mkdtempSync(join('/tmp', 'dsql-proxy-bench-'));
  chmodSync(work, 0o755);
  const r: BenchRun = { o, work, servers: [] };
  process.once('SIGINT', () => {
    void cleanup(r).then(() => process.exit(130));
  });

  try {
    const up = await setupPostgres(r);
    const startProxy = proxyStarter(r, up);
    const targets = await startTargets(r, up, pre, startProxy);
    const report = await newReport(o, up, targets, pre);
    await measureThroughput(r, targets, report);
    await measureConnRate(r, targets, report);
    await measureCopy(r, up, targets, report);
    await measureIdleMemory(r, targets, startProxy, report);
    report.profile = await measureProfile(r, startProxy);
    const conflicts = o.conflicts
      ? await runConflictBench({ clients: 16, seconds: o.quick ? 3 : 5, reps: o.quick ? 1 : 3 }, log)
      : undefined;
    report.loadAfter = loadavg();
    report.elapsedSec = (Date.now() - started) / 1000;
    finish(o, report);
    if (conflicts) console.log(`\nConflict retry, off vs on (scripts/bench/conflicts.ts):\n${conflicts}`);
  } finally {
    await cleanup(r);
  }
}

main().catch((err) => {
  process.stderr.write(`bench failed: ${(err as Error).stack ?? err}\n`);
  process.exit(1);
});
