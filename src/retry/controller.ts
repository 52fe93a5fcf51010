/**
 * Transparent, provably safe retry of DSQL's optimistic-concurrency conflicts (SQLSTATE 40001).
 *
 * The rule (README, "Conflicts that never reach the client"): the client sees either exactly the
 * answers its work would have received had it sent it once, at the moment of the final attempt, or
 * the original 40001. Never a mix, never a write applied twice.
 *
 * How: with retry on, the session sends DSQL one request at a time (a Query, or an extended-protocol
 * batch through its Sync): later client bytes wait here until the answer before them is complete, so
 * no later request can run before an earlier one is retried. Each answer is held until its
 * ReadyForQuery (up to `bufferBytes`; past that, and for a request with a Flush or a COPY, it flows
 * as it comes and is not retried), then:
 * - no 40001: it goes to the client (and, inside a transaction, into the transaction's record);
 * - a 40001, the request was sent outside a transaction and the answer ends outside one (DSQL rolled
 *   the implicit transaction back; nothing committed): statement retry, the request is sent again;
 * - a 40001 inside BEGIN ... COMMIT: transaction retry. The failed transaction is ended, the record
 *   (every request since the transaction began, with the exact answer bytes the client received) is
 *   replayed hidden, and each answer compared byte for byte. All equal: the failed request is sent
 *   again. Any difference (the transaction read something that changed, a clock, random(), a
 *   sequence value): the replayed transaction is rolled back, the session is put back in the state the
 *   client expects (an aborted transaction unless the 40001 came at COMMIT), and the client gets the
 *   original 40001.
 * Only an explicit 40001 is retried: never a lost connection, a timeout or another error. At most
 * `attempts` sends in all, with exponential backoff and jitter from about 1 ms to at most 100 ms, never
 * past the session's statement_timeout; a CancelRequest from the client during a backoff ends the
 * retry with the original answer.
 */
import type { Clock } from '../core/clock.js';
import type { Metrics } from '../core/metrics.js';
import type { Logger } from '../log.js';
import { frontendClose, frontendQuery, frontendSync } from '../protocol/to-server.js';
import {
  type AnswerEvents,
  AnswerWalker,
  type RequestShape,
  type RequestSink,
  RequestWalker,
} from './walkers.js';

export const CONFLICT_RETRY_MODES = ['off', 'statements', 'transactions'] as const;
export type ConflictRetryMode = (typeof CONFLICT_RETRY_MODES)[number];

export interface RetrySettings {
  mode: Exclude<ConflictRetryMode, 'off'>;
  /** --conflict-retry-buffer: bytes of one request and its answer (or of a transaction's record) held. */
  bufferBytes: number;
  /** --conflict-retry-attempts: sends in all, the first included. */
  attempts: number;
}

/** What the controller needs from the relay it sits in. */
export interface RetryPort {
  writeUpstream(bytes: Buffer): void;
  /** Answers for the client: the relay scans and writes them. */
  deliver(bytes: Buffer): void;
  /** The transaction status the client saw last. */
  status(): string;
  pauseClient(): void;
  resumeClient(): void;
  /** The session's statement_timeout in ms (0: none). */
  statementTimeoutMs(): number;
}

type Outcome = 'succeeded' | 'mismatch' | 'exhausted' | 'too_large' | 'unreplayable' | 'cancelled';

interface Segment {
  bytes: Buffer;
  /** Set when the segment ends a request. */
  shape: RequestShape | undefined;
}

/** The request in flight. */
interface Current {
  sent: Buffer[];
  sentSize: number;
  complete: boolean;
  shape: RequestShape | undefined;
  statusBefore: string;
  answer: Buffer[];
  answerSize: number;
  /** Answers flow to the client as they come: not retried. */
  streaming: boolean;
  conflict: boolean;
  attempts: number;
  startedAt: number;
  /** Set once the request is being retried. */
  kind: 'statement' | 'transaction' | undefined;
  /** The client sent a CancelRequest while the request was being retried. */
  cancelled: boolean;
}

interface Recorded {
  request: Buffer;
  answer: Buffer;
  parsedNames: readonly string[];
}

interface TxnRecord {
  requests: Recorded[];
  size: number;
  /** Why it cannot be replayed, once it cannot. */
  spoiled: Outcome | undefined;
}

const BACKOFF_FIRST_MS = 1;
const BACKOFF_MAX_MS = 100;

export class ConflictRetry {
  private readonly requests = new RequestWalker();
  private readonly answers = new AnswerWalker();
  private readonly waiting: Segment[] = [];
  private waitingBytes = 0;
  private cur: Current | undefined;
  private txn: TxnRecord | undefined;
  /** A retry is under way (backoff, hidden exchanges): nothing else is sent. */
  private busy = false;
  /** Set while the layer reads an answer of its own (hidden exchange): where that answer goes. */
  private hidden: { chunks: Buffer[]; done: (answer: Buffer, status: string) => void } | undefined;
  private backoff: { timer: unknown; cancel: () => void } | undefined;
  /** A COPY FROM STDIN is under way: client bytes go straight through (see fromServer). */
  private copyIn = false;

  constructor(
    private readonly port: RetryPort,
    private readonly settings: RetrySettings,
    private readonly clock: Clock,
    private readonly metrics: Metrics,
    private readonly log: Logger,
  ) {}

  /** Client bytes (the relay's scanner has counted them): sent now, or when the answer before them is in. */
  fromClient(chunk: Buffer): void {
    this.walking = chunk;
    this.walkStart = 0;
    this.requests.requestEnds(chunk, this.sink);
    const start = this.walkStart;
    this.walking = undefined;
    if (start < chunk.length)
      this.waiting.push({ bytes: start === 0 ? chunk : chunk.subarray(start), shape: undefined });
    this.waitingBytes += chunk.length;
    this.pump();
  }

  /** The client chunk being walked and where its next segment starts (fromClient). */
  private walking: Buffer | undefined;
  private walkStart = 0;
  private readonly sink: RequestSink = {
    requestEnd: (end, shape) => {
      const chunk = this.walking!;
      const bytes =
        this.walkStart === 0 && end === chunk.length ? chunk : chunk.subarray(this.walkStart, end);
      this.waiting.push({ bytes, shape });
      this.walkStart = end;
    },
  };

  /** What the server chunk being walked holds (fromServer). */
  private readyAt = -1;
  private readyStatus = 'I';
  private readonly answerEvents: AnswerEvents = {
    ready: (end, status) => {
      if (this.readyAt < 0) {
        this.readyAt = end;
        this.readyStatus = status;
      }
    },
    error: (code) => {
      if (code === '40001' && this.cur && !this.hidden) this.cur.conflict = true;
    },
    copy: (inbound) => {
      if (this.cur && !this.hidden) this.stream(this.cur);
      // DSQL waits for the client's COPY data: the client's bytes flow unpaced until the COPY's
      // ReadyForQuery (requests the client pipelines behind it are then not retried).
      if (inbound) this.copyIn = true;
    },
  };
  /** The client's socket was paused because too much waits here. */
  private clientPaused = false;

  /** An answer the compatibility layer gave itself: the open transaction cannot be replayed. */
  foreignAnswer(): void {
    if (this.txn) this.txn.spoiled ??= 'unreplayable';
  }

  /** The client sent a CancelRequest: a retry waiting for its backoff gives up. */
  cancel(): void {
    if (this.cur?.kind) this.cur.cancelled = true;
    this.backoff?.cancel();
  }

  /** Nothing in flight or waiting (the relay's idle test). */
  get idle(): boolean {
    return this.cur === undefined && this.waiting.length === 0 && !this.busy;
  }

  private pump(): void {
    if (this.copyIn) {
      for (const seg of this.waiting.splice(0)) this.port.writeUpstream(seg.bytes);
      this.waitingBytes = 0;
      if (this.clientPaused) {
        this.clientPaused = false;
        this.port.resumeClient();
      }
      return;
    }
    while (this.waiting.length > 0 && !this.busy && !(this.cur?.complete ?? false)) {
      const seg = this.waiting.shift()!;
      this.waitingBytes -= seg.bytes.length;
      if (this.cur === undefined) this.cur = this.fresh();
      const cur = this.cur;
      this.port.writeUpstream(seg.bytes);
      if (cur.sentSize + seg.bytes.length <= this.settings.bufferBytes) cur.sent.push(seg.bytes);
      else cur.streaming = true;
      cur.sentSize += seg.bytes.length;
      if (seg.shape) {
        cur.complete = true;
        cur.shape = seg.shape;
        if (seg.shape.flush || seg.shape.copy) this.stream(cur);
      } else if (this.waiting.length === 0 && (this.requests.current.flush || this.requests.current.copy)) {
        // The client may wait for answers before it ends the request (Flush, COPY data).
        this.stream(cur);
      }
    }
    if (this.waitingBytes > this.settings.bufferBytes) {
      this.clientPaused = true;
      this.port.pauseClient();
    } else if (this.clientPaused) {
      this.clientPaused = false;
      this.port.resumeClient();
    }
  }

  private fresh(): Current {
    return {
      sent: [],
      sentSize: 0,
      complete: false,
      shape: undefined,
      statusBefore: this.port.status(),
      answer: [],
      answerSize: 0,
      streaming: false,
      conflict: false,
      attempts: 1,
      startedAt: this.clock.now(),
      kind: undefined,
      cancelled: false,
    };
  }

  /** The answer flows from now on; what was held goes first. */
  private stream(cur: Current): void {
    if (cur.streaming && cur.answer.length === 0) return;
    cur.streaming = true;
    if (cur.answer.length > 0) this.port.deliver(Buffer.concat(cur.answer));
    cur.answer = [];
    if (this.txn) this.txn.spoiled ??= 'too_large';
  }

  /** Bytes from DSQL. */
  fromServer(chunk: Buffer): void {
    const cur = this.cur;
    this.readyAt = -1;
    this.answers.walkAnswer(chunk, this.answerEvents);
    const readyAt = this.readyAt;
    const status = this.readyStatus;
    if (this.hidden) {
      this.hidden.chunks.push(chunk);
      if (readyAt >= 0) {
        const h = this.hidden;
        this.hidden = undefined;
        h.done(Buffer.concat(h.chunks), status);
      }
      return;
    }
    if (this.copyIn && readyAt >= 0) this.copyIn = false;
    else if (this.copyIn) this.pump();
    if (!cur || cur.streaming) {
      this.port.deliver(chunk);
      if (cur && readyAt >= 0) {
        if (cur.conflict)
          this.count(cur.statusBefore === 'I' ? 'statement' : 'transaction', 'too_large', cur.attempts);
        this.finish(cur, status, undefined);
      }
      return;
    }
    cur.answer.push(chunk);
    cur.answerSize += chunk.length;
    if (readyAt < 0) {
      if (cur.answerSize + cur.sentSize > this.settings.bufferBytes) this.stream(cur);
      return;
    }
    this.decide(cur, status);
  }

  private decide(cur: Current, after: string): void {
    const { mode } = this.settings;
    if (!cur.conflict || !cur.complete) {
      const outcome: Outcome = cur.cancelled ? 'cancelled' : 'succeeded';
      this.deliverFinal(cur, after, cur.kind && !cur.conflict ? { kind: cur.kind, outcome } : undefined);
      return;
    }
    if (cur.statusBefore === 'I' && after === 'I') {
      void this.retryStatement(cur);
      return;
    }
    if (mode === 'transactions' && cur.statusBefore !== 'I') {
      void this.retryTransaction(cur, after);
      return;
    }
    this.deliverFinal(cur, after, undefined);
  }

  /** The client gets the held answer; the request is done. */
  private deliverFinal(
    cur: Current,
    after: string,
    outcome: { kind: string; outcome: Outcome } | undefined,
  ): void {
    const answer = cur.answer.length === 1 ? cur.answer[0]! : Buffer.concat(cur.answer);
    cur.answer = [];
    if (outcome) this.count(outcome.kind, outcome.outcome, cur.attempts);
    this.port.deliver(answer);
    this.finish(cur, after, answer);
  }

  /** After the request's ReadyForQuery went to the client: the transaction's record, the next request. */
  private finish(cur: Current, after: string, answer: Buffer | undefined): void {
    if (this.settings.mode === 'transactions') this.record(cur, after, answer);
    this.cur = undefined;
    this.pump();
  }

  private record(cur: Current, after: string, answer: Buffer | undefined): void {
    if (cur.statusBefore === 'I' && after !== 'I') this.txn = { requests: [], size: 0, spoiled: undefined };
    const txn = this.txn;
    if (txn && after !== 'I') {
      if (answer === undefined || cur.streaming || !cur.complete) txn.spoiled ??= 'too_large';
      else {
        txn.size += cur.sentSize + answer.length;
        if (txn.size > this.settings.bufferBytes) txn.spoiled ??= 'too_large';
        else
          txn.requests.push({
            request: Buffer.concat(cur.sent),
            answer,
            parsedNames: cur.shape?.parsedNames ?? [],
          });
      }
    }
    if (after === 'I') this.txn = undefined;
  }

  // --- retries ---

  private async retryStatement(cur: Current): Promise<void> {
    const stop = this.giveUp(cur);
    if (stop) {
      this.deliverFinal(cur, 'I', { kind: 'statement', outcome: stop });
      return;
    }
    cur.kind = 'statement';
    this.busy = true;
    try {
      if (!(await this.sleep(cur))) {
        this.deliverFinal(cur, 'I', { kind: 'statement', outcome: 'cancelled' });
        return;
      }
      await this.closeStatements(cur.shape?.parsedNames ?? []);
      this.resend(cur);
      this.log.debug({ event: 'conflict_retry', kind: 'statement', attempt: cur.attempts });
    } finally {
      this.busy = false;
      this.pump();
    }
  }

  private async retryTransaction(cur: Current, after: string): Promise<void> {
    const txn = this.txn;
    const stop = txn === undefined ? 'unreplayable' : (txn.spoiled ?? this.giveUp(cur));
    if (stop || !txn) {
      this.deliverFinal(cur, after, { kind: 'transaction', outcome: stop ?? 'unreplayable' });
      return;
    }
    cur.kind = 'transaction';
    this.busy = true;
    try {
      if (!(await this.sleep(cur))) {
        this.deliverFinal(cur, after, { kind: 'transaction', outcome: 'cancelled' });
        return;
      }
      // The failed transaction ends (after a 40001 at COMMIT it has ended already).
      if (after !== 'I') await this.hiddenQuery('ROLLBACK');
      for (const rec of txn.requests) {
        await this.closeStatements(rec.parsedNames);
        const replayed = await this.exchange(rec.request);
        if (!replayed.equals(rec.answer)) {
          await this.restoreAfterMismatch(after);
          this.deliverFinal(cur, after, { kind: 'transaction', outcome: 'mismatch' });
          this.log.info({ event: 'conflict_retry_gave_up', kind: 'transaction', outcome: 'mismatch' });
          return;
        }
      }
      await this.closeStatements(cur.shape?.parsedNames ?? []);
      this.resend(cur);
      this.log.debug({ event: 'conflict_retry', kind: 'transaction', attempt: cur.attempts });
    } finally {
      this.busy = false;
      this.pump();
    }
  }

  /** Why the request is not tried again, or undefined to try it. */
  private giveUp(cur: Current): Outcome | undefined {
    if (cur.attempts >= this.settings.attempts) return 'exhausted';
    const timeout = this.port.statementTimeoutMs();
    if (timeout > 0 && this.clock.now() + BACKOFF_MAX_MS - cur.startedAt >= timeout) return 'exhausted';
    return undefined;
  }

  /** Sends the request again; its answer comes through fromServer like the first one. */
  private resend(cur: Current): void {
    cur.attempts++;
    cur.answer = [];
    cur.answerSize = 0;
    cur.conflict = false;
    this.port.writeUpstream(Buffer.concat(cur.sent));
  }

  /** Exponential backoff with full jitter; false when the client cancelled meanwhile. */
  private sleep(cur: Current): Promise<boolean> {
    const cap = Math.min(BACKOFF_MAX_MS, BACKOFF_FIRST_MS * 2 ** (cur.attempts - 1));
    const ms = cap / 2 + Math.random() * (cap / 2);
    return new Promise((resolve) => {
      const timer = this.clock.setTimeout(() => {
        this.backoff = undefined;
        resolve(true);
      }, ms);
      this.backoff = {
        timer,
        cancel: () => {
          this.clock.clearTimeout(timer);
          this.backoff = undefined;
          resolve(false);
        },
      };
    });
  }

  /**
   * A named statement a request created survives the failed attempt (prepared statements are not
   * transactional): it is closed first, so the request's own Parse succeeds again with the same answer.
   */
  private async closeStatements(names: readonly string[]): Promise<void> {
    if (names.length === 0) return;
    await this.exchange(Buffer.concat([...names.map((n) => frontendClose('S', n)), frontendSync()]));
  }

  private hiddenQuery(sql: string): Promise<Buffer> {
    return this.exchange(frontendQuery(sql));
  }

  /** Sends bytes of the layer's own and reads their answer through its ReadyForQuery. */
  private exchange(bytes: Buffer): Promise<Buffer> {
    return new Promise((resolve) => {
      this.hidden = { chunks: [], done: (answer) => resolve(answer) };
      this.port.writeUpstream(bytes);
    });
  }

  /**
   * After a mismatch DSQL holds the replayed transaction: it is rolled back, and when the client
   * expects an aborted transaction (the 40001 came before COMMIT) one is made, with an error of the
   * layer's own that the client never sees.
   */
  private async restoreAfterMismatch(after: string): Promise<void> {
    await this.hiddenQuery('ROLLBACK');
    if (after === 'E') {
      await this.hiddenQuery('BEGIN');
      await this.hiddenQuery('SELECT 1/0');
    }
  }

  private count(kind: string, outcome: Outcome, attempts: number): void {
    this.metrics.conflictRetries.inc({ kind, outcome });
    if (outcome === 'succeeded') this.metrics.conflictRetryAttempts.observe(attempts);
    if (outcome !== 'succeeded') this.log.info({ event: 'conflict_retry_gave_up', kind, outcome, attempts });
  }
}
