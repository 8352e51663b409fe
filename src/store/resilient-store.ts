/**
 * @module store/resilient-store
 * Redis with a local fallback, so requests keep working when Redis goes away (issue 5).
 *
 * While Redis answers, every read and write also updates a local mirror (with the same TTL). When a command
 * fails or times out, or the client is disconnected, the store logs once and serves from the mirror; writes made
 * then are remembered. When node-redis has reconnected, the next operation first replays those writes to Redis
 * (last write wins), then switches back.
 *
 * Consistency trade-off, accepted on purpose: during an outage each replica has its own view. Locks are local,
 * so two replicas may both refresh the same account (the rotated-away refresh token stays usable once for a short
 * while, spec §3.4, which usually saves the loser); cooldowns set by one replica are not seen by the others; and on
 * reconnect a replayed value overwrites whatever another replica wrote to the same key meanwhile. The alternative,
 * failing requests while Redis is down, is worse for a gateway whose job is to answer.
 */
import { silentLog } from './state-store.ts';
import type { Lock, SetOptions, StateStore, StoreLog } from './state-store.ts';
import type { RedisStore } from './redis-store.ts';

export type PrimaryStore = Pick<RedisStore, 'isReady' | 'getEntry' | 'onReady'> & StateStore;

export interface ResilientStoreOptions {
  primary: PrimaryStore;
  /** Local store used as mirror and fallback (a memory store; give it a file to survive a crash during an outage). */
  fallback: StateStore;
  log?: StoreLog;
  clock?: () => number;
  /** After a failure on a still-connected client (a timeout), wait this long before trying Redis again. Default 1000 ms. */
  retryPrimaryAfterMs?: number;
}

/** A write made on the fallback that Redis has not seen; `value` undefined = delete. */
interface PendingWrite {
  value?: string;
  expiresAt?: number;
}

export function createResilientStore(options: ResilientStoreOptions): StateStore {
  const { primary, fallback, log = silentLog, clock = Date.now, retryPrimaryAfterMs = 1_000 } = options;
  let isUsingFallback = false;
  let retryAt = 0;
  let recovering: Promise<boolean> | undefined;
  const pending = new Map<string, PendingWrite>();
  primary.onReady(() => {
    retryAt = 0;
  });

  function switchToFallback(error: unknown): void {
    retryAt = clock() + retryPrimaryAfterMs;
    if (isUsingFallback) return;
    isUsingFallback = true;
    log.warn({ err: error instanceof Error ? error.message : String(error) }, 'redis unavailable; serving from local state');
  }

  async function replayPending(): Promise<boolean> {
    try {
      for (const [key, write] of pending) {
        const ttlMs = write.expiresAt === undefined ? undefined : write.expiresAt - clock();
        if (write.value === undefined || (ttlMs !== undefined && ttlMs <= 0)) await primary.delete(key);
        else await primary.set(key, write.value, ttlMs === undefined ? {} : { ttlMs });
        pending.delete(key);
      }
      isUsingFallback = false;
      log.info({}, 'redis is back; local changes made during the outage were written to it');
      return true;
    } catch (error) {
      switchToFallback(error);
      return false;
    }
  }

  async function canUsePrimary(): Promise<boolean> {
    if (!primary.isReady) {
      if (!isUsingFallback) switchToFallback(new Error('redis client is disconnected'));
      return false;
    }
    if (!isUsingFallback) return true;
    if (clock() < retryAt) return false;
    recovering ??= replayPending().finally(() => (recovering = undefined));
    return recovering;
  }

  /** Runs `onPrimary` when Redis is usable, else (or when it fails) `onFallback`. */
  async function run<T>(onPrimary: () => Promise<T>, onFallback: () => Promise<T>): Promise<T> {
    if (await canUsePrimary()) {
      try {
        return await onPrimary();
      } catch (error) {
        switchToFallback(error);
      }
    }
    return onFallback();
  }

  function remember(key: string, value: string | undefined, setOptions?: SetOptions): void {
    const expiresAt = setOptions?.ttlMs === undefined ? undefined : clock() + setOptions.ttlMs;
    pending.set(key, value === undefined ? {} : { value, expiresAt });
  }

  const mirrorOptions = (setOptions?: SetOptions): SetOptions =>
    setOptions?.ttlMs === undefined ? {} : { ttlMs: setOptions.ttlMs };

  function wrapLock(lock: Lock, isPrimaryLock: boolean): Lock {
    return {
      key: lock.key,
      release: () => lock.release().catch(() => undefined),
      async extend(ms) {
        try {
          return await lock.extend(ms);
        } catch (error) {
          if (isPrimaryLock) switchToFallback(error);
          return false;
        }
      },
    };
  }

  return {
    kind: 'redis+fallback',
    get: (key) =>
      run(
        async () => {
          const entry = await primary.getEntry(key);
          if (entry) await fallback.set(key, entry.value, entry.ttlMs === undefined ? {} : { ttlMs: entry.ttlMs });
          else await fallback.delete(key);
          return entry?.value;
        },
        () => fallback.get(key),
      ),
    set: (key, value, setOptions) =>
      run(
        async () => {
          await primary.set(key, value, setOptions);
          await fallback.set(key, value, mirrorOptions(setOptions));
        },
        async () => {
          remember(key, value, setOptions);
          await fallback.set(key, value, setOptions);
        },
      ),
    delete: (key) =>
      run(
        async () => {
          await primary.delete(key);
          await fallback.delete(key);
        },
        async () => {
          remember(key, undefined);
          await fallback.delete(key);
        },
      ),
    compareAndSet: (key, expected, value, setOptions) =>
      run(
        async () => {
          const hasWritten = await primary.compareAndSet(key, expected, value, setOptions);
          if (hasWritten) await fallback.set(key, value, mirrorOptions(setOptions));
          return hasWritten;
        },
        async () => {
          const hasWritten = await fallback.compareAndSet(key, expected, value, setOptions);
          if (hasWritten) remember(key, value, setOptions);
          return hasWritten;
        },
      ),
    compareAndDelete: (key, expected) =>
      run(
        async () => {
          const hasDeleted = await primary.compareAndDelete(key, expected);
          if (hasDeleted) await fallback.delete(key);
          return hasDeleted;
        },
        async () => {
          const hasDeleted = await fallback.compareAndDelete(key, expected);
          if (hasDeleted) remember(key, undefined);
          return hasDeleted;
        },
      ),
    acquireLock: (key, ttlMs) =>
      run(
        async () => {
          const lock = await primary.acquireLock(key, ttlMs);
          return lock && wrapLock(lock, true);
        },
        async () => {
          const lock = await fallback.acquireLock(key, ttlMs);
          return lock && wrapLock(lock, false);
        },
      ),
    scan: (prefix) =>
      run(
        () => primary.scan(prefix),
        () => fallback.scan(prefix),
      ),
    async close() {
      await Promise.allSettled([primary.close(), fallback.close()]);
    },
    // Redis has every write already; the fallback's file may not.
    flush: () => fallback.flush?.() ?? Promise.resolve(),
  };
}
