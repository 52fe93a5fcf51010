import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ProxyError } from '../../src/errors.js';
import { routeByDatabase } from '../../src/proxy.js';
import type { ClusterRoute } from '../../src/session/client-session.js';
import type { Connector } from '../../src/upstream/connector.js';

describe('routeByDatabase', () => {
  const cluster = (name: string): ClusterRoute => ({
    name,
    resolveRole: (u) => u,
    connector: {} as Connector,
  });

  it('one cluster takes any database name', () => {
    const route = routeByDatabase([cluster('default')]);
    assert.equal((route('postgres') as ClusterRoute).name, 'default');
    assert.equal((route('anything') as ClusterRoute).name, 'default');
  });

  it('several: by name; an unknown name is 3D000 listing the known ones', () => {
    const route = routeByDatabase([cluster('prod'), cluster('staging')]);
    assert.equal((route('prod') as ClusterRoute).name, 'prod');
    assert.equal((route('staging') as ClusterRoute).name, 'staging');
    const err = route('nope');
    assert.ok(err instanceof ProxyError);
    assert.equal(err.sqlstate, '3D000');
    assert.equal(err.message, 'database "nope" does not exist');
    assert.match(err.detail ?? '', /prod, staging/);
    assert.match(err.hint ?? '', /psql -d prod/);
    assert.ok(route('Prod') instanceof ProxyError, 'names are case-sensitive, as database names');
  });
});
