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

/** Lexes `sql` into tokens, skipping whitespace and comments. */
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
      continue;
    }
    if (c === Ch.Minus && next === Ch.Minus) {
      i += 2;
      while (i < n && sql.charCodeAt(i) !== Ch.Lf && sql.charCodeAt(i) !== Ch.Cr) i++;
      continue;
    }
    if (c === Ch.Slash && next === Ch.Star) {
      // Block comments nest in PostgreSQL (unlike the SQL standard's C-style ones).
      let depth = 1;
      i += 2;
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
      if (depth > 0) {
        unterminatedComment = true;
        i = n;
      }
      continue;
    }
    const start = i;
    if (c === Ch.Quote) {
      pushQuoted(tokens, sql, start, start + 1, Ch.Quote, false, 'string', keep);
      i = tokens[tokens.length - 1]!.end;
      continue;
    }
    if (c === Ch.DQuote) {
      pushQuoted(tokens, sql, start, start + 1, Ch.DQuote, false, 'qident', keep);
      i = tokens[tokens.length - 1]!.end;
      continue;
    }
    if (isIdentStart(c)) {
      // String and identifier prefixes: E'...', B'...', X'...', N'...', U&'...', U&"...".
      const lowerC = c | 0x20;
      if (next === Ch.Quote && (lowerC === 0x65 || lowerC === 0x62 || lowerC === 0x78 || lowerC === 0x6e)) {
        const isE = lowerC === 0x65;
        // N'...' is a national character string: same rules as '...'.
        const decoded = isE || lowerC === 0x6e;
        pushQuoted(tokens, sql, start, start + 2, Ch.Quote, isE, 'string', decoded ? keep : null);
        i = tokens[tokens.length - 1]!.end;
        continue;
      }
      if (lowerC === 0x75 && next === Ch.Amp) {
        const q = sql.charCodeAt(i + 2);
        if (q === Ch.Quote || q === Ch.DQuote) {
          pushQuoted(tokens, sql, start, start + 3, q, false, q === Ch.Quote ? 'string' : 'qident', (v) =>
            decodeUnicodeEscapes(v, '\\'),
          );
          tokens[tokens.length - 1]!.unicode = true;
          i = tokens[tokens.length - 1]!.end;
          continue;
        }
      }
      i++;
      while (i < n && isIdentCont(sql.charCodeAt(i))) i++;
      tokens.push({ kind: 'word', start, end: i, lower: sql.slice(start, i).toLowerCase() });
      continue;
    }
    if (c === Ch.Dollar) {
      if (isDigit(next)) {
        i += 2;
        while (i < n && isDigit(sql.charCodeAt(i))) i++;
        tokens.push({ kind: 'param', start, end: i, lower: sql.slice(start, i) });
        continue;
      }
      const tag = dollarTag(sql, i);
      if (tag !== undefined) {
        const bodyStart = i + tag.length;
        const close = sql.indexOf(tag, bodyStart);
        if (close < 0) {
          tokens.push({ kind: 'string', start, end: n, lower: sql.slice(bodyStart), unterminated: true });
          i = n;
        } else {
          i = close + tag.length;
          tokens.push({ kind: 'string', start, end: i, lower: sql.slice(bodyStart, close) });
        }
        continue;
      }
    }
    if (isDigit(c) || (c === Ch.Dot && isDigit(next))) {
      i = scanNumber(sql, i);
      tokens.push({ kind: 'number', start, end: i, lower: sql.slice(start, i).toLowerCase() });
      continue;
    }
    // One punctuation or operator character (a surrogate half is >= 0x80, so never lands here).
    i++;
    tokens.push({ kind: 'op', start, end: i, lower: sql[start] });
  }
  return { tokens, unterminatedComment };
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
): void {
  const r = scanQuoted(sql, bodyStart, quote, backslash);
  const token: Token = { kind, start, end: r.end, lower: decode === null ? undefined : decode(r.value) };
  if (r.unterminated) token.unterminated = true;
  tokens.push(token);
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
