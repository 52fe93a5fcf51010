/**
 * Decoding of PostgreSQL's escaped string forms (scan.l): E'' backslash escapes, which may give raw
 * bytes that must form valid UTF-8, and U&'' / U&"" Unicode escapes. Each returns null where
 * PostgreSQL reports an error.
 */

function isHex(c: number): boolean {
  return (c >= 48 && c <= 57) || (c >= 97 && c <= 102) || (c >= 65 && c <= 70);
}

/** Collects decoded text where some escapes give raw bytes that must form valid UTF-8. */
class ByteText {
  private readonly bytes: number[] = [];
  ok = true;

  text(s: string): void {
    for (const b of Buffer.from(s, 'utf8')) this.bytes.push(b);
  }

  byte(b: number): void {
    // A zero byte cannot be in a PostgreSQL string.
    if (b === 0) this.ok = false;
    this.bytes.push(b);
  }

  codePoint(cp: number): void {
    if (cp === 0 || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) this.ok = false;
    else this.text(String.fromCodePoint(cp));
  }

  result(): string | null {
    if (!this.ok) return null;
    try {
      return new TextDecoder('utf-8', { fatal: true }).decode(Uint8Array.from(this.bytes));
    } catch {
      return null;
    }
  }
}

/** The documented single-character escapes; any other character after a backslash stands for itself. */
const SINGLE_ESCAPES: Record<string, string> = { b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' };

/** The body of an E'' string (pieces joined), decoded; null where PostgreSQL reports an error. */
export function decodeEscapeString(body: string): string | null {
  const out = new ByteText();
  let i = 0;
  let plainFrom = 0;
  while (i < body.length) {
    const c = body.charCodeAt(i);
    if (c !== 92 && c !== 39) {
      i++;
      continue;
    }
    out.text(body.slice(plainFrom, i));
    if (c === 39) {
      // '' inside the body is one quote.
      out.text("'");
      i += 2;
    } else i = decodeBackslash(body, i, out);
    plainFrom = i;
  }
  out.text(body.slice(plainFrom));
  return out.result();
}

/** One backslash escape at `i` into `out`; returns the index after it. */
function decodeBackslash(body: string, i: number, out: ByteText): number {
  const e = body[i + 1] ?? '';
  const code = e.charCodeAt(0);
  if (code >= 48 && code <= 55) {
    let j = i + 1;
    while (j < i + 4 && body.charCodeAt(j) >= 48 && body.charCodeAt(j) <= 55) j++;
    out.byte(Number.parseInt(body.slice(i + 1, j), 8) & 0xff);
    return j;
  }
  if (e === 'x' && isHex(body.charCodeAt(i + 2))) {
    const j = isHex(body.charCodeAt(i + 3)) ? i + 4 : i + 3;
    out.byte(Number.parseInt(body.slice(i + 2, j), 16));
    return j;
  }
  if (e === 'u' || e === 'U') {
    const len = e === 'u' ? 4 : 8;
    const hex = body.slice(i + 2, i + 2 + len);
    if (hex.length === len && /^[0-9a-fA-F]+$/.test(hex)) {
      const cp = Number.parseInt(hex, 16);
      if (cp >= 0xd800 && cp <= 0xdbff) return lowSurrogate(body, i + 2 + len, cp, out);
      out.codePoint(cp);
      return i + 2 + len;
    }
    out.ok = false;
    return i + 2;
  }
  out.text(SINGLE_ESCAPES[e] ?? e);
  return i + 1 + e.length;
}

/** After a high surrogate from \u or \U: the low one must follow as \uXXXX or \UXXXXXXXX. */
function lowSurrogate(body: string, j: number, high: number, out: ByteText): number {
  const m = /^\\(u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8})/.exec(body.slice(j, j + 10));
  const low = m ? Number.parseInt(m[1]!.slice(1), 16) : -1;
  if (low < 0xdc00 || low > 0xdfff) {
    out.ok = false;
    return j;
  }
  out.codePoint(0x10000 + ((high - 0xd800) << 10) + (low - 0xdc00));
  return j + m![0].length;
}

/** U&'' / U&"" escapes with escape character `esc`: `esc`XXXX, `esc`+XXXXXX, `esc``esc`. */
export function decodeUnicodeEscapes(raw: string, esc: string): string | null {
  let out = '';
  let i = 0;
  let high = -1;
  while (i < raw.length) {
    const ch = raw[i]!;
    if (ch !== esc) {
      if (high >= 0) return null;
      out += ch;
      i++;
      continue;
    }
    let cp: number;
    if (raw[i + 1] === esc) {
      if (high >= 0) return null;
      out += esc;
      i += 2;
      continue;
    }
    const six = raw[i + 1] === '+';
    const hex = six ? raw.slice(i + 2, i + 8) : raw.slice(i + 1, i + 5);
    if (hex.length !== (six ? 6 : 4) || !/^[0-9a-fA-F]+$/.test(hex)) return null;
    cp = Number.parseInt(hex, 16);
    i += six ? 8 : 5;
    if (high >= 0) {
      if (cp < 0xdc00 || cp > 0xdfff) return null;
      cp = 0x10000 + ((high - 0xd800) << 10) + (cp - 0xdc00);
      high = -1;
    } else if (cp >= 0xd800 && cp <= 0xdbff) {
      high = cp;
      continue;
    }
    if (cp === 0 || cp > 0x10ffff || (cp >= 0xdc00 && cp <= 0xdfff)) return null;
    out += String.fromCodePoint(cp);
  }
  return high >= 0 ? null : out;
}
