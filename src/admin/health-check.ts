/**
 * `dsql-proxy health`: the container health check. It asks the running proxy's admin listener for
 * /startup and then /livez and exits 0 only if both answer 200: healthy means started (listener open,
 * first token signed; what ECS `dependsOn: HEALTHY` and compose `service_healthy` wait for) and alive.
 *
 * The address comes from the same setting the proxy reads (`--admin-listen`, `DSQL_PROXY_ADMIN_LISTEN`,
 * or `admin-listen` in the file of `--config`/`DSQL_PROXY_CONFIG`), so a container started with another
 * admin address is not reported unhealthy while it is fine. The image has no shell and no curl, so
 * this runs in the image's own node.
 */
import http from 'node:http';
import { resolve } from 'node:path';
import { ConfigError } from '../config/config-error.js';
import { formatHostPort, type HostPort, hostPortProblem } from '../config/host-port.js';
import { envName } from '../config/options.js';

/** Docker's and ECS's health-check timeout in the examples is 3 s: answer well within it. */
const DEFAULT_TIMEOUT_MS = 2000;
const PATHS = ['/startup', '/livez'] as const;

export const HEALTH_USAGE = 'Usage: dsql-proxy health [--admin-listen HOST:PORT] [--config FILE]\n';

/**
 * Exit codes: 0 healthy, 1 anything else (Docker reserves 2), with one line saying why: Docker and ECS
 * keep the output of the last checks (`docker inspect`).
 */
export async function runHealthCheck(
  argv: readonly string[],
  env: NodeJS.ProcessEnv,
  out: { write(s: string): unknown },
  opts: { timeoutMs?: number } = {},
): Promise<number> {
  let target: HostPort;
  try {
    target = await adminAddress(argv, env);
  } catch (err) {
    out.write(`dsql-proxy health: ${(err as Error).message}\n`);
    return 1;
  }
  const to = dialable(target);
  const deadline = Date.now() + (opts.timeoutMs ?? DEFAULT_TIMEOUT_MS);
  for (const path of PATHS) {
    const answer = await get(to, path, deadline - Date.now());
    if (answer.status !== 200) {
      const why = answer.status === undefined ? answer.error : `${answer.status} ${answer.body.trim()}`;
      out.write(`unhealthy: ${path} on ${formatHostPort(to)}: ${why}\n`);
      return 1;
    }
  }
  out.write(`healthy: ${PATHS.join(' and ')} on ${formatHostPort(to)} answered 200\n`);
  return 0;
}

/**
 * The admin listener's address by the proxy's precedence: flag > environment > config file, parsed as
 * the proxy parses `admin-listen` (a bare port is 127.0.0.1:PORT). The YAML loader (and zod behind it)
 * is loaded only for a config file: this runs every few seconds in a container.
 */
export async function adminAddress(argv: readonly string[], env: NodeJS.ProcessEnv): Promise<HostPort> {
  let flag: string | undefined;
  let config: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    const [name, inline] = arg.startsWith('--') && arg.includes('=') ? arg.split(/=(.*)/s, 2) : [arg];
    const value = inline ?? argv[i + 1];
    if ((name === '--admin-listen' || name === '--config') && value !== undefined) {
      if (inline === undefined) i++;
      if (name === '--admin-listen') flag = value;
      else config = value;
    } else {
      throw new ConfigError(`unexpected argument ${JSON.stringify(arg)}\n${HEALTH_USAGE.trimEnd()}`);
    }
  }
  const envKey = envName('admin-listen');
  const fromEnv = env[envKey] === '' ? undefined : env[envKey];
  const raw = flag ?? fromEnv;
  if (raw !== undefined) {
    const label = flag !== undefined ? '--admin-listen' : envKey;
    const s = raw.trim();
    const r = hostPortProblem(/^\d+$/.test(s) ? `127.0.0.1:${s}` : s);
    if (typeof r === 'string') throw new ConfigError(`invalid ${label} ${JSON.stringify(raw)}: ${r}`);
    return r;
  }
  const configPath = config ?? (env[envName('config')] || undefined);
  if (configPath !== undefined) {
    // The file is checked as the proxy checks it; its admin-listen is already parsed.
    const { loadConfigFile } = await import('../config/yaml-file.js');
    const file = loadConfigFile(resolve(configPath), config !== undefined ? '--config' : envName('config'));
    const fromFile = file.values['admin-listen'];
    if (fromFile !== undefined) return fromFile;
  }
  throw new ConfigError(
    `the admin listener is off, so there is nothing to ask: set ${envKey} (or --admin-listen) as for the proxy`,
  );
}

/** A wildcard bind is reached on loopback of the same family; any other address as it is. */
export function dialable(at: HostPort): HostPort {
  if (at.host === '0.0.0.0' || at.host === '') return { host: '127.0.0.1', port: at.port };
  if (at.host === '::' || at.host === '[::]') return { host: '::1', port: at.port };
  return at;
}

interface Answer {
  status: number | undefined;
  body: string;
  error: string;
}

function get(to: HostPort, path: string, timeoutMs: number): Promise<Answer> {
  return new Promise((done) => {
    const req = http.get({
      host: to.host,
      port: to.port,
      path,
      agent: false,
      timeout: Math.max(1, timeoutMs),
    });
    req.on('response', (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        if (body.length < 1000) body += chunk;
      });
      res.on('end', () => done({ status: res.statusCode, body: body.split('\n')[0] ?? '', error: '' }));
      res.on('error', (err) => done({ status: undefined, body: '', error: err.message }));
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${Math.max(1, timeoutMs)} ms`)));
    req.on('error', (err) => done({ status: undefined, body: '', error: err.message }));
  });
}
