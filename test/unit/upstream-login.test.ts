import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type tls from 'node:tls';
import { ProxyError } from '../../src/errors.js';
import {
  authenticationCleartextPassword,
  authenticationMD5Password,
  authenticationOk,
  authenticationSASL,
  backendKeyData,
  errorResponse,
  negotiateProtocolVersion,
  noticeResponse,
  parameterStatus,
  readyForQuery,
} from '../../src/protocol/to-client.js';
import { dialUpstream } from '../../src/upstream/dial.js';
import { loginUpstream, type UpstreamLogin, type UpstreamLoginRequest } from '../../src/upstream/login.js';
import { createTarget, type UpstreamTarget } from '../../src/upstream/target.js';
import { createCa, issueCert } from '../support/certs.js';
import { ByteReader, closeAll, type FakeEndpoint, fakeEndpoint, track } from './socket-pair.js';

const HOST = 'db.dsql.us-east-1.on.aws';
const TOKEN = `${HOST}/?Action=DbConnect&X-Amz-Signature=abc123`;

let endpoint: FakeEndpoint;
let target: UpstreamTarget;

before(async () => {
  const ca = await createCa('dsql-proxy test CA');
  endpoint = await fakeEndpoint(await issueCert(ca, { hostnames: [HOST] }));
  target = createTarget({
    hostname: HOST,
    region: 'us-east-1',
    connectHost: '127.0.0.1',
    connectPort: endpoint.port,
    caPem: ca.certPem,
  });
});

after(closeAll);

/** The script's view of what the proxy sent during login. */
interface Seen {
  startup: Map<string, string>;
  password: string | undefined;
}

type Script = (reader: ByteReader, socket: tls.TLSSocket, seen: Seen) => Promise<void>;

/** Reads the StartupMessage the proxy sends and decodes its parameters, in order. */
async function readStartup(reader: ByteReader): Promise<Map<string, string>> {
  const body = await reader.untyped();
  assert.equal(body.readInt32BE(0), 196608, 'protocol 3.0');
  const fields = body.subarray(4).toString('utf8').split('\0');
  // name, value, ..., '' (terminator), '' (after the final NUL)
  assert.deepEqual(fields.slice(-2), ['', '']);
  const params = new Map<string, string>();
  for (let i = 0; i + 1 < fields.length - 2; i += 2) params.set(fields[i]!, fields[i + 1]!);
  return params;
}

/** Reads a PasswordMessage and returns the password. */
async function readPassword(reader: ByteReader): Promise<string> {
  const msg = await reader.typed();
  assert.equal(msg.type, 'p');
  assert.equal(msg.body.at(-1), 0);
  return msg.body.subarray(0, -1).toString('utf8');
}

/** Startup, cleartext request, password checked against the token: the usual opening. */
async function authenticate(reader: ByteReader, socket: tls.TLSSocket, seen: Seen): Promise<void> {
  seen.startup = await readStartup(reader);
  socket.write(authenticationCleartextPassword());
  seen.password = await readPassword(reader);
  if (seen.password !== TOKEN) throw new Error('wrong token');
}

const request = (over: Partial<UpstreamLoginRequest> = {}): UpstreamLoginRequest => ({
  user: 'admin',
  params: new Map([
    ['application_name', 'psql'],
    ['client_encoding', 'LATIN1'],
  ]),
  token: TOKEN,
  ...over,
});

/** Dials the fake endpoint, runs `script` on its side, logs in. */
async function login(
  script: Script,
  req: UpstreamLoginRequest = request(),
  timeoutMs = 2000,
): Promise<{ loggedIn: Promise<UpstreamLogin>; seen: Seen; scriptDone: Promise<void> }> {
  const seen: Seen = { startup: new Map(), password: undefined };
  let scriptDone: Promise<void> = Promise.resolve();
  endpoint.behaviour = 'tls';
  endpoint.onSecure = (socket) => {
    scriptDone = script(new ByteReader(socket), socket, seen);
    scriptDone.catch(() => socket.destroy());
  };
  const socket = track(await dialUpstream(target, 2000));
  const loggedIn = loginUpstream(socket, req, timeoutMs);
  loggedIn.catch(() => {});
  return {
    loggedIn,
    seen,
    get scriptDone() {
      return scriptDone;
    },
  };
}

async function loginError(
  script: Script,
  req?: UpstreamLoginRequest,
  timeoutMs?: number,
): Promise<ProxyError> {
  const { loggedIn } = await login(script, req, timeoutMs);
  const err = await loggedIn.then(
    () => assert.fail('login should fail'),
    (e: unknown) => e,
  );
  assert.ok(err instanceof ProxyError, `not a ProxyError: ${String(err)}`);
  return err;
}

describe('loginUpstream', () => {
  it('answers the cleartext request with the token and collects parameters, key, notices, status', async () => {
    const params = [parameterStatus('server_version', '16.9'), parameterStatus('TimeZone', 'UTC')];
    const notice = noticeResponse({ severity: 'NOTICE', sqlstate: '00000', message: 'welcome' });
    const { loggedIn, seen } = await login(async (reader, socket, s) => {
      await authenticate(reader, socket, s);
      socket.write(
        Buffer.concat([
          authenticationOk(),
          ...params,
          backendKeyData(4242, Buffer.from([9, 8, 7, 6])),
          notice,
        ]),
      );
      socket.write(readyForQuery('I'));
    });
    const result = await loggedIn;
    assert.equal(seen.password, TOKEN);
    // Client parameters first, in order; user is the role, database always postgres.
    assert.deepEqual(
      [...seen.startup],
      [
        ['application_name', 'psql'],
        ['client_encoding', 'LATIN1'],
        ['user', 'admin'],
        ['database', 'postgres'],
      ],
    );
    assert.deepEqual(
      result.parameters,
      new Map([
        ['server_version', '16.9'],
        ['TimeZone', 'UTC'],
      ]),
    );
    assert.deepEqual(result.parameterMessages, params);
    assert.deepEqual(result.noticeMessages, [notice]);
    assert.deepEqual(result.backendKey, { processId: 4242, secretKey: Buffer.from([9, 8, 7, 6]) });
    assert.equal(result.transactionStatus, 'I');
    assert.equal(result.leftover.length, 0);
  });

  it('reports the ReadyForQuery status and hands back bytes that came after it', async () => {
    const after = parameterStatus('late', 'x');
    const { loggedIn } = await login(async (reader, socket, s) => {
      await authenticate(reader, socket, s);
      socket.write(Buffer.concat([authenticationOk(), readyForQuery('T'), after]));
    });
    const result = await loggedIn;
    assert.equal(result.transactionStatus, 'T');
    assert.deepEqual(result.leftover, after);
    assert.equal(result.backendKey, undefined);
  });

  it('captures a 32-byte (protocol 3.2) BackendKeyData key raw', async () => {
    const key = Buffer.from(Array.from({ length: 32 }, (_, i) => 255 - i));
    const { loggedIn } = await login(async (reader, socket, s) => {
      await authenticate(reader, socket, s);
      socket.write(Buffer.concat([authenticationOk(), backendKeyData(-7, key), readyForQuery('I')]));
    });
    const result = await loggedIn;
    assert.deepEqual(result.backendKey, { processId: -7, secretKey: key });
  });

  it('ignores a NegotiateProtocolVersion', async () => {
    const { loggedIn } = await login(async (reader, socket, s) => {
      await authenticate(reader, socket, s);
      socket.write(
        Buffer.concat([negotiateProtocolVersion(0, ['_pq_.x']), authenticationOk(), readyForQuery('I')]),
      );
    });
    assert.equal((await loggedIn).transactionStatus, 'I');
  });

  it('an ErrorResponse keeps the SQLSTATE and message, with an IAM hint for access denied', async () => {
    const script: Script = async (reader, socket, s) => {
      await authenticate(reader, socket, s);
      socket.write(
        errorResponse({
          severity: 'FATAL',
          sqlstate: '28000',
          message: 'unable to accept connection, access denied',
        }),
      );
    };
    const err = await loginError(script);
    assert.equal(err.code, 'UPSTREAM_REJECTED');
    assert.equal(err.sqlstate, '28000');
    assert.equal(err.message, 'unable to accept connection, access denied');
    assert.match(err.hint ?? '', /dsql:DbConnectAdmin/);
    assert.match(err.hint ?? '', /role "admin"/);

    const other = await loginError(script, request({ user: 'app_reader' }));
    assert.match(other.hint ?? '', /dsql:DbConnect on/);
  });

  it("an ErrorResponse keeps the upstream's own detail and hint", async () => {
    const err = await loginError(async (reader, socket) => {
      await readStartup(reader);
      socket.write(
        errorResponse({
          severity: 'FATAL',
          sqlstate: '53300',
          message: 'too many open connections',
          detail: 'limit 10000',
          hint: 'close some',
        }),
      );
    });
    assert.equal(err.sqlstate, '53300');
    assert.equal(err.detail, 'limit 10000');
    assert.equal(err.hint, 'close some');
  });

  it('an MD5 or SASL request is UPSTREAM_AUTH_UNSUPPORTED, and the token is not sent', async () => {
    for (const ask of [
      authenticationMD5Password(Buffer.from('salt')),
      authenticationSASL(['SCRAM-SHA-256']),
    ]) {
      let received = 0;
      const err = await loginError(async (reader, socket) => {
        await readStartup(reader);
        socket.write(ask);
        await reader.closed().catch(() => {});
        received = reader.pending();
      });
      assert.equal(err.code, 'UPSTREAM_AUTH_UNSUPPORTED');
      assert.match(err.detail ?? '', /authenticationMD5Password|authenticationSASL/);
      assert.equal(received, 0);
    }
  });

  it('an authentication request pg-protocol does not know (GSS, 7) is UPSTREAM_AUTH_UNSUPPORTED too', async () => {
    const err = await loginError(async (reader, socket) => {
      await readStartup(reader);
      socket.write(Buffer.from([0x52, 0, 0, 0, 8, 0, 0, 0, 7]));
    });
    assert.equal(err.code, 'UPSTREAM_AUTH_UNSUPPORTED');
    assert.match(err.detail ?? '', /request 7/);
  });

  it('a second cleartext request after the token is UPSTREAM_AUTH_UNSUPPORTED, not a second send', async () => {
    const err = await loginError(async (reader, socket, s) => {
      await authenticate(reader, socket, s);
      socket.write(Buffer.concat([authenticationOk(), authenticationCleartextPassword()]));
    });
    assert.equal(err.code, 'UPSTREAM_AUTH_UNSUPPORTED');
  });

  it('ReadyForQuery before authentication is UPSTREAM_PROTOCOL', async () => {
    const err = await loginError(async (reader, socket) => {
      await readStartup(reader);
      socket.write(readyForQuery('I'));
    });
    assert.equal(err.code, 'UPSTREAM_PROTOCOL');
  });

  it('an unexpected message type is UPSTREAM_PROTOCOL', async () => {
    const err = await loginError(async (reader, socket, s) => {
      await authenticate(reader, socket, s);
      socket.write(Buffer.concat([authenticationOk(), Buffer.from([0x44, 0, 0, 0, 6, 0, 0])]));
    });
    assert.equal(err.code, 'UPSTREAM_PROTOCOL');
    assert.match(err.detail ?? '', /'D'/);
  });

  it('a close in the middle of login is UPSTREAM_CLOSED (08006)', async () => {
    const err = await loginError(async (reader, socket, s) => {
      await authenticate(reader, socket, s);
      socket.end(Buffer.concat([authenticationOk(), parameterStatus('a', 'b').subarray(0, 4)]));
    });
    assert.equal(err.code, 'UPSTREAM_CLOSED');
    assert.equal(err.sqlstate, '08006');
  });

  it('a login that does not finish in time is UPSTREAM_TIMEOUT', async () => {
    const started = Date.now();
    const err = await loginError(
      async (reader) => {
        await readStartup(reader); // and never answer
      },
      request(),
      150,
    );
    assert.equal(err.code, 'UPSTREAM_TIMEOUT');
    assert.ok(Date.now() - started < 1500);
  });
});
