/** The README's options table is generated from OPTION_DOCS; this keeps the two from drifting. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { OPTION_DOCS } from '../../src/config/options.js';

function tableFromDocs(): string {
  const cell = (s: string) => s.replaceAll('|', '\\|');
  const rows = OPTION_DOCS.map((o) => {
    const flag = o.env === '' ? `\`${o.key}\` (file only)` : `\`--${o.key}\``;
    const env = o.env ? `\`${o.env}\`` : '';
    return `| ${flag} | ${env} | ${cell(o.default)} | ${cell(o.description)} |`;
  });
  return ['| flag | environment | default | meaning |', '|---|---|---|---|', ...rows].join('\n');
}

test('README options table matches OPTION_DOCS exactly', () => {
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
  const m = /<!-- options-table:[^\n]*-->\n([\s\S]*?)\n<!-- \/options-table -->/.exec(readme);
  assert.ok(m, 'README has the options-table markers');
  assert.equal(m[1], tableFromDocs());
});
