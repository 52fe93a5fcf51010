/** Properties of parseHostPort and formatHostPort (src/config/host-port.ts). */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { ConfigError, formatHostPort, parseHostPort } from '../../src/config/index.js';
import { onlyThrows, runs } from './property-helpers.js';

describe('parseHostPort properties', () => {
  it('parseHostPort: a host and port or only ConfigError naming the key; formatHostPort round-trips', () => {
    const host = fc.oneof(
      fc.ipV4(),
      fc.ipV6().map((h) => `[${h}]`),
      fc.ipV6(),
      fc.domain(),
      fc.string({ maxLength: 12 }),
      fc.constantFrom('', '[', ']', '[]', 'localhost', '::1', '[::1', '1.2.3.4.5'),
    );
    const port = fc.oneof(fc.integer({ min: -1, max: 70000 }).map(String), fc.string({ maxLength: 6 }));
    fc.assert(
      fc.property(host, fc.constantFrom(':', '::', ''), port, fc.boolean(), (h, sep, p, zero) => {
        const text = `${h}${sep}${p}`;
        const hp = onlyThrows(
          () => parseHostPort(text, 'listen', { allowPortZero: zero }),
          ConfigError,
          (e) => assert.equal(e.key, 'listen'),
        );
        if (hp === undefined) return;
        assert.ok(Number.isInteger(hp.port) && hp.port >= (zero ? 0 : 1) && hp.port <= 65535);
        assert.deepEqual(parseHostPort(formatHostPort(hp), 'listen', { allowPortZero: zero }), hp);
      }),
      runs(2000),
    );
  });
});
