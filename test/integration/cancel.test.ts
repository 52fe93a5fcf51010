/**
 * Cancel requests in the cases the plain one (clients-node.test.ts) does not reach: after the session
 * moved to a fresh upstream connection (--max-upstream-age), where the cancel must reach the new
 * upstream; and for a session whose upstream sent no BackendKeyData, where there is nothing to send and
 * the proxy must neither crash nor hang.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import postgres from 'postgres';
import { type MessageFilterRelay, startMessageFilterRelay } from '../support/message-filter-relay.js';
import { type ProxyProcess, startProxyProcess } from '../support/proxy-process.js';
import { startTestStack, type TestStack } from '../support/stack.js';

let stack: TestStack;
const procs: ProxyProcess[] = [];
const relays: MessageFilterRelay[] = [];

before(async () => {
  stack = await startTestStack();
});

after(async () => {
  await Promise.all(procs.map((p) => p.stop()));
  await Promise.all(relays.map((r) => r.close()));
  await stack?.stop();
});

async function proxy(args: string[], stackArgs = true): Promise<ProxyProcess> {
  const p = await startProxyProcess(stack, { args: ['--log-level', 'trace', ...args], stackArgs });
  procs.push(p);
  return p;
}

function sql(p: ProxyProcess) {
  return postgres({ host: p.host, port: p.port, user: 'app', password: '', max: 1, onnotice: () => {} });
}

const isCancelled = (err: { code?: string }) => err.code === '57014';

describe('cancel after a session move', () => {
  test('--max-upstream-age moved the session: a cancel reaches the new upstream and stops pg_sleep', async () => {
    const p = await proxy(['--max-upstream-age', '1500ms']);
    const db = sql(p);
    try {
      const [first] = await db<{ pid: number }[]>`select pg_backend_pid() as pid`;
      // Idle at the age limit: the session moves at once.
      await p.waitForLog((l) => l.event === 'upstream_moved', 10_000);
      const [moved] = await db<{ pid: number }[]>`select pg_backend_pid() as pid`;
      assert.notEqual(moved?.pid, first?.pid, 'a new upstream backend');

      const forwardedBefore = stack.endpoint.cancels.filter((c) => c.forwarded).length;
      const started = Date.now();
      const q = db`select pg_sleep(20)`;
      setTimeout(() => q.cancel(), 500);
      await assert.rejects(q, isCancelled);
      assert.ok(Date.now() - started < 10_000, 'cancelled well before the sleep ended');
      const line = await p.waitForLog((l) => l.event === 'cancel_request');
      assert.equal(line.outcome, 'forwarded');
      assert.equal(stack.endpoint.cancels.filter((c) => c.forwarded).length, forwardedBefore + 1);

      const [after] = await db<{ pid: number }[]>`select pg_backend_pid() as pid`;
      assert.ok(after?.pid !== undefined, 'the session is still usable after the cancel');
    } finally {
      await db.end({ timeout: 5 });
    }
  });
});

describe('cancel without an upstream key', () => {
  test('the upstream sent no BackendKeyData: the cancel is dropped, the query runs on, the proxy keeps serving', async () => {
    const relay = await startMessageFilterRelay({
      hostname: stack.hostname,
      endpoint: { port: stack.endpoint.port, caPem: stack.endpoint.caPem },
      drop: ['K'],
    });
    relays.push(relay);
    const p = await proxy(
      [
        '--endpoint',
        stack.hostname,
        '--connect-to',
        `127.0.0.1:${relay.port}`,
        '--ca-file',
        relay.caFile,
        '--listen',
        '127.0.0.1:0',
      ],
      false,
    );
    const db = sql(p);
    try {
      const [row] = await db<{ one: number }[]>`select 1 as one`;
      assert.equal(row?.one, 1);
      const connected = await p.waitForLog((l) => l.event === 'upstream_connected');
      assert.equal(connected.upstream_cancel_key, false, 'the relay removed BackendKeyData');
      assert.ok((relay.dropped.get('K') ?? 0) >= 1);

      const cancelsBefore = stack.endpoint.cancels.length;
      const started = Date.now();
      const q = db`select pg_sleep(1.5) as slept`;
      setTimeout(() => q.cancel(), 300);
      const [slept] = await q;
      assert.ok(slept !== undefined, 'the query finished normally');
      assert.ok(Date.now() - started >= 1400, 'it was not cancelled');
      const line = await p.waitForLog((l) => l.event === 'cancel_request');
      assert.equal(line.outcome, 'no_upstream_key');
      assert.equal(stack.endpoint.cancels.length, cancelsBefore, 'nothing was sent upstream');

      // The same session and a new one still work.
      const [again] = await db<{ two: number }[]>`select 2 as two`;
      assert.equal(again?.two, 2);
      const other = sql(p);
      const [fresh] = await other<{ three: number }[]>`select 3 as three`;
      assert.equal(fresh?.three, 3);
      await other.end({ timeout: 5 });
      assert.equal(p.child.exitCode, null);
    } finally {
      await db.end({ timeout: 5 });
    }
  });
});
