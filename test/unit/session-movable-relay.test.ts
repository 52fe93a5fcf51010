/**
 * MovableRelay (src/session/movable-relay.ts) against scripted upstreams: real socket pairs, a fake
 * connector that hands out the next scripted upstream, and the connection's phases read from the
 * Lifecycle's debug log lines. Covers the planned move at an idle moment (and not before), the
 * reconnect of an idle session after an upstream loss, the FATAL 08006 for a loss inside a
 * transaction, and a client Terminate that arrives while a move holds the client.
 */
import assert from 'node:assert/strict';
import type net from 'node:net';
import { after, describe, it } from 'node:test';
import type tls from 'node:tls';
import { Metrics } from '../../src/core/metrics.js';
import { createLogger } from '../../src/log.js';
import { Lifecycle } from '../../src/session/lifecycle.js';
import { MovableRelay } from '../../src/session/movable-relay.js';
import type { UpstreamConnection } from '../../src/upstream/connector.js';
import type { UpstreamTarget } from '../../src/upstream/target.js';
import { query, terminate } from './frontend-builders.js';
import { ByteReader, closeAll, socketPair, waitFor } from './socket-pair.js';
import { cstr, int16, int32, msg } from './wire-pieces.js';

after(closeAll);

/** One row of `width` text values 'v', then CommandComplete and ReadyForQuery with `status`. */
function oneRow(width: number, status: string): Buffer {
  const field = Buffer.concat([int32(0), int16(0), int32(25), int16(-1), int32(-1), int16(0)]);
  const fields = Array.from({ length: width }, (_, i) => Buffer.concat([cstr(`c${i}`), field]));
  const values = Array.from({ length: width }, () => Buffer.concat([int32(1), Buffer.from('v')]));
  return Buffer.concat([
    msg('T', int16(width), ...fields),
    msg('D', int16(width), ...values),
    msg('C', cstr('SELECT 1')),
    msg('Z', Buffer.from(status)),
  ]);
}

/**
 * A scripted DSQL connection: answers each Query with one row (as many columns as the SELECT lists
 * current_setting() calls, else one), BEGIN/COMMIT move the transaction status. `hold` delays the
 * answers until it resolves. Records the SQL it received and whether a Terminate came.
 */
async function scriptedUpstream(name: string) {
  const { client, server } = await socketPair();
  const reader = new ByteReader(server);
  const seen: string[] = [];
  let status = 'I';
  let gotTerminate = false;
  let hold: Promise<void> = Promise.resolve();
  const target = { hostname: `${name}.dsql.test` } as UpstreamTarget;
  const backendKey = { processId: name.charCodeAt(0), secretKey: Buffer.from(name.padEnd(4, '-')) };
  void (async () => {
    for (;;) {
      const m = await reader.typed().catch(() => undefined);
      if (!m) return;
      if (m.type === 'X') {
        gotTerminate = true;
        continue;
      }
      if (m.type !== 'Q') continue;
      const sql = m.body.toString('utf8', 0, m.body.length - 1);
      seen.push(sql);
      await hold;
      if (sql === 'BEGIN') status = 'T';
      if (sql === 'COMMIT') status = 'I';
      const width = sql.split('current_setting(').length - 1 || 1;
      if (!server.destroyed) server.write(oneRow(width, status));
    }
  })();
  const conn: UpstreamConnection = {
    socket: client as tls.TLSSocket,
    login: {
      parameterMessages: [],
      noticeMessages: [],
      parameters: new Map(),
      backendKey,
      transactionStatus: 'I',
      leftover: Buffer.alloc(0),
    },
    target,
    action: 'DbConnect',
    connectMs: 0,
    waitMs: 0,
    connectedAt: Date.now(),
  };
  return {
    conn,
    server,
    seen,
    target,
    backendKey,
    get gotTerminate() {
      return gotTerminate;
    },
    holdAnswers(until: Promise<void>) {
      hold = until;
    },
  };
}
type Scripted = Awaited<ReturnType<typeof scriptedUpstream>>;

/**
 * app ⇄ [client socket | MovableRelay] ⇄ first; the connector makes a fresh scripted upstream per call
 * (`made`, in order: a spare opened too early is dropped, see takeSpare).
 */
async function live(first: Scripted, maxUpstreamAgeMs: number) {
  const made: Scripted[] = [];
  const front = await socketPair();
  const lines: Array<Record<string, unknown>> = [];
  const log = createLogger({
    level: 'debug',
    destination: { write: (line: string) => void lines.push(JSON.parse(line)) },
  });
  const lifecycle = new Lifecycle({ log, strict: true });
  for (const phase of ['authenticating', 'connecting', 'relaying'] as const) lifecycle.to(phase);
  const relay = new MovableRelay({
    client: front.server,
    first: first.conn,
    role: 'admin',
    params: new Map(),
    connector: {
      connect: async () => {
        const up = await scriptedUpstream(`b${made.length}`);
        made.push(up);
        return up.conn;
      },
    },
    lifecycle,
    log,
    metrics: new Metrics({ processMetrics: false }),
    maxUpstreamAgeMs,
    connectTimeoutMs: 2000,
  });
  const app = front.client;
  const appReader = new ByteReader(app);
  const done = relay.run(Buffer.alloc(0));
  /** The phases the connection went through since it started relaying. */
  const phases = () =>
    lines
      .filter(
        (l) =>
          l.event === 'phase' &&
          l.from !== 'connecting' &&
          l.from !== 'handshake' &&
          l.from !== 'authenticating',
      )
      .map((l) => `${l.from}→${l.to}`);
  return { app, appReader, relay, lifecycle, done, lines, phases, made };
}

/** Sends a Query and reads the answer up to its ReadyForQuery; returns the status byte. */
async function ask(app: net.Socket, reader: ByteReader, sql: string): Promise<string> {
  app.write(query(sql));
  for (;;) {
    const m = await reader.typed();
    if (m.type === 'Z') return m.body.toString('latin1');
  }
}

describe('MovableRelay with scripted upstreams', () => {
  it('moves at the first idle moment after the age limit, not inside a transaction', async () => {
    const a = await scriptedUpstream('a');
    const s = await live(a, 300);
    assert.equal(await ask(s.app, s.appReader, 'BEGIN'), 'T');
    // Past the limit, inside the transaction: due, not moved.
    await waitFor(() => s.lifecycle.phase === 'move_due', 3000);
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(s.lifecycle.phase, 'move_due');
    assert.deepEqual(a.seen, ['BEGIN'], 'no snapshot query while a transaction is open');
    assert.equal(s.relay.cancelRoute.target, a.target);
    // COMMIT leaves the session idle: the move happens at once.
    assert.equal(await ask(s.app, s.appReader, 'COMMIT'), 'I');
    await waitFor(() => s.relay.cancelRoute.target !== a.target, 3000);
    const b = s.made.at(-1)!;
    assert.equal(s.relay.cancelRoute.target, b.target);
    assert.equal(s.lifecycle.phase, 'relaying');
    assert.equal(s.relay.cancelRoute.upstreamKey, b.backendKey, 'cancels now go to the new connection');
    assert.ok(
      a.seen.length > 2 && a.seen.slice(2).every((q) => q.includes('pg_catalog')),
      'snapshot read from a',
    );
    await waitFor(() => a.gotTerminate);
    // The client's next query goes to the new connection.
    assert.equal(await ask(s.app, s.appReader, 'SELECT 1'), 'I');
    assert.equal(b.seen.at(-1), 'SELECT 1');
    assert.ok(!a.seen.includes('SELECT 1'));
    assert.deepEqual(s.phases(), ['relaying→move_due', 'move_due→moving', 'moving→relaying']);
    s.app.end(terminate());
    assert.equal((await s.done).reason, 'client_closed');
    assert.equal(s.lifecycle.phase, 'closing');
  });

  it('reconnects an idle session whose upstream closed, transparently', async () => {
    const a = await scriptedUpstream('a');
    const s = await live(a, 60 * 60_000);
    assert.equal(await ask(s.app, s.appReader, 'SELECT 1'), 'I');
    a.server.destroy();
    await waitFor(() => s.relay.cancelRoute.target !== a.target, 3000);
    const b = s.made.at(-1)!;
    assert.equal(s.relay.cancelRoute.target, b.target);
    assert.equal(s.lifecycle.phase, 'relaying');
    assert.equal(await ask(s.app, s.appReader, 'SELECT 2'), 'I');
    assert.equal(b.seen.at(-1), 'SELECT 2');
    assert.deepEqual(s.phases(), ['relaying→moving', 'moving→relaying']);
    assert.ok(s.lines.some((l) => l.event === 'upstream_reconnected'));
    s.app.end(terminate());
    assert.equal((await s.done).reason, 'client_closed');
  });

  it('answers a loss inside a transaction with FATAL 08006, and does not reconnect', async () => {
    const a = await scriptedUpstream('a');
    const s = await live(a, 60 * 60_000);
    assert.equal(await ask(s.app, s.appReader, 'BEGIN'), 'T');
    a.server.destroy();
    const m = await s.appReader.typed();
    assert.equal(m.type, 'E');
    const text = m.body.toString('utf8');
    assert.match(text, /SFATAL/);
    assert.match(text, /C08006/);
    assert.match(text, /inside a transaction/);
    await s.appReader.closed();
    assert.match((await s.done).reason, /^upstream_(closed|error)$/);
    assert.equal(s.made.length, 0, 'no reconnect attempt');
    assert.equal(s.lifecycle.phase, 'closing');
    assert.deepEqual(s.phases(), ['relaying→closing']);
  });

  it('a Terminate sent during a move waits for it, then ends the session on the new connection', async () => {
    const a = await scriptedUpstream('a');
    const s = await live(a, 300);
    let answer!: () => void;
    a.holdAnswers(new Promise<void>((resolve) => (answer = resolve)));
    // The move starts and waits for the old connection's snapshot answer.
    await waitFor(() => s.lifecycle.phase === 'moving', 3000);
    s.app.end(terminate());
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(s.lifecycle.phase, 'moving', 'the held client is not read during the move');
    answer();
    const result = await s.done;
    assert.equal(result.reason, 'client_closed');
    assert.equal(s.lifecycle.phase, 'closing');
    const b = s.made.at(-1)!;
    assert.equal(s.relay.cancelRoute.target, b.target, 'the move completed');
    await waitFor(() => b.gotTerminate && a.gotTerminate);
    assert.ok(
      b.seen.every((q) => q.includes('set_config') || q.includes('pg_catalog')),
      'only restore SQL reached b',
    );
    assert.deepEqual(s.phases(), [
      'relaying→move_due',
      'move_due→moving',
      'moving→relaying',
      'relaying→closing',
    ]);
  });
});

describe('Lifecycle', () => {
  it('refuses an impossible change: throws when strict, else logs at error and reports it once', async () => {
    const lines: Array<Record<string, unknown>> = [];
    const log = createLogger({
      level: 'debug',
      destination: { write: (l: string) => void lines.push(JSON.parse(l)) },
    });
    const strict = new Lifecycle({ log, strict: true });
    assert.throws(() => strict.to('relaying'), /internal error/);
    assert.equal(strict.phase, 'handshake');
    let reported: Error | undefined;
    const lenient = new Lifecycle({ log, onImpossible: (err) => (reported = err) });
    lenient.to('closing');
    lenient.to('closed');
    assert.equal(lenient.to('relaying'), false);
    assert.equal(lenient.phase, 'closed');
    await new Promise((r) => setImmediate(r));
    assert.match(String(reported?.message), /internal error/);
    assert.ok(
      lines.some((l) => l.event === 'phase_impossible' && l.level === 'error' && l.from === 'closed'),
    );
    assert.deepEqual(
      lines.filter((l) => l.event === 'phase').map((l) => [l.from, l.to, l.level]),
      [
        ['handshake', 'closing', 'debug'],
        ['closing', 'closed', 'debug'],
      ],
    );
  });
});
