/**
 * Tokens are re-signed in the background before they expire: with a 5-second TTL, 20 seconds of new
 * connections all log in with a token that is valid when used, several distinct tokens are used, and
 * far fewer tokens are signed than connections made.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import pg from 'pg';
import { parseTokenValidity } from '../../src/token/signer.js';
import { type ProxyProcess, startProxyProcess } from '../support/proxy-process.js';
import { startTestStack, type TestStack } from '../support/stack.js';

let stack: TestStack;
let proxy: ProxyProcess;

before(async () => {
  stack = await startTestStack();
  proxy = await startProxyProcess(stack, { args: ['--token-ttl', '5', '--log-level', 'trace'] });
});

after(async () => {
  await proxy?.stop();
  await stack?.stop();
});

test('5 s tokens across 20 s of new connections', async () => {
  const start = Date.now();
  let connections = 0;
  while (Date.now() - start < 20_000) {
    const client = new pg.Client({ host: proxy.host, port: proxy.port, user: 'app', password: '' });
    await client.connect();
    const r = await client.query('select 1 as one');
    assert.deepEqual(r.rows, [{ one: 1 }]);
    await client.end();
    connections++;
    await new Promise((resolve) => setTimeout(resolve, 150));
  }
  const logins = stack.endpoint.logins.filter((l) => l.at >= start && l.user === 'app');
  assert.equal(logins.length, connections, 'every connection logged in upstream');
  for (const login of logins) {
    assert.equal(login.ok, true, `login refused: ${login.reason ?? ''}`);
    // The endpoint already enforces expiry; check the margin explicitly as well.
    const { expiresAt } = parseTokenValidity(login.token);
    assert.ok(login.at < expiresAt, 'token used before its end');
  }
  const distinct = new Set(logins.map((l) => l.token)).size;
  assert.ok(distinct >= 4, `several distinct tokens over 20 s (got ${distinct})`);
  assert.ok(distinct * 5 < connections, `far fewer tokens (${distinct}) than connections (${connections})`);
  // The background schedule kept a token ready: no client ever waited on a signing.
  const waits = proxy.logs.filter((l) => l.json?.event === 'token_wait');
  assert.equal(waits.length, 0, `clients waited on signing ${waits.length} times`);
  const refreshes = proxy.logs.filter(
    (l) => l.json?.event === 'token_refreshed' && l.json.action === 'DbConnect',
  );
  assert.ok(refreshes.length >= distinct - 1, 'the tokens came from background refreshes');
});
