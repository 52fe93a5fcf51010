/**
 * Properties of configuration loading over hostile input: any argv, environment, YAML config file,
 * auth file and CA file (written to a temp dir) give a configuration or a ConfigError, never another
 * error. (parseDuration's and parseHostPort's properties are in core-duration.property.test.ts and
 * config-host-port.property.test.ts.)
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import fc from 'fast-check';
import { createScramVerifier } from '../../src/auth/scram.js';
import { ConfigError, loadConfig, OPTION_DOCS } from '../../src/config/index.js';
import { mutateAll, mutation, onlyThrows, runs } from './property-helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'dsql-proxy-property-config-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const ENDPOINT = 'abcdefghijklmnopqrstuvwxyz.dsql.us-east-1.on.aws';
const KEYS = OPTION_DOCS.map((o) => o.key);
const ENVS = OPTION_DOCS.map((o) => o.env).filter((e) => e !== '');

const AUTH_FILE = join(dir, 'auth.txt');
const CA_FILE = join(dir, 'ca.pem');
const CONFIG_FILE = join(dir, 'config.yaml');
const MISSING = join(dir, 'missing');

/** Values a person (or an attacker with access to the config) might give any option. */
const value = fc.oneof(
  fc.string({ maxLength: 20 }),
  fc.constantFrom(
    '',
    '0',
    '-1',
    '90',
    '500ms',
    '1.5s',
    '99999999999999999999h',
    '127.0.0.1:0',
    '0.0.0.0:5432',
    '[::1]:5432',
    '[::1',
    'localhost:65536',
    ENDPOINT,
    `${ENDPOINT}=127.0.0.1:1`,
    'a,b',
    'trust',
    'scram-sha-256',
    'md5',
    'drop',
    'reject',
    'debug',
    AUTH_FILE,
    CA_FILE,
    CONFIG_FILE,
    MISSING,
    dir,
    '--endpoint',
    '=',
  ),
);

const argv = fc
  .array(
    fc.oneof(
      fc.tuple(fc.constantFrom(...KEYS), value).map(([k, v]) => [`--${k}`, v]),
      fc.tuple(fc.constantFrom(...KEYS), value).map(([k, v]) => [`--${k}=${v}`]),
      fc.constantFrom(['-h'], ['--'], ['--nope'], ['x'], ['-'], ['--endpoint']),
    ),
    { maxLength: 6 },
  )
  .map((parts) => parts.flat());

const env = fc
  .array(
    fc.tuple(
      fc.oneof(fc.constantFrom(...ENVS, 'DSQL_PROXY_NOPE', 'AWS_REGION', 'DSQL_PROXY_'), fc.string()),
      value,
    ),
    { maxLength: 5 },
  )
  .map((pairs) => Object.fromEntries(pairs) as NodeJS.ProcessEnv);

/** YAML text: key/value lines with known and unknown keys, nesting and YAML syntax in odd places. */
const yamlText = fc.oneof(
  fc.string({ maxLength: 60 }),
  fc
    .array(
      fc.tuple(
        fc.oneof(fc.constantFrom(...KEYS), fc.string({ maxLength: 8 })),
        fc.oneof(
          value.map((v) => JSON.stringify(v)),
          value,
          fc.constantFrom(
            '[1, 2]',
            '{a: b}',
            '- x',
            '&a x',
            '*a',
            '!!binary aGk=',
            'null',
            '~',
            '{alice: admin}',
          ),
        ),
      ),
      { maxLength: 6 },
    )
    .chain((lines) =>
      fc
        .array(mutation, { maxLength: 2 })
        .map((ms) =>
          mutateAll(Buffer.from(lines.map(([k, v]) => `${k}: ${v}`).join('\n')), ms).toString('utf8'),
        ),
    ),
);

const authText = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.constantFrom(
    '',
    `"admin" "${createScramVerifier('pw', { iterations: 1, salt: Buffer.from('s') })}"`,
    '"admin" "SCRAM-SHA-256$1:x$y:z"',
    '"alice" "md5d41d8cd98f00b204e9800998ecf8427e"',
    '"bob" "plain"\n"bob" "again"',
    '"broken',
  ),
);

const caText = fc.oneof(
  fc.string({ maxLength: 30 }),
  fc.constant('-----BEGIN CERTIFICATE-----\nxx\n-----END CERTIFICATE-----\n'),
);

describe('loadConfig properties', () => {
  it('any argv, environment, config file, auth file and CA file: a config or only ConfigError', () => {
    fc.assert(
      fc.property(
        argv,
        env,
        yamlText,
        authText,
        caText,
        fc.boolean(),
        (args, vars, yaml, auth, ca, withEndpoint) => {
          writeFileSync(CONFIG_FILE, yaml);
          writeFileSync(AUTH_FILE, auth);
          writeFileSync(CA_FILE, ca);
          const fullArgs = withEndpoint ? ['--endpoint', ENDPOINT, ...args] : args;
          const config = onlyThrows(
            () => loadConfig(fullArgs, vars),
            ConfigError,
            (e) => {
              assert.ok(e.message.length > 0);
              // One line a person reads before the proxy exits.
              assert.ok(!e.message.includes('\n'), e.message);
            },
          );
          if (config === undefined) return;
          assert.ok(config.clusters[0]!.endpoints[0]!.hostname.length > 0);
          assert.ok(config.listen.port >= 0 && config.listen.port <= 65535);
          for (const ms of [config.connectTimeoutMs, config.loginTimeoutMs, config.maxShutdownDelayMs]) {
            assert.ok(Number.isSafeInteger(ms) && ms >= 0, String(ms));
          }
        },
      ),
      runs(200),
    );
  });

  it('a YAML alias bomb is a ConfigError, not an out-of-memory', () => {
    const lines = ['a: &a ["x","x","x","x","x","x","x","x","x","x"]'];
    for (let i = 1; i < 10; i++) {
      const prev = String.fromCharCode(96 + i);
      const cur = String.fromCharCode(97 + i);
      lines.push(`${cur}: &${cur} [${Array(10).fill(`*${prev}`).join(',')}]`);
    }
    writeFileSync(CONFIG_FILE, lines.join('\n'));
    assert.throws(() => loadConfig(['--endpoint', ENDPOINT, '--config', CONFIG_FILE], {}), ConfigError);
  });
});
