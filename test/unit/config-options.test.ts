import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { helpText, OPTION_DOCS } from '../../src/config/index.js';
import { FILE_SCHEMA, VALUE_SCHEMAS } from '../../src/config/schema.js';

describe('OPTION_DOCS', () => {
  it('covers exactly the keys the schema accepts', () => {
    const documented = OPTION_DOCS.map((o) => o.key).sort();
    const accepted = [...new Set([...Object.keys(VALUE_SCHEMAS), ...Object.keys(FILE_SCHEMA.shape)])].sort();
    assert.deepEqual(documented, accepted);
  });

  it('derives env names from keys, except profile (AWS_PROFILE) and the file-only role-map and clusters', () => {
    for (const o of OPTION_DOCS) {
      const expected =
        o.key === 'profile'
          ? 'AWS_PROFILE'
          : o.key === 'role-map' || o.key === 'clusters'
            ? ''
            : `DSQL_PROXY_${o.key.toUpperCase().replace(/-/g, '_')}`;
      assert.equal(o.env, expected, o.key);
      assert.ok(o.description.length > 10, o.key);
      assert.ok(o.type.length > 0, o.key);
    }
  });

  it('helpText lists every flag with its env variable and default', () => {
    const help = helpText();
    for (const o of OPTION_DOCS) {
      if (o.env === '') {
        assert.match(help, new RegExp(`^  ${o.key}:`, 'm'));
        continue;
      }
      assert.match(help, new RegExp(`^  --${o.key} <`, 'm'), o.key);
      assert.ok(help.includes(o.env), o.env);
    }
    assert.match(help, /default 127\.0\.0\.1:5432/);
    assert.match(help, /flag > environment > config file > default/);
  });
});
