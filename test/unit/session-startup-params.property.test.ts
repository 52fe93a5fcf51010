/**
 * Properties of startup-parameter filtering beyond those in session-startup-params.test.ts: any
 * parameters and any `options` text never throw, never change the input, the only error is the documented
 * STARTUP_PARAM_UNSUPPORTED ProxyError (reject mode), and nothing DSQL refuses is forwarded.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { isDsqlSettableParam } from '../../src/dsql/limits.js';
import { ProxyError } from '../../src/errors.js';
import { filterStartupParams, parseOptions } from '../../src/session/startup-params.js';
import { runs } from './property-helpers.js';

/** `options` text built from the pieces PostgreSQL's splitter cares about. */
const optionsText = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc
    .array(
      fc.oneof(
        fc.constantFrom('-c', '--', '-c ', ' ', '\t', '\\', '\\ ', '=', '-', '\n', '\v'),
        fc.constantFrom('search_path', 'statement-timeout', 'enable_seqscan', 'TimeZone', 'x'),
        fc.string({ maxLength: 4 }),
      ),
      { maxLength: 12 },
    )
    .map((parts) => parts.join('')),
);

const paramName = fc.oneof(
  fc.constantFrom(
    'options',
    'TimeZone',
    'search_path',
    'statement_timeout',
    'enable_x',
    'replication',
    'OPTIONS',
  ),
  fc.string({ maxLength: 10 }),
);

describe('startup parameter properties', () => {
  it('parseOptions: never throws; every setting has a non-empty name without - or whitespace', () => {
    fc.assert(
      fc.property(optionsText, (text) => {
        const { settings, unusable } = parseOptions(text);
        for (const s of settings) {
          assert.ok(s.name.length > 0);
          assert.ok(!s.name.includes('-'));
        }
        for (const u of unusable) assert.equal(typeof u, 'string');
      }),
      runs(1500),
    );
  });

  it('filterStartupParams: only the documented error, input untouched, nothing refused is forwarded', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.tuple(paramName, fc.oneof(optionsText, fc.string({ maxLength: 10 }))), {
          selector: ([k]) => k,
          maxLength: 8,
        }),
        fc.constantFrom('drop' as const, 'reject' as const, 'pass' as const),
        (pairs, mode) => {
          const params = new Map(pairs);
          const before = [...params];
          const r = filterStartupParams(params, mode);
          assert.deepEqual([...params], before);
          if (mode === 'pass') {
            assert.deepEqual([...r.forward], before);
            return;
          }
          for (const key of r.forward.keys()) assert.ok(isDsqlSettableParam(key), key);
          if (r.error !== undefined) {
            assert.equal(mode, 'reject');
            assert.ok(r.error instanceof ProxyError);
            assert.equal(r.error.code, 'STARTUP_PARAM_UNSUPPORTED');
            assert.ok(r.dropped.length > 0);
            assert.equal(r.forward.size, 0);
          } else {
            assert.ok(mode === 'drop' || r.dropped.length === 0);
          }
        },
      ),
      runs(1000),
    );
  });
});
