/**
 * Properties of the relay's frontend scanner (src/relay/frontend-scanner.ts) over arbitrary byte
 * streams and arbitrary chunkings: it never throws and always returns, and on valid streams its
 * boundaries, counts and events agree with a simple model that reads whole messages
 * (scanner-model.ts; the backend scanner's properties are in relay-backend-scanner.property.test.ts).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { FrontendScanner } from '../../src/relay/frontend-scanner.js';
import { cuts, runs, split } from './property-helpers.js';
import { boundaries, frontendMessage, hostileStream, wire } from './scanner-model.js';

describe('FrontendScanner properties', () => {
  it('arbitrary streams and chunkings: never throws, returns, chunks untouched', () => {
    fc.assert(
      fc.property(hostileStream, cuts, (data, points) => {
        // Hostile lengths included: the scanner keeps only bytes that arrive, never a length's worth.
        const s = new FrontendScanner({
          onNamedParse: () => {},
          onCloseStatement: () => {},
          onStatementText: () => {},
        });
        const copy = Buffer.from(data);
        for (const chunk of split(data, points)) s.scan(chunk);
        assert.deepEqual(data, copy);
      }),
      runs(800),
    );
  });

  it('valid streams split anywhere agree with the whole-message model', () => {
    fc.assert(
      fc.property(fc.array(frontendMessage, { maxLength: 12 }), cuts, (messages, points) => {
        const data = wire(messages);
        const ends = boundaries(messages);
        const events: string[] = [];
        const s = new FrontendScanner({
          onNamedParse: (n, body) => events.push(`parse:${n}:${body.toString('hex')}`),
          onUnnamedParse: () => events.push('parse'),
          onCloseStatement: (n) => events.push(`close:${n}`),
          onClosePortal: () => events.push('close-portal'),
          onStatementText: (sql) => events.push(`text:${sql}`),
          onUntracked: () => events.push('untracked'),
        });
        let offset = 0;
        for (const chunk of split(data, points)) {
          s.scan(chunk);
          offset += chunk.length;
          assert.equal(s.atBoundary(), ends.has(offset), `offset ${offset}`);
        }
        // The model: whole messages, read the way the protocol defines them.
        const expected: string[] = [];
        let requests = 0;
        let batchOpen = false;
        for (const { type, body } of messages) {
          if (type === 0x51 || type === 0x46 || type === 0x53) requests++;
          if (type === 0x53) batchOpen = false;
          else if (![0x51, 0x46, 0x58, 0x64, 0x63, 0x66].includes(type)) batchOpen = true;
          if (body.length === 0) {
            // An empty Parse or Close is malformed: the statements can no longer be followed.
            if (type === 0x50 || type === 0x43) expected.push('untracked');
            continue;
          }
          if (type === 0x51) expected.push(`text:${body.toString('utf8', 0, body.length - 1)}`);
          if (type === 0x43) {
            const end = body.indexOf(0, 1);
            if (end < 0) expected.push('untracked');
            else if (body[0] === 0x53) expected.push(`close:${body.toString('utf8', 1, end)}`);
            else if (body[0] === 0x50) expected.push('close-portal');
            else expected.push('untracked');
          }
          if (type === 0x50) {
            const end = body.indexOf(0);
            if (end < 0) expected.push('untracked');
            else if (end > 0) expected.push(`parse:${body.toString('utf8', 0, end)}:${body.toString('hex')}`);
            else expected.push('parse');
            const textEnd = end < 0 ? -1 : body.indexOf(0, end + 1);
            if (end >= 0 && textEnd > end) expected.push(`text:${body.toString('utf8', end + 1, textEnd)}`);
          }
        }
        assert.equal(s.requests, requests);
        assert.equal(s.batchOpen, batchOpen);
        assert.deepEqual(events, expected);
      }),
      runs(800),
    );
  });
});

describe('FrontendScanner memory bounds', () => {
  it('a Parse header claiming 2 GiB reserves nothing and marks the statement as not kept', () => {
    let unkept = 0;
    let parsed = 0;
    const s = new FrontendScanner({ onNamedParse: () => parsed++, onUntracked: () => unkept++ });
    const header = Buffer.alloc(5);
    header[0] = 0x50;
    header.writeInt32BE(0x7fffffff, 1);
    const before = process.memoryUsage().arrayBuffers;
    for (let i = 0; i < 60; i++) s.scan(header);
    assert.ok(process.memoryUsage().arrayBuffers - before < 16 * 1024 * 1024, 'no large reservation');
    assert.equal(unkept, 1, 'the first header starts a huge body; the rest is body bytes');
    assert.equal(parsed, 0);
  });
});

describe('FrontendScanner bodies', () => {
  it('a named Parse read in place is handed over as a copy that outlives the chunk', () => {
    const kept: Buffer[] = [];
    const texts: (string | null)[] = [];
    const s = new FrontendScanner({
      onNamedParse: (_name, body) => kept.push(body),
      onStatementText: (sql) => texts.push(sql),
    });
    const body = Buffer.from('s1\0select 1\0\0\0', 'latin1');
    const parse = Buffer.alloc(5 + body.length);
    parse[0] = 0x50;
    parse.writeInt32BE(4 + body.length, 1);
    body.copy(parse, 5);
    // The whole message and the start of the next one in one chunk: the body is read in place.
    const chunk = Buffer.concat([parse, Buffer.from([0x53, 0, 0])]);
    s.scan(chunk);
    chunk.fill(0xff);
    assert.deepEqual(kept, [body]);
    assert.deepEqual(texts, ['select 1']);
  });
});
