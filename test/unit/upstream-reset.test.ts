/**
 * ConnectionResetter (src/upstream/reset.ts) against a scripted server on a loopback socket: DISCARD ALL
 * when the server takes it, RESET ALL + DEALLOCATE ALL when it refuses it (and from then on without
 * asking again), and a connection that cannot be reset cleanly reported as such, so the pool drops it.
 */
import assert from 'node:assert/strict';
import type net from 'node:net';
import { after, test } from 'node:test';
import { ProxyError } from '../../src/errors.js';
import { errorResponse, readyForQuery } from '../../src/protocol/backend.js';
import { FrameReader } from '../../src/protocol/frame-reader.js';
import { cstring, typedMessage } from '../../src/protocol/message-writer.js';
import { ConnectionResetter } from '../../src/upstream/reset.js';
import { closeAll, socketPair } from './socket-pair.js';

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
