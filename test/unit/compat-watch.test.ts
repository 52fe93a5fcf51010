/**
 * SessionWatch (src/compat/watch.ts) on a manual clock with a stand-in relay: statement_timeout
 * cancels once and then ends the session after the grace period, the session timeouts end it with
 * PostgreSQL's SQLSTATEs, timers are re-armed lazily, and transaction ends reach SessionParams.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CompatSession } from '../../src/compat/session-state.js';
import { SessionWatch } from '../../src/compat/watch.js';
import { Metrics } from '../../src/core/metrics.js';
import { silentLogger } from '../../src/log.js';
import type { Relay } from '../../src/relay/relay.js';
import type { ServerFilterOptions } from '../../src/relay/server-filter.js';
import { errorFields } from './compat-prepared-fake.js';
import { ManualClock } from './manual-clock.js';

/** Counts setTimeout calls, to see that the watch re-arms lazily. */
class CountingClock extends ManualClock {
  armed = 0;
  override setTimeout(fn: () => void, ms: number): unknown {
    this.armed++;
    return super.setTimeout(fn, ms);
  }
}

/** The two relay methods the watch calls. */
class FakeRelay {
  filters: Array<ServerFilterOptions | undefined> = [];
  lastWords: Buffer[] = [];
  filterServer(options: ServerFilterOptions | undefined): void {
    this.filters.push(options);
  }
  terminate(bytes: Buffer): void {
    this.lastWords.push(bytes);
  }
  /** The FATAL the session ended with: its fields. */
  fatal(): Record<string, string> {
    assert.equal(this.lastWords.length, 1, 'terminated exactly once');
    const b = this.lastWords[0]!;
    assert.equal(String.fromCharCode(b[0]!), 'E');
    return errorFields(b.subarray(5));
  }
}

const metrics = new Metrics({ processMetrics: false });

function setup(
  opts: {
    startup?: Record<string, string>;
    statementTimeoutMs?: number;
    idleInTransactionTimeoutMs?: number;
    clientIdleMs?: number;
    graceMs?: number;
  } = {},
) {
  const clock = new CountingClock();
  const session = new CompatSession(
    new Map(Object.entries(opts.startup ?? {})),
    {
      statementTimeoutMs: opts.statementTimeoutMs ?? 0,
      idleInTransactionTimeoutMs: opts.idleInTransactionTimeoutMs ?? 0,
    },
    metrics,
    silentLogger(),
    () => {},
    () => {},
  );
  let cancels = 0;
  const watch = new SessionWatch(session, {
    clock,
    clientIdleMs: opts.clientIdleMs ?? 0,
    graceMs: opts.graceMs ?? 2000,
    cancel: () => cancels++,
  });
  const relay = new FakeRelay();
  watch.attach(relay as unknown as Relay);
  return { clock, session, watch, relay, cancels: () => cancels };
}

describe('SessionWatch: statement_timeout', () => {
  it('cancels once at the timeout, then ends the session with 08006 after the grace period', async () => {
    const { clock, watch, relay, cancels } = setup({ statementTimeoutMs: 5000, graceMs: 2000 });
    await clock.advance(100);
    watch.noteRequest();
    await clock.advance(4999);
    assert.equal(cancels(), 0, 'not yet');
    await clock.advance(1);
    assert.equal(cancels(), 1, 'at 5 s after the request');
    assert.equal(watch.cancelling, true);
    assert.deepEqual(relay.filters.at(-1), { minLevel: 'notice', rewriteCancel: true });
    await clock.advance(1999);
    assert.equal(relay.lastWords.length, 0, 'grace not over');
    await clock.advance(1);
    assert.equal(cancels(), 1, 'the cancel was sent once');
    const f = relay.fatal();
    assert.equal(f.C, '08006');
    assert.equal(f.S, 'FATAL');
    assert.equal(clock.pending, 0, 'no timer left after the end');
  });

  it('a ReadyForQuery before the timeout: no cancel, and the cancel state ends with the answer', async () => {
    const { clock, watch, relay, cancels } = setup({ statementTimeoutMs: 5000 });
    watch.noteRequest();
    await clock.advance(3000);
    watch.onReady('I', false);
    await clock.advance(60_000);
    assert.equal(cancels(), 0);
    assert.equal(relay.lastWords.length, 0);
    // A second request times out; its answer (the 57014) arrives within the grace period.
    watch.noteRequest();
    await clock.advance(5000);
    assert.equal(cancels(), 1);
    watch.onReady('I', false);
    assert.equal(watch.cancelling, false);
    assert.equal(relay.filters.at(-1), undefined, 'the rewrite filter is taken off');
    await clock.advance(60_000);
    assert.equal(relay.lastWords.length, 0, 'never terminated');
  });

  it('a pipelined request still waiting after a ReadyForQuery is timed from that ReadyForQuery', async () => {
    const { clock, watch, cancels } = setup({ statementTimeoutMs: 1000 });
    watch.noteRequest();
    await clock.advance(900);
    watch.onReady('I', true);
    await clock.advance(999);
    assert.equal(cancels(), 0);
    await clock.advance(1);
    assert.equal(cancels(), 1);
  });

  it('re-arms lazily: 1000 short requests under a 5 s timeout set a handful of timers', async () => {
    const { clock, watch, cancels } = setup({ statementTimeoutMs: 5000 });
    for (let i = 0; i < 1000; i++) {
      watch.noteRequest();
      clock.t += 3;
      watch.onReady('I', false);
    }
    await clock.advance(10_000);
    assert.equal(cancels(), 0);
    assert.ok(clock.armed <= 3, `${clock.armed} timers for 1000 requests`);
  });
});

describe('SessionWatch: session timeouts', () => {
  it('idle_in_transaction_session_timeout ends the session with FATAL 25P03', async () => {
    const { clock, watch, relay } = setup({ idleInTransactionTimeoutMs: 1000 });
    watch.noteStatement('BEGIN');
    watch.noteRequest();
    await clock.advance(50);
    watch.onReady('T', false);
    await clock.advance(999);
    assert.equal(relay.lastWords.length, 0);
    await clock.advance(1);
    assert.equal(relay.fatal().C, '25P03');
  });

  it('a busy transaction is not idle; idle time counts from its last answer', async () => {
    const { clock, watch, relay } = setup({ idleInTransactionTimeoutMs: 1000 });
    watch.noteRequest();
    watch.onReady('T', false);
    await clock.advance(900);
    watch.noteRequest();
    await clock.advance(5000);
    assert.equal(relay.lastWords.length, 0, 'a statement runs: not idle');
    watch.onReady('T', false);
    await clock.advance(999);
    assert.equal(relay.lastWords.length, 0);
    await clock.advance(1);
    assert.equal(relay.fatal().C, '25P03');
  });

  it('--client-idle-timeout ends an idle session with FATAL 57P05, counted from the last answer', async () => {
    const { clock, watch, relay } = setup({ clientIdleMs: 3000 });
    await clock.advance(2000);
    watch.noteRequest();
    await clock.advance(500);
    watch.onReady('I', false);
    await clock.advance(2999);
    assert.equal(relay.lastWords.length, 0);
    await clock.advance(1);
    assert.equal(relay.fatal().C, '57P05');
  });

  it('transaction_timeout ends the session with FATAL 25P04, busy or not', async () => {
    const { clock, watch, relay } = setup({ startup: { transaction_timeout: '2000' } });
    watch.noteRequest();
    watch.onReady('T', false);
    await clock.advance(1000);
    watch.noteRequest();
    await clock.advance(999);
    assert.equal(relay.lastWords.length, 0);
    await clock.advance(1);
    assert.equal(relay.fatal().C, '25P04');
  });

  it('no timeout configured: no timer at all', async () => {
    const { clock, watch, relay } = setup();
    watch.noteRequest();
    watch.onReady('T', false);
    await clock.advance(1e9);
    assert.equal(clock.armed, 0);
    assert.equal(relay.lastWords.length, 0);
  });
});

describe('SessionWatch: transaction ends reach SessionParams', () => {
  const inTxnSet = (watch: SessionWatch, session: CompatSession): void => {
    watch.noteStatement('BEGIN');
    watch.noteRequest();
    watch.onReady('T', false);
    assert.equal(session.txnFresh, true, 'only its BEGIN so far');
    const r = session.params.setConfig('statement_timeout', '1234', false, true);
    assert.ok(r.ok);
    assert.equal(session.params.statementTimeoutMs, 1234);
  };

  it('COMMIT keeps a SET made in the transaction', () => {
    const { watch, session } = setup();
    inTxnSet(watch, session);
    watch.noteStatement('COMMIT');
    watch.noteRequest();
    watch.onReady('I', false);
    assert.equal(session.params.statementTimeoutMs, 1234);
    assert.equal(session.txnFresh, false);
  });

  for (const [how, act] of [
    ['ROLLBACK', (w: SessionWatch) => w.noteStatement('ROLLBACK')],
    ['abort', (w: SessionWatch) => w.noteStatement('abort')],
    ['a ROLLBACK the layer ran', (w: SessionWatch) => w.noteRollback()],
    ['an error, then the end of the block', (w: SessionWatch) => w.noteError()],
  ] as const) {
    it(`${how} undoes a SET made in the transaction`, () => {
      const { watch, session } = setup();
      inTxnSet(watch, session);
      act(watch);
      watch.noteRequest();
      watch.onReady('I', false);
      assert.equal(session.params.statementTimeoutMs, 0);
    });
  }

  it('a failed transaction (status E) ended by COMMIT is rolled back', () => {
    const { watch, session } = setup();
    inTxnSet(watch, session);
    watch.noteRequest();
    watch.onReady('E', false);
    watch.noteStatement('COMMIT');
    watch.noteRequest();
    watch.onReady('I', false);
    assert.equal(session.params.statementTimeoutMs, 0);
  });

  it('a SET inside a rolled-back transaction does not change the running timeout', async () => {
    const { clock, watch, session, cancels } = setup();
    inTxnSet(watch, session);
    watch.paramsChanged();
    watch.noteStatement('ROLLBACK');
    watch.noteRequest();
    watch.onReady('I', false);
    watch.noteRequest();
    await clock.advance(10_000);
    assert.equal(cancels(), 0, 'statement_timeout is 0 again');
  });
});
