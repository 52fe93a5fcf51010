/**
 * The admin HTTP server on a real socket: requests a web page could send (Origin, a foreign Host)
 * are refused before any path is served, and POST /quitquitquit works only when it was turned on.
 */
import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { AdminServer } from '../../src/admin/admin-server.js';
import { HealthState } from '../../src/admin/health.js';
import { adminAddress, dialable } from '../../src/admin/health-check.js';
import { Metrics } from '../../src/admin/metrics.js';
import { adminRequestProblem, hostName } from '../../src/admin/request-guard.js';
import { createLogger } from '../../src/log.js';
import { tempDir } from '../support/temp-dirs.js';

const servers: AdminServer[] = [];
const healths: HealthState[] = [];
after(async () => {
  await Promise.all(servers.map((s) => s.close()));
  for (const h of healths) h.close();
});

interface Started {
  port: number;
  quits: () => number;
  lines: Array<Record<string, unknown>>;
}

async function start(allowQuit: boolean, host = '127.0.0.1'): Promise<Started> {
  let quits = 0;
  const lines: Array<Record<string, unknown>> = [];
  const health = new HealthState([]);
  healths.push(health);
  const server = new AdminServer({
    health,
    metrics: new Metrics({ processMetrics: false }),
    logger: createLogger({
      level: 'trace',
      destination: { write: (l: string) => void lines.push(JSON.parse(l) as Record<string, unknown>) },
    }),
    beforeScrape: () => {},
    quit: () => {
      quits++;
    },
    allowQuit,
  });
  servers.push(server);
  const address = await server.listen(host, 0);
  return { port: address.port, quits: () => quits, lines };
}

/** A raw request, so Host and Origin can be set exactly as a browser or a probe would. */
function request(
  port: number,
  path: string,
  opts: { method?: string; headers?: Record<string, string>; connectTo?: string } = {},
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: opts.connectTo ?? '127.0.0.1',
        port,
        path,
        method: opts.method ?? 'GET',
        headers: opts.headers ?? {},
        agent: false,
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => {
          body += c;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

describe('admin server: cross-site and foreign-Host requests', () => {
  test('a cross-origin "simple" POST /quitquitquit is refused with 403 and does not quit', async () => {
    const s = await start(true);
    const res = await request(s.port, '/quitquitquit', {
      method: 'POST',
      headers: { origin: 'http://evil.example', 'content-type': 'text/plain', host: `127.0.0.1:${s.port}` },
    });
    assert.equal(res.status, 403);
    assert.match(res.body, /Origin/);
    assert.equal(s.quits(), 0);
    assert.ok(s.lines.some((l) => l.event === 'admin_refused' && l.path === '/quitquitquit'));
  });

  test('any Origin is refused, even a same-host one, and on GETs too', async () => {
    const s = await start(true);
    for (const origin of ['http://127.0.0.1:9801', 'null', 'http://localhost']) {
      assert.equal((await request(s.port, '/metrics', { headers: { origin } })).status, 403, origin);
    }
    assert.equal(s.quits(), 0);
  });

  test('DNS rebinding: a loopback bind refuses a Host that is a DNS name', async () => {
    const s = await start(true);
    const res = await request(s.port, '/quitquitquit', {
      method: 'POST',
      headers: { host: `rebind.evil.example:${s.port}` },
    });
    assert.equal(res.status, 403);
    assert.match(res.body, /Host/);
    assert.equal((await request(s.port, '/metrics', { headers: { host: 'evil.example' } })).status, 403);
    // A non-loopback IP is no loopback address either.
    assert.equal((await request(s.port, '/livez', { headers: { host: '10.0.0.7:9801' } })).status, 403);
    assert.equal(s.quits(), 0);
  });

  test('probes with the usual Host values are served', async () => {
    const s = await start(false);
    for (const host of [`127.0.0.1:${s.port}`, 'localhost', `LOCALHOST:${s.port}`, '[::1]:9801']) {
      assert.equal((await request(s.port, '/livez', { headers: { host } })).status, 200, host);
    }
    // node's default Host is the address it connected to.
    assert.equal((await request(s.port, '/livez')).status, 200);
    assert.equal((await request(s.port, '/metrics')).status, 200);
  });

  test('a wildcard bind accepts IP addresses (the kubelet probes the pod IP) but no DNS name', async () => {
    const s = await start(true, '0.0.0.0');
    for (const host of ['10.1.2.3:9801', '[fd00::5]:9801', '127.0.0.1', 'localhost:9801']) {
      assert.equal((await request(s.port, '/livez', { headers: { host } })).status, 200, host);
    }
    for (const host of ['evil.example', 'my-pod.ns.svc.cluster.local:9801']) {
      assert.equal((await request(s.port, '/livez', { headers: { host } })).status, 403, host);
    }
  });
});

describe('admin server: /quitquitquit is opt-in', () => {
  test('off (the default): 403 with the flag to turn it on, and the proxy keeps running', async () => {
    const s = await start(false);
    const res = await request(s.port, '/quitquitquit', { method: 'POST' });
    assert.equal(res.status, 403);
    assert.match(res.body, /--admin-quitquitquit/);
    assert.equal(s.quits(), 0);
  });

  test('on: a POST from a probe-like client starts the shutdown; GET does not', async () => {
    const s = await start(true);
    assert.equal((await request(s.port, '/quitquitquit')).status, 405);
    assert.equal(s.quits(), 0);
    const res = await request(s.port, '/quitquitquit', { method: 'POST' });
    assert.equal(res.status, 200);
    assert.equal(s.quits(), 1);
  });
});

describe('request guard', () => {
  test('hostName: ports, brackets and malformed values', () => {
    assert.equal(hostName('127.0.0.1:9801'), '127.0.0.1');
    assert.equal(hostName('[::1]:9801'), '::1');
    assert.equal(hostName('[::1]'), '::1');
    assert.equal(hostName('LocalHost'), 'localhost');
    assert.equal(hostName('[::1'), undefined);
    assert.equal(hostName('[evil.example]:80'), undefined);
    assert.equal(hostName('a b'), undefined);
    assert.equal(hostName('host:port:9'), undefined);
  });

  test('a request without Host (HTTP/1.0) names no other site and is served', () => {
    assert.equal(adminRequestProblem({}, '127.0.0.1'), undefined);
    assert.notEqual(adminRequestProblem({ origin: 'http://x' }, '127.0.0.1'), undefined);
  });

  test('a bind on a host name accepts that name', () => {
    assert.equal(adminRequestProblem({ host: 'proxy.internal:9801' }, 'proxy.internal'), undefined);
    assert.notEqual(adminRequestProblem({ host: 'other.internal:9801' }, 'proxy.internal'), undefined);
  });
});

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
