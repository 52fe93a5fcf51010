/**
 * Properties of the server side of SCRAM-SHA-256 and of verifier parsing:
 * - clientFirst/clientFinal on arbitrary or mutated messages fail only with
 *   ProxyError('PROTOCOL_VIOLATION') or a plain `{ ok: false }`, and a mutated client-final is accepted
 *   only when it still says exactly what the genuine one said;
 * - a genuine exchange (client half in test/support/scram-client.ts) always succeeds and the server
 *   signature is the one the client expects; a mock exchange (unknown user) never succeeds;
 * - parseScramVerifier never throws, and createScramVerifier → parseScramVerifier round-trips.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  createScramVerifier,
  deriveScramVerifier,
  formatScramVerifier,
  parseScramVerifier,
  ScramServer,
} from '../../src/auth/scram.js';
import type { ScramVerifier } from '../../src/auth/types.js';
import { ProxyError } from '../../src/errors.js';
import { clientFinalMessage, clientFirstMessage } from '../support/scram-client.js';
import { bytes, mutateAll, mutation, onlyThrows, runs } from './property-helpers.js';

const violation = (err: ProxyError): void => assert.equal(err.code, 'PROTOCOL_VIOLATION');
const MOCK_SALT = Buffer.from('mock-salt-for-tests');

/** RFC 5802 printable: %x21-2B / %x2D-7E. */
const printable = fc.stringMatching(/^[\x21-\x2b\x2d-\x7e]{1,24}$/);
/** ASCII passwords, for which SASLprep is the identity (the client half does not implement it). */
const password = fc.stringMatching(/^[\x20-\x7e]{0,20}$/);
const salt = fc.uint8Array({ minLength: 1, maxLength: 24 }).map((a) => Buffer.from(a));
/** Few iterations: the properties are about parsing and the exchange, not about PBKDF2's cost. */
const iterations = fc.integer({ min: 1, max: 8 });

const verifierOf = (pw: string, s: Buffer, i: number): ScramVerifier => deriveScramVerifier(pw, s, i);

function server(verifier: ScramVerifier | null, serverNonce = 'SERVERNONCE'): ScramServer {
  return new ScramServer(verifier, { mockSalt: MOCK_SALT, serverNonce: () => serverNonce });
}

/** A client-first that is close to valid: each part either right or picked from likely mistakes. */
const nearClientFirst = fc
  .tuple(
    fc.constantFrom('n', 'y', 'p=tls-server-end-point', 'p', '', 'N', 'n=x'),
    fc.constantFrom('', 'a=admin', 'a='),
    fc.constantFrom('n=', 'n=*', 'n=user', 'm=ext', 'r=abc', ''),
    fc.oneof(
      printable.map((p) => `r=${p}`),
      fc.constantFrom('r=', 'r=a,b', 'x=1', ''),
    ),
    fc.array(fc.constantFrom('x=1', 'e=', '=x', '1=2', 'ab=c', ''), { maxLength: 2 }),
  )
  .map(([flag, authz, user, nonce, ext]) => [flag, authz, user, nonce, ...ext].join(','));

describe('ScramServer properties', () => {
  it('clientFirst on arbitrary bytes: a server-first-message or only PROTOCOL_VIOLATION', () => {
    fc.assert(
      fc.property(bytes(80), fc.boolean(), (data, known) => {
        const s = server(known ? verifierOf('pw', Buffer.from('salt'), 1) : null);
        const out = onlyThrows(() => s.clientFirst(data), ProxyError, violation);
        if (out !== undefined)
          assert.match(out.toString('utf8'), /^r=[\x21-\x2b\x2d-\x7e]+,s=[A-Za-z0-9+/=]+,i=\d+$/);
      }),
      runs(1500),
    );
  });

  it('clientFirst on near-valid and mutated messages: only PROTOCOL_VIOLATION; nonce kept when accepted', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          nearClientFirst,
          fc
            .tuple(printable, fc.array(mutation, { minLength: 1, maxLength: 3 }))
            .map(([n, ms]) => mutateAll(Buffer.from(clientFirstMessage(n)), ms).toString('latin1')),
        ),
        (text) => {
          const s = server(null);
          const out = onlyThrows(() => s.clientFirst(Buffer.from(text, 'latin1')), ProxyError, violation);
          if (out === undefined) return;
          const nonce = /,r=([^,]*)/.exec(`,${text.split(',').slice(2).join(',')}`)?.[1];
          assert.ok(out.toString().startsWith(`r=${nonce}SERVERNONCE,`), `${text} -> ${out}`);
        },
      ),
      runs(1500),
    );
  });

  it('a genuine exchange succeeds with the expected server signature; a wrong password fails', () => {
    fc.assert(
      fc.property(
        password,
        password,
        salt,
        iterations,
        printable,
        printable,
        fc.constantFrom('n,,', 'y,,'),
        (pw, other, s, i, clientNonce, serverNonce, gs2) => {
          const first = clientFirstMessage(clientNonce, gs2);
          const srv = server(verifierOf(pw, s, i), serverNonce);
          const serverFirst = srv.clientFirst(Buffer.from(first)).toString();
          const final = clientFinalMessage(pw, first, serverFirst);
          const r = srv.clientFinal(Buffer.from(final.message));
          assert.deepEqual(r, { ok: true, serverFinal: Buffer.from(`v=${final.expectedServerSignature}`) });

          const srv2 = server(verifierOf(pw, s, i), serverNonce);
          const wrongFirst = srv2.clientFirst(Buffer.from(first)).toString();
          const wrong = srv2.clientFinal(Buffer.from(clientFinalMessage(other, first, wrongFirst).message));
          assert.equal(wrong.ok, pw === other);
        },
      ),
      runs(150),
    );
  });

  it('a mock exchange (unknown user) never succeeds, whatever the password', () => {
    fc.assert(
      fc.property(password, printable, (pw, nonce) => {
        const first = clientFirstMessage(nonce);
        const srv = server(null);
        const serverFirst = srv.clientFirst(Buffer.from(first)).toString();
        assert.match(
          serverFirst,
          new RegExp(`,s=${MOCK_SALT.toString('base64').replace(/[+/]/g, '\\$&')},i=4096$`),
        );
        const r = srv.clientFinal(Buffer.from(clientFinalMessage(pw, first, serverFirst).message));
        assert.deepEqual(r, { ok: false });
      }),
      runs(30),
    );
  });

  it('mutated client-final: PROTOCOL_VIOLATION or { ok: false }, accepted only if it means the same', () => {
    const pw = 'correct horse';
    const v = verifierOf(pw, Buffer.from('NaCl'), 2);
    const first = clientFirstMessage('clientnonce');
    const serverFirst = server(v).clientFirst(Buffer.from(first)).toString();
    const genuine = clientFinalMessage(pw, first, serverFirst).message;
    const genuineProof = Buffer.from(genuine.slice(genuine.lastIndexOf(',p=') + 3), 'base64');
    const genuineRest = genuine.slice(0, genuine.lastIndexOf(',p='));
    fc.assert(
      fc.property(fc.array(mutation, { minLength: 1, maxLength: 4 }), (ms) => {
        const srv = server(v);
        srv.clientFirst(Buffer.from(first));
        const mutated = mutateAll(Buffer.from(genuine), ms);
        const r = onlyThrows(() => srv.clientFinal(mutated), ProxyError, violation);
        if (r?.ok) {
          // Base64 has slack in its last character's padding bits; anything else must be identical.
          const text = mutated.toString('utf8');
          assert.equal(text.slice(0, text.lastIndexOf(',p=')), genuineRest);
          assert.deepEqual(Buffer.from(text.slice(text.lastIndexOf(',p=') + 3), 'base64'), genuineProof);
        }
      }),
      runs(1500),
    );
  });

  it('clientFinal on arbitrary bytes, and out-of-order calls: only PROTOCOL_VIOLATION or { ok: false }', () => {
    fc.assert(
      fc.property(bytes(120), bytes(40), (data, firstData) => {
        // Before clientFirst: always a violation.
        assert.throws(
          () => server(null).clientFinal(data),
          (e: unknown) => e instanceof ProxyError,
        );
        const srv = server(verifierOf('x', Buffer.from('s'), 1));
        srv.clientFirst(Buffer.from(clientFirstMessage('n0nce')));
        const r = onlyThrows(() => srv.clientFinal(data), ProxyError, violation);
        if (r !== undefined) assert.equal(r.ok, false);
        // The exchange is over whatever happened: no second try on the same server.
        assert.throws(() => srv.clientFinal(data), ProxyError);
        assert.throws(() => srv.clientFirst(firstData), ProxyError);
      }),
      runs(1000),
    );
  });
});

describe('SCRAM verifier properties', () => {
  it('parseScramVerifier never throws; what it accepts formats back to an equal verifier', () => {
    const near = fc
      .tuple(
        fc.constantFrom('SCRAM-SHA-256$', 'SCRAM-SHA-1$', 'scram-sha-256$', ''),
        fc.oneof(fc.nat().map(String), fc.constantFrom('0', '-1', '2147483648', '99999999999', '01', '')),
        fc.uint8Array({ maxLength: 20 }).map((a) => Buffer.from(a).toString('base64')),
        fc.uint8Array({ minLength: 30, maxLength: 34 }).map((a) => Buffer.from(a).toString('base64')),
        fc.uint8Array({ minLength: 31, maxLength: 33 }).map((a) => Buffer.from(a).toString('base64')),
        fc.array(mutation, { maxLength: 2 }),
      )
      .map(([p, i, s, k1, k2, ms]) =>
        mutateAll(Buffer.from(`${p}${i}:${s}$${k1}:${k2}`), ms).toString('utf8'),
      );
    fc.assert(
      fc.property(fc.oneof(fc.string({ maxLength: 120 }), near), (text) => {
        const v = parseScramVerifier(text);
        if (v === null) return;
        assert.ok(v.iterations >= 1 && v.iterations <= 0x7fffffff);
        assert.ok(v.salt.length > 0);
        assert.equal(v.storedKey.length, 32);
        assert.equal(v.serverKey.length, 32);
        assert.deepEqual(parseScramVerifier(formatScramVerifier(v)), v);
      }),
      runs(2000),
    );
  });

  it('createScramVerifier → parseScramVerifier round-trips and derives the same keys', () => {
    fc.assert(
      fc.property(password, salt, iterations, (pw, s, i) => {
        const text = createScramVerifier(pw, { salt: s, iterations: i });
        const v = parseScramVerifier(text);
        assert.ok(v);
        assert.deepEqual(v, verifierOf(pw, s, i));
        assert.equal(formatScramVerifier(v), text);
      }),
      runs(200),
    );
  });
});
