/**
 * Transaction statements and LOCK as PostgreSQL's grammar reads them (gram.y: TransactionStmt,
 * transaction_mode_list, opt_transaction_chain, LockStmt). Each function starts after the first
 * keyword and returns null where the grammar would not accept the text.
 */
import type { Cursor } from './cursor.js';
import type { CompatStatement, TxnModes } from './types.js';

type Result = CompatStatement | null;

const ISOLATION_LEVELS: readonly (readonly string[])[] = [
  ['read', 'uncommitted'],
  ['read', 'committed'],
  ['repeatable', 'read'],
  ['serializable'],
];

/** One transaction_mode_item into `modes`; false when none starts here. */
function modeItem(c: Cursor, modes: TxnModes): boolean {
  if (c.kws('isolation', 'level')) {
    for (const words of ISOLATION_LEVELS) {
      if (c.kws(...words)) {
        modes.isolation = words.join(' ');
        return true;
      }
    }
    return false;
  }
  if (c.kws('read', 'only')) modes.readOnly = true;
  else if (c.kws('read', 'write')) modes.readOnly = false;
  else if (c.kw('deferrable')) modes.deferrable = true;
  else if (c.kws('not', 'deferrable')) modes.deferrable = false;
  else return false;
  return true;
}

/**
 * transaction_mode_list: items separated by commas or by nothing (PostgreSQL accepts both; a later
 * item overrides an earlier one). Reads to the end of the statement; null if anything else is there.
 */
export function transactionModes(c: Cursor, required: boolean): TxnModes | null {
  const modes: TxnModes = {};
  if (c.atEnd()) return required ? null : modes;
  for (;;) {
    if (!modeItem(c, modes)) return null;
    if (c.atEnd()) return modes;
    c.op(',');
  }
}

/** BEGIN [WORK | TRANSACTION] [modes]. */
export function classifyBegin(c: Cursor): Result {
  if (!c.kw('work')) c.kw('transaction');
  const modes = transactionModes(c, false);
  return modes === null ? null : { kind: 'begin', modes };
}

/** START TRANSACTION [modes]. */
export function classifyStart(c: Cursor): Result {
  if (!c.kw('transaction')) return null;
  const modes = transactionModes(c, false);
  return modes === null ? null : { kind: 'begin', modes };
}

/** COMMIT | END | ROLLBACK | ABORT [WORK | TRANSACTION] [AND [NO] CHAIN]. */
export function classifyEnd(c: Cursor, kind: 'commit' | 'rollback'): Result {
  if (!c.kw('work')) c.kw('transaction');
  let chain = false;
  if (c.kws('and', 'chain')) chain = true;
  else if (!c.kws('and', 'no', 'chain') && !c.atEnd()) return null;
  return c.atEnd() ? { kind, chain } : null;
}

/** Lock modes, longest first so SHARE does not take SHARE ROW EXCLUSIVE's first word. */
const LOCK_MODES: readonly (readonly string[])[] = [
  ['share', 'update', 'exclusive'],
  ['share', 'row', 'exclusive'],
  ['access', 'share'],
  ['row', 'share'],
  ['row', 'exclusive'],
  ['access', 'exclusive'],
  ['share'],
  ['exclusive'],
];

/** One relation_expr: name | name * | ONLY name | ONLY ( name ). */
function relationExpr(c: Cursor): boolean {
  if (c.kw('only')) {
    if (c.op('(')) return c.dottedName() !== null && c.op(')');
    return c.dottedName() !== null;
  }
  if (c.dottedName() === null) return false;
  c.op('*');
  return true;
}

/** LOCK [TABLE] relation_expr [, ...] [IN mode MODE] [NOWAIT]. */
export function classifyLock(c: Cursor): Result {
  c.kw('table');
  do if (!relationExpr(c)) return null;
  while (c.op(','));
  let mode = 'access exclusive';
  if (c.kw('in')) {
    const words = LOCK_MODES.find((w) => c.kws(...w));
    if (words === undefined || !c.kw('mode')) return null;
    mode = words.join(' ');
  }
  const nowait = c.kw('nowait');
  return c.atEnd() ? { kind: 'lock', mode, nowait } : null;
}
