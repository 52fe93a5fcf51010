import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatDuration, parseDuration } from '../../src/core/duration.js';

describe('parseDuration', () => {
  const good: Array<[string, number]> = [
    ['90', 90_000],
    ['0', 0],
    ['90s', 90_000],
    ['500ms', 500],
    ['50m', 3_000_000],
    ['1h', 3_600_000],
    ['  10s ', 10_000],
    ['0ms', 0],
    ['604800', 604_800_000],
  ];
  for (const [input, ms] of good) {
    it(`reads ${JSON.stringify(input)} as ${ms} ms`, () => {
      assert.equal(parseDuration(input), ms);
    });
  }

  const bad: Array<[string, RegExp]> = [
    ['-5s', /negative/],
    ['-1', /negative/],
    ['', /invalid duration/],
    ['abc', /invalid duration/],
    ['10d', /invalid duration/],
    ['10 s', /invalid duration/],
    ['10S', /invalid duration/],
    ['1h30m', /invalid duration/],
    ['0x10', /invalid duration/],
    ['1e3', /invalid duration/],
    ['1.5s', /not a whole number.*1500ms/],
    ['99999999999999999999', /too large/],
    ['9007199254740991h', /too large/],
  ];
  for (const [input, re] of bad) {
    it(`rejects ${JSON.stringify(input)}`, () => {
      assert.throws(
        () => parseDuration(input),
        (err: unknown) => err instanceof RangeError && re.test(err.message),
      );
    });
  }

  it('formats back to the shortest unit', () => {
    assert.equal(formatDuration(30_000), '30s');
    assert.equal(formatDuration(500), '500ms');
    assert.equal(formatDuration(120_000), '2m');
    assert.equal(formatDuration(3_600_000), '1h');
    assert.equal(formatDuration(0), '0s');
    for (const ms of [1, 999, 1000, 61_000, 7_200_000]) assert.equal(parseDuration(formatDuration(ms)), ms);
  });
});
