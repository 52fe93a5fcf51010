import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const cli = fileURLToPath(new URL('../../src/cli.ts', import.meta.url));

/** Runs the CLI from the sources with stdin closed (hash-password must not wait for a password). */
function runCli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(
      process.execPath,
      ['--import', 'tsx', cli, ...args],
      // No proxy settings from the environment this test runs in.
      { env: { PATH: process.env.PATH ?? '' }, timeout: 30_000 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
    child.stdin?.end();
  });
}

// Every command answers --help and -h with its usage on stdout and exit code 0 (the README sends
// people to `dsql-proxy <command> --help`).
const COMMANDS: Array<{ args: string[]; usage: RegExp }> = [
  { args: [], usage: /^Usage:\n {2}dsql-proxy \[options\]/ },
  { args: ['run'], usage: /^Usage:\n {2}dsql-proxy \[options\]/ },
  { args: ['demo'], usage: /^Usage: dsql-proxy demo / },
  { args: ['check'], usage: /^Usage: dsql-proxy check / },
  { args: ['health'], usage: /^Usage: dsql-proxy health / },
  { args: ['hash-password'], usage: /^Usage: dsql-proxy hash-password / },
];

describe('cli --help and -h', () => {
  for (const { args, usage } of COMMANDS) {
    for (const flag of ['--help', '-h']) {
      const line = ['dsql-proxy', ...args, flag].join(' ');
      it(`${line} prints its usage and exits 0`, async () => {
        const { code, stdout, stderr } = await runCli([...args, flag]);
        assert.equal(stderr, '', line);
        assert.equal(code, 0, line);
        assert.match(stdout, usage, line);
      });
    }
  }

  it('hash-password --user NAME --help still prints the usage', async () => {
    const { code, stdout } = await runCli(['hash-password', '--user', 'app', '--help']);
    assert.equal(code, 0);
    assert.match(stdout, /^Usage: dsql-proxy hash-password /);
  });

  it('hash-password still refuses an unknown argument with exit 2 and its own usage', async () => {
    const { code, stdout, stderr } = await runCli(['hash-password', '--bogus']);
    assert.equal(code, 2);
    assert.equal(stdout, '');
    assert.match(stderr, /unexpected argument "--bogus"\nUsage: dsql-proxy hash-password /);
  });
});
