/**
 * The generated client-facing certificate is renewed ahead of its expiry without a restart. A fake
 * clock starts the proxy 25 days in the past (its 30-day leaf then ends in 5 days) and is run forward
 * to today: by then the leaf must have been replaced, and a verify-full handshake against the CA file
 * must see the new one.
 */
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import tls from 'node:tls';
import { type ClientTls, createClientTls } from '../../src/handshake/client-tls.js';
import { createLogger } from '../../src/log.js';
import { ManualClock } from './manual-clock.js';

const DAY = 24 * 60 * 60_000;
const dir = mkdtempSync(join(tmpdir(), 'dsql-proxy-client-tls-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/**
 * A renewal generates a key and signs a certificate (webcrypto, async): after a timer fires, wait
 * (up to 2 s) until the work it started has set its next timer.
 */
function renewalSettled(clock: ManualClock): () => Promise<void> {
  return async () => {
    for (let i = 0; i < 200 && clock.pending === 0; i++) await sleep(10);
  };
}

/** The certificate a client sees in a verify-full handshake (real time) against the CA file. */
async function served(ctx: ClientTls, caPem: string): Promise<X509Certificate> {
  // Like the proxy's handshake, the context is read when a client arrives (the client sends SNI).
  const server = tls.createServer({ SNICallback: (_name, cb) => cb(null, ctx.secureContext) }, (s) =>
    s.end(),
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  try {
    return await new Promise<X509Certificate>((resolve, reject) => {
      const socket = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', ca: caPem }, () => {
        resolve(new X509Certificate(socket.getPeerCertificate().raw));
        socket.end();
      });
      socket.on('error', reject);
    });
  } finally {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

describe('generated client TLS certificate', () => {
  it('is renewed before it expires, without a restart, and verifies against the same CA file', async () => {
    const realNow = Date.now();
    const clock = new ManualClock(realNow - 25 * DAY);
    const caOut = join(dir, 'ca.pem');
    const lines: Array<Record<string, unknown>> = [];
    const logger = createLogger({
      level: 'info',
      destination: { write: (l: string) => void lines.push(JSON.parse(l) as Record<string, unknown>) },
    });
    const ctx = await createClientTls({ enabled: true, required: false, caOut }, { clock, logger });
    try {
      const caPem = readFileSync(caOut, 'utf8');
      const first = await served(ctx, caPem);
      // Issued by the proxy's clock: 30 days from "25 days ago".
      assert.ok(Math.abs(Date.parse(first.validTo) - (realNow + 5 * DAY)) < 2 * DAY, first.validTo);
      assert.equal(clock.pending, 1, 'a renewal is scheduled');

      await clock.advanceTo(realNow, renewalSettled(clock));
      const renewed = lines.find((l) => l.event === 'client_tls_renewed');
      assert.ok(renewed, 'renewed on its own');
      assert.equal(renewed.new_ca, false);
      const second = await served(ctx, caPem);
      assert.notEqual(second.fingerprint256, first.fingerprint256, 'a new certificate is served');
      assert.ok(Date.parse(second.validTo) - realNow > 20 * DAY, `valid long enough: ${second.validTo}`);
      assert.equal(readFileSync(caOut, 'utf8'), caPem, 'same CA: clients need no new file');
      assert.equal(clock.pending, 1, 'the next renewal is scheduled');
    } finally {
      ctx.close?.();
    }
    assert.equal(clock.pending, 0, 'close() stops the renewal timer');
  });

  it('a CA near its own end (a year) is replaced too, and written to --client-ca-out again', async () => {
    const realNow = Date.now();
    // The CA is made with the real time (valid a year from now); the proxy's clock is 330 days on.
    const clock = new ManualClock(realNow + 330 * DAY);
    const caOut = join(dir, 'ca-year.pem');
    const lines: Array<Record<string, unknown>> = [];
    const logger = createLogger({
      level: 'info',
      destination: { write: (l: string) => void lines.push(JSON.parse(l) as Record<string, unknown>) },
    });
    const ctx = await createClientTls({ enabled: true, required: false, caOut }, { clock, logger });
    try {
      const before = readFileSync(caOut, 'utf8');
      await clock.advanceTo(realNow + 351 * DAY, renewalSettled(clock));
      const renewed = lines.find((l) => l.event === 'client_tls_renewed');
      assert.equal(renewed?.new_ca, true);
      assert.equal(renewed?.ca_written_to, caOut);
      assert.notEqual(readFileSync(caOut, 'utf8'), before, 'the new CA is in the file');
    } finally {
      ctx.close?.();
    }
  });

  it('a given certificate (--client-cert) is served as it is, with no timer', async () => {
    const clock = new ManualClock(Date.now());
    const generated = await createClientTls({ enabled: true, required: false }, { clock });
    generated.close?.();
    const other = new ManualClock(Date.now());
    const { createCa, issueCert } = await import('../../src/core/certs.js');
    const ca = await createCa('test CA');
    const leaf = await issueCert(ca, { hostnames: ['localhost'] });
    const given = await createClientTls(
      { enabled: true, required: false, certPem: leaf.certPem, keyPem: leaf.keyPem },
      { clock: other },
    );
    assert.equal(other.pending, 0);
    const cert = await served(given, ca.certPem);
    assert.equal(cert.fingerprint256, new X509Certificate(leaf.certPem).fingerprint256);
  });
});
