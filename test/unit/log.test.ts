import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { createLogger, redactSecrets } from '../../src/log.js';

const SECRET = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY';

/** A logger at trace level whose lines are collected as parsed JSON. */
function capture(): { log: ReturnType<typeof createLogger>; lines: () => Record<string, unknown>[] } {
  const chunks: string[] = [];
  const destination = new Writable({
    write(chunk, _enc, done) {
      chunks.push(String(chunk));
      done();
    },
  });
  const log = createLogger({ level: 'trace', destination });
  return {
    log,
    lines: () =>
      chunks
        .join('')
        .split('\n')
        .filter((l) => l.length > 0)
        .map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

describe('redactSecrets', () => {
  it('returns the same object when no field is named like a secret', () => {
    const obj = { event: 'accepted', client: '127.0.0.1:5432', nested: { a: 1, b: [1, 2] } };
    assert.equal(redactSecrets(obj), obj);
  });

  it('censors secret-named fields at the top, one and two levels down, without touching the input', () => {
    const obj = {
      password: SECRET,
      opts: { token: SECRET, host: 'h' },
      deep: { inner: { secretAccessKey: SECRET, keep: 'k' } },
      list: [{ sessionToken: SECRET }],
    };
    const out = redactSecrets(obj);
    assert.deepEqual(out, {
      password: '[redacted]',
      opts: { token: '[redacted]', host: 'h' },
      deep: { inner: { secretAccessKey: '[redacted]', keep: 'k' } },
      list: [{ sessionToken: '[redacted]' }],
    });
    assert.equal(obj.password, SECRET);
    assert.equal(obj.opts.token, SECRET);
    assert.equal(obj.deep.inner.secretAccessKey, SECRET);
    assert.equal(obj.list[0]?.sessionToken, SECRET);
  });

  it('stops below three levels, as the path list it replaces did (x, *.x, *.*.x)', () => {
    const obj = { a: { b: { c: { password: 'four levels down' } } } };
    assert.equal(redactSecrets(obj), obj);
  });

  it('keeps an Error an Error: prototype, message and stack survive the copy', () => {
    const err = Object.assign(new Error('boom'), { token: SECRET, code: 'E1' });
    const out = redactSecrets({ err }).err;
    assert.ok(out instanceof Error);
    assert.equal(out.message, 'boom');
    assert.equal(out.stack, err.stack);
    assert.equal((out as Error & { token: string }).token, '[redacted]');
    assert.equal(err.token, SECRET);
  });
});

describe('createLogger', () => {
  it('writes no secret-named value, in log fields, errors or child bindings', () => {
    const { log, lines } = capture();
    log.child({ credentials: { accessKeyId: 'AKIAEXAMPLE', secretAccessKey: SECRET } }).info({ event: 'x' });
    log.info({ event: 'login', password: SECRET, opts: { authToken: SECRET } });
    log.error({ err: Object.assign(new Error('failed'), { proof: SECRET }) });
    const text = JSON.stringify(lines());
    assert.ok(!text.includes(SECRET), text);
    assert.ok(!text.includes('AKIAEXAMPLE'), text);
    const [child, login, failed] = lines();
    assert.equal(child?.credentials, '[redacted]');
    assert.equal(login?.password, '[redacted]');
    assert.deepEqual(login?.opts, { authToken: '[redacted]' });
    const err = failed?.err as Record<string, unknown>;
    assert.equal(err.message, 'failed');
    assert.equal(err.proof, '[redacted]');
    assert.equal(err.type, 'Error');
  });
});
