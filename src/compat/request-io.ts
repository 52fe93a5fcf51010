import type { TypedFrame } from '../protocol/frame-reader.js';
import type { ClientLink, UpstreamLink } from './exchange.js';
import type { CompatSession, TxnStatus } from './session-state.js';
import type { CompatStatement } from './sql/statements.js';

/** What the request runners use: the client, the upstream (borrowed on first use), the session. */
export interface RequestIo {
  readonly session: CompatSession;
  readonly client: ClientLink;
  /** The transaction status the client saw last. */
  readonly status: TxnStatus;
  up(): UpstreamLink;
  /** The next client message of the request (extended protocol batches). */
  nextFrame(): Promise<TypedFrame>;
  /** Client statements the engine sent DSQL as text (the relay's session state must know them). */
  noteUpstreamText(sql: string): void;
  /** Ends the request: the relay counts it, and the client gets its ReadyForQuery. */
  ready(status: TxnStatus): void;
  /** A ROLLBACK of the client's went to DSQL among other statements. */
  noteRollback(): void;
  /** The layer's own prepared statements and portals (extended protocol). */
  readonly virtualStatements: Map<string, CompatStatement>;
  readonly virtualPortals: Map<string, CompatStatement>;
}
