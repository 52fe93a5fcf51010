/**
 * Runs the real proxy (`node dist/cli.js`, the built bin) as a child process, the way a user does,
 * and collects every log line it writes so tests can wait on events and scan for secrets.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { assertNoSecrets } from './secrets.js';
import type { TestStack } from './stack.js';
import { tempDir } from './temp-dirs.js';

export const CLI = fileURLToPath(new URL('../../dist/cli.js', import.meta.url));

export interface LogLine {
  raw: string;
  json: Record<string, unknown> | undefined;
}

/** Every log line written by every proxy process in this test process, for the secrets scan. */
export const allLogLines: string[] = [];

export interface ProxyProcess {
  child: ChildProcess;
  host: string;
  port: number;
  /** The admin HTTP port when --admin-listen was given, else 0. */
  adminPort: number;
  logs: LogLine[];
  /** Resolves with the first log line matching, waiting up to `timeoutMs`. */
  waitForLog(
    pred: (l: Record<string, unknown>) => boolean,
    timeoutMs?: number,
  ): Promise<Record<string, unknown>>;
  /** Resolves with the exit code once the process has exited. */
  exited: Promise<number | null>;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export interface ProxyProcessOptions {
  args?: string[];
  /** Extra environment; AWS credentials of the stack are set unless `credentials: false`. */
  env?: Record<string, string | undefined>;
  credentials?: boolean;
  /** Prepend the flags that point at the stack (default true); false when `args` has them all. */
  stackArgs?: boolean;
  /** Do not wait for the `listening` line (for processes expected to fail at start). */
  expectStartFailure?: boolean;
  /** Flags for node itself, before the CLI's path (e.g. the soak's --expose-gc). */
  nodeArgs?: string[];
}

/** Writes the endpoint's CA to a temp file and returns the flags that point the proxy at the stack. */
export function stackArgs(stack: TestStack): string[] {
  const dir = tempDir('ca');
  const caFile = join(dir, 'ca.pem');
  writeFileSync(caFile, stack.endpoint.caPem);
  return [
    '--endpoint',
    stack.hostname,
    '--connect-to',
    `127.0.0.1:${stack.endpoint.port}`,
    '--ca-file',
    caFile,
    '--listen',
    '127.0.0.1:0',
  ];
}

/** An environment with no ambient AWS configuration: only what the test puts in. */
export function isolatedAwsEnv(): Record<string, string> {
  const dir = tempDir('aws');
  return {
    AWS_CONFIG_FILE: join(dir, 'config'),
    AWS_SHARED_CREDENTIALS_FILE: join(dir, 'credentials'),
    AWS_EC2_METADATA_DISABLED: 'true',
  };
}

export function writeAuthFile(lines: Array<[string, string]>): string {
  const dir = tempDir('auth');
  const file = join(dir, 'users.txt');
  writeFileSync(file, lines.map(([u, s]) => `"${u}" "${s}"\n`).join(''));
  return file;
}

export async function startProxyProcess(
  stack: TestStack | undefined,
  opts: ProxyProcessOptions = {},
): Promise<ProxyProcess> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v !== undefined && !k.startsWith('AWS_') && !k.startsWith('DSQL_PROXY_')) env[k] = v;
  }
  Object.assign(env, isolatedAwsEnv());
  if (stack && opts.credentials !== false) {
    env.AWS_ACCESS_KEY_ID = stack.credentials.accessKeyId;
    env.AWS_SECRET_ACCESS_KEY = stack.credentials.secretAccessKey;
    if (stack.credentials.sessionToken) env.AWS_SESSION_TOKEN = stack.credentials.sessionToken;
  }
  for (const [k, v] of Object.entries(opts.env ?? {})) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  // The most verbose level unless a test asks otherwise (a later --log-level wins): the secrets scan
  // in stop() must see everything the proxy can write.
  const args = [
    '--log-level',
    'trace',
    ...(stack && opts.stackArgs !== false ? stackArgs(stack) : []),
    ...(opts.args ?? []),
  ];
  const child = spawn(process.execPath, [...(opts.nodeArgs ?? []), CLI, ...args], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: LogLine[] = [];
  const waiters = new Set<() => void>();
  const onLine = (raw: string): void => {
    if (!raw) return;
    allLogLines.push(raw);
    let json: Record<string, unknown> | undefined;
    try {
      json = JSON.parse(raw) as Record<string, unknown>;
    } catch {
      json = undefined;
    }
    logs.push({ raw, json });
    for (const w of waiters) w();
  };
  for (const stream of [child.stdout, child.stderr]) {
    let buf = '';
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      buf += chunk;
      let nl = buf.indexOf('\n');
      while (nl >= 0) {
        onLine(buf.slice(0, nl));
        buf = buf.slice(nl + 1);
        nl = buf.indexOf('\n');
      }
    });
    stream.on('end', () => {
      if (buf) onLine(buf);
      buf = '';
    });
  }
  const exited = new Promise<number | null>((resolve) => {
    child.once('exit', (code) => {
      // Give the pipes a moment to deliver the last lines.
      setTimeout(() => resolve(code), 50);
      for (const w of waiters) w();
    });
  });

  const waitForLog = (pred: (l: Record<string, unknown>) => boolean, timeoutMs = 10_000) =>
    new Promise<Record<string, unknown>>((resolve, reject) => {
      const check = (): boolean => {
        const hit = logs.find((l) => l.json !== undefined && pred(l.json));
        if (hit?.json) {
          cleanup();
          resolve(hit.json);
          return true;
        }
        if (child.exitCode !== null) {
          cleanup();
          reject(new Error(`proxy exited (${child.exitCode}) before the expected log line:\n${tail(logs)}`));
          return true;
        }
        return false;
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`timed out waiting for a log line:\n${tail(logs)}`));
      }, timeoutMs);
      const waiter = (): void => {
        check();
      };
      const cleanup = (): void => {
        clearTimeout(timer);
        waiters.delete(waiter);
      };
      if (!check()) waiters.add(waiter);
    });

  let host = '';
  let port = 0;
  let adminPort = 0;
  if (!opts.expectStartFailure) {
    // A proxy that never says it listens is not left running behind a failed start.
    const listening = await waitForLog((l) => l.event === 'listening', 20_000).catch((err: unknown) => {
      child.kill('SIGKILL');
      throw err;
    });
    host = String(listening.address);
    port = Number(listening.port);
    const admin = logs.find((l) => l.json?.event === 'admin_listening');
    if (admin?.json) adminPort = Number(admin.json.port);
  }
  return {
    child,
    host,
    port,
    adminPort,
    logs,
    waitForLog,
    exited,
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      const timer = setTimeout(() => child.kill('SIGKILL'), 40_000);
      const code = await exited;
      clearTimeout(timer);
      // Every proxy of every integration test is scanned: no AWS secret, session token, IAM token or
      // token signature in any line it wrote (tests add their passwords with assertNoSecrets).
      if (stack && logs.length > 0) {
        assertNoSecrets(
          logs.map((l) => l.raw),
          { credentials: stack.credentials, tokens: stack.endpoint.logins.map((l) => l.token) },
        );
      }
      return code;
    },
  };
}

function tail(logs: LogLine[]): string {
  return logs
    .slice(-15)
    .map((l) => l.raw)
    .join('\n');
}
