// Test harness only (the soak): preloaded into the proxy process with
// `node --expose-gc --import <this file>`. Not part of the product.
// - SIGUSR2: a full garbage collection, then one log line with the memory still in use.
// - SIGWINCH: a heap snapshot, and one log line with the number of live objects of each of the
//   proxy's per-connection classes (it inflates RSS for a while, so the soak asks for it last).
import v8 from 'node:v8';

// TimersList: Node's list per timeout duration; one left per session is a timer leak (see live-session.ts).
const PER_CONNECTION = [
  'ClientSession',
  'LiveSession',
  'Relay',
  'FrontendScanner',
  'BackendScanner',
  'TimersList',
];

process.on('SIGUSR2', () => {
  globalThis.gc({ type: 'major', execution: 'sync' });
  const m = process.memoryUsage();
  process.stderr.write(
    `${JSON.stringify({ event: 'test_gc_done', rss: m.rss, heap_used: m.heapUsed, external: m.external })}\n`,
  );
});

process.on('SIGWINCH', () => {
  globalThis.gc({ type: 'major', execution: 'sync' });
  const chunks = [];
  const stream = v8.getHeapSnapshot();
  stream.on('data', (c) => chunks.push(c));
  stream.on('end', () => {
    const snapshot = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    const fields = snapshot.snapshot.meta.node_fields;
    const stride = fields.length;
    const typeAt = fields.indexOf('type');
    const nameAt = fields.indexOf('name');
    const objectType = snapshot.snapshot.meta.node_types[0].indexOf('object');
    const counts = Object.fromEntries(PER_CONNECTION.map((n) => [n, 0]));
    for (let i = 0; i < snapshot.nodes.length; i += stride) {
      if (snapshot.nodes[i + typeAt] !== objectType) continue;
      const name = snapshot.strings[snapshot.nodes[i + nameAt]];
      if (name in counts) counts[name]++;
    }
    process.stderr.write(`${JSON.stringify({ event: 'test_objects', counts })}\n`);
  });
});
