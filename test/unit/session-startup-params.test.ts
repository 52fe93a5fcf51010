import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { isDsqlSessionParam, isDsqlSettableParam } from '../../src/dsql/limits.js';
import { ProxyError } from '../../src/errors.js';
import { droppedNotice, filterStartupParams, parseOptions } from '../../src/session/startup-params.js';

const entries = (m: ReadonlyMap<string, string>): Array<[string, string]> => [...m];

describe('isDsqlSettableParam', () => {
  it('accepts the listed parameters in any case', () => {
    for (const name of ['TimeZone', 'DateStyle', 'IntervalStyle', 'application_name', 'SEARCH_PATH']) {
      assert.equal(isDsqlSettableParam(name), true, name);
    }
  });
  it('accepts enable_* planner switches', () => {
    assert.equal(isDsqlSettableParam('enable_seqscan'), true);
    assert.equal(isDsqlSettableParam('Enable_HashJoin'), true);
  });
  it('refuses the others', () => {
    for (const name of [
      'statement_timeout',
      'client_min_messages',
      'lock_timeout',
      'options',
      'replication',
    ]) {
      assert.equal(isDsqlSettableParam(name), false, name);
    }
  });
});

describe('isDsqlSessionParam', () => {
  it('accepts the startup list and the two SET-only names, in any case', () => {
    for (const name of ['TimeZone', 'enable_seqscan', 'role', 'Disable_Sync_Create_Index']) {
      assert.equal(isDsqlSessionParam(name), true, name);
    }
    assert.equal(isDsqlSettableParam('role'), false);
  });
  it('refuses the others', () => {
    for (const name of ['statement_timeout', 'work_mem', 'session_authorization']) {
      assert.equal(isDsqlSessionParam(name), false, name);
    }
  });
});

describe('filterStartupParams', () => {
  const mixed = new Map([
    ['client_min_messages', 'notice'],
    ['TimeZone', 'UTC'],
    ['statement_timeout', '5000'],
    ['DateStyle', 'ISO, MDY'],
    ['enable_seqscan', 'off'],
    ['application_name', 'psql'],
  ]);

  it('pass forwards everything unchanged', () => {
    const params = new Map([...mixed, ['options', '-c statement_timeout=1s'], ['replication', 'true']]);
    const r = filterStartupParams(params, 'pass');
    assert.deepEqual(entries(r.forward), entries(params));
    assert.deepEqual(r.dropped, []);
    assert.equal(r.error, undefined);
  });

  it('drop keeps accepted parameters (any case) and lists the others in client order', () => {
    const r = filterStartupParams(mixed, 'drop');
    assert.deepEqual(entries(r.forward), [
      ['TimeZone', 'UTC'],
      ['DateStyle', 'ISO, MDY'],
      ['enable_seqscan', 'off'],
      ['application_name', 'psql'],
    ]);
    assert.deepEqual(r.dropped, ['client_min_messages', 'statement_timeout']);
    assert.equal(r.error, undefined);
  });

  it('drop with nothing to drop forwards all and lists nothing', () => {
    const params = new Map([
      ['client_encoding', 'UTF8'],
      ['extra_float_digits', '3'],
    ]);
    const r = filterStartupParams(params, 'drop');
    assert.deepEqual(entries(r.forward), entries(params));
    assert.deepEqual(r.dropped, []);
  });

  it('drop never forwards replication', () => {
    const r = filterStartupParams(new Map([['replication', 'database']]), 'drop');
    assert.equal(r.forward.size, 0);
    assert.deepEqual(r.dropped, ['replication']);
  });

  it('reject refuses with 0A000 naming the parameters and the way out', () => {
    const r = filterStartupParams(mixed, 'reject');
    assert.ok(r.error instanceof ProxyError);
    assert.equal(r.error.code, 'STARTUP_PARAM_UNSUPPORTED');
    assert.equal(r.error.sqlstate, '0A000');
    assert.equal(r.error.severity, 'FATAL');
    assert.match(r.error.message, /client_min_messages, statement_timeout/);
    assert.match(r.error.message, /--startup-params drop/);
    assert.deepEqual(r.dropped, ['client_min_messages', 'statement_timeout']);
  });

  it('reject accepts a login with only accepted parameters', () => {
    const r = filterStartupParams(
      new Map([
        ['TimeZone', 'UTC'],
        ['options', '-c search_path=app'],
      ]),
      'reject',
    );
    assert.equal(r.error, undefined);
    assert.deepEqual(entries(r.forward), [
      ['TimeZone', 'UTC'],
      ['search_path', 'app'],
    ]);
  });

  it('turns accepted settings from options into plain parameters and drops the rest', () => {
    const params = new Map([
      ['application_name', 'app'],
      [
        'options',
        '-c search_path=myschema -c statement_timeout=1s --DateStyle=ISO -cclient_min_messages=debug',
      ],
      ['TimeZone', 'UTC'],
    ]);
    const r = filterStartupParams(params, 'drop');
    assert.deepEqual(entries(r.forward), [
      ['application_name', 'app'],
      ['search_path', 'myschema'],
      ['DateStyle', 'ISO'],
      ['TimeZone', 'UTC'],
    ]);
    assert.deepEqual(r.dropped, ['statement_timeout (from options)', 'client_min_messages (from options)']);
  });

  it('a plain parameter wins over the same one in options, as in PostgreSQL', () => {
    const params = new Map([
      ['options', '-c timezone=Europe/Paris -c search_path=a -c search_path=b'],
      ['TimeZone', 'UTC'],
    ]);
    const r = filterStartupParams(params, 'drop');
    assert.deepEqual(entries(r.forward), [
      ['search_path', 'b'],
      ['TimeZone', 'UTC'],
    ]);
    assert.deepEqual(r.dropped, []);
  });

  it('lists options words that are not settings', () => {
    const r = filterStartupParams(new Map([['options', '-e -c geqo -c']]), 'drop');
    assert.equal(r.forward.size, 0);
    assert.deepEqual(r.dropped, ['-e (from options)', '-c geqo (from options)', '-c (from options)']);
  });

  it('an empty options is simply left out', () => {
    const r = filterStartupParams(new Map([['options', '   ']]), 'drop');
    assert.equal(r.forward.size, 0);
    assert.deepEqual(r.dropped, []);
  });

  it('does not modify its input', () => {
    const params = new Map(mixed);
    filterStartupParams(params, 'drop');
    filterStartupParams(params, 'reject');
    assert.deepEqual(entries(params), entries(mixed));
  });

  it('property: never throws; in drop mode forward and dropped account for every key', () => {
    const key = fc.oneof(
      fc.constantFrom(
        'TimeZone',
        'datestyle',
        'enable_seqscan',
        'statement_timeout',
        'client_min_messages',
        'replication',
        'search_path',
      ),
      fc.string({ minLength: 1, maxLength: 12 }).filter((k) => k !== 'options'),
    );
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.tuple(key, fc.string()), { selector: ([k]) => k, maxLength: 10 }),
        fc.constantFrom('drop', 'reject', 'pass' as const),
        (pairs, mode) => {
          const params = new Map(pairs);
          const r = filterStartupParams(params, mode);
          if (mode !== 'drop') return;
          const out = [...r.forward.keys(), ...r.dropped].sort();
          assert.deepEqual(out, [...params.keys()].sort());
          assert.equal(r.error, undefined);
        },
      ),
    );
  });

  it('property: options of any text never throws and yields only accepted parameters', () => {
    fc.assert(
      fc.property(fc.string(), (options) => {
        const r = filterStartupParams(new Map([['options', options]]), 'drop');
        for (const name of r.forward.keys()) assert.ok(isDsqlSettableParam(name), name);
        for (const d of r.dropped) assert.match(d, / \(from options\)$/);
      }),
    );
  });
});

describe('parseOptions', () => {
  it('reads -c name=value, -cname=value and --name=value, dashes as underscores', () => {
    assert.deepEqual(parseOptions('-c search_path=x  -cstatement-timeout=5s\t--enable-seqscan=off'), {
      settings: [
        { name: 'search_path', value: 'x' },
        { name: 'statement_timeout', value: '5s' },
        { name: 'enable_seqscan', value: 'off' },
      ],
      unusable: [],
    });
  });

  it('a backslash makes the next character literal', () => {
    assert.deepEqual(parseOptions('-c search_path=my\\ schema,\\\\x -c application_name=a\\b\\'), {
      settings: [
        { name: 'search_path', value: 'my schema,\\x' },
        { name: 'application_name', value: 'ab' },
      ],
      unusable: [],
    });
  });

  it('keeps = in values', () => {
    assert.deepEqual(parseOptions('--application_name=a=b').settings, [
      { name: 'application_name', value: 'a=b' },
    ]);
  });
});

describe('droppedNotice', () => {
  it('names the dropped parameters', () => {
    assert.equal(
      droppedNotice(['client_min_messages', 'statement_timeout']),
      'dsql-proxy did not forward startup parameters that Aurora DSQL does not accept: client_min_messages, statement_timeout',
    );
  });
});
