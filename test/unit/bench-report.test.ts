import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  BASELINE,
  type BenchReport,
  emptyMeasurements,
  pairedRatios,
  ratioSpread,
  renderMarkdown,
  renderTable,
} from '../../scripts/bench/report.js';

const MiB = 2 ** 20;

function report(rss: BenchReport['rss']): BenchReport {
  return {
    date: '2026-12-06T18:12:00.000Z',
    quick: false,
    options: { reps: 1, seconds: 1, clients: [], idle: 1000, bulkMb: 1, scale: 1 },
    machine: { nproc: 2, cpu: 'test', memGiB: 1, node: 'v20', kernel: 'test' },
    versions: { postgres: 'PostgreSQL 18', pgbench: 'pgbench 15' },
    loadBefore: [0, 0, 0],
    ...emptyMeasurements(),
    rss,
    notes: [],
  };
}

/** The table line whose metric column is exactly `metric`. */
function line(table: string, metric: string): string | undefined {
  return table.split('\n').find((l) => l.startsWith(`${metric}  `));
}

describe('bench report: memory rows', () => {
  const busy = { target: 'proxy', n: 1000, beforeBytes: 110 * MiB, withBytes: 139 * MiB };
  const fresh = { target: 'proxy-fresh', n: 1000, beforeBytes: 71 * MiB, withBytes: 131 * MiB };

  it('reports the fresh proxy process beside the busy one, each with its own per-client figure', () => {
    const table = renderTable(report([busy, fresh]));
    assert.match(line(table, 'RSS with 1000 idle clients') ?? '', /\b139\b/);
    assert.match(line(table, 'RSS with 1000 idle clients, fresh proxy process') ?? '', /\b131\b/);
    // (131 - 71) MiB over 1000 clients = 61.4 KiB; the busy process's difference gives 29.7.
    assert.match(line(table, 'RSS per idle client, fresh proxy process') ?? '', /\b61\.4\b/);
    assert.match(line(table, 'RSS per idle client') ?? '', /\b29\.7\b/);
    assert.match(line(table, 'RSS before, fresh proxy process (at rest after startup)') ?? '', /\b71\.0\b/);
  });

  it('has no fresh-process rows for runs saved before the fresh process was measured', () => {
    const table = renderTable(report([busy]));
    assert.ok(line(table, 'RSS with 1000 idle clients'));
    assert.equal(table.includes('fresh proxy process'), false);
  });
});

describe('bench report: the baseline build beside the proxy', () => {
  it('pairs the two builds repetition by repetition, not median by median', () => {
    // Repetition 2 was slow for both builds: its ratio is still 1.0, where a ratio of medians
    // (1,000 ÷ 900) would read 1.11.
    assert.deepEqual(pairedRatios([1000, 500, 1100], [1000, 500, 900]), [1, 1, 1100 / 900]);
  });

  it('leaves out pairs it cannot form, and pairs nothing when the lists differ in length', () => {
    assert.deepEqual(pairedRatios([10, 20, 30], [5, 0, Number.NaN]), [2]);
    assert.deepEqual(pairedRatios([10, 20], [10]), []);
    assert.deepEqual(pairedRatios(undefined, [10]), []);
  });

  it('prints the median of the ratios and their min–max, to 3 decimals', () => {
    assert.equal(ratioSpread([1.02, 0.95, 0.99]), '0.990× (0.950×–1.020×)');
    assert.equal(ratioSpread([1.0504]), '1.050×');
    assert.equal(ratioSpread([]), '–');
  });

  function withBaseline(): BenchReport {
    const r = report([]);
    r.options.clients = [16];
    r.tps[16] = { direct: [9000, 9100], proxy: [5000, 4000], [BASELINE]: [4000, 4000] };
    r.cpuPerTxnUs[16] = { proxy: [60, 66], [BASELINE]: [50, 60] };
    r.mainCpuPerTxnUs = { 16: { proxy: [59, 65], [BASELINE]: [49, 59] } };
    r.baseline = { label: 'b4a0947' };
    return r;
  }

  it('has a table of both builds and their ratio, headed with the label', () => {
    const full = renderTable(withBaseline());
    const at = full.indexOf('Against the baseline build b4a0947');
    assert.ok(at > 0);
    const table = full.slice(at);
    assert.match(table, /this build +baseline b4a0947 +new÷baseline/);
    // tps ratios 1.25 and 1.0; CPU ratios 1.2 and 1.1.
    assert.match(
      line(table, 'pgbench -S, 16 clients') ?? '',
      /4,500 \(4,000–5,000\) +4,000 \(4,000–4,000\) +1\.125× \(1\.000×–1\.250×\)/,
    );
    assert.match(line(table, 'CPU per transaction, 16 clients') ?? '', /1\.150× \(1\.100×–1\.200×\)$/);
    const md = renderMarkdown(withBaseline());
    assert.match(md, /### Against the baseline build b4a0947/);
    assert.match(
      md,
      /\| pgbench -S, 16 clients \| tps \| 4,500 \(4,000–5,000\) \| 4,000 \(4,000–4,000\) \| 1\.125× \(1\.000×–1\.250×\) \|/,
    );
  });

  it('prints no baseline table for a run without a baseline', () => {
    const r = withBaseline();
    delete r.baseline;
    for (const text of [renderTable(r), renderMarkdown(r)]) {
      assert.equal(text.includes('Against the baseline'), false);
      assert.equal(text.includes('new÷baseline'), false);
    }
  });
});
