/** Properties of parseDuration and formatDuration (src/core/duration.ts). */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { formatDuration, parseDuration } from '../../src/core/duration.js';
import { onlyThrows, runs } from './property-helpers.js';

describe('parseDuration properties', () => {
  it('parseDuration: a safe non-negative integer or only RangeError; formatDuration round-trips', () => {
    const near = fc
      .tuple(
        fc.constantFrom('', ' ', '-', '+', '0x', '.'),
        fc.oneof(fc.nat().map(String), fc.stringMatching(/^\d{1,30}$/)),
        fc.constantFrom('', 'ms', 's', 'm', 'h', 'd', 'S', ' s', '.5', 'e3'),
      )
      .map((parts) => parts.join(''));
    fc.assert(
      fc.property(fc.oneof(fc.string({ maxLength: 20 }), near), (text) => {
        const ms = onlyThrows(() => parseDuration(text), RangeError);
        if (ms === undefined) return;
        assert.ok(Number.isSafeInteger(ms) && ms >= 0, `${text} -> ${ms}`);
        assert.equal(parseDuration(formatDuration(ms)), ms);
      }),
      runs(2000),
    );
    fc.assert(
      fc.property(fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }), (ms) => {
        assert.equal(parseDuration(formatDuration(ms)), ms);
      }),
      runs(500),
    );
  });
});
