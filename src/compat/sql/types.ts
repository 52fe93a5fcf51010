/**
 * The types of the compatibility layer's SQL reader (re-exported by statements.ts, the contract).
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
