/**
 * Several clusters in one proxy (see test/support/clusters.ts): the database name picks the cluster
 * on the shared listener, an unknown one gets 3D000 with the known names, a cluster with its own
 * listener takes any database name; role map, credentials (profile) and CA are per cluster.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { type ClustersSetup, startClusters } from '../support/clusters.js';

let s: ClustersSetup;

before(async () => {
  s = await startClusters(['--admin-listen', '127.0.0.1:0']);
});

after(async () => {
  await s?.stop();
});

async function whoAmI(database: string, port = s.proxy.port): Promise<string> {
  const c = new pg.Client({ host: '127.0.0.1', port, user: 'app', password: '', database });
  c.on('error', () => {});
  await c.connect();
  try {
    const r = await c.query<{ u: string }>('select current_user as u');
    return r.rows[0]?.u ?? '';
  } finally {
    await c.end();
  }
}

describe('clusters on one shared listener', () => {
  test('database prod lands on prod, with prod keys and prod role map (app -> admin)', async () => {
    const before = { prod: s.prod.logins.length, staging: s.staging.logins.length };
    assert.equal(await whoAmI('prod'), 'admin');
    const logins = s.prod.logins.slice(before.prod);
    assert.equal(logins.length, 1);
    assert.equal(logins[0]?.user, 'admin');
    assert.ok(logins[0]?.ok, `prod accepted prod's credentials (${logins[0]?.reason ?? ''})`);
    assert.equal(s.staging.logins.length, before.staging, 'nothing went to staging');
  });

  test('database staging lands on staging, with staging keys and no role map', async () => {
    const before = { prod: s.prod.logins.length, staging: s.staging.logins.length };
    assert.equal(await whoAmI('staging'), 'app');
    const logins = s.staging.logins.slice(before.staging);
    assert.equal(logins.length, 1);
    assert.equal(logins[0]?.user, 'app');
    assert.ok(logins[0]?.ok, `staging accepted staging's credentials (${logins[0]?.reason ?? ''})`);
    assert.equal(s.prod.logins.length, before.prod, 'nothing went to prod');
  });

  test('an unknown database gets 3D000 listing the clusters of the listener', async () => {
    const c = new pg.Client({
      host: '127.0.0.1',
      port: s.proxy.port,
      user: 'app',
      password: '',
      database: 'nope',
    });
    c.on('error', () => {});
    const err = (await c.connect().then(
      () => assert.fail('connected'),
      (e: unknown) => e,
    )) as { code?: string; message?: string; detail?: string; hint?: string };
    assert.equal(err.code, '3D000');
    assert.equal(err.message, 'database "nope" does not exist');
    assert.match(err.detail ?? '', /prod, staging/);
    assert.doesNotMatch(err.detail ?? '', /solo/, 'solo is not on this listener');
    assert.match(err.hint ?? '', /psql -d prod/);
    const refused = await s.proxy.waitForLog((l) => l.event === 'refused' && l.reason === 'UNKNOWN_DATABASE');
    assert.equal(refused.sqlstate, '3D000');
  });
});

describe('a cluster with its own listener', () => {
  test('any database name reaches it (staging endpoint, staging keys, no role map)', async () => {
    assert.notEqual(s.soloPort, s.proxy.port);
    const before = s.staging.logins.length;
    assert.equal(await whoAmI('postgres', s.soloPort), 'app');
    assert.equal(await whoAmI('prod', s.soloPort), 'app', 'prod is just a database name here');
    const logins = s.staging.logins.slice(before);
    assert.equal(logins.length, 2);
    assert.ok(logins.every((l) => l.ok));
  });
});

describe('startup log and admin', () => {
  test('the listening line lists listeners and clusters', async () => {
    const l = await s.proxy.waitForLog((x) => x.event === 'listening');
    const listeners = l.listeners as Array<{ port: number; clusters: string[] }>;
    assert.deepEqual(
      listeners.map((x) => x.clusters),
      [['prod', 'staging'], ['solo']],
    );
    assert.equal(listeners[0]?.port, s.proxy.port);
    assert.deepEqual(
      (l.clusters as Array<{ name: string }>).map((c) => c.name),
      ['prod', 'staging', 'solo'],
    );
  });

  test('/readyz lists every cluster; endpoint_up has a cluster label', async () => {
    const base = `http://127.0.0.1:${s.proxy.adminPort}`;
    const ready = await fetch(`${base}/readyz`);
    const body = await ready.text();
    assert.equal(ready.status, 200, body);
    for (const name of ['prod', 'staging', 'solo'])
      assert.match(body, new RegExp(`^cluster ${name}: ready$`, 'm'));
    assert.match(body, new RegExp(`endpoint ${s.prod.hostname} \\(us-east-1\\): up`));
    const metrics = await (await fetch(`${base}/metrics`)).text();
    assert.match(
      metrics,
      new RegExp(`dsql_proxy_endpoint_up\\{cluster="staging",endpoint="${s.staging.hostname}"`),
    );
  });
});
