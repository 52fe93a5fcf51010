/**
 * The integrity run, small enough for CI (a 64 MB COPY round trip, loaded in COPYs within DSQL's
 * transaction limits; one 16 MB value there and back; pipelined batches alongside), against the
 * endpoint with DSQL's rules; `npm run integrity` is the full one.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatIntegrity, integrityFailures, runIntegrity } from '../../scripts/lib/integrity.js';

test('COPY round trip and a large value arrive byte-identical with pipelined queries in flight', async () => {
  const MB = 1024 * 1024;
  const report = await runIntegrity({ copyBytes: 64 * MB, valueBytes: 16 * MB, values: 1 });
  console.log(formatIntegrity(report).replace(/^/gm, '# '));
  assert.deepEqual(integrityFailures(report), []);
  assert.ok(report.copy.bytes >= 64 * MB);
  assert.equal(report.values[0]?.bytes, 16 * MB);
});
