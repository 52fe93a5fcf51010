import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import { describe, it } from 'node:test';
import { type Authenticator, type AuthStep, createAuthenticator } from '../../src/auth/authenticator.js';
import { createScramVerifier, parseScramVerifier } from '../../src/auth/scram.js';
import type { AuthMethod, AuthSecret } from '../../src/auth/types.js';
import { ProxyError } from '../../src/errors.js';
import { passwordBody, query, saslInitialBody } from './frontend-builders.js';

interface PgSaslSession {
  response: string;
}
interface PgSasl {
  startSession(mechanisms: string[], stream?: unknown): PgSaslSession;
  continueSession(session: PgSaslSession, password: string, serverData: string): Promise<void>;
  finalizeSession(session: PgSaslSession, serverData: string): void;
}
const pgSasl = createRequire(import.meta.url)('pg/lib/crypto/sasl.js') as PgSasl;

const USER = 'alice';
const PASSWORD = 'Tr0ub4dor&3';
const MOCK_SECRET = Buffer.from('mock-secret-for-tests');
const P = 0x70;

const md5hex = (data: Buffer | string) => createHash('md5').update(data).digest('hex');

const SECRETS: Record<string, AuthSecret | undefined> = {
  scram: { kind: 'scram', verifier: parseScramVerifier(createScramVerifier(PASSWORD))! },
  md5: { kind: 'md5', hash: `md5${md5hex(PASSWORD + USER)}` },
  plain: { kind: 'plain', password: PASSWORD },
  unknown: undefined,
};

interface Outcome {
  /** Authentication request codes (R messages) the client saw, in order. */
  requests: number[];
  /** Lengths of every message sent, to compare message shapes. */
  lengths: number[];
  done: AuthStep['done'];
  lastSend: Buffer[];
}

function authCode(msg: Buffer): number {
  assert.equal(msg[0], 0x52, 'expected an Authentication message');
  return msg.readInt32BE(5);
}

/** Plays a client that answers whatever the authenticator asks for with `password`. */
async function run(auth: Authenticator, password: string, user = USER): Promise<Outcome> {
  const out: Outcome = { requests: [], lengths: [], done: undefined, lastSend: [] };
  let step = auth.begin();
  let sasl: PgSaslSession | undefined;
  for (let i = 0; i < 5; i++) {
    out.lastSend = step.send;
    out.lengths.push(...step.send.map((b) => b.length));
    out.requests.push(...step.send.map(authCode));
    if (step.done) {
      assert.equal(auth.expectsMessage(), false);
      out.done = step.done;
      return out;
    }
    assert.equal(auth.expectsMessage(), true);
    const req = step.send.at(-1)!;
    const code = authCode(req);
    if (code === 3) {
      step = auth.receive(P, passwordBody(password));
    } else if (code === 5) {
      const salt = req.subarray(9, 13);
      const response = `md5${md5hex(Buffer.concat([Buffer.from(md5hex(password + user)), salt]))}`;
      step = auth.receive(P, passwordBody(response));
    } else if (code === 10) {
      sasl = pgSasl.startSession(['SCRAM-SHA-256']);
      step = auth.receive(P, saslInitialBody('SCRAM-SHA-256', Buffer.from(sasl.response)));
    } else if (code === 11) {
      assert.ok(sasl);
      await pgSasl.continueSession(sasl, password, req.subarray(9).toString());
      step = auth.receive(P, Buffer.from(sasl.response));
    } else {
      assert.fail(`unexpected request ${code}`);
    }
  }
  assert.fail('exchange did not finish');
}

function make(method: AuthMethod, secret: AuthSecret | undefined, user = USER): Authenticator {
  return createAuthenticator({ method, user, secret, mockSecret: MOCK_SECRET });
}

function assertAuthFailed(done: AuthStep['done'], user = USER): void {
  assert.ok(done && !done.ok);
  assert.ok(done.error instanceof ProxyError);
  assert.equal(done.error.code, 'AUTH_FAILED');
  assert.equal(done.error.sqlstate, '28P01');
  assert.equal(done.error.message, `password authentication failed for user "${user}"`);
}

const SASL = [10, 11, 12, 0];
const SASL_FAIL = [10, 11];
const MD5 = [5, 0];
const CLEAR = [3, 0];

/** method -> secret kind -> expected request codes on success (null: cannot succeed). */
const MATRIX: Record<
  Exclude<AuthMethod, 'trust'>,
  Record<string, { flow: number[]; canSucceed: boolean }>
> = {
  'scram-sha-256': {
    scram: { flow: SASL, canSucceed: true },
    md5: { flow: SASL, canSucceed: false }, // an md5 hash cannot answer SCRAM: mock exchange
    plain: { flow: SASL, canSucceed: true },
    unknown: { flow: SASL, canSucceed: false },
  },
  md5: {
    scram: { flow: SASL, canSucceed: true }, // PostgreSQL upgrades md5 to SCRAM for SCRAM secrets
    md5: { flow: MD5, canSucceed: true },
    plain: { flow: MD5, canSucceed: true },
    unknown: { flow: MD5, canSucceed: false },
  },
  password: {
    scram: { flow: CLEAR, canSucceed: true },
    md5: { flow: CLEAR, canSucceed: true },
    plain: { flow: CLEAR, canSucceed: true },
    unknown: { flow: CLEAR, canSucceed: false },
  },
};

describe('authenticator: method x secret x password', () => {
  for (const [method, row] of Object.entries(MATRIX) as [AuthMethod, (typeof MATRIX)['md5']][]) {
    for (const [kind, { flow, canSucceed }] of Object.entries(row)) {
      const failFlow = flow === SASL ? SASL_FAIL : flow.slice(0, 1);
      it(`${method} / ${kind} secret / right password ${canSucceed ? 'succeeds' : 'fails'}`, async () => {
        const out = await run(make(method, SECRETS[kind]), PASSWORD);
        if (canSucceed) {
          assert.deepEqual(out.done, { ok: true });
          assert.deepEqual(out.requests, flow);
          assert.equal(authCode(out.lastSend.at(-1)!), 0, 'AuthenticationOk is in send');
        } else {
          assertAuthFailed(out.done);
          assert.deepEqual(out.requests, failFlow);
          assert.deepEqual(out.lastSend, []);
        }
      });
      it(`${method} / ${kind} secret / wrong password fails`, async () => {
        const out = await run(make(method, SECRETS[kind]), `${PASSWORD}x`);
        assertAuthFailed(out.done);
        assert.deepEqual(out.requests, failFlow);
      });
    }
  }

  it('trust succeeds at once with AuthenticationOk, for known and unknown users', () => {
    for (const secret of Object.values(SECRETS)) {
      const auth = make('trust', secret);
      const step = auth.begin();
      assert.deepEqual(step.done, { ok: true });
      assert.equal(step.send.length, 1);
      assert.equal(authCode(step.send[0]!), 0);
      assert.equal(auth.expectsMessage(), false);
    }
  });
});

describe('authenticator: no user enumeration', () => {
  it('gives an unknown user the same SCRAM message shapes and a stable salt', async () => {
    const known = await run(make('scram-sha-256', SECRETS.scram), 'nope');
    const unknown = await run(make('scram-sha-256', undefined, 'mallory'), 'nope', 'mallory');
    assert.deepEqual(unknown.requests, known.requests);
    assert.deepEqual(unknown.lengths, known.lengths);
    const salt = (a: Authenticator) => {
      a.begin();
      const step = a.receive(P, saslInitialBody('SCRAM-SHA-256', Buffer.from('n,,n=,r=abc')));
      return /,s=([^,]+),/.exec(step.send[0]!.subarray(9).toString())?.[1];
    };
    const first = salt(make('scram-sha-256', undefined, 'mallory'));
    assert.ok(first);
    assert.equal(salt(make('scram-sha-256', undefined, 'mallory')), first);
    assert.notEqual(salt(make('scram-sha-256', undefined, 'eve')), first);
  });

  it('gives an unknown user the same md5 and cleartext shapes', async () => {
    for (const method of ['md5', 'password'] as const) {
      const known = await run(make(method, SECRETS.md5), 'nope');
      const unknown = await run(make(method, undefined, 'mallory'), 'nope', 'mallory');
      assert.deepEqual(unknown.requests, known.requests);
      assert.deepEqual(unknown.lengths, known.lengths);
      assertAuthFailed(unknown.done, 'mallory');
    }
  });
});

describe('authenticator: protocol details', () => {
  it('uses the injected random source for the md5 salt', () => {
    const auth = createAuthenticator({
      method: 'md5',
      user: USER,
      secret: SECRETS.md5,
      mockSecret: MOCK_SECRET,
      random: (n) => Buffer.alloc(n, 9),
    });
    assert.deepEqual(auth.begin().send[0]!.subarray(9), Buffer.from([9, 9, 9, 9]));
  });

  it('fails with PROTOCOL_VIOLATION on a message of the wrong type', () => {
    const auth = make('password', SECRETS.plain);
    auth.begin();
    const q = query('select 1');
    const step = auth.receive(q[0]!, q.subarray(5));
    assert.ok(step.done && !step.done.ok);
    assert.equal(step.done.error.code, 'PROTOCOL_VIOLATION');
    assert.equal(auth.expectsMessage(), false);
  });

  it('fails with PROTOCOL_VIOLATION on a malformed password message or an unknown SASL mechanism', () => {
    const a = make('password', SECRETS.plain);
    a.begin();
    const s1 = a.receive(P, Buffer.from('no terminator'));
    assert.ok(s1.done && !s1.done.ok && s1.done.error.code === 'PROTOCOL_VIOLATION');
    const b = make('scram-sha-256', SECRETS.scram);
    b.begin();
    const s2 = b.receive(
      P,
      saslInitialBody('SCRAM-SHA-256-PLUS', Buffer.from('p=tls-server-end-point,,n=,r=a')),
    );
    assert.ok(s2.done && !s2.done.ok && s2.done.error.code === 'PROTOCOL_VIOLATION');
    const c = make('scram-sha-256', SECRETS.scram);
    c.begin();
    const s3 = c.receive(P, saslInitialBody('SCRAM-SHA-256', Buffer.from('p=tls-server-end-point,,n=,r=a')));
    assert.ok(s3.done && !s3.done.ok && s3.done.error.code === 'PROTOCOL_VIOLATION');
  });

  it('fails on any message after the exchange ended', async () => {
    const auth = make('password', SECRETS.plain);
    await run(auth, PASSWORD);
    const step = auth.receive(P, passwordBody(PASSWORD));
    assert.ok(step.done && !step.done.ok && step.done.error.code === 'PROTOCOL_VIOLATION');
  });

  it('refuses an empty cleartext password even if the stored password is empty', async () => {
    const out = await run(make('password', { kind: 'plain', password: '' }), '');
    assertAuthFailed(out.done);
  });

  it('asks for the SCRAM first message with an empty SASLContinue when the initial response is null', async () => {
    const auth = make('scram-sha-256', SECRETS.scram);
    auth.begin();
    const step = auth.receive(P, saslInitialBody('SCRAM-SHA-256', null));
    assert.equal(step.done, undefined);
    assert.equal(authCode(step.send[0]!), 11);
    assert.equal(step.send[0]!.length, 9);
    const session = pgSasl.startSession(['SCRAM-SHA-256']);
    const first = auth.receive(P, Buffer.from(session.response));
    await pgSasl.continueSession(session, PASSWORD, first.send[0]!.subarray(9).toString());
    const final = auth.receive(P, Buffer.from(session.response));
    assert.deepEqual(final.done, { ok: true });
    pgSasl.finalizeSession(session, final.send[0]!.subarray(9).toString());
  });

  it('checks a cleartext password against a SCRAM secret using SASLprep', async () => {
    const secret: AuthSecret = {
      kind: 'scram',
      verifier: parseScramVerifier(createScramVerifier('a\u00A0b'))!,
    };
    assert.deepEqual((await run(make('password', secret), 'a b')).done, { ok: true });
  });

  it('refuses begin() twice', () => {
    const auth = make('password', SECRETS.plain);
    auth.begin();
    assert.throws(() => auth.begin(), ProxyError);
  });
});
