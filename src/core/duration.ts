const UNIT_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 } as const;

const SYNTAX = 'use whole seconds or a whole number with ms, s, m or h (e.g. 90, 500ms, 90s, 5m, 1h)';

/**
 * Parses a duration into milliseconds: plain seconds (`90`) or a number with a unit (`500ms`, `90s`,
 * `50m`, `1h`). Only whole numbers: `1.5s` is refused (write `1500ms`), so a value never rounds
 * silently. Throws RangeError for negative, malformed or overflowing input; the message does not name
 * an option, the caller adds that.
 */
export function parseDuration(s: string): number {
  const text = s.trim();
  if (text.startsWith('-')) throw new RangeError(`duration "${s}" is negative: ${SYNTAX}`);
  const m = /^(\d+)(ms|s|m|h)?$/.exec(text);
  if (!m) {
    if (/^\d*\.\d+(ms|s|m|h)?$/.test(text)) {
      throw new RangeError(`duration "${s}" is not a whole number: use a smaller unit (e.g. 1500ms)`);
    }
    throw new RangeError(`invalid duration "${s}": ${SYNTAX}`);
  }
  const digits = m[1] as string;
  const unit = (m[2] ?? 's') as keyof typeof UNIT_MS;
  const ms = Number(digits) * UNIT_MS[unit];
  if (!Number.isSafeInteger(ms)) throw new RangeError(`duration "${s}" is too large`);
  return ms;
}

/** Formats milliseconds the way a person would write them in a config file (`30s`, `500ms`, `2m`). */
export function formatDuration(ms: number): string {
  if (ms % 3_600_000 === 0 && ms > 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0 && ms > 0) return `${ms / 60_000}m`;
  if (ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}
