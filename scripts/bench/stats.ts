/** Small statistics helpers for the benchmark (no dependencies). */

export function sorted(xs: number[]): number[] {
  return [...xs].sort((a, b) => a - b);
}

/** Percentile by the nearest-rank method (p in 0..100) of a non-empty list. */
export function percentile(xs: number[], p: number): number {
  if (xs.length === 0) return Number.NaN;
  const s = sorted(xs);
  const rank = Math.max(1, Math.ceil((p / 100) * s.length));
  return s[Math.min(rank, s.length) - 1] ?? Number.NaN;
}

export function median(xs: number[]): number {
  if (xs.length === 0) return Number.NaN;
  const s = sorted(xs);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] ?? Number.NaN) : ((s[mid - 1] ?? 0) + (s[mid] ?? 0)) / 2;
}

export function min(xs: number[]): number {
  return xs.length ? Math.min(...xs) : Number.NaN;
}

export function max(xs: number[]): number {
  return xs.length ? Math.max(...xs) : Number.NaN;
}

export function mean(xs: number[]): number {
  return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : Number.NaN;
}

/** A number with 3 significant digits (no exponent for the ranges a benchmark produces). */
export function fmt(x: number): string {
  if (!Number.isFinite(x)) return '–';
  const a = Math.abs(x);
  if (a >= 1000) return Math.round(x).toLocaleString('en-US');
  if (a >= 100) return x.toFixed(0);
  if (a >= 10) return x.toFixed(1);
  if (a >= 1) return x.toFixed(2);
  return x.toFixed(3);
}

/** "median (min–max)" of the repetitions. */
export function spread(xs: number[]): string {
  if (xs.length === 0) return '–';
  if (xs.length === 1) return fmt(xs[0] ?? Number.NaN);
  return `${fmt(median(xs))} (${fmt(min(xs))}–${fmt(max(xs))})`;
}
