import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import {
  ConfigError,
  diffRoleMap,
  loadConfig,
  type ProxyConfig,
  reloadRoleMaps,
  resolveRole,
} from '../../src/config/index.js';

const PROD = 'aaaaaaaaaaaaaaaaaaaaaaaaaa.dsql.us-east-1.on.aws';
const STAGING = 'bbbbbbbbbbbbbbbbbbbbbbbbbb.dsql.eu-west-1.on.aws';
const CERT = '-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n';

const dir = mkdtempSync(join(tmpdir(), 'dsql-proxy-clusters-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
function write(text: string, name = `c-${++n}.yaml`): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}

function fromFile(lines: string[], argv: string[] = [], env: NodeJS.ProcessEnv = {}): ProxyConfig {
  return loadConfig(['--config', write(lines.join('\n')), ...argv], env);
}

function fails(lines: string[], argv: string[] = [], env: NodeJS.ProcessEnv = {}): ConfigError {
  const path = write(lines.join('\n'));
  try {
    loadConfig(['--config', path, ...argv], env);
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    return err;
  }
  assert.fail('expected a ConfigError');
}

const TWO = [
  'clusters:',
  '  prod:',
  `    endpoint: ${PROD}`,
  '    profile: prod-profile',
  '    role-map: { alice: admin }',
  '  staging:',
  `    endpoint: [${STAGING}]`,
  '    connect-to: 127.0.0.1:15432',
  '    token-ttl: 5m',
  '    assume-role: arn:aws:iam::123456789012:role/dsql-staging',
  '    listen: 127.0.0.1:6433',
];

describe('clusters: in the config file', () => {
  it('reads each cluster with its own endpoints, credentials, TTL, role map and listener', () => {
    const c = fromFile(['token-ttl: 600', 'role-map: { bob: reader }', ...TWO]);
    assert.deepEqual(
      c.clusters.map((x) => x.name),
      ['prod', 'staging'],
    );
    const [prod, staging] = c.clusters;
    assert.ok(prod && staging);
    assert.deepEqual(prod.endpoints, [
      { hostname: PROD, region: 'us-east-1', connectTo: { host: PROD, port: 5432 } },
    ]);
    assert.equal(prod.profile, 'prod-profile');
    assert.equal(prod.tokenTtlSeconds, 600, 'top-level token-ttl is the default');
    assert.deepEqual(prod.roleMap, { alice: 'admin' }, 'its own role-map replaces the top-level one');
    assert.equal(prod.listen, undefined);
    assert.equal(staging.endpoints[0]?.region, 'eu-west-1');
    assert.deepEqual(staging.endpoints[0]?.connectTo, { host: '127.0.0.1', port: 15432 });
    assert.equal(staging.tokenTtlSeconds, 300);
    assert.equal(staging.assumeRole, 'arn:aws:iam::123456789012:role/dsql-staging');
    assert.deepEqual(staging.roleMap, { bob: 'reader' }, 'top-level role-map is the default');
    assert.deepEqual(staging.listen, { host: '127.0.0.1', port: 6433 });
    assert.equal(resolveRole(prod, 'alice'), 'admin');
    assert.equal(resolveRole(staging, 'alice'), 'alice');
    // The first cluster is the file's first.
    assert.equal(c.clusters[0]!.endpoints[0]!.hostname, PROD);
    assert.equal(c.clusters[0]!.profile, 'prod-profile');
  });

  it('a per-cluster ca-file is read relative to the config file', () => {
    write(CERT, 'prod-ca.pem');
    const c = fromFile(['clusters:', '  prod:', `    endpoint: ${PROD}`, '    ca-file: prod-ca.pem']);
    assert.equal(c.clusters[0]?.caFile, join(dir, 'prod-ca.pem'));
    assert.equal(c.clusters[0]?.caPem, CERT);
  });

  it('without clusters: one cluster named default, the same as the top-level options', () => {
    write(CERT, 'single-ca.pem');
    const c = fromFile(
      [
        `endpoint: ${PROD}`,
        'connect-to: 10.0.0.5:5432',
        'ca-file: single-ca.pem',
        'token-ttl: 60',
        'role-map: { alice: admin }',
      ],
      ['--profile', 'p1'],
    );
    assert.equal(c.clusters.length, 1);
    const only = c.clusters[0];
    assert.ok(only);
    assert.equal(only.name, 'default');
    assert.deepEqual(
      only.endpoints.map((e) => [e.hostname, e.region, e.connectTo]),
      [[PROD, 'us-east-1', { host: '10.0.0.5', port: 5432 }]],
    );
    assert.equal(only.tokenTtlSeconds, 60);
    assert.equal(only.profile, 'p1');
    assert.equal(only.caPem, CERT);
    assert.deepEqual(only.roleMap, { alice: 'admin' });
    assert.equal(only.listen, undefined);
    assert.equal(only.assumeRole, undefined);
    // Flags alone, as always.
    const flags = loadConfig(['--endpoint', PROD], {});
    assert.deepEqual(
      flags.clusters.map((x) => [x.name, x.endpoints[0]?.hostname]),
      [['default', PROD]],
    );
  });

  it('a top-level endpoint (file, flag or environment) next to clusters is an error', () => {
    const file = fails([`endpoint: ${PROD}`, ...TWO]);
    assert.match(file.message, /endpoint \(endpoint in .*:1\) cannot be used together with clusters/);
    assert.match(
      fails(TWO, ['--endpoint', PROD]).message,
      /--endpoint.*cannot be used together with clusters/,
    );
    assert.match(
      fails(TWO, [], { DSQL_PROXY_CONNECT_TO: '127.0.0.1:1' }).message,
      /DSQL_PROXY_CONNECT_TO.*cannot be used together with clusters/,
    );
  });

  it('errors name clusters.<name>.<key> and the line', () => {
    const ttl = fails(['clusters:', '  prod:', `    endpoint: ${PROD}`, '    token-ttl: 0']);
    assert.match(ttl.message, /:4: invalid clusters\.prod\.token-ttl "0": must be between 1 and 604800/);
    assert.equal(ttl.line, 4);
    const unknown = fails(['clusters:', '  prod:', `    endpoint: ${PROD}`, '    profle: x']);
    assert.match(unknown.message, /:4: unknown key "clusters\.prod\.profle" \(did you mean "profile"\?\)/);
    const global = fails(['clusters:', '  prod:', `    endpoint: ${PROD}`, '    auth-file: x']);
    assert.match(global.message, /auth-file is set once for the whole proxy/);
    const missing = fails(['clusters:', '  prod:', '    profile: p']);
    assert.match(missing.message, /:2: clusters\.prod\.endpoint is required/);
    const name = fails(['clusters:', '  "my db":', `    endpoint: ${PROD}`]);
    assert.match(name.message, /:2: invalid cluster name "my db"/);
    const arn = fails(['clusters:', '  prod:', `    endpoint: ${PROD}`, '    assume-role: admin']);
    assert.match(arn.message, /:4: invalid clusters\.prod\.assume-role "admin": must be an IAM role ARN/);
    const bad = fails(['clusters:', '  prod:', '    endpoint: not a host']);
    assert.match(bad.message, /clusters\.prod\.endpoint/);
    const empty = fails(['clusters: {}']);
    assert.match(empty.message, /clusters lists no cluster/);
  });

  it('two listeners on one address are refused', () => {
    const clash = fails([
      'listen: 127.0.0.1:6432',
      'clusters:',
      '  prod:',
      `    endpoint: ${PROD}`,
      '  staging:',
      `    endpoint: ${STAGING}`,
      '    listen: 127.0.0.1:6432',
    ]);
    assert.match(
      clash.message,
      /:7: clusters\.staging\.listen 127\.0\.0\.1:6432 is already used by the shared listen/,
    );
    // Port 0 picks a free port each time: no clash.
    fromFile([
      'listen: 127.0.0.1:0',
      'clusters:',
      '  a:',
      `    endpoint: ${PROD}`,
      '    listen: 127.0.0.1:0',
      '  b:',
      `    endpoint: ${STAGING}`,
      '    listen: 127.0.0.1:0',
    ]);
  });

  it('trust authentication is refused when a cluster listens beyond loopback', () => {
    const err = fails(['clusters:', '  prod:', `    endpoint: ${PROD}`, '    listen: 0.0.0.0:6432']);
    assert.match(
      err.message,
      /refusing to run with trust authentication on 0\.0\.0\.0:6432 \(clusters\.prod\.listen\)/,
    );
  });
});

describe('reloadRoleMaps (SIGHUP)', () => {
  it('re-reads each running cluster its own role-map, else the top-level one', () => {
    const path = write(
      [
        'role-map: { alice: admin }',
        'clusters:',
        `  prod: { endpoint: ${PROD}, role-map: { bob: reporting } }`,
        `  staging: { endpoint: ${STAGING} }`,
      ].join('\n'),
    );
    const config = loadConfig(['--config', path], {});
    writeFileSync(
      path,
      [
        'role-map: { alice: app }',
        'clusters:',
        `  prod: { endpoint: ${PROD}, role-map: { bob: admin } }`,
        `  staging: { endpoint: ${STAGING} }`,
      ].join('\n'),
    );
    const maps = reloadRoleMaps(config);
    assert.deepEqual(Object.fromEntries(maps), { prod: { bob: 'admin' }, staging: { alice: 'app' } });
  });

  it('refuses a file whose clusters no longer match the running ones, naming the file', () => {
    const path = write([`endpoint: ${PROD}`, 'role-map: { alice: admin }'].join('\n'));
    const config = loadConfig(['--config', path], {});
    writeFileSync(path, ['clusters:', `  prod: { endpoint: ${PROD} }`].join('\n'));
    assert.throws(
      () => reloadRoleMaps(config),
      (err: unknown) => err instanceof ConfigError && /clusters was added.*restart/.test(err.message),
    );
    writeFileSync(path, 'role-map: { alice: [admin\n');
    assert.throws(() => reloadRoleMaps(config), ConfigError);
  });

  it('without a config file every map is empty', () => {
    const config = loadConfig(['--endpoint', PROD], {});
    assert.deepEqual(Object.fromEntries(reloadRoleMaps(config)), { default: {} });
  });

  it('diffRoleMap names added, removed and changed users', () => {
    assert.deepEqual(diffRoleMap({ a: 'admin', b: 'x', c: 'y' }, { a: 'legacy', c: 'y', d: 'z' }), {
      added: [{ user: 'd', role: 'z' }],
      removed: [{ user: 'b', role: 'x' }],
      changed: [{ user: 'a', from: 'admin', to: 'legacy' }],
    });
  });
});
