/**
 * Pre-authentication defences through the real proxy process: failed logins are answered after a
 * growing delay without ever locking out a correct login, and a flood of idle half-open connections
 * does not stop a real client from connecting.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { createScramVerifier } from '../../src/auth/scram.js';
import { type ProxyProcess, startProxyProcess, writeAuthFile } from '../support/proxy-process.js';
import { startTestStack, type TestStack } from '../support/stack.js';

let stack: TestStack;
let proxy: ProxyProcess;

before(async () => {
  stack = await startTestStack();
  const authFile = writeAuthFile([['app', createScramVerifier('right-pw')]]);
  proxy = await startProxyProcess(stack, { args: ['--auth-file', authFile, '--login-timeout', '20s'] });
});

after(async () => {
  await proxy?.stop();
  await stack?.stop();
});

async function login(password: string): Promise<{ ok: boolean; code?: string; ms: number }> {
  const client = new pg.Client({ host: proxy.host, port: proxy.port, user: 'app', password });
  client.on('error', () => {});
  const t0 = performance.now();
  try {
    await client.connect();
    await client.end();
    return { ok: true, ms: performance.now() - t0 };
  } catch (err) {
    return { ok: false, code: (err as pg.DatabaseError).code, ms: performance.now() - t0 };
  }
}

describe('failed logins are slowed down', () => {
  test('each recent failure doubles the wait; a correct login is never delayed', async () => {
    const failures = [];
    for (let i = 0; i < 4; i++) failures.push(await login('guess'));
    assert.ok(failures.every((f) => !f.ok && f.code === '28P01'));
    const ms = failures.map((f) => Math.round(f.ms));
    // 250, 500, 1000, 2000 ms plus the SCRAM round trips.
    assert.ok(
      ms[0]! >= 240 && ms[1]! >= 490 && ms[2]! >= 990 && ms[3]! >= 1990,
      `delays ${ms.join(', ')} ms`,
    );
    const right = await login('right-pw');
    assert.ok(right.ok);
    assert.ok(right.ms < 1000, `the correct login took ${Math.round(right.ms)} ms`);
    const logged = proxy.logs.filter(
      (l) => l.json?.event === 'refused' && typeof l.json.delay_ms === 'number',
    );
    assert.deepEqual(
      logged.map((l) => l.json?.delay_ms),
      [250, 500, 1000, 2000],
    );
  });
});

describe('a slowloris flood', () => {
  test('1,000 idle half-open connections do not stop a real client', async () => {
    const sockets: net.Socket[] = [];
    try {
      for (let i = 0; i < 1000; i++) {
        const s = net.connect(proxy.port, proxy.host);
        s.on('error', () => {});
        // Half a StartupMessage header: the proxy waits for the rest until the login timeout.
        s.write(Buffer.from([0, 0]));
        sockets.push(s);
      }
      await Promise.all(
        sockets.map((s) => new Promise((r) => (s.connecting ? s.once('connect', r) : r(null)))),
      );
      const t0 = performance.now();
      const r = await login('right-pw');
      assert.ok(r.ok, 'the real client got in');
      assert.ok(performance.now() - t0 < 5000);
    } finally {
      for (const s of sockets) s.destroy();
    }
  });
});
