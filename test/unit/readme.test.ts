/** The README's options table is generated from OPTION_DOCS; this keeps the two from drifting. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { optionsTable, README, TABLE_RE } from '../../scripts/readme-options.js';

test('README options table matches OPTION_DOCS exactly (fix: npm run docs:options)', () => {
  const m = TABLE_RE.exec(readFileSync(README, 'utf8'));
  assert.ok(m, 'README has the options-table markers');
  assert.equal(m[2], optionsTable());
});
