/**
 * The README's options table, generated from OPTION_DOCS (src/config/options.ts), the one list of
 * options. `npm run docs:options` rewrites the table in place; test/unit/readme.test.ts fails when
 * the README and OPTION_DOCS drift apart.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { OPTION_DOCS } from '../src/config/options.js';

export const README = fileURLToPath(new URL('../README.md', import.meta.url));
export const TABLE_RE = /(<!-- options-table:[^\n]*-->\n)([\s\S]*?)(\n<!-- \/options-table -->)/;

export function optionsTable(): string {
  const cell = (s: string) => s.replaceAll('|', '\\|');
  const rows = OPTION_DOCS.map((o) => {
    const flag = o.env === '' ? `\`${o.key}\` (file only)` : `\`--${o.key}\``;
    const env = o.env ? `\`${o.env}\`` : '';
    return `| ${flag} | ${env} | ${cell(o.default)} | ${cell(o.description)} |`;
  });
  return ['| flag | environment | default | meaning |', '|---|---|---|---|', ...rows].join('\n');
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const text = readFileSync(README, 'utf8');
  if (!TABLE_RE.test(text)) throw new Error('README.md has no options-table markers');
  writeFileSync(
    README,
    text.replace(
      TABLE_RE,
      (_m, open: string, _t: string, close: string) => `${open}${optionsTable()}${close}`,
    ),
  );
}
