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
 *
 * Details of this implementation the wire layer can rely on:
 * - A statement's range runs from its first token to its last (leading and trailing whitespace and
 *   comments are outside it), except that a comment left unterminated at the end of the text is
 *   inside the last statement's range, with `unterminated` set: PostgreSQL rejects such text with a
 *   syntax error, so pass it on as it is rather than cut the comment off.
 * - `CREATE INDEX ASYNC`: DSQL starts a background job and answers at once with a one-row result, a
 *   text column `job_id` holding the job's id (watched in `sys.jobs`, awaited with
 *   `sys.wait_for_job(id)`; https://docs.aws.amazon.com/aurora-dsql/latest/userguide/working-with-create-index-async.html).
 *   The verdict has `asyncIndex: true` and an edit deleting the `ASYNC` word, so PostgreSQL builds
 *   the index synchronously (the endpoint does not emulate `sys.jobs`).
 * - Refusals carry the rule's name (`rule`); the rules, their messages, sources and which of them
 *   DSQL has published are in catalogue.ts (`RULES`). Every SQLSTATE is 0A000, none is published.
 * - Session parameter names in messages are lower case for unquoted names, as PostgreSQL folds them.
 */
// The one list of parameters DSQL accepts (a fact, shared on purpose; the lexer and rules are not).
import { isDsqlSessionParam } from '../../dsql/limits.js';
import { type RuleName, ruleInfo, ruleMessage } from './catalogue.js';
import { decodeUnicodeEscapes, lex, splitStatements, type Token } from './lexer.js';

export { RULES, type RuleInfo, type RuleName } from './catalogue.js';

export interface Refusal {
  sqlstate: string;
  message: string;
  /** The classifier rule that refused the statement (catalogue.ts). */
  rule?: RuleName;
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
  /** `CREATE [UNIQUE] INDEX ASYNC`: DSQL answers it with a `job_id` row (see above). */
  asyncIndex?: true;
  /** The statement ends in an unterminated string, quoted identifier or comment. */
  unterminated?: true;
}

/** PostgreSQL truncates identifiers to NAMEDATALEN - 1 bytes; messages quote at most this many characters. */
const MAX_NAME = 63;

/** A name cut to MAX_NAME characters, never in the middle of a surrogate pair. */
function clip(name: string): string {
  const chars = Array.from(name);
  return chars.length <= MAX_NAME ? name : chars.slice(0, MAX_NAME).join('');
}

export function classify(sql: string): StatementVerdict[] {
  try {
    return splitStatements(sql, lex(sql)).map((s) => {
      const v = classifyStatement(sql, s.tokens);
      const verdict: StatementVerdict = {
        start: s.start,
        end: s.end,
        keyword: v.keyword,
        writes: v.writes,
        edits: v.edits,
      };
      if (v.refusal !== undefined) verdict.refusal = v.refusal;
      if (v.asyncIndex) verdict.asyncIndex = true;
      if (s.unterminated) verdict.unterminated = true;
      return verdict;
    });
  } catch {
    // Unreachable by design (the lexer and rules are total), but the contract is "never throws":
    // one unrefused statement over the whole text lets PostgreSQL judge it.
    return sql.trim() === '' ? [] : [{ start: 0, end: sql.length, keyword: '', writes: false, edits: [] }];
  }
}

interface Verdict {
  keyword: string;
  refusal: Refusal | undefined;
  writes: boolean;
  edits: TextEdit[];
  asyncIndex: boolean;
}

/** A cursor over one statement's tokens. */
class Tokens {
  constructor(
    readonly sql: string,
    readonly t: readonly Token[],
  ) {}

  /** The lower-case word at `i`, or undefined when the token there is not an unquoted word. */
  word(i: number): string | undefined {
    const tok = this.t[i];
    return tok?.kind === 'word' ? tok.lower : undefined;
  }

  op(i: number): string | undefined {
    const tok = this.t[i];
    return tok?.kind === 'op' ? tok.lower : undefined;
  }

  /** An identifier's name at `i`: a word (folded) or a quoted identifier (as written). */
  name(i: number): string | undefined {
    const tok = this.t[i];
    if (tok?.kind === 'word' || tok?.kind === 'qident') return tok.lower;
    return undefined;
  }

  /** Whether the words at `i`, `i + 1`... are `words`. */
  words(i: number, ...words: string[]): boolean {
    return words.every((w, k) => this.word(i + k) === w);
  }

  /** Index of the first word in `set` at paren depth 0 from `from`, or -1. */
  findTop(from: number, set: ReadonlySet<string>): number {
    let depth = 0;
    for (let i = from; i < this.t.length; i++) {
      const o = this.op(i);
      if (o === '(') depth++;
      else if (o === ')') depth = Math.max(0, depth - 1);
      else if (depth === 0 && set.has(this.word(i) ?? '')) return i;
    }
    return -1;
  }

  get length(): number {
    return this.t.length;
  }
}

function refuse(rule: RuleName, fill?: Record<string, string>): Refusal {
  return { sqlstate: ruleInfo(rule).sqlstate, message: ruleMessage(rule, fill), rule };
}

function paramRefusal(name: string): Refusal {
  return refuse('set-parameter', { name: clip(name) });
}

function classifyStatement(sql: string, tokens: readonly Token[]): Verdict {
  const t = new Tokens(sql, tokens);
  const keyword = t.word(0) ?? '';
  const edits: TextEdit[] = [];
  const asyncIndex = { value: false };
  // The statement's own rule first; then rules that look anywhere inside a statement.
  let refusal = statementRule(t, keyword, edits, asyncIndex);
  refusal ??= anywhereRules(t);
  addIamSessionUserEdits(t, edits);
  edits.sort((a, b) => a.start - b.start);
  return { keyword, refusal, writes: writes(t, keyword), edits, asyncIndex: asyncIndex.value };
}

function statementRule(
  t: Tokens,
  keyword: string,
  edits: TextEdit[],
  asyncIndex: { value: boolean },
): Refusal | undefined {
  switch (keyword) {
    case 'set':
      return setRule(t);
    case 'reset':
      return resetRule(t);
    case 'lock':
      return refuse('lock');
    case 'prepare':
      // PREPARE TRANSACTION (two-phase commit) is another statement, left to PostgreSQL.
      return t.word(1) === 'transaction' ? undefined : refuse('prepare');
    case 'deallocate': {
      const k = t.word(1) === 'prepare' ? 2 : 1;
      return t.word(k) === 'all' && t.length === k + 1 ? undefined : refuse('deallocate');
    }
    case 'discard':
      return refuse('discard');
    case 'listen':
      return refuse('listen-notify', { kind: 'Listen' });
    case 'unlisten':
      return refuse('listen-notify', { kind: 'Unlisten' });
    case 'notify':
      return refuse('listen-notify', { kind: 'Notify' });
    case 'savepoint':
      return refuse('savepoint');
    case 'release':
      return refuse('savepoint');
    case 'rollback':
    case 'abort': {
      let k = 1;
      if (t.word(k) === 'work' || t.word(k) === 'transaction') k++;
      return t.word(k) === 'to' ? refuse('savepoint') : undefined;
    }
    case 'declare':
      // At the top level DECLARE only ever declares a cursor.
      return refuse('cursor');
    case 'begin':
    case 'start':
      return isolationRule(t, keyword === 'start' ? 2 : 1);
    case 'copy':
      return copyRule(t);
    case 'truncate':
      return refuse('truncate');
    case 'vacuum':
      return refuse('vacuum');
    case 'load':
      return refuse('load');
    case 'do':
      return doRule(t);
    case 'create':
      return createRule(t, edits, asyncIndex);
    case 'alter':
      return t.word(1) === 'table' ? tableDefinitionRules(t, 2) : undefined;
    case 'select':
      return selectIntoTempRule(t);
    default:
      return undefined;
  }
}

/**
 * `SET [SESSION | LOCAL] name {TO | =} value | DEFAULT`, and the special forms `SET TIME ZONE`,
 * `SET SCHEMA`, `SET NAMES`, `SET ROLE`, `SET SESSION AUTHORIZATION`, `SET TRANSACTION`,
 * `SET SESSION CHARACTERISTICS AS TRANSACTION`, `SET CONSTRAINTS`.
 */
function setRule(t: Tokens): Refusal | undefined {
  let k = 1;
  if (t.word(1) === 'session' && t.word(2) === 'characteristics') return refuse('set-transaction');
  if (t.word(1) === 'transaction') return refuse('set-transaction');
  if (t.words(1, 'session', 'authorization')) return paramRefusal('session_authorization');
  if (t.word(k) === 'session' || t.word(k) === 'local') {
    // `SET SESSION = 1` would set a parameter named "session"; only a following name is a modifier.
    if (t.name(k + 1) !== undefined) k++;
  }
  const first = t.word(k);
  if (first === 'time' && t.word(k + 1) === 'zone') return undefined; // = timezone
  if (first === 'schema') return undefined; // = search_path
  if (first === 'names') return undefined; // = client_encoding
  if (first === 'session' && t.word(k + 1) === 'authorization') return paramRefusal('session_authorization');
  if (first === 'constraints') return undefined; // a statement, not a parameter; left to PostgreSQL
  if (first === 'xml' && t.word(k + 1) === 'option') return paramRefusal('xmloption');
  if (first === 'transaction') return refuse('set-transaction');
  const name = dottedName(t, k);
  if (name === undefined) return undefined; // not a SET PostgreSQL would parse: its syntax error wins
  return isDsqlSessionParam(name) ? undefined : paramRefusal(name);
}

/** `RESET name`, `RESET ALL`, `RESET TIME ZONE`, `RESET SESSION AUTHORIZATION`, `RESET ROLE`. */
function resetRule(t: Tokens): Refusal | undefined {
  const first = t.word(1);
  if (first === 'all') return refuse('reset-all');
  if (first === 'time' && t.word(2) === 'zone') return undefined;
  if (first === 'session' && t.word(2) === 'authorization') return paramRefusal('session_authorization');
  const name = dottedName(t, 1);
  if (name === undefined) return undefined;
  return isDsqlSessionParam(name) ? undefined : paramRefusal(name);
}

/** A possibly dotted parameter name (`a`, `a.b`, `"A".b`) starting at `k`, lower case where unquoted. */
function dottedName(t: Tokens, k: number): string | undefined {
  let name = t.name(k);
  if (name === undefined) return undefined;
  let i = k + 1;
  while (t.op(i) === '.' && t.name(i + 1) !== undefined) {
    name += `.${t.name(i + 1)}`;
    i += 2;
  }
  return name;
}

const ISOLATION_LEVELS: ReadonlySet<string> = new Set(['serializable', 'repeatable', 'read']);

/** `BEGIN [WORK | TRANSACTION] [mode, ...]` / `START TRANSACTION [mode, ...]`. */
function isolationRule(t: Tokens, from: number): Refusal | undefined {
  if (t.word(0) === 'start' && t.word(1) !== 'transaction') return undefined;
  for (let i = from; i < t.length; i++) {
    if (t.words(i, 'isolation', 'level')) {
      const level = t.word(i + 2);
      if (level === undefined || !ISOLATION_LEVELS.has(level)) {
        return undefined; // a syntax error: PostgreSQL's to report
      }
      if (level === 'repeatable' && t.word(i + 3) === 'read') return undefined;
      return refuse('isolation-level');
    }
  }
  return undefined;
}

/**
 * `COPY table [(cols)] {FROM | TO} {'file' | PROGRAM 'cmd' | STDIN | STDOUT} ...` and
 * `COPY (query) TO ...`: the direction word is the first FROM/TO at paren depth 0.
 */
function copyRule(t: Tokens): Refusal | undefined {
  const dir = t.findTop(1, new Set(['from', 'to']));
  if (dir < 0) return undefined;
  const target = t.t[dir + 1];
  if (target === undefined) return undefined;
  if (target.kind === 'string') return refuse('copy-file');
  if (target.kind === 'word' && target.lower === 'program') return refuse('copy-file');
  return undefined;
}

/** `DO [LANGUAGE lang] code` / `DO code [LANGUAGE lang]`: the default language is plpgsql. */
function doRule(t: Tokens): Refusal | undefined {
  const at = t.findTop(1, new Set(['language']));
  const lang = at < 0 ? 'plpgsql' : (languageName(t, at + 1) ?? 'plpgsql');
  return ACCEPTED_LANGUAGES.has(lang) ? undefined : refuse('function-language', { lang: clip(lang) });
}

/**
 * Languages DSQL runs: SQL, and PL/pgSQL since AWS's "PL/pgSQL in Aurora DSQL" page (functions,
 * procedures and DO blocks; docs/dsql.md). Older pages still say SQL only; the newer one is explicit.
 */
const ACCEPTED_LANGUAGES: ReadonlySet<string> = new Set(['sql', 'plpgsql']);

/** The language named at `i` (a word, a quoted identifier or a string), lower case. */
function languageName(t: Tokens, i: number): string | undefined {
  const tok = t.t[i];
  if (tok === undefined) return undefined;
  if (tok.kind === 'word') return tok.lower;
  if ((tok.kind === 'qident' || tok.kind === 'string') && tok.lower !== undefined)
    return tok.lower.toLowerCase();
  return undefined;
}

const SERIAL_TYPES: ReadonlySet<string> = new Set([
  'serial',
  'serial4',
  'bigserial',
  'serial8',
  'smallserial',
  'serial2',
]);

function createRule(t: Tokens, edits: TextEdit[], asyncIndex: { value: boolean }): Refusal | undefined {
  let k = 1;
  if (t.words(k, 'or', 'replace')) k += 2;
  let temp = false;
  // CREATE [GLOBAL | LOCAL] {TEMP | TEMPORARY} TABLE ..., CREATE [UNLOGGED] TABLE ...
  if (t.word(k) === 'global' || t.word(k) === 'local') k++;
  if (t.word(k) === 'temp' || t.word(k) === 'temporary') {
    temp = true;
    k++;
  }
  const object = t.word(k);
  if (object === 'unlogged') {
    // UNLOGGED is not among DSQL's documented refusals: judged as the table it creates.
    return t.word(k + 1) === 'table' ? tableDefinitionRules(t, k + 2) : undefined;
  }
  switch (object) {
    case 'table':
      if (temp) return refuse('temporary-table');
      return tableDefinitionRules(t, k + 1);
    case 'schema':
      // CREATE SCHEMA s CREATE TABLE ...: its table elements meet the same rules.
      return tableDefinitionRules(t, k + 1);
    case 'constraint':
      return t.word(k + 1) === 'trigger' ? refuse('trigger') : undefined;
    case 'trigger':
      return refuse('trigger');
    case 'extension':
      return refuse('extension');
    case 'function':
    case 'procedure':
      return routineRule(t, k + 1);
    case 'unique':
    case 'index':
      return indexRule(t, object === 'unique' ? k + 1 : k, edits, asyncIndex);
    default:
      return undefined;
  }
}

/** `CREATE [UNIQUE] INDEX [ASYNC] ...` with `at` on the INDEX word. */
function indexRule(
  t: Tokens,
  at: number,
  edits: TextEdit[],
  asyncIndex: { value: boolean },
): Refusal | undefined {
  if (t.word(at) !== 'index') return undefined;
  const next = t.t[at + 1];
  // `ASYNC` is DSQL's keyword here, before the optional name (`CREATE INDEX ASYNC ON t ...` is
  // unnamed); an index really named "async" has to be quoted on DSQL. DSQL's syntax has no
  // CONCURRENTLY, so `CREATE INDEX CONCURRENTLY` is an index without ASYNC, refused like the rest.
  if (next?.kind === 'word' && next.lower === 'async') {
    edits.push({ start: next.start, end: next.end, text: '', kind: 'replace' });
    asyncIndex.value = true;
    return undefined;
  }
  return refuse('create-index-sync');
}

/**
 * CREATE FUNCTION/PROCEDURE: refused when a LANGUAGE clause names anything but sql. Without one the
 * body is SQL-standard (`RETURN ...` / `BEGIN ATOMIC ... END`) or PostgreSQL reports the missing
 * language itself. The search stops at a `BEGIN` body, whose statements may use the word freely.
 */
function routineRule(t: Tokens, from: number): Refusal | undefined {
  let depth = 0;
  for (let i = from; i < t.length; i++) {
    const o = t.op(i);
    if (o === '(') depth++;
    else if (o === ')') depth = Math.max(0, depth - 1);
    if (depth > 0) continue;
    const w = t.word(i);
    if (w === 'begin') return undefined;
    if (w === 'language') {
      const lang = languageName(t, i + 1);
      if (lang === undefined || ACCEPTED_LANGUAGES.has(lang)) return undefined;
      return refuse('function-language', { lang: clip(lang) });
    }
  }
  return undefined;
}

/**
 * Rules on a table's definition (CREATE TABLE, ALTER TABLE, CREATE SCHEMA elements): foreign keys,
 * partitions, SERIAL columns. REFERENCES and FOREIGN are reserved words, so an unquoted one is
 * always the constraint; SERIAL is not, so it counts only where a column type goes (after a column
 * name that follows `(`, `,` or `ADD [COLUMN]`).
 */
function tableDefinitionRules(t: Tokens, from: number): Refusal | undefined {
  let depth = 0;
  for (let i = from; i < t.length; i++) {
    const o = t.op(i);
    if (o === '(') depth++;
    else if (o === ')') depth = Math.max(0, depth - 1);
    const w = t.word(i);
    if (w === undefined) continue;
    if (w === 'references' || (w === 'foreign' && t.word(i + 1) === 'key')) return refuse('foreign-key');
    if (w === 'partition') {
      const next = t.word(i + 1);
      // Depth 0: PARTITION BY of a window (in CREATE TABLE ... AS SELECT) is inside parentheses.
      if (depth === 0 && (next === 'by' || next === 'of')) return refuse('partition');
      const prev = t.word(i - 1);
      if (depth === 0 && (prev === 'attach' || prev === 'detach')) return refuse('partition');
    }
    if (SERIAL_TYPES.has(w) && isColumnType(t, i)) return refuse('serial', { type: w });
    if (w === 'as' && depth === 0 && t.word(0) === 'create') {
      // CREATE TABLE ... AS query: the query's words are not column definitions.
      return undefined;
    }
  }
  return undefined;
}

function isColumnType(t: Tokens, i: number): boolean {
  // The token before must be the column's name: COLUMN and ADD are keywords there, never names.
  const name = t.word(i - 1);
  if (t.name(i - 1) === undefined || name === 'column' || name === 'add') return false;
  let j = i - 2;
  const before = t.op(j);
  if (before === '(' || before === ',') return true;
  // ADD [COLUMN] [IF NOT EXISTS] name type
  if (t.words(j - 2, 'if', 'not', 'exists')) j -= 3;
  if (t.word(j) === 'column') j--;
  return t.word(j) === 'add';
}

/** `SELECT ... INTO [TEMP | TEMPORARY | LOCAL TEMP ...] [TABLE] name`. */
function selectIntoTempRule(t: Tokens): Refusal | undefined {
  const into = t.findTop(1, new Set(['into']));
  if (into < 0) return undefined;
  let k = into + 1;
  if (t.word(k) === 'local' || t.word(k) === 'global') k++;
  const w = t.word(k);
  return w === 'temp' || w === 'temporary' ? refuse('temporary-table') : undefined;
}

/**
 * Rules that look anywhere in a statement: `set_config(...)` and advisory lock functions, as
 * function calls (a name followed by `(`), optionally qualified by `pg_catalog.`.
 */
function anywhereRules(t: Tokens): Refusal | undefined {
  for (let i = 0; i < t.length; i++) {
    const name = t.name(i);
    if (name === undefined || t.op(i + 1) !== '(') continue;
    // A quoted name is case-sensitive; an unquoted one is already folded to lower case.
    if (t.op(i - 1) === '.' && t.name(i - 2) !== 'pg_catalog') continue;
    if (name === 'set_config') {
      const r = setConfigRule(t, i + 2);
      if (r !== undefined) return r;
    } else if (name.startsWith('pg_advisory_') || name.startsWith('pg_try_advisory_')) {
      return refuse('advisory-lock', { name: clip(name) });
    }
  }
  return undefined;
}

/**
 * `set_config(name, value, is_local)` with `arg` on its first argument: accepted only when that is a
 * string literal (optionally cast, `'x'::text`) naming a settable parameter. A computed name is
 * refused, as DSQL refuses pg_dump's `SELECT set_config(name, ...) FROM pg_settings WHERE name =
 * '...'`; the message then names the parameter of such a `name = '...'` test when there is one, and
 * otherwise says the name is computed: it never quotes the expression, which is SQL text (the
 * endpoint records refusals, and SQL text may hold secrets).
 */
function setConfigRule(t: Tokens, arg: number): Refusal | undefined {
  const literal = literalName(t, arg);
  if (literal !== undefined) {
    return isDsqlSessionParam(literal) ? undefined : paramRefusal(literal.toLowerCase());
  }
  return paramRefusal(computedName(t) ?? COMPUTED_NAME);
}

/** What a set_config() refusal names when the parameter's name is computed at run time. */
export const COMPUTED_NAME = '(computed name)';

/**
 * The value of the string literal argument at `arg` when the argument is just that literal (with an
 * optional `::type` cast), else undefined. `U&'...' UESCAPE 'c'` is decoded with its escape.
 */
function literalName(t: Tokens, arg: number): string | undefined {
  const tok = t.t[arg];
  if (tok?.kind !== 'string') return undefined;
  let value = tok.lower;
  let end = arg + 1;
  if (tok.unicode && t.word(end) === 'uescape') {
    const esc = t.t[end + 1];
    value = undefined;
    if (esc?.kind === 'string' && esc.lower?.length === 1 && !tok.unterminated) {
      value = decodeUnicodeEscapes(t.sql.slice(tok.start + 3, tok.end - 1).replaceAll("''", "'"), esc.lower);
    }
    end += 2;
  }
  if (t.op(end) === ':' && t.op(end + 1) === ':' && t.name(end + 2) !== undefined) end += 3;
  return t.op(end) === ',' || t.op(end) === ')' ? value : undefined;
}

/** The literal of a `name = '...'` comparison in the statement (pg_dump's pg_settings lookup). */
function computedName(t: Tokens): string | undefined {
  for (let i = 0; i + 2 < t.length; i++) {
    const lit = t.t[i + 2];
    if (t.word(i) === 'name' && t.op(i + 1) === '=' && lit?.kind === 'string' && lit.lower !== undefined) {
      return lit.lower.toLowerCase();
    }
  }
  return undefined;
}

/**
 * `sys.iam_session_user()` in any case and spacing, with either name optionally a quoted identifier
 * (quoted names are case-sensitive, as in PostgreSQL): one edit over the whole call.
 */
function addIamSessionUserEdits(t: Tokens, edits: TextEdit[]): void {
  for (let i = 0; i + 4 < t.length; i++) {
    if (
      t.name(i) === 'sys' &&
      t.op(i + 1) === '.' &&
      t.name(i + 2) === 'iam_session_user' &&
      t.op(i + 3) === '(' &&
      t.op(i + 4) === ')'
    ) {
      edits.push({ start: t.t[i]!.start, end: t.t[i + 4]!.end, text: '', kind: 'iam-session-user' });
      i += 4;
    }
  }
}

const DML: ReadonlySet<string> = new Set(['insert', 'update', 'delete', 'merge']);

/** Whether the statement may modify table rows (see the contract). */
function writes(t: Tokens, keyword: string): boolean {
  switch (keyword) {
    case 'insert':
    case 'update':
    case 'delete':
    case 'merge':
      return true;
    case 'copy': {
      const dir = t.findTop(1, new Set(['from', 'to']));
      return dir >= 0 && t.word(dir) === 'from';
    }
    case 'select':
      return t.findTop(1, new Set(['into'])) >= 0;
    case 'create':
      return createWrites(t);
    case 'with':
      return withWrites(t);
    case 'explain':
      return explainWrites(t);
    default:
      return false;
  }
}

/** Statements EXPLAIN can show; the first of them after EXPLAIN's options is the one explained. */
const EXPLAINABLE: ReadonlySet<string> = new Set([
  'select',
  'insert',
  'update',
  'delete',
  'merge',
  'with',
  'values',
  'table',
  'create',
  'execute',
  'declare',
]);

/** EXPLAIN ANALYZE runs the statement it explains, so it writes when that statement writes. */
function explainWrites(t: Tokens): boolean {
  const at = t.findTop(1, EXPLAINABLE);
  if (at < 0) return false;
  const analyze = t.t
    .slice(1, at)
    .some((x) => x.kind === 'word' && (x.lower === 'analyze' || x.lower === 'analyse'));
  if (!analyze) return false;
  const inner = new Tokens(t.sql, t.t.slice(at));
  return writes(inner, inner.word(0) ?? '');
}

/**
 * `CREATE [GLOBAL | LOCAL] [TEMP | TEMPORARY | UNLOGGED] TABLE ... AS query` (also `AS EXECUTE`) and
 * `CREATE MATERIALIZED VIEW ... AS query`: the object word comes right after CREATE's modifiers.
 */
function createWrites(t: Tokens): boolean {
  let k = 1;
  while (CREATE_TABLE_MODIFIERS.has(t.word(k) ?? '')) k++;
  if (t.word(k) === 'materialized' && t.word(k + 1) === 'view') k++;
  else if (t.word(k) !== 'table') return false;
  return t.findTop(k + 1, new Set(['as'])) >= 0;
}

const CREATE_TABLE_MODIFIERS: ReadonlySet<string> = new Set([
  'global',
  'local',
  'temp',
  'temporary',
  'unlogged',
]);

/**
 * A WITH query writes when one of its parts is INSERT/UPDATE/DELETE/MERGE: such a word right after
 * `(` (a data-modifying CTE) or `)` (the main statement after the CTE list), or SELECT ... INTO.
 */
function withWrites(t: Tokens): boolean {
  for (let i = 1; i < t.length; i++) {
    const w = t.word(i);
    if (w === undefined || !DML.has(w)) continue;
    const before = t.op(i - 1);
    if (before === '(' || before === ')') return true;
  }
  const into = t.findTop(1, new Set(['into']));
  return into >= 0 && t.word(into - 1) !== 'insert' && t.word(into - 1) !== 'merge';
}
