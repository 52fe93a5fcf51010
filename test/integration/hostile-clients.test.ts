/**
 * Pre-authentication defences through the real proxy process: failed logins are answered after a
 * growing delay without ever locking out a correct login, parallel guesses cannot beat the schedule,
 * a delayed answer keeps its --max-connections slot, and a flood of idle half-open connections does
 * not stop a real client from connecting.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { AUTH_DELAY_DEFAULTS } from '../../src/auth/auth-delay.js';
import { createScramVerifier } from '../../src/auth/scram.js';
import {
  allLogLines,
  type ProxyProcess,
  startProxyProcess,
  writeAuthFile,
} from '../support/proxy-process.js';
import { assertNoSecrets, registerPasswords } from '../support/secrets.js';
import { startTestStack, type TestStack } from '../support/stack.js';

const RIGHT = 'right-pw-5e1c';
const GUESS = 'guess-pw-9a7d';
registerPasswords(RIGHT, GUESS);

let stack: TestStack;
let proxy: ProxyProcess;
let authFile: string;

before(async () => {
  stack = await startTestStack();
  authFile = writeAuthFile([
    ['app', createScramVerifier(RIGHT)],
    ['target', createScramVerifier(RIGHT)],
  ]);
  proxy = await startProxyProcess(stack, { args: ['--auth-file', authFile, '--login-timeout', '20s'] });
});

after(async () => {
  await proxy?.stop();
  await stack?.stop();
  // Every line of every proxy this file started, with the passwords it used.
  assertNoSecrets(allLogLines, {
    credentials: stack.credentials,
    tokens: stack.endpoint.logins.map((l) => l.token),
  });
});

async function login(
  password: string,
  user = 'app',
  p: ProxyProcess = proxy,
): Promise<{ ok: boolean; code?: string; ms: number }> {
  const client = new pg.Client({ host: p.host, port: p.port, user, password });
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
    for (let i = 0; i < 4; i++) failures.push(await login(GUESS));
    assert.ok(failures.every((f) => !f.ok && f.code === '28P01'));
    const ms = failures.map((f) => Math.round(f.ms));
    // 250, 500, 1000, 2000 ms plus the SCRAM round trips.
    assert.ok(
      ms[0]! >= 240 && ms[1]! >= 490 && ms[2]! >= 990 && ms[3]! >= 1990,
      `delays ${ms.join(', ')} ms`,
    );
    const right = await login(RIGHT);
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

/** The delay of the k-th failure (from 1) in a window, with the proxy's default schedule. */
const scheduled = (k: number): number =>
  Math.min(AUTH_DELAY_DEFAULTS.maxMs, AUTH_DELAY_DEFAULTS.baseMs * 2 ** (k - 1));

describe('parallel guesses', () => {
  test('100 parallel wrong passwords are answered no sooner than the schedule allows', async () => {
    const n = 100;
    const t0 = performance.now();
    const results = await Promise.all(
      Array.from({ length: n }, async () => {
        const r = await login(GUESS, 'target');
        return { ...r, at: performance.now() - t0 };
      }),
    );
    assert.ok(
      results.every((r) => !r.ok && r.code === '28P01'),
      JSON.stringify(results.filter((r) => r.ok || r.code !== '28P01')),
    );
    // Each failure counts before its answer waits, so the k-th answer to arrive cannot come before
    // the k-th delay of the schedule (timers may fire up to a millisecond early).
    const at = results.map((r) => r.at).sort((a, b) => a - b);
    for (let k = 1; k <= n; k++) {
      assert.ok(
        at[k - 1]! >= scheduled(k) - 2,
        `answer ${k} after ${at[k - 1]!.toFixed(0)} ms < ${scheduled(k)} ms`,
      );
    }
    // Hence within 3 s at most as many answers as delays of 3 s or less: 250, 500, 1000, 2000 ms.
    const bound = Array.from({ length: n }, (_, i) => scheduled(i + 1)).filter((d) => d <= 3000).length;
    assert.equal(bound, 4);
    assert.ok(
      at.filter((t) => t <= 3000).length <= bound,
      `answered within 3 s: ${at.filter((t) => t <= 3000).length}`,
    );
    // The proxy logged the schedule itself, failure by failure.
    const delays = proxy.logs
      .filter((l) => l.json?.event === 'refused' && l.json.user === 'target')
      .map((l) => Number(l.json?.delay_ms));
    assert.deepEqual(
      delays,
      Array.from({ length: n }, (_, i) => scheduled(i + 1)),
    );
  });

  test('a delayed answer keeps its --max-connections slot until it is sent', async () => {
    const p = await startProxyProcess(stack, {
      args: ['--auth-file', authFile, '--max-connections', '1', '--login-timeout', '20s'],
    });
    try {
      // Two failures, so that the third waits a whole second.
      for (let i = 0; i < 2; i++) assert.equal((await login(GUESS, 'app', p)).code, '28P01');
      const third = login(GUESS, 'app', p);
      await p.waitForLog((l) => l.event === 'refused' && l.delay_ms === scheduled(3));
      // The delayed session still holds the only slot: a correct login is refused, not let in.
      const during = await login(RIGHT, 'app', p);
      assert.equal(during.ok, false);
      assert.equal(during.code, '53300');
      assert.equal((await third).code, '28P01');
      // Once the answer is sent the slot is free again.
      assert.equal((await login(RIGHT, 'app', p)).ok, true);
    } finally {
      await p.stop();
    }
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
      const r = await login(RIGHT);
      assert.ok(r.ok, 'the real client got in');
      assert.ok(performance.now() - t0 < 5000);
    } finally {
      for (const s of sockets) s.destroy();
    }
  });
});
