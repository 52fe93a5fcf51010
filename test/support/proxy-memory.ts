/**
 * Memory readings of a proxy process for the long-running harnesses (soak, fuzz). The proxy runs
 * with GC_NODE_ARGS: --expose-gc and a test-only preload (gc-on-signal.mjs) that answers SIGUSR2
 * with a full GC and a memory line, and SIGWINCH with a count of live per-connection objects.
 *
 * Why not RSS: freed native memory (OpenSSL's per-connection buffers above all) is not all given
 * back to the OS, so RSS stays above its baseline with no leak at all; a bare Node.js TLS client
 * opening and closing 1,000 connections per round grows from 92 to about 130 MB over 14 rounds
 * and levels off there. The live JavaScript heap after a full GC, and the number of session
 * objects still alive, are what a leak changes.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { ProxyProcess } from './proxy-process.js';

export const GC_NODE_ARGS = [
  '--expose-gc',
  '--import',
  fileURLToPath(new URL('./gc-on-signal.mjs', import.meta.url)),
];

export interface Memory {
  /** Resident set size, MB. */
  rss: number;
  /** Live JavaScript heap, MB: what sessions, sockets and buffers' wrappers hold. */
  heap: number;
}

/**
 * The live heap after a GC may exceed its baseline by this much. Measured: 1,000 clients connected
 * and gone, five times over: 11.9 MB at the start, 13.3 to 13.7 MB after each round.
 */
export const HEAP_SLACK_MB = 8;
/**
 * ClientSession objects still alive once every client has left. Measured: 0 to 3 after 100 to
 * 1,000 clients (V8's inline caches may keep the last few objects a function saw); a session
 * leak leaves one per client (the soak's CI variant with a leak injected: 260).
 */
export const LIVE_SESSIONS_SLACK = 10;
/**
 * Node's timer lists (one per distinct timeout duration) alive once every client has left: the
 * proxy's fixed timeouts need a handful (the soak's CI variant ends with 1). Unreferenced timers with
 * a per-session duration left lists behind until the duration ran out (up to an hour): 33 after the
 * CI variant's 220 sessions, 9,246 after 8 s of pgbench -C.
 */
export const TIMER_LISTS_SLACK = 20;

/** VmRSS of a process in bytes; NaN when the process has none (a zombie). */
export function rssBytes(pid: number): number {
  const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : Number.NaN;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function answer(proxy: ProxyProcess, signal: NodeJS.Signals, event: string, timeoutMs: number) {
  const seen = proxy.logs.length;
  proxy.child.kill(signal);
  for (const deadline = Date.now() + timeoutMs; Date.now() < deadline; ) {
    const line = proxy.logs.slice(seen).find((l) => l.json?.event === event);
    if (line?.json) return line.json;
    await sleep(50);
  }
  throw new Error(`the proxy did not answer ${signal} with ${event} (started with GC_NODE_ARGS?)`);
}

/** A full GC in the proxy, then what stays in use. */
export async function memoryAfterGc(proxy: ProxyProcess): Promise<Memory> {
  const j = await answer(proxy, 'SIGUSR2', 'test_gc_done', 10_000);
  return { rss: Number(j.rss) / 1048576, heap: Number(j.heap_used) / 1048576 };
}

/**
 * Reads the heap after a GC once a second until it stops falling (two readings within 0.5 MB) and
 * is back within HEAP_SLACK_MB of `baseline`, for at most `withinMs`. A session's objects stay
 * referenced until its upstream TLS socket has finished closing; with hundreds closing at once that
 * took several seconds here (1,000 clients: about 10 s). A leak never gets back.
 */
export async function settledMemory(
  proxy: ProxyProcess,
  baseline: Memory,
  withinMs = 30_000,
): Promise<Memory & { settleMs: number }> {
  const start = Date.now();
  let m = await memoryAfterGc(proxy);
  for (;;) {
    if (Date.now() - start >= withinMs) break;
    await sleep(1000);
    const next = await memoryAfterGc(proxy);
    const stable = next.heap > m.heap - 0.5;
    m = next;
    if (stable && m.heap <= baseline.heap + HEAP_SLACK_MB) break;
  }
  return { ...m, settleMs: Date.now() - start };
}

/** The proxy's classes with one live object per open session (gc-on-signal.mjs counts them). */
export const PER_SESSION_CLASSES = [
  'ClientSession',
  'MovableRelay',
  'Relay',
  'FrontendScanner',
  'BackendScanner',
];

/**
 * Live per-connection objects by class, from a heap snapshot. It inflates the proxy's RSS for a
 * while: take it after the last RSS reading. The classes are looked up in the proxy's own modules
 * (gc-on-signal.mjs); one that cannot be found any more throws instead of counting 0.
 */
export async function liveObjects(proxy: ProxyProcess): Promise<Record<string, number>> {
  const j = await answer(proxy, 'SIGWINCH', 'test_objects', 60_000);
  const missing = (j.missing ?? []) as string[];
  if (missing.length > 0) {
    throw new Error(
      `the leak check cannot find the proxy's ${missing.join(', ')} (renamed or moved? update gc-on-signal.mjs)`,
    );
  }
  return j.counts as Record<string, number>;
}

/**
 * The check of the check: with `open` sessions logged in and idle, each per-session class must count
 * at least `open` live objects, or the counts the leak check relies on are counting nothing.
 */
export function countFailures(objects: Record<string, number>, open: number): string[] {
  return PER_SESSION_CLASSES.filter((c) => (objects[c] ?? 0) < open).map(
    (c) =>
      `with ${open} sessions open the leak check counted ${objects[c] ?? 0} live ${c} objects: it counts nothing`,
  );
}

/** The failures of a before/after pair, empty when memory came back. */
export function memoryFailures(
  label: string,
  baseline: Memory,
  after: Memory,
  objects: Record<string, number> | undefined,
): string[] {
  const out: string[] = [];
  if (after.heap > baseline.heap + HEAP_SLACK_MB) {
    out.push(
      `${label}: live heap after GC ${after.heap.toFixed(1)} MB > baseline ${baseline.heap.toFixed(1)} + ${HEAP_SLACK_MB} MB`,
    );
  }
  if (objects) {
    const sessions = objects.ClientSession ?? 0;
    if (sessions > LIVE_SESSIONS_SLACK) {
      out.push(
        `${label}: ${sessions} ClientSession objects alive after every client left (at most ${LIVE_SESSIONS_SLACK})`,
      );
    }
    const timerLists = objects.TimersList ?? 0;
    if (timerLists > TIMER_LISTS_SLACK) {
      out.push(
        `${label}: ${timerLists} timer lists alive after every client left (at most ${TIMER_LISTS_SLACK}): timers outlive their sessions`,
      );
    }
  }
  return out;
}
