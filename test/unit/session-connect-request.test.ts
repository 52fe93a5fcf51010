import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { silentLogger } from '../../src/log.js';
import { ClientConnectRequest } from '../../src/session/connect-request.js';

const request = (): ClientConnectRequest =>
  new ClientConnectRequest('admin', new Map(), silentLogger(), () => {});

describe('ClientConnectRequest', () => {
  it('aborts a signal already handed out when the client leaves', () => {
    const req = request();
    const { signal } = req;
    assert.equal(signal.aborted, false);
    const reason = new Error('gone');
    req.clientLeft(reason);
    assert.equal(signal.aborted, true);
    assert.equal(signal.reason, reason);
  });

  it('hands out an aborted signal when the client left before anyone asked for it', () => {
    const req = request();
    const reason = new Error('gone');
    req.clientLeft(reason);
    assert.equal(req.signal.aborted, true);
    assert.equal(req.signal.reason, reason);
  });

  it('gives the same signal every time', () => {
    const req = request();
    assert.equal(req.signal, req.signal);
  });
});
