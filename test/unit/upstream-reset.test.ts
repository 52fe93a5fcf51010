/**
 * ConnectionResetter (src/upstream/reset.ts) against a scripted server on a loopback socket: DISCARD ALL
 * when the server takes it, RESET ALL + DEALLOCATE ALL when it refuses it (and from then on without
 * asking again), and a connection that cannot be reset cleanly reported as such. Then the pooling
 * connector's release (src/upstream/pooled-connector.ts): a reset connection goes back to the pool, one
 * that cannot be reset is closed, counted and logged, and never handed to another client.
 */
import assert from 'node:assert/strict';
import type net from 'node:net';
import { Writable } from 'node:stream';
import { after, test } from 'node:test';
import { Metrics } from '../../src/core/metrics.js';
import { ProxyError } from '../../src/errors.js';
import { createLogger, silentLogger } from '../../src/log.js';
import { FrameReader } from '../../src/protocol/frame-reader.js';
import { cstring, typedMessage } from '../../src/protocol/message-writer.js';
import { errorResponse, readyForQuery } from '../../src/protocol/to-client.js';
import type { Connector, ConnectRequest, UpstreamConnection } from '../../src/upstream/connector.js';
import { UpstreamPool } from '../../src/upstream/pool.js';
import { poolingConnector } from '../../src/upstream/pooled-connector.js';
import { ConnectionResetter } from '../../src/upstream/reset.js';
import { closeAll, socketPair, waitFor } from './socket-pair.js';

after(closeAll);

/** What the server does with a statement: answer it, refuse it with a SQLSTATE, or hang up. */
type Answer = 'ok' | { refuse: string } | 'close';

/**
 * A client socket whose server answers each simple Query by `policy` (statements it does not list are
 * answered), and the statements it received, in order.
 */
async function scriptedServer(
  policy: Record<string, Answer>,
): Promise<{ client: net.Socket; seen: string[] }> {
  const { client, server } = await socketPair();
  const seen: string[] = [];
  const reader = new FrameReader();
  server.on('data', (chunk: Buffer) => {
    reader.push(chunk);
    for (let frame = reader.nextTyped(1 << 20); frame; frame = reader.nextTyped(1 << 20)) {
      assert.equal(frame.type, 0x51, 'only simple Query messages are expected');
      const sql = frame.body.toString('utf8', 0, frame.body.length - 1);
      seen.push(sql);
      const answer = policy[sql] ?? 'ok';
      if (answer === 'close') {
        server.destroy();
        return;
      }
      if (answer === 'ok')
        server.write(Buffer.concat([typedMessage(0x43, cstring(sql)), readyForQuery('I')]));
      else {
        server.write(
          Buffer.concat([
            errorResponse({ severity: 'ERROR', sqlstate: answer.refuse, message: `${sql} is not supported` }),
            readyForQuery('I'),
          ]),
        );
      }
    }
  });
  return { client, seen };
}

test('a server that takes DISCARD ALL: one statement per reset, every time', async () => {
  const resetter = new ConnectionResetter(2000);
  const { client, seen } = await scriptedServer({});
  assert.equal(await resetter.reset(client), 'discard');
  assert.equal(await resetter.reset(client), 'discard');
  assert.deepEqual(seen, ['DISCARD ALL', 'DISCARD ALL']);
  assert.equal(resetter.preferred, 'discard');
});

test('a server that refuses DISCARD ALL: RESET ALL and DEALLOCATE ALL, and DISCARD ALL is not asked again', async () => {
  const resetter = new ConnectionResetter(2000);
  const first = await scriptedServer({ 'DISCARD ALL': { refuse: '0A000' } });
  assert.equal(await resetter.reset(first.client), 'reset');
  assert.deepEqual(first.seen, ['DISCARD ALL', 'RESET ALL', 'DEALLOCATE ALL']);
  assert.equal(resetter.preferred, 'reset');
  // The resetter is shared by the cluster's connections: the next one goes straight to the fallback.
  const second = await scriptedServer({ 'DISCARD ALL': { refuse: '0A000' } });
  assert.equal(await resetter.reset(second.client), 'reset');
  assert.deepEqual(second.seen, ['RESET ALL', 'DEALLOCATE ALL']);
});

test('a refused fallback statement: the connection cannot be reset cleanly and the error says why', async () => {
  const resetter = new ConnectionResetter(2000);
  const { client, seen } = await scriptedServer({
    'DISCARD ALL': { refuse: '0A000' },
    'DEALLOCATE ALL': { refuse: '0A000' },
  });
  await assert.rejects(resetter.reset(client), (err: unknown) => {
    assert.ok(err instanceof ProxyError);
    assert.equal(err.code, 'UPSTREAM_REJECTED');
    assert.equal(err.sqlstate, '0A000');
    assert.match(err.message, /DEALLOCATE ALL is not supported/);
    return true;
  });
  assert.deepEqual(seen, ['DISCARD ALL', 'RESET ALL', 'DEALLOCATE ALL']);
});

test('DISCARD ALL refused after the server took it before: that connection is not reset, and not retried another way', async () => {
  const resetter = new ConnectionResetter(2000);
  const ok = await scriptedServer({});
  assert.equal(await resetter.reset(ok.client), 'discard');
  const odd = await scriptedServer({ 'DISCARD ALL': { refuse: '25001' } });
  await assert.rejects(resetter.reset(odd.client), (err: unknown) => {
    assert.ok(err instanceof ProxyError);
    assert.equal(err.code, 'UPSTREAM_REJECTED');
    assert.equal(err.sqlstate, '25001');
    return true;
  });
  assert.deepEqual(odd.seen, ['DISCARD ALL']);
  assert.equal(resetter.preferred, 'discard');
});

test('a server that hangs up during the reset: UPSTREAM_CLOSED, no fallback on a dead connection', async () => {
  const resetter = new ConnectionResetter(2000);
  const { client, seen } = await scriptedServer({ 'DISCARD ALL': 'close' });
  await assert.rejects(resetter.reset(client), (err: unknown) => {
    assert.ok(err instanceof ProxyError);
    assert.equal(err.code, 'UPSTREAM_CLOSED');
    return true;
  });
  assert.deepEqual(seen, ['DISCARD ALL']);
  assert.equal(resetter.preferred, undefined);
});

/** A pooling connector over a base that must not be asked (every connection here comes from the pool). */
function pooling() {
  const chunks: string[] = [];
  const log = createLogger({
    level: 'info',
    destination: new Writable({
      write(chunk, _enc, done) {
        chunks.push(String(chunk));
        done();
      },
    }),
  });
  const metrics = new Metrics({ processMetrics: false });
  const pool = new UpstreamPool({
    maxIdlePerKey: 4,
    maxIdleTotal: 100,
    idleTimeoutMs: 60_000,
    maxAgeMs: 3_600_000,
    log: silentLogger(),
    onChange: () => {},
  });
  const base: Connector = {
    connect: () => Promise.reject(new Error('the base connector is not used in these tests')),
  };
  const connector = poolingConnector({ base, pool, resetter: new ConnectionResetter(2000), metrics, log });
  const resets = async (outcome: string): Promise<number> =>
    (await metrics.poolResets.get()).values.find((v) => v.labels.outcome === outcome)?.value ?? 0;
  return { connector, pool, resets, logLines: () => chunks.join('') };
}

function request(role: string): ConnectRequest {
  return { role, params: new Map(), log: silentLogger() };
}

/** What the pool and the release touch of a connection: its socket and its age. */
function pooled(socket: net.Socket): UpstreamConnection {
  return { socket, connectedAt: Date.now() } as unknown as UpstreamConnection;
}

test('release: a connection the server resets goes back to the pool for the next client of the same role', async () => {
  const { connector, pool, resets } = pooling();
  const { client, seen } = await scriptedServer({});
  const conn = pooled(client);
  connector.release(request('app'), conn);
  await waitFor(() => pool.size === 1);
  assert.deepEqual(seen, ['DISCARD ALL']);
  assert.equal(await resets('discard'), 1);
  const again = await connector.connect(request('app'));
  assert.equal(again.socket, client);
  assert.equal(client.destroyed, false);
  pool.close();
});

test('release: a connection that cannot be reset is closed, counted as failed and logged, never pooled', async () => {
  const { connector, pool, resets, logLines } = pooling();
  const { client, seen } = await scriptedServer({
    'DISCARD ALL': { refuse: '0A000' },
    'RESET ALL': { refuse: '0A000' },
  });
  connector.release(request('app'), pooled(client));
  await waitFor(() => client.destroyed);
  assert.deepEqual(seen, ['DISCARD ALL', 'RESET ALL']);
  assert.equal(pool.size, 0);
  assert.equal(await resets('failed'), 1);
  assert.match(logLines(), /"event":"pool_reset_failed".*RESET ALL is not supported/);
  pool.close();
});
