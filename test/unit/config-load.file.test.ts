import assert from 'node:assert/strict';
import { createHash, createHmac, pbkdf2Sync } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  ConfigError,
  loadConfig,
  type ProxyConfig,
  reloadUsers,
  resolveRole,
} from '../../src/config/index.js';

const EP = 'abcdefghijklmnopqrstuvwxyz.dsql.us-east-1.on.aws';
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const dir = mkdtempSync(join(tmpdir(), 'dsql-proxy-config-file-'));
after(() => rmSync(dir, { recursive: true, force: true }));

let n = 0;
function write(text: string, name = `file-${++n}.yaml`): string {
  const p = join(dir, name);
  mkdirSync(dirname(p), { recursive: true });
  writeFileSync(p, text);
  return p;
}

function fromFile(yaml: string, argv: string[] = []): ProxyConfig {
  return loadConfig(['--config', write(yaml), ...argv], {});
}

function fileFails(yaml: string, ...patterns: RegExp[]): ConfigError {
  const path = write(yaml);
  let caught: unknown;
  try {
    loadConfig(['--config', path], {});
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof ConfigError, `expected ConfigError, got ${String(caught)}`);
  assert.ok(caught.message.includes(path), `message names the file: ${caught.message}`);
  for (const re of patterns) assert.match(caught.message, re);
  return caught;
}

const CERT = '-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n';

describe('YAML config file', () => {
  it('reads every key', () => {
    write(CERT, 'all/ca.pem');
    write('"alice" "secret-a"\n"bob" "md5d5e86274fe3b261cc7f464e55acd99e9"\n', 'all/users.txt');
    const path = write(
      [
        `endpoint: ${EP}`,
        'region: us-east-1',
        'listen: "[::1]:6432"',
        'connect-to: 10.0.0.5:5432',
        'ca-file: ca.pem',
        'token-ttl: 15m',
        'auth-file: users.txt',
        'auth-method: password',
        'profile: prod',
        'log-level: warn',
        'connect-timeout: 5',
        'login-timeout: 30s',
        'max-shutdown-delay: 1m',
        'role-map:',
        '  alice: admin',
        '  "bob smith": reporting',
      ].join('\n'),
      'all/dsql-proxy.yaml',
    );
    const c = loadConfig(['--config', path], {});
    assert.equal(c.clusters[0]!.endpoints[0]!.hostname, EP);
    assert.equal(c.clusters[0]!.endpoints[0]!.region, 'us-east-1');
    assert.deepEqual(c.listen, { host: '::1', port: 6432 });
    assert.deepEqual(c.clusters[0]!.endpoints[0]!.connectTo, { host: '10.0.0.5', port: 5432 });
    assert.equal(c.clusters[0]!.caFile, join(dir, 'all/ca.pem'));
    assert.equal(c.clusters[0]!.caPem, CERT);
    assert.equal(c.clusters[0]!.tokenTtlSeconds, 900);
    assert.equal(c.authFile, join(dir, 'all/users.txt'));
    assert.equal(c.authMethod, 'password');
    assert.deepEqual([...c.users.keys()], ['alice', 'bob']);
    assert.equal(c.clusters[0]!.profile, 'prod');
    assert.equal(c.logLevel, 'warn');
    assert.equal(c.connectTimeoutMs, 5000);
    assert.equal(c.loginTimeoutMs, 30_000);
    assert.equal(c.maxShutdownDelayMs, 60_000);
    assert.deepEqual(c.clusters[0]!.roleMap, { alice: 'admin', 'bob smith': 'reporting' });
    assert.match(c.warnings.join('\n'), /plain-text passwords \(alice\)/);
  });

  it('resolves relative paths from flags against the working directory', () => {
    const rel = join('config', 'auth.example.txt');
    const cwd = process.cwd();
    process.chdir(ROOT);
    try {
      const c = loadConfig(['--endpoint', EP, '--auth-file', rel], {});
      assert.equal(c.authFile, join(ROOT, rel));
    } finally {
      process.chdir(cwd);
    }
  });

  it('accepts an empty file and comments only', () => {
    assert.equal(fromFile('', ['--endpoint', EP]).clusters[0]!.tokenTtlSeconds, 900);
    assert.equal(fromFile('# nothing yet\n', ['--endpoint', EP]).clusters[0]!.tokenTtlSeconds, 900);
  });

  it('rejects an unknown key with a suggestion and its line', () => {
    const err = fileFails(
      `endpoint: ${EP}\n\ntokn-ttl: 60\n`,
      /:3: unknown key "tokn-ttl" \(did you mean "token-ttl"\?\)/,
    );
    assert.equal(err.key, 'tokn-ttl');
    assert.equal(err.line, 3);
  });

  it('suggests the kebab-case key for snake_case and camelCase', () => {
    fileFails(`endpoint: ${EP}\ntoken_ttl: 60\n`, /unknown key "token_ttl" \(did you mean "token-ttl"\?\)/);
    fileFails(`endpoint: ${EP}\nlogLevel: info\n`, /unknown key "logLevel" \(did you mean "log-level"\?\)/);
  });

  it('rejects an unknown key without a far-fetched suggestion', () => {
    const err = fileFails(`endpoint: ${EP}\ncolour_scheme: 5\n`, /:2: unknown key "colour_scheme"/);
    assert.doesNotMatch(err.message, /did you mean/);
  });

  it('refuses config inside the config file', () => {
    fileFails(`endpoint: ${EP}\nconfig: other.yaml\n`, /:2: config cannot be set inside the config file/);
  });

  it('reports the first problem by line', () => {
    const err = fileFails(
      `endpoint: ${EP}\nlog-level: loud\ntoken-ttl: 0\nbogus: 1\n`,
      /:2: invalid log-level "loud"/,
    );
    assert.equal(err.line, 2);
  });

  it('names key and line for wrong types', () => {
    fileFails(
      `endpoint: ${EP}\ntoken-ttl: true\n`,
      /:2: invalid token-ttl true: expected a string or number, got boolean/,
    );
    fileFails(`endpoint: ${EP}\nlisten: [::1]:5432\n`, /listen/, /quote/);
    fileFails(`endpoint: ${EP}\nregion:\n`, /:2: invalid region: has no value/);
    fileFails(`endpoint: ${EP}\nrole-map: admin\n`, /:2: invalid role-map "admin": expected a mapping/);
    fileFails(
      `endpoint: ${EP}\nrole-map:\n  alice: 7\n  bob: [x]\n`,
      /:3: invalid role-map\.alice 7: expected a string/,
    );
    fileFails(`endpoint: ${EP}\ntoken-ttl: 1.5\n`, /:2: invalid token-ttl "1\.5": .*whole number/);
    fileFails(`endpoint: ${EP}\nconnect-timeout: -1\n`, /:2: invalid connect-timeout "-1": .*negative/);
  });

  it('names the line of a YAML syntax error', () => {
    const err = fileFails(`endpoint: ${EP}\nlisten: "127.0.0.1:5432\n`, /invalid YAML/);
    assert.ok(err.line !== undefined && err.line >= 2);
    fileFails(`endpoint: ${EP}\nlog-level: info\nlog-level: debug\n`, /:3: invalid YAML/);
  });

  it('rejects a file that is not a mapping', () => {
    fileFails('- endpoint\n- listen\n', /expected "key: value" lines/);
  });

  it('names the file line when a file value clashes with the endpoint region', () => {
    const err = fileFails(`endpoint: ${EP}\nregion: eu-west-1\n`, /region in .*:2 is eu-west-1/, /us-east-1/);
    assert.equal(err.key, 'region');
  });

  it('still applies trust rules to file values', () => {
    fileFails(
      `endpoint: ${EP}\nlisten: 0.0.0.0:5432\n`,
      /refusing to run with trust authentication on 0\.0\.0\.0/,
    );
  });
});

describe('ca-file', () => {
  it('must hold a PEM certificate', () => {
    const path = write('not a certificate\n', 'bad-ca.pem');
    assert.throws(
      () => loadConfig(['--endpoint', EP, '--ca-file', path], {}),
      (err: unknown) =>
        err instanceof ConfigError &&
        err.key === 'ca-file' &&
        err.message.includes(path) &&
        /--ca-file/.test(err.message) &&
        /no PEM certificate/.test(err.message),
    );
  });
});

describe('auth file', () => {
  it('surfaces a malformed line with path and line number', () => {
    const authPath = write(
      '# users\n"alice" "md5d5e86274fe3b261cc7f464e55acd99e9"\nalice secret\n',
      'broken-auth.txt',
    );
    let caught: unknown;
    try {
      loadConfig(['--endpoint', EP, '--auth-file', authPath], {});
    } catch (err) {
      caught = err;
    }
    assert.ok(caught instanceof ConfigError);
    assert.equal(caught.file, authPath);
    assert.equal(caught.line, 3);
    assert.equal(caught.key, 'auth-file');
    assert.ok(caught.message.startsWith(`${authPath}:3: `), caught.message);
    assert.match(caught.message, /--auth-file/);
  });

  it('names the config file line that gave the auth file', () => {
    write('"a" "SCRAM-SHA-256$4096:broken"\n', 'nested/auth.txt');
    const cfg = write(`endpoint: ${EP}\nauth-file: auth.txt\n`, 'nested/cfg.yaml');
    assert.throws(
      () => loadConfig(['--config', cfg], {}),
      (err: unknown) =>
        err instanceof ConfigError &&
        err.message.startsWith(`${join(dir, 'nested/auth.txt')}:1: `) &&
        err.message.includes(`auth-file in ${cfg}:2`) &&
        /SCRAM/.test(err.message),
    );
  });

  it('never puts the secret into the error', () => {
    const path = write('"alice" "SCRAM-SHA-256$4096:c2FsdA==$sup3rs3cret"\n', 'secret-auth.txt');
    assert.throws(
      () => loadConfig(['--endpoint', EP, '--auth-file', path], {}),
      (err: unknown) => err instanceof ConfigError && !err.message.includes('sup3rs3cret'),
    );
  });

  it('warns when the auth file lists nobody', () => {
    const path = write('# nobody yet\n', 'empty-auth.txt');
    const c = loadConfig(['--endpoint', EP, '--auth-file', path, '--auth-method', 'md5'], {});
    assert.match(c.warnings.join('\n'), /lists no users: every login will fail/);
  });

  it('reloadUsers re-reads the file and reports a broken edit', () => {
    const path = write('"alice" "one"\n', 'reload-auth.txt');
    const c = loadConfig(['--endpoint', EP, '--auth-file', path, '--auth-method', 'password'], {});
    assert.deepEqual([...c.users.keys()], ['alice']);
    writeFileSync(path, '"alice" "one"\n"bob" "two"\n');
    const users = reloadUsers(c);
    assert.deepEqual([...users.keys()], ['alice', 'bob']);
    assert.deepEqual(users.get('bob'), { kind: 'plain', password: 'two' });
    writeFileSync(path, '"alice" "one"\n"carol\n');
    assert.throws(
      () => reloadUsers(c),
      (err: unknown) => err instanceof ConfigError && err.line === 2 && err.message.startsWith(`${path}:2: `),
    );
    rmSync(path);
    assert.throws(
      () => reloadUsers(c),
      (err: unknown) => err instanceof ConfigError && /no such file/.test(err.message),
    );
  });

  it('reloadUsers without an auth file gives no users', () => {
    assert.equal(reloadUsers(loadConfig(['--endpoint', EP], {})).size, 0);
  });
});

describe('resolveRole', () => {
  it('maps listed users and passes others through', () => {
    const c = fromFile(`endpoint: ${EP}\nrole-map:\n  alice: admin\n`);
    assert.equal(resolveRole(c.clusters[0]!, 'alice'), 'admin');
    assert.equal(resolveRole(c.clusters[0]!, 'bob'), 'bob');
  });

  it('is not fooled by object prototype names', () => {
    assert.equal(resolveRole({ roleMap: {} }, 'constructor'), 'constructor');
    assert.equal(resolveRole({ roleMap: {} }, '__proto__'), '__proto__');
    assert.equal(resolveRole({ roleMap: {} }, 'toString'), 'toString');
  });
});

describe('example files', () => {
  it('config/dsql-proxy.example.yaml loads as shipped', () => {
    const c = loadConfig(['--config', join(ROOT, 'config/dsql-proxy.example.yaml')], {});
    assert.equal(c.clusters[0]!.endpoints[0]!.region, 'us-east-1');
    assert.equal(c.authMethod, 'scram-sha-256');
    assert.equal(c.authFile, join(ROOT, 'config/auth.example.txt'));
    assert.deepEqual([...c.users.keys()], ['alice', 'bob', 'dev']);
    assert.equal(resolveRole(c.clusters[0]!, 'alice'), 'admin');
    assert.equal(c.dnsCacheTtlMs, 15_000);
  });

  it('documents every file key', () => {
    const text = readFileSync(join(ROOT, 'config/dsql-proxy.example.yaml'), 'utf8');
    for (const key of [
      'endpoint',
      'region',
      'listen',
      'connect-to',
      'ca-file',
      'token-ttl',
      'auth-file',
      'auth-method',
      'profile',
      'log-level',
      'connect-timeout',
      'dns-cache-ttl',
      'login-timeout',
      'max-shutdown-delay',
      'role-map',
    ]) {
      assert.match(text, new RegExp(`^#? ?${key}:`, 'm'), key);
    }
  });

  it('config/auth.example.txt has a SCRAM verifier that matches its documented password', () => {
    const c = loadConfig(['--endpoint', EP, '--auth-file', join(ROOT, 'config/auth.example.txt')], {});
    const alice = c.users.get('alice');
    assert.ok(alice?.kind === 'scram');
    const { salt, iterations, storedKey, serverKey } = alice.verifier;
    const salted = pbkdf2Sync('change-me-alice', salt, iterations, 32, 'sha256');
    const clientKey = createHmac('sha256', salted).update('Client Key').digest();
    assert.deepEqual(createHash('sha256').update(clientKey).digest(), storedKey);
    assert.deepEqual(createHmac('sha256', salted).update('Server Key').digest(), serverKey);

    const bob = c.users.get('bob');
    const md5 = `md5${createHash('md5').update('change-me-bobbob').digest('hex')}`;
    assert.deepEqual(bob, { kind: 'md5', hash: md5 });
    assert.deepEqual(c.users.get('dev'), { kind: 'plain', password: 'dev-password' });
  });
});
