/**
 * A short run of the connection fuzzer (scripts/lib/fuzz.ts; `npm run fuzz -- --count 100000` for a
 * long one): a few thousand random and mutated streams against the real proxy process, which must not
 * crash or log session_crashed, must never let a stream without the password in (no AuthenticationOk,
 * no ReadyForQuery, no upstream login), must keep serving a normal SCRAM client, and must give its
 * memory back.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatReport, runFuzz } from '../../scripts/lib/fuzz.js';

const COUNT = Number(process.env.FUZZ_COUNT ?? 3000);
/** Fixed so a failure in CI can be replayed: `node --import tsx scripts/fuzz.ts --count 3000 --seed 7007`. */
const SEED = Number(process.env.FUZZ_SEED ?? 7007);

test(`the proxy survives ${COUNT} hostile connection streams`, { timeout: 180_000 }, async () => {
  // The RSS baseline is taken after the warm-up; native memory (OpenSSL buffers, malloc arenas) grows
  // to a plateau over the first few thousand streams and stays there. Measured with seed 7007: RSS
  // 108 MB after 2,000 warm-up streams, then 119, 119 and 123 MB after 5,000, 10,000 and 15,000 more.
  // A 1,000-stream warm-up left the baseline below the plateau (89-92 MB, then 119-120 MB after the
  // run: +28 to +31 MB against the 30 MB allowance, which failed CI once).
  const report = await runFuzz({ count: COUNT, seed: SEED, warmup: 2000, settleMs: 5000 });
  const summary = formatReport(report);
  console.log(summary);
  assert.deepEqual(report.failures, [], summary);
  assert.equal(report.streams, COUNT);
  assert.ok(report.probes.ok >= 1, 'the normal client was checked at least once');
  assert.equal(report.logins.hostileAuthenticated, 0, 'a stream without the password got in');
  assert.ok(report.logins.proxyAuthenticated <= report.logins.allowed, summary);
  assert.ok(report.logins.upstreamLogins <= report.logins.proxyAuthenticated, summary);
  // The check is not vacuous: the probes and intact streams did get in, and upstream.
  assert.ok(report.logins.proxyAuthenticated >= report.probes.ok, summary);
  assert.ok(report.logins.upstreamLogins >= 1, summary);
});
