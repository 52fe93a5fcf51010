/**
 * Tests clean up what they make: a representative integration file (a real proxy with its CA, AWS
 * config and auth file with a test password) and a unit file that writes a CA, each run with a temp
 * dir of their own, leave no `dsql-proxy-*` entry behind. Also the helper itself: what `tempDir` makes
 * is gone once its process exits.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';

const repo = fileURLToPath(new URL('../..', import.meta.url));
// The children's TMPDIR: a directory of this test's own, so that other runs on the machine cannot
// make the check pass or fail. Named unlike what it looks for.
const parent = mkdtempSync(join(tmpdir(), 'temp-dirs-check-'));
after(() => rmSync(parent, { recursive: true, force: true }));

/** Runs `args` under node with TMPDIR=`dir` (a top-level run, not a subtest of this runner). */
function runIn(dir: string, args: string[]): { status: number | null; output: string } {
  const { NODE_TEST_CONTEXT: _, ...env } = process.env;
  const run = spawnSync(process.execPath, ['--import', 'tsx', ...args], {
    cwd: repo,
    env: { ...env, TMPDIR: dir },
    encoding: 'utf8',
    timeout: 180_000,
  });
  return { status: run.status, output: `${run.stdout}\n${run.stderr}` };
}

function leftovers(dir: string): string[] {
  return readdirSync(dir).filter((name) => name.startsWith('dsql-proxy-'));
}

for (const file of [
  'test/integration/startup-length.test.ts',
  'test/unit/handshake-client-hello.tls.test.ts',
]) {
  test(`${file} leaves no dsql-proxy-* directory in the temp dir`, () => {
    const dir = mkdtempSync(join(parent, 'run-'));
    const run = runIn(dir, ['--test', '--test-reporter=spec', file]);
    assert.equal(run.status, 0, run.output);
    assert.deepEqual(leftovers(dir), [], 'left behind after the run');
  });
}

test('tempDir: the directory exists while the process runs and is gone after it exits', () => {
  const dir = mkdtempSync(join(parent, 'helper-'));
  const helper = pathToFileURL(join(repo, 'test', 'support', 'temp-dirs.ts')).href;
  const script = [
    `import { tempDir } from ${JSON.stringify(helper)};`,
    "import { existsSync, writeFileSync } from 'node:fs';",
    "const made = tempDir('probe');",
    "writeFileSync(made + '/secret.txt', 'x');",
    'console.log(made, existsSync(made));',
  ].join('\n');
  const run = runIn(dir, ['--input-type=module', '-e', script]);
  assert.equal(run.status, 0, run.output);
  const [made, existed] = run.output.trim().split(/\s+/);
  assert.equal(existed, 'true', run.output);
  assert.ok(made?.startsWith(join(dir, 'dsql-proxy-probe-')), run.output);
  assert.equal(existsSync(made ?? ''), false, 'removed at exit');
  assert.deepEqual(leftovers(dir), []);
});
