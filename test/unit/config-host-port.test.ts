import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError, formatHostPort, isLoopbackHost, parseHostPort } from '../../src/config/index.js';

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
