import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { ConfigError, loadConfig, type ProxyConfig } from '../../src/config/index.js';

const EP = 'abcdefghijklmnopqrstuvwxyz.dsql.us-east-1.on.aws';
const dir = mkdtempSync(join(tmpdir(), 'dsql-proxy-config-'));
after(() => rmSync(dir, { recursive: true, force: true }));

let n = 0;
function write(text: string, name = `file-${++n}`): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}

const AUTH = write('"alice" "md5d5e86274fe3b261cc7f464e55acd99e9"\n', 'users.txt');

function load(argv: string[], env: NodeJS.ProcessEnv = {}): ProxyConfig {
  return loadConfig(argv, env);
}

/** Asserts loadConfig fails with a ConfigError whose message matches every pattern. */
function fails(argv: string[], env: NodeJS.ProcessEnv, ...patterns: RegExp[]): ConfigError {
  let caught: unknown;
  try {
    load(argv, env);
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof ConfigError, `expected ConfigError, got ${String(caught)}`);
  for (const re of patterns) assert.match(caught.message, re);
  assert.ok(!caught.message.includes('\n'), 'one-line message');
  return caught;
}

describe('loadConfig defaults', () => {
  it('needs only the endpoint on loopback, and defaults everything else', () => {
    const c = load(['--endpoint', EP]);
    assert.equal(c.clusters[0]!.endpoints[0]!.hostname, EP);
    assert.equal(c.clusters[0]!.endpoints[0]!.region, 'us-east-1');
    assert.deepEqual(c.listen, { host: '127.0.0.1', port: 5432 });
    assert.deepEqual(c.clusters[0]!.endpoints[0]!.connectTo, { host: EP, port: 5432 });
    assert.equal(c.clusters[0]!.tokenTtlSeconds, 900);
    assert.equal(c.authMethod, 'trust');
    assert.equal(c.users.size, 0);
    assert.equal(c.logLevel, 'info');
    assert.equal(c.connectTimeoutMs, 10_000);
    assert.equal(c.loginTimeoutMs, 60_000);
    assert.equal(c.maxShutdownDelayMs, 30_000);
    assert.deepEqual(c.clusters[0]!.roleMap, {});
    assert.equal(c.clusters[0]!.caPem, undefined);
    assert.equal(c.clusters[0]!.profile, undefined);
    assert.deepEqual(c.warnings, ['trust authentication: any local process can connect as any user']);
  });

  it('fails without an endpoint and says how to give one', () => {
    const err = fails([], {}, /endpoint is required/, /--endpoint/, /DSQL_PROXY_ENDPOINT/);
    assert.equal(err.key, 'endpoint');
  });

  it('accepts --key=value and lower-cases the endpoint', () => {
    const c = load([`--endpoint=${EP.toUpperCase()}`, '--listen=127.0.0.1:6432']);
    assert.equal(c.clusters[0]!.endpoints[0]!.hostname, EP);
    assert.equal(c.listen.port, 6432);
  });
});

describe('precedence flag > env > file > default', () => {
  const file = write(
    [
      'token-ttl: 100',
      'listen: 127.0.0.1:1001',
      'log-level: debug',
      'connect-timeout: 1s',
      'profile: from-file',
    ].join('\n'),
  );
  const env = {
    DSQL_PROXY_ENDPOINT: EP,
    DSQL_PROXY_TOKEN_TTL: '200',
    DSQL_PROXY_LISTEN: '127.0.0.1:1002',
    DSQL_PROXY_LOG_LEVEL: 'warn',
    DSQL_PROXY_CONNECT_TIMEOUT: '2s',
    AWS_PROFILE: 'from-env',
  };
  const flags = [
    '--token-ttl',
    '300',
    '--listen',
    '127.0.0.1:1003',
    '--log-level',
    'error',
    '--connect-timeout',
    '3s',
  ];

  it('flag wins over env and file', () => {
    const c = load(['--config', file, ...flags, '--profile', 'from-flag'], env);
    assert.equal(c.clusters[0]!.tokenTtlSeconds, 300);
    assert.equal(c.listen.port, 1003);
    assert.equal(c.logLevel, 'error');
    assert.equal(c.connectTimeoutMs, 3000);
    assert.equal(c.clusters[0]!.profile, 'from-flag');
  });

  it('env wins over file', () => {
    const c = load(['--config', file], env);
    assert.equal(c.clusters[0]!.tokenTtlSeconds, 200);
    assert.equal(c.listen.port, 1002);
    assert.equal(c.logLevel, 'warn');
    assert.equal(c.connectTimeoutMs, 2000);
    assert.equal(c.clusters[0]!.profile, 'from-env');
  });

  it('file wins over default', () => {
    const c = load(['--config', file, '--endpoint', EP]);
    assert.equal(c.clusters[0]!.tokenTtlSeconds, 100);
    assert.equal(c.listen.port, 1001);
    assert.equal(c.logLevel, 'debug');
    assert.equal(c.connectTimeoutMs, 1000);
    assert.equal(c.clusters[0]!.profile, 'from-file');
    assert.equal(c.loginTimeoutMs, 60_000);
  });

  it('the config file itself can come from DSQL_PROXY_CONFIG, and --config wins over it', () => {
    const other = write('token-ttl: 42\n');
    assert.equal(
      load([], { DSQL_PROXY_ENDPOINT: EP, DSQL_PROXY_CONFIG: file }).clusters[0]!.tokenTtlSeconds,
      100,
    );
    assert.equal(
      load(['--config', other], { DSQL_PROXY_ENDPOINT: EP, DSQL_PROXY_CONFIG: file }).clusters[0]!
        .tokenTtlSeconds,
      42,
    );
  });

  it('an empty environment variable counts as unset', () => {
    assert.equal(
      load(['--config', file], { DSQL_PROXY_ENDPOINT: EP, DSQL_PROXY_TOKEN_TTL: '' }).clusters[0]!
        .tokenTtlSeconds,
      100,
    );
  });

  it('a bad value in a lower layer still fails, naming where it is', () => {
    fails(['--endpoint', EP, '--token-ttl', '5'], { DSQL_PROXY_TOKEN_TTL: 'soon' }, /DSQL_PROXY_TOKEN_TTL/);
  });
});

describe('region', () => {
  it('comes from a normal endpoint', () => {
    assert.equal(
      load(['--endpoint', 'xyz.dsql.eu-central-1.on.aws']).clusters[0]!.endpoints[0]!.region,
      'eu-central-1',
    );
  });

  it('comes from a PrivateLink endpoint', () => {
    const c = load(['--endpoint', 'abcdefghijklmnopqrstuvwxyz.dsql-fnh4.ap-southeast-2.on.aws']);
    assert.equal(c.clusters[0]!.endpoints[0]!.region, 'ap-southeast-2');
  });

  it('may repeat the endpoint region', () => {
    assert.equal(
      load(['--endpoint', EP, '--region', 'us-east-1']).clusters[0]!.endpoints[0]!.region,
      'us-east-1',
    );
  });

  it('refuses a --region that contradicts the endpoint', () => {
    const err = fails(['--endpoint', EP, '--region', 'us-west-2'], {}, /--region/, /us-west-2/, /us-east-1/);
    assert.equal(err.key, 'region');
  });

  it('refuses a contradicting DSQL_PROXY_REGION, naming the variable', () => {
    fails(['--endpoint', EP], { DSQL_PROXY_REGION: 'eu-west-1' }, /DSQL_PROXY_REGION/);
  });

  it('is required for a hostname that does not name one', () => {
    const err = fails(['--endpoint', 'db.internal.example.com'], {}, /region/, /--region/);
    assert.equal(err.key, 'region');
    assert.equal(
      load(['--endpoint', 'db.internal.example.com', '--region', 'us-east-2']).clusters[0]!.endpoints[0]!
        .region,
      'us-east-2',
    );
  });

  it('never comes from AWS_REGION', () => {
    const c = load(['--endpoint', EP], { AWS_REGION: 'eu-west-1', AWS_DEFAULT_REGION: 'eu-west-1' });
    assert.equal(c.clusters[0]!.endpoints[0]!.region, 'us-east-1');
    assert.ok(c.warnings.some((w) => /AWS_REGION is eu-west-1.*us-east-1/.test(w)));
    fails(['--endpoint', 'db.internal.example.com'], { AWS_REGION: 'eu-west-1' }, /--region/);
  });

  it('must look like a region name', () => {
    fails(
      ['--endpoint', 'db.internal.example.com', '--region', 'mars'],
      {},
      /--region "mars"/,
      /region name/,
    );
  });
});

describe('listen and connect-to', () => {
  it('reads IPv6 listen addresses in brackets', () => {
    const c = load(['--endpoint', EP, '--listen', '[::1]:6543']);
    assert.deepEqual(c.listen, { host: '::1', port: 6543 });
    assert.equal(c.authMethod, 'trust');
  });

  it('accepts port 0 for listen (ephemeral) but not for connect-to', () => {
    assert.equal(load(['--endpoint', EP, '--listen', '127.0.0.1:0']).listen.port, 0);
    fails(['--endpoint', EP, '--connect-to', '10.0.0.1:0'], {}, /--connect-to/, /out of range/);
  });

  it('dials connect-to but keeps the endpoint for TLS and token', () => {
    const c = load(['--endpoint', EP, '--connect-to', 'vpce-1.example.internal:15432']);
    assert.deepEqual(c.clusters[0]!.endpoints[0]!.connectTo, {
      host: 'vpce-1.example.internal',
      port: 15432,
    });
    assert.equal(c.clusters[0]!.endpoints[0]!.hostname, EP);
  });

  const bad: Array<[string, RegExp]> = [
    ['127.0.0.1', /HOST:PORT/],
    ['127.0.0.1:99999', /out of range/],
    ['127.0.0.1:http', /not a number/],
    ['::1:5432', /brackets/],
    ['[::1]5432', /\[IPV6\]:PORT/],
    ['[nope]:5432', /not an IPv6/],
    [':5432', /host is missing/],
    ['bad_host:5432', /neither an IPv4 address nor a hostname/],
  ];
  for (const [value, re] of bad) {
    it(`rejects --listen ${value}`, () => {
      const err = fails(['--endpoint', EP, '--listen', value], {}, /--listen/, re);
      assert.equal(err.key, 'listen');
    });
  }
});

describe('trust and auth-method rules', () => {
  it('defaults to trust on loopback, with a warning', () => {
    for (const listen of ['127.0.0.1:5432', '127.8.9.10:5432', '[::1]:5432', 'localhost:5432']) {
      const c = load(['--endpoint', EP, '--listen', listen]);
      assert.equal(c.authMethod, 'trust', listen);
      assert.match(c.warnings.join('\n'), /trust authentication: any local process can connect as any user/);
    }
  });

  it('refuses defaulted trust on 0.0.0.0', () => {
    const err = fails(
      ['--endpoint', EP, '--listen', '0.0.0.0:5432'],
      {},
      /refusing to run with trust authentication on 0\.0\.0\.0/,
      /--auth-file/,
    );
    assert.equal(err.key, 'auth-method');
  });

  it('refuses explicit trust beyond loopback, also with an auth file', () => {
    fails(
      ['--endpoint', EP, '--listen', '[::]:5432', '--auth-method', 'trust'],
      {},
      /refusing.*trust.*\[::\]:5432/,
      /--auth-method/,
    );
    fails(
      ['--endpoint', EP, '--listen', '10.1.2.3:5432', '--auth-method', 'trust', '--auth-file', AUTH],
      {},
      /refusing.*trust/,
    );
  });

  it('refuses trust on a hostname it cannot prove is loopback', () => {
    fails(['--endpoint', EP, '--listen', 'myhost.example.com:5432'], {}, /refusing.*trust/);
  });

  it('needs an auth file for any method but trust', () => {
    for (const method of ['scram-sha-256', 'md5', 'password']) {
      const err = fails(
        ['--endpoint', EP, '--auth-method', method],
        {},
        new RegExp(`auth-method ${method}`),
        /--auth-file/,
      );
      assert.equal(err.key, 'auth-file');
    }
  });

  it('defaults to scram-sha-256 with an auth file, and may listen anywhere then', () => {
    const c = load([
      '--endpoint',
      EP,
      '--listen',
      '0.0.0.0:5432',
      '--auth-file',
      AUTH,
      '--auth-method',
      'md5',
    ]);
    assert.equal(c.authMethod, 'md5');
    assert.equal(c.users.get('alice')?.kind, 'md5');
    assert.equal(load(['--endpoint', EP, '--auth-file', AUTH]).authMethod, 'scram-sha-256');
  });

  it('warns that md5 secrets cannot answer scram-sha-256', () => {
    const c = load(['--endpoint', EP, '--auth-file', AUTH]);
    assert.ok(c.warnings.some((w) => /md5 secrets cannot log in with scram-sha-256 \(alice\)/.test(w)));
  });

  it('warns about cleartext passwords beyond loopback', () => {
    const c = load([
      '--endpoint',
      EP,
      '--listen',
      '0.0.0.0:5432',
      '--auth-file',
      AUTH,
      '--auth-method',
      'password',
    ]);
    assert.ok(c.warnings.some((w) => /clear text/.test(w)));
  });

  it('rejects an unknown method, listing the valid ones', () => {
    fails(
      ['--endpoint', EP, '--auth-method', 'scram'],
      {},
      /--auth-method "scram"/,
      /scram-sha-256, md5, password, trust/,
    );
  });
});

describe('every invalid value names its key', () => {
  const cases: Array<[string[], NodeJS.ProcessEnv, RegExp[]]> = [
    [['--token-ttl', '0'], {}, [/--token-ttl "0"/, /between 1 and 604800/]],
    [['--token-ttl', '604801'], {}, [/--token-ttl/, /604800/]],
    [['--token-ttl', '1500ms'], {}, [/--token-ttl/, /whole seconds/]],
    [['--token-ttl=-5'], {}, [/--token-ttl "-5"/, /negative/]],
    [[], { DSQL_PROXY_TOKEN_TTL: 'x' }, [/DSQL_PROXY_TOKEN_TTL "x"/]],
    [['--connect-timeout', '0'], {}, [/--connect-timeout/, /at least 1ms/]],
    [['--login-timeout', 'forever'], {}, [/--login-timeout/, /invalid duration/]],
    [['--max-shutdown-delay', '1000h'], {}, [/--max-shutdown-delay/, /at most/]],
    [[], { DSQL_PROXY_MAX_SHUTDOWN_DELAY: '-1s' }, [/DSQL_PROXY_MAX_SHUTDOWN_DELAY/, /negative/]],
    [['--log-level', 'verbose'], {}, [/--log-level "verbose"/, /must be one of/]],
    [['--listen', 'nope'], {}, [/--listen/]],
    [[], { DSQL_PROXY_CONNECT_TO: 'a:b' }, [/DSQL_PROXY_CONNECT_TO/]],
    [['--ca-file', join(dir, 'missing.pem')], {}, [/--ca-file/, /missing\.pem/, /no such file/]],
    [['--auth-file', join(dir, 'missing.txt')], {}, [/--auth-file/, /missing\.txt/, /no such file/]],
    [['--auth-file', dir], {}, [/--auth-file/, /is a directory/]],
    [['--config', join(dir, 'missing.yaml')], {}, [/--config/, /missing\.yaml/, /no such file/]],
    [['--profile', ''], {}, [/--profile ""/, /empty/]],
  ];
  for (const [argv, env, patterns] of cases) {
    it(`${[...argv, ...Object.entries(env).map(([k, v]) => `${k}=${v}`)].join(' ')}`, () => {
      fails(['--endpoint', EP, ...argv], env, ...patterns);
    });
  }

  it('rejects an endpoint with scheme, port or IP, and says why', () => {
    fails(['--endpoint', `postgres://${EP}`], {}, /--endpoint/, /without a scheme/);
    fails(['--endpoint', `${EP}:5432`], {}, /--endpoint/, /connect-to/);
    fails(['--endpoint', '10.0.0.1'], {}, /--endpoint/, /not an IP address/);
    fails(['--endpoint', 'under_score.dsql.us-east-1.on.aws'], {}, /--endpoint/, /not a valid hostname/);
  });
});

describe('flags', () => {
  it('rejects an unknown flag with a suggestion', () => {
    const err = fails(
      ['--endpoint', EP, '--tokn-ttl', '5'],
      {},
      /unknown flag --tokn-ttl/,
      /did you mean --token-ttl\?/,
    );
    assert.equal(err.key, 'tokn-ttl');
  });

  it('rejects an unknown flag without a far-fetched suggestion', () => {
    const err = fails(['--endpoint', EP, '--verbose'], {}, /unknown flag --verbose/);
    assert.doesNotMatch(err.message, /did you mean/);
  });

  it('rejects role-map as a flag (config file only)', () => {
    fails(['--endpoint', EP, '--role-map', 'a=b'], {}, /unknown flag --role-map/);
  });

  it('rejects a flag without value and stray arguments', () => {
    fails(['--endpoint', EP, '--token-ttl'], {}, /--token-ttl needs a value/);
    fails(['--endpoint', EP, '--listen', '--token-ttl', '5'], {}, /--listen needs a value/);
    fails(['--endpoint', EP, 'serve'], {}, /unexpected argument "serve"/);
  });

  it('accepts --help (the caller shows help before loading)', () => {
    assert.equal(load(['--endpoint', EP, '--help']).clusters[0]!.endpoints[0]!.hostname, EP);
  });
});

describe('environment', () => {
  it('reads every key from DSQL_PROXY_* and the profile from AWS_PROFILE', () => {
    const c = load([], {
      DSQL_PROXY_ENDPOINT: 'abc.dsql.eu-west-1.on.aws',
      DSQL_PROXY_REGION: 'eu-west-1',
      DSQL_PROXY_LISTEN: '[::1]:7000',
      DSQL_PROXY_CONNECT_TO: '127.0.0.1:7001',
      DSQL_PROXY_TOKEN_TTL: '1h',
      DSQL_PROXY_AUTH_FILE: AUTH,
      DSQL_PROXY_AUTH_METHOD: 'md5',
      DSQL_PROXY_LOG_LEVEL: 'trace',
      DSQL_PROXY_CONNECT_TIMEOUT: '500ms',
      DSQL_PROXY_LOGIN_TIMEOUT: '5m',
      DSQL_PROXY_MAX_SHUTDOWN_DELAY: '0',
      AWS_PROFILE: 'dev',
    });
    assert.equal(c.clusters[0]!.endpoints[0]!.region, 'eu-west-1');
    assert.deepEqual(c.listen, { host: '::1', port: 7000 });
    assert.deepEqual(c.clusters[0]!.endpoints[0]!.connectTo, { host: '127.0.0.1', port: 7001 });
    assert.equal(c.clusters[0]!.tokenTtlSeconds, 3600);
    assert.equal(c.authFile, AUTH);
    assert.equal(c.authMethod, 'md5');
    assert.equal(c.logLevel, 'trace');
    assert.equal(c.connectTimeoutMs, 500);
    assert.equal(c.loginTimeoutMs, 300_000);
    assert.equal(c.maxShutdownDelayMs, 0);
    assert.equal(c.clusters[0]!.profile, 'dev');
  });

  it('warns about unknown DSQL_PROXY_ variables, with a suggestion', () => {
    const c = load(['--endpoint', EP], {
      DSQL_PROXY_TOKEN_TTLL: '5',
      DSQL_PROXY_PROFILE: 'x',
      DSQL_PROXY_ROLE_MAP: 'a',
      DSQL_PROXY_WHATEVER: '1',
    });
    const w = c.warnings.join('\n');
    assert.match(w, /DSQL_PROXY_TOKEN_TTLL.*did you mean DSQL_PROXY_TOKEN_TTL\?/);
    assert.match(w, /DSQL_PROXY_PROFILE.*AWS_PROFILE/);
    assert.match(w, /DSQL_PROXY_ROLE_MAP.*config file/);
    assert.match(w, /ignoring unknown environment variable DSQL_PROXY_WHATEVER/);
    assert.equal(c.clusters[0]!.tokenTtlSeconds, 900);
  });
});

describe('token-ttl', () => {
  const good: Array<[string, number]> = [
    ['1', 1],
    ['900', 900],
    ['604800', 604_800],
    ['15m', 900],
    ['168h', 604_800],
    ['2000ms', 2],
  ];
  for (const [value, seconds] of good) {
    it(`${value} -> ${seconds}s`, () => {
      assert.equal(load(['--endpoint', EP, '--token-ttl', value]).clusters[0]!.tokenTtlSeconds, seconds);
    });
  }
});

describe('admin-quitquitquit', () => {
  it('is off by default and turned on by the flag, the environment or the file', () => {
    assert.equal(load(['--endpoint', EP]).adminQuitquitquit, false);
    assert.equal(load(['--endpoint', EP, '--admin-quitquitquit']).adminQuitquitquit, true);
    assert.equal(load(['--endpoint', EP], { DSQL_PROXY_ADMIN_QUITQUITQUIT: 'true' }).adminQuitquitquit, true);
    assert.equal(
      load(['--config', write(`endpoint: ${EP}\nadmin-quitquitquit: true\n`)]).adminQuitquitquit,
      true,
    );
    fails(['--endpoint', EP], { DSQL_PROXY_ADMIN_QUITQUITQUIT: 'maybe' }, /must be true or false/);
  });

  it('warns when it is on beyond loopback, or has no admin listener to act on', () => {
    const wide = load(['--endpoint', EP, '--admin-quitquitquit', '--admin-listen', '0.0.0.0:9801']);
    assert.ok(wide.warnings.some((w) => /admin-quitquitquit on 0\.0\.0\.0:9801: anyone/.test(w)));
    const local = load(['--endpoint', EP, '--admin-quitquitquit', '--admin-listen', '9801']);
    assert.ok(!local.warnings.some((w) => w.includes('admin-quitquitquit')));
    const none = load(['--endpoint', EP, '--admin-quitquitquit']);
    assert.ok(none.warnings.some((w) => /no effect without admin-listen/.test(w)));
  });
});
