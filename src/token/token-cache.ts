/**
 * Keeps one ready IAM auth token per action (DbConnect, DbConnectAdmin) so a client login never waits
 * for signing, and re-signs each token in the background before it runs out.
 *
 * Rules (times in ms; lifetime = expiresAt - signedAt):
 * - A token is *usable* while now < expiresAt - margin, margin = min(30 s, lifetime / 5). DSQL checks
 *   the token only when a connection opens, but the upstream dial and TLS handshake take time after we
 *   hand it out, so a token is never presented close to its end.
 * - The background re-sign starts when a third of the lifetime is left: at signedAt + 2/3 · lifetime
 *   (600 s into a 900 s token; 3.3 s into a 5 s one), never sooner than 250 ms after the last signing.
 * - A failed re-sign is retried with exponential backoff and full jitter (a random delay in
 *   [0, min(cap, initial · 2^(n-1))], initial 1 s, cap 30 s), brought forward so that one attempt
 *   still happens before the current token stops being usable. Retries go on for as long as the cache
 *   runs. The current token keeps being served while it is usable.
 * - get() with no usable token signs on demand (one shared signing per action), but not more often
 *   than once per initial retry delay after a failure, so a burst of logins without credentials does
 *   not hammer IMDS or STS: within that window it fails fast with the last error.
 * - get() re-checks usability on every call against the clock, so a machine waking from sleep with a
 *   stale token signs a new one instead of presenting it.
 *
 * The token and the credentials are never logged; failures are logged once per attempt with the text
 * from describeCredentialError.
 */

import { type Clock, systemClock } from '../core/clock.js';
import { ProxyError } from '../errors.js';
import type { Logger } from '../log.js';
import { describeCredentialError } from './credentials.js';
import type { SignedToken, TokenAction } from './signer.js';

export type TokenEvent =
  | { type: 'signed'; action: TokenAction; durationMs: number; expiresAt: number }
  | { type: 'sign_failed'; action: TokenAction; durationMs: number; error: string };

export interface TokenCacheOptions {
  sign: (action: TokenAction) => Promise<SignedToken>;
  clock?: Clock;
  logger: Logger;
  /** Source of jitter in [0, 1); default Math.random. */
  random?: () => number;
  retry?: { initialMs?: number; maxMs?: number };
  onEvent?: (e: TokenEvent) => void;
  /** The configured profile, for the `aws sso login --profile X` hint. */
  profile?: string;
}

export interface TokenActionStatus {
  hasUsable: boolean;
  expiresAt?: number;
  lastError?: string;
  consecutiveFailures: number;
}

/** The longest margin kept before a token's end. */
export const MAX_MARGIN_MS = 30_000;
/** Re-signing starts when this fraction of the lifetime has passed. */
export const REFRESH_AT_FRACTION = 2 / 3;
const MIN_REFRESH_DELAY_MS = 250;
const DEFAULT_RETRY_INITIAL_MS = 1_000;
const DEFAULT_RETRY_MAX_MS = 30_000;
/** setTimeout's limit (about 24.8 days); longer delays would fire at once. */
const MAX_TIMER_MS = 2_147_483_647;

/** How long before its end a token stops being handed out. */
export function marginFor(t: { signedAt: number; expiresAt: number }): number {
  return Math.min(MAX_MARGIN_MS, Math.max(0, t.expiresAt - t.signedAt) / 5);
}

/** Whether a token may be handed out at `now`. */
export function isUsable(t: { signedAt: number; expiresAt: number }, now: number): boolean {
  return now < t.expiresAt - marginFor(t);
}

/** When the background re-sign of a token is due. */
export function refreshAtFor(t: { signedAt: number; expiresAt: number }): number {
  return t.signedAt + (t.expiresAt - t.signedAt) * REFRESH_AT_FRACTION;
}

interface Entry {
  action: TokenAction;
  current: SignedToken | undefined;
  inflight: Promise<SignedToken> | undefined;
  timer: unknown;
  hasTimer: boolean;
  consecutiveFailures: number;
  lastError: { message: string; hint: string } | undefined;
  lastFailureAt: number | undefined;
}

export class TokenCache {
  private readonly sign: (action: TokenAction) => Promise<SignedToken>;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly random: () => number;
  private readonly retryInitialMs: number;
  private readonly retryMaxMs: number;
  private readonly onEvent: ((e: TokenEvent) => void) | undefined;
  private readonly profile: string | undefined;
  private readonly entries = new Map<TokenAction, Entry>();
  private stopped = false;

  constructor(opts: TokenCacheOptions) {
    this.sign = opts.sign;
    this.clock = opts.clock ?? systemClock;
    this.log = opts.logger.child({ component: 'token-cache' });
    this.random = opts.random ?? Math.random;
    this.retryInitialMs = Math.max(1, opts.retry?.initialMs ?? DEFAULT_RETRY_INITIAL_MS);
    this.retryMaxMs = Math.max(this.retryInitialMs, opts.retry?.maxMs ?? DEFAULT_RETRY_MAX_MS);
    this.onEvent = opts.onEvent;
    this.profile = opts.profile;
  }

  /**
   * Signs the listed actions now and keeps them refreshed. Resolves once each has a token or has failed
   * once (failures are logged and retried in the background); never rejects.
   */
  async start(actions: TokenAction[]): Promise<void> {
    this.stopped = false;
    await Promise.allSettled(
      [...new Set(actions)].map((action) => this.signShared(this.entry(action)).catch(() => undefined)),
    );
  }

  /**
   * A usable token for the action. Returns the cached one without waiting on any signing when there is
   * one; otherwise waits for a (shared) signing. Rejects with ProxyError TOKEN_UNAVAILABLE, saying why.
   */
  get(action: TokenAction): Promise<string> {
    const entry = this.entry(action);
    const now = this.clock.now();
    if (entry.current && isUsable(entry.current, now)) return Promise.resolve(entry.current.token);
    if (
      !entry.inflight &&
      entry.lastError &&
      entry.lastFailureAt !== undefined &&
      now - entry.lastFailureAt < this.retryInitialMs
    ) {
      return Promise.reject(this.unavailable(entry.lastError));
    }
    // A client is about to wait on signing: the refresh-ahead schedule did not cover this moment.
    this.log.debug({ event: 'token_wait', action }, 'no usable cached token; waiting for a signing');
    return this.signShared(entry).then(
      (signed) => {
        if (isUsable(signed, this.clock.now())) return signed.token;
        throw this.unavailable(tooShortDescription(signed));
      },
      (err: unknown) => {
        throw this.unavailable(entry.lastError ?? describeCredentialError(err, this.ctx()));
      },
    );
  }

  /** The times of the current token (usable or not), without the token. */
  peek(
    action: TokenAction,
  ): { expiresAt: number; signedAt: number; credentialsExpiration?: number } | undefined {
    const t = this.entries.get(action)?.current;
    if (!t) return undefined;
    const times = { expiresAt: t.expiresAt, signedAt: t.signedAt };
    return t.credentialsExpiration === undefined
      ? times
      : { ...times, credentialsExpiration: t.credentialsExpiration };
  }

  status(): Partial<Record<TokenAction, TokenActionStatus>> {
    const now = this.clock.now();
    const out: Partial<Record<TokenAction, TokenActionStatus>> = {};
    for (const [action, e] of this.entries) {
      const s: TokenActionStatus = {
        hasUsable: e.current !== undefined && isUsable(e.current, now),
        consecutiveFailures: e.consecutiveFailures,
      };
      if (e.current) s.expiresAt = e.current.expiresAt;
      if (e.lastError) s.lastError = e.lastError.message;
      out[action] = s;
    }
    return out;
  }

  /** Clears every timer. Cached tokens stay readable; signings already running finish but schedule nothing. */
  stop(): void {
    this.stopped = true;
    for (const e of this.entries.values()) this.clearTimer(e);
  }

  private ctx(): { profile?: string } {
    return this.profile === undefined ? {} : { profile: this.profile };
  }

  /** The entry for an action, creating it (and so adding the action to the refresh schedule) when new. */
  private entry(action: TokenAction): Entry {
    let e = this.entries.get(action);
    if (!e) {
      e = {
        action,
        current: undefined,
        inflight: undefined,
        timer: undefined,
        hasTimer: false,
        consecutiveFailures: 0,
        lastError: undefined,
        lastFailureAt: undefined,
      };
      this.entries.set(action, e);
    }
    return e;
  }

  private unavailable(d: { message: string; hint: string }): ProxyError {
    return new ProxyError('TOKEN_UNAVAILABLE', {
      message: `no valid IAM authentication token is available: ${d.message}`,
      hint: d.hint,
    });
  }

  /** Starts a signing unless one is already running for the action; all callers share its promise. */
  private signShared(entry: Entry): Promise<SignedToken> {
    if (entry.inflight) return entry.inflight;
    const started = this.clock.now();
    let attempt: Promise<SignedToken>;
    try {
      attempt = Promise.resolve(this.sign(entry.action));
    } catch (err) {
      attempt = Promise.reject(err);
    }
    const shared = attempt.then(
      (signed) => {
        entry.inflight = undefined;
        if (!isSignedToken(signed)) {
          const err = new Error('the token signer returned an invalid result');
          this.onFailed(entry, err, this.clock.now() - started);
          throw err;
        }
        this.onSigned(entry, signed, this.clock.now() - started);
        return signed;
      },
      (err: unknown) => {
        entry.inflight = undefined;
        this.onFailed(entry, err, this.clock.now() - started);
        throw err;
      },
    );
    entry.inflight = shared;
    return shared;
  }

  private onSigned(entry: Entry, signed: SignedToken, durationMs: number): void {
    const first = entry.current === undefined;
    const failures = entry.consecutiveFailures;
    entry.current = signed;
    entry.consecutiveFailures = 0;
    entry.lastError = undefined;
    entry.lastFailureAt = undefined;
    const fields = {
      action: entry.action,
      expiresAt: new Date(signed.expiresAt).toISOString(),
      lifetimeMs: signed.expiresAt - signed.signedAt,
      durationMs,
      ...(signed.credentialsExpireAt === undefined ? {} : { cappedByCredentials: true }),
    };
    if (failures > 0) {
      this.log.info(
        { event: 'token_signing_recovered', ...fields, failedAttempts: failures },
        'token signing recovered',
      );
    } else if (first) {
      this.log.info({ event: 'token_signed', ...fields }, 'token signed');
    } else {
      this.log.debug({ event: 'token_refreshed', ...fields }, 'token refreshed');
    }
    this.emit({ type: 'signed', action: entry.action, durationMs, expiresAt: signed.expiresAt });
    const now = this.clock.now();
    this.schedule(entry, Math.max(MIN_REFRESH_DELAY_MS, refreshAtFor(signed) - now));
  }

  private onFailed(entry: Entry, err: unknown, durationMs: number): void {
    const described = describeCredentialError(err, this.ctx());
    const now = this.clock.now();
    entry.consecutiveFailures += 1;
    entry.lastError = described;
    entry.lastFailureAt = now;
    let delay = this.backoff(entry.consecutiveFailures);
    const current = entry.current;
    if (current && isUsable(current, now)) {
      // Keep one attempt inside the window where the current token is still handed out.
      const usableFor = current.expiresAt - marginFor(current) - now;
      delay = Math.min(delay, Math.max(1, usableFor - 1));
    }
    this.log.warn(
      {
        event: 'token_signing_failed',
        action: entry.action,
        consecutiveFailures: entry.consecutiveFailures,
        retryInMs: Math.round(delay),
        servingCachedToken: current !== undefined && isUsable(current, now),
        durationMs,
        hint: described.hint,
      },
      `token signing failed: ${described.message}`,
    );
    this.emit({ type: 'sign_failed', action: entry.action, durationMs, error: described.message });
    this.schedule(entry, delay);
  }

  /** Full jitter: uniform in [0, min(cap, initial · 2^(n-1))], at least 1 ms. */
  private backoff(failures: number): number {
    const ceiling = Math.min(this.retryMaxMs, this.retryInitialMs * 2 ** Math.min(failures - 1, 30));
    return Math.max(1, Math.floor(this.random() * ceiling));
  }

  private schedule(entry: Entry, delayMs: number): void {
    this.clearTimer(entry);
    if (this.stopped) return;
    const ms = Math.min(MAX_TIMER_MS, Math.max(0, Math.ceil(delayMs)));
    const handle = this.clock.setTimeout(() => {
      entry.hasTimer = false;
      entry.timer = undefined;
      if (this.stopped) return;
      // Errors are handled (logged, retried) in onFailed; nobody else awaits this one.
      this.signShared(entry).catch(() => undefined);
    }, ms);
    // The proxy must be able to exit while a refresh is pending.
    (handle as { unref?: () => unknown } | null)?.unref?.();
    entry.timer = handle;
    entry.hasTimer = true;
  }

  private clearTimer(entry: Entry): void {
    if (entry.hasTimer) this.clock.clearTimeout(entry.timer);
    entry.timer = undefined;
    entry.hasTimer = false;
  }

  private emit(e: TokenEvent): void {
    if (!this.onEvent) return;
    try {
      this.onEvent(e);
    } catch (err) {
      this.log.warn(
        { event: e.type, err: err instanceof Error ? err.message : String(err) },
        'token event handler threw',
      );
    }
  }
}

function isSignedToken(v: unknown): v is SignedToken {
  if (typeof v !== 'object' || v === null) return false;
  const t = v as Partial<SignedToken>;
  return (
    typeof t.token === 'string' &&
    t.token.length > 0 &&
    typeof t.signedAt === 'number' &&
    Number.isFinite(t.signedAt) &&
    typeof t.expiresAt === 'number' &&
    Number.isFinite(t.expiresAt) &&
    t.expiresAt > t.signedAt
  );
}

function tooShortDescription(signed: SignedToken): { message: string; hint: string } {
  if (signed.credentialsExpireAt !== undefined) {
    return {
      message: `the AWS credentials expire too soon (at ${new Date(signed.credentialsExpireAt).toISOString()}) to sign a usable token`,
      hint: 'Refresh the temporary AWS credentials (for SSO run `aws sso login`), or use a source dsql-proxy can refresh itself (a profile or role).',
    };
  }
  return {
    message: 'a freshly signed token was already too close to its expiry to use',
    hint: 'Raise the token TTL (at least a few seconds; the default is 900), and check that the system clock is right.',
  };
}
