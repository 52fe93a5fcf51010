import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import tls from 'node:tls';
import { ProxyError } from '../../src/errors.js';
import { dialUpstream } from '../../src/upstream/dial.js';
import { checkLeafHost, hostCheckOptions } from '../../src/upstream/host-check.js';
import { createTarget, type UpstreamTarget } from '../../src/upstream/target.js';
import { createCa, issueCert, type TestCa } from '../support/certs.js';
import { closeAll, type FakeEndpoint, fakeEndpoint, track } from './socket-pair.js';

const HOST = 'db.dsql.us-east-1.on.aws';

let ca: TestCa;
/** Certificates named by a pattern, one endpoint each. */
const endpoints = new Map<string, FakeEndpoint>();
const PATTERNS = [
  '*.dsql.us-east-1.on.aws',
  '*.us-east-1.on.aws',
  'd*.dsql.us-east-1.on.aws',
  '*.eu-west-1.on.aws',
  'dsql.us-east-1.on.aws',
];

before(async () => {
  ca = await createCa('host check CA');
  for (const name of PATTERNS)
    endpoints.set(name, await fakeEndpoint(await issueCert(ca, { hostnames: [name] })));
});

after(closeAll);

function targetFor(pattern: string): UpstreamTarget {
  const endpoint = endpoints.get(pattern);
  assert.ok(endpoint);
  return createTarget({
    hostname: HOST,
    region: 'us-east-1',
    connectHost: '127.0.0.1',
    connectPort: endpoint.port,
    caPem: ca.certPem,
  });
}

async function dialOutcome(pattern: string): Promise<tls.TLSSocket | ProxyError> {
  return dialUpstream(targetFor(pattern), 2000).then(
    (socket) => track(socket),
    (err: unknown) => {
      assert.ok(err instanceof ProxyError, `not a ProxyError: ${String(err)}`);
      return err;
    },
  );
}

describe('upstream host check (OpenSSL on the leaf, libpq verify-full rules)', () => {
  it('accepts a wildcard that stands for the whole first label', async () => {
    const socket = await dialOutcome('*.dsql.us-east-1.on.aws');
    assert.ok(!(socket instanceof ProxyError), String(socket));
    assert.equal(socket.authorized, true);
    // The handshake-time shadow is gone: callers get Node's full certificate again.
    // Node 20's getPeerX509Certificate() takes the leaf out of a client socket's chain: both accessors
    // answer from the checked leaf instead, as often as they are called.
    for (let i = 0; i < 2; i++) {
      assert.equal(socket.getPeerCertificate().subjectaltname, 'DNS:*.dsql.us-east-1.on.aws');
      assert.equal(socket.getPeerX509Certificate()?.subjectAltName, 'DNS:*.dsql.us-east-1.on.aws');
    }
    assert.match(socket.getPeerCertificate().valid_to, /GMT$/);
  });

  for (const [pattern, why] of [
    ['*.us-east-1.on.aws', 'a wildcard never spans two labels'],
    ['d*.dsql.us-east-1.on.aws', 'no partial-label wildcards'],
    ['*.eu-west-1.on.aws', 'another region'],
    ['dsql.us-east-1.on.aws', 'the parent domain is not the host'],
  ] as const) {
    it(`refuses a certificate for ${pattern} (${why}) as UPSTREAM_TLS naming the certificate's names`, async () => {
      const err = await dialOutcome(pattern);
      assert.ok(err instanceof ProxyError, 'the dial should fail');
      assert.equal(err.code, 'UPSTREAM_TLS');
      assert.equal(err.sqlstate, '08001');
      assert.match(err.message, new RegExp(`not valid for ${HOST.replaceAll('.', '\\.')}`));
      assert.ok(err.message.includes(`DNS:${pattern}`), err.message);
      assert.match(err.hint ?? '', /not accepted for/);
      assert.equal((err.cause as NodeJS.ErrnoException).code, 'ERR_TLS_CERT_ALTNAME_INVALID');
    });
  }

  it("is the check that runs: Node's default would have accepted the partial wildcard", () => {
    // Guards the test above: if the dial still used tls.checkServerIdentity, d*.… would pass.
    const nodeVerdict = tls.checkServerIdentity(HOST, {
      subject: { CN: 'd*.dsql.us-east-1.on.aws' },
      subjectaltname: 'DNS:d*.dsql.us-east-1.on.aws',
    } as tls.PeerCertificate);
    assert.equal(nodeVerdict, undefined);
  });

  it('without a certificate the check fails with the altname code', () => {
    const err = checkLeafHost(undefined, HOST) as NodeJS.ErrnoException;
    assert.ok(err instanceof Error);
    assert.equal(err.code, 'ERR_TLS_CERT_ALTNAME_INVALID');
    assert.match(err.message, /no certificate/);
  });

  it("leaves IP-address hostnames to Node's check, which matches IP subjectAltNames", () => {
    assert.deepEqual(
      hostCheckOptions('127.0.0.1', () => undefined),
      {},
    );
    assert.deepEqual(
      hostCheckOptions('::1', () => undefined),
      {},
    );
    assert.equal(typeof hostCheckOptions(HOST, () => undefined).checkServerIdentity, 'function');
  });
});
