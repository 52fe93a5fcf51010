/**
 * The deadline helper (src/io/deadline.ts) over a real socket pair: when the time runs out the
 * socket is destroyed (so a pending FrameStream read fails) and `expired` says why; cleared in time,
 * nothing happens; the timeout itself emits no 'error' event.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { socketDeadline } from '../../src/io/deadline.js';
import { FrameStream } from '../../src/io/frame-stream.js';
import { closeAll, socketPair } from './socket-pair.js';

after(closeAll);

class Closed extends Error {}
class TimedOut extends Error {}

describe('socketDeadline', () => {
  it('destroys the socket when the time runs out, failing the pending read, and sets expired', async () => {
    const { server } = await socketPair();
    const deadline = socketDeadline(server, 50, () => new TimedOut('too slow'));
    const frames = new FrameStream(server, () => deadline.expired ?? new Closed('closed'));
    const errors: Error[] = [];
    server.on('error', (err) => errors.push(err));
    const early = deadline.expired;
    assert.equal(early, undefined);
    const t0 = Date.now();
    await assert.rejects(frames.nextTyped(1024), (e: unknown) => {
      assert.ok(e instanceof TimedOut, `the timeout is the reason, got ${String(e)}`);
      return true;
    });
    assert.ok(Date.now() - t0 < 1000);
    assert.ok(server.destroyed);
    assert.ok(deadline.expired instanceof TimedOut);
    assert.deepEqual(errors, [], 'destroyed without an error event');
    deadline.clear();
  });

  it('cleared in time, never fires: the socket stays open and expired stays undefined', async () => {
    const { client, server } = await socketPair();
    let made = 0;
    const deadline = socketDeadline(server, 30, () => {
      made++;
      return new TimedOut('too slow');
    });
    deadline.clear();
    deadline.clear();
    await sleep(80);
    assert.equal(made, 0);
    assert.equal(deadline.expired, undefined);
    assert.equal(server.destroyed, false);
    client.write('x');
    assert.equal(client.destroyed, false);
  });

  it('unref: a pending deadline does not hold the process open; without it, it does', async () => {
    const { server } = await socketPair();
    const timers = (): number => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    const before = timers();
    const kept = socketDeadline(server, 60_000, () => new TimedOut('too slow'));
    assert.equal(timers(), before + 1, 'a plain deadline keeps the process alive');
    const unref = socketDeadline(server, 60_000, () => new TimedOut('too slow'), { unref: true });
    assert.equal(timers(), before + 1, 'an unref deadline does not');
    kept.clear();
    unref.clear();
    assert.equal(timers(), before);
    assert.equal(server.destroyed, false);
  });
});
