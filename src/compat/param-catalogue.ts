/**
 * The session parameters the compatibility layer answers for itself (docs/compat-params.md has the
 * table with the reasons), and PostgreSQL's input and output rules for their values.
 *
 * The value rules follow PostgreSQL's guc.c (parse_bool in utils/adt/bool.c, parse_int,
 * convert_to_base_unit, convert_int_from_base_unit, config_enum_lookup_by_name) so that a value
 * PostgreSQL accepts is accepted here, one it refuses gets PostgreSQL's error, and SHOW prints what a
 * server prints. Facts carried over, not code.
 */

/** A value as the layer keeps it: booleans, integers in the base unit, enum and string values canonical. */
export type ParamValue = boolean | number | string;

export type TimeUnit = 'ms' | 's' | 'min';
export type MemoryUnit = 'B' | 'kB';

export type GucType =
  | { type: 'bool' }
  | { type: 'int'; unit?: TimeUnit | MemoryUnit; min: number; max: number }
  /** `options`: [spelling, canonical]; hidden spellings (PostgreSQL's `hidden: true`) have a different canonical. */
  | { type: 'enum'; options: readonly (readonly [string, string])[] }
  | { type: 'string' };

/**
 * Who may set a parameter PostgreSQL keeps from ordinary users. DSQL's roles are never superusers, so
 * PostgreSQL's answer to a non-superuser is the honest one: `suset` (permission denied), `sighup`
 * (server configuration only), `su_backend` (superuser, at connection start only).
 */
export type Restricted = 'suset' | 'sighup' | 'su_backend';

export interface ParamSpec {
  /** PostgreSQL's spelling. */
  name: string;
  cls: 'carried' | 'harmless' | 'fixed';
  guc: GucType;
  /** PostgreSQL's boot value (what RESET gives when nothing else set the session default). */
  boot: ParamValue;
  /** 'fixed': the one value DSQL behaves as. */
  fixed?: ParamValue;
  /** 'fixed' with `restricted`: every SET/RESET is refused as PostgreSQL refuses a non-superuser. */
  restricted?: Restricted;
  /** Left alone by RESET ALL (PostgreSQL's GUC_NO_RESET_ALL: the transaction_* names). */
  noResetAll?: boolean;
  /** Why the proxy does what it does: the HINT of a refusal. */
  why: string;
}

export const INT_MAX = 2_147_483_647;
/** PostgreSQL's MAX_KILOBYTES on 64-bit builds (INT_MAX / 1024). */
const MAX_KILOBYTES = Math.floor(INT_MAX / 1024);

const BOOL: GucType = { type: 'bool' };
const msTimeout: GucType = { type: 'int', unit: 'ms', min: 0, max: INT_MAX };
const enumOf = (...names: string[]): GucType => ({
  type: 'enum',
  options: names.map((n) => [n, n] as const),
});

/** client_message_level_options in guc_tables.c: `debug` (= debug2) and `info` are accepted but hidden. */
const CLIENT_MESSAGE_LEVELS: GucType = {
  type: 'enum',
  options: [
    ['debug5', 'debug5'],
    ['debug4', 'debug4'],
    ['debug3', 'debug3'],
    ['debug2', 'debug2'],
    ['debug1', 'debug1'],
    ['debug', 'debug2'],
    ['log', 'log'],
    ['info', 'info'],
    ['notice', 'notice'],
    ['warning', 'warning'],
    ['error', 'error'],
  ],
};
/** Spellings PostgreSQL hides from the hint (shown only when they are their own canonical form). */
const HIDDEN_SPELLINGS: ReadonlySet<string> = new Set(['debug', 'info']);

const ISOLATION = enumOf('serializable', 'repeatable read', 'read committed', 'read uncommitted');
const SYNCHRONOUS_COMMIT: GucType = {
  type: 'enum',
  options: [
    ['local', 'local'],
    ['remote_write', 'remote_write'],
    ['remote_apply', 'remote_apply'],
    ['on', 'on'],
    ['off', 'off'],
    ['true', 'on'],
    ['false', 'off'],
    ['yes', 'on'],
    ['no', 'off'],
    ['1', 'on'],
    ['0', 'off'],
  ],
};

const SNAPSHOT =
  'DSQL runs every transaction with snapshot isolation (REPEATABLE READ), read-write unless BEGIN says READ ONLY.';

const restricted = (name: string, level: Restricted): ParamSpec => ({
  name,
  cls: 'fixed',
  guc: { type: 'string' },
  boot: '',
  restricted: level,
  why: 'Only a superuser (or the server configuration) may set it in PostgreSQL, and DSQL roles are not superusers.',
});

/** Every name the layer answers for, in PostgreSQL's spelling. Reasons per row: docs/compat-params.md. */
export const PARAM_SPECS: readonly ParamSpec[] = [
  // carried out by the proxy
  {
    name: 'statement_timeout',
    cls: 'carried',
    guc: msTimeout,
    boot: 0,
    why: 'The proxy cancels the statement.',
  },
  {
    name: 'idle_in_transaction_session_timeout',
    cls: 'carried',
    guc: msTimeout,
    boot: 0,
    why: 'The proxy ends the session with 25P03.',
  },
  {
    name: 'transaction_timeout',
    cls: 'carried',
    guc: msTimeout,
    boot: 0,
    why: 'The proxy ends the session.',
  },
  {
    name: 'client_min_messages',
    cls: 'carried',
    guc: CLIENT_MESSAGE_LEVELS,
    boot: 'notice',
    why: 'The proxy filters notices.',
  },
  // harmless: no value changes what DSQL does or what the client sees
  {
    name: 'lock_timeout',
    cls: 'harmless',
    guc: msTimeout,
    boot: 0,
    why: 'DSQL never waits on a lock (optimistic concurrency).',
  },
  {
    name: 'synchronize_seqscans',
    cls: 'harmless',
    guc: BOOL,
    boot: true,
    why: 'Only the order of unordered results.',
  },
  {
    name: 'row_security',
    cls: 'harmless',
    guc: BOOL,
    boot: true,
    why: 'DSQL has no row-level security policies.',
  },
  {
    name: 'check_function_bodies',
    cls: 'harmless',
    guc: BOOL,
    boot: true,
    why: 'Off only skips checks; DSQL checking anyway can only raise an error.',
  },
  {
    name: 'escape_string_warning',
    cls: 'harmless',
    guc: BOOL,
    boot: true,
    why: 'Warns only when standard_conforming_strings is off.',
  },
  {
    name: 'default_transaction_deferrable',
    cls: 'harmless',
    guc: BOOL,
    boot: false,
    why: 'PostgreSQL ignores DEFERRABLE outside SERIALIZABLE READ ONLY.',
  },
  {
    name: 'work_mem',
    cls: 'harmless',
    guc: { type: 'int', unit: 'kB', min: 64, max: MAX_KILOBYTES },
    boot: 4096,
    why: 'Performance only.',
  },
  {
    name: 'maintenance_work_mem',
    cls: 'harmless',
    guc: { type: 'int', unit: 'kB', min: 1024, max: MAX_KILOBYTES },
    boot: 65536,
    why: 'Performance only.',
  },
  {
    name: 'max_parallel_workers_per_gather',
    cls: 'harmless',
    guc: { type: 'int', min: 0, max: 1024 },
    boot: 2,
    why: 'Performance only.',
  },
  { name: 'geqo', cls: 'harmless', guc: BOOL, boot: true, why: 'Performance only.' },
  { name: 'jit', cls: 'harmless', guc: BOOL, boot: true, why: 'Performance only.' },
  {
    name: 'plan_cache_mode',
    cls: 'harmless',
    guc: enumOf('auto', 'force_generic_plan', 'force_custom_plan'),
    boot: 'auto',
    why: 'Performance only.',
  },
  {
    name: 'synchronous_commit',
    cls: 'harmless',
    guc: SYNCHRONOUS_COMMIT,
    boot: 'on',
    why: 'DSQL commits durably whatever is asked.',
  },
  {
    name: 'log_parameter_max_length_on_error',
    cls: 'harmless',
    guc: { type: 'int', unit: 'B', min: -1, max: Math.floor(INT_MAX / 2) },
    boot: 0,
    why: "Only the server's own log.",
  },
  // fixed: DSQL behaves as one value; accepting another would lie
  {
    name: 'standard_conforming_strings',
    cls: 'fixed',
    guc: BOOL,
    boot: true,
    fixed: true,
    why: 'DSQL reads backslashes in plain string literals as ordinary characters.',
  },
  {
    name: 'default_transaction_isolation',
    cls: 'fixed',
    guc: ISOLATION,
    boot: 'repeatable read',
    fixed: 'repeatable read',
    why: SNAPSHOT,
  },
  {
    name: 'default_transaction_read_only',
    cls: 'fixed',
    guc: BOOL,
    boot: false,
    fixed: false,
    why: `${SNAPSHOT} Use BEGIN READ ONLY.`,
  },
  {
    name: 'transaction_isolation',
    cls: 'fixed',
    guc: ISOLATION,
    boot: 'repeatable read',
    fixed: 'repeatable read',
    noResetAll: true,
    why: SNAPSHOT,
  },
  {
    name: 'transaction_read_only',
    cls: 'fixed',
    guc: BOOL,
    boot: false,
    fixed: false,
    noResetAll: true,
    why: `${SNAPSHOT} Use BEGIN READ ONLY.`,
  },
  {
    name: 'transaction_deferrable',
    cls: 'fixed',
    guc: BOOL,
    boot: false,
    fixed: false,
    noResetAll: true,
    why: SNAPSHOT,
  },
  {
    name: 'quote_all_identifiers',
    cls: 'fixed',
    guc: BOOL,
    boot: false,
    fixed: false,
    why: "DSQL's quote_ident and deparsed SQL would not quote every identifier.",
  },
  {
    name: 'default_tablespace',
    cls: 'fixed',
    guc: { type: 'string' },
    boot: '',
    fixed: '',
    why: 'DSQL has no tablespaces.',
  },
  {
    name: 'default_table_access_method',
    cls: 'fixed',
    guc: { type: 'string' },
    boot: 'heap',
    fixed: 'heap',
    why: 'DSQL has one table storage.',
  },
  {
    name: 'default_with_oids',
    cls: 'fixed',
    guc: BOOL,
    boot: false,
    fixed: false,
    why: 'Tables WITH OIDS do not exist since PostgreSQL 12.',
  },
  {
    name: 'bytea_output',
    cls: 'fixed',
    guc: enumOf('escape', 'hex'),
    boot: 'hex',
    fixed: 'hex',
    why: 'DSQL sends bytea in hex.',
  },
  {
    name: 'array_nulls',
    cls: 'fixed',
    guc: BOOL,
    boot: true,
    fixed: true,
    why: 'DSQL reads NULL in an array literal as a null element.',
  },
  {
    name: 'xmloption',
    cls: 'fixed',
    guc: enumOf('content', 'document'),
    boot: 'content',
    fixed: 'content',
    why: 'DSQL parses XML values as content.',
  },
  {
    name: 'session_replication_role',
    cls: 'fixed',
    guc: enumOf('origin', 'replica', 'local'),
    boot: 'origin',
    fixed: 'origin',
    why: 'DSQL would not switch to replica behaviour.',
  },
  {
    name: 'exit_on_error',
    cls: 'fixed',
    guc: BOOL,
    boot: false,
    fixed: false,
    why: 'The proxy does not end the session on an error.',
  },
  {
    name: 'transform_null_equals',
    cls: 'fixed',
    guc: BOOL,
    boot: false,
    fixed: false,
    why: 'DSQL evaluates expr = NULL as the SQL standard says (null).',
  },
  {
    name: 'idle_session_timeout',
    cls: 'fixed',
    guc: msTimeout,
    boot: 0,
    fixed: 0,
    why: 'The proxy does not carry out idle_session_timeout; dsql-proxy --client-idle-timeout closes idle clients.',
  },
  // restricted to superusers or the server configuration in PostgreSQL (guc_tables.c contexts)
  ...[
    'lc_messages',
    'log_min_messages',
    'log_min_error_statement',
    'log_min_duration_statement',
    'log_min_duration_sample',
  ]
    .concat([
      'log_statement_sample_rate',
      'log_transaction_sample_rate',
      'log_duration',
      'log_error_verbosity',
      'log_lock_waits',
    ])
    .concat([
      'log_statement',
      'log_temp_files',
      'log_parser_stats',
      'log_planner_stats',
      'log_executor_stats',
    ])
    .concat(['log_statement_stats', 'log_parameter_max_length', 'log_replication_commands'])
    .map((name) => restricted(name, 'suset')),
  ...['log_connections', 'log_disconnections'].map((name) => restricted(name, 'su_backend')),
  ...[
    'log_autovacuum_min_duration',
    'log_checkpoints',
    'log_destination',
    'log_directory',
    'log_filename',
    'log_file_mode',
  ]
    .concat([
      'log_hostname',
      'log_line_prefix',
      'log_recovery_conflict_waits',
      'log_rotation_age',
      'log_rotation_size',
    ])
    .concat(['log_startup_progress_interval', 'log_timezone', 'log_truncate_on_rotation'])
    .map((name) => restricted(name, 'sighup')),
];

const BY_NAME: ReadonlyMap<string, ParamSpec> = new Map(
  PARAM_SPECS.map((spec) => [spec.name.toLowerCase(), spec]),
);

/** The spec of a handled name (any case), or undefined. */
export function paramSpec(name: string): ParamSpec | undefined {
  return BY_NAME.get(name.toLowerCase());
}

// ---- Value input (guc.c's parse_bool, parse_int, enum lookup) ----

/** The outcome of reading one value: PostgreSQL's own error texts on failure. */
export type ParseResult = { ok: true; value: ParamValue } | { ok: false; message: string; hint?: string };

/** parse_bool (utils/adt/bool.c): true/false/yes/no and any prefix, on/off (at least two letters), 1/0; any case; no blanks. */
export function parseBool(text: string): boolean | undefined {
  const lower = text.toLowerCase();
  if (lower.length === 0) return undefined;
  const prefixOf = (word: string, minLength = 1) => lower.length >= minLength && word.startsWith(lower);
  if (prefixOf('true') || prefixOf('yes') || prefixOf('on', 2)) return true;
  if (prefixOf('false') || prefixOf('no') || prefixOf('off', 2)) return false;
  if (lower === '1') return true;
  if (lower === '0') return false;
  return undefined;
}

/** C's rint in the default rounding mode: halves go to the even neighbour. */
export function rint(x: number): number {
  if (Math.abs(x % 1) === 0.5) return 2 * Math.round(x / 2);
  return Math.round(x);
}

const isCSpace = (ch: string | undefined) => ch !== undefined && ' \t\n\v\f\r'.includes(ch);

/** strtol(value, &end, 0): blanks, a sign, then hex (0x), octal (leading 0) or decimal digits; end = 0 when nothing was read. */
function strtol(text: string): { value: number; end: number; overflow: boolean } {
  let i = 0;
  while (isCSpace(text[i])) i++;
  let sign = 1;
  if (text[i] === '+' || text[i] === '-') sign = text[i++] === '-' ? -1 : 1;
  let base = 10;
  if (
    text[i] === '0' &&
    (text[i + 1] === 'x' || text[i + 1] === 'X') &&
    /[0-9a-fA-F]/.test(text[i + 2] ?? '')
  ) {
    base = 16;
    i += 2;
  } else if (text[i] === '0') base = 8;
  const digits = base === 16 ? /[0-9a-fA-F]/ : base === 8 ? /[0-7]/ : /[0-9]/;
  const start = i;
  let value = 0n;
  while (i < text.length && digits.test(text[i] as string))
    value = value * BigInt(base) + BigInt(Number.parseInt(text[i++] as string, base));
  if (i === start) return { value: 0, end: 0, overflow: false };
  const overflow = value > 2n ** 63n - (sign === 1 ? 1n : 0n);
  return { value: sign * Number(value), end: i, overflow };
}

/** strtod(value, &end) for decimal input; `range` is C's ERANGE (overflow, or underflow of a non-zero number). */
function strtod(text: string): { value: number; end: number; range: boolean } {
  const match = /^[ \t\n\v\f\r]*[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?/.exec(text);
  if (!match) return { value: 0, end: 0, range: false };
  const value = Number(match[0].trim());
  const mantissaNonZero = /[1-9]/.test(match[0].replace(/[eE].*$/, ''));
  return { value, end: match[0].length, range: !Number.isFinite(value) || (value === 0 && mantissaNonZero) };
}

interface UnitConversion {
  unit: string;
  multiplier: number;
}

/** guc.c's conversion tables, per base unit, largest unit first (the order the rounding rule relies on). */
const UNIT_TABLES: Record<TimeUnit | MemoryUnit, readonly UnitConversion[]> = {
  ms: [
    { unit: 'd', multiplier: 1000 * 60 * 60 * 24 },
    { unit: 'h', multiplier: 1000 * 60 * 60 },
    { unit: 'min', multiplier: 1000 * 60 },
    { unit: 's', multiplier: 1000 },
    { unit: 'ms', multiplier: 1 },
    { unit: 'us', multiplier: 1.0 / 1000 },
  ],
  s: [
    { unit: 'd', multiplier: 60 * 60 * 24 },
    { unit: 'h', multiplier: 60 * 60 },
    { unit: 'min', multiplier: 60 },
    { unit: 's', multiplier: 1 },
    { unit: 'ms', multiplier: 1.0 / 1000 },
    { unit: 'us', multiplier: 1.0 / (1000 * 1000) },
  ],
  min: [
    { unit: 'd', multiplier: 60 * 24 },
    { unit: 'h', multiplier: 60 },
    { unit: 'min', multiplier: 1 },
    { unit: 's', multiplier: 1.0 / 60 },
    { unit: 'ms', multiplier: 1.0 / (1000 * 60) },
    { unit: 'us', multiplier: 1.0 / (1000 * 1000 * 60) },
  ],
  kB: [
    { unit: 'TB', multiplier: 1024.0 * 1024.0 * 1024.0 },
    { unit: 'GB', multiplier: 1024.0 * 1024.0 },
    { unit: 'MB', multiplier: 1024.0 },
    { unit: 'kB', multiplier: 1.0 },
    { unit: 'B', multiplier: 1.0 / 1024.0 },
  ],
  B: [
    { unit: 'TB', multiplier: 1024.0 * 1024.0 * 1024.0 * 1024.0 },
    { unit: 'GB', multiplier: 1024.0 * 1024.0 * 1024.0 },
    { unit: 'MB', multiplier: 1024.0 * 1024.0 },
    { unit: 'kB', multiplier: 1024.0 },
    { unit: 'B', multiplier: 1.0 },
  ],
};

const TIME_UNITS_HINT = 'Valid units for this parameter are "us", "ms", "s", "min", "h", and "d".';
const MEMORY_UNITS_HINT = 'Valid units for this parameter are "B", "kB", "MB", "GB", and "TB".';
const isMemoryUnit = (unit: TimeUnit | MemoryUnit) => unit === 'B' || unit === 'kB';

/**
 * convert_to_base_unit: the unit (case-sensitive, at most 3 characters, blanks after it allowed) times
 * the number; a fractional value is rounded to a whole number of the next smaller unit ('1.5s' = 1500 ms).
 */
function toBaseUnit(value: number, rest: string, base: TimeUnit | MemoryUnit): number | undefined {
  const match = /^([^ \t\n\v\f\r]{1,3})[ \t\n\v\f\r]*$/.exec(rest);
  if (!match) return undefined;
  const table = UNIT_TABLES[base];
  const at = table.findIndex((entry) => entry.unit === match[1]);
  if (at < 0) return undefined;
  let converted = value * (table[at] as UnitConversion).multiplier;
  const smaller = table[at + 1];
  if (smaller) converted = rint(converted / smaller.multiplier) * smaller.multiplier;
  return converted;
}

/** parse_int: an integer (or a decimal, rounded), optionally with a unit; the hint is PostgreSQL's. */
export function parseIntValue(
  text: string,
  unit: TimeUnit | MemoryUnit | undefined,
): { value?: number; hint?: string } {
  const asInt = strtol(text);
  let value = asInt.value;
  let end = asInt.end;
  const next = text[end];
  if (next === '.' || next === 'e' || next === 'E' || asInt.overflow) {
    const asFloat = strtod(text);
    if (asFloat.range) return {};
    value = asFloat.value;
    end = asFloat.end;
  }
  if (end === 0) return {};
  while (isCSpace(text[end])) end++;
  if (end < text.length) {
    if (unit === undefined) return {};
    const converted = toBaseUnit(value, text.slice(end), unit);
    if (converted === undefined) return { hint: isMemoryUnit(unit) ? MEMORY_UNITS_HINT : TIME_UNITS_HINT };
    value = converted;
  }
  value = rint(value);
  if (value > INT_MAX || value < -INT_MAX - 1) return { hint: 'Value exceeds integer range.' };
  return { value };
}

/** Reads `text` as a value of `spec`; `name` is the name as the client wrote it (PostgreSQL's messages use it). */
export function parseValue(spec: ParamSpec, name: string, text: string): ParseResult {
  const guc = spec.guc;
  const invalid = `invalid value for parameter "${name}": "${text}"`;
  switch (guc.type) {
    case 'bool': {
      const value = parseBool(text);
      return value === undefined
        ? { ok: false, message: `parameter "${name}" requires a Boolean value` }
        : { ok: true, value };
    }
    case 'int': {
      const parsed = parseIntValue(text, guc.unit);
      if (parsed.value === undefined)
        return parsed.hint
          ? { ok: false, message: invalid, hint: parsed.hint }
          : { ok: false, message: invalid };
      if (parsed.value < guc.min || parsed.value > guc.max) {
        const u = guc.unit ? ` ${guc.unit}` : '';
        const message = `${parsed.value}${u} is outside the valid range for parameter "${spec.name}" (${guc.min}${u} .. ${guc.max}${u})`;
        return { ok: false, message };
      }
      return { ok: true, value: parsed.value };
    }
    case 'enum': {
      const lower = text.toLowerCase();
      const found = guc.options.find(([spelling]) => spelling === lower);
      if (found) return { ok: true, value: found[1] };
      const shown = guc.options.filter(
        ([spelling, canonical]) => spelling === canonical && !HIDDEN_SPELLINGS.has(spelling),
      );
      return {
        ok: false,
        message: invalid,
        hint: `Available values: ${shown.map(([spelling]) => spelling).join(', ')}.`,
      };
    }
    case 'string':
      return { ok: true, value: text };
  }
}

// ---- Value output (ShowGUCOption) ----

/** The value as SHOW and set_config print it: on/off, integers in the largest unit that divides them evenly. */
export function formatValue(spec: ParamSpec, value: ParamValue): string {
  if (typeof value === 'boolean') return value ? 'on' : 'off';
  if (typeof value === 'string') return value;
  const guc = spec.guc;
  if (guc.type !== 'int' || guc.unit === undefined || value <= 0) return String(value);
  for (const { unit, multiplier } of UNIT_TABLES[guc.unit]) {
    if (multiplier <= 1 || value % multiplier === 0) return `${value / multiplier}${unit}`;
  }
  return String(value);
}
