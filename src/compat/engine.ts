/**
 * The compatibility layer on a session's path: the relay's scanner asks it about the first message of
 * each request (the first keyword of a Query or Parse: mightNeedCompat), and hands it the requests it
 * wants. It then waits until every earlier request has its answer, has the upstream connection to
 * itself, answers or carries out the request (simple protocol: request.ts; extended: batch.ts), and
 * gives the client's remaining bytes back to the relay. Everything else is relayed as before.
 */
import { ProxyError, toProxyError } from '../errors.js';
import { FrontendMessage } from '../protocol/constants.js';
import { FrameReader, type TypedFrame } from '../protocol/frame-reader.js';
import { errorFromProxyError, readyForQuery } from '../protocol/to-client.js';
import type { Relay } from '../relay/relay.js';
import { runBatch } from './batch.js';
import type { UpstreamLink } from './exchange.js';
import type { RequestIo } from './request-io.js';

export type { RequestIo };

import { runSimpleQuery } from './request.js';
import type { CompatSession, TxnStatus } from './session-state.js';
import type { CompatStatement } from './sql/statements.js';
import { mightNeedCompat } from './sql/statements.js';
import { SocketLink } from './upstream-link.js';
import type { SessionWatch } from './watch.js';
import { encode } from './wire.js';

/** PostgreSQL's own bound on a message. */
const MAX_MESSAGE = 0x3fffffff;
/** Client bytes the layer buffers while it works before it stops reading the client. */
const MAX_BUFFERED = 1024 * 1024;

export class CompatEngine {
  private relay: Relay | undefined;
  private readonly input = new FrameReader();
  private running = false;
  private wake: (() => void) | undefined;
  private link: SocketLink | undefined;
  readonly virtualStatements = new Map<string, CompatStatement>();
  readonly virtualPortals = new Map<string, CompatStatement>();
  /** Follows the requests the engine carries out (set by SessionCompat). */
  watch: SessionWatch | undefined;
  /** Text the engine sent DSQL for the client (runs of its statements): the relay's state notes it. */
  onUpstreamText: ((sql: string) => void) | undefined;

  constructor(readonly session: CompatSession) {}

  attach(relay: Relay): void {
    this.relay = relay;
  }

  // --- the relay's gate (RequestGate) ---

  wantsText(sql: string): boolean {
    return this.session.defaultReadOnly || mightNeedCompat(sql);
  }

  hasVirtual(): boolean {
    return this.session.defaultReadOnly || this.virtualStatements.size > 0;
  }

  wantsBind(statement: string): boolean {
    return this.session.defaultReadOnly || this.virtualStatements.has(statement);
  }

  /** A relayed Parse names a statement: a statement of the layer's by that name is replaced. */
  forgetStatement(name: string): void {
    if (this.virtualStatements.size > 0) this.virtualStatements.delete(name);
  }

  take(bytes: Buffer): void {
    this.watch?.noteRequest();
    this.input.push(bytes);
    if (!this.running) void this.loop();
  }

  onClientBytes(chunk: Buffer): void {
    this.input.push(chunk);
    if (this.input.buffered() > MAX_BUFFERED) this.relay?.pauseClient();
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }

  // --- one request ---

  private async loop(): Promise<void> {
    const relay = this.relay!;
    this.running = true;
    let skipFirst = false;
    let first: TypedFrame | undefined;
    try {
      await relay.whenAnswered();
      first = await this.nextFrame();
      const io = this.io(relay);
      this.session.answering = true;
      const outcome =
        first.type === FrontendMessage.Query ? await runSimpleQuery(first, io) : await runBatch(first, io);
      skipFirst = outcome === 'pass';
    } catch (err) {
      this.running = false;
      this.broken(err);
      return;
    } finally {
      this.session.answering = false;
      this.releaseUpstream();
    }
    this.running = false;
    const rest = this.input.takeRemaining();
    relay.resumeClient();
    relay.giveBack(skipFirst ? Buffer.concat([encode(first), rest]) : rest, skipFirst);
  }

  private io(relay: Relay): RequestIo {
    return {
      session: this.session,
      client: { write: (bytes) => relay.toClient(this.watch ? this.watch.rewrite(bytes) : bytes) },
      noteUpstreamText: (sql) => this.onUpstreamText?.(sql),
      noteRollback: () => this.watch?.noteRollback(),
      ready: (status) => {
        relay.fromClient.requests++;
        relay.toClient(readyForQuery(status));
      },
      status: relay.fromServer.status as TxnStatus,
      up: () => this.borrow(),
      nextFrame: () => this.nextFrame(),
      virtualStatements: this.virtualStatements,
      virtualPortals: this.virtualPortals,
    };
  }

  private borrow(): UpstreamLink {
    this.link ??= new SocketLink(this.relay!.borrowUpstream());
    return this.link;
  }

  private releaseUpstream(): void {
    const link = this.link;
    if (!link) return;
    this.link = undefined;
    link.release();
    if (!link.closed) this.relay!.returnUpstream();
  }

  async nextFrame(): Promise<TypedFrame> {
    for (;;) {
      const frame = this.input.nextTyped(MAX_MESSAGE);
      if (frame) return frame;
      this.relay!.resumeClient();
      await new Promise<void>((resolve) => {
        this.wake = resolve;
      });
    }
  }

  /** The request could not be carried to its end (upstream lost, malformed input): the session ends. */
  private broken(err: unknown): void {
    const e = toProxyError(err);
    this.session.log.warn({ event: 'compat_request_failed', code: e.code, message: e.message });
    const fatal =
      e.severity === 'FATAL'
        ? e
        : new ProxyError('UPSTREAM_CLOSED', {
            message: 'the DSQL connection failed while dsql-proxy carried out a statement',
            detail: e.message,
          });
    this.relay?.terminate(errorFromProxyError(fatal));
  }
}
