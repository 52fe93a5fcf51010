/**
 * EXECUTE's arguments, as the client wrote them (source text), turned into Bind values where that can
 * be done without the server, with exactly the result PostgreSQL's EXECUTE would give.
 *
 * PostgreSQL evaluates each argument as an expression and coerces it to the parameter's type
 * (assignment coercion: EXECUTE p(1.6) for an integer parameter gives 2). A string literal is an
 * unknown-typed constant, which PostgreSQL hands to the type's input function: passing its text in
 * Bind does the same. Everything else (casts, expressions, function calls, E'' and U&'' strings) is
 * evaluated upstream by the caller; this module only decides what is safe to do locally.
 */

/** Type OIDs for which a plain integer literal gives the same value as its text given to the input function. */
const INT2 = 21;
const INT4 = 23;
const INT8 = 20;
const NUMERIC = 1700;
const FLOAT4 = 700;
const FLOAT8 = 701;
const OID = 26;

/** A locally decided argument: its Bind value (null = SQL NULL). */
export type LocalArg = { value: string | null };

/**
 * The Bind value of one argument when it needs no server, or undefined when it must be evaluated
 * upstream. `typeOid` is the parameter's type as the server described it.
 */
export function localArgValue(source: string, typeOid: number): LocalArg | undefined {
  const text = source.trim();
  if (/^null$/i.test(text)) return { value: null };
  const quoted = plainString(text);
  if (quoted !== undefined) return { value: quoted };
  const dollar = dollarString(text);
  if (dollar !== undefined) return { value: dollar };
  if (integerMatchesInput(text, typeOid)) return { value: text };
  return undefined;
}

/**
 * A plain '...' literal with '' for a quote. standard_conforming_strings is always on behind the
 * proxy (it refuses `off`), so backslashes are ordinary characters. Anything else with a quote in it
 * (two literals, E'', a cast) is left to the server.
 */
function plainString(text: string): string | undefined {
  if (text.length < 2 || text[0] !== "'" || text[text.length - 1] !== "'") return undefined;
  const inner = text.slice(1, -1);
  // Every quote inside must be part of a '' pair.
  if (inner.replaceAll("''", '').includes("'")) return undefined;
  return inner.replaceAll("''", "'");
}

/** A $tag$...$tag$ literal whose body does not itself close the tag. */
function dollarString(text: string): string | undefined {
  const open = /^\$([A-Za-z_\u0080-\uffff][A-Za-z_0-9\u0080-\uffff]*)?\$/.exec(text);
  if (!open) return undefined;
  const tag = open[0];
  if (text.length < tag.length * 2 || !text.endsWith(tag)) return undefined;
  const body = text.slice(tag.length, text.length - tag.length);
  if (body.includes(tag)) return undefined;
  return body;
}

/**
 * A bare integer (optionally negative) whose value the parameter's input function reads exactly as
 * PostgreSQL's constant-plus-coercion would. Out-of-range values are left to the server so that the
 * error is PostgreSQL's own (the texts differ between the cast and the input function).
 */
function integerMatchesInput(text: string, typeOid: number): boolean {
  if (!/^-?[0-9]{1,18}$/.test(text)) return false;
  const value = BigInt(text);
  // '-0' reads as float -0 but the constant -0 is the integer 0: not the same value.
  if (value === 0n && text.startsWith('-')) return false;
  switch (typeOid) {
    case INT2:
      return value >= -32768n && value <= 32767n;
    case INT4:
      return value >= -2147483648n && value <= 2147483647n;
    case INT8:
    case NUMERIC:
      return true;
    case FLOAT4:
    case FLOAT8:
      // Exactly representable, so the text and the converted integer round the same way.
      return value >= -(2n ** 24n) && value <= 2n ** 24n;
    case OID:
      // An int4 constant cast to oid; negative ones wrap, so keep to the plain range.
      return value >= 0n && value <= 2147483647n;
    default:
      return false;
  }
}
