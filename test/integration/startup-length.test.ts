/**
 * A startup packet of impossible length, through the real proxy process: PostgreSQL answers it with
 * nothing at all (logged, not sent) and closes, and so does dsql-proxy. The common case is benign:
 * node-postgres writes a Terminate before its StartupMessage when end() follows connect() at once.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { createScramVerifier } from '../../src/auth/scram.js';
import { type ProxyProcess, startProxyProcess, writeAuthFile } from '../support/proxy-process.js';
import { startTestStack, type TestStack } from '../support/stack.js';

let stack: TestStack;
let proxy: ProxyProcess;

before(async () => {
  stack = await startTestStack();
  const authFile = writeAuthFile([['app', createScramVerifier('pw-startup-length')]]);
  proxy = await startProxyProcess(stack, { args: ['--auth-file', authFile] });
});

after(async () => {
  await proxy?.stop();
  await stack?.stop();
});

/** Writes `packets` at once and returns every byte the proxy sent until it closed. */
function exchange(packets: Buffer[]): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(proxy.port, proxy.host);
    const got: Buffer[] = [];
    socket.on('connect', () => socket.write(Buffer.concat(packets)));
    socket.on('data', (d) => got.push(d));
    socket.on('error', reject);
    socket.on('close', () => resolve(Buffer.concat(got)));
    setTimeout(() => reject(new Error('the proxy did not close the connection')), 10_000).unref();
  });
}

const TERMINATE = Buffer.from([0x58, 0, 0, 0, 4]);

function lengthOnly(length: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeInt32BE(length);
  return b;
}

describe('a startup packet of impossible length is logged, not answered', () => {
  for (const [name, packet, length] of [
    ['Terminate before StartupMessage', TERMINATE, 0x58000000],
    ['length above 10,000', lengthOnly(10_001), 10_001],
    ['length below 4', lengthOnly(3), 3],
  ] as const) {
    test(`${name}: the proxy closes without a byte and logs it at info`, async () => {
      const answer = await exchange([packet]);
      assert.equal(answer.length, 0, `answered ${JSON.stringify(answer.toString('latin1'))}`);
      const line = await proxy.waitForLog(
        (l) =>
          l.event === 'refused' &&
          l.reason === 'STARTUP_LENGTH_INVALID' &&
          String(l.message).includes(`(${length};`),
      );
      assert.equal(line.level, 'info', 'info, not warn: a client closing early is not an incident');
      assert.equal(line.sqlstate, '08P01');
    });
  }

  test('after SSLRequest the same: only the N answer, then silence', async () => {
    const ssl = Buffer.from([0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f]);
    const socket = net.connect(proxy.port, proxy.host);
    const got: Buffer[] = [];
    socket.on('data', (d) => {
      got.push(d);
      if (Buffer.concat(got).length === 1) socket.write(TERMINATE);
    });
    await new Promise<void>((resolve, reject) => {
      socket.on('connect', () => socket.write(ssl));
      socket.on('error', reject);
      socket.on('close', () => resolve());
    });
    assert.equal(Buffer.concat(got).toString('latin1'), 'N');
  });
});
