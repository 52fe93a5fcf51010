import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { describe, it } from 'node:test';
import {
  createScramVerifier,
  deriveScramVerifier,
  formatScramVerifier,
  parseScramVerifier,
  ScramServer,
  verifyScramPassword,
} from '../../src/auth/scram.js';
import type { ScramVerifier } from '../../src/auth/types.js';
import { ProxyError } from '../../src/errors.js';

/** node-postgres's client-side SCRAM, an implementation independent of ours. */
interface PgSaslSession {
  response: string;
  serverSignature?: string;
}
interface PgSasl {
  startSession(mechanisms: string[], stream?: unknown): PgSaslSession;
  continueSession(
    session: PgSaslSession,
    password: string,
    serverData: string,
    stream?: unknown,
  ): Promise<void>;
  finalizeSession(session: PgSaslSession, serverData: string): void;
}
const pgSasl = createRequire(import.meta.url)('pg/lib/crypto/sasl.js') as PgSasl;

const violation = (err: unknown) => err instanceof ProxyError && err.code === 'PROTOCOL_VIOLATION';
const MOCK_SALT = Buffer.from('0123456789abcdef');

function verifierFor(password: string, iterations = 4096): ScramVerifier {
  const v = parseScramVerifier(createScramVerifier(password, { iterations }));
  assert.ok(v);
  return v;
}

/** Runs node-postgres's client against our server; returns whether both sides accepted. */
async function pgRoundTrip(verifier: ScramVerifier | null, password: string, channelFlag?: unknown) {
  const server = new ScramServer(verifier, { mockSalt: MOCK_SALT });
  const session = pgSasl.startSession(['SCRAM-SHA-256'], channelFlag);
  const serverFirst = server.clientFirst(Buffer.from(session.response));
  await pgSasl.continueSession(session, password, serverFirst.toString(), channelFlag);
  const result = server.clientFinal(Buffer.from(session.response));
  if (result.ok) pgSasl.finalizeSession(session, result.serverFinal.toString()); // throws if v= is wrong
  return { result, serverFirst: serverFirst.toString() };
}

describe('RFC 7677 §3 SCRAM-SHA-256 example', () => {
  const salt = Buffer.from('W22ZaJ0SNY7soEsUEjb6gQ==', 'base64');
  const verifier = deriveScramVerifier('pencil', salt, 4096);
  const clientFirst = 'n,,n=user,r=rOprNGfwEbeRWgbNEkqO';
  const serverNonce = '%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0';
  const nonce = `rOprNGfwEbeRWgbNEkqO${serverNonce}`;
  const clientFinal = `c=biws,r=${nonce},p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=`;

  it('produces the published server-first and server-final messages', () => {
    const server = new ScramServer(verifier, { mockSalt: MOCK_SALT, serverNonce: () => serverNonce });
    assert.equal(
      server.clientFirst(Buffer.from(clientFirst)).toString(),
      `r=${nonce},s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096`,
    );
    const result = server.clientFinal(Buffer.from(clientFinal));
    assert.deepEqual(result, {
      ok: true,
      serverFinal: Buffer.from('v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4='),
    });
  });

  it('rejects the published proof with one bit flipped', () => {
    const server = new ScramServer(verifier, { mockSalt: MOCK_SALT, serverNonce: () => serverNonce });
    server.clientFirst(Buffer.from(clientFirst));
    const proof = Buffer.from('dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=', 'base64');
    proof[31]! ^= 1;
    const tampered = `c=biws,r=${nonce},p=${proof.toString('base64')}`;
    assert.deepEqual(server.clientFinal(Buffer.from(tampered)), { ok: false });
  });

  it('checks cleartext passwords against the derived verifier', () => {
    assert.equal(verifyScramPassword('pencil', verifier), true);
    assert.equal(verifyScramPassword('pencil ', verifier), false);
    assert.equal(verifyScramPassword(Buffer.from('pencil'), verifier), true);
  });
});

describe('verifiers', () => {
  it('creates PostgreSQL-shaped verifiers that parse back', () => {
    const s = createScramVerifier('secret', { salt: Buffer.alloc(16, 1), iterations: 4096 });
    assert.match(s, /^SCRAM-SHA-256\$4096:[A-Za-z0-9+/]{22}==\$[A-Za-z0-9+/]{43}=:[A-Za-z0-9+/]{43}=$/);
    const v = parseScramVerifier(s);
    assert.ok(v);
    assert.equal(v.iterations, 4096);
    assert.deepEqual(v.salt, Buffer.alloc(16, 1));
    assert.equal(formatScramVerifier(v), s);
    assert.equal(createScramVerifier('secret', { salt: Buffer.alloc(16, 1) }), s);
    assert.equal(parseScramVerifier(createScramVerifier('x'))?.salt.length, 16);
  });

  it('rejects anything not strictly a verifier', () => {
    const good = createScramVerifier('secret', { salt: Buffer.alloc(16, 1) });
    const [head, keys] = good.split('$').slice(1) as [string, string];
    const [storedKey, serverKey] = keys.split(':') as [string, string];
    const bad = [
      '',
      'SCRAM-SHA-256$',
      good.replace('SCRAM-SHA-256', 'SCRAM-SHA-1'),
      good.replace('$4096:', '$0:'),
      good.replace('$4096:', '$04096:'),
      good.replace('$4096:', '$-1:'),
      good.replace('$4096:', '$99999999999:'),
      `SCRAM-SHA-256$4096:$${keys}`, // empty salt
      `SCRAM-SHA-256$${head}$${storedKey.slice(4)}:${serverKey}`, // short StoredKey
      `SCRAM-SHA-256$${head}$${storedKey}:${serverKey.replace('=', '')}`, // non-canonical base64
      `SCRAM-SHA-256$${head}$${storedKey}:${serverKey}:extra`,
      `${good} `,
      ` ${good}`,
      good.replace(':AQEB', ':AQ*B'), // not base64
    ];
    for (const s of bad) assert.equal(parseScramVerifier(s), null, s);
    assert.ok(parseScramVerifier(good));
  });
});

describe('ScramServer with node-postgres as the client', () => {
  it('accepts the right password with gs2 header n,, and verifies our v=', async () => {
    const { result, serverFirst } = await pgRoundTrip(verifierFor('correct horse'), 'correct horse');
    assert.equal(result.ok, true);
    assert.match(serverFirst, /^r=[^,]+,s=[A-Za-z0-9+/]+=*,i=4096$/);
  });

  it('accepts gs2 header y,, (libpq over TLS without -PLUS)', async () => {
    // pg sends "y" when it has a stream but the server offered no -PLUS mechanism.
    const stream = { getPeerCertificate: () => ({}) };
    const { result } = await pgRoundTrip(verifierFor('pw'), 'pw', stream);
    assert.equal(result.ok, true);
  });

  it('agrees with pg on SASLprep of non-ASCII passwords', async () => {
    const password = 'pa\u00A0ss\u2168\u00AD';
    assert.equal((await pgRoundTrip(verifierFor(password), password)).result.ok, true);
    assert.equal((await pgRoundTrip(verifierFor('pa ssIX'), password)).result.ok, true);
  });

  it('rejects a wrong password', async () => {
    assert.deepEqual((await pgRoundTrip(verifierFor('right'), 'wrong')).result, { ok: false });
  });

  it('runs a mock exchange for an unknown user and fails at the end', async () => {
    const known = await pgRoundTrip(verifierFor('pw'), 'pw');
    const unknown = await pgRoundTrip(null, 'pw');
    assert.deepEqual(unknown.result, { ok: false });
    const shape = (s: string) => s.replace(/r=[^,]+/, 'r=N').replace(/s=[^,]+/, (m) => `s=<${m.length}>`);
    assert.equal(shape(unknown.serverFirst), shape(known.serverFirst));
    assert.match(
      unknown.serverFirst,
      new RegExp(`,s=${MOCK_SALT.toString('base64').replace(/\+/g, '\\+')},i=4096$`),
    );
  });
});

describe('ScramServer rejects malformed exchanges', () => {
  const verifier = verifierFor('pw');
  const server = () =>
    new ScramServer(verifier, { mockSalt: MOCK_SALT, nonceBytes: () => Buffer.alloc(18, 7) });
  const serverNonce = Buffer.alloc(18, 7).toString('base64');

  it('rejects p= (channel binding never offered), a= authzid, m= and bad flags', () => {
    const bad = [
      'p=tls-server-end-point,,n=,r=abc',
      'n,a=admin,n=,r=abc',
      'n,,m=ext,n=,r=abc',
      'x,,n=,r=abc',
      'n,,r=abc',
      'n,,n=,r=',
      'n,,n=,s=abc',
      'n,,n=,r=abc,bad',
      'n',
      '',
      'n,,n=,r=a\0bc',
    ];
    for (const msg of bad) assert.throws(() => server().clientFirst(Buffer.from(msg)), violation, msg);
    assert.throws(() => server().clientFirst(Buffer.from([0x6e, 0x2c, 0x2c, 0xff])), violation);
  });

  it('ignores the user name and accepts extensions after the nonce', () => {
    const first = server().clientFirst(Buffer.from('n,,n=someone=2Celse,r=abc,x=ext')).toString();
    assert.ok(first.startsWith(`r=abc${serverNonce},`));
  });

  it('rejects a wrong nonce, a wrong c=, a short proof and a missing proof', () => {
    const proof = Buffer.alloc(32).toString('base64');
    const finals = [
      `c=biws,r=abcX${serverNonce},p=${proof}`, // nonce mismatch
      `c=biws,r=abc,p=${proof}`, // client nonce only
      `c=eSws,r=abc${serverNonce},p=${proof}`, // c= says y,, but the client sent n,,
      `c=biws=,r=abc${serverNonce},p=${proof}`, // not base64
      `c=biws,r=abc${serverNonce},p=${Buffer.alloc(31).toString('base64')}`,
      `c=biws,r=abc${serverNonce},p=!!!!`,
      `c=biws,r=abc${serverNonce}`,
      `r=abc${serverNonce},c=biws,p=${proof}`,
    ];
    for (const msg of finals) {
      const s = server();
      s.clientFirst(Buffer.from('n,,n=,r=abc'));
      assert.throws(() => s.clientFinal(Buffer.from(msg)), violation, msg);
    }
  });

  it('returns ok:false for a well-formed but wrong proof', () => {
    const s = server();
    s.clientFirst(Buffer.from('n,,n=,r=abc'));
    const msg = `c=biws,r=abc${serverNonce},p=${Buffer.alloc(32).toString('base64')}`;
    assert.deepEqual(s.clientFinal(Buffer.from(msg)), { ok: false });
  });

  it('enforces message order', () => {
    const s = server();
    assert.throws(() => s.clientFinal(Buffer.from('c=biws,r=x,p=y')), violation);
    s.clientFirst(Buffer.from('n,,n=,r=abc'));
    assert.throws(() => s.clientFirst(Buffer.from('n,,n=,r=abc')), violation);
    s.clientFinal(Buffer.from(`c=biws,r=abc${serverNonce},p=${Buffer.alloc(32).toString('base64')}`));
    assert.throws(() => s.clientFinal(Buffer.from('c=biws,r=x,p=y')), violation);
  });
});
