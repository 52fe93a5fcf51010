/**
 * The classifier's own SQL lexer and statement splitter (see classify.ts for why it is not shared
 * with anything in the proxy). It follows PostgreSQL's lexical rules closely enough to tell code
 * from literals, comments and quoted identifiers; it does not parse.
 *
 * PostgreSQL lexical structure: https://www.postgresql.org/docs/current/sql-syntax-lexical.html
 * - whitespace; `--` comments to the end of the line; `/* *\/` comments, which nest;
 * - `'...'` strings with `''` (standard_conforming_strings on, so a backslash is literal), the
 *   `E'...'` form with backslash escapes, `U&'...'`, `B'...'`, `X'...'`, `N'...'`;
 * - dollar quotes `$tag$...$tag$` (the tag is optional; `$1` is a parameter, not a quote);
 * - quoted identifiers `"..."` with `""`, and `U&"..."`;
 * - unquoted identifiers and keywords (case-insensitive), numbers, punctuation.
 *
 * Pure and total: never throws; an unterminated string, quoted identifier or comment runs to the
 * end of the text (PostgreSQL would report a syntax error for it, which the endpoint leaves to
 * PostgreSQL).
 */

export type TokenKind =
  /** An unquoted identifier or keyword; `lower` holds it in lower case. */
  | 'word'
  /** A quoted identifier; `lower` holds its name as written, `""` undoubled (case kept). */
  | 'qident'
  /** A string constant of any form; `lower` holds its value where it is known exactly. */
  | 'string'
  | 'number'
  /** `$1`, `$2`...: a parameter placeholder of the extended protocol. */
  | 'param'
  /** One punctuation or operator character. */
  | 'op';

export interface Token {
  kind: TokenKind;
  /** `[start, end)` in UTF-16 code units of the lexed text. */
  start: number;
  end: number;
  /**
   * word: the word in lower case; qident: the identifier; string: the value for `'...'`, `E'...'`,
   * `N'...'` and dollar-quoted strings, and for `U&'...'` with the default escape character
   * (undefined when it has an invalid escape); undefined for bit and hex strings; op: the character;
   * number/param: the text. A `U&` token followed by `UESCAPE 'c'` is decoded again by the reader
   * with `decodeUnicodeEscapes`.
   */
  lower: string | undefined;
  /** Set when a string, quoted identifier or comment ran to the end of the text unterminated. */
  unterminated?: true;
  /** Set on `U&'...'` strings and `U&"..."` identifiers. */
  unicode?: true;
}

export interface LexResult {
  tokens: Token[];
  /** Whether the text ended inside a `/* *\/` comment (which yields no token). */
  unterminatedComment: boolean;
}

enum Ch {
  Tab = 9,
  Lf = 10,
  Vt = 11,
  Ff = 12,
  Cr = 13,
  Space = 32,
  Quote = 39, // '
  DQuote = 34, // "
  Dollar = 36, // $
  Amp = 38, // &
  Star = 42, // *
  Plus = 43, // +
  Minus = 45, // -
  Dot = 46, // .
  Slash = 47, // /
  Zero = 48,
  Nine = 57,
  Backslash = 92,
  Underscore = 95,
}

function isSpace(c: number): boolean {
  return c === Ch.Space || c === Ch.Tab || c === Ch.Lf || c === Ch.Cr || c === Ch.Ff || c === Ch.Vt;
}

function isDigit(c: number): boolean {
  return c >= Ch.Zero && c <= Ch.Nine;
}

function isLetter(c: number): boolean {
  return (c >= 65 && c <= 90) || (c >= 97 && c <= 122);
}

/** PostgreSQL's ident_start: a letter, `_`, or any non-ASCII character. */
function isIdentStart(c: number): boolean {
  return isLetter(c) || c === Ch.Underscore || c >= 0x80;
}

/** PostgreSQL's ident_cont: ident_start, a digit, or `$`. */
function isIdentCont(c: number): boolean {
  return isIdentStart(c) || isDigit(c) || c === Ch.Dollar;
}

/** Skips a `'...'` body from just after the opening quote; `backslash` for `E'...'` strings. */
function scanQuoted(
  sql: string,
  from: number,
  quote: number,
  backslash: boolean,
): { end: number; value: string; unterminated: boolean } {
  let i = from;
  let value = '';
  let chunkStart = i;
  const n = sql.length;
  while (i < n) {
    const c = sql.charCodeAt(i);
    if (backslash && c === Ch.Backslash) {
      value += sql.slice(chunkStart, i);
      if (i + 1 < n) value += decodeEscape(sql, i + 1);
      i += 2;
      chunkStart = i;
      continue;
    }
    if (c === quote) {
      if (sql.charCodeAt(i + 1) === quote) {
        value += sql.slice(chunkStart, i + 1);
        i += 2;
        chunkStart = i;
        continue;
      }
      value += sql.slice(chunkStart, i);
      return { end: i + 1, value, unterminated: false };
    }
    i++;
  }
  value += sql.slice(chunkStart, Math.min(i, n));
  return { end: n, value, unterminated: true };
}

/**
 * The value of the one-character escape at `at` (after a backslash) in an `E'...'` string. Only the
 * simple escapes are decoded; octal, hex and Unicode escapes keep their letter, which is all the
 * classifier needs (it only compares values to parameter names).
 */
function decodeEscape(sql: string, at: number): string {
  const c = sql[at] ?? '';
  switch (c) {
    case 'b':
      return '\b';
    case 'f':
      return '\f';
    case 'n':
      return '\n';
    case 'r':
      return '\r';
    case 't':
      return '\t';
    default:
      return c;
  }
}

/** The dollar-quote opener (`$$` or `$tag$`) at `at`, or undefined when `$` starts none there. */
function dollarTag(sql: string, at: number): string | undefined {
  let i = at + 1;
  const first = sql.charCodeAt(i);
  if (first === Ch.Dollar) return '$$';
  if (!isIdentStart(first)) return undefined;
  i++;
  while (i < sql.length) {
    const c = sql.charCodeAt(i);
    if (c === Ch.Dollar) return sql.slice(at, i + 1);
    if (!isIdentCont(c)) return undefined;
    i++;
  }
  return undefined;
}

/**
 * Lexes `sql` into tokens, skipping whitespace and comments. One pass: each step below reads one
 * token (or comment) from `i` and returns where the next one starts.
 */
export function lex(sql: string): LexResult {
  const tokens: Token[] = [];
  const n = sql.length;
  let unterminatedComment = false;
  let i = 0;
  while (i < n) {
    const c = sql.charCodeAt(i);
    const next = sql.charCodeAt(i + 1);
    if (isSpace(c)) {
      i++;
    } else if (c === Ch.Minus && next === Ch.Minus) {
      i = skipLineComment(sql, i + 2);
    } else if (c === Ch.Slash && next === Ch.Star) {
      i = skipBlockComment(sql, i + 2);
      if (i < 0) {
        unterminatedComment = true;
        i = n;
      }
    } else if (c === Ch.Quote) {
      i = pushQuoted(tokens, sql, i, i + 1, Ch.Quote, false, 'string', keep);
    } else if (c === Ch.DQuote) {
      i = pushQuoted(tokens, sql, i, i + 1, Ch.DQuote, false, 'qident', keep);
    } else if (isIdentStart(c)) {
      i = lexWordOrPrefixed(tokens, sql, i, c, next);
    } else {
      // `$` that starts neither a parameter nor a dollar quote falls through to an operator.
      const end = c === Ch.Dollar ? lexDollar(tokens, sql, i, next) : -1;
      if (end >= 0) i = end;
      else if (isDigit(c) || (c === Ch.Dot && isDigit(next))) i = pushNumber(tokens, sql, i);
      else {
        // One punctuation or operator character (a surrogate half is >= 0x80, so never lands here).
        tokens.push({ kind: 'op', start: i, end: i + 1, lower: sql[i] });
        i++;
      }
    }
  }
  return { tokens, unterminatedComment };
}

/** Skips a `--` comment from just after the dashes; returns where the line break (or text) ends it. */
function skipLineComment(sql: string, from: number): number {
  const n = sql.length;
  let i = from;
  while (i < n && sql.charCodeAt(i) !== Ch.Lf && sql.charCodeAt(i) !== Ch.Cr) i++;
  return i;
}

/**
 * Skips a block comment from just after its `/*`; returns the index after its end, or -1 when the
 * text ends inside it. Block comments nest in PostgreSQL (unlike the SQL standard's C-style ones).
 */
function skipBlockComment(sql: string, from: number): number {
  const n = sql.length;
  let depth = 1;
  let i = from;
  while (i < n && depth > 0) {
    const d = sql.charCodeAt(i);
    const e = sql.charCodeAt(i + 1);
    if (d === Ch.Slash && e === Ch.Star) {
      depth++;
      i += 2;
    } else if (d === Ch.Star && e === Ch.Slash) {
      depth--;
      i += 2;
    } else {
      i++;
    }
  }
  return depth > 0 ? -1 : i;
}

/**
 * A word at `start` (whose first character `c` is an ident_start), or the string or quoted
 * identifier it prefixes: E'...', B'...', X'...', N'...', U&'...', U&"...". Returns the end.
 */
function lexWordOrPrefixed(tokens: Token[], sql: string, start: number, c: number, next: number): number {
  const lowerC = c | 0x20;
  if (next === Ch.Quote && (lowerC === 0x65 || lowerC === 0x62 || lowerC === 0x78 || lowerC === 0x6e)) {
    const isE = lowerC === 0x65;
    // N'...' is a national character string: same rules as '...'.
    const decoded = isE || lowerC === 0x6e;
    return pushQuoted(tokens, sql, start, start + 2, Ch.Quote, isE, 'string', decoded ? keep : null);
  }
  if (lowerC === 0x75 && next === Ch.Amp) {
    const q = sql.charCodeAt(start + 2);
    if (q === Ch.Quote || q === Ch.DQuote) {
      const end = pushQuoted(
        tokens,
        sql,
        start,
        start + 3,
        q,
        false,
        q === Ch.Quote ? 'string' : 'qident',
        (v) => decodeUnicodeEscapes(v, '\\'),
      );
      tokens[tokens.length - 1]!.unicode = true;
      return end;
    }
  }
  const n = sql.length;
  let i = start + 1;
  while (i < n && isIdentCont(sql.charCodeAt(i))) i++;
  tokens.push({ kind: 'word', start, end: i, lower: sql.slice(start, i).toLowerCase() });
  return i;
}

/**
 * A parameter (`$1`) or a dollar-quoted string at the `$` at `start`; returns the end, or -1 when
 * the `$` starts neither (it is then an operator character).
 */
function lexDollar(tokens: Token[], sql: string, start: number, next: number): number {
  const n = sql.length;
  if (isDigit(next)) {
    let i = start + 2;
    while (i < n && isDigit(sql.charCodeAt(i))) i++;
    tokens.push({ kind: 'param', start, end: i, lower: sql.slice(start, i) });
    return i;
  }
  const tag = dollarTag(sql, start);
  if (tag === undefined) return -1;
  const bodyStart = start + tag.length;
  const close = sql.indexOf(tag, bodyStart);
  if (close < 0) {
    tokens.push({ kind: 'string', start, end: n, lower: sql.slice(bodyStart), unterminated: true });
    return n;
  }
  const end = close + tag.length;
  tokens.push({ kind: 'string', start, end, lower: sql.slice(bodyStart, close) });
  return end;
}

function pushNumber(tokens: Token[], sql: string, start: number): number {
  const end = scanNumber(sql, start);
  tokens.push({ kind: 'number', start, end, lower: sql.slice(start, end).toLowerCase() });
  return end;
}

function pushQuoted(
  tokens: Token[],
  sql: string,
  start: number,
  bodyStart: number,
  quote: number,
  backslash: boolean,
  kind: 'string' | 'qident',
  decode: ((value: string) => string | undefined) | null,
): number {
  const r = scanQuoted(sql, bodyStart, quote, backslash);
  const token: Token = { kind, start, end: r.end, lower: decode === null ? undefined : decode(r.value) };
  if (r.unterminated) token.unterminated = true;
  tokens.push(token);
  return r.end;
}

const keep = (value: string): string => value;

/**
 * The value of a `U&'...'` / `U&"..."` body (quotes already undoubled) with escape character `esc`:
 * `esc esc` is `esc`, `esc XXXX` and `esc + XXXXXX` are code points in hex. Undefined when an
 * escape is invalid (PostgreSQL rejects the literal then).
 */
export function decodeUnicodeEscapes(body: string, esc: string): string | undefined {
  let out = '';
  let i = 0;
  while (i < body.length) {
    const at = body.indexOf(esc, i);
    if (at < 0) return out + body.slice(i);
    out += body.slice(i, at);
    if (body[at + 1] === esc) {
      out += esc;
      i = at + 2;
      continue;
    }
    const long = body[at + 1] === '+';
    const hex = long ? body.slice(at + 2, at + 8) : body.slice(at + 1, at + 5);
    if (!/^[0-9a-fA-F]+$/.test(hex) || hex.length !== (long ? 6 : 4)) return undefined;
    const cp = Number.parseInt(hex, 16);
    if (cp > 0x10ffff) return undefined;
    out += String.fromCodePoint(cp);
    i = at + (long ? 8 : 5);
  }
  return out;
}

/** Digits, an optional fraction and exponent, and any identifier characters glued to them. */
function scanNumber(sql: string, from: number): number {
  const n = sql.length;
  let i = from;
  while (i < n && isDigit(sql.charCodeAt(i))) i++;
  if (sql.charCodeAt(i) === Ch.Dot && sql.charCodeAt(i + 1) !== Ch.Dot) {
    i++;
    while (i < n && isDigit(sql.charCodeAt(i))) i++;
  }
  const e = sql.charCodeAt(i) | 0x20;
  if (e === 0x65) {
    let j = i + 1;
    const sign = sql.charCodeAt(j);
    if (sign === Ch.Plus || sign === Ch.Minus) j++;
    if (isDigit(sql.charCodeAt(j))) {
      i = j;
      while (i < n && isDigit(sql.charCodeAt(i))) i++;
    }
  }
  // 0x1F, 1_000 and PostgreSQL's "trailing junk": one token either way.
  while (i < n && (isIdentCont(sql.charCodeAt(i)) || sql.charCodeAt(i) === Ch.Underscore)) i++;
  return i;
}

export interface StatementTokens {
  /** `[start, end)` of the statement's text, from its first token to its last (no `;`). */
  start: number;
  end: number;
  tokens: Token[];
  /** Whether the statement ends in an unterminated string, quoted identifier or comment. */
  unterminated: boolean;
}

/**
 * Splits lexed text into top-level statements at `;`, as psql does: not inside parentheses, and not
 * inside the `BEGIN ... END` body of a `CREATE [OR REPLACE] FUNCTION|PROCEDURE` (SQL-standard bodies,
 * `BEGIN ATOMIC`, PostgreSQL 14+), where `CASE ... END` nests. Empty statements are left out.
 */
export function splitStatements(sql: string, lexed: LexResult = lex(sql)): StatementTokens[] {
  const out: StatementTokens[] = [];
  let current: Token[] = [];
  let parenDepth = 0;
  let beginDepth = 0;
  const flush = (): void => {
    if (current.length > 0) {
      const last = current[current.length - 1]!;
      out.push({
        start: current[0]!.start,
        end: last.end,
        tokens: current,
        unterminated: last.unterminated === true,
      });
    }
    current = [];
    parenDepth = 0;
    beginDepth = 0;
  };
  for (const t of lexed.tokens) {
    if (t.kind === 'op') {
      if (t.lower === ';' && parenDepth === 0 && beginDepth === 0) {
        flush();
        continue;
      }
      if (t.lower === '(') parenDepth++;
      else if (t.lower === ')' && parenDepth > 0) parenDepth--;
    } else if (t.kind === 'word' && parenDepth === 0 && isRoutineHeader(current)) {
      if (t.lower === 'begin') beginDepth++;
      else if (t.lower === 'case' && beginDepth > 0) beginDepth++;
      else if (t.lower === 'end' && beginDepth > 0) beginDepth--;
    }
    current.push(t);
  }
  if (lexed.unterminatedComment && current.length > 0) {
    // The comment runs to the end of the text: it belongs to the last statement, which PostgreSQL
    // will reject for it, so the wire layer must not cut it off.
    out.push({ start: current[0]!.start, end: sql.length, tokens: current, unterminated: true });
    return out;
  }
  flush();
  return out;
}

/** Whether the statement so far starts `CREATE [OR REPLACE] FUNCTION|PROCEDURE`. */
function isRoutineHeader(tokens: Token[]): boolean {
  const w = (k: number): string | undefined => (tokens[k]?.kind === 'word' ? tokens[k]?.lower : undefined);
  if (w(0) !== 'create') return false;
  let k = 1;
  if (w(1) === 'or' && w(2) === 'replace') k = 3;
  const kind = w(k);
  return kind === 'function' || kind === 'procedure';
}
