/**
 * The YAML parser is loaded only when a config file is read (src/config/yaml-file.ts): a process
 * configured by flags and environment, as most sidecars are, saves its resident memory. This file runs
 * in a process of its own (node --test), so nothing else has loaded the parser before it.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { loadConfig } from '../../src/config/index.js';

const EP = 'abcdefghijklmnopqrstuvwxyz.dsql.us-east-1.on.aws';
const dir = mkdtempSync(join(tmpdir(), 'dsql-proxy-yaml-lazy-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const cache = createRequire(import.meta.url).cache;
const yamlLoaded = (): boolean => Object.keys(cache).some((k) => k.includes('/node_modules/yaml/'));

test('flags and environment alone do not load the YAML parser; a config file does', () => {
  const flags = loadConfig(['--endpoint', EP, '--auth-method', 'trust'], {});
  assert.equal(flags.clusters[0]!.endpoints[0]?.hostname, EP);
  assert.equal(yamlLoaded(), false, 'yaml loaded without a config file');

  const path = join(dir, 'proxy.yaml');
  writeFileSync(path, `endpoint: ${EP}\nauth-method: trust\n`);
  const fromFile = loadConfig(['--config', path], {});
  assert.equal(fromFile.clusters[0]!.endpoints[0]?.hostname, EP);
  assert.equal(yamlLoaded(), true, 'yaml not loaded for a config file');
});
