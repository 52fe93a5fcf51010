/**
 * Reads the V8 .cpuprofile that `node --cpu-prof` writes at exit and sums self time per function,
 * per source file and per broad category (our code, Node internals, dependencies, GC, idle).
 *
 * The format: `nodes` (call-tree nodes, each with a callFrame), `samples` (the node id on top of the
 * stack at each sample) and `timeDeltas` (µs since the previous sample). A sample's delta is its
 * node's self time.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
  columnNumber: number;
}

interface CpuProfile {
  nodes: { id: number; callFrame: CallFrame; children?: number[] }[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

export interface ProfileEntry {
  name: string;
  selfMs: number;
  /** Share of the non-idle time. */
  pct: number;
}

export interface ProfileResult {
  file: string;
  wallMs: number;
  busyMs: number;
  idleMs: number;
  tps: number;
  top: ProfileEntry[];
  byFile: ProfileEntry[];
  byCategory: ProfileEntry[];
  /** Busy time under the relay's two data handlers (server→client, client→server) and elsewhere. */
  byDirection: ProfileEntry[];
}

const DIRECTIONS: Record<string, string> = {
  onUpstreamData: 'server → client (Relay.onUpstreamData: scan + write to the plain client socket)',
  onClientData: 'client → server (Relay.onClientData: scan + write to the TLS upstream socket)',
};

function shortUrl(url: string, root: string): string {
  if (url === '') return '';
  let u = url.replace(/^file:\/\//, '');
  if (u.startsWith(root)) u = u.slice(root.length);
  const nm = u.lastIndexOf('node_modules/');
  if (nm >= 0) u = u.slice(nm + 'node_modules/'.length);
  return u;
}

function category(frame: CallFrame, root: string): string {
  const { url, functionName } = frame;
  if (url === '') {
    if (functionName === '(idle)') return 'idle';
    if (functionName === '(garbage collector)') return 'GC';
    if (functionName === '(program)') return 'V8/native (program)';
    return 'native/builtin';
  }
  if (url.startsWith('node:')) {
    const mod = url.slice('node:'.length).replace(/^internal\//, '');
    if (/^(tls|_tls|crypto)/.test(mod)) return 'node: TLS/crypto';
    if (/^(net|stream|streams|_stream|dns)/.test(mod)) return 'node: net/streams';
    if (/^(timers|process|async_hooks|event|events)/.test(mod)) return 'node: timers/events/ticks';
    return 'node: other';
  }
  const u = url.replace(/^file:\/\//, '');
  if (u.includes('node_modules/')) return `dependency: ${shortUrl(url, root).split('/')[0] ?? '?'}`;
  if (u.startsWith(root)) return `dsql-proxy: ${shortUrl(url, root).split('/').slice(0, 2).join('/')}`;
  return 'other';
}

export function runProfile(dir: string, tps: number, root: string): ProfileResult {
  const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'));
  if (!file) throw new Error(`no .cpuprofile written in ${dir} (did the proxy exit cleanly?)`);
  const prof = JSON.parse(readFileSync(join(dir, file), 'utf8')) as CpuProfile;
  const byId = new Map(prof.nodes.map((n) => [n.id, n.callFrame]));
  const parent = new Map<number, number>();
  for (const n of prof.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const direction = new Map<number, string>();
  const directionOf = (id: number): string => {
    const known = direction.get(id);
    if (known !== undefined) return known;
    const own = DIRECTIONS[byId.get(id)?.functionName ?? ''];
    const up = parent.get(id);
    const d =
      own ??
      (up === undefined ? 'elsewhere (reads, timers, GC, connection setup, startup)' : directionOf(up));
    direction.set(id, d);
    return d;
  };
  const dirs = new Map<string, number>();
  const fn = new Map<string, number>();
  const files = new Map<string, number>();
  const cats = new Map<string, number>();
  let idle = 0;
  let total = 0;
  const add = (m: Map<string, number>, k: string, v: number): void => {
    m.set(k, (m.get(k) ?? 0) + v);
  };
  for (let i = 0; i < prof.samples.length; i++) {
    const frame = byId.get(prof.samples[i] ?? -1);
    const dt = prof.timeDeltas[i] ?? 0;
    if (!frame || dt <= 0) continue;
    total += dt;
    if (frame.functionName === '(idle)') {
      idle += dt;
      continue;
    }
    const where = shortUrl(frame.url, root);
    const name = `${frame.functionName || '(anonymous)'}${where ? ` ${where}:${frame.lineNumber + 1}` : ''}`;
    add(fn, name, dt);
    add(files, where || '(native)', dt);
    add(cats, category(frame, root), dt);
    add(dirs, directionOf(prof.samples[i] ?? -1), dt);
  }
  const busy = total - idle;
  const list = (m: Map<string, number>, n: number): ProfileEntry[] =>
    [...m.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, n)
      .map(([name, us]) => ({ name, selfMs: us / 1000, pct: (100 * us) / busy }));
  return {
    file,
    wallMs: (prof.endTime - prof.startTime) / 1000,
    busyMs: busy / 1000,
    idleMs: idle / 1000,
    tps,
    top: list(fn, 25),
    byFile: list(files, 15),
    byCategory: list(cats, 12),
    byDirection: list(dirs, 3),
  };
}

/** `node --import tsx scripts/bench/profile.ts DIR`: print the summary of a profile directory. */
if (process.argv[1]?.endsWith('profile.ts') && process.argv[2]) {
  const r = runProfile(process.argv[2], 0, process.cwd().replace(/\/?$/, '/'));
  console.log(JSON.stringify(r, null, 2));
}
