import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { adminAddress, dialable } from '../../src/admin/health-check.js';
import { tempDir } from '../support/temp-dirs.js';

describe('dsql-proxy health: the admin address', () => {
  test('flag > environment > config file, as for the proxy; a bare port is loopback', async () => {
    const dir = tempDir('health');
    try {
      const file = join(dir, 'proxy.yaml');
      writeFileSync(file, 'admin-listen: 127.0.0.2:7000\n');
      const env = { DSQL_PROXY_ADMIN_LISTEN: '0.0.0.0:9900', DSQL_PROXY_CONFIG: file };
      assert.deepEqual(await adminAddress(['--admin-listen', '9000'], env), {
        host: '127.0.0.1',
        port: 9000,
      });
      assert.deepEqual(await adminAddress(['--admin-listen=[::1]:9001'], env), { host: '::1', port: 9001 });
      assert.deepEqual(await adminAddress([], env), { host: '0.0.0.0', port: 9900 });
      assert.deepEqual(await adminAddress([], { DSQL_PROXY_CONFIG: file }), {
        host: '127.0.0.2',
        port: 7000,
      });
      assert.deepEqual(await adminAddress(['--config', file], {}), { host: '127.0.0.2', port: 7000 });
      await assert.rejects(adminAddress([], {}), /admin listener is off/);
      await assert.rejects(adminAddress(['--bogus'], {}), /unexpected argument/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a wildcard bind is asked on loopback of its family', () => {
    assert.deepEqual(dialable({ host: '0.0.0.0', port: 1 }), { host: '127.0.0.1', port: 1 });
    assert.deepEqual(dialable({ host: '::', port: 1 }), { host: '::1', port: 1 });
    assert.deepEqual(dialable({ host: '10.0.0.1', port: 1 }), { host: '10.0.0.1', port: 1 });
  });
});
