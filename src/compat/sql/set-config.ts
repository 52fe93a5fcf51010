/**
 * The two shapes of `SELECT set_config(...)` the layer carries out (pg_dump and drivers send them);
 * anything else that mentions set_config is 'other' and reaches the server:
 * - literal: `SELECT [pg_catalog.]set_config('name', 'value', bool) [AS alias] [, ...]`, arguments
 *   literals with an optional cast (::text on the first two, ::boolean on the third), no FROM;
 * - pg-settings: `SELECT [pg_catalog.]set_config(name, 'value', bool) FROM [pg_catalog.]pg_settings
 *   WHERE name = 'x'` (pg_dump), also with the literal 'x' as first argument (pgAdmin).
 * In the literal shape, names are ASCII-folded to lower case (PostgreSQL looks parameters up
 * case-insensitively); in the pg-settings shape the name is the WHERE literal as written, because
 * pg_settings matches it exactly (no row, no call: 'timezone' finds nothing, 'TimeZone' does).
 */
import type { Cursor } from './cursor.js';
import { foldAscii, type Token } from './lexer.js';
import type { CompatStatement } from './types.js';

type Call = { name: string; value: string | null; isLocal: boolean; column: string };
/** A first argument: a literal name, or the `name` column of pg_settings (null). */
type Arg1 = { literal: string } | { column: true };

/** PostgreSQL's boolean input (parse_bool): unique prefixes of true/false/yes/no, on/off, 1/0. */
export function parseBool(text: string): boolean | null {
  const s = text.trim().toLowerCase();
  if (s === '') return null;
  const prefixOf = (word: string) => word.startsWith(s);
  if (prefixOf('true') || prefixOf('yes') || s === 'on' || s === '1') return true;
  if (prefixOf('false') || prefixOf('no') || s === '0') return false;
  // "o" alone is ambiguous; "of" and "off" mean off.
  if (s === 'of' || s === 'off') return false;
  return null;
}

/** An optional `::type` cast accepting only the given type names (with optional pg_catalog.). */
function cast(c: Cursor, types: readonly string[]): boolean {
  if (!c.op('::')) return true;
  const name = c.dottedName();
  if (name === null) return false;
  const bare = name.startsWith('pg_catalog.') ? name.slice('pg_catalog.'.length) : name;
  return types.includes(bare);
}

/** A text argument: a string literal or NULL (value null), with an optional ::text cast. */
function textArg(c: Cursor): { value: string | null } | null {
  const s = c.sconst();
  if (s === null && !c.kw('null')) return null;
  return cast(c, ['text']) ? { value: s === null ? null : s.value } : null;
}

/** The is_local argument: TRUE/FALSE, a string PostgreSQL reads as a boolean, or NULL (false). */
function boolArg(c: Cursor): boolean | null {
  let v: boolean | null;
  if (c.kw('true')) v = true;
  else if (c.kw('false') || c.kw('null')) v = false;
  else {
    const s = c.sconst();
    v = s === null ? null : parseBool(s.value);
  }
  return v !== null && cast(c, ['boolean', 'bool']) ? v : null;
}

/** `[pg_catalog.]set_config`, written so that a text scan for "set_config" finds it. */
function functionName(c: Cursor): boolean {
  if (c.isKw('pg_catalog') && c.isOp('.', 1)) c.i += 2;
  const t: Token | undefined = c.peek();
  if (t === undefined || t.kind !== 'ident' || t.value !== 'set_config') return false;
  // A quoted name must be exactly "set_config" (U&"..." escapes would hide it from mightNeedCompat).
  if (t.quoted && c.sql.slice(t.start, t.end) !== '"set_config"') return false;
  c.i++;
  return true;
}

/** One `set_config(a, b, c) [AS alias]` item. */
function call(c: Cursor): { arg1: Arg1; value: string | null; isLocal: boolean; column: string } | null {
  if (!functionName(c) || !c.op('(')) return null;
  let arg1: Arg1;
  if (c.isKw('name') || (c.peek()?.quoted === true && c.peek()?.value === 'name')) {
    c.i++;
    arg1 = { column: true };
  } else {
    const a = textArg(c);
    if (a === null || a.value === null) return null;
    arg1 = { literal: a.value };
  }
  if (!c.op(',')) return null;
  const v = textArg(c);
  if (v === null || !c.op(',')) return null;
  const isLocal = boolArg(c);
  if (isLocal === null || !c.op(')')) return null;
  let column = 'set_config';
  if (c.kw('as')) {
    const alias = c.peek();
    if (alias === undefined || alias.kind !== 'ident') return null;
    column = alias.value;
    c.i++;
  }
  return { arg1, value: v.value, isLocal, column };
}

/** After SELECT: one of the two shapes, or null. */
export function classifySetConfig(c: Cursor): CompatStatement | null {
  const items: NonNullable<ReturnType<typeof call>>[] = [];
  do {
    const item = call(c);
    if (item === null) return null;
    items.push(item);
  } while (c.op(','));
  if (c.atEnd()) {
    const calls: Call[] = [];
    for (const it of items) {
      if (!('literal' in it.arg1)) return null;
      calls.push({
        name: foldAscii(it.arg1.literal),
        value: it.value,
        isLocal: it.isLocal,
        column: it.column,
      });
    }
    return { kind: 'set-config', shape: 'literal', calls };
  }
  return pgSettings(c, items);
}

/** FROM [pg_catalog.]pg_settings WHERE name = 'x', with exactly one call. */
function pgSettings(c: Cursor, items: NonNullable<ReturnType<typeof call>>[]): CompatStatement | null {
  const item = items[0];
  if (items.length !== 1 || item === undefined || !c.kw('from')) return null;
  if (c.isKw('pg_catalog') && c.isOp('.', 1)) c.i += 2;
  if (!c.kw('pg_settings') || !c.kw('where') || !c.kw('name') || !c.op('=')) return null;
  const s = c.sconst();
  if (s === null || !c.atEnd()) return null;
  // pg_settings compares names exactly ('TimeZone', not 'timezone'): the name is kept as written, and
  // the engine decides whether that row exists. A literal first argument must be the same name.
  const name = s.value;
  if ('literal' in item.arg1 && item.arg1.literal !== name) return null;
  return {
    kind: 'set-config',
    shape: 'pg-settings',
    calls: [{ name, value: item.value, isLocal: item.isLocal, column: item.column }],
  };
}
