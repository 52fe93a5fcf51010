/**
 * Runs `node dist/cli.js demo` as a user does and reads what it prints: the banner on stdout (with
 * the password, the psql lines and the data directory) and the proxy's JSON logs on stderr.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { CLI } from './proxy-process.js';

export interface DemoProcess {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  host: string;
  port: number;
  password: string;
  dataDir: string;
  /** The `PGPASSWORD=... psql ...` lines, as printed. */
  psqlLines: string[];
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stop(signal?: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export async function startDemo(args: string[], timeoutMs = 60_000): Promise<DemoProcess> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v !== undefined && !k.startsWith('AWS_') && !k.startsWith('DSQL_PROXY_')) env[k] = v;
  }
  const child = spawn(process.execPath, [CLI, 'demo', ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8');
  child.stderr.setEncoding('utf8');
  child.stdout.on('data', (d: string) => {
    out += d;
  });
  child.stderr.on('data', (d: string) => {
    err += d;
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => setTimeout(() => resolve({ code, signal }), 50));
  });

  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`no demo banner within ${timeoutMs} ms\nstdout:\n${out}\nstderr:\n${err}`));
    }, timeoutMs);
    const check = (): void => {
      if (out.includes('Ctrl-C to stop')) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout.on('data', check);
    void exited.then(({ code }) => {
      clearTimeout(timer);
      reject(new Error(`demo exited (${code}) before its banner\nstdout:\n${out}\nstderr:\n${err}`));
    });
  });

  const psqlLines = out.split('\n').filter((l) => /^\s*PGPASSWORD=/.test(l));
  const m = /PGPASSWORD=(\S+) psql -h (\S+) -p (\d+) -U admin/.exec(out);
  const dataDir = /data in (\S+)/.exec(out)?.[1];
  if (!m || !dataDir) throw new Error(`unexpected demo banner:\n${out}`);
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    password: m[1] as string,
    host: m[2] as string,
    port: Number(m[3]),
    dataDir,
    psqlLines: psqlLines.map((l) => l.trim()),
    exited,
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      const timer = setTimeout(() => child.kill('SIGKILL'), 40_000);
      const result = await exited;
      clearTimeout(timer);
      return result;
    },
  };
}
