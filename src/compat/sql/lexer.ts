/**
 * The compatibility layer's SQL lexer: the token boundaries and values of PostgreSQL's scan.l
 * (src/backend/parser/scan.l), for the few statements the layer reads. It never throws: where
 * PostgreSQL's lexer would report an error (an unterminated string or comment, a bad escape, trailing
 * junk after a number), the token is marked `bad`, and an unterminated construct becomes one token
 * that runs to the end of the text, so the statement reaches the server and the server reports it.
 */

import { decodeEscapeString, decodeUnicodeEscapes } from './escapes.js';

export type TokenKind = 'ident' | 'string' | 'number' | 'param' | 'op' | 'error';

/** How a string constant was written: '' plain, E'', U&'', B'', X'', N'', or a dollar quote. */
export type StringPrefix = '' | 'e' | 'u' | 'b' | 'x' | 'n' | '$';

export interface Token {
  kind: TokenKind;
  start: number;
  end: number;
  /**
   * ident: the name as PostgreSQL reads it (ASCII-folded to lower case unless quoted, cut to 63 bytes);
   * string: the decoded value ('' when bad); number, param, op, error: the source text.
   */
  value: string;
  /** ident: written as "..." or U&"..." (never a keyword). */
  quoted: boolean;
  /** string: how it was written. */
  prefix: StringPrefix;
  /** PostgreSQL's lexer would report a syntax error at this token. */
  bad: boolean;
}

/** NAMEDATALEN - 1: PostgreSQL cuts longer identifiers (with a NOTICE). */
const MAX_IDENT_BYTES = 63;

export function isSpace(c: number): boolean {
  // scan.l's space: [ \t\n\r\f\v]
  return c === 32 || (c >= 9 && c <= 13);
}

/** ident_start: [A-Za-z\200-\377_] (any non-ASCII character, as PostgreSQL sees its bytes). */
export function isIdentStart(c: number): boolean {
  return (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || c === 95 || c >= 128;
}

/** ident_cont: ident_start, digits and '$'. */
export function isIdentCont(c: number): boolean {
  return isIdentStart(c) || (c >= 48 && c <= 57) || c === 36;
}

function isDigit(c: number): boolean {
  return c >= 48 && c <= 57;
}

function isHex(c: number): boolean {
  return isDigit(c) || (c >= 97 && c <= 102) || (c >= 65 && c <= 70);
}

/** op_chars of scan.l. */
const OP_CHARS = '~!@#^&|`?+-*/%<>=';
/** The characters that keep a trailing + or - on a multi-character operator. */
const OP_KEEP_SIGN = '~!@#^&|`?%';

/** op_chars as a lookup table by character code (the lexer asks for every operator character). */
const OP_TABLE: readonly boolean[] = Array.from({ length: 128 }, (_, c) =>
  OP_CHARS.includes(String.fromCharCode(c)),
);

function isOpChar(c: number): boolean {
  return c < 128 && OP_TABLE[c] === true;
}

/** End of a nested block comment starting at `i` (at its '/*'), or -1 when it is unterminated. */
export function blockCommentEnd(sql: string, i: number): number {
  let depth = 0;
  const n = sql.length;
  while (i < n) {
    const c = sql.charCodeAt(i);
    if (c === 47 && sql.charCodeAt(i + 1) === 42) {
      depth++;
      i += 2;
    } else if (c === 42 && sql.charCodeAt(i + 1) === 47) {
      depth--;
      i += 2;
      if (depth === 0) return i;
    } else {
      i++;
    }
  }
  return -1;
}

/** End of a `--` comment starting at `i`: at its newline (\n or \r), or the end of the text. */
export function lineCommentEnd(sql: string, i: number): number {
  const n = sql.length;
  while (i < n) {
    const c = sql.charCodeAt(i);
    if (c === 10 || c === 13) return i;
    i++;
  }
  return n;
}

/**
 * Skips whitespace and comments from `i`. Returns the next token's start, or -(start + 1) of an
 * unterminated block comment.
 */
export function skipIgnorable(sql: string, i: number): number {
  const n = sql.length;
  while (i < n) {
    const c = sql.charCodeAt(i);
    if (isSpace(c)) i++;
    else if (c === 45 && sql.charCodeAt(i + 1) === 45) i = lineCommentEnd(sql, i);
    else if (c === 47 && sql.charCodeAt(i + 1) === 42) {
      const end = blockCommentEnd(sql, i);
      if (end < 0) return -(i + 1);
      i = end;
    } else break;
  }
  return i;
}

/**
 * After a closing quote at `i`: the index of the next quote when the string continues there
 * (scan.l's quotecontinue: whitespace that holds a newline; `--` comments allowed, block comments
 * not), else -1.
 */
function continuation(sql: string, i: number): number {
  let sawNewline = false;
  const n = sql.length;
  while (i < n) {
    const c = sql.charCodeAt(i);
    if (c === 10 || c === 13) {
      sawNewline = true;
      i++;
    } else if (c === 45 && sql.charCodeAt(i + 1) === 45) i = lineCommentEnd(sql, i);
    // Before the newline only horizontal space ([ \t\f]) and -- comments; after it any space.
    else if (sawNewline ? isSpace(c) : c === 32 || c === 9 || c === 12) i++;
    else break;
  }
  return sawNewline && sql.charCodeAt(i) === 39 ? i : -1;
}

function makeToken(kind: TokenKind, start: number, end: number, value: string): Token {
  return { kind, start, end, value, quoted: false, prefix: '', bad: false };
}

/** Cuts a name to 63 UTF-8 bytes without splitting a character, as PostgreSQL's truncate_identifier. */
export function truncateIdentifier(name: string): string {
  if (name.length * 3 <= MAX_IDENT_BYTES || Buffer.byteLength(name) <= MAX_IDENT_BYTES) return name;
  let bytes = 0;
  let out = '';
  for (const ch of name) {
    const b = Buffer.byteLength(ch);
    if (bytes + b > MAX_IDENT_BYTES) break;
    bytes += b;
    out += ch;
  }
  return out;
}

/** ASCII-only lower-casing, as PostgreSQL's downcase_identifier in a multi-byte encoding. */
export function foldAscii(s: string): string {
  let upper = false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 65 && c <= 90) {
      upper = true;
      break;
    }
  }
  return upper ? s.replace(/[A-Z]+/g, (m) => m.toLowerCase()) : s;
}

/** The lexer: `next()` returns tokens in order, then null. */
export class Lexer {
  private pos = 0;

  constructor(
    readonly sql: string,
    /** standard_conforming_strings: false makes plain '' strings read backslash escapes. */
    readonly scs = true,
  ) {}

  next(): Token | null {
    const sql = this.sql;
    const start = skipIgnorable(sql, this.pos);
    if (start < 0) {
      this.pos = sql.length;
      const at = -start - 1;
      return { ...makeToken('error', at, sql.length, sql.slice(at)), bad: true };
    }
    if (start >= sql.length) {
      this.pos = start;
      return null;
    }
    const tok = this.scan(start);
    this.pos = tok.end;
    return tok;
  }

  private scan(i: number): Token {
    const sql = this.sql;
    const c = sql.charCodeAt(i);
    const c1 = sql.charCodeAt(i + 1);
    if (isIdentStart(c)) {
      if (c1 === 39) {
        const p = c | 0x20;
        if (p === 101) return this.quoted(i, i + 1, 'e');
        if (p === 98) return this.quoted(i, i + 1, 'b');
        if (p === 120) return this.quoted(i, i + 1, 'x');
        if (p === 110) return this.quoted(i, i + 1, 'n');
      }
      if ((c | 0x20) === 117 && c1 === 38) {
        const c2 = sql.charCodeAt(i + 2);
        if (c2 === 39) return this.quoted(i, i + 2, 'u');
        if (c2 === 34) return this.uIdent(i);
      }
      return this.identifier(i);
    }
    if (c === 34) return this.quotedIdent(i);
    if (c === 39) return this.quoted(i, i, this.scs ? '' : 'e', true);
    if (c === 36) return this.dollar(i);
    if (isDigit(c) || (c === 46 && isDigit(c1))) return this.number(i);
    if (c === 46) return makeToken('op', i, c1 === 46 ? i + 2 : i + 1, c1 === 46 ? '..' : '.');
    if (c === 58) {
      const two = c1 === 58 || c1 === 61;
      return makeToken('op', i, two ? i + 2 : i + 1, two ? sql.slice(i, i + 2) : ':');
    }
    if (isOpChar(c)) return this.operator(i);
    // Punctuation and anything else: one character (the grammar decides what is valid).
    const w = c >= 0xd800 && c <= 0xdbff && i + 1 < sql.length ? 2 : 1;
    return makeToken('op', i, i + w, sql.slice(i, i + w));
  }

  private identifier(i: number): Token {
    const sql = this.sql;
    let j = i + 1;
    while (j < sql.length && isIdentCont(sql.charCodeAt(j))) j++;
    return makeToken('ident', i, j, truncateIdentifier(foldAscii(sql.slice(i, j))));
  }

  /** "..." with "" doubling; end index of the closing quote + 1, or -1 when unterminated. */
  private delimitedEnd(open: number): number {
    const sql = this.sql;
    let j = open + 1;
    for (;;) {
      const q = sql.indexOf('"', j);
      if (q < 0) return -1;
      if (sql.charCodeAt(q + 1) === 34) j = q + 2;
      else return q + 1;
    }
  }

  private quotedIdent(i: number): Token {
    const end = this.delimitedEnd(i);
    if (end < 0) return this.unterminated(i);
    const name = this.sql.slice(i + 1, end - 1).replaceAll('""', '"');
    // A zero-length delimited identifier is an error in PostgreSQL.
    return { ...makeToken('ident', i, end, truncateIdentifier(name)), quoted: true, bad: name === '' };
  }

  private uIdent(i: number): Token {
    const end = this.delimitedEnd(i + 2);
    if (end < 0) return this.unterminated(i);
    const raw = this.sql.slice(i + 3, end - 1).replaceAll('""', '"');
    const esc = this.uescape(end);
    const decoded = esc.ok ? decodeUnicodeEscapes(raw, esc.char) : null;
    const bad = decoded === null || decoded === '';
    const value = decoded === null ? '' : truncateIdentifier(decoded);
    return { ...makeToken('ident', i, esc.end, value), quoted: true, bad };
  }

  /** A following `UESCAPE 'c'` clause (comments and whitespace allowed around it). */
  private uescape(after: number): { end: number; char: string; ok: boolean } {
    const sql = this.sql;
    const k = skipIgnorable(sql, after);
    if (k < 0 || sql.slice(k, k + 7).toLowerCase() !== 'uescape' || isIdentCont(sql.charCodeAt(k + 7))) {
      return { end: after, char: '\\', ok: true };
    }
    const q = skipIgnorable(sql, k + 7);
    // UESCAPE must be followed by a simple one-character string literal.
    if (q < 0 || sql.charCodeAt(q) !== 39) return { end: k + 7, char: '\\', ok: false };
    const close = findClose(sql, q + 1, false);
    if (close < 0) return { end: sql.length, char: '\\', ok: false };
    const end = close + 1;
    const body = sql.slice(q + 1, close);
    const ch = body.charCodeAt(0);
    const ok = body.length === 1 && !isHex(ch) && ch !== 43 && ch !== 39 && ch !== 34 && !isSpace(ch);
    return { end, char: body, ok };
  }

  /**
   * A quoted string; `bodyStart` is the index of its opening quote. E strings (and plain strings
   * when scs is off) read backslash escapes, so `\'` does not end them.
   */
  private quoted(i: number, open: number, prefix: StringPrefix, plain = false): Token {
    const sql = this.sql;
    const backslash = prefix === 'e';
    const pieces: string[] = [];
    let j = open + 1;
    for (;;) {
      const closeAt = findClose(sql, j, backslash);
      if (closeAt < 0) return this.unterminated(i);
      pieces.push(sql.slice(j, closeAt));
      const next = continuation(sql, closeAt + 1);
      if (next < 0) {
        j = closeAt + 1;
        break;
      }
      j = next + 1;
    }
    let end = j;
    let value: string | null;
    if (prefix === 'u') {
      const esc = this.uescape(end);
      end = esc.end;
      const raw = pieces.map((p) => p.replaceAll("''", "'")).join('');
      // U&'' with standard_conforming_strings off is refused by PostgreSQL.
      value = esc.ok && this.scs ? decodeUnicodeEscapes(raw, esc.char) : null;
    } else if (backslash) {
      value = decodeEscapeString(pieces.join(''));
    } else {
      const text = pieces.map((p) => p.replaceAll("''", "'")).join('');
      const digitsOk =
        prefix === 'b' ? /^[01]*$/.test(text) : prefix === 'x' ? /^[0-9a-fA-F]*$/.test(text) : true;
      value = digitsOk ? text : null;
    }
    const tok = makeToken('string', i, end, value ?? '');
    tok.prefix = plain ? '' : prefix;
    tok.bad = value === null;
    return tok;
  }

  private dollar(i: number): Token {
    const sql = this.sql;
    const c1 = sql.charCodeAt(i + 1);
    if (isDigit(c1)) {
      let j = i + 1;
      while (isDigit(sql.charCodeAt(j))) j++;
      const tok = makeToken('param', i, j, sql.slice(i, j));
      // param_junk: $1abc (an identifier after the digits; "$1$$" is $1 then a dollar quote)
      tok.bad = j < sql.length && isIdentStart(sql.charCodeAt(j));
      if (tok.bad) {
        while (j < sql.length && isIdentCont(sql.charCodeAt(j))) j++;
        tok.end = j;
        tok.value = sql.slice(i, j);
      }
      return tok;
    }
    // A tag follows identifier rules but may not contain '$' and may not start with a digit.
    let j = i + 1;
    if (c1 !== 36) {
      if (!isIdentStart(c1)) return makeToken('op', i, i + 1, '$');
      while (j < sql.length && isIdentCont(sql.charCodeAt(j)) && sql.charCodeAt(j) !== 36) j++;
      if (sql.charCodeAt(j) !== 36) return makeToken('op', i, i + 1, '$');
    }
    const delim = sql.slice(i, j + 1);
    const close = sql.indexOf(delim, j + 1);
    if (close < 0) return this.unterminated(i);
    const tok = makeToken('string', i, close + delim.length, sql.slice(j + 1, close));
    tok.prefix = '$';
    return tok;
  }

  private number(i: number): Token {
    const sql = this.sql;
    let j = i;
    const c1 = sql.charCodeAt(i + 1) | 0x20;
    const base = sql.charCodeAt(i) === 48 ? (c1 === 120 ? 16 : c1 === 111 ? 8 : c1 === 98 ? 2 : 0) : 0;
    if (base !== 0 && digitsEnd(sql, i + 2, base, true) > i + 2) {
      j = digitsEnd(sql, i + 2, base, true);
    } else {
      j = digitsEnd(sql, i, 10, false);
      // "1..2" is 1 followed by '..'.
      if (sql.charCodeAt(j) === 46 && sql.charCodeAt(j + 1) !== 46) j = digitsEnd(sql, j + 1, 10, false);
      const e = sql.charCodeAt(j) | 0x20;
      if (e === 101) {
        let k = j + 1;
        const s = sql.charCodeAt(k);
        if (s === 43 || s === 45) k++;
        const d = digitsEnd(sql, k, 10, false);
        // realfail ("1e+") is an error; "1e" alone is trailing junk, caught below.
        if (d > k) j = d;
        else if (k > j + 1) return { ...makeToken('number', i, k, sql.slice(i, k)), bad: true };
      }
    }
    const tok = makeToken('number', i, j, sql.slice(i, j));
    if (j < sql.length && isIdentStart(sql.charCodeAt(j))) {
      // Trailing junk after a numeric literal is an error since PostgreSQL 15.
      while (j < sql.length && isIdentCont(sql.charCodeAt(j))) j++;
      tok.end = j;
      tok.value = sql.slice(i, j);
      tok.bad = true;
    }
    return tok;
  }

  private operator(i: number): Token {
    const sql = this.sql;
    let j = i;
    while (j < sql.length && isOpChar(sql.charCodeAt(j))) {
      // A comment start ends the operator.
      const c = sql.charCodeAt(j);
      const d = sql.charCodeAt(j + 1);
      if (j > i && ((c === 45 && d === 45) || (c === 47 && d === 42))) break;
      j++;
    }
    let n = j - i;
    const last = sql.charCodeAt(i + n - 1);
    if (n > 1 && (last === 43 || last === 45)) {
      // "=-1" is '=' then '-1': a trailing sign is dropped unless the operator holds one of ~!@#^&|`?%.
      let keep = false;
      for (let k = i; k < i + n - 1; k++) if (OP_KEEP_SIGN.includes(sql[k]!)) keep = true;
      if (!keep) {
        do n--;
        while (n > 1 && (sql.charCodeAt(i + n - 1) === 43 || sql.charCodeAt(i + n - 1) === 45));
      }
    }
    return makeToken('op', i, i + n, sql.slice(i, i + n));
  }

  private unterminated(i: number): Token {
    return { ...makeToken('error', i, this.sql.length, this.sql.slice(i)), bad: true };
  }
}

/** End of a run of digits of `base` from `i`, with single underscores between digits. */
function digitsEnd(sql: string, i: number, base: number, leadingUnderscore: boolean): number {
  const ok = (c: number) =>
    base === 16
      ? isHex(c)
      : base === 10
        ? isDigit(c)
        : base === 8
          ? c >= 48 && c <= 55
          : c === 48 || c === 49;
  let j = i;
  let first = true;
  for (;;) {
    const c = sql.charCodeAt(j);
    if (ok(c)) j++;
    else if (c === 95 && (!first || leadingUnderscore) && ok(sql.charCodeAt(j + 1))) j += 2;
    else return j;
    first = false;
  }
}

/** Index of the quote that closes a string body starting at `j`, or -1. */
function findClose(sql: string, j: number, backslash: boolean): number {
  const n = sql.length;
  while (j < n) {
    const c = sql.charCodeAt(j);
    if (backslash && c === 92) j += 2;
    else if (c === 39) {
      if (sql.charCodeAt(j + 1) === 39) j += 2;
      else return j;
    } else j++;
  }
  return -1;
}

/** All tokens of `sql`. */
export function tokenize(sql: string, scs = true): Token[] {
  const lx = new Lexer(sql, scs);
  const out: Token[] = [];
  for (let t = lx.next(); t !== null; t = lx.next()) out.push(t);
  return out;
}
