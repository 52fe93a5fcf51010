/** `dsql-proxy demo` answers the psql line it prints. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, before, test } from 'node:test';
import { freePort } from '../../src/local-endpoint/embedded-postgres.js';
import { type DemoProcess, startDemo } from '../support/demo-process.js';

let demo: DemoProcess;

before(async () => {
  demo = await startDemo(['--listen', `127.0.0.1:${await freePort()}`]);
});

after(async () => {
  if (demo) await demo.stop();
});

function runPsql(
  line: string,
  sql: string,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  // The printed line is `PGPASSWORD=<pw> psql -h <host> -p <port> -U <user>`.
  const [assignment, command, ...args] = line.split(' ');
  assert.equal(command, 'psql');
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v !== undefined && !k.startsWith('PG')) env[k] = v;
  }
  env.PGPASSWORD = (assignment ?? '').slice('PGPASSWORD='.length);
  env.PSQLRC = '/dev/null';
  env.LANG = 'C.UTF-8';
  return new Promise((resolve, reject) => {
    const child = spawn('psql', [...args, '-X', '-w', '-A', '-t', '-c', sql], {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

test('psql with the printed line answers a query, as admin and as app', async () => {
  assert.equal(demo.psqlLines.length, 2);
  for (const [line, user] of demo.psqlLines.map((l, i) => [l, i === 0 ? 'admin' : 'app'] as const)) {
    const one = await runPsql(line, 'select 1');
    assert.equal(one.code, 0, one.stderr);
    assert.equal(one.stdout.trim(), '1');
    const who = await runPsql(line, 'select current_user');
    assert.equal(who.stdout.trim(), user, who.stderr);
  }
});
