/**
 * @module accounts/token-refresher
 * Turns an account into a usable Session (protocol spec §3.4, §10.1, §10.2). Sessions are cached until
 * `accessExpiresAt - skew`. A refresh is single-flight per account in this process and, across replicas, guarded
 * by the store lock `lock:refresh:<id>`: the holder refreshes, the others wait and re-read the shared session.
 * A rotated refresh token is written durably to `account:<id>` BEFORE the new access token is used or returned,
 * so a crash never leaves only a dead token behind.
 */
import { AuthenticationError, GatewayError, ServiceUnavailableError } from '../errors.ts';
import { decodeJwtClaims, expiresAtMs } from '../jwt.ts';
import type { DialectName, KimiDialect, Session, SessionGrant } from '../upstream/dialect.ts';
import { getJson, silentLog } from '../store/state-store.ts';
import type { StateStore, StoreLog } from '../store/state-store.ts';
import { readAccountRecord, storeKeys, updateAccountRecord } from './account.ts';
import type { AccountRecord, InvalidMark } from './account.ts';

const MIN_SESSION_LIFETIME_MS = 30_000;

export interface TokenRefresherOptions {
  store: StateStore;
  dialects: Record<DialectName, KimiDialect>;
  clock?: () => number;
  log?: StoreLog;
  /** Refresh this long before the access token expires (spec §3.4: 60–180 s). Default 120 000 ms. */
  skewMs?: number;
  /** Cache lifetime of a session whose access token states no expiry. Default 300 000 ms. */
  defaultSessionTtlMs?: number;
  /** Upper bound of one upstream refresh call. Default 15 000 ms. */
  refreshTimeoutMs?: number;
  /** Lifetime of the cross-replica refresh lock (a crashed holder frees it after this). Default 20 000 ms. */
  lockTtlMs?: number;
  /** How long a replica waits for another one's refresh before giving up. Default 25 000 ms. */
  lockWaitMs?: number;
  /** Called when an account is marked invalid (its token was refused). */
  onInvalid?: (accountId: string, reason: string) => void;
  /** Called after each upstream refresh call (metrics: token_refreshes_total{result}). */
  onRefresh?: (result: 'rotated' | 'refreshed' | 'failed') => void;
}

/** A cached session and the time (store clock) after which it must be refreshed. */
interface CachedSession {
  session: Session;
  validUntil: number;
}

export interface TokenRefresher {
  /** A usable session for the account, refreshing (once, shared) when needed. */
  getSession(accountId: string, signal?: AbortSignal): Promise<Session>;
  /**
   * After an upstream 401 with `failedSession`: drop it and refresh once (§3.4 reactive refresh). Throws
   * AuthenticationError, with the account marked invalid, when the refresh is refused or impossible.
   */
  refreshAfterAuthFailure(accountId: string, failedSession: Session | undefined, signal?: AbortSignal): Promise<Session>;
  /** Drops the cached session (only if it is still `failedSession`, when given). */
  invalidate(accountId: string, failedSession?: Session): Promise<void>;
  markInvalid(accountId: string, reason: string): Promise<void>;
  /** Cached session expiry for status views; never the token. */
  peek(accountId: string): { accessExpiresAt?: number } | undefined;
  /** Aborts refreshes in progress. */
  close(): void;
}

export function createTokenRefresher(options: TokenRefresherOptions): TokenRefresher {
  const { store, dialects, clock = Date.now, log = silentLog } = options;
  const { skewMs = 120_000, defaultSessionTtlMs = 300_000, refreshTimeoutMs = 15_000 } = options;
  const { lockTtlMs = 20_000, lockWaitMs = 25_000 } = options;
  const cache = new Map<string, CachedSession>();
  const inFlight = new Map<string, Promise<Session>>();
  /** Rotated records whose durable write failed: written first on the next attempt, never lost. */
  const unsavedRotations = new Map<string, AccountRecord>();
  const closing = new AbortController();

  const isFresh = (entry: CachedSession | undefined): entry is CachedSession => !!entry && entry.validUntil > clock();

  function remember(accountId: string, entry: CachedSession): Session {
    cache.set(accountId, entry);
    return entry.session;
  }

  function validUntilFor(accessExpiresAt: number | undefined, now: number): number {
    if (accessExpiresAt === undefined) return now + defaultSessionTtlMs;
    // Never refresh sooner than half the remaining life, and keep a fresh session at least 30 s, so a short-lived
    // token or a clock that runs ahead of Kimi's cannot cause a refresh loop (a real expiry still gets a 401,
    // which triggers the reactive refresh).
    const proactive = accessExpiresAt - Math.min(skewMs, Math.max(0, (accessExpiresAt - now) / 2));
    return Math.max(proactive, now + MIN_SESSION_LIFETIME_MS);
  }

  async function readShared(accountId: string): Promise<CachedSession | undefined> {
    const entry = await getJson<CachedSession>(store, storeKeys.session(accountId), log);
    return isFresh(entry) ? entry : undefined;
  }

  async function assertUsable(accountId: string): Promise<AccountRecord> {
    const [record, invalid] = await Promise.all([
      readAccountRecord(store, accountId, log),
      getJson<InvalidMark>(store, storeKeys.invalid(accountId), log),
    ]);
    if (invalid) throw invalidError(accountId, invalid.reason);
    if (!record) throw new AuthenticationError(`Kimi account ${accountId} is not configured any more.`);
    return record;
  }

  async function markInvalid(accountId: string, reason: string): Promise<void> {
    cache.delete(accountId);
    const mark: InvalidMark = { reason, at: clock() };
    await store.set(storeKeys.invalid(accountId), JSON.stringify(mark), { durable: true });
    await store.delete(storeKeys.session(accountId)).catch(() => undefined);
    log.warn({ accountId, reason }, 'kimi account marked invalid');
    options.onInvalid?.(accountId, reason);
  }

  function accessOnlySession(record: AccountRecord): CachedSession {
    const now = clock();
    if (record.accessExpiresAt !== undefined && record.accessExpiresAt <= now) {
      throw new AuthenticationError(EXPIRED_ACCESS_MESSAGE(record.id));
    }
    const session = dialects[record.dialect].sessionFromAccessToken(record.token);
    // No refresh is possible: use the token right up to its expiry (spec §9 D2).
    return { session, validUntil: record.accessExpiresAt ?? now + defaultSessionTtlMs };
  }

  async function refreshWithDialects(record: AccountRecord, signal: AbortSignal): Promise<{ grant: SessionGrant; dialect: DialectName }> {
    try {
      const result = await refreshWithFallback(record, signal);
      options.onRefresh?.(result.grant.refreshToken ? 'rotated' : 'refreshed');
      return result;
    } catch (error) {
      options.onRefresh?.('failed');
      throw error;
    }
  }

  async function refreshWithFallback(record: AccountRecord, signal: AbortSignal): Promise<{ grant: SessionGrant; dialect: DialectName }> {
    try {
      return { grant: await dialects[record.dialect].refreshSession(record.token, signal), dialect: record.dialect };
    } catch (error) {
      if (!isAuthRefusal(error) || !record.fallbackDialect) throw error;
      log.info({ accountId: record.id, from: record.dialect, to: record.fallbackDialect }, 'refresh refused; trying the other dialect (§10.1)');
      const dialect = record.fallbackDialect;
      return { grant: await dialects[dialect].refreshSession(record.token, signal), dialect };
    }
  }

  /** Runs with the refresh lock held. */
  async function refreshHoldingLock(accountId: string): Promise<Session> {
    const shared = await readShared(accountId);
    if (shared) return remember(accountId, shared);
    const unsaved = unsavedRotations.get(accountId);
    if (unsaved) {
      await store.set(storeKeys.account(accountId), JSON.stringify(unsaved), { durable: true });
      unsavedRotations.delete(accountId);
    }
    const record = await assertUsable(accountId);
    if (record.kind === 'access') return remember(accountId, accessOnlySession(record));
    const signal = AbortSignal.any([AbortSignal.timeout(refreshTimeoutMs), closing.signal]);
    let refreshed: { grant: SessionGrant; dialect: DialectName };
    try {
      refreshed = await refreshWithDialects(record, signal);
    } catch (error) {
      if (!isAuthRefusal(error)) throw error;
      await markInvalid(accountId, 'the refresh token was refused by Kimi');
      throw invalidError(accountId, 'the refresh token was refused by Kimi');
    }
    const { grant, dialect } = refreshed;
    const now = clock();
    const rotatedToken = grant.refreshToken && grant.refreshToken !== record.token ? grant.refreshToken : undefined;
    const applyRefresh = (current: AccountRecord): AccountRecord => ({
      ...current,
      token: rotatedToken ?? current.token,
      dialect,
      fallbackDialect: dialect === record.dialect ? current.fallbackDialect : undefined,
      lastRefreshAt: now,
      refreshExpiresAt: rotatedToken
        ? (grant.refreshExpiresAt ?? expiresAtMs(decodeJwtClaims(rotatedToken)))
        : (grant.refreshExpiresAt ?? current.refreshExpiresAt),
    });
    // §10.2: the rotated refresh token is on durable storage before the new access token is used.
    try {
      await updateAccountRecord(store, accountId, applyRefresh, { durable: rotatedToken !== undefined });
    } catch (error) {
      if (rotatedToken) unsavedRotations.set(accountId, applyRefresh(record));
      throw new ServiceUnavailableError(`Could not save the refreshed token of Kimi account ${accountId}; retry shortly.`, {
        isRetryable: true,
        cause: error,
      });
    }
    const session: Session = {
      dialect,
      accessToken: grant.accessToken,
      accessExpiresAt: grant.accessExpiresAt,
      identity: grant.identity,
    };
    const entry: CachedSession = { session, validUntil: validUntilFor(grant.accessExpiresAt, now) };
    await store
      .set(storeKeys.session(accountId), JSON.stringify(entry), { ttlMs: Math.max(1, entry.validUntil - now) })
      .catch((error: unknown) => log.warn({ accountId, err: String(error) }, 'could not share the refreshed session'));
    log.info({ accountId, dialect, rotated: rotatedToken !== undefined }, 'kimi session refreshed');
    return remember(accountId, entry);
  }

  async function obtain(accountId: string): Promise<Session> {
    const shared = await readShared(accountId);
    if (shared) return remember(accountId, shared);
    const record = await assertUsable(accountId);
    if (record.kind === 'access') {
      try {
        return remember(accountId, accessOnlySession(record));
      } catch (error) {
        await markInvalid(accountId, 'the pasted access token expired; give a refresh token');
        throw error;
      }
    }
    const deadline = performance.now() + lockWaitMs;
    for (;;) {
      const lock = await store.acquireLock(storeKeys.refreshLock(accountId), lockTtlMs);
      if (lock) {
        try {
          return await refreshHoldingLock(accountId);
        } finally {
          await lock.release();
        }
      }
      // Another replica is refreshing: wait for its session rather than rotating the same token twice.
      await new Promise((resolve) => setTimeout(resolve, 40 + Math.random() * 40));
      const fresh = await readShared(accountId);
      if (fresh) return remember(accountId, fresh);
      await assertUsable(accountId);
      if (performance.now() > deadline || closing.signal.aborted) {
        throw new ServiceUnavailableError(`Timed out waiting for the refresh of Kimi account ${accountId}.`, { isRetryable: true });
      }
    }
  }

  async function getSession(accountId: string, signal?: AbortSignal): Promise<Session> {
    const cached = cache.get(accountId);
    if (isFresh(cached)) return cached.session;
    let flight = inFlight.get(accountId);
    if (!flight) {
      flight = obtain(accountId).finally(() => inFlight.delete(accountId));
      inFlight.set(accountId, flight);
    }
    return signal ? abortable(flight, signal) : flight;
  }

  async function invalidate(accountId: string, failedSession?: Session): Promise<void> {
    const matches = (entry: CachedSession | undefined): boolean =>
      !!entry && (!failedSession || entry.session.accessToken === failedSession.accessToken);
    if (matches(cache.get(accountId))) cache.delete(accountId);
    const key = storeKeys.session(accountId);
    const text = await store.get(key);
    if (text !== undefined && matches(safeParse<CachedSession>(text))) await store.compareAndDelete(key, text);
  }

  return {
    getSession,
    async refreshAfterAuthFailure(accountId, failedSession, signal) {
      await invalidate(accountId, failedSession);
      const record = await assertUsable(accountId);
      if (record.kind === 'access') {
        await markInvalid(accountId, 'the pasted access token was refused; give a refresh token');
        throw invalidError(accountId, 'the pasted access token was refused; give a refresh token');
      }
      return getSession(accountId, signal);
    },
    invalidate,
    markInvalid,
    peek(accountId) {
      const entry = cache.get(accountId);
      return entry ? { accessExpiresAt: entry.session.accessExpiresAt } : undefined;
    },
    close() {
      closing.abort();
    },
  };
}

const EXPIRED_ACCESS_MESSAGE = (accountId: string): string =>
  `The access token of Kimi account ${accountId} has expired and cannot be refreshed; ` +
  'give the refresh token (localStorage refresh_token) instead of the short-lived access token.';

function invalidError(accountId: string, reason: string): AuthenticationError {
  return new AuthenticationError(`Kimi account ${accountId} is invalid: ${reason}.`);
}

/** True for a refusal of the credential itself (HTTP 401 / Connect unauthenticated), not for transport trouble. */
export function isAuthRefusal(error: unknown): boolean {
  return error instanceof AuthenticationError || (error instanceof GatewayError && error.status === 401);
}

function safeParse<T>(text: string): T | undefined {
  try {
    return JSON.parse(text) as T;
  } catch {
    return undefined;
  }
}

/** Lets one caller stop waiting without cancelling the shared refresh other callers wait on. */
function abortable<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error);
      },
    );
  });
}
