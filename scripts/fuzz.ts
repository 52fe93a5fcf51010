/**
 * Throws random and mutated connection byte streams at the real proxy process and checks that it
 * survives them: no crash or session_crashed log, a normal client keeps working, memory returns near
 * its baseline. See scripts/lib/fuzz.ts for what is sent and checked.
 *
 *   npm run build && node --import tsx scripts/fuzz.ts --count 100000 [--seed N] [--concurrency 50]
 *
 * Exits 1 when any check failed, 2 on bad arguments.
 */
import { parseArgs } from 'node:util';
import { formatReport, runFuzz } from './lib/fuzz.js';

function intArg(value: string | undefined, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 0) {
    console.error(`--${name} must be a whole number, got ${value}`);
    process.exit(2);
  }
  return n;
}

const { values } = parseArgs({
  options: {
    count: { type: 'string' },
    seed: { type: 'string' },
    concurrency: { type: 'string' },
    'settle-ms': { type: 'string' },
  },
});

const count = intArg(values.count, 'count', 10_000);
const seed = intArg(values.seed, 'seed', Math.floor(Math.random() * 2 ** 31));
const concurrency = intArg(values.concurrency, 'concurrency', 50);
const settleMs = intArg(values['settle-ms'], 'settle-ms', 10_000);

console.log(
  `fuzzing with ${count} streams, seed ${seed} (repeat with --seed ${seed}), ${concurrency} in flight`,
);
const report = await runFuzz({
  count,
  seed,
  concurrency,
  settleMs,
  log: (line) => console.log(line),
});
console.log(formatReport(report));
process.exit(report.failures.length === 0 ? 0 : 1);
