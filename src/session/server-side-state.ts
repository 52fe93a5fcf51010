/**
 * What a client's session holds on the server that a fresh upstream connection would not have, as far
 * as the proxy can follow it from the byte stream:
 * - settings the server reports with ParameterStatus (application_name, client_encoding, DateStyle,
 *   IntervalStyle, TimeZone...), kept current from the relay's scanner;
 * - named prepared statements created with the extended protocol and accepted by the server (the
 *   Parse bodies, to replay them: statement-tracker.ts);
 * - whether a statement may have changed state the server does not report (search_path,
 *   extra_float_digits, enable_*, SQL-level PREPARE, RESET/DISCARD). Once that is possible, only a
 *   snapshot taken from the live session can say what to restore.
 *
 * DSQL has no temporary tables, advisory locks, LISTEN or savepoints (docs/dsql.md), so nothing
 * else survives between transactions on a session.
 */

import type { ResetPlan } from '../upstream/reset.js';
import { StatementTracker } from './statement-tracker.js';

/** Reported (ParameterStatus) settings among DSQL_SETTINGS; the rest need a snapshot. */
const REPORTED = new Set(['application_name', 'client_encoding', 'datestyle', 'intervalstyle', 'timezone']);

/** Statement text that may change unreported state. Over-matching only costs a transparent reconnect. */
const CHANGES_UNREPORTED =
  /search_path|extra_float_digits|enable_|disable_sync_create_index|\b(?:set|reset)\s+(?:session\s+|local\s+)?role\b|set_config|\breset\b|\bdiscard\b|\bprepare\b|\bdeallocate\b/i;

/**
 * Statement text that may change the session's role: SET ROLE, RESET (ROLE or ALL), DISCARD ALL,
 * set_config('role', ...). Not a bare `role`, a common column name.
 */
const CHANGES_ROLE = /\bset\s+(?:session\s+|local\s+)?role\b|set_config|\breset\b|\bdiscard\b/i;

const SQL_PREPARE = /\bprepare\b/i;

/**
 * DSQL's parameters the server does not report, where a statement's text names them (SET, RESET,
 * set_config('name', ...)): the pooled connection's reset undoes these. The role only where a statement
 * sets it, since `role` alone is a common column name.
 */
const UNREPORTED_NAMES =
  /\b(search_path|extra_float_digits|disable_sync_create_index|enable_[a-z0-9_]+)\b|\bset\s+(?:session\s+|local\s+)?(role)\b|set_config\s*\(\s*'(role)'/gi;

/** set_config() with a name that is not spelled out in the text (a bind parameter, an expression). */
const SET_CONFIG_UNNAMED = /set_config\s*\(\s*(?!')/i;

/** More names than a session plausibly sets: past this, the reset gives up and the connection closes. */
const MAX_TOUCHED = 64;

const NO_SETTINGS: ReadonlyMap<string, string> = new Map();

export class ServerSideState {
  /** The named prepared statements the server accepted (extended protocol), to replay their Parse. */
  readonly statements = new StatementTracker();
  /**
   * The settings the login reported, by reference: a session copies nothing at its start, and most
   * sessions never change a setting. `changed` holds what the server reported since.
   */
  private baseline = NO_SETTINGS;
  /** Reported settings the server changed after the login, by lower-case name. */
  private readonly changed = new Map<string, { name: string; value: string }>();
  /** True once a statement may have changed a setting the server does not report. */
  unreportedMayDiffer = false;
  /**
   * True once the client may have used SQL-level PREPARE: those statements live only on the server,
   * and the proxy does not re-create them. The next move asks the server whether any exist (and ends
   * the session if so); a blind reconnect is not possible meanwhile.
   */
  sqlPrepareUsed = false;

  /**
   * True for good once a named prepared statement could not be kept (too large, past the bounds, or
   * not followed): it cannot be re-created, so the session cannot move.
   */
  get unkeptStatement(): boolean {
    return this.statements.untracked;
  }

  /**
   * True once a statement may have changed the role (SET ROLE): a move must then read it back, and
   * ends the session if the server cannot say (see takeSnapshot).
   */
  roleMayDiffer = false;

  /** Unreported DSQL parameters (lower case) that statements named where they may have changed them. */
  private readonly touched = new Set<string>();
  /** True once a statement may have changed a parameter the proxy cannot name: no reset can undo it. */
  private touchedUnknown = false;

  noteStatement(sql: string | null): void {
    if (sql === null || CHANGES_UNREPORTED.test(sql)) {
      this.unreportedMayDiffer = true;
      this.noteTouched(sql);
    }
    if (sql === null || CHANGES_ROLE.test(sql)) this.roleMayDiffer = true;
    if (sql === null || SQL_PREPARE.test(sql)) this.sqlPrepareUsed = true;
  }

  private noteTouched(sql: string | null): void {
    if (sql === null || SET_CONFIG_UNNAMED.test(sql)) {
      this.touchedUnknown = true;
      return;
    }
    for (const m of sql.matchAll(UNREPORTED_NAMES)) {
      const name = (m[1] ?? m[2] ?? m[3] ?? '').toLowerCase();
      if (this.touched.size >= MAX_TOUCHED) this.touchedUnknown = true;
      else this.touched.add(name);
    }
  }

  /**
   * What a pooled connection's reset must undo before another client gets it: every DSQL parameter the
   * session may have changed (reported ones the server said changed, unreported ones a statement named,
   * and `alsoSet`: those the compatibility layer saw set), and the named prepared statements, when any
   * may exist (`alsoStatements`: the layer holds some). Undefined when the session may have changed
   * something it cannot name: such a connection is closed, not pooled.
   */
  resetPlan(alsoSet: Iterable<string> = [], alsoStatements = false): ResetPlan | undefined {
    if (this.touchedUnknown) return undefined;
    const settings = new Set<string>([...this.changed.keys(), ...this.touched]);
    for (const name of alsoSet) settings.add(name.toLowerCase());
    const statements =
      alsoStatements || this.statements.size > 0 || this.statements.untracked || this.sqlPrepareUsed;
    return { settings: [...settings].sort(), statements };
  }

  /** The Parse bodies of the named statements, in creation order, for a fresh connection. */
  preparedBodies(): Buffer[] {
    return this.statements.bodies();
  }

  /** Whether a fresh connection can be given everything this session holds without asking the old one. */
  get rebuildable(): boolean {
    return !this.unreportedMayDiffer && !this.sqlPrepareUsed && !this.unkeptStatement;
  }

  /** A ParameterStatus body: setting name and value, each NUL-terminated. */
  noteParameterStatus(body: Buffer): void {
    const nameEnd = body.indexOf(0);
    if (nameEnd <= 0) return;
    const valueEnd = body.indexOf(0, nameEnd + 1);
    if (valueEnd < 0) return;
    this.noteSetting(body.toString('utf8', 0, nameEnd), body.toString('utf8', nameEnd + 1, valueEnd));
  }

  /** The settings the server reported at login (the upstream connection's ParameterStatus list). */
  setBaseline(settings: ReadonlyMap<string, string>): void {
    this.baseline = settings;
    this.changed.clear();
  }

  /** A setting as the server reported it after the login (ParameterStatus). */
  noteSetting(name: string, value: string): void {
    const key = name.toLowerCase();
    if (REPORTED.has(key)) this.changed.set(key, { name, value });
  }

  /** The restorable settings the server has reported, login values overlaid with later changes. */
  reportedSettings(): Array<[string, string]> {
    const out = new Map<string, [string, string]>();
    for (const [name, value] of this.baseline) {
      const key = name.toLowerCase();
      if (REPORTED.has(key)) out.set(key, [name, value]);
    }
    for (const [key, { name, value }] of this.changed) out.set(key, [name, value]);
    return [...out.values()];
  }

  /**
   * Called after a snapshot from the live session has been restored elsewhere: all is known again, and
   * the snapshot found no SQL-level prepared statement (else the session could not move).
   */
  markKnown(): void {
    this.unreportedMayDiffer = false;
    this.roleMayDiffer = false;
    this.sqlPrepareUsed = false;
  }
}
