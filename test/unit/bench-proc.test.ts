import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { psqlSteps, psqlTimingsMs } from '../../scripts/bench/proc.js';

describe('bench: psql timings', () => {
  it('reads each "Time:" line in order, with or without the minutes part past a second', () => {
    const out = 'Time: 941.114 ms\nTime: 1079.203 ms (00:01.079)\nCOPY 5\nTime: 12 ms\n';
    assert.deepEqual(psqlTimingsMs(out), [941.114, 1079.203, 12]);
  });

  it('ignores other output, including a row that mentions a time', () => {
    assert.deepEqual(psqlTimingsMs(' Time: 3 ms\nTimes: 4 ms\nTime: x ms\n'), []);
  });

  it('turns timing on around the timed steps only', () => {
    assert.deepEqual(
      psqlSteps([{ command: 'TRUNCATE t' }, { command: "\\copy t to '/dev/null'", timed: true }]),
      [
        '-X',
        '-q',
        '-v',
        'ON_ERROR_STOP=1',
        '-c',
        'TRUNCATE t',
        '-c',
        '\\timing on',
        '-c',
        "\\copy t to '/dev/null'",
        '-c',
        '\\timing off',
      ],
    );
  });
});
