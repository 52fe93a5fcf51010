#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { Writable } from 'node:stream';
import { ConfigError } from './config/config-error.js';
import type { ProxyConfig } from './config/index.js';
import { helpText } from './config/options.js';

// The rest is loaded by the command that needs it: `dsql-proxy health` runs every few seconds in a
// container and must not pay for loading the proxy (zod, pino, the AWS SDK).

const HASH_PASSWORD_USAGE = `Usage: dsql-proxy hash-password [--user NAME]

Reads a password (from a hidden prompt on a terminal, else the first line of stdin) and prints its
SCRAM-SHA-256 verifier; with --user, a whole auth-file line ("NAME" "SCRAM-SHA-256$...").
`;

const HEALTH_HELP = `
Asks the admin listener for /startup and /livez; exits 0 when both answer 200, 1 otherwise.
The address is --admin-listen, else DSQL_PROXY_ADMIN_LISTEN, else admin-listen in the file of
--config (or DSQL_PROXY_CONFIG).
`;

/** `--help` or `-h` anywhere among a command's arguments. */
function wantsHelp(argv: readonly string[]): boolean {
  return argv.some((arg) => arg === '--help' || arg === '-h');
}

async function main(argv: string[]): Promise<number> {
  const [first, ...rest] = argv;
  if (first === '--help' || first === '-h' || first === 'help' || (first === 'run' && wantsHelp(rest))) {
    process.stdout.write(`${helpText()}\n`);
    return 0;
  }
  // demo and check answer --help themselves; hash-password and health are answered here.
  if ((first === 'hash-password' || first === 'health') && wantsHelp(rest)) {
    const text =
      first === 'health'
        ? `${(await import('./admin/health-check.js')).HEALTH_USAGE}${HEALTH_HELP}`
        : HASH_PASSWORD_USAGE;
    process.stdout.write(text);
    return 0;
  }
  if (first === '--version' || first === '-V') {
    process.stdout.write(`${version()}\n`);
    return 0;
  }
  if (first === 'hash-password') return hashPassword(rest);
  if (first === 'demo') return (await import('./demo/run.js')).runDemo(rest);
  if (first === 'check') return (await import('./check/run.js')).runCheck(rest, process.env, process.stdout);
  if (first === 'health') {
    return (await import('./admin/health-check.js')).runHealthCheck(rest, process.env, process.stdout);
  }
  return run(first === 'run' ? rest : argv);
}

async function run(argv: string[]): Promise<number> {
  const { loadConfig, reloadRoleMaps, reloadUsers } = await import('./config/index.js');
  const { createLogger } = await import('./log.js');
  const { startProxy } = await import('./proxy.js');
  let config: ProxyConfig;
  try {
    config = loadConfig(argv, process.env);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`dsql-proxy: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
  const logger = createLogger({ level: config.logLevel });
  for (const warning of config.warnings) logger.warn({ event: 'config_warning' }, warning);

  let stop: (reason: string) => void = () => {};
  const proxy = await startProxy(config, logger, { onQuit: () => stop('quitquitquit') });

  // SIGHUP re-reads the auth file and the role maps, both or neither: a broken file keeps the old ones.
  process.on('SIGHUP', () => {
    try {
      const users = reloadUsers(config);
      const roleMaps = reloadRoleMaps(config);
      const before = new Set(proxy.users().keys());
      proxy.setUsers(users);
      const roleMapChanges = proxy.setRoleMaps(roleMaps);
      // Names only: which users and roles changed, never a secret.
      logger.info({
        event: 'reloaded',
        auth_file: config.authFile,
        config_file: config.configFile,
        users: users.size,
        users_added: [...users.keys()].filter((u) => !before.has(u)),
        users_removed: [...before].filter((u) => !users.has(u)),
        role_map_changes: roleMapChanges,
      });
    } catch (err) {
      logger.error(
        { event: 'reload_failed', reason: (err as Error).message },
        'kept the previous users and role maps',
      );
    }
  });

  return new Promise<number>((resolve) => {
    let stopping = false;
    stop = (signal: string): void => {
      if (stopping) {
        if (signal === 'quitquitquit') return;
        logger.warn({ event: 'exit_now', signal });
        logger.flush();
        process.exit(1);
      }
      stopping = true;
      logger.info({ event: 'shutdown', signal });
      proxy.shutdown().then(
        () => {
          logger.info({ event: 'stopped' });
          resolve(0);
        },
        (err: unknown) => {
          logger.error({ event: 'shutdown_failed', err });
          resolve(1);
        },
      );
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
  });
}

async function hashPassword(argv: string[]): Promise<number> {
  let user: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--user' && argv[i + 1] !== undefined) user = argv[++i];
    else {
      process.stderr.write(
        `dsql-proxy hash-password: unexpected argument ${JSON.stringify(argv[i])}\n${HASH_PASSWORD_USAGE}`,
      );
      return 2;
    }
  }
  const password = process.stdin.isTTY ? await promptHidden('Password: ') : await readFirstLine();
  if (!password) {
    process.stderr.write('dsql-proxy hash-password: empty password\n');
    return 2;
  }
  const { createScramVerifier } = await import('./auth/scram.js');
  const verifier = createScramVerifier(password);
  process.stdout.write(
    user === undefined ? `${verifier}\n` : `"${user.replaceAll('"', '""')}" "${verifier}"\n`,
  );
  return 0;
}

function readFirstLine(): Promise<string> {
  return new Promise((resolve) => {
    let data = '';
    process.stdin.setEncoding('utf8');
    process.stdin.on('data', (chunk: string) => {
      data += chunk;
    });
    process.stdin.on('end', () => resolve(data.split(/\r?\n/)[0] ?? ''));
  });
}

function promptHidden(prompt: string): Promise<string> {
  process.stderr.write(prompt);
  const muted = new Writable({ write: (_chunk, _enc, cb) => cb() });
  const rl = createInterface({ input: process.stdin, output: muted, terminal: true });
  return new Promise((resolve) => {
    rl.question('', (answer) => {
      rl.close();
      process.stderr.write('\n');
      resolve(answer);
    });
  });
}

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
    version: string;
  };
  return pkg.version;
}

main(process.argv.slice(2)).then(
  (code) => {
    // Open handles (keep-alive timers in the AWS SDK) must not hold a finished process.
    process.exitCode = code;
    setTimeout(() => process.exit(code), 200).unref();
  },
  (err: unknown) => {
    process.stderr.write(`dsql-proxy: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);
