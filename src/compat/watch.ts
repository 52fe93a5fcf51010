/**
 * What the compatibility layer follows on every request of a session, relayed or its own:
 * - the end of each transaction (the ReadyForQuery status going back to 'I'), committed or rolled
 *   back, so the parameters it keeps follow PostgreSQL's transaction semantics;
 * - whether the open transaction has run anything but its BEGIN (SET TRANSACTION READ ONLY);
 * - the timeouts it carries out for DSQL, which refuses them: statement_timeout (a CancelRequest, then
 *   after a grace period the end of the session), idle_in_transaction_session_timeout,
 *   transaction_timeout and --client-idle-timeout (FATAL, as PostgreSQL).
 * One timer per session at most, re-armed lazily: a request that finishes early costs no timer call.
 */
import type { Clock } from '../core/clock.js';
import { ProxyError } from '../errors.js';
import { BackendMessage } from '../protocol/constants.js';
import { errorFromProxyError } from '../protocol/to-client.js';
import type { Relay } from '../relay/relay.js';
import { minLevelRank, rewriteCancelBody } from '../relay/server-filter.js';
import type { CompatSession, TxnStatus } from './session-state.js';

export interface WatchOptions {
  clock: Clock;
  /** --client-idle-timeout in ms (0: off). */
  clientIdleMs: number;
  /** --statement-timeout-grace in ms. */
  graceMs: number;
  /** Sends DSQL a CancelRequest for the session's running statement. */
  cancel: () => void;
}

/** `BEGIN` or `START TRANSACTION` alone (any modes), the whole of a request's text. */
const LONE_BEGIN = /^\s*(?:begin|start\s+transaction)\b[^;]*;?\s*$/i;
const READ_ONLY = /\bread\s+only\b/i;
const ROLLBACK = /^\s*(?:rollback|abort)\b/i;

export class SessionWatch {
  private relay: Relay | undefined;
  private status: TxnStatus = 'I';
  private beginSeen = false;
  private beginReadOnly = false;
  private rollbackSeen = false;
  private errorSeen = false;
  /** When the oldest unanswered request was sent, or undefined when none is. */
  private busySince: number | undefined;
  private idleSince: number;
  private txnSince = 0;
  /** A statement-timeout cancel is out: its 57014 says so, and the grace period runs. */
  private cancelAt: number | undefined;
  private timer: unknown;
  private timerAt = Number.POSITIVE_INFINITY;

  constructor(
    private readonly session: CompatSession,
    private readonly opts: WatchOptions,
  ) {
    this.idleSince = opts.clock.now();
  }

  attach(relay: Relay): void {
    this.relay = relay;
    this.applyFilter();
    this.arm();
  }

  get cancelling(): boolean {
    return this.cancelAt !== undefined;
  }

  /** A relayed Query or Parse text (the hot path: a few character tests). */
  noteStatement(sql: string | null): void {
    if (sql === null) return;
    const c = sql.charCodeAt(0) | 0x20;
    const maybe =
      c === 0x62 || c === 0x73 || c === 0x72 || c === 0x61 || c <= 0x20 || c === 0x2f || c === 0x2d;
    this.beginSeen = maybe && LONE_BEGIN.test(sql);
    this.beginReadOnly = this.beginSeen && READ_ONLY.test(sql);
    if (maybe && ROLLBACK.test(sql)) this.rollbackSeen = true;
  }

  /** The layer ran a ROLLBACK of the client's among other statements. */
  noteRollback(): void {
    this.rollbackSeen = true;
  }

  /** An ErrorResponse reached the client. */
  noteError(): void {
    this.errorSeen = true;
  }

  /** Client bytes were relayed, or the layer took a request: the session is busy. */
  noteRequest(): void {
    if (this.busySince === undefined) {
      this.busySince = this.opts.clock.now();
      if (this.timed) this.arm();
    }
  }

  /** After each ReadyForQuery the client gets (the relay's scanner counts it). */
  onReady(status: string, stillBusy: boolean): void {
    const prev = this.status;
    const next = status as TxnStatus;
    this.status = next;
    const s = this.session;
    if (prev !== 'I' && next === 'I') {
      s.params.endTransaction(prev === 'T' && !this.errorSeen && !this.rollbackSeen);
      s.txnFresh = false;
      s.txnReadOnly = false;
      this.applyFilter();
    } else if (prev === 'I' && next === 'T') {
      this.txnSince = this.opts.clock.now();
      if (this.beginSeen) {
        s.txnFresh = true;
        s.txnReadOnly = this.beginReadOnly;
      }
    } else if (next === 'T' && !s.answering) {
      s.txnFresh = false;
    }
    this.beginSeen = false;
    this.rollbackSeen = false;
    this.errorSeen = false;
    if (this.cancelAt !== undefined) {
      this.cancelAt = undefined;
      this.applyFilter();
    }
    const now = this.timed ? this.opts.clock.now() : 0;
    this.busySince = stillBusy ? now : undefined;
    this.idleSince = now;
    if (this.timed) this.arm();
  }

  /** A parameter the watch carries out changed (client_min_messages, the timeouts). */
  paramsChanged(): void {
    this.applyFilter();
    this.arm();
  }

  /** An answer the layer writes itself: a statement-timeout cancel's 57014 says so. */
  rewrite(bytes: Buffer): Buffer {
    if (this.cancelAt === undefined || bytes[0] !== BackendMessage.ErrorResponse) return bytes;
    return rewriteCancelBody(bytes.subarray(5)) ?? bytes;
  }

  stop(): void {
    if (this.timer !== undefined) this.opts.clock.clearTimeout(this.timer);
    this.timer = undefined;
    this.relay = undefined;
  }

  private get timed(): boolean {
    const p = this.session.params;
    return (
      p.statementTimeoutMs > 0 ||
      p.idleInTransactionTimeoutMs > 0 ||
      p.transactionTimeoutMs > 0 ||
      this.opts.clientIdleMs > 0
    );
  }

  private applyFilter(): void {
    const relay = this.relay;
    if (!relay) return;
    const level = this.session.params.clientMinMessages;
    const filtering = minLevelRank(level) > minLevelRank('notice');
    if (!filtering && this.cancelAt === undefined) relay.filterServer(undefined);
    else
      relay.filterServer({
        minLevel: filtering ? level : 'notice',
        rewriteCancel: this.cancelAt !== undefined,
      });
  }

  /** The earliest moment something may expire, or +Infinity. */
  private nextDeadline(): number {
    const p = this.session.params;
    let at = Number.POSITIVE_INFINITY;
    const consider = (limit: number, since: number | undefined): void => {
      if (limit > 0 && since !== undefined) at = Math.min(at, since + limit);
    };
    if (this.busySince !== undefined) {
      if (this.cancelAt !== undefined) consider(this.opts.graceMs, this.cancelAt);
      else consider(p.statementTimeoutMs, this.busySince);
    } else if (this.status === 'I') {
      consider(this.opts.clientIdleMs, this.idleSince);
    } else {
      consider(p.idleInTransactionTimeoutMs, this.idleSince);
    }
    if (this.status !== 'I') consider(p.transactionTimeoutMs, this.txnSince);
    return at;
  }

  private arm(): void {
    if (!this.relay) return;
    const at = this.nextDeadline();
    if (at >= this.timerAt) return;
    const { clock } = this.opts;
    if (this.timer !== undefined) clock.clearTimeout(this.timer);
    this.timer = undefined;
    this.timerAt = at;
    if (at === Number.POSITIVE_INFINITY) return;
    this.timer = clock.setTimeout(() => this.fire(), Math.max(0, at - clock.now()));
  }

  private fire(): void {
    this.timer = undefined;
    this.timerAt = Number.POSITIVE_INFINITY;
    if (!this.relay) return;
    const now = this.opts.clock.now();
    const p = this.session.params;
    if (this.status !== 'I' && p.transactionTimeoutMs > 0 && now - this.txnSince >= p.transactionTimeoutMs) {
      this.end('TRANSACTION_TIMEOUT', 'transaction');
      return;
    }
    if (this.busySince !== undefined) {
      if (this.cancelAt !== undefined && now - this.cancelAt >= this.opts.graceMs) {
        this.end('STATEMENT_TIMEOUT_UNANSWERED', 'statement_unanswered');
        return;
      }
      if (
        this.cancelAt === undefined &&
        p.statementTimeoutMs > 0 &&
        now - this.busySince >= p.statementTimeoutMs
      ) {
        this.cancelStatement(now);
      }
    } else if (this.status === 'I') {
      if (this.opts.clientIdleMs > 0 && now - this.idleSince >= this.opts.clientIdleMs) {
        this.end('IDLE_SESSION_TIMEOUT', 'idle_session');
        return;
      }
    } else if (p.idleInTransactionTimeoutMs > 0 && now - this.idleSince >= p.idleInTransactionTimeoutMs) {
      this.end('IDLE_IN_TRANSACTION_TIMEOUT', 'idle_in_transaction');
      return;
    }
    this.arm();
  }

  private cancelStatement(now: number): void {
    this.cancelAt = now;
    this.session.metrics.compatTimeouts.inc({ kind: 'statement' });
    this.session.log.info({ event: 'statement_timeout', timeout_ms: this.session.params.statementTimeoutMs });
    this.applyFilter();
    this.opts.cancel();
  }

  private end(
    code:
      | 'TRANSACTION_TIMEOUT'
      | 'STATEMENT_TIMEOUT_UNANSWERED'
      | 'IDLE_SESSION_TIMEOUT'
      | 'IDLE_IN_TRANSACTION_TIMEOUT',
    kind: string,
  ): void {
    const relay = this.relay!;
    this.session.metrics.compatTimeouts.inc({ kind });
    this.session.log.info({ event: 'session_timeout', kind });
    this.stop();
    relay.terminate(errorFromProxyError(new ProxyError(code)));
  }
}
