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

/** A transaction mode list as in BEGIN / START TRANSACTION / SET TRANSACTION. */
export interface TxnModes {
  /** Lower case, single spaces: 'serializable' | 'repeatable read' | 'read committed' | 'read uncommitted'. */
  isolation?: string;
  readOnly?: boolean;
  deferrable?: boolean;
}

/** One value item of SET: `SET x TO 'a', b, 5` has three. */
export interface SetValueItem {
  /** The item's value: a string literal decoded, an identifier folded as PostgreSQL folds it, a number as written (with its sign). */
  value: string;
  kind: 'string' | 'ident' | 'number';
}

export type CompatStatement =
  /** SET [SESSION | LOCAL] name {TO | =} {value, ... | DEFAULT}; also SET TIME ZONE, SET SCHEMA, SET NAMES (name mapped to timezone/search_path/client_encoding). */
  | { kind: 'set'; name: string; local: boolean; value: readonly SetValueItem[] | 'default' }
  /** RESET name (RESET TIME ZONE etc. mapped like SET). */
  | { kind: 'reset'; name: string }
  | { kind: 'reset-all' }
  /** SHOW name (name lower case; 'all' for SHOW ALL; TIME ZONE -> timezone, etc.). */
  | { kind: 'show'; name: string }
  /**
   * A SELECT whose only work is set_config calls, in the two shapes pg_dump and drivers send:
   * `SELECT [pg_catalog.]set_config('name', 'value', false|true) [, ...]` (literals, optional ::text casts)
   * and `SELECT set_config(name, 'value', false) FROM pg_settings WHERE name = 'x'` (shape 'pg-settings').
   * `column` is the output column name PostgreSQL would give (set_config, or an AS alias).
   */
  | {
      kind: 'set-config';
      shape: 'literal' | 'pg-settings';
      calls: readonly { name: string; value: string | null; isLocal: boolean; column: string }[];
    }
  /** BEGIN [WORK|TRANSACTION] [modes] / START TRANSACTION [modes]. */
  | { kind: 'begin'; modes: TxnModes }
  /** SET TRANSACTION modes / SET SESSION CHARACTERISTICS AS TRANSACTION modes (session: true). */
  | { kind: 'set-transaction'; modes: TxnModes; session: boolean }
  /** COMMIT/END [AND NO CHAIN]; ROLLBACK/ABORT [AND NO CHAIN]. `chain` for AND CHAIN. */
  | { kind: 'commit'; chain: boolean }
  | { kind: 'rollback'; chain: boolean }
  /** LOCK [TABLE] [ONLY] name [*], ... [IN mode MODE] [NOWAIT]; mode lower case, default 'access exclusive'. */
  | { kind: 'lock'; mode: string; nowait: boolean }
  /** PREPARE name [(type, ...)] AS statement: types as written (source text), body is the statement's source text. */
  | { kind: 'prepare'; name: string; types: readonly string[]; body: string }
  /** EXECUTE name [(expr, ...)]: each argument's source text. */
  | { kind: 'execute'; name: string; args: readonly string[] }
  /** DEALLOCATE [PREPARE] {name | ALL}: name null for ALL. */
  | { kind: 'deallocate'; name: string | null }
  /** DISCARD {ALL | PLANS | SEQUENCES | TEMP | TEMPORARY}. */
  | { kind: 'discard'; what: 'all' | 'plans' | 'sequences' | 'temp' }
  /** Anything else, including what the layer does not understand (a syntax error is DSQL's to report). */
  | { kind: 'other' };

export interface SplitStatement {
  /** The statement's source text, without its terminating ';'. */
  text: string;
  start: number;
  end: number;
}

export function mightNeedCompat(_sql: string): boolean {
  throw new Error('not implemented');
}

export function splitStatements(_sql: string, _scs = true): SplitStatement[] {
  throw new Error('not implemented');
}

export function classify(_text: string, _scs = true): CompatStatement {
  throw new Error('not implemented');
}
