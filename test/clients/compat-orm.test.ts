/**
 * ORM and driver connection setup with the real drivers through the proxy, in front of the local
 * endpoint with DSQL's rules on (issue 23's compatibility layer answers what DSQL refuses):
 *
 * - psycopg 3 (Debian's python3-psycopg, /usr/bin/python3) called the way SQLAlchemy 2's
 *   postgresql+psycopg dialect initializes a connection and the way Django 4.2+'s postgresql backend
 *   sets one up: test/clients/python/compat_orm.py. SQLAlchemy and Django themselves are not
 *   installed; psycopg picks the protocol (simple Query for parameterless execute, extended for bound
 *   parameters and for its own BEGIN/COMMIT/ROLLBACK).
 * - pgjdbc (Debian's libpostgresql-jdbc-java): its startup parameters, setTransactionIsolation,
 *   getTransactionIsolation, setReadOnly: test/clients/java/CompatJdbc.java, compiled here.
 *
 * test/integration/compat-setup.test.ts replays the same statements with the node drivers, plus
 * ActiveRecord's.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { assertNoSecrets } from '../support/secrets.js';
import { startTestStack, type TestStack } from '../support/stack.js';
import { tempDir } from '../support/temp-dirs.js';
import { type CompatProxy, PASSWORDS, startCompatProxy } from './compat.js';
import { DEBIAN_PYTHON, lastJsonLine, PGJDBC_JAR, requireExtra, runProgram } from './tools.js';

const HERE = fileURLToPath(new URL('.', import.meta.url));
const PY_SCRIPT = join(HERE, 'python', 'compat_orm.py');
const JAVA_SRC = join(HERE, 'java', 'CompatJdbc.java');
const classes = tempDir('jdbc-compat');

let stack: TestStack | undefined;
let cp: CompatProxy | undefined;

const run = runProgram;
const json = lastJsonLine;

before(async () => {
  requireExtra('psycopg');
  requireExtra('pgjdbc');
  const compiled = await run('javac', ['-d', classes, '-cp', PGJDBC_JAR, JAVA_SRC]);
  assert.equal(compiled.code, 0, `javac failed:\n${compiled.stdout}${compiled.stderr}`);
  stack = await startTestStack(); // DSQL's rules on
  cp = await startCompatProxy(stack, { auth: 'scram-sha-256', tls: false });
});

after(async () => {
  await cp?.proxy.stop();
  if (stack) {
    assertNoSecrets(cp?.proxy.logs.map((l) => l.raw) ?? [], {
      credentials: stack.credentials,
      tokens: stack.endpoint.logins.map((l) => l.token),
      passwords: Object.values(PASSWORDS),
    });
    await stack.stop();
  }
});

function up(): CompatProxy {
  assert.ok(cp, 'the proxy is running');
  return cp;
}

describe('psycopg 3 as SQLAlchemy and Django use it', () => {
  test('SQLAlchemy initialize and Django setup: exact answers, SERIALIZABLE refused, session usable', async () => {
    const p = up();
    const conninfo = `host=127.0.0.1 port=${p.proxy.port} user=app password='${PASSWORDS.app}' dbname=postgres sslmode=disable`;
    const out = json(await run(DEBIAN_PYTHON, [PY_SCRIPT, conninfo]), 'compat_orm.py');
    const sa = out.sqlalchemy as Record<string, unknown>;
    assert.match(String(sa.version), /^PostgreSQL \d+/);
    assert.deepEqual(
      { ...sa, version: undefined },
      {
        version: undefined,
        current_schema: 'public',
        standard_conforming_strings: 'on',
        isolation: 'repeatable read',
        status_after_rollback: 'IDLE',
        usable: 42,
      },
    );
    const dj = out.django as Record<string, unknown>;
    const serializable = dj.serializable as { sqlstate: string; message: string } | null;
    assert.equal(serializable?.sqlstate, '0A000', JSON.stringify(dj));
    assert.match(serializable.message, /REPEATABLE READ/);
    assert.deepEqual(
      { ...dj, serializable: undefined },
      {
        startup_timezone: dj.startup_timezone,
        set_config: 'Europe/Paris',
        timezone: 'Europe/Paris',
        repeatable_read: 'repeatable read',
        serializable: undefined,
        usable: 42,
        set_tag: 'SET',
        client_min_messages: 'warning',
      },
    );
  });
});

describe('pgjdbc', () => {
  test('startup parameters, SET SESSION CHARACTERISTICS, SHOW TRANSACTION ISOLATION LEVEL, BEGIN READ ONLY', async () => {
    const p = up();
    const url = `jdbc:postgresql://127.0.0.1:${p.proxy.port}/postgres?sslmode=disable`;
    const out = json(
      await run('java', ['-cp', `${PGJDBC_JAR}:${classes}`, 'CompatJdbc', url, 'app', PASSWORDS.app]),
      'CompatJdbc',
    );
    assert.match(String(out.serializable_message), /REPEATABLE READ/);
    assert.deepEqual(
      { ...out, serializable_message: undefined },
      {
        datestyle: 'ISO, MDY',
        extra_float_digits: '3',
        application_name: 'PostgreSQL JDBC Driver',
        isolation: 4, // Connection.TRANSACTION_REPEATABLE_READ
        isolation_shown: 'repeatable read',
        serializable_sqlstate: '0A000',
        serializable_message: undefined,
        read_only_sqlstate: '25006',
        usable: 42,
      },
    );
  });
});
