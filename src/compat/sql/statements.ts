/**
 * The compatibility layer's own reading of SQL text (it shares nothing with the local endpoint's
 * classifier in src/local-endpoint/rules: a bug in one must not hide a bug in the other).
 *
 * CONTRACT (helper A implements; the engine codes against these signatures):
 * - `mightNeedCompat(sql)`: the hot-path test, called on every Query and Parse text. True when the
 *   first keyword (after whitespace and comments) is one the layer handles (set, reset, show,
 *   prepare, execute, deallocate, discard, lock, begin, start) or the text mentions `set_config`
 *   (any case). Must be cheap: no allocation for the common `select`/`insert`/... case.
 * - `splitStatements(sql, scs)`: the statements of a simple Query's text, in order, without the empty
 *   ones (`;;`), each with its exact source text (no trailing `;`), following PostgreSQL's lexer:
 *   quotes, E'' escapes, dollar quotes, nested comments, quoted identifiers, U&'' strings, and
 *   `standard_conforming_strings` (scs) for plain '' strings.
 * - `classify(text, scs)`: what one statement is, for the layer.
 */

import {
  classifyDeallocate,
  classifyDiscard,
  classifyExecute,
  classifyPrepare,
} from './classify-prepared.js';
import { classifyReset, classifySet, classifyShow } from './classify-set.js';
import { classifyBegin, classifyEnd, classifyLock, classifyStart } from './classify-txn.js';
import { Cursor } from './cursor.js';
import { isIdentCont, isSpace, Lexer, skipIgnorable, type Token, tokenize } from './lexer.js';
import { classifySetConfig } from './set-config.js';
import type { CompatStatement, SplitStatement } from './types.js';

export type { CompatStatement, SetValueItem, SplitStatement, TxnModes } from './types.js';

/** The first keywords of the statements the layer handles (all lower case ASCII letters). */
const FIRST_WORDS = [
  'set',
  'reset',
  'show',
  'prepare',
  'execute',
  'deallocate',
  'discard',
  'lock',
  'begin',
  'start',
];

/** `sql` has, at `at`, the `len` ASCII letters of one of FIRST_WORDS (any case). */
function isFirstWord(sql: string, at: number, len: number): boolean {
  for (const w of FIRST_WORDS) {
    if (w.length !== len) continue;
    let k = 0;
    // | 0x20 lower-cases ASCII letters; the caller passes letters only.
    while (k < len && (sql.charCodeAt(at + k) | 0x20) === w.charCodeAt(k)) k++;
    if (k === len) return true;
  }
  return false;
}

const SET_CONFIG = 'set_config';

function isSetConfigAt(sql: string, at: number): boolean {
  for (let k = 0; k < SET_CONFIG.length; k++) {
    const c = sql.charCodeAt(at + k);
    const want = SET_CONFIG.charCodeAt(k);
    if (c !== want && (c | 0x20) !== want) return false;
  }
  return true;
}

function isAsciiLetter(c: number): boolean {
  return (c | 0x20) >= 97 && (c | 0x20) <= 122;
}

/** Length of the ASCII-letter word at `at` when it is a whole word (no identifier character follows). */
function wordLength(sql: string, at: number): number {
  let j = at;
  while (j < sql.length && isAsciiLetter(sql.charCodeAt(j))) j++;
  return j < sql.length && isIdentCont(sql.charCodeAt(j)) ? -1 : j - at;
}

/**
 * The hot-path test, called on every Query and Parse text: may the layer have work in it? True when
 * the first keyword (after whitespace and comments) is one of FIRST_WORDS, when the text mentions
 * set_config (any case), or when the text holds a ';' followed by more text and one of FIRST_WORDS
 * appears anywhere as a word (a later statement of a multi-statement Query). It over-matches on
 * purpose (words inside strings and comments count); classify() decides exactly. It allocates
 * nothing: one pass of charCodeAt over the text. COMMIT and ROLLBACK alone do not make it true.
 */
export function mightNeedCompat(sql: string): boolean {
  const first = skipIgnorable(sql, 0);
  if (first < 0) return false;
  const len = first < sql.length ? wordLength(sql, first) : -1;
  if (len > 0 && isFirstWord(sql, first, len)) return true;
  let wordSeen = false;
  let semicolon = false;
  let multi = false;
  for (let i = first; i < sql.length; i++) {
    const c = sql.charCodeAt(i);
    if (c === 59) semicolon = true;
    else if (semicolon && !isSpace(c)) multi = true;
    if (!isAsciiLetter(c) || (i > 0 && isIdentCont(sql.charCodeAt(i - 1)))) continue;
    // A word starts here.
    if ((c | 0x20) === 115 && isSetConfigAt(sql, i)) return true;
    const n = wordLength(sql, i);
    if (!wordSeen && n > 0 && isFirstWord(sql, i, n)) wordSeen = true;
    if (wordSeen && multi) return true;
  }
  return wordSeen && multi;
}

/**
 * What decides whether a ';' ends the statement: parentheses, and BEGIN ATOMIC ... END bodies of
 * CREATE [OR REPLACE] FUNCTION/PROCEDURE, inside which PostgreSQL's grammar reads ';' itself (psql
 * tracks the same two things before it sends a statement).
 */
class StatementState {
  parens = 0;
  /** BEGIN ATOMIC nesting; CASE ... END inside a body counts too, since it ends with END as well. */
  atomic = 0;
  /** The first unquoted words of the statement, up to four. */
  private words: string[] = [];

  reset(): void {
    this.parens = 0;
    this.atomic = 0;
    this.words = [];
  }

  see(t: Token, next: Token | undefined): void {
    if (t.kind === 'op') {
      if (t.value === '(') this.parens++;
      else if (t.value === ')' && this.parens > 0) this.parens--;
      return;
    }
    if (t.kind !== 'ident' || t.quoted) return;
    if (this.words.length < 4) this.words.push(t.value);
    if (this.parens > 0 || !this.isRoutine()) return;
    const v = t.value;
    if (v === 'begin' && next?.kind === 'ident' && !next.quoted && next.value === 'atomic') this.atomic++;
    else if (v === 'case' && this.atomic > 0) this.atomic++;
    else if (v === 'end' && this.atomic > 0) this.atomic--;
  }

  private isRoutine(): boolean {
    const [a, b, c, d] = this.words;
    if (a !== 'create') return false;
    const routine = (w: string | undefined) => w === 'function' || w === 'procedure';
    return routine(b) || (b === 'or' && c === 'replace' && routine(d));
  }

  splits(): boolean {
    return this.parens === 0 && this.atomic === 0;
  }
}

/**
 * The statements of a simple Query's text, in order, as PostgreSQL's lexer reads them (quotes, E''
 * escapes with `scs` off for plain strings too, dollar quotes, nested comments, quoted identifiers,
 * U&'' strings). Each statement's text runs from its first token to its last: whitespace and
 * comments around it are left out (those inside are kept), and its ';' is not part of it. Empty
 * statements (`;;`, comments only) are dropped. A ';' inside parentheses or a BEGIN ATOMIC body does
 * not split; an unterminated string or comment runs to the end of the text, so the rest stays one
 * statement for the server to refuse.
 */
export function splitStatements(sql: string, scs = true): SplitStatement[] {
  const out: SplitStatement[] = [];
  const lx = new Lexer(sql, scs);
  const state = new StatementState();
  let start = -1;
  let end = -1;
  let t = lx.next();
  while (t !== null) {
    const next = lx.next();
    if (t.kind === 'op' && t.value === ';' && state.splits()) {
      if (start >= 0) out.push({ text: sql.slice(start, end), start, end });
      start = -1;
      state.reset();
    } else {
      if (start < 0) start = t.start;
      end = t.end;
      state.see(t, next ?? undefined);
    }
    t = next;
  }
  if (start >= 0) out.push({ text: sql.slice(start, end), start, end });
  return out;
}

const OTHER: CompatStatement = { kind: 'other' };

/** Dispatch on the first keyword; null from a reader means the grammar would not accept the text. */
function dispatch(c: Cursor, first: string): CompatStatement | null {
  switch (first) {
    case 'set':
      return classifySet(c);
    case 'reset':
      return classifyReset(c);
    case 'show':
      return classifyShow(c);
    case 'select':
      return classifySetConfig(c);
    case 'begin':
      return classifyBegin(c);
    case 'start':
      return classifyStart(c);
    case 'commit':
    case 'end':
      return classifyEnd(c, 'commit');
    case 'rollback':
    case 'abort':
      return classifyEnd(c, 'rollback');
    case 'lock':
      return classifyLock(c);
    case 'prepare':
      return classifyPrepare(c);
    case 'execute':
      return classifyExecute(c);
    case 'deallocate':
      return classifyDeallocate(c);
    case 'discard':
      return classifyDiscard(c);
    default:
      return null;
  }
}

/**
 * What one statement is, for the layer (see CompatStatement). The text is one statement as
 * splitStatements gives it; trailing ';' are allowed, anything after a ';' makes it 'other'. Any
 * error PostgreSQL's lexer would report (unterminated quote or comment, bad escape) makes it 'other'.
 */
export function classify(text: string, scs = true): CompatStatement {
  const toks = tokenize(text, scs);
  let n = toks.length;
  while (n > 0 && toks[n - 1]!.kind === 'op' && toks[n - 1]!.value === ';') n--;
  const body = toks.slice(0, n);
  const head = body[0];
  if (head === undefined || head.kind !== 'ident' || head.quoted) return OTHER;
  for (const t of body) if (t.bad || (t.kind === 'op' && t.value === ';')) return OTHER;
  const c = new Cursor(text, body);
  c.i = 1;
  return dispatch(c, head.value) ?? OTHER;
}
