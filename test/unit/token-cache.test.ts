import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import { type Clock, systemClock } from '../../src/core/clock.js';
import { ProxyError } from '../../src/errors.js';
import { type Logger, silentLogger } from '../../src/log.js';
import type { SignedToken, TokenAction } from '../../src/token/signer.js';
import { isUsable, marginFor, TokenCache, type TokenEvent } from '../../src/token/token-cache.js';

// ---------------------------------------------------------------------------------------------------
// A manual clock: timers fire only from advance(), in due order, each followed by a microtask flush.

interface FakeTimer {
  id: number;
  at: number;
  fn: () => void;
  unrefed: boolean;
  unref(): FakeTimer;
}

class FakeClock implements Clock {
  private seq = 0;
  timers: FakeTimer[] = [];
  unrefCount = 0;

  constructor(public t: number) {}

  now(): number {
    return this.t;
  }

  setTimeout(fn: () => void, ms: number): unknown {
    const clock = this;
    const timer: FakeTimer = {
      id: ++this.seq,
      at: this.t + Math.max(0, ms),
      fn,
      unrefed: false,
      unref() {
        this.unrefed = true;
        clock.unrefCount += 1;
        return this;
      },
    };
    this.timers.push(timer);
    return timer;
  }

  clearTimeout(h: unknown): void {
    this.timers = this.timers.filter((t) => t !== h);
  }

  /** Moves time forward by ms, firing every timer that falls due, in order. */
  async advance(ms: number): Promise<void> {
    const end = this.t + ms;
    for (;;) {
      const due = this.timers.filter((t) => t.at <= end).sort((a, b) => a.at - b.at || a.id - b.id)[0];
      if (!due) break;
      this.timers = this.timers.filter((t) => t !== due);
      this.t = due.at;
      due.fn();
      await flush();
    }
    this.t = end;
    await flush();
  }

  /** Advances to an absolute time. */
  async advanceTo(at: number): Promise<void> {
    await this.advance(at - this.t);
  }
}

const flush = () => new Promise<void>((resolve) => setImmediate(resolve));

/** Whether a promise has settled after a flush of pending work. */
async function settled<T>(p: Promise<T>): Promise<boolean> {
  let done = false;
  p.then(
    () => {
      done = true;
    },
    () => {
      done = true;
    },
  );
  await flush();
  return done;
}

// ---------------------------------------------------------------------------------------------------
// A fake signer with the real signer's date truncation: signedAt is the whole second (X-Amz-Date).

type Mode = 'ok' | 'fail' | 'hang';

class FakeSigner {
  calls: Array<{ action: TokenAction; at: number }> = [];
  issued = new Map<string, SignedToken>();
  mode: Mode = 'ok';
  latencyMs = 0;
  failWith: unknown = Object.assign(new Error('Could not load credentials from any providers'), {
    name: 'CredentialsProviderError',
  });
  credentialsExpireAt: number | undefined;
  private hanging: Array<() => void> = [];

  constructor(
    private readonly clock: FakeClock,
    public ttlMs: number,
  ) {}

  readonly sign = (action: TokenAction): Promise<SignedToken> => {
    this.calls.push({ action, at: this.clock.now() });
    const produce = (): SignedToken => {
      if (this.mode === 'fail') throw this.failWith;
      const signedAt = Math.floor(this.clock.now() / 1000) * 1000;
      let expiresAt = signedAt + this.ttlMs;
      const capped = this.credentialsExpireAt !== undefined && this.credentialsExpireAt < expiresAt;
      if (capped) expiresAt = this.credentialsExpireAt!;
      const t: SignedToken = {
        token: `SECRET-TOKEN-${action}-${this.calls.length}`,
        signedAt,
        expiresAt,
        ...(capped ? { credentialsExpireAt: expiresAt } : {}),
      };
      this.issued.set(t.token, t);
      return t;
    };
    if (this.mode === 'hang') {
      return new Promise((resolve, reject) => {
        this.hanging.push(() => {
          try {
            resolve(produce());
          } catch (err) {
            reject(err);
          }
        });
      });
    }
    if (this.latencyMs > 0) {
      return new Promise((resolve, reject) => {
        this.clock.setTimeout(() => {
          try {
            resolve(produce());
          } catch (err) {
            reject(err);
          }
        }, this.latencyMs);
      });
    }
    return Promise.resolve().then(produce);
  };

  /** Lets every hanging signing finish, in the current mode (set mode first). */
  release(mode: Mode = 'ok'): void {
    this.mode = mode;
    const pending = this.hanging;
    this.hanging = [];
    for (const finish of pending) finish();
  }
}

function capturingLogger(): { logger: Logger; lines: Array<Record<string, unknown>>; raw: string[] } {
  const lines: Array<Record<string, unknown>> = [];
  const raw: string[] = [];
  const logger = pino(
    { level: 'debug' },
    {
      write(s: string) {
        raw.push(s);
        lines.push(JSON.parse(s) as Record<string, unknown>);
      },
    },
  );
  return { logger, lines, raw };
}

const T0 = 1_700_000_000_000; // a whole second
const S = 1000;

function setup(ttlMs = 900 * S, opts: { random?: () => number; start?: number } = {}) {
  const clock = new FakeClock(opts.start ?? T0);
  const signer = new FakeSigner(clock, ttlMs);
  const log = capturingLogger();
  const events: TokenEvent[] = [];
  const cache = new TokenCache({
    sign: signer.sign,
    clock,
    logger: log.logger,
    random: opts.random ?? (() => 0.5),
    onEvent: (e) => events.push(e),
  });
  return { clock, signer, cache, events, ...log };
}

// ---------------------------------------------------------------------------------------------------

describe('TokenCache rules', () => {
  it('margin is min(30 s, lifetime / 5)', () => {
    assert.equal(marginFor({ signedAt: 0, expiresAt: 900 * S }), 30 * S);
    assert.equal(marginFor({ signedAt: 0, expiresAt: 5 * S }), 1 * S);
    assert.equal(marginFor({ signedAt: 0, expiresAt: 150 * S }), 30 * S);
    assert.equal(isUsable({ signedAt: 0, expiresAt: 5 * S }, 3999), true);
    assert.equal(isUsable({ signedAt: 0, expiresAt: 5 * S }, 4000), false);
  });
});

describe('TokenCache', () => {
  it('start() signs each listed action once and re-signs at 2/3 of the lifetime', async () => {
    const { clock, signer, cache, events } = setup();
    await cache.start(['DbConnect', 'DbConnectAdmin']);
    assert.equal(signer.calls.length, 2);
    assert.deepEqual(cache.peek('DbConnect'), { signedAt: T0, expiresAt: T0 + 900 * S });

    await clock.advanceTo(T0 + 600 * S - 1);
    assert.equal(signer.calls.length, 2, 'nothing before 2/3');
    await clock.advance(1);
    assert.equal(signer.calls.length, 4, 'both re-signed at 600 s');
    assert.deepEqual(
      signer.calls.slice(2).map((c) => c.at),
      [T0 + 600 * S, T0 + 600 * S],
    );
    assert.deepEqual(cache.peek('DbConnect'), { signedAt: T0 + 600 * S, expiresAt: T0 + 1500 * S });

    await clock.advanceTo(T0 + 1200 * S);
    assert.equal(signer.calls.length, 6, 'and again 600 s after that');
    assert.equal(events.filter((e) => e.type === 'signed').length, 6);
    assert.ok(clock.timers.length > 0 && clock.timers.every((t) => t.unrefed), 'timers are unref()d');
    cache.stop();
  });

  it('get() returns the cached token without waiting, also while a refresh hangs', async () => {
    const { clock, signer, cache } = setup();
    await cache.start(['DbConnect']);
    for (let i = 0; i < 10; i++) assert.equal(await cache.get('DbConnect'), 'SECRET-TOKEN-DbConnect-1');
    assert.equal(signer.calls.length, 1);

    signer.mode = 'hang';
    await clock.advanceTo(T0 + 600 * S);
    assert.equal(signer.calls.length, 2, 'refresh in flight');
    const p = cache.get('DbConnect');
    assert.equal(await settled(p), true, 'get() did not wait for the hanging refresh');
    assert.equal(await p, 'SECRET-TOKEN-DbConnect-1');
    for (let i = 0; i < 10; i++) assert.equal(await cache.get('DbConnect'), 'SECRET-TOKEN-DbConnect-1');
    assert.equal(signer.calls.length, 2, 'no extra signing while one is in flight');

    signer.release('ok');
    await flush();
    assert.equal(await cache.get('DbConnect'), 'SECRET-TOKEN-DbConnect-2');
    cache.stop();
  });

  it('never returns a token within its margin; waits for the shared signing instead', async () => {
    const { clock, signer, cache } = setup();
    await cache.start(['DbConnect']);
    signer.mode = 'hang';
    await clock.advanceTo(T0 + 870 * S - 1); // expiresAt 900 s - margin 30 s - 1 ms
    assert.equal(await cache.get('DbConnect'), 'SECRET-TOKEN-DbConnect-1');
    await clock.advance(1);
    assert.equal(cache.status().DbConnect?.hasUsable, false);
    const p1 = cache.get('DbConnect');
    const p2 = cache.get('DbConnect');
    assert.equal(await settled(p1), false, 'the old token is not handed out');
    assert.equal(signer.calls.length, 2, 'the hanging refresh is shared, not repeated');
    signer.release('ok');
    assert.equal(await p1, 'SECRET-TOKEN-DbConnect-2');
    assert.equal(await p2, 'SECRET-TOKEN-DbConnect-2');
    cache.stop();
  });

  for (const latencyMs of [0, 300]) {
    it(`5-second TTL, signing latency ${latencyMs} ms: 20 s of get() every 100 ms only sees usable tokens`, async () => {
      const { clock, signer, cache } = setup(5 * S, { start: T0 + 700 }); // signing lands mid-second
      signer.latencyMs = latencyMs;
      const startP = cache.start(['DbConnect']);
      await clock.advance(latencyMs);
      await startP;
      const seen = new Set<string>();
      let gets = 0;
      for (let i = 0; i < 200; i++) {
        await clock.advance(100);
        const token = await cache.get('DbConnect');
        gets += 1;
        const t = signer.issued.get(token);
        assert.ok(t, 'a token the signer issued');
        assert.ok(isUsable(t, clock.now()), `usable at return time (t=${clock.now() - T0})`);
        assert.ok(clock.now() < t.expiresAt - 1000, 'at least the 1 s margin left');
        seen.add(token);
      }
      assert.ok(seen.size >= 5, `several distinct tokens (${seen.size})`);
      assert.ok(
        signer.calls.length <= gets / 20,
        `far fewer signings (${signer.calls.length}) than gets (${gets})`,
      );
      cache.stop();
    });
  }

  it('credentials that expire before the token cap it, and the refresh follows the capped lifetime', async () => {
    const { clock, signer, cache } = setup(900 * S);
    signer.credentialsExpireAt = T0 + 60 * S;
    await cache.start(['DbConnect']);
    assert.deepEqual(cache.peek('DbConnect'), { signedAt: T0, expiresAt: T0 + 60 * S });
    signer.credentialsExpireAt = undefined; // the provider hands out fresh credentials next time
    signer.mode = 'hang';
    await clock.advanceTo(T0 + 40 * S); // 2/3 of 60 s
    assert.equal(signer.calls.length, 2);
    await clock.advanceTo(T0 + 48 * S - 1); // margin min(30, 60/5) = 12 s
    assert.equal(await cache.get('DbConnect'), 'SECRET-TOKEN-DbConnect-1');
    await clock.advance(1);
    assert.equal(await settled(cache.get('DbConnect')), false);
    signer.release('ok');
    await flush();
    assert.deepEqual(cache.peek('DbConnect'), { signedAt: T0 + 48 * S, expiresAt: T0 + 948 * S });
    cache.stop();
  });

  it('get() rejects a fresh token that credentials make unusable at once, saying so', async () => {
    const { signer, cache } = setup(900 * S);
    signer.credentialsExpireAt = T0 + 1 * S; // lifetime 1 s, margin 200 ms: usable until T0+800
    signer.latencyMs = 0;
    const clock = (cache as unknown as { clock: FakeClock }).clock;
    clock.t = T0 + 900;
    await assert.rejects(cache.get('DbConnect'), (err: unknown) => {
      assert.ok(err instanceof ProxyError);
      assert.equal(err.code, 'TOKEN_UNAVAILABLE');
      assert.match(err.message, /credentials expire too soon/);
      return true;
    });
    cache.stop();
  });

  it('retries failed refreshes with exponential backoff and full jitter, serving the old token meanwhile', async () => {
    const { clock, signer, cache, lines, events } = setup(900 * S, { random: () => 0.5 });
    await cache.start(['DbConnect']);
    signer.mode = 'fail';
    await clock.advanceTo(T0 + 700 * S);
    const retryTimes = signer.calls.slice(1).map((c) => (c.at - T0 - 600 * S) / 1);
    // jitter 0.5 of min(30 s, 1 s · 2^(n-1)): +0.5, +1, +2, +4, +8, +15, +15, ...
    assert.deepEqual(retryTimes.slice(0, 8), [0, 500, 1500, 3500, 7500, 15500, 30500, 45500]);
    assert.equal(await cache.get('DbConnect'), 'SECRET-TOKEN-DbConnect-1', 'old token still served');
    const st = cache.status().DbConnect!;
    assert.equal(st.hasUsable, true);
    assert.equal(st.consecutiveFailures, signer.calls.length - 1);
    assert.equal(st.lastError, 'no AWS credentials found');
    const warns = lines.filter((l) => l.level === 40);
    assert.equal(warns.length, signer.calls.length - 1, 'one warning per failed attempt');
    assert.match(String(warns[0]?.msg), /token signing failed: no AWS credentials found/);
    assert.ok(events.some((e) => e.type === 'sign_failed' && e.error === 'no AWS credentials found'));

    signer.mode = 'ok';
    await clock.advance(30 * S);
    const st2 = cache.status().DbConnect!;
    assert.equal(st2.consecutiveFailures, 0);
    assert.equal(st2.lastError, undefined);
    assert.ok(lines.some((l) => l.msg === 'token signing recovered' && (l.failedAttempts as number) > 0));
    assert.notEqual(await cache.get('DbConnect'), 'SECRET-TOKEN-DbConnect-1');
    cache.stop();
  });

  it('brings a retry forward so one attempt happens before the current token stops being usable', async () => {
    const { clock, signer, cache } = setup(60 * S, { random: () => 0.999 });
    await cache.start(['DbConnect']); // usable until 48 s, refresh at 40 s
    signer.mode = 'fail';
    await clock.advanceTo(T0 + 48 * S - 1);
    const times = signer.calls.slice(1).map((c) => c.at - T0);
    assert.ok(times.length >= 4, `attempts: ${times}`);
    const last = times[times.length - 1]!;
    assert.ok(last > 47 * S && last < 48 * S, `an attempt just before the usable end (${last})`);
    cache.stop();
  });

  it('with no usable token, get() rejects with TOKEN_UNAVAILABLE and an actionable message', async () => {
    const { clock, signer, cache } = setup();
    signer.mode = 'fail';
    await cache.start(['DbConnect']); // does not throw
    assert.equal(signer.calls.length, 1);
    await clock.advance(1000);
    await assert.rejects(cache.get('DbConnect'), (err: unknown) => {
      assert.ok(err instanceof ProxyError);
      assert.equal(err.code, 'TOKEN_UNAVAILABLE');
      assert.equal(err.sqlstate, '08001');
      assert.match(err.message, /no AWS credentials found/);
      assert.match(err.hint ?? '', /AWS_ACCESS_KEY_ID/);
      assert.match(err.hint ?? '', /aws sso login/);
      return true;
    });
    cache.stop();
  });

  it('after a failure, get() fails fast for the initial retry delay instead of signing again', async () => {
    const { clock, signer, cache } = setup();
    signer.mode = 'fail';
    await assert.rejects(cache.get('DbConnect'), ProxyError);
    assert.equal(signer.calls.length, 1);
    await assert.rejects(cache.get('DbConnect'), /no AWS credentials found/);
    await assert.rejects(cache.get('DbConnect'), ProxyError);
    assert.equal(signer.calls.length, 1, 'no new signing within 1 s of the failure');
    cache.stop(); // drop the background retry; only get() signs from here
    signer.mode = 'ok';
    await clock.advance(1000);
    assert.equal(await cache.get('DbConnect'), 'SECRET-TOKEN-DbConnect-2');
  });

  it('explains an expired SSO session', async () => {
    const { signer, cache } = setup();
    signer.mode = 'fail';
    signer.failWith = new Error(
      'The SSO session associated with this profile has expired. To refresh this SSO session run aws sso login with the corresponding profile.',
    );
    await assert.rejects(cache.get('DbConnectAdmin'), (err: unknown) => {
      assert.ok(err instanceof ProxyError);
      assert.match(err.message, /SSO session has expired/);
      assert.match(err.hint ?? '', /aws sso login/);
      return true;
    });
    cache.stop();
  });

  it('concurrent get()s share one signing, and the action joins the refresh schedule', async () => {
    const { clock, signer, cache } = setup(900 * S);
    signer.latencyMs = 50;
    const ps = Array.from({ length: 20 }, () => cache.get('DbConnectAdmin'));
    await clock.advance(50);
    const tokens = await Promise.all(ps);
    assert.equal(signer.calls.length, 1);
    assert.ok(tokens.every((t) => t === 'SECRET-TOKEN-DbConnectAdmin-1'));
    await clock.advanceTo(T0 + 600 * S + 50);
    assert.equal(signer.calls.length, 2, 'refreshed in the background though never listed in start()');
    assert.equal(signer.calls[1]?.action, 'DbConnectAdmin');
    cache.stop();
  });

  it('a sign function that throws synchronously or returns garbage counts as a failure', async () => {
    const clock = new FakeClock(T0);
    let n = 0;
    const cache = new TokenCache({
      clock,
      logger: silentLogger(),
      // Deterministic jitter: the background retry fires at 500 ms (the garbage result), and the
      // get() at 1000 ms answers from that fresh failure without signing again.
      random: () => 0.5,
      sign: (() => {
        n += 1;
        if (n === 1) throw 'plain string';
        return Promise.resolve({ token: '', signedAt: 0, expiresAt: 0 });
      }) as (a: TokenAction) => Promise<SignedToken>,
    });
    await assert.rejects(cache.get('DbConnect'), ProxyError);
    await clock.advance(1000);
    await assert.rejects(cache.get('DbConnect'), ProxyError);
    assert.equal(cache.status().DbConnect?.consecutiveFailures, 2);
    cache.stop();
  });

  it('never logs the token', async () => {
    const { clock, signer, cache, raw } = setup(5 * S);
    await cache.start(['DbConnect', 'DbConnectAdmin']);
    await clock.advance(20 * S);
    signer.mode = 'fail';
    await clock.advance(20 * S);
    signer.mode = 'ok';
    await clock.advance(20 * S);
    assert.ok(raw.length > 10);
    for (const line of raw) assert.ok(!line.includes('SECRET-TOKEN'), line);
    cache.stop();
  });

  it('stop() clears every timer and nothing is signed afterwards', async () => {
    const { clock, signer, cache } = setup();
    await cache.start(['DbConnect', 'DbConnectAdmin']);
    assert.equal(clock.timers.length, 2);
    cache.stop();
    assert.equal(clock.timers.length, 0);
    await clock.advance(3600 * S);
    assert.equal(signer.calls.length, 2);
  });

  it('status() and peek() report per action without the token', async () => {
    const { cache } = setup();
    assert.deepEqual(cache.status(), {});
    assert.equal(cache.peek('DbConnect'), undefined);
    await cache.start(['DbConnect']);
    assert.deepEqual(cache.status(), {
      DbConnect: { hasUsable: true, expiresAt: T0 + 900 * S, consecutiveFailures: 0 },
    });
    assert.ok(!JSON.stringify(cache.status()).includes('SECRET-TOKEN'));
    cache.stop();
  });

  it('timers on the system clock are unref()d so the process can exit', async () => {
    const handles: Array<ReturnType<typeof setTimeout>> = [];
    const clock: Clock = {
      now: systemClock.now,
      clearTimeout: systemClock.clearTimeout,
      setTimeout: (fn, ms) => {
        const h = systemClock.setTimeout(fn, ms) as ReturnType<typeof setTimeout>;
        handles.push(h);
        return h;
      },
    };
    const cache = new TokenCache({
      clock,
      logger: silentLogger(),
      sign: async () => {
        const signedAt = Math.floor(Date.now() / 1000) * 1000;
        return { token: 'x', signedAt, expiresAt: signedAt + 900 * S };
      },
    });
    await cache.start(['DbConnect']);
    assert.equal(handles.length, 1);
    assert.equal(handles[0]?.hasRef(), false);
    cache.stop();
  });
});
