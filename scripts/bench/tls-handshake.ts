/**
 * CPU cost of one client-side TLS login to PostgreSQL in Node.js, with nothing else around it:
 * TCP connect, SSLRequest, `S`, TLS handshake (SNI, the CA checked, one secure context reused), close.
 * This is what every new upstream connection costs the proxy (and the Node.js floor) before any
 * PostgreSQL message: the part of `pgbench -C` without reuse that a proxy cannot avoid.
 *
 * Compare with libpq's cost for the same handshake: the CPU time of `pgbench -C -S -c 1 -t N` with
 * `PGSSLMODE=require` minus that with `PGSSLMODE=disable`, divided by N (docs/benchmarks.md).
 *
 * It runs the logins two ways, in alternating rounds: with Node's default host-name check, and with
 * the proxy's (src/upstream/host-check.ts: OpenSSL's check on the leaf, without Node's JavaScript copy
 * of the certificate chain).
 *
 * usage: node --import tsx scripts/bench/tls-handshake.ts PG_PORT CA_FILE SERVERNAME [COUNT] [ROUNDS]
 */
import { readFileSync } from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import { connectCheckingLeaf } from '../../src/upstream/host-check.js';

const [port, caFile, servername, countArg, roundsArg] = process.argv.slice(2);
if (!port || !caFile || !servername) {
  process.stderr.write('usage: tls-handshake.ts PG_PORT CA_FILE SERVERNAME [COUNT] [ROUNDS]\n');
  process.exit(2);
}
const sni: string = servername;
const count = Number(countArg ?? 500);
const rounds = Number(roundsArg ?? 3);
type HostCheck = 'node' | 'proxy';
const secureContext = tls.createSecureContext({ ca: readFileSync(caFile) });
const SSL_REQUEST = Buffer.from([0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f]);

function login(check: HostCheck): Promise<void> {
  return new Promise((resolve, reject) => {
    const tcp = net.connect({ host: '127.0.0.1', port: Number(port), noDelay: true });
    tcp.once('error', reject);
    tcp.once('connect', () => tcp.write(SSL_REQUEST));
    tcp.once('data', (answer: Buffer) => {
      if (answer.length !== 1 || answer[0] !== 0x53) {
        reject(new Error('the server does not accept TLS'));
        return;
      }
      const options = { socket: tcp, servername: sni, secureContext };
      const socket = check === 'proxy' ? connectCheckingLeaf(options, sni) : tls.connect(options);
      socket.once('error', reject);
      socket.once('secureConnect', () => {
        socket.destroy();
        resolve();
      });
    });
  });
}

for (const check of ['node', 'proxy'] as const) {
  for (let i = 0; i < 50; i++) await login(check); // warm-up: compiled code, TLS tables
}
for (let round = 1; round <= rounds; round++) {
  // Either order in turn: the second of a pair runs on a warmer process.
  const order: HostCheck[] = round % 2 === 1 ? ['node', 'proxy'] : ['proxy', 'node'];
  for (const check of order) {
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    for (let i = 0; i < count; i++) await login(check);
    const cpu = process.cpuUsage(cpu0);
    const wallMs = performance.now() - t0;
    process.stdout.write(
      `round ${round}, ${check} host check: ${count} TLS logins: user ${(cpu.user / count).toFixed(0)} µs, ` +
        `system ${(cpu.system / count).toFixed(0)} µs, wall ${((wallMs * 1000) / count).toFixed(0)} µs each\n`,
    );
  }
}
