import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  ConfigError,
  formatHostPort,
  helpText,
  isLoopbackHost,
  OPTION_DOCS,
  parseHostPort,
  regionFromEndpoint,
} from '../../src/config/index.js';
import { FILE_SCHEMA, VALUE_SCHEMAS } from '../../src/config/schema.js';

describe('OPTION_DOCS', () => {
  it('covers exactly the keys the schema accepts', () => {
    const documented = OPTION_DOCS.map((o) => o.key).sort();
    const accepted = [...new Set([...Object.keys(VALUE_SCHEMAS), ...Object.keys(FILE_SCHEMA.shape)])].sort();
    assert.deepEqual(documented, accepted);
  });

  it('derives env names from keys, except profile (AWS_PROFILE) and the file-only role-map and clusters', () => {
    for (const o of OPTION_DOCS) {
      const expected =
        o.key === 'profile'
          ? 'AWS_PROFILE'
          : o.key === 'role-map' || o.key === 'clusters'
            ? ''
            : `DSQL_PROXY_${o.key.toUpperCase().replace(/-/g, '_')}`;
      assert.equal(o.env, expected, o.key);
      assert.ok(o.description.length > 10, o.key);
      assert.ok(o.type.length > 0, o.key);
    }
  });

  it('helpText lists every flag with its env variable and default', () => {
    const help = helpText();
    for (const o of OPTION_DOCS) {
      if (o.env === '') {
        assert.match(help, new RegExp(`^  ${o.key}:`, 'm'));
        continue;
      }
      assert.match(help, new RegExp(`^  --${o.key} <`, 'm'), o.key);
      assert.ok(help.includes(o.env), o.env);
    }
    assert.match(help, /default 127\.0\.0\.1:5432/);
    assert.match(help, /flag > environment > config file > default/);
  });
});

describe('parseHostPort', () => {
  it('reads IPv4, names and bracketed IPv6', () => {
    assert.deepEqual(parseHostPort('127.0.0.1:5432', 'listen'), { host: '127.0.0.1', port: 5432 });
    assert.deepEqual(parseHostPort('DB.Example.com:6432', 'connect-to'), {
      host: 'db.example.com',
      port: 6432,
    });
    assert.deepEqual(parseHostPort('[::1]:5432', 'listen'), { host: '::1', port: 5432 });
    assert.deepEqual(parseHostPort('[fd00::12:34]:65535', 'listen'), { host: 'fd00::12:34', port: 65535 });
  });

  it('throws ConfigError naming the key', () => {
    for (const bad of [
      '',
      'host',
      'host:',
      'host:0',
      'host:65536',
      '::1:5432',
      '[::1]',
      'a b:1',
      'host:+1',
    ]) {
      assert.throws(
        () => parseHostPort(bad, 'connect-to'),
        (err: unknown) =>
          err instanceof ConfigError &&
          err.key === 'connect-to' &&
          err.message.startsWith('invalid connect-to'),
        bad,
      );
    }
  });

  it('allows port 0 only when asked', () => {
    assert.equal(parseHostPort('127.0.0.1:0', 'listen', { allowPortZero: true }).port, 0);
    assert.throws(() => parseHostPort('127.0.0.1:0', 'listen'), ConfigError);
  });

  it('formats back', () => {
    for (const s of ['127.0.0.1:5432', '[::1]:5432', 'db.example.com:1']) {
      assert.equal(formatHostPort(parseHostPort(s, 'listen')), s);
    }
  });
});

describe('isLoopbackHost', () => {
  it('knows loopback from the rest', () => {
    for (const h of [
      '127.0.0.1',
      '127.255.0.9',
      '::1',
      '0:0:0:0:0:0:0:1',
      '::ffff:127.0.0.1',
      'localhost',
      'LOCALHOST',
    ]) {
      assert.equal(isLoopbackHost(h), true, h);
    }
    for (const h of ['0.0.0.0', '::', '10.0.0.1', '128.0.0.1', 'localhost.example.com', 'myhost', '::2']) {
      assert.equal(isLoopbackHost(h), false, h);
    }
  });
});

describe('regionFromEndpoint', () => {
  it('uses the AWS connectors pattern', () => {
    assert.equal(regionFromEndpoint('abc.dsql.us-east-1.on.aws'), 'us-east-1');
    assert.equal(regionFromEndpoint('abc.dsql-fnh4.eu-west-2.on.aws'), 'eu-west-2');
    assert.equal(regionFromEndpoint('ABC.DSQL.AP-SOUTH-1.ON.AWS'), 'ap-south-1');
    assert.equal(regionFromEndpoint('abc.dsql.us-east-1.on.aws.evil.com'), undefined);
    assert.equal(regionFromEndpoint('db.example.com'), undefined);
  });
});
