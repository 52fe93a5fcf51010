/**
 * What a session move sends (src/session/restore.ts), against scripted connections: only statements
 * DSQL accepts (SELECTs that read, set_config() of names on DSQL's list, the client's own Parse
 * messages), never SQL-level PREPARE text, DISCARD or RESET; and a session holding what cannot be
 * carried is refused with SESSION_NOT_MOVABLE before anything is sent to the new connection.
 */
import assert from 'node:assert/strict';
import { Duplex } from 'node:stream';
import { describe, test } from 'node:test';
import { DSQL_SETTINGS, isDsqlSessionParam } from '../../src/dsql/limits.js';
import { ProxyError } from '../../src/errors.js';
import { restoreSnapshot, type SessionSnapshot, takeSnapshot } from '../../src/session/restore.js';
import { ServerSideState } from '../../src/session/server-side-state.js';
import { cstr, int16, int32, msg } from './wire-pieces.js';

/** A whole answer to a simple query: rows of text values (null is SQL NULL), then ReadyForQuery. */
function rows(values: Array<Array<string | null>>): Buffer {
  const width = values[0]?.length ?? 1;
  const fields = Array.from({ length: width }, (_, i) =>
    Buffer.concat([cstr(`c${i}`), int32(0), int16(0), int32(25), int16(-1), int32(-1), int16(0)]),
  );
  return Buffer.concat([
    msg('T', int16(width), ...fields),
    ...values.map((row) =>
      msg(
        'D',
        int16(row.length),
        ...row.map((v) =>
          v === null ? int32(-1) : Buffer.concat([int32(Buffer.byteLength(v)), Buffer.from(v)]),
        ),
      ),
    ),
    msg('C', cstr(`SELECT ${values.length}`)),
    msg('Z', Buffer.from('I')),
  ]);
}
const refused = Buffer.concat([
  msg('E', cstr('SERROR'), cstr('C0A000'), cstr('Mnot supported'), Buffer.alloc(1)),
  msg('Z', Buffer.from('I')),
]);

/**
 * A connection whose server answers each Query with `answer(sql)`, and each Sync with a
 * ParseComplete per Parse since the last one. Records every message the proxy sent.
 */
function scripted(answer: (sql: string) => Buffer) {
  const sent: Array<{ type: string; text: string }> = [];
  let parses = 0;
  const socket: Duplex = new Duplex({
    read() {},
    write(chunk: Buffer, _enc, done) {
      for (let at = 0; at + 5 <= chunk.length; ) {
        const type = String.fromCharCode(chunk[at]!);
        const end = at + 1 + chunk.readInt32BE(at + 1);
        const body = chunk.subarray(at + 5, end);
        at = end;
        if (type === 'Q') {
          const sql = body.toString('utf8', 0, body.length - 1);
          sent.push({ type, text: sql });
          socket.push(answer(sql));
        } else if (type === 'P') {
          sent.push({ type, text: body.toString('latin1') });
          parses++;
        } else if (type === 'S') {
          sent.push({ type, text: '' });
          socket.push(
            Buffer.concat([...Array.from({ length: parses }, () => msg('1')), msg('Z', Buffer.from('I'))]),
          );
          parses = 0;
        } else {
          sent.push({ type, text: body.toString('latin1') });
        }
      }
      done();
    },
  });
  return { socket, sent };
}

/** An old session's server: settings changed, one planner switch off, SET ROLE done. */
function oldServer(opts: { sqlPrepared?: number; ifPresent?: 'refused' | Array<string | null> } = {}) {
  return scripted((sql) => {
    if (sql.includes('pg_prepared_statements')) return rows([[String(opts.sqlPrepared ?? 0)]]);
    if (sql.includes('pg_settings')) return rows([['enable_seqscan', 'off']]);
    if (sql.includes("current_setting('role', true)")) {
      const present = opts.ifPresent ?? ['reader', null];
      return present === 'refused' ? refused : rows([present]);
    }
    if (sql.includes('current_setting')) {
      return rows([['app', 'UTF8', 'ISO, DMY', 'postgres', 'Asia/Tokyo', 'public, "$user"', '1']]);
    }
    return refused;
  });
}

/** The names passed to set_config() in a statement. */
function setConfigNames(sql: string): string[] {
  return [...sql.matchAll(/set_config\('((?:[^']|'')*)'/g)].map((m) => m[1]!.replaceAll("''", "'"));
}

const parseBody = Buffer.from('s1\0select $1::int\0\0\0', 'latin1');

describe('a move sends only what DSQL accepts', () => {
  test('snapshot and restore: reads, then set_config of allowlisted names and the Parse messages', async () => {
    const state = new ServerSideState();
    state.noteStatement('SET ROLE reader');
    state.noteStatement("PREPARE p AS SELECT 1; SELECT 'then deallocated'");
    assert.equal(state.roleMayDiffer, true);
    const old = oldServer();
    const snap = await takeSnapshot(old.socket, state, 1000);
    assert.ok(
      old.sent.every((m) => m.type === 'Q' && /^SELECT /.test(m.text)),
      'only SELECTs on the old connection',
    );
    const fresh = scripted(() => rows([['x']]));
    await restoreSnapshot(fresh.socket, { ...snap, parses: [parseBody] }, 1000);
    const queries = fresh.sent.filter((m) => m.type === 'Q').map((m) => m.text);
    assert.equal(queries.length, 1, 'one SELECT of set_config() calls');
    const names = setConfigNames(queries[0]!);
    assert.deepEqual(names, [...DSQL_SETTINGS, 'enable_seqscan', 'role']);
    for (const name of names) assert.ok(isDsqlSessionParam(name), `${name} is on DSQL's list`);
    assert.match(queries[0]!, /set_config\('role', 'reader', false\)/, 'SET ROLE is carried');
    assert.doesNotMatch(queries.join('\n'), /\b(prepare|execute|discard|reset|deallocate)\b/i);
    assert.deepEqual(
      fresh.sent.filter((m) => m.type !== 'Q').map((m) => m.type),
      ['P', 'S'],
      'prepared statements go as the Parse messages the server accepted',
    );
  });

  test('a fresh role ("none") and a server without disable_sync_create_index send neither', async () => {
    const old = oldServer({ ifPresent: ['none', null] });
    const snap = await takeSnapshot(old.socket, new ServerSideState(), 1000);
    assert.deepEqual(
      snap.settings.map(([n]) => n),
      [...DSQL_SETTINGS, 'enable_seqscan'],
    );
  });

  test('disable_sync_create_index is carried where the server has it', async () => {
    const old = oldServer({ ifPresent: ['none', 'on'] });
    const snap = await takeSnapshot(old.socket, new ServerSideState(), 1000);
    assert.deepEqual(snap.settings.at(-1), ['disable_sync_create_index', 'on']);
  });
});

describe('what cannot be carried ends the session', () => {
  const notMovable = (pattern: RegExp) => (e: unknown) => {
    assert.ok(e instanceof ProxyError);
    assert.equal(e.code, 'SESSION_NOT_MOVABLE');
    assert.equal(e.sqlstate, '08006');
    assert.match(e.detail ?? '', pattern);
    assert.ok(e.hint);
    return true;
  };

  test('SQL-level prepared statements on the old connection: refused, their text never read', async () => {
    const state = new ServerSideState();
    state.noteStatement('PREPARE ins AS INSERT INTO t VALUES (1); EXECUTE ins');
    const old = oldServer({ sqlPrepared: 1 });
    await assert.rejects(takeSnapshot(old.socket, state, 1000), notMovable(/holds 1 prepared statement/));
    assert.ok(old.sent.every((m) => !/\bstatement\b.*pg_prepared_statements/.test(m.text)));
    assert.ok(
      old.sent.every((m) => /count\(\*\)/.test(m.text)),
      'only their number is asked for',
    );
  });

  test('a role the server cannot report after SET ROLE: refused', async () => {
    const state = new ServerSideState();
    state.noteStatement('set role reader');
    await assert.rejects(
      takeSnapshot(oldServer({ ifPresent: 'refused' }).socket, state, 1000),
      notMovable(/changed its role/),
    );
    // Without a SET ROLE the same answer costs nothing: the role is the login's.
    const snap = await takeSnapshot(oldServer({ ifPresent: 'refused' }).socket, new ServerSideState(), 1000);
    assert.ok(!snap.settings.some(([n]) => n === 'role'));
  });

  test('a setting outside DSQL list is never sent through set_config', async () => {
    const fresh = scripted(() => rows([['x']]));
    const snap: SessionSnapshot = {
      settings: [
        ['TimeZone', 'UTC'],
        ['statement_timeout', '5s'],
      ],
      parses: [],
    };
    await assert.rejects(restoreSnapshot(fresh.socket, snap, 1000), notMovable(/statement_timeout/));
    assert.equal(fresh.sent.length, 0);
  });
});

describe('a restore that gets no answer', () => {
  test('Parse messages left unanswered fail with UPSTREAM_TIMEOUT, not as a close, and the socket is destroyed', async () => {
    // A server that takes the Parse messages and the Sync and never answers.
    const silent = new Duplex({
      read() {},
      write(_chunk, _enc, done) {
        done();
      },
    });
    const t0 = Date.now();
    await assert.rejects(
      restoreSnapshot(silent, { settings: [], parses: [parseBody] }, 100),
      (e: unknown) => {
        assert.ok(e instanceof ProxyError);
        assert.equal(e.code, 'UPSTREAM_TIMEOUT');
        assert.match(e.message, /restoring prepared statements timed out/);
        return true;
      },
    );
    assert.ok(Date.now() - t0 < 1500);
    assert.ok(silent.destroyed);
  });
});
