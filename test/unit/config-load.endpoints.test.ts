import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { ConfigError, loadConfig } from '../../src/config/index.js';

const A = 'aaaaaaaaaaaaaaaaaaaaaaaaaa.dsql.us-east-1.on.aws';
const B = 'bbbbbbbbbbbbbbbbbbbbbbbbbb.dsql.us-west-2.on.aws';
const dir = mkdtempSync(join(tmpdir(), 'dsql-proxy-endpoints-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function fails(argv: string[], env: NodeJS.ProcessEnv, ...patterns: RegExp[]): ConfigError {
  let caught: unknown;
  try {
    loadConfig(argv, env);
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof ConfigError, `expected ConfigError, got ${String(caught)}`);
  for (const re of patterns) assert.match(caught.message, re);
  return caught;
}

describe('several endpoints', () => {
  it('a repeated --endpoint keeps the order; each region comes from its hostname', () => {
    const c = loadConfig(['--endpoint', A, '--endpoint', B], {});
    assert.deepEqual(c.clusters[0]!.endpoints, [
      { hostname: A, region: 'us-east-1', connectTo: { host: A, port: 5432 } },
      { hostname: B, region: 'us-west-2', connectTo: { host: B, port: 5432 } },
    ]);
    assert.equal(c.clusters[0]!.endpoints[0]!.hostname, A, 'endpoint/region/connectTo are the first one');
    assert.equal(c.clusters[0]!.endpoints[0]!.region, 'us-east-1');
  });

  it('the environment takes a comma-separated list, the file a YAML list', () => {
    const env = loadConfig([], { DSQL_PROXY_ENDPOINT: `${A}, ${B}` });
    assert.deepEqual(
      env.clusters[0]!.endpoints.map((e) => e.hostname),
      [A, B],
    );
    const file = join(dir, 'multi.yaml');
    writeFileSync(file, `endpoint:\n  - ${A}\n  - ${B}\nconnect-to:\n  - ${B}=10.0.0.2:5432\n`);
    const c = loadConfig(['--config', file], {});
    assert.deepEqual(
      c.clusters[0]!.endpoints.map((e) => [e.hostname, e.connectTo.host]),
      [
        [A, A],
        [B, '10.0.0.2'],
      ],
    );
  });

  it('connect-to ENDPOINT=HOST:PORT per endpoint; the plain form only with one endpoint', () => {
    const c = loadConfig(
      [
        '--endpoint',
        A,
        '--endpoint',
        B,
        '--connect-to',
        `${A}=127.0.0.1:1001`,
        '--connect-to',
        `${B}=127.0.0.1:1002`,
      ],
      {},
    );
    assert.deepEqual(
      c.clusters[0]!.endpoints.map((e) => e.connectTo),
      [
        { host: '127.0.0.1', port: 1001 },
        { host: '127.0.0.1', port: 1002 },
      ],
    );
    assert.deepEqual(
      loadConfig(['--endpoint', A, '--connect-to', `${A}=10.0.0.1:6000`], {}).clusters[0]!.endpoints[0]!
        .connectTo,
      {
        host: '10.0.0.1',
        port: 6000,
      },
    );
    fails(['--endpoint', A, '--endpoint', B, '--connect-to', '127.0.0.1:1'], {}, /ENDPOINT=HOST:PORT/, /2/);
    fails(['--endpoint', A, '--connect-to', `${B}=127.0.0.1:1`], {}, /not one of the endpoints/);
    assert.deepEqual(
      loadConfig(['--endpoint', A, '--connect-to', `${A}=127.0.0.1:1`, '--connect-to', '127.0.0.1:2'], {})
        .clusters[0]!.endpoints[0]!.connectTo,
      { host: '127.0.0.1', port: 2 },
      'a later entry for the same endpoint wins, as for any repeated flag',
    );
    fails(['--endpoint', A, '--connect-to', 'http://x=127.0.0.1:1'], {}, /before "="/);
  });

  it('refuses the same endpoint twice and an empty list item', () => {
    fails(['--endpoint', A, '--endpoint', A], {}, /twice/);
    fails([], { DSQL_PROXY_ENDPOINT: `${A},,${B}` }, /empty item/);
  });

  it('--region must agree with every endpoint that names one', () => {
    fails(['--endpoint', A, '--endpoint', B, '--region', 'us-east-1'], {}, /us-west-2/, /--region/);
    const c = loadConfig(
      ['--endpoint', A, '--endpoint', 'db.internal.example.com', '--region', 'us-east-1'],
      {},
    );
    assert.deepEqual(
      c.clusters[0]!.endpoints.map((e) => e.region),
      ['us-east-1', 'us-east-1'],
    );
  });

  it('warns about AWS_REGION only when no endpoint is in it', () => {
    const quiet = loadConfig(['--endpoint', A, '--endpoint', B], { AWS_REGION: 'us-west-2' });
    assert.ok(!quiet.warnings.some((w) => w.includes('AWS_REGION')));
    const loud = loadConfig(['--endpoint', A, '--endpoint', B], { AWS_REGION: 'eu-west-1' });
    assert.ok(loud.warnings.some((w) => /AWS_REGION is eu-west-1 .*us-east-1, us-west-2/.test(w)));
  });
});

describe('--dns-cache-ttl', () => {
  it('15 s by default, 0 turns the cache off, from flag, environment or file', () => {
    assert.equal(loadConfig(['--endpoint', A], {}).dnsCacheTtlMs, 15_000);
    assert.equal(loadConfig(['--endpoint', A, '--dns-cache-ttl', '0'], {}).dnsCacheTtlMs, 0);
    assert.equal(loadConfig(['--endpoint', A], { DSQL_PROXY_DNS_CACHE_TTL: '2m' }).dnsCacheTtlMs, 120_000);
  });

  it('rejects a value that is not a duration, naming the flag', () => {
    fails(['--endpoint', A, '--dns-cache-ttl', 'forever'], {}, /--dns-cache-ttl "forever"/);
  });
});

describe('rate shaping, upstream age and startup parameters', () => {
  it('defaults: 100/s, burst = rate, 10 s queue, 50 min, drop', () => {
    const c = loadConfig(['--endpoint', A], {});
    assert.equal(c.connectRate, 100);
    assert.equal(c.connectBurst, 100);
    assert.equal(c.connectQueueTimeoutMs, 10_000);
    assert.equal(c.maxUpstreamAgeMs, 50 * 60_000);
    assert.equal(c.startupParamsMode, 'drop');
  });

  it('burst follows the rate unless given', () => {
    const c = loadConfig(['--endpoint', A, '--connect-rate', '2.5', '--connect-queue-timeout', '30s'], {});
    assert.equal(c.connectRate, 2.5);
    assert.equal(c.connectBurst, 3);
    assert.equal(c.connectQueueTimeoutMs, 30_000);
    assert.equal(loadConfig(['--endpoint', A, '--connect-burst', '7'], {}).connectBurst, 7);
    assert.equal(loadConfig(['--endpoint', A, '--connect-rate', '0'], {}).connectRate, 0);
  });

  it('rejects bad values with the flag named', () => {
    fails(['--endpoint', A, '--connect-rate', 'fast'], {}, /--connect-rate "fast"/);
    fails(['--endpoint', A, '--connect-burst', '0'], {}, /--connect-burst/, /at least 1/);
    fails(['--endpoint', A, '--startup-params', 'keep'], {}, /drop, reject, pass/);
    fails(['--endpoint', A, '--max-upstream-age', '500ms'], {}, /--max-upstream-age/, /at least 1000ms/);
  });

  it('max-upstream-age in seconds works; 60m or more is accepted with a warning', () => {
    assert.equal(loadConfig(['--endpoint', A, '--max-upstream-age', '5'], {}).maxUpstreamAgeMs, 5_000);
    const c = loadConfig(['--endpoint', A, '--max-upstream-age', '1h'], {});
    assert.ok(
      c.warnings.some((w) => /max-upstream-age .* 1h: DSQL closes connections at 60 minutes/.test(w)),
    );
    assert.equal(
      loadConfig([], { DSQL_PROXY_ENDPOINT: A, DSQL_PROXY_STARTUP_PARAMS: 'reject' }).startupParamsMode,
      'reject',
    );
  });
});

describe('upstream TLS negotiation', () => {
  it('direct by default; postgres from a flag, the environment or the config file', () => {
    assert.equal(loadConfig(['--endpoint', A], {}).upstreamSslNegotiation, 'direct');
    assert.equal(
      loadConfig(['--endpoint', A, '--upstream-ssl-negotiation', 'postgres'], {}).upstreamSslNegotiation,
      'postgres',
    );
    assert.equal(
      loadConfig([], { DSQL_PROXY_ENDPOINT: A, DSQL_PROXY_UPSTREAM_SSL_NEGOTIATION: 'postgres' })
        .upstreamSslNegotiation,
      'postgres',
    );
    const file = join(dir, 'negotiation.yaml');
    writeFileSync(file, `endpoint: ${A}\nupstream-ssl-negotiation: postgres\n`);
    assert.equal(loadConfig(['--config', file], {}).upstreamSslNegotiation, 'postgres');
    // A flag beats the file.
    assert.equal(
      loadConfig(['--config', file, '--upstream-ssl-negotiation', 'direct'], {}).upstreamSslNegotiation,
      'direct',
    );
  });

  it("rejects libpq's other spellings with the choices named", () => {
    fails(
      ['--endpoint', A, '--upstream-ssl-negotiation', 'requiredirect'],
      {},
      /--upstream-ssl-negotiation/,
      /direct, postgres/,
    );
  });
});
