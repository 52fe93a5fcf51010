import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

/** Interval of the event-loop lag samples behind the `dsql_proxy_nodejs_eventloop_lag_*` metrics. */
export const EVENT_LOOP_SAMPLE_MS = 100;

/**
 * Every Prometheus metric the proxy exports, on a registry of its own (never the global one, so two
 * proxies in one process, as in tests, do not collide). Names are prefixed `dsql_proxy_`.
 */
export class Metrics {
  readonly registry = new Registry();

  readonly connectionsActive = new Gauge({
    name: 'dsql_proxy_client_connections_active',
    help: 'Client connections currently open (including those still logging in).',
    registers: [this.registry],
  });
  readonly connectionsTotal = new Counter({
    name: 'dsql_proxy_client_connections_total',
    help: 'Client connections by outcome: established, refused_<reason>, cancel_request, client_left.',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });
  readonly authFailures = new Counter({
    name: 'dsql_proxy_auth_failures_total',
    help: 'Local authentication failures by reason (wrong_password, unknown_user, protocol, timeout).',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });
  readonly upstreamConnectSeconds = new Histogram({
    name: 'dsql_proxy_upstream_connect_duration_seconds',
    help: 'Time to open TLS to the endpoint and log in, per successful upstream connection.',
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });
  readonly upstreamErrors = new Counter({
    name: 'dsql_proxy_upstream_errors_total',
    help: 'Failed upstream connections and logins, by the SQLSTATE given to the client.',
    labelNames: ['sqlstate'] as const,
    registers: [this.registry],
  });
  readonly tokenSignings = new Counter({
    name: 'dsql_proxy_token_signings_total',
    help: 'IAM tokens signed, by endpoint and action.',
    labelNames: ['endpoint', 'action'] as const,
    registers: [this.registry],
  });
  readonly tokenFailures = new Counter({
    name: 'dsql_proxy_token_signing_failures_total',
    help: 'Failed token signings (usually credential resolution), by endpoint and action.',
    labelNames: ['endpoint', 'action'] as const,
    registers: [this.registry],
  });
  readonly tokenExpiry = new Gauge({
    name: 'dsql_proxy_token_expiry_seconds',
    help: 'Seconds until the current token of each endpoint and action stops working (negative: expired).',
    labelNames: ['endpoint', 'action'] as const,
    registers: [this.registry],
  });
  readonly credentialsExpiry = new Gauge({
    name: 'dsql_proxy_credentials_expiry_seconds',
    help: 'Seconds until the AWS credentials that signed the current tokens expire (absent for long-term keys).',
    registers: [this.registry],
  });
  readonly connectQueueLength = new Gauge({
    name: 'dsql_proxy_connect_queue_length',
    help: 'Clients waiting for a new-connection slot (--connect-rate), by endpoint.',
    labelNames: ['endpoint'] as const,
    registers: [this.registry],
  });
  readonly connectQueueWaitSeconds = new Histogram({
    name: 'dsql_proxy_connect_queue_wait_seconds',
    help: 'Time each upstream connection attempt waited for a new-connection slot (0 when one was free).',
    buckets: [0, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });
  readonly connectQueueTimeouts = new Counter({
    name: 'dsql_proxy_connect_queue_timeouts_total',
    help: 'Clients refused with 53400 after waiting --connect-queue-timeout for a new-connection slot, by endpoint.',
    labelNames: ['endpoint'] as const,
    registers: [this.registry],
  });
  readonly dnsLookups = new Counter({
    name: 'dsql_proxy_dns_lookups_total',
    help: 'Endpoint host name lookups and answers, by host and result: resolved and failed (lookups), cached (a connection answered within the TTL), stale (a connection answered past the TTL because lookups are failing).',
    labelNames: ['host', 'result'] as const,
    registers: [this.registry],
  });
  readonly upstreamLoginRetries = new Counter({
    name: 'dsql_proxy_upstream_login_retries_total',
    help: 'Upstream logins retried after DSQL refused them for capacity (53300, 53400), by SQLSTATE.',
    labelNames: ['sqlstate'] as const,
    registers: [this.registry],
  });
  readonly endpointUp = new Gauge({
    name: 'dsql_proxy_endpoint_up',
    help: 'Whether each endpoint is in use (1) or in backoff after a failure (0), by cluster.',
    labelNames: ['cluster', 'endpoint', 'region'] as const,
    registers: [this.registry],
  });
  readonly endpointFailovers = new Counter({
    name: 'dsql_proxy_endpoint_failovers_total',
    help: 'Upstream connections made on another endpoint because the preferred one failed.',
    labelNames: ['from', 'to'] as const,
    registers: [this.registry],
  });
  /**
   * Bytes relayed, summed in plain numbers on the relay's path and moved into `bytes` when it is
   * scraped: a labelled prom-client inc builds its label key string on every call, twice per query.
   */
  readonly bytesToServer = new PendingCount();
  readonly bytesToClient = new PendingCount();
  readonly bytes = new Counter({
    name: 'dsql_proxy_bytes_total',
    help: 'Bytes relayed, by direction (client_to_server, server_to_client).',
    labelNames: ['direction'] as const,
    registers: [this.registry],
    collect: () => {
      const toServer = this.bytesToServer.take();
      const toClient = this.bytesToClient.take();
      if (toServer > 0) this.bytes.inc({ direction: 'client_to_server' }, toServer);
      if (toClient > 0) this.bytes.inc({ direction: 'server_to_client' }, toClient);
    },
  });
  readonly sessionSeconds = new Histogram({
    name: 'dsql_proxy_session_duration_seconds',
    help: 'Duration of established client sessions.',
    buckets: [0.01, 0.1, 1, 10, 60, 300, 900, 1800, 3600, 7200],
    registers: [this.registry],
  });
  readonly cancels = new Counter({
    name: 'dsql_proxy_cancel_requests_total',
    help: 'Cancel requests by outcome (forwarded, unknown_key, no_upstream_key, session_changed, failed).',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });
  readonly compatStatements = new Counter({
    name: 'dsql_proxy_compat_statements_total',
    help: 'Statements the compatibility layer answered or carried out itself, by kind (set, reset, show, set_config, begin, set_transaction, lock, prepare, execute, deallocate, discard, refused).',
    labelNames: ['kind'] as const,
    registers: [this.registry],
  });
  readonly compatTimeouts = new Counter({
    name: 'dsql_proxy_compat_timeouts_total',
    help: 'Timeouts the proxy carried out for DSQL, by kind (statement, statement_unanswered, idle_in_transaction, idle_session, transaction).',
    labelNames: ['kind'] as const,
    registers: [this.registry],
  });
  readonly conflictRetries = new Counter({
    name: 'dsql_proxy_conflict_retries_total',
    help: 'Requests that met a 40001 and were retried (outcome succeeded) or were not (mismatch: a replayed transaction read something else; exhausted: --conflict-retry-attempts or statement_timeout; too_large: past --conflict-retry-buffer; unreplayable; cancelled), by kind (statement, transaction).',
    labelNames: ['kind', 'outcome'] as const,
    registers: [this.registry],
  });
  readonly conflictRetryAttempts = new Histogram({
    name: 'dsql_proxy_conflict_retry_attempts',
    help: 'Sends per request that a retry saved from a 40001 (the first send included).',
    buckets: [2, 3, 4, 5, 8],
    registers: [this.registry],
  });
  readonly serializationConflicts = new Counter({
    name: 'dsql_proxy_serialization_conflicts_total',
    help: 'Serialization failures seen on the way back to clients: 40001, with DSQL code OC000 (data) or OC001 (schema).',
    labelNames: ['code'] as const,
    registers: [this.registry],
  });

  readonly upstreamMoves = new Counter({
    name: 'dsql_proxy_upstream_moves_total',
    help: 'Sessions moved to a fresh upstream connection, by reason (max_age: planned, before the 60-minute cap; reconnect: after the upstream closed while the session was idle).',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });
  readonly upstreamLost = new Counter({
    name: 'dsql_proxy_upstream_lost_total',
    help: 'Upstream connections that closed under a live session, by outcome (reconnected, ended).',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });

  readonly poolIdle = new Gauge({
    name: 'dsql_proxy_pool_idle_connections',
    help: 'Idle upstream connections kept for reuse (--pool-mode session).',
    registers: [this.registry],
  });
  readonly poolReuses = new Counter({
    name: 'dsql_proxy_pool_reuses_total',
    help: 'Client sessions given a pooled upstream connection instead of a new one.',
    registers: [this.registry],
  });
  readonly poolResets = new Counter({
    name: 'dsql_proxy_pool_resets_total',
    help: 'Released connections by outcome: clean (the session changed nothing: no reset sent), reset (RESET of the changed DSQL parameters and/or DEALLOCATE ALL), not_kept (pool full or too old), failed (the reset was refused: closed), unknown_state (the session may have changed what the proxy cannot name: closed).',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });

  readonly authDelaySeconds = new Histogram({
    name: 'dsql_proxy_auth_delay_seconds',
    help: 'Delay before answering a failed login; it grows with recent failures for the same address and user.',
    buckets: [0.25, 0.5, 1, 2, 4, 5],
    registers: [this.registry],
  });

  constructor(opts: { processMetrics?: boolean } = {}) {
    if (opts.processMetrics !== false)
      collectDefaultMetrics({
        register: this.registry,
        prefix: 'dsql_proxy_',
        // The event-loop lag histogram samples on a timer (prom-client's default: every 10 ms, which
        // wakes an idle proxy 100 times a second). Ten samples a second still give a scrape hundreds.
        eventLoopMonitoringPrecision: EVENT_LOOP_SAMPLE_MS,
      });
  }
}

/** A count kept outside prom-client until the next scrape. */
export class PendingCount {
  private pending = 0;

  inc(n: number): void {
    this.pending += n;
  }

  /** The count since the last take, which starts again from zero. */
  take(): number {
    const n = this.pending;
    this.pending = 0;
    return n;
  }
}
