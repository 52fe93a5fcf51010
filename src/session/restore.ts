/**
 * Moving a session's state to a fresh upstream connection: read it from the old connection
 * (snapshot) and apply it to the new one (restore). Both run only while the session is idle and the
 * client's input is held, so the proxy's own queries never interleave with the client's.
 */
import type { Duplex } from 'node:stream';
import { ProxyError } from '../errors.js';
import { FrameStream } from '../io/frame-stream.js';
import { typedMessage } from '../protocol/message-writer.js';
import { simpleQuery } from '../upstream/simple-query.js';
import { RESTORED_SETTING_PREFIX, RESTORED_SETTINGS, type SessionState } from './session-state.js';

export interface SessionSnapshot {
  /** name -> value, as SHOWn by the old session. */
  settings: Array<[string, string]>;
  /** SQL-level PREPARE statements, as their full `PREPARE ... AS ...` text. */
  sqlPrepared: string[];
  /** Extended-protocol prepared statements: the client's Parse bodies, in creation order. */
  parses: Buffer[];
}

/** The fixed settings, read with current_setting() (the most basic way, and what DSQL documents). */
const FIXED_SETTINGS_SQL = `SELECT ${RESTORED_SETTINGS.map((n) => `pg_catalog.current_setting('${n}')`).join(', ')}`;

/** The planner switches: best effort, a catalog view DSQL may not expose in full. */
const ENABLE_SETTINGS_SQL = `SELECT name, setting FROM pg_catalog.pg_settings WHERE name LIKE '${RESTORED_SETTING_PREFIX.replace('_', '\\_')}%' ORDER BY name`;

/**
 * SQL-level PREPARE statements. AWS notes that on DSQL pg_prepared_statements "might provide an
 * inconsistent view" (it may list more than the connection's own) and that statement names are not
 * preserved, so it is used only for statements created with SQL PREPARE, never for protocol-level
 * ones: those are replayed from the client's own Parse messages, the one reliable source.
 * https://awslabs.github.io/aurora-dsql-starter-kit/considerations.html
 */
const SQL_PREPARED_SQL =
  'SELECT statement FROM pg_catalog.pg_prepared_statements WHERE from_sql ORDER BY prepare_time';

/** Reads the live session's settings and prepared statements from the old connection. */
export async function takeSnapshot(
  old: Duplex,
  state: SessionState,
  timeoutMs: number,
): Promise<SessionSnapshot> {
  if (state.unkeptStatement) {
    throw new ProxyError('INTERNAL', {
      message: 'a prepared statement was too large to keep, so the session cannot be moved',
    });
  }
  const fixed = await simpleQuery(old, FIXED_SETTINGS_SQL, timeoutMs);
  const settings: Array<[string, string]> = [];
  RESTORED_SETTINGS.forEach((name, i) => {
    const value = fixed.rows[0]?.[i];
    if (value !== null && value !== undefined) settings.push([name, value]);
  });
  const enable = await optional(simpleQuery(old, ENABLE_SETTINGS_SQL, timeoutMs));
  for (const [name, value] of enable?.rows ?? [])
    if (name && value !== null && value !== undefined) settings.push([name, value]);
  const prepared = state.sqlPrepareUsed
    ? await optional(simpleQuery(old, SQL_PREPARED_SQL, timeoutMs))
    : undefined;
  return {
    settings,
    sqlPrepared: (prepared?.rows ?? []).map((r) => r[0]).filter((t): t is string => typeof t === 'string'),
    parses: [...state.prepared.values()],
  };
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
export function trackedSnapshot(state: SessionState): SessionSnapshot {
  return {
    settings: state.reportedSettings(),
    sqlPrepared: [],
    parses: [...state.prepared.values()],
  };
}

/**
 * Applies a snapshot on a fresh, logged-in connection. The server's answers (ParameterStatus for
 * changed settings, ParseComplete...) are consumed here: the client already has that view.
 */
export async function restoreSnapshot(
  fresh: Duplex,
  snap: SessionSnapshot,
  timeoutMs: number,
): Promise<void> {
  if (snap.settings.length > 0) {
    // set_config rather than SET: it takes the value as SHOWn (search_path lists included) verbatim.
    const calls = snap.settings.map(
      ([name, value]) => `pg_catalog.set_config(${literal(name)}, ${literal(value)}, false)`,
    );
    await simpleQuery(fresh, `SELECT ${calls.join(', ')}`, timeoutMs);
  }
  for (const statement of snap.sqlPrepared) await simpleQuery(fresh, statement, timeoutMs);
  if (snap.parses.length > 0) await replayParses(fresh, snap.parses, timeoutMs);
}

/** A SQL string literal (standard_conforming_strings is on in DSQL and PostgreSQL). */
function literal(s: string): string {
  return `'${s.replaceAll("'", "''")}'`;
}

/** Sends the Parse messages and a Sync; every Parse must succeed. */
async function replayParses(socket: Duplex, bodies: Buffer[], timeoutMs: number): Promise<void> {
  const frames = new FrameStream(
    socket,
    () =>
      new ProxyError('UPSTREAM_CLOSED', {
        message: 'the new connection closed while restoring prepared statements',
      }),
  );
  const timer = setTimeout(
    () =>
      socket.destroy(
        new ProxyError('UPSTREAM_TIMEOUT', { message: 'restoring prepared statements timed out' }),
      ),
    timeoutMs,
  );
  try {
    socket.write(
      Buffer.concat([...bodies.map((b) => typedMessage(0x50 /* P */, b)), typedMessage(0x53 /* S */)]),
    );
    let failed: string | undefined;
    for (;;) {
      const frame = await frames.nextTyped(1024 * 1024);
      if (frame.type === 0x45 /* E */) failed ??= 'the server refused to re-create a prepared statement';
      if (frame.type === 0x5a /* Z */) break;
    }
    if (failed) throw new ProxyError('INTERNAL', { message: failed });
  } finally {
    clearTimeout(timer);
    frames.detach();
  }
}
