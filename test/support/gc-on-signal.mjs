// Test harness only (the soak): preloaded into the proxy process with
// `node --expose-gc --import <this file>`. Not part of the product.
// - SIGUSR2: a full garbage collection, then one log line with the memory still in use.
// - SIGWINCH: a heap snapshot, and one log line with the number of live objects of each of the
//   proxy's per-connection classes (it inflates RSS for a while, so the soak asks for it last).
import v8 from 'node:v8';

// The proxy's per-connection classes, taken from the modules that define them (the same module
// instances the proxy runs): the names counted are the classes' own, read at run time, so renaming a
// class cannot make the count silently 0; an export that is gone is reported as missing.
const PER_CONNECTION = [
  ['ClientSession', '../../dist/session/client-session.js'],
  ['MovableRelay', '../../dist/session/movable-relay.js'],
  ['Relay', '../../dist/relay/relay.js'],
  ['FrontendScanner', '../../dist/relay/frontend-scanner.js'],
  ['BackendScanner', '../../dist/relay/backend-scanner.js'],
];
// TimersList: Node's list per timeout duration; one left per session is a timer leak (see movable-relay.ts).
const NODE_INTERNAL = ['TimersList'];

/** export name -> the class's name in the heap (undefined: the module no longer exports it). */
async function classNames() {
  const out = {};
  for (const [exported, path] of PER_CONNECTION) {
    let cls;
    try {
      cls = (await import(new URL(path, import.meta.url).href))[exported];
    } catch {
      cls = undefined; // the module moved: reported as missing
    }
    out[exported] = typeof cls === 'function' && cls.name ? cls.name : undefined;
  }
  for (const name of NODE_INTERNAL) out[name] = name;
  return out;
}

process.on('SIGUSR2', () => {
  globalThis.gc({ type: 'major', execution: 'sync' });
  const m = process.memoryUsage();
  process.stderr.write(
    `${JSON.stringify({ event: 'test_gc_done', rss: m.rss, heap_used: m.heapUsed, external: m.external })}\n`,
  );
});

process.on('SIGWINCH', async () => {
  const names = await classNames();
  const missing = Object.keys(names).filter((k) => names[k] === undefined);
  const byHeapName = new Map(
    Object.entries(names)
      .filter(([, n]) => n !== undefined)
      .map(([k, n]) => [n, k]),
  );
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
    const counts = Object.fromEntries([...byHeapName.values()].map((k) => [k, 0]));
    for (let i = 0; i < snapshot.nodes.length; i += stride) {
      if (snapshot.nodes[i + typeAt] !== objectType) continue;
      const key = byHeapName.get(snapshot.strings[snapshot.nodes[i + nameAt]]);
      if (key !== undefined) counts[key]++;
    }
    process.stderr.write(`${JSON.stringify({ event: 'test_objects', counts, missing })}\n`);
  });
});
