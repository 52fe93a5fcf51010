import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { adminRequestProblem, hostName } from '../../src/admin/request-guard.js';

describe('request guard', () => {
  test('hostName: ports, brackets and malformed values', () => {
    assert.equal(hostName('127.0.0.1:9801'), '127.0.0.1');
    assert.equal(hostName('[::1]:9801'), '::1');
    assert.equal(hostName('[::1]'), '::1');
    assert.equal(hostName('LocalHost'), 'localhost');
    assert.equal(hostName('[::1'), undefined);
    assert.equal(hostName('[evil.example]:80'), undefined);
    assert.equal(hostName('a b'), undefined);
    assert.equal(hostName('host:port:9'), undefined);
  });

  test('a request without Host (HTTP/1.0) names no other site and is served', () => {
    assert.equal(adminRequestProblem({}, '127.0.0.1'), undefined);
    assert.notEqual(adminRequestProblem({ origin: 'http://x' }, '127.0.0.1'), undefined);
  });

  test('a bind on a host name accepts that name', () => {
    assert.equal(adminRequestProblem({ host: 'proxy.internal:9801' }, 'proxy.internal'), undefined);
    assert.notEqual(adminRequestProblem({ host: 'other.internal:9801' }, 'proxy.internal'), undefined);
  });
});
