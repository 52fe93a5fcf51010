import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { serialize } from 'pg-protocol';
import { MAX_AUTH_MESSAGE_LENGTH, MAX_STARTUP_PACKET_LENGTH } from '../../src/protocol/constants.js';
import { FrameReader } from '../../src/protocol/frame-reader.js';
import { decodePasswordMessage, decodeStartupPacket } from '../../src/protocol/from-client.js';
import {
  frontendBind,
  frontendCancelRequest,
  frontendClose,
  frontendDescribe,
  frontendExecute,
  frontendFlush,
  frontendParse,
  frontendPassword,
  frontendSSLRequest,
  frontendStartup,
  frontendSync,
  frontendTerminate,
} from '../../src/protocol/to-server.js';

describe('frontend encoders (upstream side)', () => {
  it('writes a StartupMessage with exactly the given parameters (no forced client_encoding)', () => {
    const msg = frontendStartup({ user: 'admin', database: 'postgres', client_encoding: 'LATIN1' });
    const r = new FrameReader();
    r.push(msg);
    const body = r.nextUntyped(MAX_STARTUP_PACKET_LENGTH);
    assert.ok(body);
    const decoded = decodeStartupPacket(body);
    assert.equal(decoded.kind, 'startup');
    if (decoded.kind !== 'startup') return;
    assert.deepEqual(Object.fromEntries(decoded.params), {
      user: 'admin',
      database: 'postgres',
      client_encoding: 'LATIN1',
    });
    assert.equal(r.buffered(), 0);
  });

  it('matches pg-protocol for password, SSLRequest, CancelRequest and Terminate', () => {
    assert.deepEqual(frontendPassword('tok&en=1'), serialize.password('tok&en=1'));
    assert.deepEqual(frontendSSLRequest(), serialize.requestSsl());
    assert.deepEqual(frontendCancelRequest(77, Buffer.from([0, 0, 1, 2])), serialize.cancel(77, 258));
    assert.deepEqual(frontendTerminate(), serialize.end());
  });

  it('round-trips a password and a 3.2-size cancel key through the decoders', () => {
    const r = new FrameReader();
    r.push(frontendPassword('IAM token ✓'));
    const frame = r.nextTyped(MAX_AUTH_MESSAGE_LENGTH);
    assert.equal(frame?.type, 0x70);
    assert.equal(decodePasswordMessage(frame!.body), 'IAM token ✓');
    const key = Buffer.alloc(32, 0xab);
    const cancel = frontendCancelRequest(-1, key);
    assert.deepEqual(decodeStartupPacket(cancel.subarray(4)), {
      kind: 'cancel',
      processId: -1,
      secretKey: key,
    });
  });
});

describe('extended-protocol encoders (upstream side)', () => {
  it('matches pg-protocol for Parse, Describe, Execute, Close, Sync and Flush', () => {
    assert.deepEqual(
      frontendParse('_p1', 'select $1::int, $2', [23, 0]),
      serialize.parse({ name: '_p1', text: 'select $1::int, $2', types: [23, 0] }),
    );
    assert.deepEqual(frontendParse('', 'select 1'), serialize.parse({ text: 'select 1' }));
    assert.deepEqual(frontendDescribe('S', 'x'), serialize.describe({ type: 'S', name: 'x' }));
    assert.deepEqual(frontendDescribe('P', ''), serialize.describe({ type: 'P', name: '' }));
    assert.deepEqual(frontendExecute('', 0), serialize.execute({ portal: '', rows: 0 }));
    assert.deepEqual(frontendClose('S', 'x'), serialize.close({ type: 'S', name: 'x' }));
    assert.deepEqual(frontendSync(), serialize.sync());
    assert.deepEqual(frontendFlush(), serialize.flush());
  });

  it('writes an OID above 2^31 as unsigned', () => {
    const msg = frontendParse('', 's', [0xfffffffe]);
    assert.equal(msg.readUInt32BE(msg.length - 4), 0xfffffffe);
  });

  it('writes Bind with text parameters, NULL as -1 and text results (exact bytes)', () => {
    const msg = frontendBind('', 'st', ['é\\', null, Buffer.alloc(0)]);
    const expected = Buffer.concat([
      Buffer.from('B'),
      Buffer.from([0, 0, 0, 29]),
      Buffer.from('\0st\0', 'latin1'),
      Buffer.from([0, 0]), // no parameter format codes: all text
      Buffer.from([0, 3]),
      Buffer.from([0, 0, 0, 3]),
      Buffer.from('é\\', 'utf8'),
      Buffer.from([0xff, 0xff, 0xff, 0xff]),
      Buffer.from([0, 0, 0, 0]),
      Buffer.from([0, 0]), // no result format codes: all text
    ]);
    assert.deepEqual(msg, expected);
  });
});
