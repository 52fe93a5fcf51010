/**
 * A token bucket with a strict FIFO wait queue, for new upstream connections.
 *
 * DSQL limits new connections per cluster with a token bucket of its own (100 per second, burst
 * 1,000: docs/dsql.md, Limits); past it, logins fail with 53400. Shaping on our side turns a
 * thundering herd (a fleet restart, a pool refilling) into a short wait instead of failed logins.
 *
 * - The bucket holds up to `burst` tokens and refills at `ratePerSecond`; it starts full.
 * - acquire() takes a token at once when nobody is queued and one is there; otherwise the caller
 *   joins the back of the queue. Arrivals never overtake waiters: a token that appears goes to the
 *   head of the queue.
 * - One timer serves the whole queue: it fires when the head's token will be there.
 * - A waiter leaves the queue on its own timeout (ProxyError CONNECT_QUEUE_TIMEOUT) or abort signal.
 */

import { type Clock, systemClock } from '../core/clock.js';
import { formatDuration } from '../core/duration.js';
import { ProxyError } from '../errors.js';

export interface RateLimiterOptions {
  /** Tokens added per second; must be > 0. */
  ratePerSecond: number;
  /** Bucket size: how many acquisitions may happen at once after a quiet spell; at least 1. */
  burst: number;
  clock?: Clock;
  /** Told the queue length whenever it changes (for the gauge). */
  onQueueLength?: (length: number) => void;
}

export interface AcquireOptions {
  /** Longest time in the queue before the promise rejects with CONNECT_QUEUE_TIMEOUT. */
  timeoutMs: number;
  signal?: AbortSignal;
  /** Called once if the caller is still queued after `slowAfterMs` (to send a NOTICE). */
  onSlow?: () => void;
  /** Default 1000 ms. */
  slowAfterMs?: number;
}

interface Waiter {
  enqueuedAt: number;
  resolve(waitedMs: number): void;
  reject(err: unknown): void;
  timers: unknown[];
  cleanup(): void;
}

/** Float error in the refill arithmetic must not hold a token back. */
const EPSILON = 1e-9;

export class ConnectRateLimiter {
  readonly ratePerSecond: number;
  readonly burst: number;
  private readonly clock: Clock;
  private readonly onQueueLength: ((length: number) => void) | undefined;
  private tokens: number;
  private last: number;
  private readonly queue: Waiter[] = [];
  private timer: unknown;
  private timerSet = false;

  constructor(opts: RateLimiterOptions) {
    if (!(opts.ratePerSecond > 0)) throw new RangeError('ratePerSecond must be > 0');
    if (!(opts.burst >= 1)) throw new RangeError('burst must be >= 1');
    this.ratePerSecond = opts.ratePerSecond;
    this.burst = opts.burst;
    this.clock = opts.clock ?? systemClock;
    this.onQueueLength = opts.onQueueLength;
    this.tokens = opts.burst;
    this.last = this.clock.now();
  }

  get queueLength(): number {
    return this.queue.length;
  }

  /** Resolves with the time spent waiting (ms) once a token is taken. */
  acquire(opts: AcquireOptions): Promise<number> {
    if (opts.signal?.aborted) return Promise.reject(opts.signal.reason);
    this.refill();
    if (this.queue.length === 0 && this.tokens >= 1 - EPSILON) {
      this.tokens = Math.max(0, this.tokens - 1);
      return Promise.resolve(0);
    }
    return new Promise<number>((resolve, reject) => {
      const enqueuedAt = this.clock.now();
      const onAbort = (): void => this.leave(waiter, opts.signal?.reason);
      const waiter: Waiter = {
        enqueuedAt,
        resolve,
        reject,
        timers: [],
        cleanup: () => {
          for (const t of waiter.timers) this.clock.clearTimeout(t);
          opts.signal?.removeEventListener('abort', onAbort);
        },
      };
      waiter.timers.push(
        this.clock.setTimeout(() => this.leave(waiter, this.timeoutError(opts.timeoutMs)), opts.timeoutMs),
      );
      if (opts.onSlow) {
        const onSlow = opts.onSlow;
        waiter.timers.push(this.clock.setTimeout(onSlow, opts.slowAfterMs ?? 1000));
      }
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      this.queue.push(waiter);
      this.onQueueLength?.(this.queue.length);
      this.schedule();
    });
  }

  /** Stops the refill timer and fails every waiter (shutdown). */
  close(err: unknown): void {
    if (this.timerSet) this.clock.clearTimeout(this.timer);
    this.timerSet = false;
    for (const w of this.queue.splice(0)) {
      w.cleanup();
      w.reject(err);
    }
    this.onQueueLength?.(0);
  }

  private timeoutError(timeoutMs: number): ProxyError {
    const rate = Number.isInteger(this.ratePerSecond) ? this.ratePerSecond : this.ratePerSecond.toFixed(2);
    return new ProxyError('CONNECT_QUEUE_TIMEOUT', {
      message: `timed out after ${formatDuration(timeoutMs)} waiting for a DSQL connection slot: the proxy limits new connections to ${rate} per second (--connect-rate)`,
    });
  }

  private leave(waiter: Waiter, err: unknown): void {
    const i = this.queue.indexOf(waiter);
    if (i < 0) return;
    this.queue.splice(i, 1);
    waiter.cleanup();
    this.onQueueLength?.(this.queue.length);
    waiter.reject(err);
    // The head may have changed; its timer is still right (tokens do not depend on who waits).
    if (this.queue.length === 0 && this.timerSet) {
      this.clock.clearTimeout(this.timer);
      this.timerSet = false;
    }
  }

  private refill(): void {
    const now = this.clock.now();
    const elapsed = Math.max(0, now - this.last);
    this.last = now;
    this.tokens = Math.min(this.burst, this.tokens + (elapsed * this.ratePerSecond) / 1000);
  }

  /** Hands out the tokens there are to the head of the queue, then waits for the next one. */
  private drain(): void {
    this.timerSet = false;
    this.refill();
    const now = this.clock.now();
    let granted = false;
    while (this.queue.length > 0 && this.tokens >= 1 - EPSILON) {
      this.tokens = Math.max(0, this.tokens - 1);
      const w = this.queue.shift() as Waiter;
      w.cleanup();
      w.resolve(now - w.enqueuedAt);
      granted = true;
    }
    if (granted) this.onQueueLength?.(this.queue.length);
    this.schedule();
  }

  private schedule(): void {
    if (this.timerSet || this.queue.length === 0) return;
    const missing = Math.max(0, 1 - this.tokens);
    const delay = Math.max(1, Math.ceil((missing * 1000) / this.ratePerSecond));
    this.timerSet = true;
    this.timer = this.clock.setTimeout(() => this.drain(), delay);
  }
}
