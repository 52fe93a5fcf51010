/**
 * `npm run integrity`: a 1 GB COPY round trip and two 100 MB values through the real proxy, with
 * pipelined extended-protocol batches in flight on another connection (scripts/lib/integrity.ts).
 * Prints throughput and checksums; exit 1 when anything differs. INTEGRITY_COPY_MB,
 * INTEGRITY_VALUE_MB and INTEGRITY_VALUES override the sizes.
 */
import { formatIntegrity, integrityFailures, runIntegrity } from './lib/integrity.js';

const MB = 1024 * 1024;
const report = await runIntegrity({
  copyBytes: Number(process.env.INTEGRITY_COPY_MB ?? 1024) * MB,
  valueBytes: Number(process.env.INTEGRITY_VALUE_MB ?? 100) * MB,
  values: Number(process.env.INTEGRITY_VALUES ?? 2),
  log: (l) => console.log(l),
});
console.log(formatIntegrity(report));
const failures = integrityFailures(report);
for (const f of failures) console.error(`FAIL: ${f}`);
console.log(failures.length === 0 ? 'integrity: PASS' : 'integrity: FAIL');
process.exit(failures.length === 0 ? 0 : 1);
