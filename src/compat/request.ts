/**
 * A simple Query the compatibility layer took. Its statements are split and classified; if none is
 * the layer's, the Query is relayed as it came ('pass'). Otherwise they run in order: runs of DSQL's
 * statements as one Query each, the layer's own answered by local.ts, and the answers merged so the
 * client sees one Query's answers. A multi-statement Query outside a transaction block is one
 * implicit transaction in PostgreSQL: the layer wraps it in a BEGIN/COMMIT of its own on DSQL, so an
 * error anywhere undoes all of it, and the parameters it set are undone as PostgreSQL would.
 */
import type { TypedFrame } from '../protocol/frame-reader.js';
import { actionOf, runLocal, type StatementContext } from './local.js';
import { paramClass } from './params.js';
import type { RequestIo } from './request-io.js';
import type { CompatSession } from './session-state.js';
import { type CompatStatement, classify, splitStatements } from './sql/statements.js';
import { runQuery } from './upstream-ops.js';

const TXN_CONTROL: ReadonlySet<string> = new Set(['begin', 'commit', 'rollback']);

export async function runSimpleQuery(frame: TypedFrame, io: RequestIo): Promise<'pass' | 'done'> {
  const text = frame.body.toString('utf8', 0, Math.max(0, frame.body.length - 1));
  const parts = splitStatements(text);
  const stmts = parts.map((p) => classify(p.text));
  noteDsqlParams(stmts, io.session);
  const readOnly = io.session.defaultReadOnly;
  const anyUpstream = stmts.some((s) => actionOf(s) === 'upstream');
  if (!readOnly && stmts.every((s) => actionOf(s) === 'upstream')) return 'pass';
  const multi = parts.length > 1;
  const start = io.status;
  const txnControl = stmts.some((s) => TXN_CONTROL.has(s.kind));
  // A READ ONLY session's statements outside a block run in a READ ONLY transaction of their own.
  const implicit = start === 'I' && !txnControl && (multi || (readOnly && anyUpstream));
  const texts = parts.map((p, i) => (readOnly && isPlainBegin(stmts[i]!) ? 'BEGIN READ ONLY' : p.text));
  const ctx: StatementContext = {
    status: start,
    // Follows the status as the statements run: a BEGIN earlier in the same Query opens the block
    // for the SET (or SET LOCAL) after it, and a COMMIT/ROLLBACK closes it.
    get inTxn() {
      return implicit || this.status !== 'I';
    },
    describe: true,
    client: io.client,
    up: () => io.up(),
  };
  if (implicit) {
    const begun = await runQuery(io.up(), readOnly ? 'BEGIN READ ONLY' : 'BEGIN', io.client, 'errors');
    ctx.status = begun.status;
    if (begun.error) {
      io.ready(ctx.status);
      return 'done';
    }
  }
  let ok = await runStatements(texts, stmts, ctx, io);
  if (implicit) {
    const end = await runQuery(io.up(), ok ? 'COMMIT' : 'ROLLBACK', io.client, 'errors');
    ctx.status = end.status;
    if (end.error) ok = false;
    io.session.params.endTransaction(ok);
  }
  io.ready(ctx.status);
  return 'done';
}

/** Runs the statements in order until one fails; true if all succeeded. */
async function runStatements(
  texts: readonly string[],
  stmts: readonly CompatStatement[],
  ctx: StatementContext,
  io: RequestIo,
): Promise<boolean> {
  let i = 0;
  while (i < stmts.length) {
    if (actionOf(stmts[i]!) === 'local') {
      if (!(await runLocal(stmts[i]!, ctx, io.session))) return false;
      i++;
      continue;
    }
    let j = i;
    while (j < stmts.length && actionOf(stmts[j]!) === 'upstream') j++;
    const sql = texts.slice(i, j).join(';\n');
    io.noteUpstreamText(sql);
    const rollback = stmts.slice(i, j).some((s) => s.kind === 'rollback');
    if (rollback) io.noteRollback();
    const before = ctx.status;
    const r = await runQuery(io.up(), sql, io.client, 'all');
    ctx.status = r.status;
    if (before !== 'I' && r.status === 'I') {
      // The client's COMMIT/ROLLBACK ended a block inside this Query. The watch may see 'I' before and
      // after the Query (BEGIN; SET ...; ROLLBACK) and end nothing, so the parameters learn it here.
      io.session.params.endTransaction(before === 'T' && !r.error && !rollback);
    }
    io.session.txnFresh = false;
    if (r.error) return false;
    i = j;
  }
  return true;
}

/** A BEGIN that does not choose READ WRITE or READ ONLY itself. */
export function isPlainBegin(stmt: CompatStatement): boolean {
  return stmt.kind === 'begin' && stmt.modes.readOnly === undefined;
}

/** DSQL's own parameters the session changes, so RESET ALL and DISCARD ALL can put them back. */
export function noteDsqlParams(stmts: readonly CompatStatement[], s: CompatSession): void {
  for (const st of stmts) {
    if ((st.kind === 'set' || st.kind === 'reset') && paramClass(st.name) === 'dsql')
      s.dsqlTouched.add(st.name);
    if (st.kind === 'set-config') {
      for (const c of st.calls)
        if (paramClass(c.name.toLowerCase()) === 'dsql') s.dsqlTouched.add(c.name.toLowerCase());
    }
  }
}
