/**
 * A multi-Region cluster: two endpoints with their own hostname, region, certificate and dial
 * address in front of one PostgreSQL. Clients use the first endpoint; when it goes away they land
 * on the second (with tokens signed for its region); /readyz and the metrics say so; once the first
 * is back and its backoff is over, new clients return to it.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { createCa, issueCert, type LocalCa, type LocalCert } from '../../src/core/certs.js';
import { type DsqlEndpoint, startDsqlEndpoint } from '../../src/local-endpoint/endpoint.js';
import { type ProxyProcess, startProxyProcess } from '../support/proxy-process.js';
import { assertNoSecrets } from '../support/secrets.js';
import { clusterHostname, startTestStack, type TestStack } from '../support/stack.js';
import { tempDir } from '../support/temp-dirs.js';

const hostA = clusterHostname('us-east-1');
const hostB = clusterHostname('us-west-2');
let caA: LocalCa;
let certA: LocalCert;
let stack: TestStack;
let epB: DsqlEndpoint;
let epA2: DsqlEndpoint | undefined;
let proxy: ProxyProcess;
let portA: number;

before(async () => {
  caA = await createCa('endpoint A CA');
  certA = await issueCert(caA, { hostnames: [hostA] });
  stack = await startTestStack({ region: 'us-east-1', hostname: hostA, cert: certA, caPem: caA.certPem });
  portA = stack.endpoint.port;
  epB = await startDsqlEndpoint({
    hostname: hostB,
    region: 'us-west-2',
    credentials: stack.credentials,
    postgres: stack.postgres,
  });
  const dir = tempDir('multi');
  const bundle = join(dir, 'ca-bundle.pem');
  writeFileSync(bundle, `${caA.certPem}\n${epB.caPem}`);
  proxy = await startProxyProcess(stack, {
    stackArgs: false,
    args: [
      '--endpoint',
      hostA,
      '--endpoint',
      hostB,
      '--connect-to',
      `${hostA}=127.0.0.1:${portA}`,
      '--connect-to',
      `${hostB}=127.0.0.1:${epB.port}`,
      '--ca-file',
      bundle,
      '--listen',
      '127.0.0.1:0',
      '--admin-listen',
      '127.0.0.1:0',
    ],
  });
});

after(async () => {
  await proxy?.stop();
  await epA2?.close();
  await epB?.close();
  await stack?.stop();
  assertNoSecrets(
    proxy.logs.map((l) => l.raw),
    {
      credentials: stack.credentials,
      tokens: [...stack.endpoint.logins, ...epB.logins, ...(epA2?.logins ?? [])].map((l) => l.token),
    },
  );
});

async function selectOne(): Promise<void> {
  const c = new pg.Client({ host: proxy.host, port: proxy.port, user: 'app', password: '' });
  c.on('error', () => {});
  await c.connect();
  try {
    assert.deepEqual((await c.query('select 1 as one')).rows, [{ one: 1 }]);
  } finally {
    await c.end();
  }
}

async function admin(path: string): Promise<{ status: number; body: string }> {
  const res = await fetch(`http://127.0.0.1:${proxy.adminPort}${path}`);
  return { status: res.status, body: await res.text() };
}

function sample(text: string, name: string, labels: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${name}{`) && l.includes(labels));
  return line ? Number(line.split(' ').at(-1)) : 0;
}

/** The region in a token's X-Amz-Credential (…/<date>/<region>/dsql/aws4_request). */
function tokenRegion(token: string): string | undefined {
  const cred = new URL(`https://${token}`).searchParams.get('X-Amz-Credential') ?? '';
  return cred.split('/')[2];
}

describe('multi-Region endpoints', () => {
  test('clients use the first endpoint while it is up', async () => {
    const beforeA = stack.endpoint.logins.length;
    await selectOne();
    await selectOne();
    assert.equal(stack.endpoint.logins.length - beforeA, 2);
    assert.equal(epB.logins.filter((l) => l.user === 'app').length, 0, 'nothing went to the second endpoint');
    const ready = await admin('/readyz');
    assert.equal(ready.status, 200);
    assert.match(ready.body, new RegExp(`endpoint ${hostA} \\(us-east-1\\): up`));
    assert.match(ready.body, new RegExp(`endpoint ${hostB} \\(us-west-2\\): up`));
  });

  test('the first endpoint goes away: new clients land on the second, with us-west-2 tokens', async () => {
    await stack.endpoint.close();
    await selectOne();
    await selectOne();
    const onB = epB.logins.filter((l) => l.user === 'app');
    assert.equal(onB.length, 2);
    for (const l of onB) {
      assert.ok(l.ok, `accepted by the us-west-2 endpoint (${l.reason ?? ''})`);
      assert.equal(tokenRegion(l.token), 'us-west-2');
    }
    const ready = await admin('/readyz');
    assert.equal(ready.status, 200, 'still ready: one endpoint is usable');
    assert.match(ready.body, new RegExp(`endpoint ${hostA} \\(us-east-1\\): down .*ECONNREFUSED`));
    assert.match(ready.body, new RegExp(`endpoint ${hostB} \\(us-west-2\\): up`));
    const m = (await admin('/metrics')).body;
    assert.equal(sample(m, 'dsql_proxy_endpoint_up', `endpoint="${hostA}"`), 0);
    assert.equal(sample(m, 'dsql_proxy_endpoint_up', `endpoint="${hostB}"`), 1);
    assert.ok(sample(m, 'dsql_proxy_endpoint_failovers_total', `from="${hostA}",to="${hostB}"`) >= 1);
    assert.ok(sample(m, 'dsql_proxy_token_signings_total', `endpoint="${hostB}",action="DbConnect"`) >= 1);
    assert.ok(proxy.logs.some((l) => l.json?.event === 'endpoint_down' && l.json.endpoint === hostA));
  });

  test('the first endpoint comes back on its port: after the backoff, new clients return to it', async () => {
    epA2 = await startDsqlEndpoint({
      hostname: hostA,
      region: 'us-east-1',
      credentials: stack.credentials,
      postgres: stack.postgres,
      cert: certA,
      caPem: caA.certPem,
      port: portA,
    });
    const restarted = epA2;
    const deadline = Date.now() + 45_000;
    while (restarted.logins.length === 0) {
      assert.ok(Date.now() < deadline, 'clients went back to the first endpoint within 45 s');
      await selectOne();
      await new Promise((r) => setTimeout(r, 250));
    }
    const onB = epB.logins.length;
    await selectOne();
    assert.equal(epB.logins.length, onB, 'the next client used the first endpoint again');
    assert.ok(restarted.logins.every((l) => l.ok && tokenRegion(l.token) === 'us-east-1'));
    const ready = await admin('/readyz');
    assert.match(ready.body, new RegExp(`endpoint ${hostA} \\(us-east-1\\): up`));
    const m = (await admin('/metrics')).body;
    assert.equal(sample(m, 'dsql_proxy_endpoint_up', `endpoint="${hostA}"`), 1);
    assert.ok(proxy.logs.some((l) => l.json?.event === 'endpoint_up' && l.json.endpoint === hostA));
  });
});
