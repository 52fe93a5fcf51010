/**
 * Moving a session's state to a fresh upstream connection: read it from the old connection
 * (snapshot) and apply it to the new one (restore). Both run only while the session is idle and the
 * client's input is held, so the proxy's own queries never interleave with the client's.
 */
import type { Duplex } from 'node:stream';
import { simpleQuery } from '../check/simple-query.js';
import { ProxyError } from '../errors.js';
import { FrameStream } from '../io/frame-stream.js';
import { typedMessage } from '../protocol/message-writer.js';
import { RESTORED_SETTING_PREFIX, RESTORED_SETTINGS, type SessionState } from './session-state.js';

export interface SessionSnapshot {
  /** name -> value, as SHOWn by the old session. */
  settings: Array<[string, string]>;
  /** SQL-level PREPARE statements, as their full `PREPARE ... AS ...` text. */
  sqlPrepared: string[];
  /** Extended-protocol prepared statements: the client's Parse bodies, in creation order. */
  parses: Buffer[];
}

const SETTINGS_SQL = `SELECT name, setting FROM pg_catalog.pg_settings WHERE name IN (${RESTORED_SETTINGS.map(
  (n) => `'${n}'`,
).join(', ')}) OR name LIKE '${RESTORED_SETTING_PREFIX.replace('_', '\\_')}%' ORDER BY name`;

const PREPARED_SQL =
  'SELECT name, statement, from_sql FROM pg_catalog.pg_prepared_statements ORDER BY prepare_time';

/** Reads the live session's settings and prepared statements from the old connection. */
export async function takeSnapshot(
  old: Duplex,
  state: SessionState,
  timeoutMs: number,
): Promise<SessionSnapshot> {
  const settings = await simpleQuery(old, SETTINGS_SQL, timeoutMs);
  const prepared = await simpleQuery(old, PREPARED_SQL, timeoutMs);
  const sqlPrepared: string[] = [];
  const parses: Buffer[] = [];
  for (const [name = null, statement = null, fromSql = null] of prepared.rows) {
    if (fromSql === 't') {
      if (statement) sqlPrepared.push(statement);
      continue;
    }
    const body = name === null ? undefined : state.prepared.get(name);
    // A protocol-level statement the proxy did not see being created cannot be replayed faithfully.
    if (!body)
      throw new ProxyError('INTERNAL', {
        message: `prepared statement "${name}" was not seen being created`,
      });
    parses.push(body);
  }
  return {
    settings: settings.rows.filter((r): r is [string, string] => r[0] !== null && r[1] !== null),
    sqlPrepared,
    parses,
  };
}

/**
 * What can be restored without the old connection (it is gone): the reported settings and the
 * prepared statements the client created. Only valid while `state.unreportedMayDiffer` is false.
 */
export function trackedSnapshot(state: SessionState): SessionSnapshot {
  return {
    settings: [...state.reported.values()].map(({ name, value }) => [name, value]),
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
