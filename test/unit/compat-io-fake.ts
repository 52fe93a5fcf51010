/**
 * A RequestIo (src/compat/request-io.ts) for the request runners' tests: a scripted upstream, a
 * recording client, and what the runners report (ready statuses, texts sent, rollbacks).
 */
import type { RequestIo } from '../../src/compat/request-io.js';
import { CompatSession, type TxnStatus } from '../../src/compat/session-state.js';
import type { CompatStatement } from '../../src/compat/sql/statements.js';
import { Metrics } from '../../src/core/metrics.js';
import { silentLogger } from '../../src/log.js';
import type { TypedFrame } from '../../src/protocol/frame-reader.js';
import { be, errorFields, RecordingClient, ScriptedUpstream } from './compat-prepared-fake.js';

const metrics = new Metrics({ processMetrics: false });

export function newSession(): CompatSession {
  return new CompatSession(
    new Map(),
    { statementTimeoutMs: 0, idleInTransactionTimeoutMs: 0 },
    metrics,
    silentLogger(),
    () => {},
    () => {},
  );
}

export interface FakeIo {
  io: RequestIo;
  up: ScriptedUpstream;
  client: RecordingClient;
  readies: TxnStatus[];
  texts: string[];
  rollbacks: number;
  borrowed: number;
}

export function fakeIo(
  answers: Buffer[][],
  opts: {
    status?: TxnStatus;
    session?: CompatSession;
    frames?: TypedFrame[];
    virtualStatements?: Map<string, CompatStatement>;
  } = {},
): FakeIo {
  const up = new ScriptedUpstream(answers);
  const client = new RecordingClient();
  const frames = [...(opts.frames ?? [])];
  const out: FakeIo = {
    io: undefined as unknown as RequestIo,
    up,
    client,
    readies: [],
    texts: [],
    rollbacks: 0,
    borrowed: 0,
  };
  out.io = {
    session: opts.session ?? newSession(),
    client,
    status: opts.status ?? 'I',
    up: () => {
      out.borrowed++;
      return up;
    },
    nextFrame: () => {
      const f = frames.shift();
      return f ? Promise.resolve(f) : Promise.reject(new Error('the client sent nothing more'));
    },
    noteUpstreamText: (sql) => out.texts.push(sql),
    // As the engine does: the request is counted and answered with one ReadyForQuery.
    ready: (status) => {
      out.readies.push(status);
      client.write(be.rfq(status));
    },
    noteRollback: () => out.rollbacks++,
    virtualStatements: opts.virtualStatements ?? new Map(),
    virtualPortals: new Map(),
  };
  return out;
}

/** The client's messages as "type" or "type:detail" (CommandComplete tags, error codes, statuses). */
export function summary(client: RecordingClient): string[] {
  return client.messages().map(([t, body]) => {
    if (t === 'C') return `C:${body.toString('utf8', 0, body.length - 1)}`;
    if (t === 'Z') return `Z:${body.toString('latin1')}`;
    if (t === 'E' || t === 'N') {
      return `${t}:${errorFields(body).C}`;
    }
    return t;
  });
}
