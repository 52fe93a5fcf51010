/** psql -d prod and psql -d staging through one proxy port reach two clusters (test/support/clusters.ts). */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { type ClustersSetup, startClusters } from '../support/clusters.js';
import { describeResult, psql, requireTool } from './tools.js';

let s: ClustersSetup | undefined;

before(async () => {
  requireTool('psql');
  s = await startClusters();
});

after(async () => {
  await s?.stop();
});

async function run(database: string): Promise<Awaited<ReturnType<typeof psql>>> {
  assert.ok(s);
  return psql(s.proxy, { user: 'app' }, [
    '-h',
    '127.0.0.1',
    '-p',
    String(s.proxy.port),
    '-U',
    'app',
    '-d',
    database,
    '-Atc',
    'select current_user',
  ]);
}

test('psql -d prod and psql -d staging on one port reach two clusters', async () => {
  assert.ok(s);
  const prodBefore = s.prod.logins.length;
  const prod = await run('prod');
  assert.equal(prod.code, 0, describeResult(prod));
  assert.equal(prod.stdout.trim(), 'admin', 'prod maps app to admin');
  assert.equal(s.prod.logins.length, prodBefore + 1);

  const stagingBefore = s.staging.logins.length;
  const staging = await run('staging');
  assert.equal(staging.code, 0, describeResult(staging));
  assert.equal(staging.stdout.trim(), 'app');
  assert.equal(s.staging.logins.length, stagingBefore + 1);
});

test('psql -d nope: 3D000 with the known clusters', async () => {
  const r = await run('nope');
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /database "nope" does not exist/);
  assert.match(r.stderr, /prod, staging/);
});
