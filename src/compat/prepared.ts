/**
 * SQL-level PREPARE / EXECUTE / DEALLOCATE carried out over protocol-level prepared statements.
 *
 * DSQL refuses `PREPARE`, `EXECUTE` and `DEALLOCATE name` as SQL but accepts the extended protocol's
 * Parse/Bind/Execute/Close and `DEALLOCATE ALL`. The engine calls one run* per statement of a simple
 * Query, with the upstream to itself. Each run* sends its messages ending with a Sync (or one simple
 * Query) and reads through the ReadyForQuery, so the upstream is idle again when it returns.
 *
 * Every run* takes `status`, the transaction status ('I' | 'T' | 'E') of the last ReadyForQuery the
 * engine saw: an outcome decided without the upstream (a name that exists or does not, a wrong number
 * of arguments, a failed transaction) carries it unchanged. Such a local error does not abort the
 * upstream's transaction; the engine, which knows it is inside one, accounts for that.
 *
 * Names upstream: each SQL-level statement gets a protocol-level name `_dsqlproxy_p<n>`, n counting up
 * per session and never reused. A client whose own protocol-level statements used that prefix would
 * collide; no driver does. The unnamed statement and portal are used for the layer's helper queries:
 * a simple Query destroys the client's unnamed statement and portal in PostgreSQL anyway.
 */
import { ProxyError } from '../errors.js';
import { BackendMessage } from '../protocol/constants.js';
import { encodeFrame } from '../protocol/from-server.js';
import { commandComplete, errorResponse } from '../protocol/to-client.js';
import {
  frontendBind,
  frontendClose,
  frontendDescribe,
  frontendExecute,
  frontendParse,
  frontendQuery,
  frontendSync,
} from '../protocol/to-server.js';
import type { ClientLink, Frame, UpstreamLink } from './exchange.js';
import { localArgValue } from './prepared-args.js';
import type { CompatStatement } from './sql/statements.js';

export type PrepareStatement = Extract<CompatStatement, { kind: 'prepare' }>;
export type ExecuteStatement = Extract<CompatStatement, { kind: 'execute' }>;
export type DeallocateStatement = Extract<CompatStatement, { kind: 'deallocate' }>;

/** One SQL-level prepared statement as it lives upstream. */
export interface SqlPreparedEntry {
  /** The SQL name (as the client wrote it, folded as PostgreSQL folds identifiers). */
  name: string;
  /** The protocol-level name it has upstream. */
  protocolName: string;
  /** The Parse message body sent upstream (replayed on a move to a new connection). */
  parseBody: Buffer;
  /** Every parameter's type, as the upstream described the statement (declared and inferred). */
  paramTypeOids: readonly number[];
  /**
   * The parameters' type names (`format_type(oid, -1)`), fetched at the first EXECUTE that needs an
   * argument evaluated upstream and kept; a moved session keeps them (type OIDs do not change).
   */
  paramTypeNames?: readonly string[] | undefined;
}

/**
 * The outcome of one exchange: `ok` with the status of the upstream's ReadyForQuery, or the upstream's
 * ErrorResponse (whole message) for the engine to pass on, with that status.
 */
export type ExchangeOutcome = { ok: true; status: string } | { ok: false; error: Frame; status: string };

/** The prefix of the protocol-level names the layer gives SQL-level statements upstream. */
export const PROTOCOL_NAME_PREFIX = '_dsqlproxy_p';

/** One session's SQL-level prepared statements. Not transactional, as in PostgreSQL. */
export class SqlPreparedStatements {
  readonly #byName = new Map<string, SqlPreparedEntry>();
  #counter = 0;

  get(name: string): SqlPreparedEntry | undefined {
    return this.#byName.get(name);
  }
  /** In creation order (the order to replay them on a new connection). */
  entries(): readonly SqlPreparedEntry[] {
    return [...this.#byName.values()];
  }
  clear(): void {
    this.#byName.clear();
  }
  /** Registers an entry (replacing one of the same name: the caller checks for duplicates). */
  add(entry: SqlPreparedEntry): void {
    this.#byName.set(entry.name, entry);
  }
  /** True when there was an entry of that name. */
  delete(name: string): boolean {
    return this.#byName.delete(name);
  }
  get size(): number {
    return this.#byName.size;
  }
  /** A protocol-level name not used before in this session. */
  nextProtocolName(): string {
    this.#counter += 1;
    return `${PROTOCOL_NAME_PREFIX}${this.#counter}`;
  }
}

const TEXT_OID = 25;
const OID_OID = 26;

/** PREPARE name [(type, ...)] AS statement. */
export async function runPrepare(
  stmt: PrepareStatement,
  registry: SqlPreparedStatements,
  up: UpstreamLink,
  client: ClientLink,
  status: string,
): Promise<ExchangeOutcome> {
  if (status === 'E') return transactionAborted(status);
  if (registry.get(stmt.name) !== undefined) {
    return localError(status, '42P05', `prepared statement "${stmt.name}" already exists`);
  }
  let oids: number[] = [];
  if (stmt.types.length > 0) {
    const resolved = await resolveTypes(stmt.types, up, client);
    if (!resolved.ok) return resolved;
    oids = resolved.oids;
  }
  const protocolName = registry.nextProtocolName();
  const parse = frontendParse(protocolName, stmt.body, oids);
  up.write(Buffer.concat([parse, frontendDescribe('S', protocolName), frontendSync()]));
  let described: number[] | undefined;
  const outcome = await readThrough(up, client, 'PREPARE', (frame) => {
    if (frame.type === BackendMessage.ParameterDescription) {
      described = readParameterDescription(frame.body);
      return true;
    }
    return (
      frame.type === BackendMessage.ParseComplete ||
      frame.type === BackendMessage.RowDescription ||
      frame.type === BackendMessage.NoData
    );
  });
  if (!outcome.ok) return outcome;
  if (described === undefined) throw unexpected('PREPARE', 'no ParameterDescription');
  registry.add({ name: stmt.name, protocolName, parseBody: parse.subarray(5), paramTypeOids: described });
  client.write(commandComplete('PREPARE'));
  return outcome;
}

/**
 * The declared type names to OIDs, by the server (regtype input parses a type name exactly as the
 * grammar does, and reports PostgreSQL's own `42704 type "x" does not exist`). The names travel as
 * Bind values: the client's text is never spliced into SQL.
 */
async function resolveTypes(
  types: readonly string[],
  up: UpstreamLink,
  client: ClientLink,
): Promise<{ ok: true; oids: number[] } | { ok: false; error: Frame; status: string }> {
  const columns = types.map((_, i) => `$${i + 1}::pg_catalog.regtype::pg_catalog.oid`);
  const row = await selectOneRow(
    `SELECT ${columns.join(', ')}`,
    types.map(() => TEXT_OID),
    types,
    up,
    client,
  );
  if (!row.ok) return row;
  const oids = row.values.map((v) => Number(v?.toString('latin1')));
  if (oids.length !== types.length || !oids.every((oid) => Number.isInteger(oid) && oid > 0)) {
    throw unexpected('PREPARE', 'type OIDs not as asked');
  }
  return { ok: true, oids };
}

/** EXECUTE name [(arg, ...)]. */
export async function runExecute(
  stmt: ExecuteStatement,
  registry: SqlPreparedStatements,
  up: UpstreamLink,
  client: ClientLink,
  status: string,
): Promise<ExchangeOutcome> {
  if (status === 'E') return transactionAborted(status);
  const entry = registry.get(stmt.name);
  if (entry === undefined) {
    return localError(status, '26000', `prepared statement "${stmt.name}" does not exist`);
  }
  const expected = entry.paramTypeOids.length;
  if (stmt.args.length !== expected) {
    return localError(
      status,
      '42601',
      `wrong number of parameters for prepared statement "${stmt.name}"`,
      `Expected ${expected} parameters but got ${stmt.args.length}.`,
    );
  }
  const values = await argumentValues(stmt.args, entry, up, client);
  if (!values.ok) return values;
  up.write(
    Buffer.concat([
      frontendBind('', entry.protocolName, values.values),
      frontendDescribe('P', ''),
      frontendExecute('', 0),
      frontendSync(),
    ]),
  );
  // The simple-query shape of EXECUTE's answer: RowDescription, DataRows, the inner statement's tag.
  return readThrough(up, client, 'EXECUTE', (frame) => {
    switch (frame.type) {
      case BackendMessage.BindComplete:
      case BackendMessage.NoData:
        return true;
      case BackendMessage.RowDescription:
      case BackendMessage.DataRow:
      case BackendMessage.CommandComplete:
      case BackendMessage.EmptyQueryResponse:
        client.write(encodeFrame(frame));
        return true;
      default:
        return false;
    }
  });
}

type ArgValues =
  | { ok: true; values: (string | Buffer | null)[] }
  | { ok: false; error: Frame; status: string };

/**
 * The Bind values of EXECUTE's arguments: literals and NULL locally (prepared-args.ts), the rest
 * evaluated upstream in one `SELECT (arg)::type::text, ...`: the cast to the parameter's type keeps
 * PostgreSQL's assignment coercion, the cast to text gives what the type's input function reads back.
 */
async function argumentValues(
  args: readonly string[],
  entry: SqlPreparedEntry,
  up: UpstreamLink,
  client: ClientLink,
): Promise<ArgValues> {
  const values: (string | Buffer | null)[] = [];
  const pending: number[] = [];
  args.forEach((arg, i) => {
    const local = localArgValue(arg, entry.paramTypeOids[i] ?? 0);
    values.push(local === undefined ? null : local.value);
    if (local === undefined) pending.push(i);
  });
  if (pending.length === 0) return { ok: true, values };
  if (entry.paramTypeNames === undefined) {
    const names = await typeNames(entry.paramTypeOids, up, client);
    if (!names.ok) return names;
    entry.paramTypeNames = names.names;
  }
  const typeNamesOf = entry.paramTypeNames;
  // The newline ends a `--` comment the argument's source text may end with.
  const columns = pending.map((i) => `(${args[i]}\n)::${typeNamesOf[i]}::pg_catalog.text`);
  const row = await selectOneRow(`SELECT ${columns.join(', ')}`, [], [], up, client);
  if (!row.ok) return row;
  if (row.values.length !== pending.length) {
    throw unexpected('EXECUTE', `argument evaluation gave ${row.values.length} values for ${pending.length}`);
  }
  pending.forEach((argIndex, k) => {
    values[argIndex] = row.values[k] ?? null;
  });
  return { ok: true, values };
}

/**
 * The parameters' type names as SQL can write them. `format_type(oid, -1)` rather than
 * `format_type(oid, NULL)`: with NULL, bpchar comes out as `character` and bit as `bit`, which the
 * grammar reads as character(1) and bit(1) and a cast to them would truncate.
 */
async function typeNames(
  oids: readonly number[],
  up: UpstreamLink,
  client: ClientLink,
): Promise<{ ok: true; names: string[] } | { ok: false; error: Frame; status: string }> {
  const columns = oids.map((_, i) => `pg_catalog.format_type($${i + 1}, -1)`);
  const row = await selectOneRow(
    `SELECT ${columns.join(', ')}`,
    oids.map(() => OID_OID),
    oids.map(String),
    up,
    client,
  );
  if (!row.ok) return row;
  return { ok: true, names: row.values.map((v) => v?.toString('utf8') ?? 'pg_catalog.text') };
}

/** DEALLOCATE [PREPARE] {name | ALL}. */
export async function runDeallocate(
  stmt: DeallocateStatement,
  registry: SqlPreparedStatements,
  up: UpstreamLink,
  client: ClientLink,
  status: string,
): Promise<ExchangeOutcome> {
  if (status === 'E') return transactionAborted(status);
  if (stmt.name === null) {
    // DSQL accepts DEALLOCATE ALL; like PostgreSQL's it also drops the client's protocol-level
    // statements, which the engine's statement tracking must forget too.
    up.write(frontendQuery('DEALLOCATE ALL'));
    const outcome = await readThrough(up, client, 'DEALLOCATE ALL', (frame) => {
      return frame.type === BackendMessage.CommandComplete;
    });
    if (!outcome.ok) return outcome;
    registry.clear();
    client.write(commandComplete('DEALLOCATE ALL'));
    return outcome;
  }
  const entry = registry.get(stmt.name);
  if (entry === undefined) {
    return localError(status, '26000', `prepared statement "${stmt.name}" does not exist`);
  }
  up.write(Buffer.concat([frontendClose('S', entry.protocolName), frontendSync()]));
  const outcome = await readThrough(up, client, 'DEALLOCATE', (frame) => {
    return frame.type === BackendMessage.CloseComplete;
  });
  if (!outcome.ok) return outcome;
  registry.delete(stmt.name);
  client.write(commandComplete('DEALLOCATE'));
  return outcome;
}

type RowOutcome = { ok: true; values: (Buffer | null)[] } | { ok: false; error: Frame; status: string };

/** One helper query over the unnamed statement and portal: its single row, values as the server sent them. */
async function selectOneRow(
  sql: string,
  paramTypes: readonly number[],
  params: readonly string[],
  up: UpstreamLink,
  client: ClientLink,
): Promise<RowOutcome> {
  up.write(
    Buffer.concat([
      frontendParse('', sql, paramTypes),
      frontendBind('', '', params),
      frontendExecute('', 0),
      frontendSync(),
    ]),
  );
  let values: (Buffer | null)[] | undefined;
  const outcome = await readThrough(up, client, 'a helper query', (frame) => {
    if (frame.type === BackendMessage.DataRow && values === undefined) {
      values = readDataRow(frame.body);
      return true;
    }
    return (
      frame.type === BackendMessage.ParseComplete ||
      frame.type === BackendMessage.BindComplete ||
      frame.type === BackendMessage.CommandComplete
    );
  });
  if (!outcome.ok) return outcome;
  if (values === undefined) throw unexpected('a helper query', 'no row');
  return { ok: true, values };
}

/**
 * Reads backend messages through the ReadyForQuery. Notices, parameter changes and notifications go
 * to the client as they come (PostgreSQL sends them in the middle of any answer); the first
 * ErrorResponse is kept (after an error the server skips everything up to the Sync); every other
 * message is offered to `handle`, which returns false for one that does not belong in this exchange.
 */
async function readThrough(
  up: UpstreamLink,
  client: ClientLink,
  what: string,
  handle: (frame: Frame) => boolean,
): Promise<ExchangeOutcome> {
  let error: Frame | undefined;
  for (;;) {
    const frame = await up.next();
    switch (frame.type) {
      case BackendMessage.ReadyForQuery: {
        const status = String.fromCharCode(frame.body[0] ?? 0x3f);
        return error === undefined ? { ok: true, status } : { ok: false, error, status };
      }
      case BackendMessage.ErrorResponse:
        error ??= frame;
        break;
      case BackendMessage.NoticeResponse:
      case BackendMessage.ParameterStatus:
      case BackendMessage.NotificationResponse:
        client.write(encodeFrame(frame));
        break;
      default:
        if (!handle(frame)) throw unexpected(what, `message '${String.fromCharCode(frame.type)}'`);
    }
  }
}

function unexpected(what: string, detail: string): ProxyError {
  return new ProxyError('UPSTREAM_PROTOCOL', {
    message: `the DSQL endpoint answered ${what} unexpectedly`,
    detail,
  });
}

/** ParameterDescription: Int16 count, then one Int32 type OID per parameter. */
function readParameterDescription(body: Buffer): number[] {
  if (body.length < 2) throw unexpected('PREPARE', 'short ParameterDescription');
  const count = body.readUInt16BE(0);
  if (body.length !== 2 + 4 * count) throw unexpected('PREPARE', 'malformed ParameterDescription');
  const oids: number[] = [];
  for (let i = 0; i < count; i++) oids.push(body.readUInt32BE(2 + 4 * i));
  return oids;
}

/** DataRow: Int16 count, then per column an Int32 length (-1 = NULL) and the bytes. */
function readDataRow(body: Buffer): (Buffer | null)[] {
  const bad = (): ProxyError => unexpected('a helper query', 'malformed DataRow');
  if (body.length < 2) throw bad();
  const count = body.readUInt16BE(0);
  const values: (Buffer | null)[] = [];
  let at = 2;
  for (let i = 0; i < count; i++) {
    if (at + 4 > body.length) throw bad();
    const length = body.readInt32BE(at);
    at += 4;
    if (length < 0) {
      values.push(null);
      continue;
    }
    if (at + length > body.length) throw bad();
    values.push(body.subarray(at, at + length));
    at += length;
  }
  return values;
}

/** An ErrorResponse the layer decides without the upstream, in PostgreSQL's words. */
function localError(status: string, sqlstate: string, message: string, detail?: string): ExchangeOutcome {
  const bytes = errorResponse({ severity: 'ERROR', sqlstate, message, detail });
  return {
    ok: false,
    error: { type: bytes[0] ?? BackendMessage.ErrorResponse, body: bytes.subarray(5) },
    status,
  };
}

/** PostgreSQL refuses every statement but COMMIT/ROLLBACK in a failed transaction, these included. */
function transactionAborted(status: string): ExchangeOutcome {
  return localError(
    status,
    '25P02',
    'current transaction is aborted, commands ignored until end of transaction block',
  );
}
