/**
 * `npm run soak`: 500 concurrent clients for 60 s through the real proxy (scripts/lib/soak.ts);
 * zero errors, the proxy's file descriptors back to baseline and its live heap (after a full GC) back
 * to baseline after each round. Exit 1 on failure. SOAK_CLIENTS, SOAK_SECONDS and SOAK_ROUNDS
 * (default 2) override the size.
 */
import { formatSoak, runSoak, soakFailures } from './lib/soak.js';

const clients = Number(process.env.SOAK_CLIENTS ?? 500);
const seconds = Number(process.env.SOAK_SECONDS ?? 60);
const rounds = Number(process.env.SOAK_ROUNDS ?? 2);
const report = await runSoak({ clients, durationMs: seconds * 1000, rounds, log: (l) => console.log(l) });
console.log(formatSoak(report));
const failures = soakFailures(report);
for (const f of failures) console.error(`FAIL: ${f}`);
console.log(failures.length === 0 ? 'soak: PASS' : 'soak: FAIL');
process.exit(failures.length === 0 ? 0 : 1);
