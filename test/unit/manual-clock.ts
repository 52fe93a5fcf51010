/**
 * A Clock (src/core/clock.ts) whose time moves only when a test says: timers fire in due order (ties
 * in the order they were set) as advance()/advanceTo() passes them.
 */
import type { Clock } from '../../src/core/clock.js';

const nextTurn = (): Promise<void> => new Promise((r) => setImmediate(r));

export class ManualClock implements Clock {
  private seq = 0;
  private timers: Array<{ id: number; at: number; fn: () => void }> = [];

  constructor(public t = 0) {}

  now(): number {
    return this.t;
  }

  setTimeout(fn: () => void, ms: number): unknown {
    const timer = { id: ++this.seq, at: this.t + ms, fn };
    this.timers.push(timer);
    return timer;
  }

  clearTimeout(h: unknown): void {
    this.timers = this.timers.filter((t) => t !== h);
  }

  get pending(): number {
    return this.timers.length;
  }

  advance(ms: number, settle: () => Promise<void> = nextTurn): Promise<void> {
    return this.advanceTo(this.t + ms, settle);
  }

  /**
   * Runs time forward to `until`. After each timer, `settle` lets the work it started go on before
   * the next one is looked at (by default one turn of the event loop).
   */
  async advanceTo(until: number, settle: () => Promise<void> = nextTurn): Promise<void> {
    for (;;) {
      const next = [...this.timers].sort((a, b) => a.at - b.at || a.id - b.id)[0];
      if (!next || next.at > until) break;
      this.timers = this.timers.filter((t) => t !== next);
      this.t = next.at;
      next.fn();
      await settle();
    }
    this.t = until;
    await nextTurn();
  }
}
