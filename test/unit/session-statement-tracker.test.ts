/**
 * The named prepared statements a session keeps to re-create on a fresh connection
 * (src/session/statement-tracker.ts): only those the server accepted, paired with ParseComplete and
 * CloseComplete through the relay's two scanners wired as MovableRelay wires them, at every split
 * position of either stream, and within bounds of count and bytes.
 */
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { describe, test } from 'node:test';
import { ProxyError } from '../../src/errors.js';
import { BackendScanner } from '../../src/relay/backend-scanner.js';
import { FrontendScanner } from '../../src/relay/frontend-scanner.js';
import { takeSnapshot } from '../../src/session/restore.js';
import { ServerSideState } from '../../src/session/server-side-state.js';
import {
  answersTo,
  MAX_TRACKED_BYTES,
  MAX_TRACKED_STATEMENTS,
  StatementTracker,
  statementEvents,
} from '../../src/session/statement-tracker.js';
import { cstr, int16, int32, msg } from './wire-pieces.js';

const parseBody = (name: string, sql: string) => Buffer.concat([cstr(name), cstr(sql), int16(0)]);
const parse = (name: string, sql: string) => msg('P', parseBody(name, sql));
const bind = (stmt: string) => msg('B', cstr(''), cstr(stmt), int16(0), int16(0), int16(0));
const execute = () => msg('E', cstr(''), int32(0));
const sync = () => msg('S');
const closeStatement = (name: string) => msg('C', Buffer.from('S'), cstr(name));
const closePortal = (name: string) => msg('C', Buffer.from('P'), cstr(name));
const query = (sql: string) => msg('Q', cstr(sql));

const parseComplete = () => msg('1');
const bindComplete = () => msg('2');
const closeComplete = () => msg('3');
const commandComplete = (tag: string) => msg('C', cstr(tag));
const ready = (status = 'I') => msg('Z', Buffer.from(status));
const error = (code: string) => msg('E', cstr('SERROR'), cstr(`C${code}`), cstr('Mrefused'), Buffer.alloc(1));

/** A tracker fed by real scanners, wired as MovableRelay wires them. */
function wired() {
  const tracker = new StatementTracker();
  const frontend: FrontendScanner = new FrontendScanner(statementEvents(tracker, () => frontend.requests));
  const backend = new BackendScanner();
  answersTo(tracker, backend);
  return { tracker, frontend, backend };
}

/**
 * A client that pipelines several batches, and the server's answers, in order:
 * 1. s1 and an unnamed statement, both accepted;
 * 2. a second Parse of s1 with another text: 42P05, the server keeps the first one;
 * 3. a Parse with a syntax error: refused;
 * 4. x accepted, s1 closed;
 * 5. an error first, so the Close of x after it is skipped: x stays;
 * 6. p6 accepted in one batch, p7 in the next;
 * 7. q accepted, a portal closed (answered with CloseComplete too);
 * 8. a simple Query (no Parse) and q2 accepted.
 */
const client = Buffer.concat([
  parse('s1', 'select 1'),
  parse('', 'select 2'),
  bind(''),
  execute(),
  sync(),
  parse('s1', 'delete from t'),
  sync(),
  parse('bad', 'selec'),
  bind('bad'),
  sync(),
  parse('x', 'select 3'),
  closeStatement('s1'),
  sync(),
  parse('', 'bogus'),
  closeStatement('x'),
  sync(),
  parse('p6', 'select 6'),
  sync(),
  parse('p7', 'select 7'),
  sync(),
  parse('q', 'select 8'),
  bind('q'),
  closePortal(''),
  sync(),
  query('select 9'),
  parse('q2', 'select 10'),
  sync(),
]);
const server = Buffer.concat([
  parseComplete(),
  parseComplete(),
  bindComplete(),
  commandComplete('SELECT 1'),
  ready(),
  error('42P05'),
  ready(),
  error('42601'),
  ready(),
  parseComplete(),
  closeComplete(),
  ready(),
  error('42601'),
  ready(),
  parseComplete(),
  ready(),
  parseComplete(),
  ready(),
  parseComplete(),
  bindComplete(),
  closeComplete(),
  ready(),
  commandComplete('SELECT 1'),
  ready(),
  parseComplete(),
  ready(),
]);
const FINAL = ['x', 'p6', 'p7', 'q', 'q2'];

function check(tracker: StatementTracker, where: string): void {
  assert.equal(tracker.untracked, false, where);
  assert.deepEqual(tracker.names(), FINAL, where);
  assert.deepEqual(
    tracker.bodies(),
    [
      parseBody('x', 'select 3'),
      parseBody('p6', 'select 6'),
      parseBody('p7', 'select 7'),
      parseBody('q', 'select 8'),
      parseBody('q2', 'select 10'),
    ],
    where,
  );
  assert.equal(tracker.size, FINAL.length, `${where}: nothing left pending`);
  assert.equal(
    tracker.heldBytes,
    tracker.bodies().reduce((n, b) => n + b.length, 0),
    where,
  );
}

describe('only what the server accepted is kept', () => {
  test('batch by batch: a refused second Parse of a name keeps the first body', () => {
    const { tracker, frontend, backend } = wired();
    frontend.scan(Buffer.concat([parse('s1', 'select 1'), sync()]));
    assert.deepEqual(tracker.names(), [], 'a Parse sent is not a statement yet');
    backend.scan(Buffer.concat([parseComplete(), ready()]));
    assert.deepEqual(tracker.names(), ['s1']);
    frontend.scan(Buffer.concat([parse('s1', 'delete from t'), sync()]));
    backend.scan(Buffer.concat([error('42P05'), ready()]));
    assert.deepEqual(tracker.bodies(), [parseBody('s1', 'select 1')]);
    assert.equal(tracker.size, 1);
    frontend.scan(Buffer.concat([closeStatement('s1'), sync()]));
    assert.deepEqual(tracker.names(), ['s1'], 'a Close sent is not done yet');
    backend.scan(Buffer.concat([closeComplete(), ready()]));
    assert.deepEqual(tracker.names(), []);
    assert.equal(tracker.heldBytes, 0);
  });

  test('all batches pipelined, fed whole', () => {
    const { tracker, frontend, backend } = wired();
    frontend.scan(client);
    backend.scan(server);
    check(tracker, 'whole');
  });

  test('the client stream split at every position', () => {
    for (let i = 0; i <= client.length; i++) {
      const { tracker, frontend, backend } = wired();
      frontend.scan(client.subarray(0, i));
      frontend.scan(client.subarray(i));
      backend.scan(server);
      check(tracker, `client split at ${i}`);
    }
  });

  test('the server stream split at every position', () => {
    for (let i = 0; i <= server.length; i++) {
      const { tracker, frontend, backend } = wired();
      frontend.scan(client);
      backend.scan(server.subarray(0, i));
      backend.scan(server.subarray(i));
      check(tracker, `server split at ${i}`);
    }
  });

  test('both streams one byte at a time, each answer after its request', () => {
    const { tracker, frontend, backend } = wired();
    for (let i = 0; i < client.length; i++) frontend.scan(client.subarray(i, i + 1));
    for (let i = 0; i < server.length; i++) backend.scan(server.subarray(i, i + 1));
    check(tracker, 'bytewise');
  });

  test('an answer the proxy cannot pair (CloseComplete for a Parse) stops tracking', () => {
    const { tracker, frontend, backend } = wired();
    frontend.scan(Buffer.concat([parse('a', 'select 1'), sync()]));
    backend.scan(Buffer.concat([closeComplete(), ready()]));
    assert.equal(tracker.untracked, true);
    assert.equal(tracker.size, 0);
  });

  test('a malformed Close stops tracking', () => {
    const { tracker, frontend } = wired();
    frontend.scan(msg('C', Buffer.from('X'), cstr('a')));
    assert.equal(tracker.untracked, true);
  });
});

describe('bounded by count and bytes', () => {
  test(`at most ${MAX_TRACKED_STATEMENTS} statements: beyond, tracking stops and memory is let go`, () => {
    const { tracker, frontend, backend } = wired();
    let most = 0;
    for (let i = 0; i < MAX_TRACKED_STATEMENTS + 500; i++) {
      frontend.scan(Buffer.concat([parse(`s${i}`, 'select 1'), sync()]));
      backend.scan(Buffer.concat([parseComplete(), ready()]));
      most = Math.max(most, tracker.size);
    }
    assert.equal(most, MAX_TRACKED_STATEMENTS);
    assert.equal(tracker.untracked, true);
    assert.equal(tracker.size, 0);
    assert.equal(tracker.heldBytes, 0);
    assert.deepEqual(tracker.bodies(), []);
  });

  test(`at most ${MAX_TRACKED_BYTES / 1024 / 1024} MiB, pending Parses included (a client that never syncs)`, () => {
    const { tracker, frontend } = wired();
    const text = 'x'.repeat(1024 * 1024);
    let most = 0;
    for (let i = 0; i < 40; i++) {
      frontend.scan(parse(`big${i}`, text));
      most = Math.max(most, tracker.heldBytes);
    }
    assert.ok(most <= MAX_TRACKED_BYTES, `${most} bytes held`);
    assert.equal(tracker.untracked, true);
    assert.equal(tracker.heldBytes, 0);
  });

  test('refused Parses are let go at the ReadyForQuery that ends their batch', () => {
    const { tracker, frontend, backend } = wired();
    for (let i = 0; i < 3 * MAX_TRACKED_STATEMENTS; i++) {
      frontend.scan(Buffer.concat([parse('dup', 'x'.repeat(1000)), sync()]));
      backend.scan(Buffer.concat([error('42P05'), ready()]));
      assert.equal(tracker.size, 0);
    }
    assert.equal(tracker.untracked, false);
    assert.equal(tracker.heldBytes, 0);
  });

  test('an untracked session is not movable: the snapshot refuses before sending anything', async () => {
    const state = new ServerSideState();
    state.statements.stop();
    const socket = new PassThrough();
    const written: Buffer[] = [];
    socket.on('data', (b: Buffer) => written.push(b));
    await assert.rejects(takeSnapshot(socket, state, 1000), (e: unknown) => {
      assert.ok(e instanceof ProxyError);
      assert.equal(e.code, 'SESSION_NOT_MOVABLE');
      assert.equal(e.sqlstate, '08006');
      assert.match(e.detail ?? '', /named prepared statements dsql-proxy did not keep copies of/);
      return true;
    });
    assert.equal(written.length, 0);
  });
});
