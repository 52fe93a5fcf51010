/**
 * A raw protocol client for the endpoint's tests: it shows what a driver hides (each message, the
 * error's fields including `W`, the ReadyForQuery status). TLS with SNI, cleartext password (token).
 */
import { connect as netConnect } from 'node:net';
import { type TLSSocket, connect as tlsConnect } from 'node:tls';
import { FrameStream } from '../../src/io/frame-stream.js';
import { decodeFields } from '../../src/local-endpoint/behind-door.js';
import { cstring, int32, typedMessage } from '../../src/protocol/message-writer.js';
import { frontendSSLRequest, frontendStartup } from '../../src/protocol/to-server.js';

export interface Msg {
  type: string;
  body: Buffer;
  /** ErrorResponse / NoticeResponse fields by their one-letter code. */
  fields?: Record<string, string>;
}

export class WireClient {
  private constructor(
    private readonly sock: TLSSocket,
    private readonly frames: FrameStream,
  ) {}

  static async connect(opts: {
    port: number;
    hostname: string;
    caPem: string;
    user: string;
    password: string;
  }): Promise<WireClient> {
    const raw = netConnect(opts.port, '127.0.0.1');
    raw.on('error', () => {});
    await new Promise((r) => raw.once('connect', r));
    const pre = new FrameStream(raw, () => new Error('closed'));
    raw.write(frontendSSLRequest());
    if ((await pre.peekByte()) !== 0x53) throw new Error('no TLS');
    pre.detach();
    const sock = tlsConnect({ socket: raw, servername: opts.hostname, ca: opts.caPem });
    sock.on('error', () => {});
    await new Promise((r) => sock.once('secureConnect', r));
    const frames = new FrameStream(sock, () => new Error('endpoint closed the connection'));
    const c = new WireClient(sock, frames);
    sock.write(frontendStartup({ user: opts.user, database: 'postgres' }));
    const auth = await frames.nextTyped(1 << 20);
    if (auth.type !== 0x52) throw new Error(`expected Authentication, got ${String.fromCharCode(auth.type)}`);
    sock.write(typedMessage(0x70, cstring(opts.password)));
    const login = await c.untilReady();
    const err = login.find((m) => m.type === 'E');
    if (err) throw new Error(`login failed: ${err.fields?.M}`);
    return c;
  }

  send(...messages: Buffer[]): void {
    this.sock.write(Buffer.concat(messages));
  }

  /** Reads messages up to and including the next ReadyForQuery. */
  async untilReady(): Promise<Msg[]> {
    const out: Msg[] = [];
    for (;;) {
      const f = await this.frames.nextTyped(1 << 30);
      const type = String.fromCharCode(f.type);
      const msg: Msg = { type, body: f.body };
      if (type === 'E' || type === 'N') {
        msg.fields = Object.fromEntries(decodeFields(f.body).map(([k, v]) => [String.fromCharCode(k), v]));
      }
      out.push(msg);
      if (type === 'Z') return out;
    }
  }

  /** The next single message (for copy-in: wait for CopyInResponse). */
  async next(): Promise<Msg> {
    const f = await this.frames.nextTyped(1 << 30);
    return { type: String.fromCharCode(f.type), body: f.body };
  }

  async query(sql: string): Promise<Msg[]> {
    this.send(q(sql));
    return this.untilReady();
  }

  close(): void {
    this.sock.end(typedMessage(0x58));
  }
}

export const q = (sql: string): Buffer => typedMessage(0x51, cstring(sql));
export const parse = (sql: string, name = ''): Buffer =>
  typedMessage(0x50, cstring(name), cstring(sql), Buffer.from([0, 0]));
export const bind = (portal = '', statement = ''): Buffer =>
  typedMessage(0x42, cstring(portal), cstring(statement), Buffer.from([0, 0, 0, 0, 0, 0]));
export const execute = (portal = ''): Buffer => typedMessage(0x45, cstring(portal), int32(0));
export const sync = (): Buffer => typedMessage(0x53);
export const copyData = (data: string | Buffer): Buffer => typedMessage(0x64, Buffer.from(data));
export const copyDone = (): Buffer => typedMessage(0x63);

/** The types of the messages, e.g. `1 2 C Z`. */
export const types = (msgs: Msg[]): string => msgs.map((m) => m.type).join(' ');
/** The ReadyForQuery status at the end. */
export const status = (msgs: Msg[]): string => String.fromCharCode(msgs.at(-1)?.body[0] ?? 0);
export const errorOf = (msgs: Msg[]): Record<string, string> | undefined =>
  msgs.find((m) => m.type === 'E')?.fields;
