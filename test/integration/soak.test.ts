/**
 * The soak run, small enough for CI (100 clients, two rounds of 5 s); `npm run soak` is the full one.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatSoak, runSoak, soakFailures } from '../../scripts/lib/soak.js';

test('100 clients, 2 rounds of 5 s: no errors; descriptors, live heap and session objects back to baseline', async () => {
  const report = await runSoak({ clients: 100, durationMs: 5_000, rounds: 2 });
  console.log(formatSoak(report).replace(/^/gm, '# '));
  assert.deepEqual(soakFailures(report), []);
  assert.ok(report.opsByKind.large && report.opsByKind.large > 0, 'large results ran');
  assert.equal(report.gcMb.rounds.length, 2, 'memory read after a GC after each round');
});
