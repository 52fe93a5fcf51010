/**
 * The statements the compatibility layer answers or carries out itself, one handler per kind. Each
 * writes the client's answers (never a ReadyForQuery: the request's runner does) and returns false
 * after writing an ErrorResponse. PostgreSQL's semantics and texts throughout; the proxy's own
 * refusals (0A000) name what DSQL provides instead.
 */

import { isDsqlSessionParam } from '../dsql/limits.js';
import { ProxyError } from '../errors.js';
import type { ClientLink, UpstreamLink } from './exchange.js';
import { paramSpec } from './param-catalogue.js';
import { type ParamError, type ParamResult, paramClass } from './params.js';
import { runDeallocate, runExecute, runPrepare } from './prepared.js';
import { type CompatSession, kindOf, type TxnStatus } from './session-state.js';
import type { CompatStatement, TxnModes } from './sql/statements.js';
import { abortUpstream, runQuery } from './upstream-ops.js';
import {
  commandComplete,
  dataRow,
  encode,
  errorMessage,
  textRowDescription,
  warningMessage,
} from './wire.js';

export interface StatementContext {
  /** The transaction status as the client will see it after this statement (updated as it runs). */
  status: TxnStatus;
  /** Inside a transaction block: explicit, or the hidden one around a multi-statement Query. */
  readonly inTxn: boolean;
  /** Simple protocol: SHOW and set_config send their RowDescription with the rows. */
  readonly describe: boolean;
  readonly client: ClientLink;
  up(): UpstreamLink;
}

const TXN_NAMES: ReadonlySet<string> = new Set([
  'transaction_isolation',
  'transaction_read_only',
  'transaction_deferrable',
]);
const HANDLED = new Set(['carried', 'harmless', 'fixed']);

/** Carried out by the layer itself (see CompatSession.defaultReadOnly), not by SessionParams. */
const DEFAULT_READ_ONLY = 'default_transaction_read_only';

function handled(name: string): boolean {
  return TXN_NAMES.has(name) || name === DEFAULT_READ_ONLY || HANDLED.has(paramClass(name));
}

/** Whether the layer answers the statement ('local') or it goes to DSQL as it is ('upstream'). */
export function actionOf(stmt: CompatStatement): 'local' | 'upstream' {
  switch (stmt.kind) {
    case 'set':
    case 'reset':
      return handled(stmt.name) ? 'local' : 'upstream';
    case 'show':
      // Restricted names (log_*, lc_messages) have a value only DSQL knows.
      return TXN_NAMES.has(stmt.name) || (handled(stmt.name) && !paramSpec(stmt.name)?.restricted)
        ? 'local'
        : 'upstream';
    case 'set-config':
      return stmt.calls.some((c) => handled(c.name.toLowerCase())) || absentSetting(stmt)
        ? 'local'
        : 'upstream';
    case 'begin':
      return stmt.modes.isolation !== undefined && stmt.modes.isolation !== 'repeatable read'
        ? 'local'
        : 'upstream';
    case 'reset-all':
    case 'set-transaction':
    case 'lock':
    case 'prepare':
    case 'execute':
    case 'deallocate':
    case 'discard':
      return 'local';
    default:
      return 'upstream';
  }
}

const ABORTED = 'current transaction is aborted, commands ignored until end of transaction block';

export function pgError(sqlstate: string, message: string, detail?: string, hint?: string): ProxyError {
  return new ProxyError('COMPAT_STATEMENT_ERROR', { sqlstate, message, detail, hint });
}

export function refused(message: string, hint?: string): ProxyError {
  return new ProxyError('COMPAT_REFUSED', { message, hint });
}

/** Runs a 'local' statement. */
export async function runLocal(
  stmt: CompatStatement,
  ctx: StatementContext,
  s: CompatSession,
): Promise<boolean> {
  // Counted once: as 'refused' when the proxy refused it (fail), else as its kind.
  s.refusedLast = false;
  const ok = await answer(stmt, ctx, s);
  if (!s.refusedLast) s.count(kindOf(stmt));
  return ok;
}

async function answer(stmt: CompatStatement, ctx: StatementContext, s: CompatSession): Promise<boolean> {
  if (ctx.status === 'E') return fail(ctx, s, pgError('25P02', ABORTED));
  if ((stmt.kind === 'set' || stmt.kind === 'reset') && stmt.name === DEFAULT_READ_ONLY) {
    const on =
      stmt.kind === 'set' && stmt.value !== 'default' && parseBool(stmt.value[0]?.value.toLowerCase() ?? '');
    s.defaultReadOnly = on;
    return done(ctx, stmt.kind === 'set' ? 'SET' : 'RESET');
  }
  switch (stmt.kind) {
    case 'set':
      return TXN_NAMES.has(stmt.name)
        ? setTxnParam(stmt, ctx, s)
        : paramOutcome(
            ctx,
            s,
            stmt.value === 'default'
              ? s.params.set(stmt.name, 'default', stmt.local, ctx.inTxn)
              : s.params.set(stmt.name, stmt.value, stmt.local, ctx.inTxn),
            'SET',
          );
    case 'reset':
      return TXN_NAMES.has(stmt.name)
        ? done(ctx, 'RESET')
        : paramOutcome(ctx, s, s.params.reset(stmt.name, ctx.inTxn), 'RESET');
    case 'reset-all':
      return resetAll(ctx, s);
    case 'show':
      return show(stmt.name, ctx, s);
    case 'set-config':
      return setConfig(stmt, ctx, s);
    case 'begin':
      return fail(ctx, s, isolationRefusal(stmt.modes.isolation!, 'BEGIN'));
    case 'set-transaction':
      return setTransaction(stmt.modes, stmt.session, ctx, s);
    case 'lock':
      return lock(stmt.mode, ctx, s);
    case 'prepare':
    case 'execute':
    case 'deallocate':
      return prepared(stmt, ctx, s);
    case 'discard':
      return discard(stmt.what, ctx, s);
    default:
      throw new Error(`not a local statement: ${stmt.kind}`);
  }
}

/** Writes an error; inside a transaction block, DSQL's transaction is aborted too, as PostgreSQL's would be. */
export async function fail(ctx: StatementContext, s: CompatSession, err: ProxyError): Promise<false> {
  if (err.code === 'COMPAT_REFUSED') {
    s.count('refused');
    s.refusedLast = true;
  }
  s.log.info({ event: 'compat_refused', sqlstate: err.sqlstate, message: err.message });
  if (ctx.status === 'T') ctx.status = await abortUpstream(ctx.up(), ctx.client);
  ctx.client.write(errorMessage(err));
  return false;
}

function done(ctx: StatementContext, tag: string): true {
  ctx.client.write(commandComplete(tag));
  return true;
}

function paramError(e: ParamError): ProxyError {
  return e.sqlstate === '0A000'
    ? refused(e.message, e.hint)
    : pgError(e.sqlstate, e.message, e.detail, e.hint);
}

async function paramOutcome(
  ctx: StatementContext,
  s: CompatSession,
  r: ParamResult,
  tag: string,
): Promise<boolean> {
  if (!r.ok) return fail(ctx, s, paramError(r.error));
  if (r.warning && s.params.clientMinMessages !== 'error') {
    ctx.client.write(warningMessage(r.warning.sqlstate, r.warning.message, r.warning.hint));
  }
  s.onParamsChanged();
  return done(ctx, tag);
}

async function show(name: string, ctx: StatementContext, s: CompatSession): Promise<boolean> {
  const value =
    name === DEFAULT_READ_ONLY
      ? s.defaultReadOnly
        ? 'on'
        : 'off'
      : TXN_NAMES.has(name)
        ? txnShow(name, s)
        : s.params.show(name);
  if (value === undefined)
    return fail(ctx, s, pgError('42704', `unrecognized configuration parameter "${name}"`));
  if (ctx.describe) ctx.client.write(textRowDescription([name]));
  ctx.client.write(dataRow([value]));
  return done(ctx, 'SHOW');
}

function txnShow(name: string, s: CompatSession): string {
  if (name === 'transaction_isolation') return 'repeatable read';
  if (name === 'transaction_read_only') return s.txnReadOnly ? 'on' : 'off';
  return 'off';
}

/**
 * pg_dump's `SELECT set_config(name, ...) FROM pg_settings WHERE name = 'x'` for a setting DSQL does not
 * let a session set (restrict_nonsystem_relation_kind, since pg_dump 15.8/16.4/17.0): the query is
 * written to find no row on a server without the setting, and DSQL has none a session could set, so
 * the layer answers no row; DSQL itself refuses the query. Names the layer carries out are answered
 * with their row instead (setConfig).
 */
function absentSetting(stmt: Extract<CompatStatement, { kind: 'set-config' }>): boolean {
  if (stmt.shape !== 'pg-settings') return false;
  const name = stmt.calls[0]?.name.toLowerCase() ?? '';
  return !handled(name) && paramClass(name) !== 'dsql';
}

/** The columns a set_config SELECT answers with (the simple protocol's RowDescription). */
export function setConfigColumns(stmt: Extract<CompatStatement, { kind: 'set-config' }>): string[] {
  return stmt.calls.map((c) => c.column);
}

async function setConfig(
  stmt: Extract<CompatStatement, { kind: 'set-config' }>,
  ctx: StatementContext,
  s: CompatSession,
): Promise<boolean> {
  if (absentSetting(stmt)) {
    // No such row in DSQL's settings: the query's answer is empty, as from a server without it.
    if (ctx.describe) ctx.client.write(textRowDescription(setConfigColumns(stmt)));
    return done(ctx, 'SELECT 0');
  }
  const names = stmt.calls.map((c) => c.name.toLowerCase());
  if (names.some((n) => !handled(n))) {
    return fail(
      ctx,
      s,
      refused(
        'dsql-proxy cannot mix parameters it answers for with other parameters in one set_config query',
        'Call set_config for each parameter in a statement of its own.',
      ),
    );
  }
  const values: string[] = [];
  for (const call of stmt.calls) {
    const r = s.params.setConfig(call.name.toLowerCase(), call.value, call.isLocal, ctx.inTxn);
    if (!r.ok) return fail(ctx, s, paramError(r.error));
    values.push(r.shown);
  }
  s.onParamsChanged();
  if (ctx.describe) ctx.client.write(textRowDescription(setConfigColumns(stmt)));
  ctx.client.write(dataRow(values));
  return done(ctx, 'SELECT 1');
}

export function isolationRefusal(level: string, what: string): ProxyError {
  return refused(
    `${what} ISOLATION LEVEL ${level.toUpperCase()} is not supported on DSQL, which runs every transaction at REPEATABLE READ`,
    'DSQL runs every transaction at REPEATABLE READ (snapshot isolation, with optimistic concurrency: conflicting writes fail with 40001 at COMMIT). Ask for REPEATABLE READ or no level.',
  );
}

/** SET transaction_isolation / transaction_read_only / transaction_deferrable: SET TRANSACTION in other words. */
function setTxnParam(
  stmt: Extract<CompatStatement, { kind: 'set' }>,
  ctx: StatementContext,
  s: CompatSession,
): Promise<boolean> {
  if (stmt.value === 'default') return Promise.resolve(done(ctx, 'SET'));
  const v = stmt.value[0]?.value.toLowerCase() ?? '';
  const modes: TxnModes = {};
  if (stmt.name === 'transaction_isolation') modes.isolation = v;
  else if (stmt.name === 'transaction_read_only') modes.readOnly = parseBool(v);
  else modes.deferrable = parseBool(v);
  return setTransaction(modes, false, ctx, s);
}

function parseBool(v: string): boolean {
  return ['on', 'true', 'yes', '1', 't', 'y'].includes(v);
}

async function setTransaction(
  modes: TxnModes,
  session: boolean,
  ctx: StatementContext,
  s: CompatSession,
): Promise<boolean> {
  const what = session ? 'SET SESSION CHARACTERISTICS AS TRANSACTION' : 'SET TRANSACTION';
  if (modes.isolation !== undefined && modes.isolation !== 'repeatable read') {
    return fail(ctx, s, isolationRefusal(modes.isolation, what));
  }
  if (session) {
    // Carried out from now on: BEGIN becomes BEGIN READ ONLY, other statements run in a READ ONLY
    // transaction of their own (request.ts, batch.ts).
    if (modes.readOnly !== undefined) s.defaultReadOnly = modes.readOnly;
    return done(ctx, 'SET');
  }
  if (ctx.status === 'I') {
    ctx.client.write(warningMessage('25P01', 'SET TRANSACTION can only be used in transaction blocks'));
    return done(ctx, 'SET');
  }
  if (modes.readOnly === undefined || modes.readOnly === s.txnReadOnly) return done(ctx, 'SET');
  if (!s.txnFresh) {
    return modes.readOnly
      ? fail(
          ctx,
          s,
          refused(
            'SET TRANSACTION READ ONLY is supported by dsql-proxy only as the first statement of a transaction',
            'Use BEGIN READ ONLY, or SET TRANSACTION READ ONLY right after BEGIN.',
          ),
        )
      : fail(ctx, s, pgError('25001', 'transaction read-write mode must be set before any query'));
  }
  // Nothing has run in the transaction yet: begin it again with the mode DSQL is asked for.
  const up = ctx.up();
  await runQuery(up, 'ROLLBACK', ctx.client, true);
  const r = await runQuery(up, modes.readOnly ? 'BEGIN READ ONLY' : 'BEGIN', ctx.client, true);
  ctx.status = r.status;
  if (r.error) {
    ctx.client.write(encode(r.error));
    return false;
  }
  s.txnReadOnly = modes.readOnly;
  s.txnFresh = true;
  return done(ctx, 'SET');
}

async function lock(mode: string, ctx: StatementContext, s: CompatSession): Promise<boolean> {
  if (ctx.status === 'I' && !ctx.inTxn) {
    return fail(ctx, s, pgError('25P01', 'LOCK TABLE can only be used in transaction blocks'));
  }
  if (mode !== 'access share') {
    return fail(
      ctx,
      s,
      refused(
        `LOCK TABLE ... IN ${mode.toUpperCase()} MODE is not supported on DSQL`,
        'DSQL uses optimistic concurrency and takes no locks: a transaction that conflicts with another fails with 40001 at COMMIT, and retrying it is the way to serialize. dsql-proxy answers ACCESS SHARE locks itself, because a DSQL transaction already reads one consistent snapshot.',
      ),
    );
  }
  return done(ctx, 'LOCK TABLE');
}

async function resetAll(ctx: StatementContext, s: CompatSession): Promise<boolean> {
  s.params.resetAll(ctx.inTxn);
  s.onParamsChanged();
  const ok = await resetDsqlParams(ctx, s);
  return ok ? done(ctx, 'RESET') : false;
}

/** RESET of each DSQL parameter the session changed (DSQL accepts RESET of its own parameters). */
async function resetDsqlParams(ctx: StatementContext, s: CompatSession): Promise<boolean> {
  const names = [...s.dsqlTouched].filter((n) => isDsqlSessionParam(n));
  if (names.length === 0) return true;
  const sql = names.map((n) => `RESET ${quoteIdent(n)}`).join('; ');
  const r = await runQuery(ctx.up(), sql, ctx.client, true);
  ctx.status = r.status;
  if (r.error) {
    ctx.client.write(encode(r.error));
    return false;
  }
  if (!ctx.inTxn) s.dsqlTouched.clear();
  return true;
}

function quoteIdent(name: string): string {
  return /^[a-z_][a-z0-9_]*$/.test(name) ? name : `"${name.replaceAll('"', '""')}"`;
}

async function discard(
  what: 'all' | 'plans' | 'sequences' | 'temp',
  ctx: StatementContext,
  s: CompatSession,
): Promise<boolean> {
  if (what !== 'all') {
    // DSQL has no temporary tables; plans and sequence caches are the server's business: nothing the
    // session would notice is left to discard.
    return done(ctx, `DISCARD ${what === 'temp' ? 'TEMP' : what.toUpperCase()}`);
  }
  if (ctx.status !== 'I' || ctx.inTxn) {
    return fail(ctx, s, pgError('25001', 'DISCARD ALL cannot run inside a transaction block'));
  }
  s.params.discardAll();
  s.onParamsChanged();
  s.prepared.clear();
  const r = await runQuery(ctx.up(), 'DEALLOCATE ALL', ctx.client, true);
  if (r.error) {
    ctx.client.write(encode(r.error));
    return false;
  }
  s.onDeallocateAll();
  return (await resetDsqlParams(ctx, s)) ? done(ctx, 'DISCARD ALL') : false;
}

async function prepared(
  stmt: Extract<CompatStatement, { kind: 'prepare' | 'execute' | 'deallocate' }>,
  ctx: StatementContext,
  s: CompatSession,
): Promise<boolean> {
  const up = ctx.up();
  const outcome =
    stmt.kind === 'prepare'
      ? await runPrepare(stmt, s.prepared, up, ctx.client, ctx.status)
      : stmt.kind === 'execute'
        ? await runExecute(stmt, s.prepared, up, ctx.client, ctx.status)
        : await runDeallocate(stmt, s.prepared, up, ctx.client, ctx.status);
  ctx.status = outcome.status as TxnStatus;
  if (stmt.kind === 'deallocate' && stmt.name === null && outcome.ok) s.onDeallocateAll();
  if (!outcome.ok) {
    ctx.client.write(encode(outcome.error));
    return false;
  }
  return true;
}
