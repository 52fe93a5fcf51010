/**
 * The soak run, small enough for CI (100 clients for 10 s); `npm run soak` is the full one.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatSoak, runSoak, soakFailures } from '../support/soak.js';

test('100 clients for 10 s: no errors, descriptors and RSS back to baseline', async () => {
  const report = await runSoak({ clients: 100, durationMs: 10_000 });
  console.log(formatSoak(report).replace(/^/gm, '# '));
  assert.deepEqual(soakFailures(report), []);
  assert.ok(report.opsByKind.large && report.opsByKind.large > 0, 'large results ran');
});
