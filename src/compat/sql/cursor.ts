/**
 * A cursor over one statement's tokens, with the keyword classes of PostgreSQL's grammar (gram.y,
 * src/include/parser/kwlist.h) that decide what may be a name.
 */
import type { Token } from './lexer.js';

/** RESERVED_KEYWORD: never a name or an unquoted value. */
const RESERVED = new Set(
  (
    'all analyse analyze and any array as asc asymmetric both case cast check collate column constraint ' +
    'create current_catalog current_date current_role current_time current_timestamp current_user default ' +
    'deferrable desc distinct do else end except false fetch for foreign from grant group having in ' +
    'initially intersect into lateral leading limit localtime localtimestamp not null offset on only or ' +
    'order placing primary references returning select session_user some symmetric system_user table ' +
    'then to trailing true union unique user using variadic when where window with'
  ).split(' '),
);

/** TYPE_FUNC_NAME_KEYWORD: a value (NonReservedWord) but not a ColId. */
const TYPE_FUNC_NAME = new Set(
  (
    'authorization binary collation concurrently cross current_schema freeze full ilike inner is isnull ' +
    'join left like natural notnull outer overlaps right similar tablesample verbose'
  ).split(' '),
);

export class Cursor {
  i = 0;

  constructor(
    readonly sql: string,
    readonly toks: readonly Token[],
  ) {}

  peek(k = 0): Token | undefined {
    return this.toks[this.i + k];
  }

  atEnd(): boolean {
    return this.i >= this.toks.length;
  }

  /** The next token is the unquoted keyword `word` (lower case). */
  isKw(word: string, k = 0): boolean {
    const t = this.toks[this.i + k];
    return t !== undefined && t.kind === 'ident' && !t.quoted && t.value === word;
  }

  /** Consumes the keyword `word` when it is next. */
  kw(word: string): boolean {
    if (!this.isKw(word)) return false;
    this.i++;
    return true;
  }

  /** Consumes the keywords `words` when all are next, in order. */
  kws(...words: string[]): boolean {
    for (let k = 0; k < words.length; k++) if (!this.isKw(words[k]!, k)) return false;
    this.i += words.length;
    return true;
  }

  isOp(op: string, k = 0): boolean {
    const t = this.toks[this.i + k];
    return t !== undefined && t.kind === 'op' && t.value === op;
  }

  op(op: string): boolean {
    if (!this.isOp(op)) return false;
    this.i++;
    return true;
  }

  /** A ColId (an identifier, quoted or not a reserved/type-function keyword): its name, consumed. */
  colId(): string | null {
    const t = this.peek();
    if (t === undefined || t.kind !== 'ident') return null;
    if (!t.quoted && (RESERVED.has(t.value) || TYPE_FUNC_NAME.has(t.value))) return null;
    this.i++;
    return t.value;
  }

  /** A NonReservedWord (an identifier, quoted or not a reserved keyword): its token, consumed. */
  nonReservedWord(): Token | null {
    const t = this.peek();
    if (t === undefined || t.kind !== 'ident' || (!t.quoted && RESERVED.has(t.value))) return null;
    this.i++;
    return t;
  }

  /** A dotted name of ColIds (var_name, qualified_name): the parts joined with '.', consumed. */
  dottedName(): string | null {
    const first = this.colId();
    if (first === null) return null;
    let name = first;
    while (this.isOp('.')) {
      const save = this.i;
      this.i++;
      const part = this.colId();
      if (part === null) {
        this.i = save;
        return null;
      }
      name += `.${part}`;
    }
    return name;
  }

  /** A string constant as the grammar's Sconst ('' / E'' / U&'' / dollar, not B'' X'' N''): consumed. */
  sconst(): Token | null {
    const t = this.peek();
    if (t === undefined || t.kind !== 'string' || t.prefix === 'b' || t.prefix === 'x' || t.prefix === 'n') {
      return null;
    }
    this.i++;
    return t;
  }

  /** The source text from token `from` to token `to` (exclusive), trimmed to the tokens. */
  slice(from: number, to: number): string {
    if (to <= from) return '';
    return this.sql.slice(this.toks[from]!.start, this.toks[to - 1]!.end);
  }
}
