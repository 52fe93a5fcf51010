/**
 * SASLprep (RFC 4013) of a password, the way PostgreSQL applies it before SCRAM key derivation
 * (src/common/saslprep.c, pg_saslprep), so verifiers PostgreSQL wrote keep working here.
 *
 * PostgreSQL's rule that matters most: SASLprep is best effort. If the password is not valid UTF-8,
 * or the prepared string contains a prohibited character, the raw bytes are used unchanged.
 * Pure ASCII needs no processing and is used as is.
 *
 * What is implemented:
 * - RFC 3454 C.1.2 (non-ASCII space) mapped to U+0020, and B.1 (commonly mapped to nothing) removed;
 * - NFKC normalisation (String.prototype.normalize);
 * - the RFC 4013 §2.3 prohibited tables C.1.2, C.2.1, C.2.2, C.3, C.4, C.5, C.6, C.7, C.8, C.9
 *   (a hit means: use the raw bytes, as PostgreSQL does).
 * What is not: the A.1 unassigned-code-point table of Unicode 3.2 and the RFC 3454 §6 bidi rule.
 * Both only decide between "prepared" and "raw", and for almost all passwords both give the same bytes.
 */
export function saslPrep(password: string | Buffer): Buffer {
  const raw = typeof password === 'string' ? Buffer.from(password, 'utf8') : password;
  if (isAscii(raw)) return raw;
  let text: string;
  try {
    text = typeof password === 'string' ? password : UTF8_STRICT.decode(raw);
  } catch {
    return raw;
  }
  if (/\p{Cs}/u.test(text)) return raw; // lone surrogate in a JS string: not valid UTF-8 either
  const prepared = text.replace(NON_ASCII_SPACE, ' ').replace(MAPPED_TO_NOTHING, '').normalize('NFKC');
  if (PROHIBITED.test(prepared)) return raw;
  return Buffer.from(prepared, 'utf8');
}

const UTF8_STRICT = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

function isAscii(buf: Buffer): boolean {
  for (const byte of buf) if (byte >= 0x80) return false;
  return true;
}

/** RFC 3454 Table C.1.2. */
const NON_ASCII_SPACE = /[\u00A0\u1680\u2000-\u200B\u202F\u205F\u3000]/gu;

/**
 * RFC 3454 Table B.1. The class lists combining marks (variation selectors, joiners) one by one on
 * purpose: each is to be removed alone, never combined with a neighbour. U+200B is in both B.1 and
 * C.1.2; like PostgreSQL we test C.1.2 first, so it becomes a space.
 */
// biome-ignore lint/suspicious/noMisleadingCharacterClass: B.1 lists combining marks individually
const MAPPED_TO_NOTHING = /[\u00AD\u034F\u1806\u180B-\u180D\u200B-\u200D\u2060\uFE00-\uFE0F\uFEFF]/gu;

/**
 * RFC 4013 §2.3 prohibited output, tables C.1.2 (non-ASCII space), C.2.1/C.2.2 (control),
 * C.3 (private use), C.4 (non-character), C.5 (surrogates), C.6 (inappropriate for plain text),
 * C.7 (inappropriate for canonical representation), C.8 (change display properties), C.9 (tagging).
 */
const PROHIBITED = new RegExp(
  [
    '[',
    '\\u00A0\\u1680\\u2000-\\u200B\\u202F\\u205F\\u3000', // C.1.2
    '\\u0000-\\u001F\\u007F', // C.2.1
    '\\u0080-\\u009F\\u06DD\\u070F\\u180E\\u200C\\u200D\\u2028\\u2029\\u2060-\\u2063\\u206A-\\u206F',
    '\\uFEFF\\uFFF9-\\uFFFC\\u{1D173}-\\u{1D17A}', // C.2.2
    '\\uE000-\\uF8FF\\u{F0000}-\\u{FFFFD}\\u{100000}-\\u{10FFFD}', // C.3
    '\\uFDD0-\\uFDEF\\uFFFE\\uFFFF', // C.4 (BMP; the plane-end pairs below)
    '\\u{1FFFE}\\u{1FFFF}\\u{2FFFE}\\u{2FFFF}\\u{3FFFE}\\u{3FFFF}\\u{4FFFE}\\u{4FFFF}\\u{5FFFE}\\u{5FFFF}',
    '\\u{6FFFE}\\u{6FFFF}\\u{7FFFE}\\u{7FFFF}\\u{8FFFE}\\u{8FFFF}\\u{9FFFE}\\u{9FFFF}\\u{AFFFE}\\u{AFFFF}',
    '\\u{BFFFE}\\u{BFFFF}\\u{CFFFE}\\u{CFFFF}\\u{DFFFE}\\u{DFFFF}\\u{EFFFE}\\u{EFFFF}\\u{FFFFE}\\u{FFFFF}',
    '\\u{10FFFE}\\u{10FFFF}',
    '\\uD800-\\uDFFF', // C.5
    '\\uFFF9-\\uFFFD', // C.6
    '\\u2FF0-\\u2FFB', // C.7
    '\\u0340\\u0341\\u200E\\u200F\\u202A-\\u202E', // C.8 (206A-206F listed above)
    '\\u{E0001}\\u{E0020}-\\u{E007F}', // C.9
    ']',
  ].join(''),
  'u',
);
