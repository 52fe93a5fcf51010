/**
 * The local endpoint's classifier: what Aurora DSQL refuses behind the door (docs/dsql.md), decided
 * per statement from SQL text. It has its own lexer on purpose: the proxy's compatibility layer must
 * never share one with it, so that a bug in one cannot hide a bug in the other.
 *
 * INTERFACE CONTRACT (shared by the classifier and the endpoint's wire layer; keep it stable):
 * - `classify(sql)` never throws, for any input.
 * - It returns one entry per top-level statement of a simple-protocol Query string (or the one
 *   statement of a Parse), in order, with `[start, end)` offsets into `sql` (UTF-16 code units, as
 *   JavaScript strings index) covering the statement's text without its terminating `;`.
 *   Empty statements (`;;`, comments only) are omitted.
 * - `refusal` is set when DSQL refuses the statement: the SQLSTATE and message DSQL sends.
 * - `writes` is true for statements that may modify table rows (INSERT, UPDATE, DELETE, MERGE,
 *   COPY ... FROM, SELECT ... INTO, CREATE TABLE ... AS, WITH containing any of these): the wire
 *   layer checks DSQL's per-transaction limits after them.
 * - `edits` are text substitutions the endpoint applies before PostgreSQL sees the statement
 *   (offsets into `sql`, non-overlapping, sorted): `CREATE INDEX ASYNC` -> `CREATE INDEX`,
 *   `sys.iam_session_user()` -> the session's ARN. `iamSessionUser` marks where the ARN goes.
 */

export interface Refusal {
  sqlstate: string;
  message: string;
}

export interface TextEdit {
  start: number;
  end: number;
  /** Replacement text; for `kind: 'iam-session-user'` the wire layer supplies it. */
  text: string;
  kind: 'replace' | 'iam-session-user';
}

export interface StatementVerdict {
  start: number;
  end: number;
  /** Lower-case first keyword (`select`, `set`, `begin`, ...), '' when none. */
  keyword: string;
  refusal?: Refusal;
  writes: boolean;
  edits: TextEdit[];
}

export function classify(sql: string): StatementVerdict[] {
  // Placeholder until the classifier lands: one statement, nothing refused.
  const trimmed = sql.trim();
  if (trimmed === '') return [];
  const keyword = /^[A-Za-z_]+/.exec(trimmed)?.[0]?.toLowerCase() ?? '';
  return [{ start: 0, end: sql.length, keyword, writes: false, edits: [] }];
}
