/**
 * The compatibility matrix's proxies: {SCRAM-SHA-256, md5} × {local TLS off, on}, all in front of
 * one test stack. Each proxy has the same users:
 *
 * - `admin` and `app` with SCRAM verifiers on the SCRAM proxies;
 * - `admin` and `app` with md5 hashes on the md5 proxies (`--auth-method md5`), so the client
 *   really answers AuthenticationMD5Password.
 *
 * The TLS proxies run `--client-tls on` with a generated CA written to `--client-ca-out`, so
 * clients can use `sslmode=verify-full sslrootcert=<ca> host=localhost`.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { md5Secret } from '../../src/auth/md5.js';
import { createScramVerifier } from '../../src/auth/scram.js';
import { type ProxyProcess, startProxyProcess, writeAuthFile } from '../support/proxy-process.js';
import type { TestStack } from '../support/stack.js';
import type { ConnOptions } from './tools.js';

export type Auth = 'scram-sha-256' | 'md5';
export const AUTHS: readonly Auth[] = ['scram-sha-256', 'md5'];

export const PASSWORDS = { admin: 'compat-admin-pw-3c', app: 'compat app pässword' } as const;

export interface CompatProxy {
  auth: Auth;
  tls: boolean;
  proxy: ProxyProcess;
  /** The generated CA (PEM file) when tls; '' otherwise. */
  caFile: string;
  /** The CA's PEM text when tls; '' otherwise. */
  caPem: string;
  /** A label for test names: `scram-sha-256, TLS on`. */
  label: string;
}

export interface ProxyVariant {
  auth: Auth;
  tls: boolean;
  /** Extra flags, e.g. `--client-tls-required`. */
  extraArgs?: string[];
}

export async function startCompatProxy(stack: TestStack, v: ProxyVariant): Promise<CompatProxy> {
  const secret = (user: keyof typeof PASSWORDS): string =>
    v.auth === 'md5' ? md5Secret(PASSWORDS[user], user) : createScramVerifier(PASSWORDS[user]);
  const authFile = writeAuthFile([
    ['admin', secret('admin')],
    ['app', secret('app')],
  ]);
  const caFile = v.tls ? join(mkdtempSync(join(tmpdir(), 'dsql-proxy-client-ca-')), 'ca.pem') : '';
  const args = ['--auth-file', authFile, '--auth-method', v.auth, '--log-level', 'trace'];
  if (v.tls) args.push('--client-tls', 'on', '--client-ca-out', caFile);
  args.push(...(v.extraArgs ?? []));
  const proxy = await startProxyProcess(stack, { args });
  return {
    auth: v.auth,
    tls: v.tls,
    proxy,
    caFile,
    caPem: v.tls ? readFileSync(caFile, 'utf8') : '',
    label: `${v.auth}, TLS ${v.tls ? 'on' : 'off'}`,
  };
}

/** Stops the proxy and removes its generated CA's directory. */
export async function stopCompatProxy(cp: CompatProxy): Promise<void> {
  await cp.proxy.stop();
  if (cp.caFile) rmSync(dirname(cp.caFile), { recursive: true, force: true });
}

/** The `authenticated` log line of the session the client just opened as `user`, after `seen`. */
export function authenticatedSince(
  p: ProxyProcess,
  seen: number,
  user: string,
): Record<string, unknown> | undefined {
  return p.logs.slice(seen).find((l) => l.json?.event === 'authenticated' && l.json.user === user)?.json;
}

export type SslMode = 'disable' | 'prefer' | 'require' | 'verify-full';
export const SSLMODES: readonly SslMode[] = ['disable', 'prefer', 'require', 'verify-full'];

/**
 * Where and how a libpq tool connects to `cp` as `user` with `sslmode`. verify-full names the host
 * `localhost` (the generated certificate's name) and dials 127.0.0.1 through hostaddr; without
 * local TLS there is no CA, and libpq must fail before it would read one.
 */
export function libpq(
  cp: CompatProxy,
  user: keyof typeof PASSWORDS,
  sslmode: SslMode,
): { target: { host: string; port: number }; conn: ConnOptions } {
  const conn: ConnOptions = { user, password: PASSWORDS[user], sslmode };
  if (sslmode === 'verify-full') {
    conn.hostaddr = '127.0.0.1';
    conn.sslrootcert = cp.caFile || '/nonexistent/dsql-proxy-ca.pem';
    return { target: { host: 'localhost', port: cp.proxy.port }, conn };
  }
  return { target: { host: cp.proxy.host, port: cp.proxy.port }, conn };
}
