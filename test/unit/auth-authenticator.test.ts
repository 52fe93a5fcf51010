import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import { describe, it } from 'node:test';
import { AuthContext, authContext } from '../../src/auth/auth-context.js';
import { parseAuthFile } from '../../src/auth/auth-file.js';
import { type Authenticator, type AuthStep, createAuthenticator } from '../../src/auth/authenticator.js';
import { type Pbkdf2, pbkdf2Sha256 } from '../../src/auth/pbkdf2.js';
import {
  createScramVerifier,
  parseScramVerifier,
  SCRAM_MAX_ITERATIONS,
  verifyScramPassword,
} from '../../src/auth/scram.js';
import type { AuthMethod, AuthSecret, AuthUsers } from '../../src/auth/types.js';
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
      step = await auth.receive(P, passwordBody(password));
    } else if (code === 5) {
      const salt = req.subarray(9, 13);
      const response = `md5${md5hex(Buffer.concat([Buffer.from(md5hex(password + user)), salt]))}`;
      step = await auth.receive(P, passwordBody(response));
    } else if (code === 10) {
      sasl = pgSasl.startSession(['SCRAM-SHA-256']);
      step = await auth.receive(P, saslInitialBody('SCRAM-SHA-256', Buffer.from(sasl.response)));
    } else if (code === 11) {
      assert.ok(sasl);
      await pgSasl.continueSession(sasl, password, req.subarray(9).toString());
      step = await auth.receive(P, Buffer.from(sasl.response));
    } else {
      assert.fail(`unexpected request ${code}`);
    }
  }
  assert.fail('exchange did not finish');
}

/** An authenticator for `user` against a file holding only `secret` (none: the user is unknown). */
function make(method: AuthMethod, secret: AuthSecret | undefined, user = USER): Authenticator {
  const users: AuthUsers = new Map(secret ? [[user, secret]] : []);
  return createAuthenticator({ method, user, context: new AuthContext(users) });
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
    // An empty file's usual kind is SCRAM (PostgreSQL's default password_encryption).
    unknown: { flow: SASL, canSucceed: false },
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

/** A file of two users of `usual` kind and one of the other kind, SCRAM verifiers at `iterations`. */
function file(usual: 'scram' | 'md5', iterations = 4096): string {
  const scram = (pw: string) => createScramVerifier(pw, { iterations });
  const md5 = (pw: string, user: string) => `md5${md5hex(pw + user)}`;
  const lines: Array<[string, string]> =
    usual === 'scram'
      ? [
          ['alice', scram(PASSWORD)],
          ['bob', scram('bob-pw')],
          ['carol', md5('carol-pw', 'carol')],
        ]
      : [
          ['alice', md5(PASSWORD, 'alice')],
          ['bob', md5('bob-pw', 'bob')],
          ['carol', scram('carol-pw')],
        ];
  return lines.map(([u, v]) => `"${u}" "${v}"\n`).join('');
}

function against(method: AuthMethod, users: AuthUsers, user: string): Authenticator {
  return createAuthenticator({ method, user, context: authContext(users) });
}

/** The server-first-message an exchange sends to a fixed client-first-message. */
async function serverFirst(a: Authenticator): Promise<string> {
  assert.equal(authCode(a.begin().send[0]!), 10, 'SASL expected');
  const step = await a.receive(P, saslInitialBody('SCRAM-SHA-256', Buffer.from('n,,n=,r=abc')));
  return step.send[0]!.subarray(9).toString();
}

describe('authenticator: no user enumeration', () => {
  for (const usual of ['scram', 'md5'] as const) {
    for (const method of ['scram-sha-256', 'md5', 'password'] as const) {
      it(`${method}, a file of mostly ${usual} secrets: an unknown user gets a real user's message sequence`, async () => {
        const users = parseAuthFile(file(usual, 5000));
        const known = await run(against(method, users, 'alice'), 'nope', 'alice');
        const unknown = await run(against(method, users, 'mallory'), 'nope', 'mallory');
        assert.deepEqual(unknown.requests, known.requests);
        assert.deepEqual(unknown.lengths, known.lengths);
        assertAuthFailed(known.done, 'alice');
        assertAuthFailed(unknown.done, 'mallory');
      });
    }
  }

  it('announces the iterations of the real verifiers and a salt of the right size', async () => {
    const users = parseAuthFile(file('scram', 5000));
    const known = await serverFirst(against('scram-sha-256', users, 'alice'));
    const unknown = await serverFirst(against('scram-sha-256', users, 'mallory'));
    assert.match(known, /,i=5000$/);
    assert.match(unknown, /,i=5000$/);
    const salt = (m: string) => Buffer.from(/,s=([^,]+),/.exec(m)![1]!, 'base64');
    assert.equal(salt(unknown).length, salt(known).length);
  });

  it("gives an unknown user a salt that survives a restart (the same file read again) as a real user's does", async () => {
    const text = file('scram');
    const first = await serverFirst(against('scram-sha-256', parseAuthFile(text), 'mallory'));
    // A restart: the same file parsed into a new map, in a new context.
    const again = await serverFirst(against('scram-sha-256', parseAuthFile(text), 'mallory'));
    const saltOf = (m: string) => /,s=([^,]+),/.exec(m)?.[1];
    assert.ok(saltOf(first));
    assert.equal(saltOf(again), saltOf(first));
    const other = await serverFirst(against('scram-sha-256', parseAuthFile(text), 'eve'));
    assert.notEqual(saltOf(other), saltOf(first), 'each unknown user has a salt of its own');
  });

  it('costs an unknown user the derivation of the usual kind with password, and no more', async () => {
    for (const [usual, expected] of [
      ['scram', 1],
      ['md5', 0],
    ] as const) {
      const context = new AuthContext(parseAuthFile(file(usual)));
      const out = await run(
        createAuthenticator({ method: 'password', user: 'mallory', context }),
        'x1',
        'mallory',
      );
      assertAuthFailed(out.done, 'mallory');
      assert.equal(context.derivations, expected, usual);
    }
  });
});

describe('authenticator: PBKDF2 cost', () => {
  const counting = (): { derive: Pbkdf2; calls: () => number } => {
    let calls = 0;
    return {
      derive: async (pw, salt, n) => {
        calls++;
        return pbkdf2Sha256(pw, salt, n);
      },
      calls: () => calls,
    };
  };

  it('keeps the event loop turning while a derivation at the highest accepted iterations runs', async () => {
    const verifier = parseScramVerifier(createScramVerifier(PASSWORD, { iterations: SCRAM_MAX_ITERATIONS }))!;
    const context = new AuthContext(new Map([[USER, { kind: 'scram', verifier }]]));
    const auth = createAuthenticator({ method: 'password', user: USER, context });
    auth.begin();
    let ticks = 0;
    const timer = setInterval(() => ticks++, 5);
    const t0 = performance.now();
    const step = await auth.receive(P, passwordBody(PASSWORD)).finally(() => clearInterval(timer));
    const ms = performance.now() - t0;
    assert.deepEqual(step.done, { ok: true });
    assert.equal(context.derivations, 1);
    // A synchronous derivation lets no timer run at all.
    assert.ok(ticks >= 3, `${ticks} timer ticks during ${ms.toFixed(0)} ms of derivation`);
  });

  it('derives a plain-text secret once for N SCRAM logins, concurrent or not, before any proof never', async () => {
    const c = counting();
    const users: AuthUsers = new Map([[USER, { kind: 'plain', password: PASSWORD }]]);
    const context = new AuthContext(users, { derive: c.derive });
    const first = await serverFirst(createAuthenticator({ method: 'scram-sha-256', user: USER, context }));
    assert.match(first, /,i=4096$/);
    assert.equal(c.calls(), 0, 'the StartupMessage and client-first cost no derivation');
    const logins = await Promise.all(
      Array.from({ length: 5 }, () =>
        run(createAuthenticator({ method: 'scram-sha-256', user: USER, context }), PASSWORD),
      ),
    );
    for (const l of logins) assert.deepEqual(l.done, { ok: true });
    for (let i = 0; i < 3; i++) {
      const l = await run(createAuthenticator({ method: 'scram-sha-256', user: USER, context }), PASSWORD);
      assert.deepEqual(l.done, { ok: true });
    }
    assertAuthFailed(
      (await run(createAuthenticator({ method: 'scram-sha-256', user: USER, context }), 'bad')).done,
    );
    assert.equal(c.calls(), 1);
  });

  it('with password and a SCRAM secret: one derivation per attempt, right or wrong, none remembered', async () => {
    const c = counting();
    const users: AuthUsers = new Map([[USER, SECRETS.scram!]]);
    const context = new AuthContext(users, { derive: c.derive });
    const login = (pw: string) => run(createAuthenticator({ method: 'password', user: USER, context }), pw);
    for (let i = 0; i < 3; i++) assert.deepEqual((await login(PASSWORD)).done, { ok: true });
    assertAuthFailed((await login('wrong-1')).done);
    assert.equal(c.calls(), 4);
  });

  it('starts afresh for a reloaded file: one context per users map', () => {
    const text = '"alice" "pw-one"\n';
    const a = parseAuthFile(text);
    assert.equal(authContext(a), authContext(a));
    assert.notEqual(authContext(parseAuthFile(text)), authContext(a));
  });

  it('derives the same keys as the synchronous reference', async () => {
    const context = new AuthContext(new Map([[USER, { kind: 'plain', password: PASSWORD }]]));
    const v = await context.plainVerifier(USER, PASSWORD);
    assert.equal(verifyScramPassword(PASSWORD, v), true);
    assert.equal(verifyScramPassword(`${PASSWORD}x`, v), false);
  });
});

describe('authenticator: protocol details', () => {
  it('uses the injected random source for the md5 salt', () => {
    const auth = createAuthenticator({
      method: 'md5',
      user: USER,
      context: new AuthContext(new Map([[USER, SECRETS.md5!]])),
      random: (n) => Buffer.alloc(n, 9),
    });
    assert.deepEqual(auth.begin().send[0]!.subarray(9), Buffer.from([9, 9, 9, 9]));
  });

  it('fails with PROTOCOL_VIOLATION on a message of the wrong type', async () => {
    const auth = make('password', SECRETS.plain);
    auth.begin();
    const q = query('select 1');
    const step = await auth.receive(q[0]!, q.subarray(5));
    assert.ok(step.done && !step.done.ok);
    assert.equal(step.done.error.code, 'PROTOCOL_VIOLATION');
    assert.equal(auth.expectsMessage(), false);
  });

  it('fails with PROTOCOL_VIOLATION on a malformed password message or an unknown SASL mechanism', async () => {
    const a = make('password', SECRETS.plain);
    a.begin();
    const s1 = await a.receive(P, Buffer.from('no terminator'));
    assert.ok(s1.done && !s1.done.ok && s1.done.error.code === 'PROTOCOL_VIOLATION');
    const b = make('scram-sha-256', SECRETS.scram);
    b.begin();
    const s2 = await b.receive(
      P,
      saslInitialBody('SCRAM-SHA-256-PLUS', Buffer.from('p=tls-server-end-point,,n=,r=a')),
    );
    assert.ok(s2.done && !s2.done.ok && s2.done.error.code === 'PROTOCOL_VIOLATION');
    const c = make('scram-sha-256', SECRETS.scram);
    c.begin();
    const s3 = await c.receive(
      P,
      saslInitialBody('SCRAM-SHA-256', Buffer.from('p=tls-server-end-point,,n=,r=a')),
    );
    assert.ok(s3.done && !s3.done.ok && s3.done.error.code === 'PROTOCOL_VIOLATION');
  });

  it('fails on any message after the exchange ended', async () => {
    const auth = make('password', SECRETS.plain);
    await run(auth, PASSWORD);
    const step = await auth.receive(P, passwordBody(PASSWORD));
    assert.ok(step.done && !step.done.ok && step.done.error.code === 'PROTOCOL_VIOLATION');
  });

  it('refuses an empty cleartext password even if the stored password is empty', async () => {
    const out = await run(make('password', { kind: 'plain', password: '' }), '');
    assertAuthFailed(out.done);
  });

  it('asks for the SCRAM first message with an empty SASLContinue when the initial response is null', async () => {
    const auth = make('scram-sha-256', SECRETS.scram);
    auth.begin();
    const step = await auth.receive(P, saslInitialBody('SCRAM-SHA-256', null));
    assert.equal(step.done, undefined);
    assert.equal(authCode(step.send[0]!), 11);
    assert.equal(step.send[0]!.length, 9);
    const session = pgSasl.startSession(['SCRAM-SHA-256']);
    const first = await auth.receive(P, Buffer.from(session.response));
    await pgSasl.continueSession(session, PASSWORD, first.send[0]!.subarray(9).toString());
    const final = await auth.receive(P, Buffer.from(session.response));
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
