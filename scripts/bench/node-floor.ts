/**
 * The benchmark's "Node.js floor": the least a session pooler written in Node.js can do, so that the
 * benchmark can tell what Node.js itself costs from what dsql-proxy adds on top of it.
 *
 * It is not a proxy. No authentication, no parsing beyond the first packet's framing and the first
 * byte of a client packet, no logs, no metrics, no timeouts, no error answers (a failure closes the
 * client). It relies on what the benchmark's clients (pgbench, node-postgres) do: each sends its
 * SSLRequest, its startup packet and its Terminate in packets of their own. Per client it does what
 * dsql-proxy does in --pool-mode session, at the minimum:
 * - answers an SSLRequest with `N`;
 * - takes an idle upstream connection logged in with the same startup packet and answers the login
 *   itself (AuthenticationOk, the upstream's ParameterStatus messages, BackendKeyData,
 *   ReadyForQuery), or opens one (SSLRequest, TLS with SNI and the CA, the client's startup packet)
 *   and relays the server's answer;
 * - relays bytes both ways with backpressure;
 * - on Terminate closes the client, sends DISCARD ALL upstream and, after its ReadyForQuery, keeps the
 *   connection for the next client.
 *
 * With `--no-reuse` it keeps nothing: the Terminate goes upstream like any other message, and every
 * client gets a new upstream login, as dsql-proxy does in its default mode.
 *
 * usage: node --import tsx scripts/bench/node-floor.ts LISTEN_PORT PG_PORT CA_FILE SERVERNAME [--no-reuse]
 */
import { readFileSync } from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';

const [listenPort, pgPort, caFile, servername, flag] = process.argv.slice(2);
if (!listenPort || !pgPort || !caFile || !servername || (flag !== undefined && flag !== '--no-reuse')) {
  process.stderr.write('usage: node-floor.ts LISTEN_PORT PG_PORT CA_FILE SERVERNAME [--no-reuse]\n');
  process.exit(2);
}
const reuse = flag !== '--no-reuse';
// Built once, as dsql-proxy does: a context per connection would add its CA parsing to every login.
const secureContext = tls.createSecureContext({ ca: readFileSync(caFile) });

const SSL_REQUEST_CODE = 80877103;
const TERMINATE = 0x58; // 'X'

function message(type: string, body: Buffer): Buffer {
  const out = Buffer.alloc(5 + body.length);
  out.write(type, 0, 'latin1');
  out.writeInt32BE(4 + body.length, 1);
  body.copy(out, 5);
  return out;
}

const AUTH_OK = message('R', Buffer.alloc(4));
const BACKEND_KEY = message('K', Buffer.alloc(8, 1));
const READY_IDLE = message('Z', Buffer.from('I'));
const DISCARD_ALL = message('Q', Buffer.from('DISCARD ALL\0'));

/** True when `data` ends with a whole ReadyForQuery message. */
function endsReady(data: Buffer): boolean {
  const at = data.length - 6;
  return at >= 0 && data[at] === 0x5a && data.readInt32BE(at + 1) === 5;
}

/** The ParameterStatus ('S') messages of a login answer. */
function parameterStatuses(answer: Buffer): Buffer {
  const kept: Buffer[] = [];
  for (let at = 0; at + 5 <= answer.length; ) {
    const end = at + 1 + answer.readInt32BE(at + 1);
    if (answer[at] === 0x53) kept.push(answer.subarray(at, end));
    at = end;
  }
  return Buffer.concat(kept);
}

/** Reads until the data so far ends with ReadyForQuery. */
function untilReady(socket: tls.TLSSocket, done: (all: Buffer) => void): void {
  const chunks: Buffer[] = [];
  const onData = (chunk: Buffer): void => {
    chunks.push(chunk);
    const all = chunks.length === 1 ? chunk : Buffer.concat(chunks);
    if (!endsReady(all)) return;
    socket.off('data', onData);
    done(all);
  };
  socket.on('data', onData);
}

interface Upstream {
  socket: tls.TLSSocket;
  params: Buffer;
}

/** Idle upstream connections by the startup packet they logged in with. */
const idle = new Map<string, Upstream[]>();

function login(startup: Buffer): Promise<{ upstream: Upstream; answer: Buffer }> {
  return new Promise((resolve, reject) => {
    const tcp = net.connect({ host: '127.0.0.1', port: Number(pgPort), noDelay: true });
    tcp.once('error', reject);
    tcp.once('connect', () => {
      const request = Buffer.alloc(8);
      request.writeInt32BE(8);
      request.writeInt32BE(SSL_REQUEST_CODE, 4);
      tcp.write(request);
    });
    tcp.once('data', () => {
      const socket = tls.connect({ socket: tcp, servername, secureContext });
      socket.on('error', () => socket.destroy());
      socket.once('secureConnect', () => socket.write(startup));
      socket.once('close', () => reject(new Error('upstream closed during login')));
      untilReady(socket, (answer) =>
        resolve({ upstream: { socket, params: parameterStatuses(answer) }, answer }),
      );
    });
  });
}

async function serve(client: net.Socket, startup: Buffer): Promise<void> {
  const key = startup.toString('latin1');
  const list = idle.get(key);
  let upstream = list?.pop();
  while (upstream?.socket.destroyed) upstream = list?.pop();
  if (upstream) {
    client.write(Buffer.concat([AUTH_OK, upstream.params, BACKEND_KEY, READY_IDLE]));
  } else {
    const fresh = await login(startup).catch(() => undefined);
    if (!fresh) {
      client.destroy();
      return;
    }
    upstream = fresh.upstream;
    client.write(fresh.answer);
  }
  const { socket } = upstream;
  let kept = false;
  const toClient = (chunk: Buffer): void => {
    if (!client.write(chunk)) socket.pause();
  };
  const resumeUpstream = (): void => {
    socket.resume();
  };
  const resumeClient = (): void => {
    client.resume();
  };
  const upstreamGone = (): void => {
    client.destroy();
  };
  const detach = (): void => {
    socket.off('data', toClient);
    socket.off('drain', resumeClient);
    socket.off('close', upstreamGone);
  };
  socket.on('data', toClient);
  socket.on('drain', resumeClient);
  socket.once('close', upstreamGone);
  client.on('drain', resumeUpstream);
  client.on('data', (chunk: Buffer) => {
    if (reuse && chunk[0] === TERMINATE && chunk.length === 5) {
      kept = true;
      detach();
      client.destroy();
      socket.write(DISCARD_ALL);
      const entry = upstream;
      untilReady(socket, () => {
        const list = idle.get(key) ?? [];
        list.push(entry);
        idle.set(key, list);
      });
      return;
    }
    if (!socket.write(chunk)) client.pause();
  });
  client.once('close', () => {
    if (kept) return;
    detach();
    socket.destroy();
  });
  socket.resume();
  client.resume();
}

net
  .createServer((client) => {
    client.setNoDelay(true);
    client.on('error', () => client.destroy());
    const onFirst = (packet: Buffer): void => {
      if (packet.length === 8 && packet.readInt32BE(4) === SSL_REQUEST_CODE) {
        client.write('N');
        client.once('data', onFirst);
        return;
      }
      client.pause();
      void serve(client, packet);
    };
    client.once('data', onFirst);
  })
  .listen(Number(listenPort), '127.0.0.1');
