/**
 * SQL-level PREPARE, EXECUTE, DEALLOCATE and DISCARD as PostgreSQL's grammar reads them (gram.y:
 * PrepareStmt, ExecuteStmt, DeallocateStmt, DiscardStmt). Each function starts after the first
 * keyword and returns null where the grammar would not accept the text.
 */
import type { Cursor } from './cursor.js';
import type { CompatStatement } from './types.js';

type Result = CompatStatement | null;

/**
 * A parenthesised, comma-separated list starting at '(': each item's source text (from its first
 * token to its last), split at commas outside nested parentheses and brackets. Null when the list
 * is unclosed or an item is empty.
 */
function parenList(c: Cursor): string[] | null {
  if (!c.op('(')) return null;
  const items: string[] = [];
  let depth = 0;
  let from = c.i;
  for (; !c.atEnd(); c.i++) {
    const t = c.peek()!;
    if (t.kind !== 'op') continue;
    if (t.value === '(' || t.value === '[') depth++;
    else if ((t.value === ')' || t.value === ']') && depth > 0) depth--;
    else if (depth === 0 && (t.value === ',' || t.value === ')')) {
      if (c.i === from) return null;
      items.push(c.slice(from, c.i));
      from = c.i + 1;
      if (t.value === ')') {
        c.i++;
        return items;
      }
    }
  }
  return null;
}

/** The statements PostgreSQL can prepare (PreparableStmt: SELECT, VALUES, TABLE, WITH, DML). */
const PREPARABLE = new Set(['select', 'values', 'table', 'with', 'insert', 'update', 'delete', 'merge']);

/** PREPARE name [(type, ...)] AS statement. */
export function classifyPrepare(c: Cursor): Result {
  const name = c.colId();
  if (name === null) return null;
  let types: string[] = [];
  if (c.isOp('(')) {
    const list = parenList(c);
    if (list === null) return null;
    types = list;
  }
  if (!c.kw('as') || c.atEnd()) return null;
  const first = c.peek()!;
  const preparable = (first.kind === 'ident' && !first.quoted && PREPARABLE.has(first.value)) || c.isOp('(');
  if (!preparable) return null;
  const body = c.slice(c.i, c.toks.length);
  c.i = c.toks.length;
  return { kind: 'prepare', name, types, body };
}

/** EXECUTE name [(expr, ...)]. */
export function classifyExecute(c: Cursor): Result {
  const name = c.colId();
  if (name === null) return null;
  let args: string[] = [];
  if (c.isOp('(')) {
    const list = parenList(c);
    if (list === null) return null;
    args = list;
  }
  return c.atEnd() ? { kind: 'execute', name, args } : null;
}

/** DEALLOCATE [PREPARE] {name | ALL}. */
export function classifyDeallocate(c: Cursor): Result {
  // "DEALLOCATE prepare" names a statement called prepare (one token of lookahead decides).
  if (c.isKw('prepare') && c.peek(1) !== undefined) c.i++;
  if (c.kw('all')) return c.atEnd() ? { kind: 'deallocate', name: null } : null;
  const name = c.colId();
  return name !== null && c.atEnd() ? { kind: 'deallocate', name } : null;
}

const DISCARD_WHAT = {
  all: 'all',
  plans: 'plans',
  sequences: 'sequences',
  temp: 'temp',
  temporary: 'temp',
} as const;

/** DISCARD {ALL | PLANS | SEQUENCES | TEMP | TEMPORARY}. */
export function classifyDiscard(c: Cursor): Result {
  const t = c.peek();
  if (t === undefined || t.kind !== 'ident' || t.quoted || c.peek(1) !== undefined) return null;
  const what = DISCARD_WHAT[t.value as keyof typeof DISCARD_WHAT];
  if (what === undefined || !Object.hasOwn(DISCARD_WHAT, t.value)) return null;
  c.i++;
  return { kind: 'discard', what };
}
