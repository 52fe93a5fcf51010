import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Metrics } from '../../src/core/metrics.js';

function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.split(' ')[1]);
}

describe('Metrics: relayed bytes', () => {
  it('reports the bytes counted since start, by direction, and counts each byte once across scrapes', async () => {
    const m = new Metrics({ processMetrics: false });
    m.bytesToServer.inc(100);
    m.bytesToServer.inc(23);
    m.bytesToClient.inc(4096);
    const first = await m.registry.metrics();
    assert.equal(sample(first, 'dsql_proxy_bytes_total{direction="client_to_server"}'), 123);
    assert.equal(sample(first, 'dsql_proxy_bytes_total{direction="server_to_client"}'), 4096);
    const again = await m.registry.metrics();
    assert.equal(sample(again, 'dsql_proxy_bytes_total{direction="client_to_server"}'), 123);
    m.bytesToClient.inc(4);
    const later = await m.registry.metrics();
    assert.equal(sample(later, 'dsql_proxy_bytes_total{direction="server_to_client"}'), 4100);
    assert.equal(sample(later, 'dsql_proxy_bytes_total{direction="client_to_server"}'), 123);
  });
});
