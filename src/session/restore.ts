/**
 * Moving a session's state to a fresh upstream connection: read it from the old connection
 * (snapshot) and apply it to the new one (restore). Both run only while the session is idle and the
 * client's input is held, so the proxy's own queries never interleave with the client's.
 */
import type { Duplex } from 'node:stream';
import {
  DSQL_SET_ONLY_SETTINGS,
  DSQL_SETTING_PREFIX,
  DSQL_SETTINGS,
  isDsqlSessionParam,
} from '../dsql/limits.js';
import { ProxyError } from '../errors.js';
import { socketDeadline } from '../io/deadline.js';
import { FrameStream } from '../io/frame-stream.js';
import { BackendMessage, FrontendMessage } from '../protocol/constants.js';
import { typedMessage } from '../protocol/message-writer.js';
import { simpleQuery } from '../upstream/simple-query.js';
import type { ServerSideState } from './server-side-state.js';
import { MAX_TRACKED_BYTES, MAX_TRACKED_STATEMENTS } from './statement-tracker.js';

export interface SessionSnapshot {
  /** name -> value, as SHOWn by the old session. */
  settings: Array<[string, string]>;
  /** Extended-protocol prepared statements: the Parse bodies the server accepted, in creation order. */
  parses: Buffer[];
}

/** The fixed settings, read with current_setting() (the most basic way, and what DSQL documents). */
const FIXED_SETTINGS_SQL = `SELECT ${DSQL_SETTINGS.map((n) => `pg_catalog.current_setting('${n}')`).join(', ')}`;

/** The planner switches: best effort, a catalog view DSQL may not expose in full. */
const ENABLE_SETTINGS_SQL = `SELECT name, setting FROM pg_catalog.pg_settings WHERE name LIKE '${DSQL_SETTING_PREFIX.replace('_', '\\_')}%' ORDER BY name`;

/** The settings DSQL accepts but plain PostgreSQL may lack: NULL where the server has none. */
const IF_PRESENT_SQL = `SELECT ${DSQL_SET_ONLY_SETTINGS.map((n) => `pg_catalog.current_setting('${n}', true)`).join(', ')}`;

/**
 * Whether the session holds statements made with SQL-level PREPARE. Only the number is read, never
 * their text: PostgreSQL keeps in pg_prepared_statements.statement the whole Query string the
 * PREPARE arrived in (`PREPARE ins AS INSERT ...; EXECUTE ins` keeps both), so running that text on
 * the new connection ran client SQL the client did not send then (an INSERT once per move). The
 * proxy does not re-create them; DSQL refuses SQL PREPARE anyway ("unsupported statement: Prepare").
 * AWS notes that on DSQL the view "might provide an inconsistent view" (more than the connection's
 * own, https://awslabs.github.io/aurora-dsql-starter-kit/considerations.html): it is read only after
 * a statement that may have been a PREPARE, and only its `from_sql` rows, which DSQL cannot have.
 */
const SQL_PREPARED_COUNT_SQL = 'SELECT count(*) FROM pg_catalog.pg_prepared_statements WHERE from_sql';

/** The session holds something a fresh connection cannot be given: it ends instead of moving. */
function notMovable(detail: string, hint: string): ProxyError {
  return new ProxyError('SESSION_NOT_MOVABLE', { detail, hint });
}

/**
 * Reads the live session's settings from the old connection, with the prepared statements the proxy
 * tracked. Throws SESSION_NOT_MOVABLE (before sending anything) when the session holds what cannot be
 * re-created, so the caller ends it honestly rather than moving it without that state.
 */
export async function takeSnapshot(
  old: Duplex,
  state: ServerSideState,
  timeoutMs: number,
): Promise<SessionSnapshot> {
  if (state.unkeptStatement) {
    throw notMovable(
      `the session holds named prepared statements dsql-proxy did not keep copies of (it keeps at most ${MAX_TRACKED_STATEMENTS} statements and ${MAX_TRACKED_BYTES / (1024 * 1024)} MiB of them per session)`,
      'Close the named prepared statements the application no longer uses, and reconnect.',
    );
  }
  if (state.sqlPrepareUsed) await refuseSqlPrepared(old, timeoutMs);
  const fixed = await simpleQuery(old, FIXED_SETTINGS_SQL, timeoutMs);
  const settings: Array<[string, string]> = [];
  DSQL_SETTINGS.forEach((name, i) => {
    const value = fixed.rows[0]?.[i];
    if (value !== null && value !== undefined) settings.push([name, value]);
  });
  const enable = await optional(simpleQuery(old, ENABLE_SETTINGS_SQL, timeoutMs));
  for (const [name, value] of enable?.rows ?? [])
    if (name && value !== null && value !== undefined) settings.push([name, value]);
  const present = await optional(simpleQuery(old, IF_PRESENT_SQL, timeoutMs));
  if (present === undefined && state.roleMayDiffer) {
    throw notMovable(
      'the session may have changed its role (SET ROLE), and the server did not say to which',
      'Reconnect, and SET ROLE again on the new session.',
    );
  }
  DSQL_SET_ONLY_SETTINGS.forEach((name, i) => {
    const value = present?.rows[0]?.[i];
    // 'none' is a fresh session's role already: nothing to send.
    if (value !== null && value !== undefined && !(name === 'role' && value === 'none')) {
      settings.push([name, value]);
    }
  });
  return { settings, parses: state.preparedBodies() };
}

/** Throws SESSION_NOT_MOVABLE unless the server says the session holds no SQL-level prepared statement. */
async function refuseSqlPrepared(old: Duplex, timeoutMs: number): Promise<void> {
  const hint =
    "dsql-proxy re-creates the prepared statements of the extended protocol (a driver's named statements), not those made with SQL PREPARE, which DSQL refuses anyway. DEALLOCATE them once done, or use the driver's prepared statements, and reconnect.";
  const answer = await optional(simpleQuery(old, SQL_PREPARED_COUNT_SQL, timeoutMs));
  if (answer === undefined) {
    throw notMovable(
      'the session may hold statements made with SQL PREPARE, and the server did not list them',
      hint,
    );
  }
  const count = Number(answer.rows[0]?.[0] ?? Number.NaN);
  if (count !== 0) {
    throw notMovable(`the session holds ${count} prepared statement(s) made with SQL PREPARE`, hint);
  }
}

/**
 * A query the server may refuse (an unsupported catalog view) without harming the session: a server
 * error is answered through to ReadyForQuery, so the connection stays usable. A closed or timed-out
 * connection still fails the snapshot.
 */
async function optional<T>(query: Promise<T>): Promise<T | undefined> {
  try {
    return await query;
  } catch (err) {
    if (err instanceof ProxyError && err.code === 'UPSTREAM_REJECTED') return undefined;
    throw err;
  }
}

/**
 * What can be restored without the old connection (it is gone): the reported settings and the
 * prepared statements the client created. Only valid while `state.rebuildable`.
 */
export function trackedSnapshot(state: ServerSideState): SessionSnapshot {
  return { settings: state.reportedSettings(), parses: state.preparedBodies() };
}

/**
 * Applies a snapshot on a fresh, logged-in connection. The server's answers (ParameterStatus for
 * changed settings, ParseComplete...) are consumed here: the client already has that view. Nothing
 * the client wrote as SQL is run here: settings go through set_config() with the names the proxy
 * chose, prepared statements through the client's own Parse messages, which only prepare.
 */
export async function restoreSnapshot(
  fresh: Duplex,
  snap: SessionSnapshot,
  timeoutMs: number,
): Promise<void> {
  // DSQL refuses set_config() of any other name ("setting configuration parameter ... not
  // supported"): a setting it would refuse cannot be carried, and the session ends instead.
  const refused = snap.settings.filter(([name]) => !isDsqlSessionParam(name)).map(([name]) => name);
  if (refused.length > 0) {
    throw notMovable(
      `the session changed settings DSQL does not let a session set: ${refused.join(', ')}`,
      'Reconnect, and keep to the settings DSQL accepts.',
    );
  }
  if (snap.settings.length > 0) {
    // set_config rather than SET: it takes the value as SHOWn (search_path lists included) verbatim.
    const calls = snap.settings.map(
      ([name, value]) => `pg_catalog.set_config(${literal(name)}, ${literal(value)}, false)`,
    );
    await simpleQuery(fresh, `SELECT ${calls.join(', ')}`, timeoutMs);
  }
  if (snap.parses.length > 0) await replayParses(fresh, snap.parses, timeoutMs);
}

/** A SQL string literal (standard_conforming_strings is on in DSQL and PostgreSQL). */
function literal(s: string): string {
  return `'${s.replaceAll("'", "''")}'`;
}

/** Sends the Parse messages and a Sync; every Parse must succeed. */
async function replayParses(socket: Duplex, bodies: Buffer[], timeoutMs: number): Promise<void> {
  const deadline = socketDeadline(
    socket,
    timeoutMs,
    () => new ProxyError('UPSTREAM_TIMEOUT', { message: 'restoring prepared statements timed out' }),
  );
  const frames = new FrameStream(
    socket,
    () =>
      deadline.expired ??
      new ProxyError('UPSTREAM_CLOSED', {
        message: 'the new connection closed while restoring prepared statements',
      }),
  );
  try {
    socket.write(
      Buffer.concat([
        ...bodies.map((b) => typedMessage(FrontendMessage.Parse, b)),
        typedMessage(FrontendMessage.Sync),
      ]),
    );
    let failed: string | undefined;
    for (;;) {
      const frame = await frames.nextTyped(1024 * 1024);
      if (frame.type === BackendMessage.ErrorResponse)
        failed ??= 'the server refused to re-create a prepared statement';
      if (frame.type === BackendMessage.ReadyForQuery) break;
    }
    if (failed) throw new ProxyError('INTERNAL', { message: failed });
  } finally {
    deadline.clear();
    frames.detach();
  }
}
