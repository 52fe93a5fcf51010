/**
 * The relay with the compatibility layer's gate (src/relay/relay.ts): client bytes before a wanted
 * request reach the server exactly once and in order, the wanted request and everything after it go
 * to the gate, giveBack() relays what the layer hands back, toClient() is counted as the server's,
 * whenAnswered() waits for every relayed request's ReadyForQuery, and a candidate split across
 * chunks is withheld, then relayed unchanged. The split sweep drives the relay through scripted
 * sockets so every chunking is exact; one test runs over real TCP sockets.
 */
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import type net from 'node:net';
import { after, describe, it } from 'node:test';
import type tls from 'node:tls';
import { readyForQuery } from '../../src/protocol/to-client.js';
import { Relay } from '../../src/relay/relay.js';
import { query, typed } from './frontend-builders.js';
import { ByteReader, closeAll, socketPair, waitFor } from './socket-pair.js';

after(closeAll);

/** Just what the relay calls on its sockets; 'data' is emitted by the test in chunks it chooses. */
class ScriptedSocket extends EventEmitter {
  written: Buffer[] = [];
  closed = false;
  writableCorked = 0;
  write(b: Buffer): boolean {
    this.written.push(Buffer.from(b));
    return true;
  }
  get all(): Buffer {
    return Buffer.concat(this.written);
  }
  pause(): this {
    return this;
  }
  resume(): this {
    return this;
  }
  cork(): void {}
  uncork(): void {}
  end(b?: Buffer): void {
    if (b) this.written.push(b);
  }
  destroy(): void {
    this.closed = true;
  }
}

const z = (s: string): Buffer => Buffer.from(`${s}\0`);
const parse = (sql: string): Buffer => typed('P', Buffer.concat([z(''), z(sql), Buffer.alloc(2)]));
const bind = (): Buffer => typed('B', Buffer.concat([z(''), z(''), Buffer.alloc(6)]));
const execute = (): Buffer => typed('E', Buffer.concat([z(''), Buffer.alloc(4)]));
const sync = (): Buffer => typed('S', Buffer.alloc(0));

interface Taken {
  take: Buffer[];
  later: Buffer[];
  asked: string[];
}

function gated() {
  const client = new ScriptedSocket();
  const upstream = new ScriptedSocket();
  const got: Taken = { take: [], later: [], asked: [] };
  const relay = new Relay(client as unknown as net.Socket, upstream as unknown as tls.TLSSocket, {
    gate: {
      wantsText: (sql) => {
        got.asked.push(sql);
        return sql.startsWith('set');
      },
      hasVirtual: () => false,
      wantsBind: () => false,
      take: (b) => got.take.push(Buffer.from(b)),
      onClientBytes: (b) => got.later.push(Buffer.from(b)),
    },
  });
  relay.start(Buffer.alloc(0), Buffer.alloc(0));
  return { client, upstream, relay, got };
}

// Two simple Queries and a batch go to DSQL; the third request is the layer's.
const before = [query('select 1'), parse('select $1'), bind(), execute(), sync(), query('select 22')];
const wanted = query('set a = 1');
const afterIt = [query('select 3'), parse('select 4'), sync()];
const stream = Buffer.concat([...before, wanted, ...afterIt]);
const cut = Buffer.concat(before).length;
/** Where each candidate (first message of a request) starts and ends. */
const candidates = (() => {
  const out: Array<[number, number]> = [];
  let at = 0;
  for (const [i, m] of [...before, wanted, ...afterIt].entries()) {
    if ([0, 1, 5, 6, 7, 8].includes(i)) out.push([at, at + m.length]);
    at += m.length;
  }
  return out;
})();

/** What the server should have after the client's first `n` bytes: up to an undecided candidate. */
function relayedAfter(n: number): number {
  const open = candidates.find(([s, e]) => s < n && n < e);
  return Math.min(open ? open[0] : n, cut);
}

describe('Relay with a gate: every split position of the client stream', () => {
  it('relays what comes before the wanted request exactly once, hands the rest to the gate', () => {
    for (let i = 0; i <= stream.length; i++) {
      for (let j = i; j <= stream.length; j += 11) {
        const { client, upstream, got } = gated();
        const chunks = [stream.subarray(0, i), stream.subarray(i, j), stream.subarray(j)];
        let seen = 0;
        for (const chunk of chunks) {
          if (chunk.length === 0) continue;
          client.emit('data', chunk);
          seen += chunk.length;
          if (got.take.length === 0) {
            // Withheld bytes are not relayed yet; nothing after the cut ever is.
            assert.equal(upstream.all.length, relayedAfter(seen), `split ${i}/${j} after ${seen}`);
          }
        }
        assert.deepEqual(upstream.all, stream.subarray(0, cut), `split ${i}/${j}: upstream`);
        assert.equal(got.take.length, 1, `split ${i}/${j}: one take`);
        assert.deepEqual(Buffer.concat([...got.take, ...got.later]), stream.subarray(cut), `split ${i}/${j}`);
        assert.ok(got.take[0]!.subarray(0, wanted.length).equals(wanted.subarray(0, got.take[0]!.length)));
        assert.deepEqual(got.asked, ['select 1', 'select $1', 'select 22', 'set a = 1']);
      }
    }
  });

  it('giveBack(rest, skipFirst) relays the rest unchanged, without asking about its first message', () => {
    for (let i = 0; i <= stream.length; i++) {
      const { client, upstream, relay, got } = gated();
      client.emit('data', stream.subarray(0, i));
      client.emit('data', stream.subarray(i));
      const rest = Buffer.concat([...got.take, ...got.later]);
      const askedBefore = got.asked.length;
      relay.giveBack(rest, true);
      assert.deepEqual(upstream.all, stream, `split ${i}`);
      assert.deepEqual(got.asked.slice(askedBefore), ['select 3', 'select 4'], `split ${i}`);
      assert.equal(relay.fromClient.requests, 6, 'Query, Sync, Query, set, Query, Sync');
      assert.equal(relay.fromClient.batchOpen, false);
    }
  });

  it('giveBack with a rest split by the layer: later client bytes are scanned on', () => {
    const { client, upstream, relay, got } = gated();
    client.emit('data', stream);
    const rest = Buffer.concat(got.take);
    relay.giveBack(rest.subarray(0, rest.length - 3), true);
    client.emit('data', rest.subarray(rest.length - 3));
    assert.deepEqual(upstream.all, stream);
  });
});

describe('Relay with a gate: answers', () => {
  it('whenAnswered resolves only once every relayed request has its ReadyForQuery', async () => {
    const { client, upstream, relay } = gated();
    client.emit('data', stream);
    assert.equal(relay.fromClient.requests, 3);
    let answered = false;
    void relay.whenAnswered().then(() => {
      answered = true;
    });
    const rfq = readyForQuery('I');
    upstream.emit('data', Buffer.concat([rfq, rfq]));
    await new Promise((r) => setImmediate(r));
    assert.equal(answered, false, 'two of three');
    // The last one split inside its header: still not answered until its last byte.
    upstream.emit('data', rfq.subarray(0, 3));
    await new Promise((r) => setImmediate(r));
    assert.equal(answered, false, 'the third ReadyForQuery is incomplete');
    upstream.emit('data', rfq.subarray(3));
    await new Promise((r) => setImmediate(r));
    assert.equal(answered, true);
    assert.deepEqual(client.all, Buffer.concat([rfq, rfq, rfq]));
    assert.equal(relay.isIdle(), false, 'the layer still owns the session');
  });

  it("toClient's bytes are counted by fromServer, as the server's would be", async () => {
    const { client, upstream, relay, got } = gated();
    client.emit('data', stream);
    upstream.emit('data', Buffer.concat([readyForQuery('I'), readyForQuery('I'), readyForQuery('I')]));
    await relay.whenAnswered();
    const answer = Buffer.concat([typed('C', z('SET')), readyForQuery('I')]);
    // As the engine's RequestIo.ready does: the request is counted, then answered.
    relay.fromClient.requests++;
    relay.toClient(answer);
    assert.equal(relay.fromServer.readyCount, 4);
    assert.ok(client.all.subarray(-answer.length).equals(answer));
    assert.equal(relay.isIdle(), false, 'still owned by the layer');
    relay.giveBack(Buffer.concat(got.take).subarray(wanted.length), false);
    assert.equal(relay.fromClient.requests, 6, 'select 3 and the Sync relayed');
    assert.equal(relay.isIdle(), false, 'two answers outstanding');
    upstream.emit('data', Buffer.concat([readyForQuery('I'), readyForQuery('I')]));
    assert.equal(relay.isIdle(), true);
  });
});

describe('Relay with a gate over real sockets', () => {
  it('a wanted request split across TCP writes is taken whole; the rest relayed after giveBack', async () => {
    const front = await socketPair();
    const back = await socketPair();
    const taken: Buffer[] = [];
    const relay = new Relay(front.server, back.client as tls.TLSSocket, {
      gate: {
        wantsText: (sql) => sql.startsWith('set'),
        hasVirtual: () => false,
        wantsBind: () => false,
        take: (b) => taken.push(b),
        onClientBytes: (b) => taken.push(b),
      },
    });
    relay.start(Buffer.alloc(0), Buffer.alloc(0));
    const serverReader = new ByteReader(back.server);
    const first = query('select 1');
    const rest = Buffer.concat([wanted, query('select 2')]);
    front.client.write(Buffer.concat([first, rest.subarray(0, 4)]));
    assert.deepEqual(await serverReader.bytes(first.length), first);
    front.client.write(rest.subarray(4));
    await waitFor(() => Buffer.concat(taken).length === rest.length);
    assert.deepEqual(Buffer.concat(taken), rest);
    relay.giveBack(Buffer.concat(taken), true);
    assert.deepEqual(await serverReader.bytes(rest.length), rest);
  });
});
