/**
 * SET, RESET and SHOW as PostgreSQL's grammar reads them (gram.y: VariableSetStmt, set_rest,
 * set_rest_more, generic_set, var_value, zone_value, VariableResetStmt, VariableShowStmt).
 * Each function starts after the statement's first keyword and returns null where the grammar
 * would not accept the text (the caller answers {kind: 'other'}).
 */
import { transactionModes } from './classify-txn.js';
import type { Cursor } from './cursor.js';
import type { Token } from './lexer.js';
import type { CompatStatement, SetValueItem } from './types.js';

type SetResult = CompatStatement | null;

/** `TO` or `=` at offset k: what makes a keyword like SESSION or TIME a parameter name instead. */
function assignAt(c: Cursor, k: number): boolean {
  return c.isKw('to', k) || c.isOp('=', k) || c.isOp('.', k);
}

export function classifySet(c: Cursor): SetResult {
  let local = false;
  // SET SESSION / SET LOCAL, unless the word is the parameter's name or starts SESSION AUTHORIZATION
  // or SESSION CHARACTERISTICS (one token of lookahead, as bison decides it).
  if (c.isKw('local') && !assignAt(c, 1)) {
    local = true;
    c.i++;
  } else if (
    c.isKw('session') &&
    !assignAt(c, 1) &&
    !c.isKw('authorization', 1) &&
    !c.isKw('characteristics', 1)
  ) {
    c.i++;
  }
  const r = setRest(c, local);
  return r !== null && c.atEnd() ? r : null;
}

function setRest(c: Cursor, local: boolean): SetResult {
  if (!assignAt(c, 1)) {
    if (c.kw('transaction')) {
      if (c.isKw('snapshot')) return null;
      const modes = transactionModes(c, true);
      return modes === null ? null : { kind: 'set-transaction', modes, session: false };
    }
    if (c.kws('session', 'characteristics', 'as', 'transaction')) {
      const modes = transactionModes(c, true);
      return modes === null ? null : { kind: 'set-transaction', modes, session: true };
    }
    if (c.isKw('session') && c.isKw('authorization', 1)) return null;
    const special = setSpecial(c, local);
    if (special !== undefined) return special;
  }
  const name = c.dottedName();
  if (name === null) return null;
  if (c.isKw('from') && c.isKw('current', 1)) return null;
  if (!c.kw('to') && !c.op('=')) return null;
  if (c.kw('default')) return { kind: 'set', name, local, value: 'default' };
  const value = varList(c);
  return value === null ? null : { kind: 'set', name, local, value };
}

/** The set_rest_more forms with their own syntax; undefined when none starts here. */
function setSpecial(c: Cursor, local: boolean): SetResult | undefined {
  const set = (name: string, value: readonly SetValueItem[] | 'default'): CompatStatement => ({
    kind: 'set',
    name,
    local,
    value,
  });
  if (c.kws('time', 'zone')) {
    const z = zoneValue(c);
    return z === null ? null : set('timezone', z);
  }
  if (c.kw('schema')) {
    const s = c.sconst();
    return s === null ? null : set('search_path', [{ value: s.value, kind: 'string' }]);
  }
  if (c.kw('names')) {
    if (c.atEnd() || c.kw('default')) return set('client_encoding', 'default');
    const s = c.sconst();
    return s === null ? null : set('client_encoding', [{ value: s.value, kind: 'string' }]);
  }
  if (c.kw('role')) {
    const v = wordOrString(c);
    return v === null ? null : set('role', [v]);
  }
  if (c.kws('xml', 'option')) {
    if (c.isKw('document') || c.isKw('content')) {
      const v = c.peek()!.value;
      c.i++;
      return set('xmloption', [{ value: v, kind: 'ident' }]);
    }
    return null;
  }
  if (c.isKw('catalog')) return null;
  return undefined;
}

/** zone_value: Sconst | IDENT | NumericOnly | DEFAULT | LOCAL (INTERVAL forms: not read, null). */
function zoneValue(c: Cursor): readonly SetValueItem[] | 'default' | null {
  if (c.kw('default') || c.kw('local')) return 'default';
  if (c.isKw('interval')) return null;
  const s = c.sconst();
  if (s !== null) return [{ value: s.value, kind: 'string' }];
  const n = numericOnly(c);
  if (n !== null) return [n];
  const w = c.nonReservedWord();
  return w === null ? null : [{ value: w.value, kind: 'ident' }];
}

/** var_list: var_value [, ...]. */
function varList(c: Cursor): SetValueItem[] | null {
  const out: SetValueItem[] = [];
  do {
    const v = varValue(c);
    if (v === null) return null;
    out.push(v);
  } while (c.op(','));
  return out;
}

/** var_value: TRUE | FALSE | ON | NonReservedWord_or_Sconst | NumericOnly. */
function varValue(c: Cursor): SetValueItem | null {
  for (const kw of ['true', 'false', 'on']) if (c.kw(kw)) return { value: kw, kind: 'ident' };
  return numericOnly(c) ?? wordOrString(c);
}

function wordOrString(c: Cursor): SetValueItem | null {
  const s = c.sconst();
  if (s !== null) return { value: s.value, kind: 'string' };
  const w: Token | null = c.nonReservedWord();
  return w === null ? null : { value: w.value, kind: 'ident' };
}

/** NumericOnly: [+|-] number, with the value PostgreSQL hands the parameter. */
function numericOnly(c: Cursor): SetValueItem | null {
  const save = c.i;
  const neg = c.op('-');
  if (!neg) c.op('+');
  const t = c.peek();
  if (t === undefined || t.kind !== 'number') {
    c.i = save;
    return null;
  }
  c.i++;
  return { value: (neg ? '-' : '') + numberValue(t.value), kind: 'number' };
}

/**
 * An integer that fits in 32 bits reaches the parameter as its decimal value (gram.y's Iconst:
 * 0x1F is 31, 1_000 is 1000); any other number as written (FCONST).
 */
export function numberValue(text: string): string {
  const lower = text.toLowerCase();
  const prefixed = /^0[xob]/.test(lower);
  if (!prefixed && /[.e]/.test(lower)) return text;
  const digits = lower.replaceAll('_', '');
  const base = prefixed ? { x: 16, o: 8, b: 2 }[digits[1] as 'x' | 'o' | 'b'] : 10;
  const n = Number.parseInt(prefixed ? digits.slice(2) : digits, base);
  return n <= 2147483647 ? String(n) : text;
}

/** RESET name | RESET ALL | RESET TIME ZONE | RESET TRANSACTION ISOLATION LEVEL. */
export function classifyReset(c: Cursor): SetResult {
  const r = resetOrShowName(c);
  if (r === null || !c.atEnd()) return null;
  if (r === 'all') return { kind: 'reset-all' };
  if (r === 'session_authorization') return null;
  return { kind: 'reset', name: r };
}

/** SHOW name | SHOW ALL | SHOW TIME ZONE | SHOW TRANSACTION ISOLATION LEVEL | SHOW SESSION AUTHORIZATION. */
export function classifyShow(c: Cursor): SetResult {
  const r = resetOrShowName(c);
  return r === null || !c.atEnd() ? null : { kind: 'show', name: r };
}

/** The name RESET and SHOW read; 'all' for ALL (reserved, so never a parameter's unquoted name). */
function resetOrShowName(c: Cursor): string | null {
  if (c.kw('all')) return 'all';
  if (c.kws('time', 'zone')) return 'timezone';
  if (c.kws('transaction', 'isolation', 'level')) return 'transaction_isolation';
  if (c.kws('session', 'authorization')) return 'session_authorization';
  return c.dottedName();
}
