/**
 * Which client startup parameters reach Aurora DSQL (--startup-params).
 *
 * DSQL lets a session set only a short list of configuration parameters; any other one fails with
 * `0A000 setting configuration parameter "X" not supported`, and this reportedly also happens when
 * the parameter arrives in the StartupMessage, so the login itself fails (pgAdmin sends
 * `client_min_messages`, node-postgres `statement_timeout` when configured). See docs/dsql.md,
 * "At the door" and "Behind the door".
 *
 * The list of accepted parameters and the modes are DSQL facts: src/dsql/limits.ts.
 */
import { isDsqlSettableParam, type StartupParamsMode } from '../dsql/limits.js';
import { ProxyError } from '../errors.js';

export interface StartupParamsResult {
  /** What goes to DSQL, in the client's order. */
  forward: Map<string, string>;
  /** What was left out, in the client's order; settings from `options` read `name (from options)`. */
  dropped: string[];
  /** Set in `reject` mode when something would have been dropped; the login must fail with it. */
  error?: ProxyError;
}

/**
 * Decides which startup parameters (other than user and database) go to DSQL. Pure: never throws,
 * never mutates `params`.
 *
 * `options` (libpq's PGOPTIONS, `-c name=value --name=value ...`) is taken apart: each accepted
 * setting becomes a plain startup parameter of its own and `options` itself is never forwarded in
 * `drop`/`reject` mode, because DSQL reportedly refuses the `options` parameter as such. A plain
 * parameter of the same name wins over one from `options`, as in PostgreSQL (which applies `options`
 * first and the other startup parameters after it).
 */
export function filterStartupParams(
  params: ReadonlyMap<string, string>,
  mode: StartupParamsMode,
  /** The compatibility layer: true when it takes the setting itself (neither forwarded nor dropped). */
  keep?: (name: string, value: string) => boolean,
): StartupParamsResult {
  if (mode === 'pass' && !keep) return { forward: new Map(params), dropped: [] };

  const plainNames = new Set<string>();
  for (const key of params.keys()) if (key !== 'options') plainNames.add(key.toLowerCase());

  const forward = new Map<string, string>();
  const dropped: string[] = [];
  for (const [key, value] of params) {
    if (key === 'options') {
      const parsed = parseOptions(value);
      for (const setting of parsed.settings) {
        if (keep?.(setting.name, setting.value)) continue;
        if (!isDsqlSettableParam(setting.name)) {
          dropped.push(`${setting.name} (from options)`);
          continue;
        }
        const lower = setting.name.toLowerCase();
        if (plainNames.has(lower)) continue;
        // A later `-c` for the same parameter overrides an earlier one, whatever its case.
        for (const existing of forward.keys()) {
          if (existing.toLowerCase() === lower) forward.delete(existing);
        }
        forward.set(setting.name, setting.value);
      }
      for (const token of parsed.unusable) dropped.push(`${token} (from options)`);
    } else if (keep?.(key, value)) {
      // taken by the compatibility layer
    } else if (mode === 'pass' || isDsqlSettableParam(key)) {
      // `replication` and everything else outside the list are never forwarded in these modes.
      forward.set(key, value);
    } else {
      dropped.push(key);
    }
  }

  if (mode === 'reject' && dropped.length > 0) {
    return {
      forward: new Map(),
      dropped,
      error: new ProxyError('STARTUP_PARAM_UNSUPPORTED', {
        message:
          `Aurora DSQL does not accept the startup parameters ${dropped.join(', ')}; ` +
          'dsql-proxy runs with --startup-params reject, use --startup-params drop to leave them out',
      }),
    };
  }
  return { forward, dropped };
}

/** The NOTICE a client gets when some of its startup parameters were left out. */
export function droppedNotice(dropped: string[]): string {
  return `dsql-proxy did not forward startup parameters that Aurora DSQL does not accept: ${dropped.join(', ')}`;
}

export interface ParsedOptions {
  /** `-c name=value` and `--name=value` settings, in order; dashes in names read as underscores. */
  settings: Array<{ name: string; value: string }>;
  /** Words that are not settings (other server switches, `-c` without `name=value`), as written. */
  unusable: string[];
}

/**
 * Reads the `options` startup parameter the way PostgreSQL does: words are separated by whitespace,
 * a backslash makes the next character literal (so `\ ` is a space inside a value and `\\` a
 * backslash), `-c name=value`, `-cname=value` and `--name=value` set a parameter, and `-` in a
 * name means `_` (https://www.postgresql.org/docs/current/libpq-connect.html#LIBPQ-CONNECT-OPTIONS).
 */
export function parseOptions(options: string): ParsedOptions {
  const words = splitOptionWords(options);
  const settings: ParsedOptions['settings'] = [];
  const unusable: string[] = [];
  for (let i = 0; i < words.length; i++) {
    const word = words[i] as string;
    let assignment: string | undefined;
    let written = word;
    if (word === '-c') {
      const next = words[i + 1];
      if (next === undefined) {
        unusable.push(word);
        continue;
      }
      assignment = next;
      written = `${word} ${next}`;
      i++;
    } else if (word.startsWith('-c')) {
      assignment = word.slice(2);
    } else if (word.startsWith('--')) {
      assignment = word.slice(2);
    }
    const eq = assignment?.indexOf('=') ?? -1;
    if (assignment === undefined || eq <= 0) {
      unusable.push(written);
      continue;
    }
    settings.push({
      name: assignment.slice(0, eq).replaceAll('-', '_'),
      value: assignment.slice(eq + 1),
    });
  }
  return { settings, unusable };
}

/** PostgreSQL's pg_split_opts: whitespace-separated words, backslash quotes the next character. */
function splitOptionWords(s: string): string[] {
  const words: string[] = [];
  let i = 0;
  while (i < s.length) {
    while (i < s.length && isSpace(s[i] as string)) i++;
    if (i >= s.length) break;
    let word = '';
    while (i < s.length && !isSpace(s[i] as string)) {
      if (s[i] === '\\') {
        i++;
        if (i >= s.length) break; // a trailing lone backslash is ignored, as in PostgreSQL
      }
      word += s[i];
      i++;
    }
    words.push(word);
  }
  return words;
}

/** C isspace() in the C locale, which is what PostgreSQL splits on. */
function isSpace(c: string): boolean {
  return c === ' ' || c === '\t' || c === '\n' || c === '\r' || c === '\v' || c === '\f';
}
