import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { describe, it } from 'node:test';
import { parse } from 'pg-protocol';
import { ProxyError } from '../../src/errors.js';
import {
  authenticationCleartextPassword,
  authenticationMD5Password,
  authenticationOk,
  authenticationSASL,
  authenticationSASLContinue,
  authenticationSASLFinal,
  backendKeyData,
  commandComplete,
  errorFromProxyError,
  errorResponse,
  loginAnswer,
  negotiateProtocolVersion,
  noticeResponse,
  parameterStatus,
  readyForQuery,
  SSL_NO,
} from '../../src/protocol/to-client.js';

/** Parses backend bytes with node-postgres's client-side parser: an independent reader. */
async function pgParse(buf: Buffer): Promise<Record<string, unknown>[]> {
  const out: Record<string, unknown>[] = [];
  await parse(Readable.from([buf]), (msg) => {
    // DatabaseError keeps `message` as a non-enumerable Error property: copy it explicitly.
    out.push({ ...msg, message: (msg as { message?: unknown }).message } as Record<string, unknown>);
  });
  return out;
}

describe('backend encoders (exact bytes)', () => {
  it('encodes CommandComplete with its tag', () => {
    // 'C', length 4 + 'INSERT 0 1' (10) + NUL = 15.
    assert.equal(
      commandComplete('INSERT 0 1').toString('hex'),
      `430000000f${Buffer.from('INSERT 0 1').toString('hex')}00`,
    );
  });

  it('encodes AuthenticationOk, cleartext and MD5 requests', () => {
    assert.equal(authenticationOk().toString('hex'), '520000000800000000');
    assert.equal(authenticationCleartextPassword().toString('hex'), '520000000800000003');
    assert.equal(
      authenticationMD5Password(Buffer.from([1, 2, 3, 4])).toString('hex'),
      '520000000c0000000501020304',
    );
    assert.throws(() => authenticationMD5Password(Buffer.alloc(3)), RangeError);
  });

  it('encodes ReadyForQuery, BackendKeyData (3.0 and 3.2 keys) and SSL_NO', () => {
    assert.equal(readyForQuery('I').toString('hex'), '5a0000000549');
    assert.equal(readyForQuery('E').toString('hex'), '5a0000000545');
    assert.equal(backendKeyData(7, Buffer.from([9, 9, 9, 9])).toString('hex'), '4b0000000c0000000709090909');
    assert.equal(backendKeyData(1, Buffer.alloc(32)).length, 1 + 4 + 4 + 32);
    assert.deepEqual(SSL_NO, Buffer.from([0x4e]));
  });

  it('writes the login answer as the separate encoders would, for every key length and status', () => {
    const params = [parameterStatus('server_version', '16.9'), parameterStatus('TimeZone', 'UTC')];
    const notice = noticeResponse({ severity: 'NOTICE', sqlstate: '00000', message: 'hello' });
    for (const messages of [[], params, [...params, notice]]) {
      for (const key of [Buffer.from([1, 2, 3, 4]), Buffer.alloc(32, 0xab), Buffer.alloc(256, 7)]) {
        for (const status of ['I', 'T', 'E'] as const) {
          const expected = Buffer.concat([...messages, backendKeyData(-5, key), readyForQuery(status)]);
          assert.deepEqual(loginAnswer(messages, -5, key, status), expected);
        }
      }
    }
    assert.equal(
      loginAnswer([], 7, Buffer.from([9, 9, 9, 9]), 'I').toString('hex'),
      '4b0000000c00000007090909095a0000000549',
    );
  });

  it('encodes NegotiateProtocolVersion with the unrecognised options', () => {
    const msg = negotiateProtocolVersion((3 << 16) | 0, ['_pq_.a', '_pq_.bb']);
    const expected = Buffer.concat([
      Buffer.from('v'),
      Buffer.from([0, 0, 0, 4 + 4 + 4 + 7 + 8]),
      Buffer.from([0, 3, 0, 0, 0, 0, 0, 2]),
      Buffer.from('_pq_.a\0_pq_.bb\0'),
    ]);
    assert.deepEqual(msg, expected);
  });

  it('writes both S and V severities, C, M and the optional D and H', () => {
    const msg = errorResponse({ severity: 'FATAL', sqlstate: '28P01', message: 'm', detail: 'd', hint: 'h' });
    assert.equal(msg.subarray(5).toString('latin1'), 'SFATAL\0VFATAL\0C28P01\0Mm\0Dd\0Hh\0\0');
    assert.equal(msg.readInt32BE(1), msg.length - 1);
    const bare = noticeResponse({ severity: 'NOTICE', sqlstate: '00000', message: 'hi' });
    assert.equal(bare.toString('latin1'), `N${'\0\0\0\x20'}SNOTICE\0VNOTICE\0C00000\0Mhi\0\0`);
  });

  it('refuses to encode a string containing NUL', () => {
    assert.throws(() => parameterStatus('a\0b', 'c'), ProxyError);
  });
});

describe('backend encoders read by pg-protocol', () => {
  it('parses the authentication sequence', async () => {
    const msgs = await pgParse(
      Buffer.concat([
        authenticationSASL(['SCRAM-SHA-256']),
        authenticationSASLContinue(Buffer.from('r=abc,s=c2FsdA==,i=4096')),
        authenticationSASLFinal(Buffer.from('v=xyz')),
        authenticationMD5Password(Buffer.from([1, 2, 3, 4])),
        authenticationCleartextPassword(),
        authenticationOk(),
        parameterStatus('server_version', '16.1'),
        backendKeyData(1234, Buffer.from([0, 0, 0, 42])),
        readyForQuery('T'),
      ]),
    );
    assert.deepEqual(
      msgs.map((m) => m.name),
      [
        'authenticationSASL',
        'authenticationSASLContinue',
        'authenticationSASLFinal',
        'authenticationMD5Password',
        'authenticationCleartextPassword',
        'authenticationOk',
        'parameterStatus',
        'backendKeyData',
        'readyForQuery',
      ],
    );
    assert.deepEqual(msgs[0]?.mechanisms, ['SCRAM-SHA-256']);
    assert.equal(msgs[1]?.data, 'r=abc,s=c2FsdA==,i=4096');
    assert.equal(msgs[2]?.data, 'v=xyz');
    assert.deepEqual(msgs[3]?.salt, Buffer.from([1, 2, 3, 4]));
    assert.equal(msgs[6]?.parameterName, 'server_version');
    assert.equal(msgs[6]?.parameterValue, '16.1');
    assert.equal(msgs[7]?.processID, 1234);
    assert.equal(msgs[7]?.secretKey, 42);
    assert.equal(msgs[8]?.status, 'T');
  });

  it('parses an ErrorResponse built from a ProxyError', async () => {
    const err = new ProxyError('AUTH_FAILED', { message: 'password authentication failed for user "x"' });
    const [msg] = await pgParse(errorFromProxyError(err));
    assert.equal(msg?.name, 'error');
    assert.equal(msg?.severity, 'FATAL');
    assert.equal(msg?.code, '28P01');
    assert.equal(msg?.message, 'password authentication failed for user "x"');
    const withHint = await pgParse(errorFromProxyError(new ProxyError('SSL_BYTES_AFTER_REQUEST')));
    assert.equal(withHint[0]?.code, '08P01');
    assert.match(String(withHint[0]?.hint), /man-in-the-middle/);
  });
});
