/**
 * An extended-protocol batch the compatibility layer took: it began with the Parse of a statement the
 * layer answers, or a Bind of one it holds. The layer keeps such statements and their portals itself
 * ("virtual": DSQL never sees them) and answers Parse, Bind, Describe, Execute and Close for them as a
 * server would. Other messages in the same batch go to DSQL one at a time, each followed by a Flush
 * so its answer can be passed on in order. At the Sync the client gets one ReadyForQuery.
 */
import { BackendMessage, FrontendMessage } from '../protocol/constants.js';
import type { TypedFrame } from '../protocol/frame-reader.js';
import {
  frontendBind,
  frontendExecute,
  frontendFlush,
  frontendParse,
  frontendSync,
} from '../protocol/to-server.js';
import type { Frame } from './exchange.js';
import { actionOf, runLocal, type StatementContext, setConfigColumns } from './local.js';
import { isPlainBegin, noteDsqlParams } from './request.js';
import type { RequestIo } from './request-io.js';
import { type CompatStatement, classify, splitStatements } from './sql/statements.js';
import { ABORT_STATEMENT, isAsync, runQuery } from './upstream-ops.js';
import {
  BIND_COMPLETE,
  CLOSE_COMPLETE,
  cstringAt,
  encode,
  NO_DATA,
  NO_PARAMETERS,
  PARSE_COMPLETE,
  textRowDescription,
} from './wire.js';

/** The statement a Parse body holds if the layer answers it, else undefined. */
export function localStatement(
  body: Buffer,
  session: RequestIo['session'],
): { name: string; stmt: CompatStatement } | undefined {
  const name = cstringAt(body, 0);
  const text = name && cstringAt(body, name.next);
  if (!name || !text) return undefined;
  const parts = splitStatements(text.value);
  if (parts.length !== 1) return undefined;
  const stmt = classify(parts[0]!.text);
  noteDsqlParams([stmt], session);
  return actionOf(stmt) === 'local' ? { name: name.value, stmt } : undefined;
}

interface BatchState {
  ctx: StatementContext;
  failed: boolean;
  usedUpstream: boolean;
  /** DSQL itself answered with an error: it skips the rest of the batch until the Sync on its own. */
  dsqlFailed: boolean;
  /** The layer began a READ ONLY transaction for this batch (a READ ONLY session outside a block). */
  wrapped: boolean;
}

export async function runBatch(first: TypedFrame, io: RequestIo): Promise<'pass' | 'done'> {
  const passable =
    first.type !== FrontendMessage.Parse || localStatement(first.body, io.session) === undefined;
  if (passable && !io.session.defaultReadOnly) return 'pass';
  const st: BatchState = {
    ctx: {
      status: io.status,
      inTxn: io.status !== 'I',
      describe: false,
      client: io.client,
      up: () => io.up(),
    },
    failed: false,
    usedUpstream: false,
    dsqlFailed: false,
    wrapped: false,
  };
  let frame = first;
  for (;;) {
    if (frame.type === FrontendMessage.Sync) {
      await sync(st, io);
      return 'done';
    }
    if (!st.failed) {
      const ok = await message(frame, st, io);
      if (!ok) {
        st.failed = true;
        // Only the layer's own error needs the abort: after DSQL's error, DSQL ignores everything
        // until the Sync, so the abort statement would never be answered.
        if (st.usedUpstream && st.ctx.status === 'I' && !st.dsqlFailed) await abortBatch(io);
      }
    }
    frame = await io.nextFrame();
  }
}

async function sync(st: BatchState, io: RequestIo): Promise<void> {
  if (st.usedUpstream) {
    const up = io.up();
    up.write(frontendSync());
    for (;;) {
      const f = await up.next();
      if (f.type === BackendMessage.ReadyForQuery) {
        st.ctx.status = String.fromCharCode(f.body[0] ?? 73) as StatementContext['status'];
        break;
      }
      io.client.write(encode(f));
    }
  }
  if (st.wrapped) {
    const end = await runQuery(io.up(), st.ctx.status === 'T' ? 'COMMIT' : 'ROLLBACK', io.client, 'errors');
    st.ctx.status = end.status;
  }
  if (st.ctx.status === 'I') io.virtualPortals.clear();
  else io.virtualPortals.delete('');
  io.ready(st.ctx.status);
}

/** One message of the batch; false after an error (the rest is skipped until Sync, as a server does). */
async function message(frame: TypedFrame, st: BatchState, io: RequestIo): Promise<boolean> {
  const body = frame.body;
  switch (frame.type) {
    case FrontendMessage.Parse: {
      const local = localStatement(body, io.session);
      if (!local) {
        // DSQL's statement replaces a statement of the layer's by that name (often the unnamed one):
        // a later Bind must not find the old one.
        const name = cstringAt(body, 0);
        if (name) io.virtualStatements.delete(name.value);
        return forward(frame, [BackendMessage.ParseComplete], st, io);
      }
      io.virtualStatements.set(local.name, local.stmt);
      io.client.write(PARSE_COMPLETE);
      return true;
    }
    case FrontendMessage.Bind: {
      const portal = cstringAt(body, 0);
      const stmtName = portal && cstringAt(body, portal.next);
      const stmt = stmtName && io.virtualStatements.get(stmtName.value);
      if (!portal || !stmt) return forward(frame, [BackendMessage.BindComplete], st, io);
      io.virtualPortals.set(portal.value, stmt);
      io.client.write(BIND_COMPLETE);
      return true;
    }
    case FrontendMessage.Describe:
      return describe(frame, st, io);
    case FrontendMessage.Execute: {
      const portal = cstringAt(body, 0);
      const stmt = portal && io.virtualPortals.get(portal.value);
      if (!stmt) return forward(frame, EXECUTE_ENDS, st, io);
      return runLocal(stmt, st.ctx, io.session);
    }
    case FrontendMessage.Close: {
      const name = cstringAt(body, 1);
      const map = body[0] === 0x53 ? io.virtualStatements : io.virtualPortals;
      if (!name || !map.has(name.value)) return forward(frame, [BackendMessage.CloseComplete], st, io);
      map.delete(name.value);
      io.client.write(CLOSE_COMPLETE);
      return true;
    }
    case FrontendMessage.Flush:
      if (st.usedUpstream) io.up().write(frontendFlush());
      return true;
    default:
      // A Query or COPY message inside a batch: relayed, its answer passed on.
      return forward(frame, [], st, io);
  }
}

const EXECUTE_ENDS = [
  BackendMessage.CommandComplete,
  BackendMessage.EmptyQueryResponse,
  BackendMessage.PortalSuspended,
];
const DESCRIBE_ENDS = [BackendMessage.RowDescription, BackendMessage.NoData];

async function describe(frame: TypedFrame, st: BatchState, io: RequestIo): Promise<boolean> {
  const name = cstringAt(frame.body, 1);
  const isStatement = frame.body[0] === 0x53;
  const stmt = name && (isStatement ? io.virtualStatements : io.virtualPortals).get(name.value);
  if (!stmt) return forward(frame, DESCRIBE_ENDS, st, io);
  if (isStatement) io.client.write(NO_PARAMETERS);
  io.client.write(rowDescriptionOf(stmt));
  return true;
}

function rowDescriptionOf(stmt: CompatStatement): Buffer {
  if (stmt.kind === 'show') return textRowDescription([stmt.name]);
  if (stmt.kind === 'set-config') return textRowDescription(setConfigColumns(stmt));
  return NO_DATA;
}

/** Sends one message to DSQL with a Flush and passes its answers on until one of `ends` (or an error). */
async function forward(
  original: TypedFrame,
  ends: readonly number[],
  st: BatchState,
  io: RequestIo,
): Promise<boolean> {
  const up = io.up();
  const frame =
    !st.usedUpstream && io.session.defaultReadOnly ? await readOnlyStart(original, st, io) : original;
  st.usedUpstream = true;
  io.session.txnFresh = false;
  up.write(Buffer.concat([encode(frame), frontendFlush()]));
  if (ends.length === 0) return true;
  for (;;) {
    const f: Frame = await up.next();
    io.client.write(encode(f));
    if (f.type === BackendMessage.ErrorResponse) {
      st.dsqlFailed = true;
      return false;
    }
    if (ends.includes(f.type)) return true;
    if (!isAsync(f.type) && f.type === BackendMessage.ReadyForQuery) return true;
  }
}

/**
 * The first message of a READ ONLY session's batch that DSQL runs: outside a block, the batch runs in a
 * READ ONLY transaction the layer begins (and ends at the Sync), unless it begins or ends a
 * transaction itself; its own BEGIN becomes BEGIN READ ONLY.
 */
async function readOnlyStart(frame: TypedFrame, st: BatchState, io: RequestIo): Promise<TypedFrame> {
  const parsed = frame.type === FrontendMessage.Parse ? parseText(frame.body) : undefined;
  const stmt = parsed && parsed.text !== undefined ? classifyOne(parsed.text) : undefined;
  if (stmt && isPlainBegin(stmt)) {
    return { type: FrontendMessage.Parse, body: parseBody(parsed!.name, 'BEGIN READ ONLY', parsed!.rest) };
  }
  if (stmt?.kind === 'commit' || stmt?.kind === 'rollback' || st.ctx.status !== 'I') return frame;
  const begun = await runQuery(io.up(), 'BEGIN READ ONLY', io.client, 'errors');
  st.ctx.status = begun.status;
  st.wrapped = begun.error === undefined;
  return frame;
}

function parseText(body: Buffer): { name: string; text: string; rest: Buffer } | undefined {
  const name = cstringAt(body, 0);
  const text = name && cstringAt(body, name.next);
  if (!name || !text) return undefined;
  return { name: name.value, text: text.value, rest: body.subarray(text.next) };
}

function classifyOne(text: string): CompatStatement | undefined {
  const parts = splitStatements(text);
  return parts.length === 1 ? classify(parts[0]!.text) : undefined;
}

function parseBody(name: string, text: string, rest: Buffer): Buffer {
  return Buffer.concat([Buffer.from(`${name}\0${text}\0`, 'utf8'), rest]);
}

/**
 * The layer's own statement failed in a batch whose earlier messages DSQL already ran, outside a
 * transaction block: DSQL's implicit transaction must fail too, or the Sync would commit them.
 */
async function abortBatch(io: RequestIo): Promise<void> {
  const up = io.up();
  up.write(
    Buffer.concat([
      frontendParse('', ABORT_STATEMENT),
      frontendBind('', '', []),
      frontendExecute(''),
      frontendFlush(),
    ]),
  );
  for (;;) {
    const f = await up.next();
    if (f.type === BackendMessage.ErrorResponse) return;
    if (isAsync(f.type)) io.client.write(encode(f));
  }
}
