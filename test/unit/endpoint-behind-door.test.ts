/**
 * The local endpoint's wire layer without sockets (src/local-endpoint/behind-door.ts, door-sql.ts):
 * what it sends PostgreSQL for each client message, which of PostgreSQL's answers the client sees,
 * every split position of a stream, and hostile input. The behaviour against a real PostgreSQL is in
 * test/endpoint/behind-door.test.ts.
 */
import assert from 'node:assert/strict';
import { Duplex } from 'node:stream';
import { describe, test } from 'node:test';
import {
  BehindDoor,
  DSQL_LIMITS,
  decodeFields,
  encodeFields,
  relayBehindDoor,
} from '../../src/local-endpoint/behind-door.js';
import {
  ageLimitMessage,
  dollarQuote,
  MSG_CONFLICT_OC000,
  raiseStatement,
  sizeLimitMessage,
} from '../../src/local-endpoint/door-sql.js';
import { cstring, int32, typedMessage } from '../../src/protocol/message-writer.js';

const ch = (c: string): number => c.charCodeAt(0);

function door(limits = DSQL_LIMITS, now = () => 0): BehindDoor {
  return new BehindDoor({ limits, arn: 'arn:aws:iam::123456789012:user/u', now });
}

/** A door past its startup: the startup's ReadyForQuery has been answered. */
function ready(d = door()): BehindDoor {
  d.fromServer(ch('Z'), Buffer.from('I'));
  return d;
}

const body = (...parts: Buffer[]): Buffer => Buffer.concat(parts);
const queryText = (frames: Buffer[]): string => {
  assert.equal(frames.length, 1);
  const f = frames[0]!;
  assert.equal(f[0], ch('Q'));
  return f.toString('utf8', 5, f.length - 1);
};
const error = (fields: Record<string, string>): Buffer =>
  encodeFields(Object.entries(fields).map(([k, v]) => [ch(k), v]));
const fieldsOf = (frames: Buffer[]): Record<string, string> => {
  const f = frames.find((b) => b[0] === ch('E'));
  assert.ok(f, 'an ErrorResponse');
  return Object.fromEntries(decodeFields(f.subarray(5)).map(([k, v]) => [String.fromCharCode(k), v]));
};
const typesOf = (frames: Buffer[]): string => frames.map((f) => String.fromCharCode(f[0]!)).join(' ');

describe('door-sql', () => {
  test('dollarQuote: the text cannot end the quote, whatever it holds', () => {
    for (const text of ['', 'plain', "it's", '$msg$', 'x$msg', '$msg$$msg1$$msg2', 'a\\b', '$$']) {
      const quoted = dollarQuote(text);
      const tag = /^\$[a-z0-9]*\$/.exec(quoted)?.[0];
      assert.ok(tag);
      assert.ok(quoted.endsWith(tag));
      const inner = quoted.slice(tag.length, quoted.length - tag.length);
      assert.equal(inner, text);
      assert.equal(`${inner}${tag}`.indexOf(tag), inner.length, `${text}: the first end tag is the last`);
    }
  });

  test('raiseStatement: SQLSTATE checked, the message quoted, the block tag not in the body', () => {
    assert.match(raiseStatement('54000', 'x'), /^DO \$door\$BEGIN RAISE EXCEPTION USING ERRCODE = '54000'/);
    assert.match(raiseStatement("0A000'; DROP", 'x'), /ERRCODE = '0A000'/);
    const hostile = raiseStatement('0A000', '$door$ END $door$; DROP TABLE t; --');
    const tag = /^DO (\$door\d*\$)/.exec(hostile)?.[1];
    assert.ok(tag && tag !== '$door$');
    assert.equal(hostile.indexOf(tag, 3 + tag.length), hostile.length - tag.length);
  });

  test('limit messages: DSQL text for DSQL limits, exact for small test limits', () => {
    assert.equal(sizeLimitMessage(10 * 1024 * 1024), 'transaction size limit 10mb exceeded');
    assert.equal(sizeLimitMessage(4096), 'transaction size limit 4096b exceeded');
    assert.equal(ageLimitMessage(300_000), 'transaction age limit of 300s exceeded');
    assert.equal(ageLimitMessage(400), 'transaction age limit of 0.4s exceeded');
  });
});

describe('BehindDoor, simple Query', () => {
  test('a statement passes unchanged', () => {
    const d = ready();
    assert.equal(queryText(d.fromClient(ch('Q'), cstring('select 1'))), 'select 1');
  });

  test('a refused statement becomes a raise; its error loses W, keeps the rest', () => {
    const d = ready();
    const sql = queryText(d.fromClient(ch('Q'), cstring('LOCK TABLE t')));
    assert.match(sql, /^DO \$door\$BEGIN RAISE EXCEPTION USING ERRCODE = '0A000'/);
    const out = d.fromServer(
      ch('E'),
      error({ S: 'ERROR', V: 'ERROR', C: '0A000', M: 'm', W: 'PL/pgSQL ...' }),
    );
    assert.deepEqual(fieldsOf(out), { S: 'ERROR', V: 'ERROR', C: '0A000', M: 'm' });
    assert.equal(typesOf(d.fromServer(ch('Z'), Buffer.from('I'))), 'Z');
  });

  test("a client statement's own error keeps its context", () => {
    const d = ready();
    d.fromClient(ch('Q'), cstring('select f()'));
    const out = d.fromServer(ch('E'), error({ S: 'ERROR', C: 'P0001', M: 'm', W: 'PL/pgSQL function f()' }));
    assert.equal(fieldsOf(out).W, 'PL/pgSQL function f()');
  });

  test('after a refusal, the rest of the text stays (PostgreSQL parses it, skips it)', () => {
    const d = ready();
    const sql = queryText(d.fromClient(ch('Q'), cstring('select 1; TRUNCATE t; select 2')));
    assert.match(sql, /^select 1; DO \$door\$.*\$door\$; select 2$/s);
  });

  test("a write is followed by the row check; the write's CommandComplete waits for the check", () => {
    const d = ready();
    const sql = queryText(d.fromClient(ch('Q'), cstring('insert into t values (1) -- c')));
    assert.match(sql, /^insert into t values \(1\)\n;DO \$door\$.*pg_stat_xact_user_tables.*\$door\$ -- c$/s);
    assert.deepEqual(d.fromServer(ch('C'), cstring('INSERT 0 1')), []);
    const released = d.fromServer(ch('C'), cstring('DO'));
    assert.equal(typesOf(released), 'C');
    assert.equal(released[0]!.toString('utf8', 5, released[0]!.length - 1), 'INSERT 0 1');
    assert.equal(typesOf(d.fromServer(ch('Z'), Buffer.from('I'))), 'Z');
  });

  test("a failing check drops the write's CommandComplete; its error loses W", () => {
    const d = ready();
    d.fromClient(ch('Q'), cstring('insert into t select 1'));
    assert.deepEqual(d.fromServer(ch('C'), cstring('INSERT 0 5000')), []);
    const out = d.fromServer(
      ch('E'),
      error({ S: 'ERROR', C: '54000', M: 'transaction row limit exceeded', W: 'x' }),
    );
    assert.equal(typesOf(out), 'E');
    assert.equal(fieldsOf(out).W, undefined);
  });

  test('bytes over the limit: the check is an unconditional raise', () => {
    const d = ready(door({ ...DSQL_LIMITS, transactionBytes: 10 }));
    const sql = queryText(d.fromClient(ch('Q'), cstring("insert into t values ('0123456789')")));
    assert.match(sql, /MESSAGE = \$msg\$transaction size limit 10b exceeded\$msg\$/);
  });

  test('40001 and 40P01 come out with the OC000 text and no PostgreSQL detail', () => {
    for (const code of ['40001', '40P01']) {
      const d = ready();
      d.fromClient(ch('Q'), cstring('update t set n = 1'));
      d.fromServer(ch('C'), cstring('UPDATE 1'));
      const out = d.fromServer(
        ch('E'),
        error({ S: 'ERROR', V: 'ERROR', C: code, M: 'could not serialize', D: 'd' }),
      );
      assert.deepEqual(fieldsOf(out), { S: 'ERROR', V: 'ERROR', C: '40001', M: MSG_CONFLICT_OC000 });
    }
  });

  test('transaction age: the next statement is refused; a late COMMIT rolls back then raises', () => {
    let now = 0;
    const d = ready(door({ ...DSQL_LIMITS, transactionMs: 1000 }, () => now));
    d.fromClient(ch('Q'), cstring('begin'));
    d.fromServer(ch('C'), cstring('BEGIN'));
    d.fromServer(ch('Z'), Buffer.from('T'));
    now = 2000;
    assert.match(
      queryText(d.fromClient(ch('Q'), cstring('select 1'))),
      /transaction age limit of 1s exceeded/,
    );
    d.fromServer(ch('E'), error({ S: 'ERROR', C: '54000', M: 'x' }));
    d.fromServer(ch('Z'), Buffer.from('E'));
    assert.equal(queryText(d.fromClient(ch('Q'), cstring('rollback'))), 'rollback');
    d.fromServer(ch('C'), cstring('ROLLBACK'));
    d.fromServer(ch('Z'), Buffer.from('I'));
    d.fromClient(ch('Q'), cstring('begin'));
    d.fromServer(ch('C'), cstring('BEGIN'));
    d.fromServer(ch('Z'), Buffer.from('T'));
    now = 4000;
    assert.match(queryText(d.fromClient(ch('Q'), cstring('commit'))), /^ROLLBACK;\nDO /);
    assert.deepEqual(d.fromServer(ch('C'), cstring('ROLLBACK')), [], 'the injected ROLLBACK is not seen');
    assert.equal(typesOf(d.fromServer(ch('E'), error({ S: 'ERROR', C: '54000', M: 'x', W: 'w' }))), 'E');
  });
});

describe('BehindDoor, extended protocol', () => {
  const parseBody = (sql: string, name = ''): Buffer =>
    body(cstring(name), cstring(sql), Buffer.from([0, 0]));
  const bindBody = (portal = '', stmt = ''): Buffer => body(cstring(portal), cstring(stmt), Buffer.alloc(6));
  const execBody = (portal = ''): Buffer => body(cstring(portal), int32(0));

  test('a refused Parse: Parse/Bind/Execute of a raise; only the error reaches the client', () => {
    const d = ready();
    const out = d.fromClient(ch('P'), parseBody('LOCK TABLE t', 's1'));
    assert.equal(typesOf(out), 'P B E');
    assert.deepEqual(d.fromClient(ch('B'), bindBody('', 's1')).length, 1);
    d.fromClient(ch('E'), execBody());
    d.fromClient(ch('S'), Buffer.alloc(0));
    assert.deepEqual(d.fromServer(ch('1'), Buffer.alloc(0)), []);
    assert.deepEqual(d.fromServer(ch('2'), Buffer.alloc(0)), []);
    const err = d.fromServer(ch('E'), error({ S: 'ERROR', C: '0A000', M: 'm', W: 'w' }));
    assert.deepEqual(fieldsOf(err), { S: 'ERROR', C: '0A000', M: 'm' });
    assert.equal(typesOf(d.fromServer(ch('Z'), Buffer.from('I'))), 'Z');
    // The next batch is answered as usual.
    d.fromClient(ch('P'), parseBody('select 1'));
    d.fromClient(ch('S'), Buffer.alloc(0));
    assert.equal(typesOf(d.fromServer(ch('1'), Buffer.alloc(0))), '1');
  });

  test("a write's Execute is followed by the check on a named statement and portal", () => {
    const d = ready();
    d.fromClient(ch('P'), parseBody('insert into t values ($1)'));
    d.fromClient(ch('B'), bindBody());
    const out = d.fromClient(ch('E'), execBody());
    assert.equal(typesOf(out), 'E P B E C');
    assert.match(out[1]!.toString('utf8'), /dsql_endpoint_limit_check\0DO /);
    d.fromClient(ch('S'), Buffer.alloc(0));
    assert.equal(typesOf(d.fromServer(ch('1'), Buffer.alloc(0))), '1');
    assert.equal(typesOf(d.fromServer(ch('2'), Buffer.alloc(0))), '2');
    assert.deepEqual(d.fromServer(ch('C'), cstring('INSERT 0 1')), [], 'held');
    assert.deepEqual(d.fromServer(ch('1'), Buffer.alloc(0)), []);
    assert.deepEqual(d.fromServer(ch('2'), Buffer.alloc(0)), []);
    assert.equal(typesOf(d.fromServer(ch('C'), cstring('DO'))), 'C', 'the INSERT, released');
    assert.deepEqual(d.fromServer(ch('3'), Buffer.alloc(0)), []);
    assert.equal(typesOf(d.fromServer(ch('Z'), Buffer.from('I'))), 'Z');
    // The check statement is parsed once per session.
    d.fromClient(ch('B'), bindBody());
    assert.equal(typesOf(d.fromClient(ch('E'), execBody())), 'E B E C');
  });
});

describe('BehindDoor, hostile input', () => {
  test('arbitrary messages either way never throw', () => {
    let seed = 42;
    const rand = (n: number): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    const typesC = 'QPBEDCSHFdcfX?';
    const typesS = 'ZCEIs123ntTDGHdcNSAKR?';
    const d = door();
    for (let i = 0; i < 20_000; i++) {
      const len = rand(40);
      const b = Buffer.alloc(len);
      for (let j = 0; j < len; j++) b[j] = rand(3) === 0 ? 0 : rand(256);
      if (rand(2) === 0) d.fromClient(ch(typesC[rand(typesC.length)]!), b);
      else d.fromServer(ch(typesS[rand(typesS.length)]!), b);
    }
  });
});

describe('relayBehindDoor', () => {
  function pair(): { sock: Duplex; written: Buffer[] } {
    const written: Buffer[] = [];
    const sock = new Duplex({
      read() {},
      write(chunk: Buffer, _enc, cb) {
        written.push(chunk);
        cb();
      },
    });
    return { sock, written };
  }

  test('the same bytes reach PostgreSQL at every split position of the client stream', () => {
    const stream = Buffer.concat([
      typedMessage(ch('Q'), cstring('select 1; LOCK TABLE t')),
      typedMessage(ch('P'), cstring(''), cstring('TRUNCATE t'), Buffer.from([0, 0])),
      typedMessage(ch('S')),
    ]);
    let expected: Buffer | undefined;
    for (let at = 0; at <= stream.length; at++) {
      const client = pair();
      const up = pair();
      relayBehindDoor(client.sock, up.sock, ready(), Buffer.alloc(0));
      client.sock.emit('data', stream.subarray(0, at));
      client.sock.emit('data', stream.subarray(at));
      const sent = Buffer.concat(up.written);
      expected ??= sent;
      assert.deepEqual(sent, expected, `split at ${at}`);
    }
    assert.ok(expected && expected.length > stream.length, 'refusals were rewritten');
  });
});
