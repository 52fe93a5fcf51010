/**
 * CONTRACT (helper B implements; the engine codes against these signatures).
 *
 * The session parameters the proxy answers for DSQL: which names it handles and how, their values per
 * session with PostgreSQL's transaction semantics, and the text SHOW gives.
 *
 * Every name falls in one class:
 * - 'dsql': DSQL accepts it (src/dsql/limits.ts isDsqlSessionParam): SET/RESET/SHOW go to DSQL.
 * - 'carried': the proxy carries it out (statement_timeout, idle_in_transaction_session_timeout,
 *   transaction_timeout, client_min_messages).
 * - 'harmless': accepting any valid value changes nothing DSQL does (e.g. lock_timeout: DSQL never waits
 *   on a lock; synchronize_seqscans).
 * - 'fixed': only the value DSQL behaves as is accepted (standard_conforming_strings=on,
 *   default_transaction_isolation='repeatable read', default_transaction_read_only=off, ...); another
 *   value is refused with 0A000 naming what DSQL does, because accepting it would lie. The names
 *   PostgreSQL keeps from non-superusers (log_*, lc_messages) are 'fixed' too: every SET/RESET gets
 *   PostgreSQL's own refusal, and show() gives undefined for them (only DSQL knows their values).
 * - 'unknown': not the proxy's: the statement goes to DSQL and its answer reaches the client.
 *
 * The catalogue of names and PostgreSQL's value rules are in ./param-catalogue.ts.
 */

import { isDsqlSessionParam } from '../dsql/limits.js';
import { formatValue, type ParamSpec, type ParamValue, paramSpec, parseValue } from './param-catalogue.js';

export type ParamClass = 'dsql' | 'carried' | 'harmless' | 'fixed' | 'unknown';

/** A failure PostgreSQL would report, in PostgreSQL's words and SQLSTATE. */
export interface ParamError {
  sqlstate: string;
  message: string;
  detail?: string;
  hint?: string;
}

/** What SET/RESET produced: ok (maybe with a WARNING to send, e.g. SET LOCAL outside a transaction), or an error. */
export type ParamResult = { ok: true; warning?: ParamError } | { ok: false; error: ParamError };

export type MessageLevel =
  | 'debug5'
  | 'debug4'
  | 'debug3'
  | 'debug2'
  | 'debug1'
  | 'log'
  | 'notice'
  | 'warning'
  | 'error';

export function paramClass(name: string): ParamClass {
  if (isDsqlSessionParam(name)) return 'dsql';
  return paramSpec(name)?.cls ?? 'unknown';
}

/** What SET LOCAL outside a transaction block answers (PostgreSQL's WarnNoTransactionBlock). */
export const SET_LOCAL_OUTSIDE_TRANSACTION: ParamError = {
  sqlstate: '25P01',
  message: 'SET LOCAL can only be used in transaction blocks',
};

/**
 * One transaction's record of a parameter, as guc.c's GucStack entry (one nesting level: DSQL refuses
 * SAVEPOINT). 'set': a SET happened (it survives commit); 'local': only SET LOCAL (undone at the end);
 * 'set-local': a SET and then a SET LOCAL (commit goes back to `masked`, the value of that SET).
 */
interface TxnEntry {
  state: 'set' | 'local' | 'set-local';
  prior: ParamValue;
  masked?: ParamValue;
}

interface Slot {
  spec: ParamSpec;
  value: ParamValue;
  /** The RESET value: the startup parameter, else the proxy's default, else PostgreSQL's boot value. */
  reset: ParamValue;
  txn?: TxnEntry;
}

type Resolved = { ok: true; slot: Slot; value: ParamValue } | { ok: false; error: ParamError };

const quoteIfNeeded = (text: string) => (/^[a-z0-9_]+$/.test(text) ? text : `'${text}'`);

/** The refusal of a restricted name, as PostgreSQL words it for a non-superuser (set_config_option). */
function restrictedError(spec: ParamSpec, name: string, atStartup: boolean): ParamError {
  if (spec.restricted === 'sighup')
    return { sqlstate: '55P02', message: `parameter "${name}" cannot be changed now` };
  if (spec.restricted === 'su_backend' && !atStartup) {
    return { sqlstate: '55P02', message: `parameter "${name}" cannot be set after connection start` };
  }
  return { sqlstate: '42501', message: `permission denied to set parameter "${name}"` };
}

/**
 * One session's values of the names the proxy handles ('carried', 'harmless', 'fixed').
 * `inTransaction` is true inside a transaction block (explicit or the implicit one of a multi-statement Query).
 */
export class SessionParams {
  readonly #slots = new Map<string, Slot>();
  #startupError: ParamError | undefined;

  /** `startup`: the client's startup parameters (any case); handled names among them become the session defaults (their RESET value). Invalid ones produce errors via startupErrors. */
  constructor(
    startup: ReadonlyMap<string, string>,
    defaults?: { statementTimeoutMs?: number; idleInTransactionTimeoutMs?: number },
  ) {
    const proxyDefaults = new Map<string, number | undefined>([
      ['statement_timeout', defaults?.statementTimeoutMs],
      ['idle_in_transaction_session_timeout', defaults?.idleInTransactionTimeoutMs],
    ]);
    for (const [rawName, text] of startup) {
      const spec = paramSpec(rawName);
      if (!spec) continue;
      const resolved = this.#resolve(rawName, text, true);
      if (!resolved.ok) {
        // PostgreSQL stops the login at the first bad one.
        this.#startupError ??= resolved.error;
        continue;
      }
      resolved.slot.value = resolved.value;
      resolved.slot.reset = resolved.value;
      proxyDefaults.delete(spec.name);
    }
    for (const [name, ms] of proxyDefaults) {
      const slot = ms === undefined ? undefined : this.#slot(paramSpec(name) as ParamSpec);
      if (slot && ms !== undefined) {
        slot.value = ms;
        slot.reset = ms;
      }
    }
  }

  /** Startup parameters that were invalid or refused (the login must fail with this error, as PostgreSQL does). */
  get startupError(): ParamError | undefined {
    return this.#startupError;
  }

  /** SET name = value (value items as from the classifier, or 'default'). */
  set(
    name: string,
    value: readonly { value: string; kind: string }[] | 'default',
    local: boolean,
    inTransaction: boolean,
  ): ParamResult {
    // flatten_set_variable_args: no handled name takes a list, and this is checked before anything else.
    if (value !== 'default' && value.length !== 1 && paramSpec(name)) {
      return { ok: false, error: { sqlstate: '22023', message: `SET ${name} takes only one argument` } };
    }
    const resolved = this.#resolve(name, value === 'default' ? null : itemText(value[0]), false);
    if (!resolved.ok) return resolved;
    if (local && !inTransaction) return { ok: true, warning: SET_LOCAL_OUTSIDE_TRANSACTION };
    this.#assign(resolved.slot, resolved.value, local, inTransaction);
    return { ok: true };
  }

  /** set_config(name, value, is_local): returns the new value as SHOW would give it, or an error. value null = reset. */
  setConfig(
    name: string,
    value: string | null,
    isLocal: boolean,
    inTransaction: boolean,
  ): { ok: true; shown: string } | { ok: false; error: ParamError } {
    const resolved = this.#resolve(name, value, false);
    if (!resolved.ok) return resolved;
    const { slot } = resolved;
    // Unlike SET LOCAL, set_config(..., true) outside a block warns of nothing: the value lasts for the
    // implicit transaction of this one statement, so its result shows it and then it is gone.
    if (isLocal && !inTransaction) return { ok: true, shown: formatValue(slot.spec, resolved.value) };
    this.#assign(slot, resolved.value, isLocal, inTransaction);
    return { ok: true, shown: formatValue(slot.spec, slot.value) };
  }

  reset(name: string, inTransaction: boolean): ParamResult {
    return this.set(name, 'default', false, inTransaction);
  }

  /** RESET ALL for the handled names (the engine resets DSQL's own names separately). */
  resetAll(inTransaction: boolean): void {
    for (const slot of this.#slots.values()) {
      if (slot.spec.noResetAll) continue;
      this.#assign(slot, slot.reset, false, inTransaction);
    }
  }

  /** SHOW name: the value as PostgreSQL shows it (e.g. statement_timeout 5000 -> '5s'), undefined if not handled. */
  show(name: string): string | undefined {
    const spec = paramSpec(name);
    if (!spec || spec.restricted) return undefined;
    return formatValue(spec, this.#slot(spec).value);
  }

  /** The transaction (explicit or implicit) ended: SET LOCAL values end; on rollback, SETs made in it are undone. */
  endTransaction(committed: boolean): void {
    // guc.c AtEOXact_GUC at nesting level 1.
    for (const slot of this.#slots.values()) {
      const txn = slot.txn;
      if (!txn) continue;
      if (!committed || txn.state === 'local') slot.value = txn.prior;
      else if (txn.state === 'set-local') slot.value = txn.masked as ParamValue;
      slot.txn = undefined;
    }
  }

  /** Back to the session defaults (DISCARD ALL). */
  discardAll(): void {
    for (const slot of this.#slots.values()) {
      slot.value = slot.reset;
      slot.txn = undefined;
    }
  }

  /** Effective values the proxy carries out; 0 = disabled. */
  get statementTimeoutMs(): number {
    return this.#number('statement_timeout');
  }
  get idleInTransactionTimeoutMs(): number {
    return this.#number('idle_in_transaction_session_timeout');
  }
  get transactionTimeoutMs(): number {
    return this.#number('transaction_timeout');
  }
  get clientMinMessages(): MessageLevel {
    const level = this.#slot(paramSpec('client_min_messages') as ParamSpec).value as MessageLevel | 'info';
    // PostgreSQL always sends INFO, so 'info' lets through exactly what 'notice' does.
    return level === 'info' ? 'notice' : level;
  }

  #number(name: string): number {
    return this.#slot(paramSpec(name) as ParamSpec).value as number;
  }

  #slot(spec: ParamSpec): Slot {
    const key = spec.name.toLowerCase();
    let slot = this.#slots.get(key);
    if (!slot) {
      slot = { spec, value: spec.boot, reset: spec.boot };
      this.#slots.set(key, slot);
    }
    return slot;
  }

  /** Checks a new value (null: the RESET value) as set_config_option does: permission, then the value, then what DSQL does. */
  #resolve(name: string, text: string | null, atStartup: boolean): Resolved {
    const spec = paramSpec(name);
    if (!spec) return { ok: false, error: unrecognized(name) };
    if (spec.restricted) return { ok: false, error: restrictedError(spec, name, atStartup) };
    const slot = this.#slot(spec);
    if (text === null) return { ok: true, slot, value: slot.reset };
    const parsed = parseValue(spec, name, text);
    if (!parsed.ok) {
      const error: ParamError = { sqlstate: '22023', message: parsed.message };
      if (parsed.hint) error.hint = parsed.hint;
      return { ok: false, error };
    }
    if (spec.fixed !== undefined && parsed.value !== spec.fixed)
      return { ok: false, error: refusal(spec, parsed.value) };
    return { ok: true, slot, value: parsed.value };
  }

  /** Gives a slot a new value; inside a transaction, records what commit and rollback restore (guc.c push_old_value). */
  #assign(slot: Slot, value: ParamValue, local: boolean, inTransaction: boolean): void {
    if (inTransaction) {
      const txn = slot.txn;
      if (!txn) slot.txn = { state: local ? 'local' : 'set', prior: slot.value };
      else if (!local) {
        txn.state = 'set';
        txn.masked = undefined;
      } else if (txn.state === 'set') {
        txn.state = 'set-local';
        txn.masked = slot.value;
      }
    } else if (local) return;
    slot.value = value;
  }
}

/**
 * The text a SET value item reaches the parameter as (flatten_set_variable_args): an integer constant is
 * printed in decimal, so `SET statement_timeout = 010` is 10 ms (not octal, as the string '010' is), and
 * `0x10` / `1_000` (PostgreSQL 16) are 16 / 1000; one beyond int32 is a numeric constant kept as written.
 */
function itemText(item: { value: string; kind: string } | undefined): string {
  if (!item) return '';
  if (item.kind !== 'number') return item.value;
  const match = /^([+-]?)(0[xX][0-9a-fA-F_]+|0[oO][0-7_]+|0[bB][01_]+|\d[\d_]*)$/.exec(item.value);
  if (!match) return item.value;
  const magnitude = BigInt((match[2] as string).replaceAll('_', ''));
  const signed = match[1] === '-' ? -magnitude : magnitude;
  return signed >= -(2n ** 31n) && signed < 2n ** 31n ? String(signed) : item.value;
}

function unrecognized(name: string): ParamError {
  return { sqlstate: '42704', message: `unrecognized configuration parameter "${name}"` };
}

/** The 0A000 answer to a value DSQL does not behave as. */
function refusal(spec: ParamSpec, value: ParamValue): ParamError {
  const asked = quoteIfNeeded(formatValue(spec, value));
  const fixed = quoteIfNeeded(formatValue(spec, spec.fixed as ParamValue));
  return {
    sqlstate: '0A000',
    message: `${spec.name} = ${asked} is not supported by dsql-proxy: DSQL always uses ${spec.name} = ${fixed}`,
    hint: spec.why,
  };
}
