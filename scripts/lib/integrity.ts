/**
 * The integrity run shared by `npm run integrity` (scripts/integrity.ts) and its CI variant
 * (test/integration/integrity.test.ts), through the real proxy process against the test stack:
 *
 * - COPY FROM STDIN of generated rows, hashed (sha256) as they are sent, then COPY TO STDOUT hashed as
 *   it arrives: the two digests must match (text COPY of int and base64-alphabet text round-trips
 *   byte for byte). The rows go in as COPYs of at most 2,500 rows (about 2.5 MB), each its own
 *   transaction, because DSQL changes at most 3,000 rows and 10 MiB in one (docs/dsql.md), and the
 *   local endpoint enforces that;
 * - large text values (100 MB in the full run) sent as a parameter and selected straight back
 *   (`select $1::text`), hashed both ways: one message that large in each direction, and nothing
 *   stored (DSQL stores at most 1 MiB in a column);
 * - all the while, another connection keeps many pipelined extended-protocol queries in flight
 *   (postgres.js sends Parse/Bind/Execute/Sync for each without waiting) and checks every answer.
 */
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import postgres from 'postgres';
import { type ProxyProcess, startProxyProcess } from '../../test/support/proxy-process.js';
import { startTestStack, type TestStack } from '../../test/support/stack.js';

export interface IntegrityOptions {
  copyBytes: number;
  valueBytes: number;
  values: number;
  log?: (line: string) => void;
}

export interface IntegrityReport {
  copy: {
    bytes: number;
    rows: number;
    sentSha256: string;
    receivedSha256: string;
    inMBs: number;
    outMBs: number;
  };
  /** Each value's round trip: up as a Bind parameter, back as a DataRow; MB/s counts both ways. */
  values: Array<{ bytes: number; sentSha256: string; receivedSha256: string; roundTripMBs: number }>;
  pipelined: { batches: number; queries: number; errors: number; firstError?: string };
  proxyAlive: boolean;
  crashed: number;
}

const ROW_PAYLOAD = 1000;
/** Rows per COPY FROM: under DSQL's 3,000 rows per transaction, and about 2.5 MB (under 10 MiB). */
const ROWS_PER_COPY = 2500;
const MB = 1024 * 1024;

function mbs(bytes: number, ms: number): number {
  return bytes / MB / (ms / 1000);
}

export async function runIntegrity(opts: IntegrityOptions): Promise<IntegrityReport> {
  const log = opts.log ?? (() => {});
  let stack: TestStack | undefined;
  let proxy: ProxyProcess | undefined;
  const sqls: postgres.Sql[] = [];
  try {
    stack = await startTestStack();
    await stack.postgres.query(`
      create unlogged table integrity_copy (id int, v text);
      grant all on integrity_copy to app;
    `);
    proxy = await startProxyProcess(stack);
    const connect = (): postgres.Sql => {
      const sql = postgres({
        host: proxy?.host,
        port: proxy?.port,
        user: 'app',
        database: 'postgres',
        max: 1,
        ssl: false,
        onnotice: () => {},
      });
      sqls.push(sql);
      return sql;
    };

    // The pipelined load: batches of 200 queries sent back to back, until the rest is done.
    const pipe = connect();
    const pipelined = { batches: 0, queries: 0, errors: 0 } as IntegrityReport['pipelined'];
    let done = false;
    const pipeline = (async () => {
      while (!done) {
        const base = pipelined.batches * 1000;
        const batch = Array.from({ length: 200 }, (_, i) =>
          pipe`select ${base + i}::int as i, md5(${String(base + i)}) as h`.then(([row]) => {
            const want = createHash('md5')
              .update(String(base + i))
              .digest('hex');
            if (row?.i !== base + i || row?.h !== want) throw new Error(`wrong answer for ${base + i}`);
          }),
        );
        const results = await Promise.allSettled(batch);
        for (const r of results) {
          if (r.status === 'rejected') {
            pipelined.errors++;
            pipelined.firstError ??= String((r.reason as Error)?.message ?? r.reason);
          } else pipelined.queries++;
        }
        pipelined.batches++;
        // A breath between batches: 2 cores are shared with the proxy, the endpoint and PostgreSQL.
        await new Promise((r) => setTimeout(r, 20));
      }
    })();

    // COPY FROM STDIN, hashing what is sent.
    const copy = connect();
    const block = Buffer.from(randomBytes(48 * 1024).toString('base64'), 'latin1');
    const sentHash = createHash('sha256');
    let sent = 0;
    let rows = 0;
    const t0 = performance.now();
    while (sent < opts.copyBytes) {
      const writable = await copy`copy integrity_copy (id, v) from stdin`.writable();
      for (let inCopy = 0; inCopy < ROWS_PER_COPY && sent < opts.copyBytes; ) {
        const lines: string[] = [];
        for (let k = 0; k < 500 && inCopy < ROWS_PER_COPY && sent < opts.copyBytes; k++, inCopy++) {
          const off = (rows * 7919) % (block.length - ROW_PAYLOAD);
          const line = `${rows}\t${block.toString('latin1', off, off + ROW_PAYLOAD)}\n`;
          lines.push(line);
          sent += line.length;
          rows++;
        }
        const chunk = Buffer.from(lines.join(''), 'latin1');
        sentHash.update(chunk);
        if (!writable.write(chunk)) await once(writable, 'drain');
      }
      writable.end();
      await once(writable, 'finish');
    }
    const inMs = performance.now() - t0;
    const sentSha256 = sentHash.digest('hex');
    log(`COPY FROM: ${rows} rows, ${(sent / MB).toFixed(0)} MB, ${mbs(sent, inMs).toFixed(1)} MB/s`);

    // COPY TO STDOUT in the order written (ORDER BY: DSQL refuses SET synchronize_seqscans).
    const recvHash = createHash('sha256');
    let received = 0;
    const t1 = performance.now();
    const readable = await copy`copy (select id, v from integrity_copy order by id) to stdout`.readable();
    for await (const chunk of readable as AsyncIterable<Buffer>) {
      recvHash.update(chunk);
      received += chunk.length;
    }
    const outMs = performance.now() - t1;
    const receivedSha256 = recvHash.digest('hex');
    log(`COPY TO: ${(received / MB).toFixed(0)} MB, ${mbs(received, outMs).toFixed(1)} MB/s`);

    // Large values as parameters, selected straight back (on a connection of their own).
    const big = connect();
    const values: IntegrityReport['values'] = [];
    for (let id = 0; id < opts.values; id++) {
      const value = randomBytes(Math.ceil((opts.valueBytes * 3) / 4))
        .toString('base64')
        .slice(0, opts.valueBytes);
      const sentValueSha = createHash('sha256').update(value).digest('hex');
      const ta = performance.now();
      const [row] = await big`select ${value}::text as v`;
      const tb = performance.now();
      const back = String(row?.v ?? '');
      values.push({
        bytes: back.length,
        sentSha256: sentValueSha,
        receivedSha256: createHash('sha256').update(back).digest('hex'),
        roundTripMBs: mbs(value.length + back.length, tb - ta),
      });
      log(`value ${id}: ${(value.length / MB).toFixed(0)} MB there and back in ${(tb - ta).toFixed(0)} ms`);
    }

    done = true;
    await pipeline;
    return {
      copy: {
        bytes: sent,
        rows,
        sentSha256,
        receivedSha256,
        inMBs: mbs(sent, inMs),
        outMBs: mbs(received, outMs),
      },
      values,
      pipelined,
      proxyAlive: proxy.child.exitCode === null && proxy.child.signalCode === null,
      crashed: proxy.logs.filter((l) => l.json?.event === 'session_crashed').length,
    };
  } finally {
    await Promise.all(sqls.map((s) => s.end({ timeout: 5 }).catch(() => {})));
    await proxy?.stop();
    await stack?.stop();
  }
}

export function integrityFailures(r: IntegrityReport): string[] {
  const out: string[] = [];
  if (r.copy.sentSha256 !== r.copy.receivedSha256) out.push('COPY round trip: checksums differ');
  for (const [i, v] of r.values.entries()) {
    if (v.sentSha256 !== v.receivedSha256) out.push(`value ${i}: checksums differ`);
  }
  if (r.pipelined.errors > 0)
    out.push(`${r.pipelined.errors} pipelined query errors: ${r.pipelined.firstError}`);
  if (r.pipelined.queries === 0) out.push('no pipelined queries ran');
  if (!r.proxyAlive) out.push('the proxy exited');
  if (r.crashed > 0) out.push(`${r.crashed} session_crashed log lines`);
  return out;
}

export function formatIntegrity(r: IntegrityReport): string {
  const lines = [
    `COPY round trip: ${(r.copy.bytes / MB).toFixed(0)} MB, ${r.copy.rows} rows; in ${r.copy.inMBs.toFixed(1)} MB/s, out ${r.copy.outMBs.toFixed(1)} MB/s`,
    `  sent     sha256 ${r.copy.sentSha256}`,
    `  received sha256 ${r.copy.receivedSha256}`,
  ];
  for (const [i, v] of r.values.entries()) {
    lines.push(
      `value ${i}: ${(v.bytes / MB).toFixed(1)} MB; round trip ${v.roundTripMBs.toFixed(1)} MB/s`,
      `  sent     sha256 ${v.sentSha256}`,
      `  received sha256 ${v.receivedSha256}`,
    );
  }
  lines.push(
    `pipelined: ${r.pipelined.batches} batches, ${r.pipelined.queries} queries, ${r.pipelined.errors} errors`,
    `proxy alive: ${r.proxyAlive}, session_crashed: ${r.crashed}`,
  );
  return lines.join('\n');
}
