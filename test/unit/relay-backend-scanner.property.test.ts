/**
 * Properties of the relay's backend scanner (src/relay/backend-scanner.ts) over arbitrary byte streams
 * and arbitrary chunkings: it never throws and always returns, and on valid streams its boundaries,
 * counts and events agree with a simple model that reads whole messages (scanner-model.ts).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { BackendScanner } from '../../src/relay/backend-scanner.js';
import { cuts, runs, split } from './property-helpers.js';
import { backendMessage, boundaries, hostileStream, wire } from './scanner-model.js';

describe('BackendScanner properties', () => {
  it('arbitrary streams and chunkings: never throws, returns, chunks untouched', () => {
    fc.assert(
      fc.property(hostileStream, cuts, (data, points) => {
        const s = new BackendScanner();
        s.onError = () => {};
        s.onParameterStatus = () => {};
        const copy = Buffer.from(data);
        for (const chunk of split(data, points)) s.scan(chunk);
        assert.deepEqual(data, copy);
        assert.equal(typeof s.atBoundary(), 'boolean');
      }),
      runs(800),
    );
  });

  it('valid streams split anywhere agree with the whole-message model', () => {
    fc.assert(
      fc.property(fc.array(backendMessage, { maxLength: 12 }), cuts, (messages, points) => {
        const data = wire(messages);
        const ends = boundaries(messages);
        const s = new BackendScanner();
        const errors: Buffer[] = [];
        const params: Buffer[] = [];
        s.onError = (b) => errors.push(Buffer.from(b));
        s.onParameterStatus = (b) => params.push(Buffer.from(b));
        let offset = 0;
        for (const chunk of split(data, points)) {
          s.scan(chunk);
          offset += chunk.length;
          assert.equal(s.atBoundary(), ends.has(offset), `offset ${offset}`);
        }
        const ready = messages.filter((m) => m.type === 0x5a && m.body.length > 0);
        assert.equal(s.readyCount, ready.length);
        assert.equal(s.status, ready.length === 0 ? 'I' : String.fromCharCode(ready.at(-1)!.body[0]!));
        const bodies = (type: number) =>
          messages.filter((m) => m.type === type && m.body.length > 0).map((m) => m.body);
        assert.deepEqual(errors, bodies(0x45));
        assert.deepEqual(params, bodies(0x53));
      }),
      runs(800),
    );
  });
});
