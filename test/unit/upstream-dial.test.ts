import assert from 'node:assert/strict';
import dns from 'node:dns';
import { after, before, describe, it } from 'node:test';
import type tls from 'node:tls';
import type { SslNegotiation } from '../../src/dsql/limits.js';
import { ProxyError } from '../../src/errors.js';
import { dialUpstream } from '../../src/upstream/dial.js';
import { DnsCache, type Resolve } from '../../src/upstream/dns-cache.js';
import { createTarget, type UpstreamTarget } from '../../src/upstream/target.js';
import { createCa, issueCert, type TestCa } from '../support/certs.js';
import {
  closeAll,
  closedPort,
  type FakeEndpoint,
  fakeEndpoint,
  listen,
  portOf,
  track,
  waitFor,
} from './socket-pair.js';

const HOST = 'db.dsql.us-east-1.on.aws';
const SSL_REQUEST = Buffer.from([0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f]);

let ca: TestCa;
let endpoint: FakeEndpoint;
let wrongHost: FakeEndpoint;
let rogue: FakeEndpoint;

before(async () => {
  ca = await createCa('dsql-proxy test CA');
  const rogueCa = await createCa('someone else');
  endpoint = await fakeEndpoint(await issueCert(ca, { hostnames: [HOST] }));
  wrongHost = await fakeEndpoint(await issueCert(ca, { hostnames: ['db.dsql.eu-west-1.on.aws'] }));
  rogue = await fakeEndpoint(await issueCert(rogueCa, { hostnames: [HOST] }));
});

after(closeAll);

function targetFor(
  port: number,
  opts: { trustTestCa?: boolean; negotiation?: SslNegotiation } = {},
): UpstreamTarget {
  return createTarget({
    hostname: HOST,
    region: 'us-east-1',
    connectHost: '127.0.0.1',
    connectPort: port,
    caPem: opts.trustTestCa === false ? undefined : ca.certPem,
    sslNegotiation: opts.negotiation,
  });
}

/** A target that starts TLS with an SSLRequest. */
const negotiated = (port: number): UpstreamTarget => targetFor(port, { negotiation: 'postgres' });

async function dial(target: UpstreamTarget, timeoutMs = 2000): Promise<tls.TLSSocket> {
  return track(await dialUpstream(target, timeoutMs));
}

/** The ProxyError a dial fails with. */
async function dialError(target: UpstreamTarget, timeoutMs = 2000): Promise<ProxyError> {
  const err = await dialUpstream(target, timeoutMs).then(
    (socket) => {
      socket.destroy();
      return assert.fail('dial should fail');
    },
    (e: unknown) => e,
  );
  assert.ok(err instanceof ProxyError, `not a ProxyError: ${String(err)}`);
  return err;
}

describe('dialUpstream with an SSLRequest (postgres)', () => {
  it('sends an SSLRequest, upgrades to TLS with SNI = the endpoint hostname, verified for it', async () => {
    endpoint.behaviour = 'tls';
    const before = endpoint.servernames.length;
    const target = negotiated(endpoint.port);
    assert.equal(target.hostname, HOST);
    assert.equal(target.connectHost, '127.0.0.1');
    const socket = await dial(target);
    assert.equal(socket.encrypted, true);
    assert.equal(socket.authorized, true);
    assert.equal(socket.remoteAddress, '127.0.0.1');
    assert.equal(socket.getPeerCertificate().subjectaltname, `DNS:${HOST}`);
    await waitFor(() => endpoint.servernames.length > before);
    assert.equal(endpoint.servernames.at(-1), HOST);
    assert.deepEqual(endpoint.sslRequests.at(-1), SSL_REQUEST);
  });

  it("an 'N' answer is UPSTREAM_TLS (08001)", async () => {
    endpoint.behaviour = 'refuse';
    const err = await dialError(negotiated(endpoint.port));
    assert.equal(err.code, 'UPSTREAM_TLS');
    assert.equal(err.sqlstate, '08001');
    assert.match(err.message, /does not accept TLS/);
    assert.match(err.message, /'N'/);
  });

  it("CVE-2021-23222: 'S' with extra bytes in the same write is UPSTREAM_PROTOCOL", async () => {
    endpoint.behaviour = 'tls-with-extra';
    const err = await dialError(negotiated(endpoint.port));
    assert.equal(err.code, 'UPSTREAM_PROTOCOL');
    assert.equal(err.sqlstate, '08P01');
  });

  it("a server that answers 'S' and stalls the TLS handshake is UPSTREAM_TIMEOUT too", async () => {
    endpoint.behaviour = 'stall-after-s';
    const started = Date.now();
    const err = await dialError(negotiated(endpoint.port), 150);
    assert.equal(err.code, 'UPSTREAM_TIMEOUT');
    assert.ok(Date.now() - started < 1500);
  });

  it('a server that closes before answering is UPSTREAM_UNREACHABLE', async () => {
    endpoint.behaviour = 'close';
    const err = await dialError(negotiated(endpoint.port));
    assert.equal(err.code, 'UPSTREAM_UNREACHABLE');
    assert.match(err.message, /closed the connection before TLS/);
  });
});

describe('dialUpstream, either way', () => {
  for (const negotiation of ['direct', 'postgres'] as const) {
    it(`${negotiation}: the TLS connection carries data both ways`, async () => {
      endpoint.behaviour = 'tls';
      endpoint.onSecure = (server) => server.on('data', (d: Buffer) => server.write(Buffer.concat([d, d])));
      try {
        const socket = await dial(targetFor(endpoint.port, { negotiation }));
        const echoed = new Promise<Buffer>((resolve) => socket.once('data', resolve));
        socket.write('ping');
        assert.equal((await echoed).toString(), 'pingping');
      } finally {
        endpoint.onSecure = () => {};
      }
    });

    it(`${negotiation}: a server that never answers is UPSTREAM_TIMEOUT within the timeout`, async () => {
      endpoint.behaviour = 'silent';
      const started = Date.now();
      const err = await dialError(targetFor(endpoint.port, { negotiation }), 150);
      const elapsed = Date.now() - started;
      assert.equal(err.code, 'UPSTREAM_TIMEOUT');
      assert.equal(err.sqlstate, '08001');
      assert.match(err.message, /150 ms/);
      assert.ok(elapsed >= 140 && elapsed < 1500, `elapsed ${elapsed} ms`);
    });

    it(`${negotiation}: a refused port is UPSTREAM_UNREACHABLE (08001) naming ECONNREFUSED and the route`, async () => {
      const err = await dialError(targetFor(await closedPort(), { negotiation }));
      assert.equal(err.code, 'UPSTREAM_UNREACHABLE');
      assert.equal(err.sqlstate, '08001');
      assert.match(err.message, /ECONNREFUSED/);
      assert.match(err.message, new RegExp(`${HOST.replaceAll('.', '\\.')} via 127\\.0\\.0\\.1:`));
      assert.equal((err.cause as NodeJS.ErrnoException).code, 'ECONNREFUSED');
    });

    it(`${negotiation}: a certificate for another host is UPSTREAM_TLS with the altname mismatch`, async () => {
      wrongHost.behaviour = 'tls';
      const err = await dialError(targetFor(wrongHost.port, { negotiation }));
      assert.equal(err.code, 'UPSTREAM_TLS');
      assert.equal(err.sqlstate, '08001');
      assert.match(
        err.message,
        /not valid for db\.dsql\.us-east-1\.on\.aws \(certificate names: DNS:db\.dsql\.eu-west-1\.on\.aws\)/,
      );
      assert.match(err.hint ?? '', /not accepted for db\.dsql\.us-east-1\.on\.aws/);
      assert.equal((err.cause as NodeJS.ErrnoException).code, 'ERR_TLS_CERT_ALTNAME_INVALID');
    });

    it(`${negotiation}: a certificate from a CA that is not trusted is UPSTREAM_TLS`, async () => {
      rogue.behaviour = 'tls';
      const err = await dialError(targetFor(rogue.port, { negotiation }));
      assert.equal(err.code, 'UPSTREAM_TLS');
      assert.match(err.hint ?? '', /--ca-file/);
      assert.match(
        (err.cause as NodeJS.ErrnoException).code ?? '',
        /UNABLE_TO_VERIFY_LEAF_SIGNATURE|SELF_SIGNED/,
      );
    });

    it(`${negotiation}: without caPem the test CA is not trusted (only the default roots)`, async () => {
      endpoint.behaviour = 'tls';
      const err = await dialError(targetFor(endpoint.port, { trustTestCa: false, negotiation }));
      assert.equal(err.code, 'UPSTREAM_TLS');
      assert.equal((err.cause as NodeJS.ErrnoException).code, 'UNABLE_TO_VERIFY_LEAF_SIGNATURE');
    });

    it(`${negotiation}: reuses the TLS session on the next dial to the same target`, async () => {
      endpoint.behaviour = 'tls';
      const target = targetFor(endpoint.port, { negotiation });
      const first = await dial(target);
      assert.equal(first.isSessionReused(), false);
      // TLS 1.3 tickets arrive after the handshake; the target's cache keeps the latest one.
      await waitFor(() => target.tlsSessions.get() !== undefined);
      const second = await dial(target);
      assert.equal(second.authorized, true);
      assert.equal(second.isSessionReused(), true);
      // A resumed session skips the name check, so the handshake's getPeerCertificate shadow must
      // not outlive it: Node's own method shows through again.
      assert.equal(Object.hasOwn(second, 'getPeerCertificate'), false);
      assert.equal(second.getPeerCertificate, Object.getPrototypeOf(second).getPeerCertificate);
    });
  }
});

describe('dialUpstream with direct TLS (the default)', () => {
  it('starts TLS at once, with ALPN postgresql and SNI = the endpoint hostname, and sends no SSLRequest', async () => {
    endpoint.behaviour = 'tls';
    const requests = endpoint.sslRequests.length;
    const target = targetFor(endpoint.port);
    assert.equal(target.sslNegotiation, 'direct');
    const socket = await dial(target);
    assert.equal(socket.authorized, true);
    assert.equal(socket.alpnProtocol, 'postgresql');
    assert.equal(socket.getPeerCertificate().subjectaltname, `DNS:${HOST}`);
    await waitFor(() => endpoint.servernames.at(-1) === HOST);
    assert.equal(endpoint.openings.at(-1), 'direct');
    assert.deepEqual(endpoint.alpnOffers.at(-1), ['postgresql']);
    assert.equal(endpoint.sslRequests.length, requests, 'no SSLRequest');
  });

  it('a server that selects no ALPN protocol is UPSTREAM_TLS, with the way back to an SSLRequest', async () => {
    endpoint.behaviour = 'tls-no-alpn';
    const err = await dialError(targetFor(endpoint.port));
    assert.equal(err.code, 'UPSTREAM_TLS');
    assert.equal(err.sqlstate, '08001');
    assert.match(err.message, /did not select the ALPN protocol "postgresql"/);
    assert.match(err.hint ?? '', /--upstream-ssl-negotiation postgres/);
  });

  it('a server that hangs up on the ClientHello (PostgreSQL before 17) is UPSTREAM_UNREACHABLE, with the way back', async () => {
    endpoint.behaviour = 'close';
    const err = await dialError(targetFor(endpoint.port));
    assert.equal(err.code, 'UPSTREAM_UNREACHABLE');
    assert.equal(err.sqlstate, '08001');
    assert.match(
      err.message,
      /^could not connect to db\.dsql\.us-east-1\.on\.aws via 127\.0\.0\.1:\d+: ECONNRESET \(closed without answering the TLS handshake\)$/,
    );
    assert.match(err.hint ?? '', /reachable/);
    assert.match(err.hint ?? '', /--upstream-ssl-negotiation postgres/);
  });

  it("a reset after part of the server's TLS answer is UPSTREAM_TLS", async () => {
    endpoint.behaviour = 'tls';
    endpoint.onSecure = () => {};
    // A server that answers the ClientHello with a few bytes of a TLS record, then resets.
    const half = await listen((raw) => {
      raw.on('error', () => {});
      raw.once('data', () => {
        raw.write(Buffer.from([0x16, 0x03, 0x03, 0x00, 0x40, 0x02, 0x00]));
        setTimeout(() => raw.resetAndDestroy(), 20);
      });
    });
    const err = await dialError(targetFor(portOf(half)));
    assert.equal(err.code, 'UPSTREAM_TLS');
    assert.match(err.message, /^TLS handshake with .* failed: /);
  });

  it('a refused port is UPSTREAM_UNREACHABLE without the direct TLS hint', async () => {
    const err = await dialError(targetFor(await closedPort()));
    assert.equal(err.code, 'UPSTREAM_UNREACHABLE');
    assert.match(err.message, /ECONNREFUSED$/);
    assert.doesNotMatch(err.hint ?? '', /upstream-ssl-negotiation/);
  });

  it('a certificate problem keeps its own hint, not the direct TLS one', async () => {
    rogue.behaviour = 'tls';
    const err = await dialError(targetFor(rogue.port));
    assert.match(err.hint ?? '', /--ca-file/);
    assert.doesNotMatch(err.hint ?? '', /upstream-ssl-negotiation/);
  });
});

describe('dialUpstream with a DNS cache (--dns-cache-ttl)', () => {
  /** A target dialled by host name, whose lookups go through a cache that counts them. */
  function byName(
    port: number,
    host = 'localhost',
    resolve: Resolve = (h, family, hints) => dns.promises.lookup(h, { family, hints, all: true }),
  ): { target: UpstreamTarget; lookups: string[] } {
    const lookups: string[] = [];
    const cache = new DnsCache({
      ttlMs: 15_000,
      resolve: (hostname, family, hints) => {
        lookups.push(hostname);
        return resolve(hostname, family, hints);
      },
    });
    const target = createTarget({
      hostname: HOST,
      region: 'us-east-1',
      connectHost: host,
      connectPort: port,
      caPem: ca.certPem,
      dns: cache,
    });
    return { target, lookups };
  }

  /** A resolver that fails with `code`, as getaddrinfo does (or, without `syscall`, a custom one). */
  const failing =
    (code: string, syscall?: string): Resolve =>
    async (host) => {
      throw Object.assign(new Error(`getaddrinfo ${code} ${host}`), {
        code,
        ...(syscall ? { syscall } : {}),
      });
    };

  it('looks the dial host up once for several connections; SNI and the check stay the endpoint', async () => {
    endpoint.behaviour = 'tls';
    const { target, lookups } = byName(endpoint.port);
    for (let i = 0; i < 3; i++) {
      const socket = await dial(target);
      assert.equal(socket.authorized, true);
      assert.equal(endpoint.servernames.at(-1), HOST);
      socket.destroy();
    }
    assert.deepEqual(lookups, ['localhost']);
  });

  it('a name that does not resolve is UPSTREAM_UNREACHABLE (08001) with the --endpoint hint', async () => {
    const err = await dialError(byName(endpoint.port, 'nowhere.example', failing('ENOTFOUND')).target);
    assert.equal(err.code, 'UPSTREAM_UNREACHABLE');
    assert.equal(err.sqlstate, '08001');
    assert.match(err.message, /could not connect to .* via nowhere\.example:\d+: ENOTFOUND$/);
    assert.match(err.hint ?? '', /does not resolve: check --endpoint/);
  });

  it('a resolver failure (EAI_AGAIN) gets the DNS hint, not the reachability one', async () => {
    const { target } = byName(endpoint.port, 'slow-dns.example', failing('EAI_AGAIN', 'getaddrinfo'));
    const err = await dialError(target);
    assert.equal(err.sqlstate, '08001');
    assert.match(err.message, /: EAI_AGAIN$/);
    assert.match(err.hint ?? '', /DNS settings of this host or pod/);
  });

  it('a connection that cannot reach the address drops it: the next dial looks it up again', async () => {
    endpoint.behaviour = 'tls';
    const refused = byName(await closedPort());
    assert.equal((await dialError(refused.target)).code, 'UPSTREAM_UNREACHABLE');
    assert.equal((await dialError(refused.target)).code, 'UPSTREAM_UNREACHABLE');
    assert.deepEqual(refused.lookups, ['localhost', 'localhost']);
  });
});
