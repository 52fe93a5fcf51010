/**
 * Properties of the backend encoders (src/protocol/to-client.ts): what they write decodes back to what was
 * encoded, with pg-protocol's parser as the upstream path uses it (src/protocol/from-server.ts).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import type { DatabaseError } from 'pg-protocol';
import type {
  AuthenticationMD5Password,
  BackendKeyDataMessage,
  NoticeMessage,
  ParameterStatusMessage,
  ReadyForQueryMessage,
} from 'pg-protocol/dist/messages.js';
import type { Severity } from '../../src/errors.js';
import { decodeBackendFrame } from '../../src/protocol/from-server.js';
import {
  authenticationCleartextPassword,
  authenticationMD5Password,
  authenticationOk,
  authenticationSASL,
  authenticationSASLContinue,
  authenticationSASLFinal,
  backendKeyData,
  errorResponse,
  negotiateProtocolVersion,
  noticeResponse,
  parameterStatus,
  readyForQuery,
} from '../../src/protocol/to-client.js';
import { int32, oneTyped } from './frame-helpers.js';
import { cstringText, runs } from './property-helpers.js';

const severity = fc.constantFrom<Severity>('ERROR', 'FATAL', 'PANIC', 'WARNING', 'NOTICE');
const sqlstate = fc.stringMatching(/^[0-9A-Z]{5}$/);

describe('backend encoders round-trip through pg-protocol (decodeBackendFrame)', () => {
  it('ErrorResponse and NoticeResponse keep every field', () => {
    fc.assert(
      fc.property(
        severity,
        sqlstate,
        cstringText({ maxLength: 40 }),
        fc.option(cstringText(), { nil: undefined }),
        fc.option(cstringText(), { nil: undefined }),
        (sev, code, message, detail, hint) => {
          const fields = { severity: sev, sqlstate: code, message, detail, hint };
          const err = decodeBackendFrame(oneTyped(errorResponse(fields))) as DatabaseError;
          const notice = decodeBackendFrame(oneTyped(noticeResponse(fields))) as NoticeMessage;
          for (const m of [err, notice]) {
            assert.equal(m.severity, sev);
            assert.equal(m.code, code);
            assert.equal(m.message, message);
            assert.equal(m.detail, detail);
            assert.equal(m.hint, hint);
          }
          assert.equal(err.name, 'error');
          assert.equal(notice.name, 'notice');
        },
      ),
      runs(300),
    );
  });

  it('Authentication requests, ParameterStatus, BackendKeyData, ReadyForQuery', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 4, maxLength: 4 }),
        fc.array(cstringText({ minLength: 1 }), { maxLength: 4 }),
        fc.stringMatching(/^[\x20-\x7e]{0,40}$/),
        cstringText(),
        cstringText(),
        fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }),
        fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }),
        fc.constantFrom('I' as const, 'T' as const, 'E' as const),
        (salt, mechanisms, saslData, name, value, pid, key, status) => {
          const decode = (raw: Buffer) =>
            decodeBackendFrame(oneTyped(raw)) as unknown as Record<string, unknown>;
          assert.equal(decode(authenticationOk()).name, 'authenticationOk');
          assert.equal(decode(authenticationCleartextPassword()).name, 'authenticationCleartextPassword');
          const md5 = decode(
            authenticationMD5Password(Buffer.from(salt)),
          ) as unknown as AuthenticationMD5Password;
          assert.deepEqual(Buffer.from(md5.salt), Buffer.from(salt));
          assert.deepEqual(decode(authenticationSASL(mechanisms)).mechanisms, mechanisms);
          assert.equal(decode(authenticationSASLContinue(Buffer.from(saslData))).data, saslData);
          assert.equal(decode(authenticationSASLFinal(Buffer.from(saslData))).data, saslData);
          const ps = decode(parameterStatus(name, value)) as unknown as ParameterStatusMessage;
          assert.deepEqual([ps.parameterName, ps.parameterValue], [name, value]);
          const kd = decode(backendKeyData(pid, int32(key))) as unknown as BackendKeyDataMessage;
          assert.deepEqual([kd.processID, kd.secretKey], [pid, key]);
          const rfq = decode(readyForQuery(status)) as unknown as ReadyForQueryMessage;
          assert.equal(rfq.status, status);
        },
      ),
      runs(300),
    );
  });

  it('NegotiateProtocolVersion (pg-protocol has no parser for it): version and option list as laid out', () => {
    fc.assert(
      fc.property(fc.nat({ max: 0xffff }), fc.array(cstringText(), { maxLength: 5 }), (minor, opts) => {
        const version = (3 << 16) | minor;
        const frame = oneTyped(negotiateProtocolVersion(version, opts));
        assert.equal(frame.type, 0x76);
        assert.equal(frame.body.readInt32BE(0), version);
        assert.equal(frame.body.readInt32BE(4), opts.length);
        const names = frame.body.subarray(8).toString('utf8').split('\0');
        assert.deepEqual(names.slice(0, -1), opts);
      }),
      runs(200),
    );
  });
});
