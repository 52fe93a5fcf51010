/**
 * SQL text the local endpoint has PostgreSQL run in place of (or after) a client's statement, so
 * that a refusal or a limit is raised by PostgreSQL itself: the error, its ReadyForQuery status, an
 * aborted transaction and the rest of a multi-statement Query then come out exactly as a server's
 * (docs/dsql.md). Pure functions over strings.
 */
import type { StatementVerdict } from './rules/classify.js';

/** DSQL's texts (docs/dsql.md, "Sources"). */
export const MSG_CONFLICT_OC000 = 'change conflicts with another transaction, please retry: (OC000)';
export const MSG_ROW_LIMIT = 'transaction row limit exceeded';

const MIB = 1024 * 1024;

/** `transaction size limit 10mb exceeded` for the default 10 MiB; a smaller test limit in its own unit. */
export function sizeLimitMessage(limitBytes: number): string {
  const mb = limitBytes / MIB;
  const shown = Number.isInteger(mb) ? `${mb}mb` : `${limitBytes}b`;
  return `transaction size limit ${shown} exceeded`;
}

/** `transaction age limit of 300s exceeded` for the default 5 minutes. */
export function ageLimitMessage(limitMs: number): string {
  const s = limitMs / 1000;
  return `transaction age limit of ${Number(s.toFixed(3))}s exceeded`;
}

/**
 * A dollar-quoted literal of `text` whose tag cannot be ended early by the text: no `$msg<n>` occurs
 * in it at all (stricter than needed: `...$msg` followed by the closing tag cannot happen either).
 */
export function dollarQuote(text: string): string {
  for (let n = 0; ; n++) {
    const open = `$msg${n === 0 ? '' : n}`;
    if (!text.includes(open)) return `${open}$${text}${open}$`;
  }
}

const SQLSTATE = /^[0-9A-Z]{5}$/;

/** Wraps a PL/pgSQL body in a DO block whose dollar tag occurs nowhere inside it. */
function doBlock(body: string): string {
  for (let n = 0; ; n++) {
    const open = `$door${n === 0 ? '' : n}`;
    if (!body.includes(open)) return `DO ${open}$${body}${open}$`;
  }
}

/** A statement that raises `sqlstate` with `message` (an ERROR, as the server would send it). */
export function raiseStatement(sqlstate: string, message: string): string {
  const code = SQLSTATE.test(sqlstate) ? sqlstate : '0A000';
  const quoted = dollarQuote(message);
  return doBlock(`BEGIN RAISE EXCEPTION USING ERRCODE = '${code}', MESSAGE = ${quoted}; END`);
}

/**
 * Run right after a write, in the same transaction: fails with 54000 once the transaction has
 * changed more than `limit` rows. pg_stat_xact_user_tables counts the inserts, updates and deletes
 * of the current transaction, including the statement that just ran (a test checks this), but also
 * those of earlier transactions of the session whose statistics are still pending: a backend flushes
 * them when idle at most once a second. So the check asks for a flush at the next idle moment
 * (pg_stat_force_next_flush(), PostgreSQL 15+, which every role may call by default; skipped where
 * it is missing or revoked): the next transaction then starts from zero. Writes the
 * classifier does not see (inside a function) are only flushed on PostgreSQL's own schedule, and can
 * count towards the next checked transaction.
 */
export function rowCheckStatement(limit: number): string {
  const quoted = dollarQuote(MSG_ROW_LIMIT);
  return doBlock(
    // Only where the function exists and may be called (an older or stricter PostgreSQL); PL/pgSQL
    // plans a statement when it first runs, so a branch not taken cannot fail.
    "BEGIN IF pg_catalog.to_regprocedure('pg_catalog.pg_stat_force_next_flush()') IS NOT NULL THEN " +
      "IF pg_catalog.has_function_privilege('pg_catalog.pg_stat_force_next_flush()', 'EXECUTE') THEN " +
      'PERFORM pg_catalog.pg_stat_force_next_flush(); END IF; END IF; ' +
      'IF (SELECT coalesce(sum(n_tup_ins + n_tup_upd + n_tup_del), 0) ' +
      `FROM pg_catalog.pg_stat_xact_user_tables) > ${Math.floor(limit)} THEN ` +
      `RAISE EXCEPTION USING ERRCODE = '54000', MESSAGE = ${quoted}; END IF; END`,
  );
}

/** A SQL string literal (standard_conforming_strings on, as DSQL has it): quotes doubled. */
export function stringLiteral(text: string): string {
  return `'${text.replaceAll("'", "''")}'`;
}

/**
 * `sys.iam_session_user()` becomes a scalar subquery over a text literal, so the result column keeps
 * the name `iam_session_user` (PostgreSQL names a scalar subquery's column after its target).
 */
export function iamSessionUserText(arn: string): string {
  return `(SELECT ${stringLiteral(arn)}::text AS iam_session_user)`;
}

/** The statement's text with the classifier's edits applied (offsets into `sql`). */
export function editedText(sql: string, verdict: StatementVerdict, arn: string): string {
  let out = '';
  let at = verdict.start;
  const edits = [...verdict.edits].sort((a, b) => a.start - b.start);
  for (const e of edits) {
    if (e.start < at || e.end > verdict.end || e.end < e.start) continue; // never trust overlaps
    out += sql.slice(at, e.start);
    out += e.kind === 'iam-session-user' ? iamSessionUserText(arn) : e.text;
    at = e.end;
  }
  return out + sql.slice(at, verdict.end);
}
