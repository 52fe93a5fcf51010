/** psql over the proxy's Unix-domain socket: `psql -h DIR` finds DIR/.s.PGSQL.<port>. */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { createScramVerifier } from '../../src/auth/scram.js';
import { type ProxyProcess, startProxyProcess, writeAuthFile } from '../support/proxy-process.js';
import { startTestStack, type TestStack } from '../support/stack.js';
import { describeResult, psql, requireTool } from './tools.js';

let stack: TestStack;
let proxy: ProxyProcess;
const dir = mkdtempSync(join(tmpdir(), 'dsql-proxy-psql-sock-'));

before(async () => {
  requireTool('psql');
  stack = await startTestStack();
  const authFile = writeAuthFile([['app', createScramVerifier('sock-pw')]]);
  proxy = await startProxyProcess(stack, { args: ['--auth-file', authFile, '--unix-socket', dir] });
});

after(async () => {
  await proxy?.stop();
  await stack?.stop();
  rmSync(dir, { recursive: true, force: true });
});

test('psql -h <dir> reaches DSQL through the Unix socket with SCRAM', async () => {
  const r = await psql({ host: dir, port: proxy.port }, { user: 'app', password: 'sock-pw' }, [
    '-A',
    '-t',
    '-c',
    'select current_user',
  ]);
  assert.equal(r.code, 0, describeResult(r));
  assert.equal(r.stdout.trim(), 'app');
  const accepted = proxy.logs.find(
    (l) => l.json?.event === 'accepted' && String(l.json.client).startsWith('unix'),
  );
  assert.ok(accepted, 'the session came in over the Unix socket');
});

test('a wrong password over the socket gets the same 28P01', async () => {
  const r = await psql({ host: dir, port: proxy.port }, { user: 'app', password: 'nope' }, [
    '-c',
    'select 1',
  ]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /password authentication failed for user "app"/);
});
