/**
 * ConnectionResetter (src/upstream/reset.ts) against a scripted server on a loopback socket: exactly what
 * the session changed, undone in one Query of RESETs and DEALLOCATE ALL (statements DSQL accepts),
 * nothing sent when nothing changed, and a connection that cannot be reset cleanly reported as such.
 * Then the pooling connector's release (src/upstream/pooled-connector.ts): a reset connection goes back
 * to the pool, one that cannot be reset (or whose state is unknown) is closed, counted and never handed
 * to another client. Last, the session's side: ServerSideState.resetPlan, what the reset is given.
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
import { ServerSideState } from '../../src/session/server-side-state.js';
import type { Connector, ConnectRequest, UpstreamConnection } from '../../src/upstream/connector.js';
import { UpstreamPool } from '../../src/upstream/pool.js';
import { poolingConnector } from '../../src/upstream/pooled-connector.js';
import { ConnectionResetter, type ResetPlan, resetSql } from '../../src/upstream/reset.js';
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

const plan = (settings: string[], statements = false): ResetPlan => ({ settings, statements });

test('resetSql: a RESET per setting, DEALLOCATE ALL last and only when statements may exist, one Query', () => {
  assert.equal(
    resetSql(plan(['timezone', 'search_path'], true)),
    'RESET timezone; RESET search_path; DEALLOCATE ALL',
  );
  assert.equal(resetSql(plan(['enable_seqscan', 'enable_seqscan'])), 'RESET enable_seqscan');
  assert.equal(resetSql(plan([], true)), 'DEALLOCATE ALL');
  assert.equal(resetSql(plan([])), undefined);
  // Never RESET ALL or DISCARD ALL: DSQL refuses DISCARD and is not known to accept RESET ALL.
  assert.doesNotMatch(resetSql(plan(['timezone'], true)) ?? '', /\b(?:ALL;|DISCARD|RESET ALL)/);
});

test('resetSql: a name that is not a plain identifier is refused rather than put in SQL', () => {
  assert.throws(() => resetSql(plan(['search_path; DROP TABLE t'])), /not a plain parameter name/);
  assert.throws(() => resetSql(plan(['TimeZone'])), /not a plain parameter name/);
});

test('a session that changed nothing: no statement is sent, the outcome is clean', async () => {
  const resetter = new ConnectionResetter(2000);
  const { client, seen } = await scriptedServer({});
  assert.equal(await resetter.reset(client, plan([])), 'clean');
  assert.deepEqual(seen, []);
});

test('what the session changed is undone in one Query, the same message each time', async () => {
  const resetter = new ConnectionResetter(2000);
  const { client, seen } = await scriptedServer({});
  assert.equal(await resetter.reset(client, plan(['search_path', 'timezone'], true)), 'reset');
  assert.equal(await resetter.reset(client, plan(['search_path', 'timezone'], true)), 'reset');
  assert.equal(await resetter.reset(client, plan([], true)), 'reset');
  assert.deepEqual(seen, [
    'RESET search_path; RESET timezone; DEALLOCATE ALL',
    'RESET search_path; RESET timezone; DEALLOCATE ALL',
    'DEALLOCATE ALL',
  ]);
});

test("a refused reset: UPSTREAM_REJECTED with the server's SQLSTATE and message", async () => {
  const resetter = new ConnectionResetter(2000);
  const { client, seen } = await scriptedServer({ 'RESET role': { refuse: '0A000' } });
  await assert.rejects(resetter.reset(client, plan(['role'])), (err: unknown) => {
    assert.ok(err instanceof ProxyError);
    assert.equal(err.code, 'UPSTREAM_REJECTED');
    assert.equal(err.sqlstate, '0A000');
    assert.match(err.message, /RESET role is not supported/);
    return true;
  });
  assert.deepEqual(seen, ['RESET role']);
});

test('a server that hangs up during the reset: UPSTREAM_CLOSED', async () => {
  const resetter = new ConnectionResetter(2000);
  const { client } = await scriptedServer({ 'DEALLOCATE ALL': 'close' });
  await assert.rejects(resetter.reset(client, plan([], true)), (err: unknown) => {
    assert.ok(err instanceof ProxyError);
    assert.equal(err.code, 'UPSTREAM_CLOSED');
    return true;
  });
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
  connector.release(request('app'), pooled(client), plan(['timezone'], true));
  await waitFor(() => pool.size === 1);
  assert.deepEqual(seen, ['RESET timezone; DEALLOCATE ALL']);
  assert.equal(await resets('reset'), 1);
  const again = await connector.connect(request('app'));
  assert.equal(again.socket, client);
  assert.equal(client.destroyed, false);
  pool.close();
});

test('release: a session that changed nothing is pooled without a round trip, counted clean', async () => {
  const { connector, pool, resets } = pooling();
  const { client, seen } = await scriptedServer({});
  connector.release(request('app'), pooled(client), plan([]));
  await waitFor(() => pool.size === 1);
  assert.deepEqual(seen, []);
  assert.equal(await resets('clean'), 1);
  assert.equal(await resets('reset'), 0);
  pool.close();
});

test('release: a connection that cannot be reset is closed, counted as failed and logged, never pooled', async () => {
  const { connector, pool, resets, logLines } = pooling();
  const { client, seen } = await scriptedServer({ 'RESET search_path': { refuse: '0A000' } });
  connector.release(request('app'), pooled(client), plan(['search_path']));
  await waitFor(() => client.destroyed);
  assert.deepEqual(seen, ['RESET search_path']);
  assert.equal(pool.size, 0);
  assert.equal(await resets('failed'), 1);
  assert.match(logLines(), /"event":"pool_reset_failed".*RESET search_path is not supported/);
  pool.close();
});

test('release: a session whose state could not be named is closed at once, nothing sent', async () => {
  const { connector, pool, resets } = pooling();
  const { client, seen } = await scriptedServer({});
  connector.release(request('app'), pooled(client), undefined);
  assert.equal(client.destroyed, true);
  assert.deepEqual(seen, []);
  assert.equal(pool.size, 0);
  assert.equal(await resets('unknown_state'), 1);
  pool.close();
});

/** A ParameterStatus body, as the relay's scanner hands it to the session state. */
const parameterStatus = (name: string, value: string) => Buffer.from(`${name}\0${value}\0`);

test('ServerSideState.resetPlan: a fresh session has nothing to undo', () => {
  const state = new ServerSideState();
  state.setBaseline(new Map([['TimeZone', 'UTC']]));
  state.noteStatement('select * from t where role = 1');
  assert.deepEqual(state.resetPlan(), { settings: [], statements: false });
});

test("ServerSideState.resetPlan: reported changes, named unreported ones, the role, and the layer's", () => {
  const state = new ServerSideState();
  state.noteParameterStatus(parameterStatus('TimeZone', 'Asia/Tokyo'));
  state.noteParameterStatus(parameterStatus('server_version', '16')); // not a setting a session changes
  state.noteStatement('SET search_path TO pg_catalog');
  state.noteStatement("select set_config('extra_float_digits', '0', false)");
  state.noteStatement('SET ENABLE_SEQSCAN = off; SET role reader');
  assert.deepEqual(state.resetPlan(['datestyle']), {
    settings: ['datestyle', 'enable_seqscan', 'extra_float_digits', 'role', 'search_path', 'timezone'],
    statements: false,
  });
});

test("ServerSideState.resetPlan: statements may exist after a tracked Parse, SQL PREPARE, or the layer's", () => {
  const sqlPrepare = new ServerSideState();
  sqlPrepare.noteStatement('PREPARE p AS SELECT 1');
  assert.equal(sqlPrepare.resetPlan()?.statements, true);
  assert.equal(new ServerSideState().resetPlan([], true)?.statements, true);
  const parsed = new ServerSideState();
  parsed.statements.parseSent('s1', Buffer.from('s1\0select 1\0\0\0'), 0);
  parsed.statements.parseComplete(0);
  parsed.statements.ready(1);
  assert.equal(parsed.statements.size, 1, 'the Parse was tracked');
  assert.equal(parsed.resetPlan()?.statements, true);
});

test('ServerSideState.resetPlan: a change it cannot name makes the connection unpoolable', () => {
  const unnamed = new ServerSideState();
  unnamed.noteStatement('select set_config($1, $2, false)');
  assert.equal(unnamed.resetPlan(), undefined);
  const unknownText = new ServerSideState();
  unknownText.noteStatement(null);
  assert.equal(unknownText.resetPlan(), undefined);
});
