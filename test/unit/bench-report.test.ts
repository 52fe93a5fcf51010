import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type BenchReport, emptyMeasurements, renderTable } from '../../scripts/bench/report.js';

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
